//! The connectivity that changes between two engines over the same
//! workloads (an input, and the input with policies added, removed or
//! replaced), computed only where it can change: linear in the changed
//! rules and what they name, not in identities².
//!
//! A side's verdict for a peer depends on the subject's state (enforced,
//! default deny, allow-localhost, `fromRequires`) and on the entries that
//! hold the peer (`resolved::decide`). So when some rules change:
//!
//! * only the subjects of changed rules change, in the directions the
//!   rules apply to;
//! * for such a subject, a peer's verdict can change only if an entry of a
//!   changed rule holds it, or the peer is the host (allow-localhost);
//!   unless peers held by no entry become allowed (the side is no longer
//!   enforced, or no longer default deny) or a changed rule carries
//!   `fromRequires`/`toRequires` (which narrow every entry of the
//!   subject): then every party is compared;
//! * the pairs to compare are (peer -> subject) for a changed ingress side
//!   and (subject -> peer) for a changed egress side.
//!
//! Each pair is computed from resolved maps as the matrix computes a cell
//! (the entries holding the peer, the port classes they cut, Cilium's
//! order through [`decide`]), before and after. Pairs with a party that
//! is not an identity of the cluster (a client CIDR) or with the host
//! under host policies are evaluated flow by flow with
//! [`Engine::side`](crate::engine::Engine::side) over the cluster-wide port
//! classes, as [`crate::connectivity::connectivity`] does for every pair.

use crate::connectivity::{
    added, breakpoints, conn, pair_connectivity, parties, Breakpoints, Conn,
};
use crate::engine::{Engine, Party};
use crate::identity::IdentityKind;
use crate::matrix::{port_class, port_classes, side_verdict};
use crate::policy::{Direction, Entry, Origin, PeerKind, Protocol, Rule, Subject};
use crate::resolved::SetEntry;
use crate::resolved::{DirectionState, PeerRef, PeerSet, ResolvedPolicy, Resolver, SelectorCache};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

mod maps;
use maps::{unheld, Maps, Source, Wanted};

/// What changes between the two engines.
#[derive(Debug, Default)]
pub struct Delta {
    /// Connections allowed after and not before, port range by port range
    /// (sorted).
    pub added: Vec<Conn>,
    /// Local endpoint sides (party name, direction) that were open before
    /// (no policy, or no default deny) and are in default deny after:
    /// whatever their rules do not allow is closed (sorted).
    pub newly_default_deny: Vec<(String, Direction)>,
    /// Party pairs compared (the work done; see the bench counters).
    pub pairs: usize,
}

/// The connectivity `after` adds to `before` between the parties of
/// [`parties`] (with `extra`, e.g. client CIDRs).
pub fn delta(before: &Engine, after: &Engine, extra: &[Party]) -> Delta {
    let pb = parties(before, extra);
    let pa = parties(after, extra);
    let same = before.identities.len() == after.identities.len()
        && before
            .identities
            .iter()
            .zip(&after.identities)
            .all(|(a, b)| a.id == b.id && a.labels == b.labels)
        && pb.len() == pa.len()
        && pb.iter().zip(&pa).all(|(a, b)| a.name == b.name);
    if !same {
        // Different workloads: nothing is shared, compare every pair.
        return everything(before, after, &pb, &pa);
    }
    Delta::between(before, after, &pb, &pa)
}

/// Every pair of both engines, flow by flow (workloads differ).
fn everything(before: &Engine, after: &Engine, pb: &[Party], pa: &[Party]) -> Delta {
    let cb = crate::connectivity::connectivity(before, pb);
    let ca = crate::connectivity::connectivity(after, pa);
    let mut newly_default_deny = Vec::new();
    for p in pa.iter().filter(|p| p.enforced) {
        let was = pb.iter().find(|b| b.name == p.name);
        for dir in Direction::BOTH {
            let closed_after = side_state(after, p, dir);
            let closed_before = was.is_some_and(|b| side_state(before, b, dir));
            if closed_after && !closed_before {
                newly_default_deny.push((p.name.clone(), dir));
            }
        }
    }
    newly_default_deny.sort();
    Delta {
        added: added(&cb, &ca),
        newly_default_deny,
        pairs: pb.len() * pb.len() + pa.len() * pa.len(),
    }
}

/// Whether `party`'s side in `dir` is enforced with default deny.
fn side_state(engine: &Engine, party: &Party, dir: Direction) -> bool {
    let forced = engine.forced_default_deny(&party.identity).is_some();
    let never = engine.inv.cluster.policy_enforcement == crate::settings::PolicyEnforcement::Never;
    let active: Vec<&Rule> = engine
        .selecting_rules(&party.identity)
        .filter(|r| r.applies_to(dir))
        .collect();
    !never && (forced || active.iter().any(|r| r.default_deny[dir.index()]))
}

