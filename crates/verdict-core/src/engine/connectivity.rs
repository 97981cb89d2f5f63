//! Who can reach whom: allowed connectivity between every pair of parties,
//! over port-range equivalence classes.
//!
//! The ports of every rule and every container port cut each protocol's
//! port space into intervals inside which no verdict can change; one port
//! per interval is evaluated, and allowed intervals are merged. A flow is
//! delivered when every enforced side allows it.

use crate::engine::{Decision, Engine, Party, SideVerdict};
use crate::policy::{Direction, PortSel, Protocol};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// An allowed connection: from, to, protocol and a port range.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Conn {
    pub from: String,
    pub to: String,
    pub protocol: Protocol,
    pub from_port: u16,
    pub to_port: u16,
    /// Whether an L7 proxy sees the traffic.
    pub proxied: bool,
}

/// The parties connectivity is computed for: one pod per endpoint identity
/// (the first workload with it), the reserved identities a flow can come
/// from or go to, and extra parties (client CIDRs).
pub fn parties(engine: &Engine, extra: &[Party]) -> Vec<Party> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for ep in engine.endpoints.iter().flatten() {
        if !seen.insert(ep.identity) {
            continue;
        }
        let Some(w) = engine.inv.workloads.get(ep.workload) else {
            continue;
        };
        let name = w.display_name();
        if let Ok(p) = engine.party(&name) {
            if p.identity.is_endpoint() {
                out.push(p);
            }
        }
    }
    for name in [
        "world",
        "ingress",
        "host",
        "remote-node",
        "kube-apiserver",
        "health",
    ] {
        if let Ok(p) = engine.party(name) {
            out.push(p);
        }
    }
    out.extend(extra.iter().cloned());
    out
}

/// Interval starts per protocol: every port where some verdict may change.
pub(crate) fn breakpoints(engine: &Engine) -> BTreeMap<Protocol, BTreeSet<u32>> {
    let mut out: BTreeMap<Protocol, BTreeSet<u32>> = BTreeMap::new();
    for p in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
        out.entry(p).or_default().insert(0);
    }
    let mut add = |proto: Protocol, from: u32, to: u32| {
        let protos: Vec<Protocol> = if proto == Protocol::Any {
            vec![Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
        } else if matches!(proto, Protocol::Tcp | Protocol::Udp | Protocol::Sctp) {
            vec![proto]
        } else {
            vec![]
        };
        for p in protos {
            let set = out.entry(p).or_default();
            set.insert(from);
            set.insert(to + 1);
        }
    };
    for (_, r) in &engine.rules {
        for e in &r.entries {
            for pr in e.ports.iter().flatten() {
                if let PortSel::Range { from, to } = pr.port {
                    add(pr.protocol, u32::from(from), u32::from(to));
                }
            }
        }
    }
    // A named port of a rule with protocol ANY applies its number to every
    // protocol, whatever the container port's own: cut all three there.
    for w in &engine.inv.workloads {
        for cp in &w.ports {
            add(Protocol::Any, u32::from(cp.port), u32::from(cp.port));
        }
    }
    for s in out.values_mut() {
        s.retain(|p| *p <= 65535);
    }
    out
}

/// Allowed connectivity between `parties` (sources and destinations).
pub fn connectivity(engine: &Engine, parties: &[Party]) -> BTreeSet<Conn> {
    let bps = breakpoints(engine);
    let mut out = BTreeSet::new();
    for from in parties {
        for to in parties {
            pair_connectivity(engine, &bps, from, to, &mut out);
        }
    }
    out
}

/// Interval starts of every protocol, as [`pair_connectivity`] reads them.
pub(crate) type Breakpoints = BTreeMap<Protocol, BTreeSet<u32>>;

/// The allowed connections from `from` to `to` (none between a party and
/// itself, or when neither side is a local endpoint), evaluated flow by
/// flow with [`Engine::side`] once per port class of `bps`.
pub(crate) fn pair_connectivity(
    engine: &Engine,
    bps: &Breakpoints,
    from: &Party,
    to: &Party,
    out: &mut BTreeSet<Conn>,
) {
    if from.name == to.name || (!to.enforced && !from.enforced) {
        return;
    }
    for (proto, starts) in bps {
        let mut open: Option<(u16, u16, bool)> = None;
        let mut starts = starts.iter().peekable();
        while let Some(&start) = starts.next() {
            let end = starts.peek().map_or(65535, |&&n| n - 1);
            let (Ok(s), Ok(e)) = (u16::try_from(start), u16::try_from(end)) else {
                continue;
            };
            let eg = engine.side(from, Direction::Egress, to, *proto, s);
            let ing = engine.side(to, Direction::Ingress, from, *proto, s);
            let passes = |v: &SideVerdict| v.decision == Decision::Allowed || !v.enforced;
            let allowed = passes(&eg) && passes(&ing);
            // Only a local endpoint's datapath redirects to the proxy: the
            // L7 rules of a side that is not enforced redirect nothing.
            let proxied = (eg.enforced && !eg.proxied.is_empty())
                || (ing.enforced && !ing.proxied.is_empty());
            match (allowed, open) {
                (true, Some((a, _, px))) if px == proxied => open = Some((a, e, px)),
                (true, prev) => {
                    if let Some((a, b, px)) = prev {
                        out.insert(conn(from, to, *proto, a, b, px));
                    }
                    open = Some((s, e, proxied));
                }
                (false, Some((a, b, px))) => {
                    out.insert(conn(from, to, *proto, a, b, px));
                    open = None;
                }
                (false, None) => {}
            }
        }
        if let Some((a, b, px)) = open {
            out.insert(conn(from, to, *proto, a, b, px));
        }
    }
}

pub(crate) fn conn(
    from: &Party,
    to: &Party,
    protocol: Protocol,
    from_port: u16,
    to_port: u16,
    proxied: bool,
) -> Conn {
    Conn {
        from: from.name.clone(),
        to: to.name.clone(),
        protocol,
        from_port,
        to_port,
        proxied,
    }
}

/// Connections in `after` that `before` did not allow, port by port.
pub fn added(before: &BTreeSet<Conn>, after: &BTreeSet<Conn>) -> Vec<Conn> {
    let mut out = Vec::new();
    for c in after {
        let covered: Vec<(u16, u16)> = before
            .iter()
            .filter(|b| b.from == c.from && b.to == c.to && b.protocol == c.protocol)
            .map(|b| (b.from_port, b.to_port))
            .collect();
        // Parts of c's range not covered by `before`.
        let mut cursor = u32::from(c.from_port);
        let end = u32::from(c.to_port);
        let mut ranges: Vec<(u16, u16)> = covered;
        ranges.sort();
        for (a, b) in ranges {
            let (a, b) = (u32::from(a), u32::from(b));
            if b < cursor || a > end {
                continue;
            }
            if a > cursor {
                push_part(&mut out, c, cursor, a - 1);
            }
            cursor = cursor.max(b + 1);
        }
        if cursor <= end {
            push_part(&mut out, c, cursor, end);
        }
    }
    out
}

fn push_part(out: &mut Vec<Conn>, c: &Conn, a: u32, b: u32) {
    if let (Ok(a), Ok(b)) = (u16::try_from(a), u16::try_from(b)) {
        let mut x = c.clone();
        x.from_port = a;
        x.to_port = b;
        out.push(x);
    }
}

impl Conn {
    pub fn ports(&self) -> String {
        format!(
            "{}/{}",
            self.protocol,
            crate::policy::port_text(self.from_port, self.to_port)
        )
    }
}
