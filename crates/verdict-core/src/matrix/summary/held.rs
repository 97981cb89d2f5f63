//! Which peer sets of a side hold a class of peers, without walking the
//! side per pair.
//!
//! ```text
//!  per class c:          the distinct sets holding c (inverted from each set's classes; sorted)
//!  per side signature g: distinct set -> its position in g's by_set (built on first use)
//!  held(g, c) = { pos_g(k) : k holds c, k in g }   cost: min(#sets holding c, #sets of g)
//!  held lists interned: (g, c) -> list number, so a cell's memo key is a few integers
//! ```
//!
//! A class is held by a set exactly when its first member is (classes are
//! refined by every distinct set of the direction), so the walk over the
//! side's sets, taken when it is the shorter, tests that member.

use super::classes::{Classes, Sets};
use super::NONE;
use crate::matrix::Side;
use rustc_hash::FxHashMap;

/// Peer-set positions holding each class, per side signature.
pub(super) struct HeldIndex {
    /// Per class: `start[c]..start[c + 1]` in `sets`.
    start: Vec<u32>,
    /// Distinct set numbers, by class (ascending within a class).
    sets: Vec<u32>,
    /// Per signature (lazily): set number -> position in the side's sets.
    pos: Vec<Option<FxHashMap<u32, u32>>>,
    /// (signature, class) -> list number.
    cache: FxHashMap<u64, u32>,
    lists: Vec<Box<[u32]>>,
    list_id: FxHashMap<Box<[u32]>, u32>,
    buf: Vec<u32>,
    /// Sets looked up or tested (the `matrix_held_set_visits` counter).
    pub(super) visits: usize,
}

impl HeldIndex {
    /// The index of `classes` (one role) over the distinct sets `sets` of
    /// the other direction; `signatures` is the number of signatures.
    pub(super) fn new(classes: &Classes, sets: &Sets, signatures: usize) -> HeldIndex {
        let mut count = vec![0u32; classes.len() + 1];
        for list in &classes.per_set {
            for &c in list {
                if let Some(x) = count.get_mut(c as usize + 1) {
                    *x += 1;
                }
            }
        }
        for i in 1..count.len() {
            let prev = count.get(i - 1).copied().unwrap_or(0);
            if let Some(x) = count.get_mut(i) {
                *x += prev;
            }
        }
        let start = count.clone();
        let mut fill = count;
        let mut by_class = vec![0u32; start.last().copied().unwrap_or(0) as usize];
        // Sets in ascending number: each class's list comes out sorted.
        for (k, list) in classes.per_set.iter().enumerate().take(sets.sets.len()) {
            for &c in list {
                if let Some(at) = fill.get_mut(c as usize) {
                    if let Some(slot) = by_class.get_mut(*at as usize) {
                        *slot = u32::try_from(k).unwrap_or(NONE);
                    }
                    *at += 1;
                }
            }
        }
        // List 0: no set holds the class (also: no side).
        let lists: Vec<Box<[u32]>> = vec![Box::from([])];
        let mut list_id = FxHashMap::default();
        list_id.insert(Box::<[u32]>::from([]), 0);
        HeldIndex {
            start,
            sets: by_class,
            pos: (0..signatures).map(|_| None).collect(),
            cache: FxHashMap::default(),
            lists,
            list_id,
            buf: Vec::new(),
            visits: 0,
        }
    }

    /// The number of the list of positions of `side`'s peer sets (side
    /// signature `sig`; `None`/`NONE`: no side, the empty list) that hold
    /// class `c`, whose first member is `rep`.
    pub(super) fn held(
        &mut self,
        side: Option<&Side>,
        sig: u32,
        c: u32,
        rep: crate::peerset::PeerRef,
        sets: &Sets,
    ) -> u32 {
        let Some(side) = side.filter(|_| sig != NONE) else {
            return 0;
        };
        let key = (u64::from(sig) << 32) | u64::from(c);
        if let Some(&id) = self.cache.get(&key) {
            return id;
        }
        let (a, b) = (
            self.start.get(c as usize).copied().unwrap_or(0) as usize,
            self.start.get(c as usize + 1).copied().unwrap_or(0) as usize,
        );
        let holding = self.sets.get(a..b).unwrap_or(&[]);
        self.buf.clear();
        if holding.len() < side.by_set.len() {
            self.visits += holding.len();
            let pos = match self.pos.get_mut(sig as usize) {
                Some(slot) => slot.get_or_insert_with(|| {
                    side.by_set
                        .iter()
                        .enumerate()
                        .filter_map(|(i, (set, _))| {
                            Some((sets.of(set)?, u32::try_from(i).unwrap_or(NONE)))
                        })
                        .collect()
                }),
                None => return 0,
            };
            self.buf
                .extend(holding.iter().filter_map(|k| pos.get(k).copied()));
            self.buf.sort_unstable();
        } else {
            self.visits += side.by_set.len();
            for (i, (set, _)) in side.by_set.iter().enumerate() {
                if set.contains(rep) {
                    self.buf.push(u32::try_from(i).unwrap_or(NONE));
                }
            }
        }
        let id = match self.list_id.get(self.buf.as_slice()) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.lists.len()).unwrap_or(NONE);
                let list: Box<[u32]> = self.buf.as_slice().into();
                self.lists.push(list.clone());
                self.list_id.insert(list, id);
                id
            }
        };
        self.cache.insert(key, id);
        id
    }

    /// The positions of list `id`, ascending.
    pub(super) fn list(&self, id: u32) -> &[u32] {
        self.lists.get(id as usize).map_or(&[], |l| l)
    }
}
