//! `verdict matrix`: who can reach whom, computed from the resolved policy
//! maps of every identity (never pods x pods x ports).
//!
//! ```text
//!  for each destination D with an ingress policy:   sources = peers in D's ingress map
//!  for each source S with an egress policy:         destinations = peers in S's egress map
//!  a cell (S, D) = ports allowed by D's ingress side AND S's egress side,
//!                  over the port classes cut by both sides' entries
//!  pairs where neither side has a policy are unrestricted: summarised, not listed
//! ```

pub mod delta;
pub mod json;
pub mod render;
pub mod summary;

use crate::engine::{Decision, Engine, Party};
use crate::peerset::{PeerRef, PeerSet};
use crate::policy::{Direction, Origin, Protocol};
use crate::resolved::{decide, resolve_all_with, DirectionState, ResolvedPolicy, SetEntry};
use serde::Serialize;
use std::collections::HashMap;

/// A node of the matrix: an identity, shown by its workloads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Node {
    /// `ns/kind/name` of the workloads (joined), or `reserved:world`, `cidr 10.0.0.0/8`.
    pub name: String,
    pub namespace: Option<String>,
    pub identity: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortRange {
    pub protocol: Protocol,
    pub from: u16,
    pub to: u16,
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.protocol,
            crate::policy::port_text(self.from, self.to)
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub from: Node,
    pub to: Node,
    pub ports: Vec<PortRange>,
    /// Some allowed traffic goes through the L7 proxy.
    pub proxied: bool,
    /// A deny rule removes ports that an allow rule would open.
    pub deny_decided: bool,
    /// The rules that allow (or deny) the traffic.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub cells: Vec<Cell>,
    /// Identities with no ingress policy: every source may reach them
    /// unless its own egress policy forbids it.
    pub open_ingress: Vec<String>,
    /// Identities with no egress policy: they may reach every destination
    /// whose ingress policy admits them.
    pub open_egress: Vec<String>,
    pub identities: usize,
}

