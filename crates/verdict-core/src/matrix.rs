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

use crate::engine::{Decision, Engine};
use crate::policy::{first_decider, Direction, Origin, Protocol};
use crate::resolved::{resolve, resolve_all, MapKey, MapValue, PeerKey, ResolvedPolicy};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A node of the matrix: an identity, shown by its workloads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Node {
    /// `ns/kind/name` of the workloads (joined), or `reserved:world`, `cidr 10.0.0.0/8`.
    pub name: String,
    pub namespace: Option<String>,
    pub identity: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

#[derive(Default)]
struct Side<'r> {
    enforced: bool,
    default_deny: bool,
    allow_localhost: bool,
    by_peer: HashMap<PK, Vec<(&'r MapKey, &'r MapValue<'r>)>>,
}

fn side<'r>(p: &'r ResolvedPolicy<'r>, dir: Direction) -> Side<'r> {
    let st = if dir == Direction::Ingress {
        &p.ingress
    } else {
        &p.egress
    };
    let mut by_peer: HashMap<PK, Vec<(&MapKey, &MapValue)>> = HashMap::new();
    for (k, v) in p.entries.iter().filter(|(k, _)| k.direction == dir) {
        by_peer.entry(sort_key(&k.peer)).or_default().push((k, v));
    }
    Side {
        enforced: st.enforced,
        default_deny: st.default_deny,
        allow_localhost: st.allow_localhost,
        by_peer,
    }
}

/// The verdict of one side for one peer at one port: (allowed, proxied,
/// denied by a rule); the deciding origins are pushed to `origins`. A side
/// that is absent or not enforced allows.
fn decide<'a>(
    s: Option<&Side<'a>>,
    peer: &PK,
    proto: Protocol,
    port: u16,
    origins: &mut Vec<&'a Origin>,
) -> (bool, bool, bool) {
    let Some(s) = s.filter(|s| s.enforced) else {
        return (true, false, false);
    };
    let entries = s.by_peer.get(peer).map(Vec::as_slice).unwrap_or(&[]);
    let covers = |k: &MapKey| k.protocol.covers(proto) && k.from_port <= port && port <= k.to_port;
    // Tiers in order (Admin, ordinary, Baseline), by level; at one level
    // a deny before an allow before a pass; a pass skips its tier.
    let mut matching: Vec<&(&MapKey, &MapValue)> =
        entries.iter().filter(|(k, _)| covers(k)).collect();
    let rank = |v: &MapValue| {
        let action = match (v.decision, v.pass) {
            (Decision::Denied, _) => 0,
            (_, false) => 1,
            (_, true) => 2,
        };
        (v.tier, v.level, action)
    };
    let (decider, _) = first_decider(&mut matching, |(_, v)| rank(v));
    if let Some(d) = decider {
        let mut proxied = false;
        let denied = d.2 == 0;
        for (_, v) in matching.iter().filter(|(_, v)| rank(v) == d) {
            proxied |= !v.proxied.is_empty();
            origins.extend(v.origins.iter().copied());
        }
        return if denied {
            (false, false, true)
        } else {
            (true, proxied, false)
        };
    }
    if s.default_deny && s.allow_localhost && *peer == host_key() {
        return (true, false, false);
    }
    (!s.default_deny, false, false)
}

/// The sort key of the node's identity (`reserved:host`, number 1).
fn host_key() -> PK {
    (0, 1, String::new())
}

fn breakpoints(sides: &[Option<&Side>], peers: &[&PK], proto: Protocol) -> Vec<u32> {
    let mut set: BTreeSet<u32> = BTreeSet::from([0]);
    for (s, peer) in sides.iter().zip(peers) {
        let Some(s) = s else { continue };
        for (k, _) in s.by_peer.get(*peer).map(Vec::as_slice).unwrap_or(&[]) {
            if k.protocol.covers(proto) {
                set.insert(u32::from(k.from_port));
                set.insert(u32::from(k.to_port) + 1);
            }
        }
    }
    set.into_iter().filter(|p| *p <= 65535).collect()
}

