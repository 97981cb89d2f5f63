//! One flow through both enforcement points: the egress side of the source
//! and the ingress side of the destination.

use crate::engine::{Decision, Engine, Party, SideVerdict};
use crate::policy::{Direction, Protocol};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FlowVerdict {
    pub from: Party,
    pub to: Party,
    pub protocol: Protocol,
    pub port: u16,
    /// Delivered only if both sides allow.
    pub decision: Decision,
    pub egress: SideVerdict,
    pub ingress: SideVerdict,
}

/// Evaluates a flow between two parties.
pub fn trace(
    engine: &Engine,
    from: &Party,
    to: &Party,
    protocol: Protocol,
    port: u16,
) -> FlowVerdict {
    let egress = engine.side(from, Direction::Egress, to, protocol, port);
    let ingress = engine.side(to, Direction::Ingress, from, protocol, port);
    let passes = |s: &SideVerdict| s.decision == Decision::Allowed || !s.enforced;
    let decision = if passes(&egress) && passes(&ingress) {
        Decision::Allowed
    } else {
        Decision::Denied
    };
    FlowVerdict {
        from: from.clone(),
        to: to.clone(),
        protocol,
        port,
        decision,
        egress,
        ingress,
    }
}

/// Parses a flow protocol (TCP, UDP, SCTP, ICMP, ICMPv6).
pub fn parse_flow_protocol(s: &str) -> Result<Protocol, String> {
    match Protocol::parse(s) {
        Some(Protocol::Any) | None => Err(format!(
            "`{s}` is not a flow protocol (TCP, UDP, SCTP, ICMP, ICMPv6)"
        )),
        Some(p) => Ok(p),
    }
}

impl FlowVerdict {
    /// A text rendering: one line per side and the overall verdict. Each
    /// line is escaped as a whole: names cannot add lines or escape
    /// sequences.
    pub fn to_text(&self) -> String {
        use crate::text::push_line;
        let mut out = String::new();
        push_line(
            &mut out,
            &format!(
                "{} -> {} {}/{}: {}",
                self.from.name,
                self.to.name,
                self.protocol,
                self.port,
                self.decision.to_string().to_uppercase()
            ),
        );
        for (label, side) in [
            ("egress  (at source)", &self.egress),
            ("ingress (at destination)", &self.ingress),
        ] {
            push_line(&mut out, &format!("  {label}: {}", side.decision));
            push_line(&mut out, &format!("    {}", side.explanation));
            if !side.enforced {
                out.push_str("    (not enforced: this side is not a local endpoint, so the datapath does not apply its policy)\n");
            }
            for o in &side.passed {
                push_line(
                    &mut out,
                    &format!(
                        "    passed on by {o} (ClusterNetworkPolicy Pass: the next tier decides)"
                    ),
                );
            }
            for u in &side.unevaluable {
                push_line(&mut out, &format!("    note: not evaluable offline: {u}"));
            }
        }
        push_line(
            &mut out,
            &format!(
                "  identities: {} = {}; {} = {}",
                self.from.name, self.from.identity, self.to.name, self.to.identity
            ),
        );
        out
    }
}