/// Rules of `mine` that `other` does not have (equal content and origin).
fn changed_rules<'a>(mine: &Engine<'a>, other: &Engine) -> Vec<&'a Rule> {
    let mut by_origin: HashMap<String, Vec<&Rule>> = HashMap::new();
    for (_, r) in &other.rules {
        by_origin.entry(r.origin.to_string()).or_default().push(r);
    }
    mine.rules
        .iter()
        .map(|(_, r)| *r)
        .filter(|r| {
            !by_origin
                .get(&r.origin.to_string())
                .is_some_and(|v| v.contains(r))
        })
        .collect()
}

/// Whether an entry of `r` in `dir` may hold a party that is not an
/// identity of the cluster (a client CIDR with labels `labels`).
fn may_hold_cidr(r: &Rule, dir: Direction, cidr_parties: &[&Party]) -> bool {
    r.entries
        .iter()
        .filter(|e| e.direction == dir)
        .flat_map(|e| &e.peers)
        .any(|p| match &p.kind {
            PeerKind::Cidr { .. } => true,
            PeerKind::Selectors { selectors } => selectors
                .iter()
                .any(|s| cidr_parties.iter().any(|c| s.matches(&c.identity.labels))),
            PeerKind::Unevaluable { .. } => false,
        })
}

impl Delta {
    fn between(before: &Engine, after: &Engine, pb: &[Party], pa: &[Party]) -> Delta {
        let n = before.identities.len();
        // Identity index of each party (None: a client CIDR); the first
        // identity with that number and labels, through a map by number.
        let mut by_id: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, id) in before.identities.iter().enumerate() {
            by_id.entry(id.id).or_default().push(i);
        }
        let ident: Vec<Option<usize>> = pb
            .iter()
            .map(|p| match p.identity.kind {
                IdentityKind::Cidr(_) => None,
                _ => by_id.get(&p.identity.id).and_then(|v| {
                    v.iter().copied().find(|&i| {
                        before
                            .identities
                            .get(i)
                            .is_some_and(|x| x.labels == p.identity.labels)
                    })
                }),
            })
            .collect();
        let mut party_of: Vec<Option<usize>> = vec![None; n];
        for (pi, i) in ident.iter().enumerate() {
            if let Some(slot) = i.and_then(|i| party_of.get_mut(i)) {
                slot.get_or_insert(pi);
            }
        }
        let cidr_parties: Vec<usize> = (0..pb.len())
            .filter(|&pi| ident.get(pi).copied().flatten().is_none())
            .collect();
        let cidr_refs: Vec<&Party> = cidr_parties.iter().filter_map(|&i| pb.get(i)).collect();
        let host_ident = before
            .identities
            .iter()
            .position(|i| i.reserved_name() == Some("host"));
        let host_party = host_ident.and_then(|h| party_of.get(h).copied().flatten());
        // The host under host policies is evaluated flow by flow.
        let host_enforced = host_party.is_some_and(|h| {
            pb.get(h).is_some_and(|p| p.enforced) || pa.get(h).is_some_and(|p| p.enforced)
        });

        let rb = changed_rules(before, after);
        let ra = changed_rules(after, before);
        let origins: HashSet<*const Origin> = rb
            .iter()
            .chain(&ra)
            .flat_map(|r| &r.entries)
            .map(|e| std::sync::Arc::as_ptr(&e.origin))
            .collect();
        let requires = |dir: Direction| {
            rb.iter()
                .chain(&ra)
                .flat_map(|r| &r.entries)
                .any(|e| e.direction == dir && !e.requires.is_empty())
        };
        let requires = [requires(Direction::Ingress), requires(Direction::Egress)];
        // Changed sides: (party, direction) -> whether a changed rule may
        // hold a client CIDR.
        let mut changed: BTreeMap<(usize, Direction), bool> = BTreeMap::new();
        let mut cache = SelectorCache::new(&after.identities);
        for r in rb.iter().chain(&ra) {
            let subjects: Vec<usize> = match &r.subject {
                Subject::Endpoints(sel) => cache
                    .select(sel)
                    .iter()
                    .map(|&i| i as usize)
                    .filter(|&i| Some(i) != host_ident)
                    .collect(),
                Subject::Nodes(_) => host_ident.into_iter().collect(),
            };
            for dir in Direction::BOTH.into_iter().filter(|d| r.applies_to(*d)) {
                let cidr = !cidr_refs.is_empty() && may_hold_cidr(r, dir, &cidr_refs);
                for &i in &subjects {
                    if let Some(pi) = party_of.get(i).copied().flatten() {
                        *changed.entry((pi, dir)).or_default() |= cidr;
                    }
                }
            }
        }
        let subjects: BTreeSet<usize> = changed.keys().map(|(pi, _)| *pi).collect();
        // The subjects' states, and the entries of changed rules (which
        // name the peers to compare); the other entries once the pairs are
        // known.
        let (src_b, src_a) = (
            Source::new(before, pb, &subjects),
            Source::new(after, pa, &subjects),
        );
        let changed_entry = |_: usize, _: Direction, e: &Entry, _: &PeerSet| {
            origins.contains(&std::sync::Arc::as_ptr(&e.origin))
        };
        let (maps_b, maps_a) = (src_b.maps(pb, changed_entry), src_a.maps(pa, changed_entry));

