//! The connectivity matrix of the report, with its filters (free text, from,
//! to, flags); the page script hides the rows that do not match.

use super::{esc, key, Keys};
use crate::matrix::Matrix;
use std::fmt::Write;

pub(super) fn section(m: &Matrix, keys: &Keys) -> String {
    let n = m.cells.len();
    let mut out = String::from(
        "<h2 id=\"matrix-title\">Who can reach whom</h2><p>Every allowed connection between the identities of the input. Click a name for its resolved policy. Filters match any part of the text as shown, ignoring case; the page's query string sets them (<code>report.html?q=api&amp;from=shop/</code>).</p>",
    );
    let _ = write!(
        out,
        "<div class=\"filters\" role=\"search\"><label>filter <input type=\"search\" id=\"mf-q\" placeholder=\"any column\" aria-controls=\"matrix\"></label><label>from <input type=\"search\" id=\"mf-from\" aria-controls=\"matrix\"></label><label>to <input type=\"search\" id=\"mf-to\" aria-controls=\"matrix\"></label><label>flags <select id=\"mf-flags\" aria-controls=\"matrix\"><option value=\"\">any</option><option value=\"l7\">L7</option><option value=\"deny\">deny</option><option value=\"none\">none</option></select></label><span id=\"mf-count\" aria-live=\"polite\">{n} of {n} connections shown</span></div>"
    );
    out.push_str("<table id=\"matrix\"><thead><tr><th>from</th><th>to</th><th>ports</th><th>flags</th></tr></thead><tbody>");
    for c in &m.cells {
        let ports: Vec<String> = c.ports.iter().map(ToString::to_string).collect();
        let mut flags = Vec::new();
        if c.proxied {
            flags.push("L7");
        }
        if c.deny_decided {
            flags.push("deny");
        }
        let _ = write!(
            out,
            "<tr><td class=\"clickable\" data-name=\"{}\">{}</td><td class=\"clickable\" data-name=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            key(keys, &c.from.name),
            esc(&c.from.name),
            key(keys, &c.to.name),
            esc(&c.to.name),
            esc(&ports.join(" ")),
            flags.join(",")
        );
    }
    out.push_str("</tbody></table>");
    out
}
