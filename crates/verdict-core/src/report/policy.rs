//! The resolved-policy panel of the report: one table per endpoint
//! (direction, peer, protocol/port, decision, rule with file:line), peers
//! named by their workloads (`shop/deployment/api`), as `verdict policy`
//! names them (`names.rs`).

use super::esc;
use crate::engine::Decision;
use crate::policy::{port_text, Direction, Origin, Tier};
use crate::resolved::{PeerKey, ResolvedPolicy};
use std::collections::BTreeMap;
use std::fmt::Write;

fn peer_name(names: &BTreeMap<u32, String>, peer: &PeerKey) -> String {
    match peer {
        PeerKey::Identity { id, name } => {
            names.get(id).cloned().unwrap_or_else(|| name.to_string())
        }
        PeerKey::Cidr { cidr } => format!("cidr {cidr}"),
    }
}

fn origin_cell(origins: &[&Origin]) -> String {
    let mut out = String::new();
    for (i, o) in origins.iter().enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        let _ = write!(
            out,
            "{} {} <span class=\"at\">{}</span>",
            esc(&o.policy.to_string()),
            esc(&o.path),
            esc(&o.location.to_string())
        );
    }
    out
}

/// The panel for one endpoint: how each direction is enforced, then one
/// table row per entry of its map. `policy` is `None` for a name that is
/// not an endpoint of the input.
pub(super) fn view(
    key: &str,
    title: &str,
    policy: Option<&ResolvedPolicy>,
    names: &BTreeMap<u32, String>,
) -> String {
    let mut out = format!(
        "<section class=\"policy-view\" id=\"policy-{key}\" hidden><h3>{}</h3>",
        esc(title)
    );
    let Some(p) = policy else {
        out.push_str("<p>Not an endpoint of the input: no policy of its own.</p></section>");
        return out;
    };
    let _ = write!(
        out,
        "<p class=\"ident\">identity {}</p><ul class=\"modes\">",
        esc(&p.identity.to_string())
    );
    for (dir, st) in [
        (Direction::Ingress, &p.ingress),
        (Direction::Egress, &p.egress),
    ] {
        let mode = match (st.enforced, st.default_deny) {
            (false, _) => "not enforced (no policy selects it): everything allowed",
            (true, true) => "enforced, default deny",
            (true, false) => {
                "enforced, no default deny (enableDefaultDeny: false): unmatched traffic allowed"
            }
        };
        let _ = write!(out, "<li><b>{dir}</b>: {mode}");
        if !st.rules.is_empty() {
            let _ = write!(out, "; selected by {}", origin_cell(&st.rules));
        }
        out.push_str("</li>");
    }
    out.push_str("</ul>");
    let rows = p.rows();
    if rows.is_empty() {
        out.push_str("<p>No entries: no rule names a peer of this endpoint.</p></section>");
        return out;
    }
    out.push_str("<table class=\"policy-table\"><thead><tr><th>direction</th><th>peer</th><th>protocol/port</th><th>decision</th><th>rule (file:line)</th></tr></thead><tbody>");
    for (k, v) in &rows {
        let mut decision = v.decision.to_string();
        if v.pass {
            decision = "pass (the next tier decides)".to_string();
        }
        if v.tier != Tier::Normal {
            let _ = write!(decision, ", {} tier", v.tier);
        }
        if !v.proxied.is_empty() {
            let _ = write!(decision, ", L7 proxy: {}", v.proxied.join(", "));
        }
        let class = match (v.pass, v.decision) {
            (true, _) => "unchecked",
            (false, Decision::Allowed) => "allowed",
            (false, Decision::Denied) => "denied",
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td></tr>",
            k.direction,
            esc(&peer_name(names, &k.peer)),
            k.protocol,
            port_text(k.from_port, k.to_port),
            esc(&decision),
            origin_cell(&v.origins)
        );
    }
    out.push_str("</tbody></table></section>");
    out
}
