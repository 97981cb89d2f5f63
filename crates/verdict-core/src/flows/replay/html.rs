//! The observed traffic as an HTML section of `verdict report --flows`.

use super::summary::observed_summary;
use super::{Change, Summary};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Text from the input for HTML: control characters shown escaped, then
/// HTML-escaped.
fn esc(s: &str) -> String {
    crate::text::html(&crate::text::escape(s))
}

impl Summary {
    /// An HTML section for `verdict report --flows`: the observed traffic
    /// as a graph (sources left, destinations right; edges coloured
    /// delivered, dropped, would break, newly allowed) and the groups as a
    /// table. Static: no script, names escaped.
    pub fn to_html_section(&self) -> String {
        let mut sources: Vec<&str> = Vec::new();
        let mut dests: Vec<&str> = Vec::new();
        // (from, to) -> worst change, any delivered.
        let mut edges: BTreeMap<(&str, &str), (Change, bool, Vec<String>)> = BTreeMap::new();
        for g in self.groups() {
            if !sources.contains(&g.from.as_str()) {
                sources.push(&g.from);
            }
            if !dests.contains(&g.to.as_str()) {
                dests.push(&g.to);
            }
            let e = edges
                .entry((&g.from, &g.to))
                .or_insert((Change::Unchanged, false, Vec::new()));
            e.0 = e.0.min(g.change);
            e.1 |= g.observed.keys().any(|o| o.delivered());
            e.2.push(format!(
                "{}/{} {} ({})",
                g.protocol,
                g.port,
                g.change.as_str(),
                g.count
            ));
        }
        const MAX_NODES: usize = 200;
        sources.truncate(MAX_NODES);
        dests.truncate(MAX_NODES);
        let (w, h, gap) = (330.0, 30.0, 12.0);
        let rows = sources.len().max(dests.len()).max(1);
        let height = 60.0 + rows as f64 * (h + gap);
        let mut out = String::new();
        let _ = write!(
            out,
            "<h2 id=\"observed\">Observed traffic (replayed Hubble flows)</h2><p class=\"summary\">{}. Edges: <span class=\"ok\">green</span> delivered and still allowed, grey dashed dropped and still denied, <span class=\"bad\">red</span> would break (observed delivered, denied now), orange newly allowed (observed dropped, allowed now).</p><div class=\"graph\"><svg id=\"observed-graph\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1080 {height}\" width=\"1080\" height=\"{height}\" role=\"img\" aria-label=\"observed traffic\">\n<text x=\"30\" y=\"22\" class=\"col\">sources</text><text x=\"720\" y=\"22\" class=\"col\">destinations</text>\n",
            esc(&self.headline_text())
        );
        let pos = |list: &[&str], n: &str| {
            list.iter()
                .position(|x| *x == n)
                .map(|i| 40.0 + i as f64 * (h + gap))
        };
        for ((a, b), (change, delivered, ports)) in &edges {
            let (Some(y1), Some(y2)) = (pos(&sources, a), pos(&dests, b)) else {
                continue;
            };
            let style = match (change, delivered) {
                (Change::Break, _) => "stroke:#d93025;stroke-width:3.5",
                (Change::NewlyAllowed, _) => "stroke:#e37400;stroke-width:2.5",
                (Change::Unchanged, true) => "stroke:#2e9d44;stroke-width:2",
                (Change::Unchanged, false) => "stroke:#9aa3b5;stroke-width:2;stroke-dasharray:6 4",
            };
            let _ = writeln!(
                out,
                "<path class=\"observed {}\" style=\"fill:none;{style}\" d=\"M{:.0},{:.0} C{:.0},{:.0} {:.0},{:.0} {:.0},{:.0}\"><title>{} -> {}: {}</title></path>",
                change.as_str(),
                30.0 + w,
                y1 + h / 2.0,
                30.0 + w + 60.0,
                y1 + h / 2.0,
                720.0 - 60.0,
                y2 + h / 2.0,
                720.0,
                y2 + h / 2.0,
                esc(a),
                esc(b),
                esc(&ports.join(", "))
            );
        }
        for (x, list) in [(30.0, &sources), (720.0, &dests)] {
            for (i, n) in list.iter().enumerate() {
                let y = 40.0 + i as f64 * (h + gap);
                let shown: String = if n.chars().count() > 44 {
                    format!("{}…", n.chars().take(43).collect::<String>())
                } else {
                    (*n).to_string()
                };
                let _ = writeln!(
                    out,
                    "<g class=\"obs-node\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"6\" style=\"fill:#f5f7fb;stroke:#6b7a99\"/><text x=\"{}\" y=\"{}\" style=\"font-size:12px\">{}</text></g>",
                    esc(n),
                    x + 10.0,
                    y + 20.0,
                    esc(&shown)
                );
            }
        }
        out.push_str("</svg></div>");
        out.push_str("<table><tr><th>from</th><th>to</th><th>port</th><th>change</th><th>now</th><th>observed</th><th>records</th><th>why</th></tr>");
        for g in self.groups() {
            let class = match g.change {
                Change::Break => "denied",
                Change::NewlyAllowed => "warning",
                Change::Unchanged => "allowed",
            };
            let _ = write!(
                out,
                "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&g.from),
                esc(&g.to),
                g.protocol,
                g.port,
                g.change.as_str(),
                g.verdict,
                esc(&observed_summary(g)),
                g.count,
                esc(&g.explanation)
            );
        }
        out.push_str("</table>");
        out
    }
}