/// One side of a resolved map for the matrix: its direction state and the
/// entries of that direction, grouped by peer set (entries of one rule
/// entry, and of rule entries with equal peers, share one interned set:
/// one membership test for all of them).
pub(crate) struct Side<'p, 'r> {
    pub(crate) state: &'p DirectionState<'r>,
    pub(crate) by_set: Vec<(&'p PeerSet, Vec<&'p SetEntry<'r>>)>,
}

fn side<'p, 'r>(p: &'p ResolvedPolicy<'r>, dir: Direction) -> Side<'p, 'r> {
    let mut index: HashMap<*const PeerSet, usize> = HashMap::new();
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
/// entries are `held`, at one port.
fn side_verdict<'p, 'r>(
    s: Option<&Side<'p, 'r>>,
    held: &[&'p SetEntry<'r>],
    peer_is_host: bool,
    proto: Protocol,
    port: u16,
    scratch: &mut Vec<&'p SetEntry<'r>>,
    origins: &mut Vec<&'r Origin>,
) -> (bool, bool, bool) {
    let Some(s) = s else {
        return (true, false, false);
    };
    scratch.clear();
    scratch.extend(held.iter().copied().filter(|e| e.covers(proto, port)));
    decide(s.state, peer_is_host, scratch, origins)
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

/// Options of the matrix.
#[derive(Debug, Clone, Default)]
pub struct MatrixOptions {
    pub namespace: Option<String>,
    pub workload: Option<String>,
}

/// Peers are numbered densely: identity index `i` is `i`, CIDR selection
/// of rank `c` is `identities + c`.
pub(crate) fn peer_of(q: usize, n: usize) -> PeerRef {
    let q32 = u32::try_from(q).unwrap_or(u32::MAX);
    match q.checked_sub(n) {
        Some(c) => PeerRef::Cidr(u32::try_from(c).unwrap_or(u32::MAX)),
        None => PeerRef::Identity(q32),
    }
}

fn pair(from: usize, to: usize) -> u64 {
    (u64::try_from(from).unwrap_or(u64::MAX) << 32) | u64::try_from(to).unwrap_or(0)
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
}

/// What a connected pair gets: ports, flags and the deciding rules.
pub(crate) struct CellData {
    pub(crate) ports: Vec<PortRange>,
    pub(crate) proxied: bool,
    pub(crate) deny_decided: bool,
    pub(crate) rules: Vec<String>,
}

/// The maps of every identity and of the reserved identities that are
/// local endpoints.
pub(crate) fn resolve_for_matrix<'a>(engine: &Engine<'a>) -> Vec<ResolvedPolicy<'a>> {
    let extra: Vec<Party> = ["ingress", "health", "init", "unmanaged"]
        .iter()
        .filter_map(|name| engine.party(name).ok())
        .collect();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    resolve_all_with(engine, threads, &extra)
}

impl<'p, 'r> Ctx<'p, 'r> {
    pub(crate) fn new(engine: &Engine, policies: &'p [ResolvedPolicy<'r>]) -> Ctx<'p, 'r> {
        let n = engine.identities.len();
        let ncidr = policies.first().map_or(0, |p| p.names().cidr_count());
        let host = policies.first().and_then(|p| p.names().host());
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
        if let Some(p) = policies.first() {
            for (c, slot) in nodes.iter_mut().skip(n).enumerate() {
                let text = p
                    .names()
                    .cidr(u32::try_from(c).unwrap_or(u32::MAX))
                    .unwrap_or_default();
                *slot = Some(Node {
                    name: format!("cidr {text}"),
                    namespace: None,
                    identity: None,
                });
            }
        }
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
        let (from_host, to_host) = (self.is_host(from), self.is_host(to));
        holding(to_side, from_ref, &mut s.to_held);
        holding(from_side, to_ref, &mut s.from_held);
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
                    to_side,
                    &s.to_held,
                    from_host,
                    proto,
                    a,
                    &mut s.scratch,
                    &mut s.origins,
                );
                let (ea, ep, edn) = side_verdict(
                    from_side,
                    &s.from_held,
                    to_host,
                    proto,
                    a,
                    &mut s.scratch,
                    &mut s.origins,
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

/// Computes the matrix of every identity: summarised by groups of
/// identities that every policy treats alike ([`crate::matrix_summary`]),
/// then expanded to one cell per connected pair.
pub fn matrix(engine: &Engine, opts: &MatrixOptions) -> Matrix {
    crate::matrix_summary::summarise(engine, opts).expand()
}

/// The matrix computed pair by pair: every candidate pair of identities
/// tested on its own. The reference the grouped computation is checked
/// against (tests); its cost grows with the number of connected pairs.
#[doc(hidden)]
pub fn matrix_by_pairs(engine: &Engine, opts: &MatrixOptions) -> Matrix {
    let policies = resolve_for_matrix(engine);
    let ctx = Ctx::new(engine, &policies);
    let pairs = candidate_pairs(
        &policies,
        &ctx.ingress,
        &ctx.egress,
        &ctx.nodes,
        ctx.host,
        ctx.n,
    );
    let mut cells = Vec::new();
    let mut s = Scratch::default();
    for pr in pairs {
        let (from, to) = ((pr >> 32) as usize, (pr & 0xffff_ffff) as usize);
        let (Some(Some(from_node)), Some(Some(to_node))) = (ctx.nodes.get(from), ctx.nodes.get(to))
        else {
            continue;
        };
        let Some(c) = ctx.cell(from, to, &mut s) else {
            continue;
        };
        let cell = Cell {
            from: from_node.clone(),
            to: to_node.clone(),
            ports: c.ports,
            proxied: c.proxied,
            deny_decided: c.deny_decided,
            rules: c.rules,
        };
        if keep(opts, &cell) {
            cells.push(cell);
        }
    }
    cells.sort_by(|a, b| (&a.from.name, &a.to.name).cmp(&(&b.from.name, &b.to.name)));
    let (open_ingress, open_egress) = ctx.open_lists(opts);
    Matrix {
        cells,
        open_ingress,
        open_egress,
        identities: policies.len(),
    }
}

/// Candidate pairs `(from << 32) | to` over dense peer numbers: every peer
/// an enforced side's allow entries name (the union of their peer sets, as
/// a bitset), the node for allow-localhost, and every identity for a side
/// enforced without default deny. Sorted the way users read them
/// (identities by number, then CIDR selections by text), no duplicates.
fn candidate_pairs(
    policies: &[ResolvedPolicy],
    ingress: &[Side],
    egress: &[Side],
    nodes: &[Option<Node>],
    host: Option<u32>,
    n: usize,
) -> Vec<u64> {
    let mut pairs: Vec<u64> = Vec::new();
    let mut union = vec![0u64; n.div_ceil(64)];
    let mut cidrs: Vec<u32> = Vec::new();
    let named: Vec<usize> = (0..n)
        .filter(|&q| nodes.get(q).is_some_and(Option::is_some))
        .collect();
    for ((p, ing), eg) in policies.iter().zip(ingress).zip(egress) {
        let Some(me) = p.index.map(|i| i as usize) else {
            continue;
        };
        for (s, dir) in [(ing, Direction::Ingress), (eg, Direction::Egress)] {
            if !s.state.enforced {
                continue;
            }
            let mk = |q: usize| match dir {
                Direction::Ingress => pair(q, me),
                Direction::Egress => pair(me, q),
            };
            if !s.state.default_deny {
                // Admits every peer it does not deny.
                pairs.extend(named.iter().map(|&q| mk(q)));
            }
            union.fill(0);
            cidrs.clear();
            // Only allow entries can make a cell (a deny alone allows nothing).
            for (set, _) in s
                .by_set
                .iter()
                .filter(|(_, es)| es.iter().any(|e| e.decision == Decision::Allowed))
            {
                for (u, w) in union.iter_mut().zip(set.identity_bits()) {
                    *u |= w;
                }
                cidrs.extend_from_slice(set.cidrs());
            }
            for (wi, &w) in union.iter().enumerate() {
                let mut w = w;
                while w != 0 {
                    let bit = w.trailing_zeros() as usize;
                    w &= w - 1;
                    pairs.push(mk(wi * 64 + bit));
                }
            }
            cidrs.sort_unstable();
            cidrs.dedup();
            pairs.extend(cidrs.iter().map(|&c| mk(n + c as usize)));
        }
        // allow-localhost: the node reaches endpoints whose rules do not decide.
        if let (true, Some(h)) = (p.ingress.allow_localhost, host) {
            pairs.push(pair(h as usize, me));
        }
    }
    // Users read identities by number, CIDR selections by text (rank):
    // sort by the rank of each end in that order.
    let key = |q: usize| -> u64 {
        match nodes
            .get(q)
            .and_then(Option::as_ref)
            .and_then(|n| n.identity)
        {
            Some(id) if q < n => u64::from(id),
            _ => (1 << 32) + u64::try_from(q).unwrap_or(u64::MAX >> 1),
        }
    };
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_unstable_by_key(|&q| key(q));
    let mut rank = vec![0u64; nodes.len()];
    for (r, &q) in order.iter().enumerate() {
        if let Some(slot) = rank.get_mut(q) {
            *slot = u64::try_from(r).unwrap_or(u64::MAX);
        }
    }
    let rank_of = |q: u64| rank.get(usize::try_from(q).unwrap_or(usize::MAX)).copied();
    let unrank = |r: u64| order.get(usize::try_from(r).unwrap_or(usize::MAX)).copied();
    let mut ranked: Vec<u64> = pairs
        .iter()
        .filter_map(|&p| Some((rank_of(p >> 32)? << 32) | rank_of(p & 0xffff_ffff)?))
        .collect();
    ranked.sort_unstable();
    ranked.dedup();
    pairs.clear();
    pairs.extend(
        ranked
            .iter()
            .filter_map(|&r| Some(pair(unrank(r >> 32)?, unrank(r & 0xffff_ffff)?))),
    );
    pairs
}

pub(crate) fn node_matches(opts: &MatrixOptions, n: Option<&Node>) -> bool {
    let Some(n) = n else {
        return opts.namespace.is_none() && opts.workload.is_none();
    };
    opts.namespace
        .as_deref()
        .is_none_or(|ns| n.namespace.as_deref() == Some(ns))
        && opts.workload.as_deref().is_none_or(|w| n.name.contains(w))
}

fn keep(opts: &MatrixOptions, c: &Cell) -> bool {
    node_matches(opts, Some(&c.from)) || node_matches(opts, Some(&c.to))
}