        // The pairs to compare.
        let all: Vec<usize> = (0..pb.len()).collect();
        let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut newly_default_deny = Vec::new();
        let mut peers: BTreeSet<usize> = BTreeSet::new();
        for (&(x, dir), &cidr) in &changed {
            let (Some(mb), Some(ma)) = (maps_b.of.get(&x), maps_a.of.get(&x)) else {
                continue;
            };
            let (sb, sa) = (mb.state(dir), ma.state(dir));
            if pa.get(x).is_some_and(|p| p.enforced)
                && !(sb.enforced && sb.default_deny)
                && sa.enforced
                && sa.default_deny
            {
                if let Some(p) = pa.get(x) {
                    newly_default_deny.push((p.name.clone(), dir));
                }
            }
            let loosened = !unheld(sb).0 && unheld(sa).0;
            let every = loosened || requires[dir.index()] || Some(x) == host_party;
            peers.clear();
            if every {
                peers.extend(all.iter().copied());
            } else {
                for m in [mb, ma] {
                    for e in m.entries.iter().filter(|e| {
                        e.direction == dir
                            && e.origins()
                                .any(|o| origins.contains(&std::ptr::from_ref(o)))
                    }) {
                        peers.extend(
                            e.peers
                                .identities()
                                .iter()
                                .filter_map(|&i| party_of.get(i as usize).copied().flatten()),
                        );
                    }
                }
                peers.extend(host_party);
                if cidr {
                    peers.extend(cidr_parties.iter().copied());
                }
            }
            for &p in &peers {
                pairs.insert(match dir {
                    Direction::Ingress => (p, x),
                    Direction::Egress => (x, p),
                });
            }
        }
        newly_default_deny.sort();

        // Maps of the other side of each pair.
        let enforced = |pi: usize| {
            pb.get(pi).is_some_and(|p| p.enforced) || pa.get(pi).is_some_and(|p| p.enforced)
        };
        let by_maps = |(f, t): (usize, usize)| {
            let ok = |pi: usize| {
                ident.get(pi).copied().flatten().is_some()
                    && !(host_enforced && Some(pi) == host_party)
            };
            ok(f) && ok(t)
        };
        let mut partners: BTreeSet<usize> = BTreeSet::new();
        // Pairs read the source's egress entries holding the destination
        // and the destination's ingress entries holding the source: a map
        // keeps the entries whose sets hold one of its pairs' other ends.
        let mut wanted: HashMap<usize, Wanted> = HashMap::new();
        for &(f, t) in pairs.iter().filter(|&&pr| by_maps(pr)) {
            for pi in [f, t] {
                if enforced(pi) && !subjects.contains(&pi) {
                    partners.insert(pi);
                }
            }
            if let (Some(fi), Some(ti)) = (
                ident.get(f).copied().flatten(),
                ident.get(t).copied().flatten(),
            ) {
                let peer = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
                let eg = Direction::Egress.index();
                let ing = Direction::Ingress.index();
                if let Some(v) = wanted.entry(f).or_default().ids.get_mut(eg) {
                    v.push(peer(ti));
                }
                if let Some(v) = wanted.entry(t).or_default().ids.get_mut(ing) {
                    v.push(peer(fi));
                }
            }
        }
        drop((maps_b, maps_a));
        wanted.values_mut().for_each(Wanted::finish);
        let keep = |pi: usize, dir: Direction, _: &Entry, set: &PeerSet| {
            wanted.get(&pi).is_some_and(|w| w.held_by(dir, set))
        };
        let mut maps_b = src_b.maps(pb, keep);
        let mut maps_a = src_a.maps(pa, keep);
        drop((src_b, src_a));
        maps_b
            .of
            .extend(Source::new(before, pb, &partners).maps(pb, keep).of);
        maps_a
            .of
            .extend(Source::new(after, pa, &partners).maps(pa, keep).of);

