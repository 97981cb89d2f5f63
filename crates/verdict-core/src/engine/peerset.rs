//! Peer sets of resolved maps: the peers one rule entry selects, resolved
//! once and shared (`Arc`) by every subject the entry applies to, so that a
//! namespace-wide peer is one map entry, not one per identity.
//!
//! ```text
//!  PeerSet { ids: sorted identity indices, bits: the same as a bitset, cidrs: sorted CIDR ranks }
//!  contains(peer) = one bit test (identities) or a binary search (CIDR selections)
//! ```

use std::sync::Arc;

/// A peer of a resolved map: an index into the engine's identities, or the
/// rank of a CIDR selection's text (see [`PeerNames::cidr`]). Identities
/// order before CIDR selections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerRef {
    Identity(u32),
    Cidr(u32),
}

/// A set of peers: identity indices (sorted, and as a bitset for
/// membership tests) and CIDR selections (sorted ranks).
#[derive(Debug, PartialEq, Eq)]
pub struct PeerSet {
    ids: Vec<u32>,
    bits: Vec<u64>,
    cidrs: Vec<u32>,
}

impl PeerSet {
    /// A set from peers (any order, duplicates allowed).
    pub fn new(peers: impl IntoIterator<Item = PeerRef>) -> PeerSet {
        let mut ids = Vec::new();
        let mut cidrs = Vec::new();
        for p in peers {
            match p {
                PeerRef::Identity(i) => ids.push(i),
                PeerRef::Cidr(c) => cidrs.push(c),
            }
        }
        ids.sort_unstable();
        ids.dedup();
        cidrs.sort_unstable();
        cidrs.dedup();
        let words = ids.last().map_or(0, |&m| m as usize / 64 + 1);
        let mut bits = vec![0u64; words];
        for &i in &ids {
            if let Some(w) = bits.get_mut(i as usize / 64) {
                *w |= 1 << (i % 64);
            }
        }
        PeerSet { ids, bits, cidrs }
    }

    /// Whether the identity with index `i` is in the set.
    pub fn has_identity(&self, i: u32) -> bool {
        self.bits
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn contains(&self, p: PeerRef) -> bool {
        match p {
            PeerRef::Identity(i) => self.has_identity(i),
            PeerRef::Cidr(c) => self.cidrs.binary_search(&c).is_ok(),
        }
    }

    /// Identity indices, sorted.
    pub fn identities(&self) -> &[u32] {
        &self.ids
    }

    /// The identities as 64-bit words (bit `i % 64` of word `i / 64`).
    pub fn identity_bits(&self) -> &[u64] {
        &self.bits
    }

    /// CIDR selection ranks, sorted.
    pub fn cidrs(&self) -> &[u32] {
        &self.cidrs
    }

    pub fn len(&self) -> usize {
        self.ids.len() + self.cidrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every peer: identities, then CIDR selections.
    pub fn iter(&self) -> impl Iterator<Item = PeerRef> + '_ {
        self.ids
            .iter()
            .map(|&i| PeerRef::Identity(i))
            .chain(self.cidrs.iter().map(|&c| PeerRef::Cidr(c)))
    }
}

/// Interns peer sets: equal sets share one allocation.
#[derive(Default)]
pub struct PeerSets {
    sets: std::collections::HashMap<(Vec<u32>, Vec<u32>), Arc<PeerSet>>,
}

impl PeerSets {
    pub fn intern(&mut self, set: PeerSet) -> Arc<PeerSet> {
        let key = (set.ids.clone(), set.cidrs.clone());
        self.sets
            .entry(key)
            .or_insert_with(|| Arc::new(set))
            .clone()
    }
}

/// What peers are called: each identity's number and display name, and the
/// text of each CIDR selection by rank. Shared by every map of one
/// resolution.
#[derive(Debug, Default)]
pub struct PeerNames {
    pub(crate) numbers: Vec<u32>,
    pub(crate) names: Vec<Arc<str>>,
    pub(crate) cidrs: Vec<String>,
    /// The index of `reserved:host` (allow-localhost applies to it).
    pub(crate) host: Option<u32>,
}

impl PeerNames {
    /// The identity number of identity index `i`.
    pub fn number(&self, i: u32) -> Option<u32> {
        self.numbers.get(i as usize).copied()
    }

    /// The display name (labels) of identity index `i`.
    pub fn name(&self, i: u32) -> Option<&Arc<str>> {
        self.names.get(i as usize)
    }

    /// The text of the CIDR selection of rank `c` (`10.0.0.0/8 except ...`).
    pub fn cidr(&self, c: u32) -> Option<&str> {
        self.cidrs.get(c as usize).map(String::as_str)
    }

    /// The index of `reserved:host`.
    pub fn host(&self) -> Option<u32> {
        self.host
    }

    /// How many CIDR selections the resolution met.
    pub fn cidr_count(&self) -> usize {
        self.cidrs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_exact() {
        let s = PeerSet::new([
            PeerRef::Identity(130),
            PeerRef::Cidr(2),
            PeerRef::Identity(3),
            PeerRef::Identity(3),
        ]);
        assert_eq!(s.identities(), &[3, 130]);
        assert_eq!(s.len(), 3);
        for i in 0..200 {
            assert_eq!(s.contains(PeerRef::Identity(i)), i == 3 || i == 130, "{i}");
        }
        assert!(s.contains(PeerRef::Cidr(2)));
        assert!(!s.contains(PeerRef::Cidr(3)));
        assert!(!PeerSet::new([]).contains(PeerRef::Identity(0)));
        let mut sets = PeerSets::default();
        let a = sets.intern(PeerSet::new([PeerRef::Identity(1)]));
        let b = sets.intern(PeerSet::new([PeerRef::Identity(1)]));
        assert!(Arc::ptr_eq(&a, &b));
    }
}
