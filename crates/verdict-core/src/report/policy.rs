//! The resolved-policy panel of the report: one table per endpoint
//! (direction, peer, protocol/port, decision, rule with file:line), peers
//! named by their workloads (`shop/deployment/api`), as `verdict policy`
//! names them (`names.rs`).

use super::esc;
use crate::engine::Decision;
use crate::policy::{port_text, Direction, Origin, Tier};
use crate::resolved::{PeerKey, PeerRef, PeerSet, ResolvedPolicy};
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

/// Most rules named in one cell; the rest are counted (`verdict policy`
/// lists them all). A clusterwide subject can be selected by thousands.
const ORIGINS_SHOWN: usize = 5;

fn origin_cell(origins: &[&Origin]) -> String {
    let mut out = String::new();
    for (i, o) in origins.iter().take(ORIGINS_SHOWN).enumerate() {
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
    if origins.len() > ORIGINS_SHOWN {
        let _ = write!(
            out,
            "<br>and {} more rules (<code>verdict policy</code> lists them)",
            origins.len() - ORIGINS_SHOWN
        );
    }
    out
}

/// Most summarised entries listed in a panel.
const ENTRIES_SHOWN: usize = 40;

/// Above this many (peer, entry) rows a panel lists summarised entries.
pub(super) const PANEL_ROWS: usize = 64;

/// The peers of a set as the panel names them: all of a small set, else
/// the first few and the count.
fn peers_text(p: &ResolvedPolicy, set: &PeerSet, names: &BTreeMap<u32, String>) -> String {
    const SHOWN: usize = 3;
    let text = |r: PeerRef| match r {
        PeerRef::Identity(i) => {
            let id = p.names().number(i);
            id.and_then(|id| names.get(&id).cloned())
                .or_else(|| p.names().name(i).map(ToString::to_string))
                .unwrap_or_default()
        }
        PeerRef::Cidr(c) => format!("cidr {}", p.names().cidr(c).unwrap_or_default()),
    };
    let shown: Vec<String> = set.iter().take(SHOWN).map(text).collect();
    if set.len() <= SHOWN {
        shown.join(", ")
    } else {
        format!("{} peers: {}, …", set.len(), shown.join(", "))
    }
}

/// One row per summarised entry of a large map.
fn entries_table(
    out: &mut String,
    p: &ResolvedPolicy,
    names: &BTreeMap<u32, String>,
    expanded: usize,
) {
    // One row per rule entry and port range, as before entries of equal
    // content were merged (see `SetEntry::origins`).
    let mut unmerged: Vec<_> = p
        .entries
        .iter()
        .flat_map(|e| e.origins.iter().map(move |&(seq, o)| (seq, e, o)))
        .collect();
    unmerged.sort_by_key(|&(seq, _, _)| seq);
    let _ = write!(
        out,
        "<p>{} entries standing for {expanded} (peer, port) rows; each row's peers are shown by their number and first members (<code>verdict policy</code> lists every row).</p>",
        unmerged.len()
    );
    out.push_str("<table class=\"policy-table\"><thead><tr><th>direction</th><th>peers</th><th>protocol/port</th><th>decision</th><th>rule (file:line)</th></tr></thead><tbody>");
    for &(_, e, origin) in unmerged.iter().take(ENTRIES_SHOWN) {
        let (decision, class) = decision_cell(e.decision, e.pass, e.tier, &e.proxied);
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td></tr>",
            e.direction,
            esc(&peers_text(p, &e.peers, names)),
            e.protocol,
            port_text(e.from_port, e.to_port),
            esc(&decision),
            origin_cell(&[origin])
        );
    }
    out.push_str("</tbody></table>");
    if unmerged.len() > ENTRIES_SHOWN {
        let _ = write!(
            out,
            "<p>The first {ENTRIES_SHOWN} entries of {} (<code>verdict policy</code> lists every row).</p>",
            unmerged.len()
        );
    }
    out.push_str("</section>");
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
    // Expanded rows are peers x entries: above this many, one row per
    // summarised entry (its peer set shown by size and first members).
    let expanded: usize = p
        .entries
        .iter()
        .map(|e| e.peers.len() * e.origins.len())
        .sum();
    if expanded > PANEL_ROWS {
        entries_table(&mut out, p, names, expanded);
        return out;
    }
    let rows = p.rows();
    if rows.is_empty() {
        out.push_str("<p>No entries: no rule names a peer of this endpoint.</p></section>");
        return out;
    }
    out.push_str("<table class=\"policy-table\"><thead><tr><th>direction</th><th>peer</th><th>protocol/port</th><th>decision</th><th>rule (file:line)</th></tr></thead><tbody>");
    for (k, v) in &rows {
        let (decision, class) = decision_cell(v.decision, v.pass, v.tier, &v.proxied);
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

/// The decision cell of a policy-table row (pass, tier, L7 proxy) and the
/// row's class.
fn decision_cell(
    decision: Decision,
    pass: bool,
    tier: Tier,
    proxied: &[&str],
) -> (String, &'static str) {
    let mut text = if pass {
        "pass (the next tier decides)".to_string()
    } else {
        decision.to_string()
    };
    if tier != Tier::Normal {
        let _ = write!(text, ", {tier} tier");
    }
    if !proxied.is_empty() {
        let _ = write!(text, ", L7 proxy: {}", proxied.join(", "));
    }
    let class = match (pass, decision) {
        (true, _) => "unchecked",
        (false, Decision::Allowed) => "allowed",
        (false, Decision::Denied) => "denied",
    };
    (text, class)
}
