//! Side signatures and peer classes of the grouped matrix.
//!
//! ```text
//!  signature of a side = its state + its entries (peer set by address, ports, decision, ...,
//!                         rules when the cells name them), compared through a hash
//!  distinct sets of a direction: numbered 0.. in first-seen order (by address)
//!  classes: initial key per peer, then split by membership in every distinct set
//!  per distinct set: its members' classes (sorted)
//! ```

use super::NONE;
use crate::matrix::Side;
use crate::peerset::PeerSet;
use crate::resolved::SetEntry;
use rustc_hash::FxHashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The entries of a side in order (set by set).
fn entries<'s, 'p, 'r>(s: &'s Side<'p, 'r>) -> impl Iterator<Item = &'p SetEntry<'r>> + 's {
    s.by_set.iter().flat_map(|(_, es)| es.iter().copied())
}

/// What a side's signature compares of an entry: its peer set (by
/// address), what it does, its proxy, and its rules when `rules`.
fn same_entry(a: &SetEntry, b: &SetEntry, rules: bool) -> bool {
    Arc::ptr_eq(&a.peers, &b.peers)
        && a.effect() == b.effect()
        && a.proxied == b.proxied
        && (!rules
            || a.origins()
                .map(std::ptr::from_ref)
                .eq(b.origins().map(std::ptr::from_ref)))
}

/// Whether two sides have the same state and the same entries in the same
/// order (so the same peer-set list).
fn same_side(a: &Side, b: &Side, rules: bool) -> bool {
    let (x, y) = (a.state, b.state);
    (x.enforced, x.default_deny, x.allow_localhost)
        == (y.enforced, y.default_deny, y.allow_localhost)
        && a.by_set.len() == b.by_set.len()
        && entries(a).count() == entries(b).count()
        && entries(a)
            .zip(entries(b))
            .all(|(e, f)| same_entry(e, f, rules))
}

/// The hash of what [`same_side`] compares (streamed: no key is built or
/// kept per side; a side of a 100k-pod cluster has a hundred entries).
fn side_hash(s: &Side, rules: bool) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    let st = s.state;
    (st.enforced, st.default_deny, st.allow_localhost).hash(&mut h);
    for e in entries(s) {
        (Arc::as_ptr(&e.peers) as usize).hash(&mut h);
        e.effect().hash(&mut h);
        e.proxied.hash(&mut h);
        if rules {
            for o in e.origins() {
                (std::ptr::from_ref(o) as usize).hash(&mut h);
            }
        }
        0xfeu8.hash(&mut h);
    }
    h.finish()
}

/// Signature numbers of the sides of both directions (equal numbers:
/// equal state and entries in the same order, so equal peer-set lists),
/// and per signature one side that has it.
pub(super) struct Signatures<'s, 'p, 'r> {
    pub(super) ingress: Vec<u32>,
    pub(super) egress: Vec<u32>,
    pub(super) sides: Vec<&'s Side<'p, 'r>>,
}

/// `rules`: sides that differ only by the rules of their entries are
/// told apart (the cells name their rules); without, they share a
/// signature.
pub(super) fn signatures<'s, 'p, 'r>(
    ingress: &'s [Side<'p, 'r>],
    egress: &'s [Side<'p, 'r>],
    rules: bool,
) -> Signatures<'s, 'p, 'r> {
    // Hash -> signatures with that hash (almost always one).
    let mut ids: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
    let mut out = Signatures {
        ingress: Vec::with_capacity(ingress.len()),
        egress: Vec::with_capacity(egress.len()),
        sides: Vec::new(),
    };
    for (dir, sides) in [(true, ingress), (false, egress)] {
        for s in sides {
            let bucket = ids.entry(side_hash(s, rules)).or_default();
            let found = bucket.iter().copied().find(|&id| {
                out.sides
                    .get(id as usize)
                    .is_some_and(|t| same_side(s, t, rules))
            });
            let id = found.unwrap_or_else(|| {
                let next = u32::try_from(out.sides.len()).unwrap_or(NONE - 1);
                out.sides.push(s);
                bucket.push(next);
                next
            });
            if dir {
                out.ingress.push(id);
            } else {
                out.egress.push(id);
            }
        }
    }
    out
}

/// Members of a peer set as dense peer numbers (identities, then CIDR
/// selections after the `n` identities).
fn members(set: &PeerSet, n: usize) -> impl Iterator<Item = usize> + '_ {
    set.identities()
        .iter()
        .map(|&i| i as usize)
        .chain(set.cidrs().iter().map(move |&c| n + c as usize))
}

