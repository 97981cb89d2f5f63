//! Near misses of a denied side: allow rules of that side that would allow
//! the same peer on another port (or protocol), or the same port for another
//! peer. A denial then names what the author probably meant: "rule X allows
//! reserved:ingress on TCP/80, not TCP/8080 (the Service port, not the
//! targetPort?)".
//!
//! Only sides denied by default deny have near misses: a deny rule that
//! matched would override any allow rule anyway.

use crate::engine::side::{thousands, LIST_MAX, LIST_SHOWN};
use crate::engine::side_context::SideContext;
use crate::engine::{Engine, Party, Reason, SideVerdict};
use crate::policy::{Direction, PortSel, Protocol};
use serde::Serialize;

/// Which half of an allow entry missed the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Miss {
    /// The entry allows this peer, on other ports.
    Port,
    /// The entry allows this port, for other peers.
    Peer,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct NearMiss {
    /// The policy (`ns/name`, or `name` for clusterwide policies).
    pub policy: String,
    /// The entry in the policy, e.g. `spec.ingress[0]`.
    pub path: String,
    /// `file:line` of the entry.
    pub location: String,
    pub misses: Miss,
    /// The peers the entry allows, as written (`fromEntities: ingress`).
    pub peers: Vec<String>,
    /// The ports the entry allows (`TCP/80`), as written.
    pub ports: Vec<String>,
    /// The peer of the flow.
    pub peer: String,
    /// The flow's protocol and port (`TCP/8080`).
    pub flow: String,
    /// The allowed port is the `port` of a Service in front of the
    /// destination whose `targetPort` is the flow's port.
    pub service_port: bool,
}

impl NearMiss {
    /// One sentence: `rule shop/api spec.ingress[0] (file:line) allows
    /// reserved:ingress on TCP/80, not TCP/8080 (the Service port, not the
    /// targetPort?)`.
    pub fn to_text(&self, peer_name: impl Fn(&str) -> String) -> String {
        let rule = format!("rule {} {} ({})", self.policy, self.path, self.location);
        match self.misses {
            Miss::Port => format!(
                "{rule} allows {} on {}, not {}{}",
                peer_name(&self.peer),
                self.ports.join(", "),
                self.flow,
                if self.service_port {
                    " (the Service port, not the targetPort?)"
                } else {
                    ""
                }
            ),
            Miss::Peer => format!(
                "{rule} allows {} on {}, not {}",
                self.peers.join(", "),
                self.flow,
                peer_name(&self.peer)
            ),
        }
    }
}

/// The text lines of a side's near misses (`near miss: ...`), capped like
/// the lists of rules in a side's sentence: up to [`LIST_MAX`] in full,
/// else the first [`LIST_SHOWN`] and `near miss: and 397 more (`-o json`
/// lists each)` (the JSON forms keep the complete list).
pub fn near_miss_lines(list: &[NearMiss], peer_name: impl Fn(&str) -> String) -> Vec<String> {
    let shown = if list.len() <= LIST_MAX {
        list.len()
    } else {
        LIST_SHOWN
    };
    let mut lines: Vec<String> = list
        .iter()
        .take(shown)
        .map(|m| format!("near miss: {}", m.to_text(&peer_name)))
        .collect();
    if list.len() > shown {
        lines.push(format!(
            "near miss: and {} more (`-o json` lists each)",
            thousands(list.len() - shown)
        ));
    }
    lines
}

/// The near misses of `v`, the verdict of `subject`'s side `dir` for a flow
/// with `peer` on `protocol`/`port`; empty unless `v` is a default deny.
pub fn near_misses(
    engine: &Engine,
    v: &SideVerdict,
    subject: &Party,
    dir: Direction,
    peer: &Party,
    protocol: Protocol,
    port: u16,
) -> Vec<NearMiss> {
    if v.reason != Reason::DefaultDeny {
        return Vec::new();
    }
    let destination = match dir {
        Direction::Ingress => subject,
        Direction::Egress => peer,
    };
    let service_ports = service_ports(engine, destination, port);
    near_misses_at(engine, subject, dir, peer, protocol, port, &service_ports)
}

/// The near misses of a side denied by default deny, given the `port`s of
/// the Services in front of the destination whose `targetPort` is the
/// flow's port ([`service_ports`]). The result depends on the parties'
/// identities and ports; only its `peer` fields carry the peer's name.
pub fn near_misses_at(
    engine: &Engine,
    subject: &Party,
    dir: Direction,
    peer: &Party,
    protocol: Protocol,
    port: u16,
    service_ports: &[u16],
) -> Vec<NearMiss> {
    let ctx = engine.side_context(subject, dir);
    near_misses_in(engine, &ctx, subject, peer, protocol, port, service_ports)
}

/// [`near_misses_at`] with the subject's side context built beforehand
/// ([`Engine::side_context`] of `subject`'s identity).
pub fn near_misses_in(
    engine: &Engine,
    ctx: &SideContext<'_>,
    subject: &Party,
    peer: &Party,
    protocol: Protocol,
    port: u16,
    service_ports: &[u16],
) -> Vec<NearMiss> {
    let dir = ctx.direction();
    let requires = ctx.requires_allow();
    let peer_idx = engine.known_index(&peer.identity);
    let mut out = Vec::new();
    for e in ctx.allow_entries() {
        let Some(ports) = &e.ports else {
            // An entry for any port that misses the peer is not a near miss.
            continue;
        };
        let peer_ok = engine.entry_peer_matches(e, peer, peer_idx, requires);
        let port_ok = engine.entry_port_matches(e, subject, peer, dir, protocol, port);
        let misses = match (peer_ok, port_ok) {
            (true, false) => Miss::Port,
            (false, true) => Miss::Peer,
            _ => continue,
        };
        let service_port = misses == Miss::Port
            && ports.iter().any(|pr| {
                pr.protocol.covers(protocol)
                    && matches!(pr.port, PortSel::Range { from, to } if from == to && service_ports.contains(&from))
            });
        out.push(NearMiss {
            policy: e.origin.policy.short(),
            path: e.origin.path.clone(),
            location: e.origin.location.to_string(),
            misses,
            peers: e.peers.iter().map(|p| p.text.clone()).collect(),
            ports: ports.iter().map(ToString::to_string).collect(),
            peer: peer.name.clone(),
            flow: format!("{protocol}/{port}"),
            service_port,
        });
    }
    out.sort();
    out.dedup();
    out
}

/// The `port`s of the Services in front of `party`'s workload whose
/// `targetPort` (a number, or a name resolved against the workload's
/// container ports) is `target`.
pub fn service_ports(engine: &Engine, party: &Party, target: u16) -> Vec<u16> {
    let Some(w) = engine.workload_by_display_name(&party.name) else {
        return Vec::new();
    };
    engine
        .services_in(&w.namespace)
        .filter(|s| {
            s.selector.as_ref().is_some_and(|sel| {
                !sel.is_empty() && sel.iter().all(|(k, v)| w.labels.get(k) == Some(v))
            })
        })
        .flat_map(|s| s.ports.iter())
        .filter(|p| w.target_port(&p.target, p.protocol) == Some(target))
        .map(|p| p.port)
        .collect()
}
