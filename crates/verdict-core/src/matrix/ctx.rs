//! The cell of one pair of peers, from the two sides that decide it: the
//! destination's ingress side (entries whose peer sets hold the source) and
//! the source's egress side (entries whose sets hold the destination), over
//! the port classes both cut. [`Ctx`] holds the sides of every identity.

use crate::engine::{Decision, Engine};
use crate::matrix::{node_matches, peer_of, MatrixOptions, Node, PortRange};
use crate::peerset::{PeerNames, PeerRef, PeerSet};
use crate::policy::{Direction, Origin, Protocol};
use crate::resolved::{decide_with, DirectionState, ResolvedPolicy, SetEntry};
use rustc_hash::FxHashMap;
use std::collections::HashMap;

/// One side of a resolved map for the matrix: its direction state and the
/// entries of that direction, grouped by peer set (entries of one rule
/// entry, and of rule entries with equal peers, share one interned set:
/// one membership test for all of them).
pub(crate) struct Side<'p, 'r> {
    pub(crate) state: &'p DirectionState<'r>,
    pub(crate) by_set: Vec<(&'p PeerSet, Vec<&'p SetEntry<'r>>)>,
}

pub(crate) fn side<'p, 'r>(p: &'p ResolvedPolicy<'r>, dir: Direction) -> Side<'p, 'r> {
    let mut index: FxHashMap<*const PeerSet, usize> = FxHashMap::default();
    let mut by_set: Vec<(&PeerSet, Vec<&SetEntry>)> = Vec::new();
    for e in p.entries.iter().filter(|e| e.direction == dir) {
        let set: &PeerSet = &e.peers;
        let i = *index.entry(std::ptr::from_ref(set)).or_insert_with(|| {
            by_set.push((set, Vec::new()));
            by_set.len() - 1
        });
        if let Some((_, v)) = by_set.get_mut(i) {
            v.push(e);
        }
    }
    Side {
        state: p.state(dir),
        by_set,
    }
}

/// The entries of `s` whose peer set holds `peer`, into `out`.
fn holding<'p, 'r>(s: Option<&Side<'p, 'r>>, peer: PeerRef, out: &mut Vec<&'p SetEntry<'r>>) {
    out.clear();
    if let Some(s) = s {
        for (set, entries) in &s.by_set {
            if set.contains(peer) {
                out.extend_from_slice(entries);
            }
        }
    }
}

/// The verdict of one side (absent: no policy, allows) for the peer whose
/// entries are `held`, at one port: (allowed, proxied, denied), the
/// deciding rules appended to `origins` when given. Shared by the matrix
/// and the connectivity delta.
pub(crate) fn side_verdict<'p, 'r>(
    state: Option<&DirectionState<'r>>,
    held: &[&'p SetEntry<'r>],
    peer_is_host: bool,
    proto: Protocol,
    port: u16,
    scratch: &mut Vec<&'p SetEntry<'r>>,
    origins: Option<&mut Vec<&'r Origin>>,
) -> (bool, bool, bool) {
    let Some(state) = state else {
        return (true, false, false);
    };
    scratch.clear();
    scratch.extend(held.iter().copied().filter(|e| e.covers(proto, port)));
    decide_with(state, peer_is_host, scratch, origins)
}

/// The port classes of `proto` that `entries`' ranges cut: `bps` gets
/// their first ports, sorted, from 0 (read them with [`port_class`]).
/// Shared by the matrix and the connectivity delta.
pub(crate) fn port_classes<'e, 'r: 'e>(
    proto: Protocol,
    entries: impl IntoIterator<Item = &'e SetEntry<'r>>,
    bps: &mut Vec<u32>,
) {
    bps.clear();
    bps.push(0);
    for e in entries {
        if e.protocol.covers(proto) {
            bps.push(u32::from(e.from_port));
            bps.push(u32::from(e.to_port) + 1);
        }
    }
    bps.sort_unstable();
    bps.dedup();
    bps.retain(|p| *p <= 65535);
}