/// Splits every class by membership in each set: members move to a new
/// class, the rest stay. Cost: the sum of the sets' sizes.
fn refine(class: &mut [u32], next: &mut u32, sets: &[&PeerSet], n: usize) {
    let mut stamp: Vec<u32> = vec![NONE; *next as usize];
    let mut to: Vec<u32> = vec![0; *next as usize];
    for (si, set) in sets.iter().enumerate() {
        let si = u32::try_from(si).unwrap_or(NONE - 1);
        for q in members(set, n) {
            let Some(slot) = class.get_mut(q) else {
                continue;
            };
            let c = *slot as usize;
            let Some(st) = stamp.get_mut(c) else {
                continue;
            };
            if *st != si {
                *st = si;
                if let Some(t) = to.get_mut(c) {
                    *t = *next;
                }
                *next += 1;
                stamp.push(NONE);
                to.push(0);
            }
            if let Some(&t) = to.get(c) {
                *slot = t;
            }
        }
    }
}

/// Renumbers classes densely in the order of their first peer; returns the
/// number of classes.
fn compact(class: &mut [u32]) -> usize {
    let mut ids: FxHashMap<u32, u32> = FxHashMap::default();
    for c in class.iter_mut().filter(|c| **c != NONE) {
        let next = u32::try_from(ids.len()).unwrap_or(NONE);
        *c = *ids.entry(*c).or_insert(next);
    }
    ids.len()
}

/// The distinct peer sets of one direction's sides, numbered in
/// first-seen order.
pub(super) struct Sets<'p> {
    pub(super) sets: Vec<&'p PeerSet>,
    /// Set address -> number.
    pub(super) id: FxHashMap<usize, u32>,
}

impl<'p> Sets<'p> {
    pub(super) fn new(sides: &[Side<'p, '_>]) -> Sets<'p> {
        let mut out = Sets {
            sets: Vec::new(),
            id: FxHashMap::default(),
        };
        for s in sides {
            for (set, _) in &s.by_set {
                let next = u32::try_from(out.sets.len()).unwrap_or(NONE);
                out.id
                    .entry(std::ptr::from_ref::<PeerSet>(*set) as usize)
                    .or_insert_with(|| {
                        out.sets.push(*set);
                        next
                    });
            }
        }
        out
    }

    /// The number of `set` (a set of these sides).
    pub(super) fn of(&self, set: &PeerSet) -> Option<u32> {
        self.id
            .get(&(std::ptr::from_ref::<PeerSet>(set) as usize))
            .copied()
    }
}

/// The classes of one role (source or destination): per peer its class,
/// per class its members (ascending), per distinct set of the other
/// direction the classes of its members (sorted).
pub(super) struct Classes {
    pub(super) of: Vec<u32>,
    pub(super) members: Vec<Vec<usize>>,
    pub(super) per_set: Vec<Vec<u32>>,
}

impl Classes {
    /// Refines the initial classes `class` (`NONE`: not a peer; `next`:
    /// one past the largest) by membership in every set of `sets`.
    pub(super) fn refine(mut class: Vec<u32>, mut next: u32, sets: &Sets, n: usize) -> Classes {
        refine(&mut class, &mut next, &sets.sets, n);
        let count = compact(&mut class);
        let mut of_class: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (q, &c) in class.iter().enumerate() {
            if let Some(v) = of_class.get_mut(c as usize) {
                v.push(q);
            }
        }
        let per_set = sets
            .sets
            .iter()
            .map(|set| {
                let mut v: Vec<u32> = members(set, n)
                    .filter_map(|q| class.get(q).copied())
                    .filter(|&c| c != NONE)
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        Classes {
            of: class,
            members: of_class,
            per_set,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// The first member of class `c`.
    pub(super) fn first(&self, c: u32) -> Option<usize> {
        self.members
            .get(c as usize)
            .and_then(|m| m.first())
            .copied()
    }

    /// The classes whose first member is an identity (not a CIDR selection).
    pub(super) fn identity_classes(&self, n: usize) -> Vec<u32> {
        (0..self.len())
            .filter(|&c| {
                self.members
                    .get(c)
                    .and_then(|m| m.first())
                    .is_some_and(|&q| q < n)
            })
            .map(|c| u32::try_from(c).unwrap_or(NONE))
            .collect()
    }
}
