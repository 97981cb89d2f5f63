//! The connectivity matrix of the report, with its filters (free text, from,
//! to, flags); the page script hides the rows that do not match. Up to
//! [`SUMMARISE_ABOVE`] connections one row per pair; above, one row per
//! pair of groups (as `verdict matrix` text), with the groups' members
//! listed once below the table.

use super::{esc, key, Keys};
use crate::matrix::{Node, PortRange};
use crate::matrix_render::SUMMARISE_ABOVE;
use crate::matrix_summary::{Row, Summary};
use rustc_hash::FxHashMap;
use std::fmt::Write;
use std::sync::Arc;

fn flags(r: &Row) -> String {
    let mut f = Vec::new();
    if r.proxied {
        f.push("L7");
    }
    if r.deny_decided {
        f.push("deny");
    }
    f.join(",")
}

fn ports(p: &[PortRange]) -> String {
    p.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

fn name_cell(keys: &Keys, n: &Node) -> String {
    format!(
        "<td class=\"clickable\" data-name=\"{}\">{}</td>",
        key(keys, &n.name),
        esc(&n.name)
    )
}

/// A group member as the groups table lists it, formed once per member:
/// a member is listed by hundreds of groups on dense clusters.
fn member_span(keys: &Keys, x: &Node) -> String {
    format!(
        "<span class=\"clickable\" data-name=\"{}\">{}</span>",
        key(keys, &x.name),
        esc(&x.name)
    )
}

/// Appends the matrix section to `out`.
pub(super) fn section<W: Write>(out: &mut W, m: &Summary, keys: &Keys) {
    let grouped = m.connections > SUMMARISE_ABOVE;
    let (n, unit) = if grouped {
        (m.rows.len(), "rows")
    } else {
        (m.connections, "connections")
    };
    let _ = out.write_str(
        "<h2 id=\"matrix-title\">Who can reach whom</h2><p>Every allowed connection between the identities of the input. Click a name for its resolved policy. Filters match any part of the text as shown, ignoring case; the page's query string sets them (<code>report.html?q=api&amp;from=shop/</code>).</p>",
    );
    if grouped {
        let _ = write!(
            out,
            "<p id=\"matrix-groups-note\">{} allowed connections, shown as {} rows between groups of identities that every policy treats alike: every member of <i>from</i> reaches every member of <i>to</i>. A group shows its label, size and first member; its members are listed under the table. <code>verdict matrix --pairs</code> lists every pair.</p>",
            m.connections,
            m.rows.len()
        );
    }
    let _ = write!(
        out,
        "<div class=\"filters\" role=\"search\"><label>filter <input type=\"search\" id=\"mf-q\" placeholder=\"any column\" aria-controls=\"matrix\"></label><label>from <input type=\"search\" id=\"mf-from\" aria-controls=\"matrix\"></label><label>to <input type=\"search\" id=\"mf-to\" aria-controls=\"matrix\"></label><label>flags <select id=\"mf-flags\" aria-controls=\"matrix\"><option value=\"\">any</option><option value=\"l7\">L7</option><option value=\"deny\">deny</option><option value=\"none\">none</option></select></label><span id=\"mf-count\" data-unit=\"{unit}\" aria-live=\"polite\">{n} of {n} {unit} shown</span></div>"
    );
    let _ = out.write_str("<table id=\"matrix\"><thead><tr><th>from</th><th>to</th><th>ports</th><th>flags</th></tr></thead><tbody>");
    if grouped {
        let labels = m.group_labels();
        let cell = |g: usize| match m.groups.get(g).map(|x| x.members.as_slice()) {
            Some([one]) => name_cell(keys, one),
            Some(members) => format!(
                "<td>{} ({}: {}, …)</td>",
                esc(labels.get(g).map_or("", String::as_str)),
                members.len(),
                esc(members.first().map_or("", |x| x.name.as_str()))
            ),
            None => "<td></td>".to_string(),
        };
        for r in &m.rows {
            let _ = write!(
                out,
                "<tr>{}{}<td>{}</td><td>{}</td></tr>",
                cell(r.from),
                cell(r.to),
                esc(&ports(&r.ports)),
                flags(r)
            );
        }
        // Members by address: the groups share their members' nodes.
        let mut spans: FxHashMap<*const Node, String> = FxHashMap::default();
        let _ = out.write_str("</tbody></table><h3>Groups</h3><table id=\"matrix-groups\"><thead><tr><th>group</th><th>members</th></tr></thead><tbody>");
        for (g, grp) in m.groups.iter().enumerate() {
            if grp.members.len() < 2 {
                continue;
            }
            let _ = write!(
                out,
                "<tr><td>{} ({})</td><td>",
                esc(labels.get(g).map_or("", String::as_str)),
                grp.members.len()
            );
            for (i, x) in grp.members.iter().enumerate() {
                if i > 0 {
                    let _ = out.write_str(", ");
                }
                let span = spans
                    .entry(Arc::as_ptr(x))
                    .or_insert_with(|| member_span(keys, x));
                let _ = out.write_str(span);
            }
            let _ = out.write_str("</td></tr>");
        }
        let _ = out.write_str("</tbody></table>");
        return;
    }
    let _ = m.try_each_cell(|from, to, r| -> Result<(), ()> {
        let _ = write!(
            out,
            "<tr>{}{}<td>{}</td><td>{}</td></tr>",
            name_cell(keys, from),
            name_cell(keys, to),
            esc(&ports(&r.ports)),
            flags(r)
        );
        Ok(())
    });
    let _ = out.write_str("</tbody></table>");
}
