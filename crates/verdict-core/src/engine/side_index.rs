//! The peer index of a side context ([`PeerIndex`]): for each known
//! identity, the peer groups of the context whose peers may select it, so
//! that deciding a flow with a known peer visits only the entries that may
//! match it, not every entry of the rules selecting the subject
//! (reserved:ingress is selected by hundreds of clusterwide rules, and
//! `paths` decides its egress once per backend identity).
//!
//! A group is indexed by the union of what its peer selectors select
//! (the selector memo's bitsets; the `fromRequires`/`toRequires` selectors
//! only narrow, so the union is a superset). Groups that cannot be indexed
//! that way (a CIDR peer, a selector without an `In`/`Exists` requirement,
//! which the memo evaluates lazily) and entries with parts that cannot be
//! evaluated offline (their notes are written whether they match or not)
//! are visited for every peer. The decision is then made by the same tests,
//! in the same entry order, as a full scan.

use crate::engine::Engine;
use crate::policy::{Entry, PeerKind};

/// Candidate slots of a side context per known peer identity.
#[derive(Debug)]
pub(crate) struct PeerIndex {
    /// The groups that may select identity `i` are
    /// `groups[offsets[i]..offsets[i + 1]]`, in increasing order.
    offsets: Vec<u32>,
    groups: Vec<u32>,
    /// Slots visited for every peer, sorted.
    always: Vec<u32>,
    /// `always` without the slots of CIDR-only groups, which never select
    /// an endpoint identity (for endpoint peers), sorted.
    always_endpoint: Vec<u32>,
}

/// A group as the index reads it: a representative entry (all entries of
/// a group have the same peers), its slots in entry order, and whether its
/// peers are all CIDRs.
pub(crate) struct GroupView<'g, 'a> {
    pub(crate) entry: &'a Entry,
    pub(crate) slots: &'g [u32],
    pub(crate) cidr_only: bool,
}

impl PeerIndex {
    /// The index of a context's groups; `unevaluable` lists the slots with
    /// parts that cannot be evaluated offline.
    pub(crate) fn build<'g, 'a: 'g>(
        engine: &Engine<'_>,
        groups: impl Iterator<Item = GroupView<'g, 'a>>,
        unevaluable: impl Iterator<Item = u32>,
    ) -> PeerIndex {
        let n = engine.identities.len();
        let words = n.div_ceil(64);
        let mut always: Vec<u32> = unevaluable.collect();
        let mut always_endpoint = always.clone();
        // (identity, group) pairs, groups in increasing order.
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let mut union = vec![0u64; words];
        for (g, view) in groups.enumerate() {
            let g = u32::try_from(g).unwrap_or(u32::MAX);
            union.iter_mut().for_each(|w| *w = 0);
            let mut indexable = true;
            for p in &view.entry.peers {
                match &p.kind {
                    PeerKind::Selectors { selectors } => {
                        for s in selectors {
                            match engine.selector_bits(s) {
                                Some(bits) => {
                                    union.iter_mut().zip(bits).for_each(|(u, b)| *u |= *b)
                                }
                                None => indexable = false,
                            }
                        }
                    }
                    PeerKind::Cidr { .. } => indexable = false,
                    PeerKind::Unevaluable { .. } => {}
                }
            }
            if !indexable {
                always.extend_from_slice(view.slots);
                if !view.cidr_only {
                    always_endpoint.extend_from_slice(view.slots);
                }
                continue;
            }
            for (wi, &w) in union.iter().enumerate() {
                let mut w = w;
                while w != 0 {
                    let bit = w.trailing_zeros() as usize;
                    w &= w - 1;
                    let i = u32::try_from(wi * 64 + bit).unwrap_or(u32::MAX);
                    pairs.push((i, g));
                }
            }
        }
        always.sort_unstable();
        always.dedup();
        always_endpoint.sort_unstable();
        always_endpoint.dedup();
        // Counting sort of the pairs by identity (stable: groups stay in
        // increasing order).
        let mut offsets = vec![0u32; n + 1];
        for &(i, _) in &pairs {
            if let Some(o) = offsets.get_mut(i as usize + 1) {
                *o += 1;
            }
        }
        for i in 1..offsets.len() {
            let prev = offsets.get(i - 1).copied().unwrap_or(0);
            if let Some(o) = offsets.get_mut(i) {
                *o += prev;
            }
        }
        let mut next = offsets.clone();
        let mut groups = vec![0u32; pairs.len()];
        for &(i, g) in &pairs {
            if let Some(pos) = next.get_mut(i as usize) {
                if let Some(slot) = groups.get_mut(*pos as usize) {
                    *slot = g;
                }
                *pos += 1;
            }
        }
        PeerIndex {
            offsets,
            groups,
            always,
            always_endpoint,
        }
    }

    /// The groups that may select the identity at `peer_idx`.
    pub(crate) fn groups_of(&self, peer_idx: usize) -> &[u32] {
        let from = self.offsets.get(peer_idx).copied().unwrap_or(0) as usize;
        let to = self.offsets.get(peer_idx + 1).copied().unwrap_or(0) as usize;
        self.groups.get(from..to).unwrap_or(&[])
    }

    /// The slots visited whatever the peer (`endpoint`: the peer is an
    /// endpoint identity, which no CIDR-only group selects).
    pub(crate) fn always(&self, endpoint: bool) -> &[u32] {
        if endpoint {
            &self.always_endpoint
        } else {
            &self.always
        }
    }
}
