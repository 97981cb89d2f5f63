//! What a side's held entries decide, compared by content: two class
//! pairs whose held entries have equal content have equal cells, however
//! different the sides (and their signatures) they come from.
//!
//! ```text
//!  entry content = what a cell reads of an entry: ports, protocols, decision, tier,
//!                  level, pass, proxied?, origins (not its peer set, not its position)
//!  view          = (side state, the held entries' content numbers, sorted)
//!  (direction, signature, held list) -> view   (memoised)
//!  cell memo key = (ingress view, source is host, egress view, destination is host)
//! ```
//!
//! The cell ([`crate::matrix::Ctx::cell_held`]) reads the held entries only
//! through `covers`, `protocol`, the port range, `precedence` (tier, level,
//! decision, pass), whether the entry is proxied and its origins (whose
//! order it does not keep: the rules come out sorted), and the side only
//! through its state's `enforced`, `default_deny` and `allow_localhost`.
//! So the view is a sound memo key, and on the synthetic clusters it
//! collapses the millions of distinct (signature, held list) keys of
//! 100k pods (one signature per identity) into a few thousand.

use super::NONE;
use crate::matrix::Side;
use crate::resolved::EntryEffect;
use rustc_hash::FxHashMap;

/// The content of one entry as a cell reads it: what it does, whether it
/// is proxied, its origins.
type EntryContent = (EntryEffect, bool, Vec<usize>);

/// A side's state flags and its held entries' content numbers (sorted).
type ViewKey = (bool, bool, bool, Box<[u32]>);

/// The views of held lists, per direction and side signature.
#[derive(Default)]
pub(super) struct Views {
    entry_ids: FxHashMap<EntryContent, u32>,
    /// Per signature (lazily): per position of its sets, the content
    /// numbers of the set's entries.
    content: Vec<Option<Vec<Vec<u32>>>>,
    /// (direction, signature, held list number) -> view.
    cache: FxHashMap<(bool, u32, u32), u32>,
    view_ids: FxHashMap<ViewKey, u32>,
    buf: Vec<u32>,
    /// Entries compared without their origins (cells without rules).
    without_rules: bool,
}

/// The view of "no side" (no policy: allows).
pub(super) const NO_SIDE: u32 = NONE;

impl Views {
    /// Views of the sides of `signatures` signatures; `without_rules`:
    /// entries that differ only by their rules are alike (the cells are
    /// computed without rules).
    pub(super) fn new(signatures: usize, without_rules: bool) -> Views {
        Views {
            content: (0..signatures).map(|_| None).collect(),
            without_rules,
            ..Views::default()
        }
    }

    /// The view of the entries of `side` (signature `sig`) at the
    /// positions `held` (list number `list` of the direction's index;
    /// `ingress`: which index).
    pub(super) fn view(
        &mut self,
        side: Option<&Side>,
        sig: u32,
        ingress: bool,
        list: u32,
        held: &[u32],
    ) -> u32 {
        let Some(side) = side.filter(|_| sig != NONE) else {
            return NO_SIDE;
        };
        if let Some(&v) = self.cache.get(&(ingress, sig, list)) {
            return v;
        }
        let Some(slot) = self.content.get_mut(sig as usize) else {
            return NO_SIDE;
        };
        let entry_ids = &mut self.entry_ids;
        let without_rules = self.without_rules;
        let content = slot.get_or_insert_with(|| {
            side.by_set
                .iter()
                .map(|(_, es)| {
                    es.iter()
                        .map(|e| {
                            let key: EntryContent = (
                                e.effect(),
                                !e.proxied.is_empty(),
                                if without_rules {
                                    Vec::new()
                                } else {
                                    e.origins()
                                        .map(|o| std::ptr::from_ref(o) as usize)
                                        .collect()
                                },
                            );
                            let next = u32::try_from(entry_ids.len()).unwrap_or(NONE - 1);
                            *entry_ids.entry(key).or_insert(next)
                        })
                        .collect()
                })
                .collect()
        });
        self.buf.clear();
        for &i in held {
            if let Some(ids) = content.get(i as usize) {
                self.buf.extend_from_slice(ids);
            }
        }
        self.buf.sort_unstable();
        let st = side.state;
        let key: ViewKey = (
            st.enforced,
            st.default_deny,
            st.allow_localhost,
            self.buf.as_slice().into(),
        );
        let next = u32::try_from(self.view_ids.len()).unwrap_or(NONE - 1);
        let v = *self.view_ids.entry(key).or_insert(next);
        self.cache.insert((ingress, sig, list), v);
        v
    }
}

/// Views by held-list number within one run of pairs (one side, so one
/// signature): an array read instead of a lookup per pair.
#[derive(Default)]
pub(super) struct RunCache {
    /// Per list number: (run stamp, view).
    slots: Vec<(u32, u32)>,
    run: u32,
}

impl RunCache {
    /// Starts a new run (forgets every view).
    pub(super) fn clear(&mut self) {
        self.run = self.run.wrapping_add(1);
        if self.run == 0 {
            self.slots.iter_mut().for_each(|s| *s = (0, 0));
            self.run = 1;
        }
    }

    /// The view of list `list` in this run, computed by `f` once.
    pub(super) fn get_or(&mut self, list: u32, f: impl FnOnce() -> u32) -> u32 {
        let i = list as usize;
        if let Some(&(run, v)) = self.slots.get(i) {
            if run == self.run {
                return v;
            }
        }
        let v = f();
        if self.slots.len() <= i {
            self.slots.resize(i + 1, (0, 0));
        }
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = (self.run, v);
        }
        v
    }
}
