//! Which peer sets of a side hold a class of peers, for every class x
//! pairs with at once: one pass per subject class, not a walk per
//! candidate pair.
//!
//! ```text
//!  sweep(side of class x): for each position i of the side's sets, for each class c the set holds:
//!                          held[c] += i        (positions ascending; cost: the sets' sizes in classes)
//!  or, when x pairs with few classes (cost: wanted classes x sets x a binary search):
//!                          for each wanted c, each position i: held[c] += i if set i's class list has c
//!  pairs (x, c) of x's run read held[c]        (an empty list: no set holds c)
//!  held lists interned: list number -> positions, so a view is cached per (signature, list number)
//! ```
//!
//! A class is held by a set exactly when its first member is (classes are
//! refined by every distinct set of the direction), so the classes listed
//! per set ([`Classes::per_set`]) are the classes the set holds.

use super::candidates::classes_of;
use super::classes::{Classes, Sets};
use super::NONE;
use crate::matrix::Side;
use rustc_hash::FxHashMap;

/// The held lists of the other role's classes in one side at a time.
pub(super) struct Sweep {
    /// Per class of the other role: positions holding it in the swept side.
    held: Vec<Vec<u32>>,
    /// Classes with a non-empty list.
    touched: Vec<u32>,
    lists: Vec<Box<[u32]>>,
    list_id: FxHashMap<Box<[u32]>, u32>,
    /// (class, position) entries written or tested (the
    /// `matrix_held_set_visits` counter).
    pub(super) visits: usize,
    /// Lookups or sweeps only (`None`: whichever costs less).
    lookups: Option<bool>,
}

impl Sweep {
    /// A sweep over `classes` (the role whose classes the swept sides'
    /// sets hold).
    pub(super) fn new(classes: &Classes, lookups: Option<bool>) -> Sweep {
        let mut list_id = FxHashMap::default();
        // List 0: no set holds the class (also: no side).
        list_id.insert(Box::<[u32]>::from([]), 0);
        Sweep {
            held: vec![Vec::new(); classes.len()],
            touched: Vec::new(),
            lists: vec![Box::from([])],
            list_id,
            visits: 0,
            lookups,
        }
    }

    /// Lists, per class of `classes` among `wanted` (ascending, no
    /// duplicates: the classes whose lists are read next), the positions
    /// of `side`'s sets (sets of `sets`) holding it; `None`: no side, every
    /// list empty. Either one sweep of the sets (their sizes in classes) or,
    /// when fewer classes are wanted than that costs, a lookup of each
    /// wanted class in each set's sorted class list: a source whose sets
    /// hold most of a large cluster but which pairs with a few classes
    /// costs those few.
    pub(super) fn sweep(
        &mut self,
        side: Option<&Side>,
        sets: &Sets,
        classes: &Classes,
        wanted: &[u32],
    ) {
        for &c in &self.touched {
            if let Some(v) = self.held.get_mut(c as usize) {
                v.clear();
            }
        }
        self.touched.clear();
        let Some(side) = side else {
            return;
        };
        // The classes each set holds, in position order.
        let held_by: Vec<&[u32]> = side
            .by_set
            .iter()
            .map(|(set, _)| classes_of(sets, classes, set))
            .collect();
        let swept: usize = held_by.iter().map(|l| l.len()).sum();
        // A lookup costs about a logarithm of the set's list.
        let probes = wanted.len().saturating_mul(held_by.len()).saturating_mul(4);
        if self.lookups.unwrap_or(probes < swept) {
            for &c in wanted {
                let Some(v) = self.held.get_mut(c as usize) else {
                    continue;
                };
                for (i, list) in held_by.iter().enumerate() {
                    if list.binary_search(&c).is_ok() {
                        v.push(u32::try_from(i).unwrap_or(NONE));
                    }
                }
                self.visits += held_by.len();
                if !v.is_empty() {
                    self.touched.push(c);
                }
            }
            return;
        }
        for (i, list) in held_by.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(NONE);
            for &c in *list {
                if let Some(v) = self.held.get_mut(c as usize) {
                    if v.is_empty() {
                        self.touched.push(c);
                    }
                    v.push(i);
                    self.visits += 1;
                }
            }
        }
    }

    /// The number of the list of positions holding class `c` in the side
    /// last swept.
    pub(super) fn held(&mut self, c: u32) -> u32 {
        let Some(v) = self.held.get(c as usize).filter(|v| !v.is_empty()) else {
            return 0;
        };
        if let Some(&id) = self.list_id.get(v.as_slice()) {
            return id;
        }
        let id = u32::try_from(self.lists.len()).unwrap_or(NONE);
        let list: Box<[u32]> = v.as_slice().into();
        self.lists.push(list.clone());
        self.list_id.insert(list, id);
        id
    }

    /// The positions of list `id`, ascending.
    pub(super) fn list(&self, id: u32) -> &[u32] {
        self.lists.get(id as usize).map_or(&[], |l| l)
    }
}