/// Options of the matrix.
#[derive(Debug, Clone, Default)]
pub struct MatrixOptions {
    pub namespace: Option<String>,
    pub workload: Option<String>,
}

/// Computes the matrix of every identity.
pub fn matrix(engine: &Engine, opts: &MatrixOptions) -> Matrix {
    let mut policies = resolve_all(engine);
    // Reserved identities that are local endpoints enforce policy too.
    for name in ["ingress", "health", "init", "unmanaged"] {
        if let Ok(p) = engine.party(name) {
            policies.push(resolve(engine, &p));
        }
    }
    // Node of every identity.
    let mut names: BTreeMap<u32, Node> = BTreeMap::new();
    for ep in engine.endpoints.iter().flatten() {
        let (Some(w), Some(id)) = (
            engine.inv.workloads.get(ep.workload),
            engine.identities.get(ep.identity),
        ) else {
            continue;
        };
        let wname = w.display_name();
        let node = names.entry(id.id).or_insert_with(|| Node {
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
    for id in &engine.identities {
        if let Some(n) = id.reserved_name() {
            if !impossible(n) {
                names.insert(
                    id.id,
                    Node {
                        name: format!("reserved:{n}"),
                        namespace: None,
                        identity: Some(id.id),
                    },
                );
            }
        }
    }
    let ingress_sides: HashMap<u32, Side> = policies
        .iter()
        .map(|p| (p.identity.id, side(p, Direction::Ingress)))
        .collect();
    let egress_sides: HashMap<u32, Side> = policies
        .iter()
        .map(|p| (p.identity.id, side(p, Direction::Egress)))
        .collect();
    // Candidate pairs: every peer named by an enforced side.
    let mut pairs: BTreeSet<(PK, PK)> = BTreeSet::new();
    for p in &policies {
        let me: PK = (0, p.identity.id, String::new());
        // Only allow entries can make a cell (a deny alone allows nothing).
        for (k, _) in p
            .entries
            .iter()
            .filter(|(_, v)| v.decision == Decision::Allowed)
        {
            match k.direction {
                Direction::Ingress if p.ingress.enforced => {
                    pairs.insert((sort_key(&k.peer), me.clone()));
                }
                Direction::Egress if p.egress.enforced => {
                    pairs.insert((me.clone(), sort_key(&k.peer)));
                }
                _ => {}
            }
        }
    }
    // allow-localhost: the node reaches endpoints whose rules do not decide.
    for p in policies.iter().filter(|p| p.ingress.allow_localhost) {
        pairs.insert((host_key(), (0, p.identity.id, String::new())));
    }
    // A side enforced without default deny admits every peer it does not
    // deny: pair it with every identity.
    let all: Vec<u32> = names.keys().copied().collect();
    for p in &policies {
        let me: PK = (0, p.identity.id, String::new());
        for &other in &all {
            let o: PK = (0, other, String::new());
            if p.ingress.enforced && !p.ingress.default_deny {
                pairs.insert((o.clone(), me.clone()));
            }
            if p.egress.enforced && !p.egress.default_deny {
                pairs.insert((me.clone(), o));
            }
        }
    }
    let node_of = |pk: &PK| -> Node {
        match pk {
            (0, id, _) => names.get(id).cloned().unwrap_or(Node {
                name: format!("identity {id}"),
                namespace: None,
                identity: Some(*id),
            }),
            (_, _, cidr) => Node {
                name: format!("cidr {cidr}"),
                namespace: None,
                identity: None,
            },
        }
    };
    let mut cells = Vec::new();
    for (from_pk, to_pk) in pairs {
        let id_of = |pk: &PK| (pk.0 == 0).then_some(pk.1);
        let (from_id, to_id) = (id_of(&from_pk), id_of(&to_pk));
        if [from_id, to_id]
            .iter()
            .flatten()
            .any(|i| !names.contains_key(i))
        {
            continue;
        }
        let to_side = to_id.and_then(|i| ingress_sides.get(&i));
        let from_side = from_id.and_then(|i| egress_sides.get(&i));
        // Nothing can be allowed when an enforced default-deny side has no
        // allow entry for the peer.
        let may_allow = |s: Option<&Side>, peer: &PK| match s {
            Some(s) if s.enforced && s.default_deny => {
                (s.allow_localhost && *peer == host_key())
                    || s.by_peer
                        .get(peer)
                        .is_some_and(|es| es.iter().any(|(_, v)| v.decision == Decision::Allowed))
            }
            _ => true,
        };
        if !may_allow(to_side, &from_pk) || !may_allow(from_side, &to_pk) {
            continue;
        }
        let mut ports = Vec::new();
        let (mut proxied, mut denied) = (false, false);
        let mut origins: Vec<&Origin> = Vec::new();
        for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            let bps = breakpoints(&[to_side, from_side], &[&from_pk, &to_pk], proto);
            let mut open: Option<(u16, u16)> = None;
            for (i, &start) in bps.iter().enumerate() {
                let end = bps.get(i + 1).map_or(65535, |n| n - 1);
                let (Ok(s), Ok(e)) = (u16::try_from(start), u16::try_from(end)) else {
                    continue;
                };
                let mark = origins.len();
                let (ia, ip, idn) = decide(to_side, &from_pk, proto, s, &mut origins);
                let (ea, ep, edn) = decide(from_side, &to_pk, proto, s, &mut origins);
                denied |= idn || edn;
                let allowed = ia && ea;
                if !(allowed || idn || edn) {
                    origins.truncate(mark);
                }
                if allowed {
                    proxied |= ip || ep;
                    open = Some(match open {
                        Some((a, _)) => (a, e),
                        None => (s, e),
                    });
                } else if let Some((a, b)) = open.take() {
                    ports.push(PortRange {
                        protocol: proto,
                        from: a,
                        to: b,
                    });
                }
            }
            if let Some((a, b)) = open {
                ports.push(PortRange {
                    protocol: proto,
                    from: a,
                    to: b,
                });
            }
        }
        if ports.is_empty() {
            continue;
        }
        let cell = Cell {
            from: node_of(&from_pk),
            to: node_of(&to_pk),
            ports,
            proxied,
            deny_decided: denied,
            rules: {
                origins.sort_by_key(|o| std::ptr::from_ref::<Origin>(*o) as usize);
                origins.dedup_by_key(|o| std::ptr::from_ref::<Origin>(*o) as usize);
                let mut r: Vec<String> = origins
                    .iter()
                    .map(|o| format!("{} {} ({})", o.policy.short(), o.path, o.location))
                    .collect();
                r.sort();
                r.dedup();
                r
            },
        };
        if keep(opts, &cell) && !cell.ports.is_empty() {
            cells.push(cell);
        }
    }
    cells.sort_by(|a, b| (&a.from.name, &a.to.name).cmp(&(&b.from.name, &b.to.name)));
    let mut open_ingress: Vec<String> = Vec::new();
    let mut open_egress: Vec<String> = Vec::new();
    for p in &policies {
        if matches!(
            p.identity.reserved_name(),
            Some("health" | "init" | "unmanaged")
        ) {
            continue;
        }
        let name = names
            .get(&p.identity.id)
            .map(|n| n.name.clone())
            .unwrap_or_default();
        if !node_matches(opts, names.get(&p.identity.id)) {
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
    Matrix {
        cells,
        open_ingress,
        open_egress,
        identities: policies.len(),
    }
}

fn node_matches(opts: &MatrixOptions, n: Option<&Node>) -> bool {
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

/// A peer by identity number, or by CIDR text.
type PK = (u8, u32, String);

fn sort_key(p: &PeerKey) -> PK {
    match p {
        PeerKey::Identity { id, .. } => (0, *id, String::new()),
        PeerKey::Cidr { cidr } => (1, 0, cidr.clone()),
    }
}
