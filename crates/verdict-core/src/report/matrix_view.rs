//! The connectivity matrix of the report, with its filters (free text, from,
//! to, flags); the page script hides the rows that do not match. Up to
//! [`SUMMARISE_ABOVE`] connections one row per pair; above, one row per
//! pair of groups (as `verdict matrix` text), with the groups' members
//! listed once below the table.

use super::{esc, key, Keys};
use crate::matrix::{Node, PortRange};
use crate::matrix_render::SUMMARISE_ABOVE;
use crate::matrix_summary::{Row, Summary};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
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
                "<td data-g=\"{g}\">{} ({}: {}, …)</td>",
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
        groups_table(out, m, keys, &labels);
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

/// Members shown in a group's closed row (the page script lists them all
/// when the row is opened).
const MEMBERS_SHOWN: usize = 3;

/// The members of the groups, for the page script: each member node once
/// (`n`, sorted by name, then identity; `k` its panel number, -1 for none)
/// and each group's members (`g`, by group number; empty for a group of
/// one, shown by name) as ascending ranges of indices into `n` (`3-7,9`).
/// A dense cluster's groups mention a million members among a few
/// thousand nodes: listed as elements, they were 101 MB of a 114 MB page.
#[derive(Serialize)]
struct GroupMembers<'m> {
    n: Vec<&'m str>,
    k: Vec<i64>,
    g: Vec<String>,
}

fn group_members<'m>(m: &'m Summary, keys: &Keys) -> GroupMembers<'m> {
    // Each node once, by address (groups share their members' nodes).
    let mut nodes: Vec<&'m Node> = Vec::new();
    let mut seen: FxHashSet<*const Node> = FxHashSet::default();
    for x in m
        .groups
        .iter()
        .filter(|g| g.members.len() > 1)
        .flat_map(|g| &g.members)
    {
        if seen.insert(Arc::as_ptr(x)) {
            nodes.push(x);
        }
    }
    nodes.sort_by(|a, b| (&a.name, a.identity).cmp(&(&b.name, b.identity)));
    let at: FxHashMap<*const Node, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, x)| (std::ptr::from_ref(*x), i))
        .collect();
    let k = nodes
        .iter()
        .map(|x| {
            key(keys, &x.name)
                .strip_prefix('p')
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(-1)
        })
        .collect();
    let g = m
        .groups
        .iter()
        .map(|grp| {
            let mut ids: Vec<usize> = if grp.members.len() > 1 {
                grp.members
                    .iter()
                    .filter_map(|x| at.get(&Arc::as_ptr(x)).copied())
                    .collect()
            } else {
                Vec::new()
            };
            ids.sort_unstable();
            ranges(&ids)
        })
        .collect();
    GroupMembers {
        n: nodes.iter().map(|x| x.name.as_str()).collect(),
        k,
        g,
    }
}

/// Ascending numbers as ranges: `[1, 2, 3, 7]` -> `1-3,7`.
fn ranges(ids: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&first) = ids.get(i) {
        let mut last = first;
        while ids.get(i + 1) == Some(&(last + 1)) {
            last += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        let _ = if last > first {
            write!(out, "{first}-{last}")
        } else {
            write!(out, "{first}")
        };
        i += 1;
    }
    out
}

/// The groups table (one row per group of two or more: its label, size
/// and first members; opened, the page script lists every member, each
/// clickable to its panel) and the members' data.
fn groups_table<W: Write>(out: &mut W, m: &Summary, keys: &Keys, labels: &[String]) {
    let _ = out.write_str("</tbody></table><h3>Groups</h3><p>Open a group to list its members (each opens its policy); the <i>from</i>, <i>to</i> and free-text filters match a group when one of its members matches. <code>verdict matrix</code> prints every group's members.</p><table id=\"matrix-groups\"><thead><tr><th>group</th><th>members</th></tr></thead><tbody>");
    for (g, grp) in m.groups.iter().enumerate() {
        if grp.members.len() < 2 {
            continue;
        }
        let label = labels.get(g).map_or("", String::as_str);
        let first: Vec<&str> = grp
            .members
            .iter()
            .take(MEMBERS_SHOWN)
            .map(|x| x.name.as_str())
            .collect();
        let more = if grp.members.len() > MEMBERS_SHOWN {
            ", …"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr id=\"group-{}\"><td>{} ({})</td><td><details data-g=\"{g}\"><summary>{}{more}</summary></details></td></tr>",
            esc(label),
            esc(label),
            grp.members.len(),
            esc(&first.join(", "))
        );
    }
    let _ =
        out.write_str("</tbody></table><script type=\"application/json\" id=\"group-members\">");
    super::script_json(out, &group_members(m, keys));
    let _ = out.write_str("</script>");
}
