//! The engine's memo of rule selectors: which known identities each peer
//! selector (and `fromRequires`/`toRequires` selector) of the rules selects,
//! evaluated once per distinct selector on first use and kept as a bitset
//! over the engine's identities.
//!
//! Side verdicts (`Engine::side`) test a peer against an entry's selectors
//! with one bit test instead of matching labels again for every flow: the
//! selector work of `paths`, `trace`, `replay` and `lint` is then bounded by
//! the distinct selectors times the identities that carry their labels, not
//! by the number of flows.
//!
//! Selectors are found by address: only the selectors of the engine's rules
//! (borrowed from the inventory for the engine's whole life) are in the
//! memo, so an address identifies one selector; any other selector (a
//! temporary) is not found and the caller matches it directly.

use crate::identity::Identity;
use crate::policy::{PeerKind, Rule};
use crate::selector::Selector;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub(crate) struct SelectorMemo<'a> {
    /// Selector address -> slot (selectors equal by value share a slot).
    slot_of: FxHashMap<usize, u32>,
    selectors: Vec<&'a Selector>,
    selected: Vec<OnceLock<Selected>>,
    /// label key -> value -> identities carrying it (any source).
    index: OnceLock<HashMap<String, HashMap<String, Vec<u32>>>>,
}

impl<'a> SelectorMemo<'a> {
    /// Slots for every peer and requirement selector of `rules` (nothing
    /// is evaluated yet).
    pub(crate) fn new<'r>(rules: impl Iterator<Item = &'r &'a Rule>) -> SelectorMemo<'a>
    where
        'a: 'r,
    {
        let mut slot_of = FxHashMap::default();
        let mut by_value: HashMap<&'a Selector, u32> = HashMap::new();
        let mut selectors = Vec::new();
        let mut add = |s: &'a Selector| {
            let next = u32::try_from(selectors.len()).unwrap_or(u32::MAX);
            let slot = *by_value.entry(s).or_insert_with(|| {
                selectors.push(s);
                next
            });
            slot_of.insert(std::ptr::from_ref(s) as usize, slot);
        };
        for r in rules {
            let r: &'a Rule = r;
            for e in &r.entries {
                for p in &e.peers {
                    if let PeerKind::Selectors { selectors } = &p.kind {
                        selectors.iter().for_each(&mut add);
                    }
                }
                e.requires.iter().for_each(&mut add);
            }
        }
        let selected = (0..selectors.len()).map(|_| OnceLock::new()).collect();
        SelectorMemo {
            slot_of,
            selectors,
            selected,
            index: OnceLock::new(),
        }
    }

    /// Whether `sel` selects the identity at `idx`; `None` when `sel` is
    /// not one of the rules' selectors.
    pub(crate) fn selects(&self, ids: &[Identity], sel: &Selector, idx: usize) -> Option<bool> {
        let slot = *self.slot_of.get(&(std::ptr::from_ref(sel) as usize))?;
        let selected = self.selected.get(slot as usize)?.get_or_init(|| {
            if sel.in_sets().next().is_some() {
                Selected::All(self.evaluate(ids, slot))
            } else {
                Selected::Lazy {
                    done: (0..ids.len().div_ceil(64))
                        .map(|_| AtomicU64::new(0))
                        .collect(),
                    yes: (0..ids.len().div_ceil(64))
                        .map(|_| AtomicU64::new(0))
                        .collect(),
                }
            }
        });
        let (word, bit) = (idx / 64, 1u64 << (idx % 64));
        Some(match selected {
            Selected::All(bits) => bits.get(word).is_some_and(|w| w & bit != 0),
            Selected::Lazy { done, yes } => {
                let (Some(d), Some(y)) = (done.get(word), yes.get(word)) else {
                    return Some(ids.get(idx).is_some_and(|id| sel.matches(&id.labels)));
                };
                if d.load(Ordering::Acquire) & bit != 0 {
                    y.load(Ordering::Acquire) & bit != 0
                } else {
                    let m = ids.get(idx).is_some_and(|id| sel.matches(&id.labels));
                    if m {
                        y.fetch_or(bit, Ordering::AcqRel);
                    }
                    d.fetch_or(bit, Ordering::AcqRel);
                    m
                }
            }
        })
    }

    /// Every known identity `sel` selects, as a bitset over the engine's
    /// identities, when `sel` is one of the rules' selectors with an `In`
    /// or `Exists` requirement (evaluated at once through the label index);
    /// `None` otherwise (a selector tested lazily, or not the rules').
    pub(crate) fn selected_bits(&self, ids: &[Identity], sel: &Selector) -> Option<&[u64]> {
        let slot = *self.slot_of.get(&(std::ptr::from_ref(sel) as usize))?;
        sel.in_sets().next()?;
        let selected = self
            .selected
            .get(slot as usize)?
            .get_or_init(|| Selected::All(self.evaluate(ids, slot)));
        match selected {
            Selected::All(bits) => Some(bits),
            Selected::Lazy { .. } => None,
        }
    }

    /// The identities one slot's selector selects: only those carrying
    /// the label of its most selective equality requirement are matched.
    fn evaluate(&self, ids: &[Identity], slot: u32) -> Vec<u64> {
        let mut bits = vec![0u64; ids.len().div_ceil(64)];
        let Some(sel) = self.selectors.get(slot as usize) else {
            return bits;
        };
        let index = self.index.get_or_init(|| label_index(ids));
        // The smallest `In` requirement's identities (the union over its
        // values) are the only candidates.
        let candidates: Option<Vec<&[u32]>> = sel
            .in_sets()
            .map(|(k, values)| match values {
                Some(values) => values
                    .iter()
                    .map(|v| {
                        index
                            .get(k)
                            .and_then(|vals| vals.get(v))
                            .map_or(&[][..], Vec::as_slice)
                    })
                    .collect::<Vec<_>>(),
                None => index
                    .get(k)
                    .map(|vals| vals.values().map(Vec::as_slice).collect())
                    .unwrap_or_default(),
            })
            .min_by_key(|lists| lists.iter().map(|l| l.len()).sum::<usize>());
        let mut set = |i: usize| {
            if ids.get(i).is_some_and(|id| sel.matches(&id.labels)) {
                if let Some(w) = bits.get_mut(i / 64) {
                    *w |= 1u64 << (i % 64);
                }
            }
        };
        match candidates {
            Some(lists) => lists
                .iter()
                .for_each(|l| l.iter().for_each(|&i| set(i as usize))),
            None => (0..ids.len()).for_each(set),
        }
        bits
    }
}

/// What a selector selects: with an `In` or `Exists` requirement, every
/// identity carrying one of its labels evaluated at once through the label
/// index; without one (`NotIn`, `DoesNotExist`, empty), each identity on
/// its first test, so a selector only ever tested against one peer costs
/// one match.
enum Selected {
    All(Vec<u64>),
    Lazy {
        done: Vec<AtomicU64>,
        yes: Vec<AtomicU64>,
    },
}

fn label_index(ids: &[Identity]) -> HashMap<String, HashMap<String, Vec<u32>>> {
    let mut index: HashMap<String, HashMap<String, Vec<u32>>> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        for l in id.labels.iter() {
            let list = index
                .entry(l.key.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    index
}