/// Class `i` of [`port_classes`] as an inclusive port range (the last
/// class ends at 65535).
pub(crate) fn port_class(bps: &[u32], i: usize) -> Option<(u16, u16)> {
    let start = *bps.get(i)?;
    let end = bps.get(i + 1).map_or(65535, |n| n - 1);
    Some((u16::try_from(start).ok()?, u16::try_from(end).ok()?))
}

/// Everything the cells are computed from: the resolved maps of every
/// identity (and of the reserved identities that are local endpoints),
/// their sides grouped by peer set, and the node of every dense peer
/// number. Built once per matrix; [`Ctx::cell`] reads it.
pub(crate) struct Ctx<'p, 'r> {
    pub(crate) policies: &'p [ResolvedPolicy<'r>],
    pub(crate) ingress: Vec<Side<'p, 'r>>,
    pub(crate) egress: Vec<Side<'p, 'r>>,
    /// The node of every peer (`None`: not shown, e.g. a world identity
    /// that cannot occur in this cluster).
    pub(crate) nodes: Vec<Option<Node>>,
    /// The policy (index into `policies`) of each identity index.
    pub(crate) policy_of: Vec<Option<usize>>,
    pub(crate) host: Option<u32>,
    /// Identities (peers `0..n`); CIDR selections follow.
    pub(crate) n: usize,
}

/// Reusable buffers of [`Ctx::cell`], and the text of each rule.
#[derive(Default)]
pub(crate) struct Scratch<'p, 'r> {
    to_held: Vec<&'p SetEntry<'r>>,
    from_held: Vec<&'p SetEntry<'r>>,
    scratch: Vec<&'p SetEntry<'r>>,
    origins: Vec<&'r Origin>,
    bps: Vec<u32>,
    rule_text: HashMap<usize, String>,
    /// Cells without their rules (not collected, `rules` left empty).
    pub(crate) without_rules: bool,
}

/// What a connected pair gets: ports, flags and the deciding rules.
pub(crate) struct CellData {
    pub(crate) ports: Vec<PortRange>,
    pub(crate) proxied: bool,
    pub(crate) deny_decided: bool,
    pub(crate) rules: Vec<String>,
}

