//! One flow through both enforcement points: the egress side of the source
//! and the ingress side of the destination.

use crate::engine::{Decision, Engine, Party, SideVerdict};
use crate::near_miss::{near_miss_lines, near_misses};
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
    let mut egress = engine.side(from, Direction::Egress, to, protocol, port);
    egress.near_miss = near_misses(engine, &egress, from, Direction::Egress, to, protocol, port);
    let mut ingress = engine.side(to, Direction::Ingress, from, protocol, port);
    ingress.near_miss = near_misses(
        engine,
        &ingress,
        to,
        Direction::Ingress,
        from,
        protocol,
        port,
    );
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
    /// A text rendering: the flow and its verdict, then each side with why
    /// and its near misses. Parties read as the input names them (`world`,
    /// `shop/deployment/api`); identity label sets only with `verbose`.
    /// Each line is escaped as a whole: names cannot add lines or escape
    /// sequences.
    pub fn to_text(&self) -> String {
        self.text(false)
    }

    /// [`FlowVerdict::to_text`], with identity labels when `verbose`.
    pub fn text(&self, verbose: bool) -> String {
        use crate::names::party_text;
        use crate::text::push_line;
        let mut out = String::new();
        let from = party_text(&self.from.name, true);
        let to = party_text(&self.to.name, true);
        push_line(
            &mut out,
            &format!(
                "{from} -> {to} {}/{}: {}",
                self.protocol,
                self.port,
                self.decision.to_string().to_uppercase()
            ),
        );
        for (label, party, side) in [
            ("at the source (egress)", &from, &self.egress),
            ("at the destination (ingress)", &to, &self.ingress),
        ] {
            push_line(&mut out, &format!("  {label} {party}: {}", side.decision));
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
            for line in near_miss_lines(&side.near_miss, |p| party_text(p, true)) {
                push_line(&mut out, &format!("    {line}"));
            }
        }
        let identity = |p: &Party| {
            if verbose {
                p.identity.to_string()
            } else {
                p.identity.id.to_string()
            }
        };
        push_line(
            &mut out,
            &format!(
                "  identities: {from} = {}; {to} = {}",
                identity(&self.from),
                identity(&self.to)
            ),
        );
        out
    }
}