        let (mut bps_b, mut bps_a): (Option<Breakpoints>, Option<Breakpoints>) = (None, None);
        let mut out = Vec::new();
        let (mut cb, mut ca) = (BTreeSet::new(), BTreeSet::new());
        let mut held = Held::default();
        for &(f, t) in &pairs {
            let (Some(fb), Some(tb), Some(fa), Some(ta)) =
                (pb.get(f), pb.get(t), pa.get(f), pa.get(t))
            else {
                continue;
            };
            cb.clear();
            ca.clear();
            if by_maps((f, t)) {
                let (Some(fi), Some(ti)) = (
                    ident.get(f).copied().flatten(),
                    ident.get(t).copied().flatten(),
                ) else {
                    continue;
                };
                let ends = Ends {
                    f,
                    t,
                    fi,
                    ti,
                    host: host_ident,
                };
                held.pair(&maps_b, fb, tb, &ends, &mut cb);
                held.pair(&maps_a, fa, ta, &ends, &mut ca);
            } else {
                let bb = bps_b.get_or_insert_with(|| breakpoints(before));
                pair_connectivity(before, bb, fb, tb, &mut cb);
                let ba = bps_a.get_or_insert_with(|| breakpoints(after));
                pair_connectivity(after, ba, fa, ta, &mut ca);
            }
            out.extend(added(&cb, &ca));
        }
        out.sort();
        out.dedup();
        Delta {
            added: out,
            newly_default_deny,
            pairs: pairs.len(),
        }
    }
}

/// A pair's ends: party indices (the maps' keys), identity indices (the
/// peers in the maps), and the host's identity index.
struct Ends {
    f: usize,
    t: usize,
    fi: usize,
    ti: usize,
    host: Option<usize>,
}

/// Scratch space for one pair's evaluation from maps.
#[derive(Default)]
struct Held<'p, 'r> {
    eg: Vec<&'p SetEntry<'r>>,
    ing: Vec<&'p SetEntry<'r>>,
    scratch: Vec<&'p SetEntry<'r>>,
    bps: Vec<u32>,
}

impl<'p, 'r> Held<'p, 'r> {
    /// The allowed connections from `from` to `to` read from the maps
    /// (a side of a party that is not a local endpoint allows).
    fn pair(
        &mut self,
        maps: &'p Maps<'r>,
        from: &Party,
        to: &Party,
        ends: &Ends,
        out: &mut BTreeSet<Conn>,
    ) {
        if from.name == to.name || (!to.enforced && !from.enforced) {
            return;
        }
        let peer = |i: usize| PeerRef::Identity(u32::try_from(i).unwrap_or(u32::MAX));
        let eg_map = maps.of.get(&ends.f).filter(|_| from.enforced);
        let ing_map = maps.of.get(&ends.t).filter(|_| to.enforced);
        let hold =
            |m: Option<&'p ResolvedPolicy<'r>>, dir, p: PeerRef, v: &mut Vec<&'p SetEntry<'r>>| {
                v.clear();
                if let Some(m) = m {
                    v.extend(
                        m.entries
                            .iter()
                            .filter(|e| e.direction == dir && e.peers.contains(p)),
                    );
                }
            };
        hold(eg_map, Direction::Egress, peer(ends.ti), &mut self.eg);
        hold(ing_map, Direction::Ingress, peer(ends.fi), &mut self.ing);
        let to_host = Some(ends.ti) == ends.host;
        let from_host = Some(ends.fi) == ends.host;
        for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            port_classes(
                proto,
                self.eg.iter().chain(&self.ing).copied(),
                &mut self.bps,
            );
            let mut open: Option<(u16, u16, bool)> = None;
            for i in 0..self.bps.len() {
                let Some((s, e)) = port_class(&self.bps, i) else {
                    continue;
                };
                let (ea, ep, _) = side_verdict(
                    eg_map.map(|m| &m.egress),
                    &self.eg,
                    to_host,
                    proto,
                    s,
                    &mut self.scratch,
                    None,
                );
                let (ia, ip, _) = side_verdict(
                    ing_map.map(|m| &m.ingress),
                    &self.ing,
                    from_host,
                    proto,
                    s,
                    &mut self.scratch,
                    None,
                );
                let allowed = ea && ia;
                let proxied = ep || ip;
                match (allowed, open) {
                    (true, Some((a, _, px))) if px == proxied => open = Some((a, e, px)),
                    (true, prev) => {
                        if let Some((a, b, px)) = prev {
                            out.insert(conn(from, to, proto, a, b, px));
                        }
                        open = Some((s, e, proxied));
                    }
                    (false, Some((a, b, px))) => {
                        out.insert(conn(from, to, proto, a, b, px));
                        open = None;
                    }
                    (false, None) => {}
                }
            }
            if let Some((a, b, px)) = open {
                out.insert(conn(from, to, proto, a, b, px));
            }
        }
    }
}