impl<'p, 'r> Ctx<'p, 'r> {
    pub(crate) fn new(engine: &Engine, policies: &'p [ResolvedPolicy<'r>]) -> Ctx<'p, 'r> {
        let (nodes, host, n) = Self::nodes(engine, policies.first().map(ResolvedPolicy::names));
        // The policy of each identity index, and its two sides.
        let mut policy_of: Vec<Option<usize>> = vec![None; n];
        for (pi, p) in policies.iter().enumerate() {
            if let Some(slot) = p.index.and_then(|i| policy_of.get_mut(i as usize)) {
                *slot = Some(pi);
            }
        }
        Ctx {
            policies,
            ingress: policies
                .iter()
                .map(|p| side(p, Direction::Ingress))
                .collect(),
            egress: policies
                .iter()
                .map(|p| side(p, Direction::Egress))
                .collect(),
            nodes,
            policy_of,
            host,
            n,
        }
    }

    /// The node of every dense peer number, the host's peer number and
    /// the number of identities, from the names the maps carry (`None`:
    /// no maps).
    pub(crate) fn nodes(
        engine: &Engine,
        names: Option<&PeerNames>,
    ) -> (Vec<Option<Node>>, Option<u32>, usize) {
        let n = engine.identities.len();
        let ncidr = names.map_or(0, PeerNames::cidr_count);
        let host = names.and_then(PeerNames::host);
        // Node of every peer.
        let mut nodes: Vec<Option<Node>> = vec![None; n + ncidr];
        for ep in engine.endpoints.iter().flatten() {
            let (Some(w), Some(id), Some(slot)) = (
                engine.inv.workloads.get(ep.workload),
                engine.identities.get(ep.identity),
                nodes.get_mut(ep.identity),
            ) else {
                continue;
            };
            let wname = w.display_name();
            let node = slot.get_or_insert_with(|| Node {
                name: String::new(),
                namespace: Some(w.namespace.clone()),
                identity: Some(id.id),
            });
            if node.name.is_empty() {
                node.name = wname;
            } else if !node.name.split(", ").any(|n| n == wname) {
                node.name = format!("{}, {wname}", node.name);
            }
        }
        // World identities that cannot occur in this cluster (world-ipv4/ipv6 in
        // a single-stack cluster, plain world in a dual-stack one) are left out.
        let dual = engine.inv.cluster.dual_stack;
        let impossible = |n: &str| {
            if dual {
                n == "world"
            } else {
                n == "world-ipv4" || n == "world-ipv6"
            }
        };
        for (id, slot) in engine.identities.iter().zip(nodes.iter_mut()) {
            if let Some(name) = id.reserved_name().filter(|n| !impossible(n)) {
                *slot = Some(Node {
                    name: format!("reserved:{name}"),
                    namespace: None,
                    identity: Some(id.id),
                });
            }
        }
        if let Some(names) = names {
            for (c, slot) in nodes.iter_mut().skip(n).enumerate() {
                let text = names
                    .cidr(u32::try_from(c).unwrap_or(u32::MAX))
                    .unwrap_or_default();
                *slot = Some(Node {
                    name: format!("cidr {text}"),
                    namespace: None,
                    identity: None,
                });
            }
        }
        (nodes, host, n)
    }

    pub(crate) fn is_host(&self, q: usize) -> bool {
        self.host.is_some_and(|h| h as usize == q)
    }

    /// The side of peer `q` in `sides` (`None`: no policy, allows).
    pub(crate) fn side_of<'s>(
        &self,
        q: usize,
        sides: &'s [Side<'p, 'r>],
    ) -> Option<&'s Side<'p, 'r>> {
        self.policy_of
            .get(q)
            .copied()
            .flatten()
            .and_then(|pi| sides.get(pi))
    }

    /// The cell of peers `from` -> `to`: `None` when nothing is delivered.
    pub(crate) fn cell(&self, from: usize, to: usize, s: &mut Scratch<'p, 'r>) -> Option<CellData> {
        let to_side = self.side_of(to, &self.ingress);
        let from_side = self.side_of(from, &self.egress);
        let (from_ref, to_ref) = (peer_of(from, self.n), peer_of(to, self.n));
        holding(to_side, from_ref, &mut s.to_held);
        holding(from_side, to_ref, &mut s.from_held);
        self.cell_of_held(from, to, s)
    }

    /// [`Ctx::cell`] when the positions (ascending) of the peer sets that
    /// hold the other end are known: `held.0` in `to`'s ingress side (sets
    /// holding `from`), `held.1` in `from`'s egress side.
    pub(crate) fn cell_held(
        &self,
        from: usize,
        to: usize,
        held: (&[u32], &[u32]),
        s: &mut Scratch<'p, 'r>,
    ) -> Option<CellData> {
        let fill = |side: Option<&Side<'p, 'r>>, at: &[u32], out: &mut Vec<&'p SetEntry<'r>>| {
            out.clear();
            for &i in at {
                if let Some((_, entries)) = side.and_then(|sd| sd.by_set.get(i as usize)) {
                    out.extend_from_slice(entries);
                }
            }
        };
        fill(self.side_of(to, &self.ingress), held.0, &mut s.to_held);
        fill(self.side_of(from, &self.egress), held.1, &mut s.from_held);
        self.cell_of_held(from, to, s)
    }

    /// The cell of `from` -> `to` from the held entries in `s`.
    fn cell_of_held(&self, from: usize, to: usize, s: &mut Scratch<'p, 'r>) -> Option<CellData> {
        let to_side = self.side_of(to, &self.ingress);
        let from_side = self.side_of(from, &self.egress);
        let (from_host, to_host) = (self.is_host(from), self.is_host(to));
        // Nothing can be allowed when an enforced default-deny side has no
        // allow entry for the peer.
        let may_allow = |side: Option<&Side>, held: &[&SetEntry], peer_host: bool| match side {
            Some(side) if side.state.enforced && side.state.default_deny => {
                (side.state.allow_localhost && peer_host)
                    || held.iter().any(|e| e.decision == Decision::Allowed)
            }
            _ => true,
        };
        if !may_allow(to_side, &s.to_held, from_host)
            || !may_allow(from_side, &s.from_held, to_host)
        {
            return None;
        }
        let mut ports = Vec::new();
        let (mut proxied, mut denied) = (false, false);
        s.origins.clear();
        for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            port_classes(
                proto,
                s.to_held.iter().chain(&s.from_held).copied(),
                &mut s.bps,
            );
            let mut open: Option<(u16, u16)> = None;
            for i in 0..s.bps.len() {
                let Some((a, b)) = port_class(&s.bps, i) else {
                    continue;
                };
                let mark = s.origins.len();
                let (ia, ip, idn) = side_verdict(
                    to_side.map(|sd| sd.state),
                    &s.to_held,
                    from_host,
                    proto,
                    a,
                    &mut s.scratch,
                    (!s.without_rules).then_some(&mut s.origins),
                );
                let (ea, ep, edn) = side_verdict(
                    from_side.map(|sd| sd.state),
                    &s.from_held,
                    to_host,
                    proto,
                    a,
                    &mut s.scratch,
                    (!s.without_rules).then_some(&mut s.origins),
                );
                denied |= idn || edn;
                let allowed = ia && ea;
                if !(allowed || idn || edn) {
                    s.origins.truncate(mark);
                }
                if allowed {
                    proxied |= ip || ep;
                    open = Some(match open {
                        Some((x, _)) => (x, b),
                        None => (a, b),
                    });
                } else if let Some((x, y)) = open.take() {
                    ports.push(PortRange {
                        protocol: proto,
                        from: x,
                        to: y,
                    });
                }
            }
            if let Some((x, y)) = open {
                ports.push(PortRange {
                    protocol: proto,
                    from: x,
                    to: y,
                });
            }
        }
        if ports.is_empty() {
            return None;
        }
        let origins = &mut s.origins;
        origins.sort_by_key(|o| std::ptr::from_ref::<Origin>(*o) as usize);
        origins.dedup_by_key(|o| std::ptr::from_ref::<Origin>(*o) as usize);
        let mut rules: Vec<String> = origins
            .iter()
            .map(|o| {
                s.rule_text
                    .entry(std::ptr::from_ref::<Origin>(*o) as usize)
                    .or_insert_with(|| format!("{} {} ({})", o.policy.short(), o.path, o.location))
                    .clone()
            })
            .collect();
        rules.sort();
        rules.dedup();
        Some(CellData {
            ports,
            proxied,
            deny_decided: denied,
            rules,
        })
    }

    /// Identities with no ingress / no egress policy (as listed, sorted).
    pub(crate) fn open_lists(&self, opts: &MatrixOptions) -> (Vec<String>, Vec<String>) {
        let mut open_ingress: Vec<String> = Vec::new();
        let mut open_egress: Vec<String> = Vec::new();
        for p in self.policies {
            if matches!(
                p.identity.reserved_name(),
                Some("health" | "init" | "unmanaged")
            ) {
                continue;
            }
            let node = p
                .index
                .and_then(|i| self.nodes.get(i as usize))
                .and_then(Option::as_ref);
            let name = node.map(|n| n.name.clone()).unwrap_or_default();
            if !node_matches(opts, node) {
                continue;
            }
            if !p.ingress.enforced {
                open_ingress.push(name.clone());
            }
            if !p.egress.enforced {
                open_egress.push(name);
            }
        }
        open_ingress.sort();
        open_egress.sort();
        (open_ingress, open_egress)
    }
}
