//! `verdict report`: one self-contained HTML page (no network needed): the
//! ingress paths, a graph of the two enforcement points and the backends
//! coloured by verdict, the lint findings, the connectivity matrix, and the
//! resolved policy of any endpoint on click.

use crate::engine::{Decision, Engine};
use crate::matrix::Matrix;
use crate::paths::{Controller, PathsReport, Status};
use crate::resolved::resolve;
use crate::text::{escape, html, json_in_script};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A lint finding as the report shows it (the lint crate fills these in).
#[derive(Debug, Clone, Serialize)]
pub struct ReportFinding {
    pub code: String,
    pub level: String,
    pub location: String,
    pub message: String,
    pub help: String,
}

/// Text from the input for an HTML text node or attribute value: control
/// characters shown escaped (`\n`, `\u{1b}`), then HTML-escaped.
fn esc(s: &str) -> String {
    html(&escape(s))
}

/// Every name the page can show a policy for, with its key (`p0`, `p1`,
/// ...): elements carry the key, never the name, so no character of a name
/// (a carriage return the HTML parser would rewrite, say) can lose its entry.
type Keys = BTreeMap<String, String>;

fn key<'a>(keys: &'a Keys, name: &str) -> &'a str {
    keys.get(name).map_or("", String::as_str)
}

#[derive(Default)]
struct Graph {
    clients: Vec<String>,
    ingresses: Vec<String>,
    backends: Vec<String>,
    /// (from, to) -> allowed (true) or denied (false); denied wins.
    edges: BTreeMap<(String, String), bool>,
}

impl Graph {
    fn add(list: &mut Vec<String>, n: &str) {
        if !list.iter().any(|x| x == n) {
            list.push(n.to_string());
        }
    }

    fn edge(&mut self, a: &str, b: &str, ok: bool) {
        let e = self
            .edges
            .entry((a.to_string(), b.to_string()))
            .or_insert(true);
        *e &= ok;
    }
}

fn graph(paths: &PathsReport) -> Graph {
    let mut g = Graph::default();
    for ep in &paths.entry_points {
        for r in &ep.routes {
            for b in &r.backends {
                for p in &b.paths {
                    Graph::add(&mut g.backends, &p.backend);
                    for h in &p.hops {
                        let ok = h.decision == Status::Allowed;
                        if h.name.starts_with("outside -> ingress") {
                            for c in &h.checks {
                                if c.side.starts_with("ingress of") {
                                    Graph::add(&mut g.clients, &c.source);
                                    Graph::add(&mut g.ingresses, &c.destination);
                                    g.edge(
                                        &c.source,
                                        &c.destination,
                                        c.decision == Decision::Allowed,
                                    );
                                }
                            }
                        } else if let Some(c) = h.checks.first() {
                            Graph::add(&mut g.ingresses, &c.source);
                            g.edge(&c.source, &p.backend, ok);
                        }
                    }
                }
            }
        }
    }
    g
}

fn svg(g: &Graph, keys: &Keys) -> String {
    let cols = [&g.clients, &g.ingresses, &g.backends];
    let xs = [30.0, 390.0, 750.0];
    let (w, h_node, gap) = (300.0, 34.0, 18.0);
    let rows = cols.iter().map(|c| c.len()).max().unwrap_or(0).max(1);
    let height = 70.0 + rows as f64 * (h_node + gap);
    let mut pos: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    let mut out = format!(
        "<svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1080 {height}\" width=\"1080\" height=\"{height}\" role=\"img\" aria-label=\"enforcement points and backends\">\n"
    );
    for (i, title) in [
        "clients",
        "ingress (hop 1 target)",
        "backends (hop 2 target)",
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"24\" class=\"col\">{title}</text>",
            xs[i]
        );
    }
    for (c, col) in cols.iter().enumerate() {
        for (r, n) in col.iter().enumerate() {
            let y = 44.0 + r as f64 * (h_node + gap);
            pos.insert(n.as_str(), (xs[c], y));
        }
    }
    for ((a, b), ok) in &g.edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(a.as_str()), pos.get(b.as_str())) else {
            continue;
        };
        let class = if *ok { "edge ok" } else { "edge denied" };
        let _ = writeln!(
            out,
            "<path class=\"{class}\" d=\"M{:.0},{:.0} C{:.0},{:.0} {:.0},{:.0} {:.0},{:.0}\"><title>{} -> {}: {}</title></path>",
            x1 + w,
            y1 + h_node / 2.0,
            x1 + w + 30.0,
            y1 + h_node / 2.0,
            x2 - 30.0,
            y2 + h_node / 2.0,
            x2,
            y2 + h_node / 2.0,
            esc(a),
            esc(b),
            if *ok { "allowed" } else { "denied" }
        );
    }
    for (n, (x, y)) in &pos {
        let shown = escape(n);
        let label: String = if shown.chars().count() > 40 {
            format!("{}…", shown.chars().take(39).collect::<String>())
        } else {
            shown.into_owned()
        };
        let _ = writeln!(
            out,
            "<g class=\"node\" data-name=\"{}\" tabindex=\"0\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h_node}\" rx=\"6\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
            key(keys, n),
            esc(n),
            x + 10.0,
            y + 22.0,
            esc(&label)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Renders the report.
pub fn render(
    engine: &Engine,
    paths: &PathsReport,
    m: &Matrix,
    findings: &[ReportFinding],
    title: &str,
) -> String {
    let g = graph(paths);
    // Resolved policy of every node that is a party.
    let mut policies: BTreeMap<String, Option<String>> = BTreeMap::new();
    for n in g.clients.iter().chain(&g.ingresses).chain(&g.backends) {
        let p = engine.party(n.split(" (").next().unwrap_or(n)).ok();
        policies.insert(n.clone(), p.map(|p| resolve(engine, &p).to_text()));
    }
    for c in &m.cells {
        for n in [&c.from.name, &c.to.name] {
            if policies.get(n).is_some_and(Option::is_some) {
                continue;
            }
            let p = engine.party(n.split(", ").next().unwrap_or(n)).ok();
            policies.insert(n.clone(), p.map(|p| resolve(engine, &p).to_text()));
        }
    }
    let keys: Keys = policies
        .keys()
        .enumerate()
        .map(|(i, n)| (n.clone(), format!("p{i}")))
        .collect();
    let entries: BTreeMap<&str, serde_json::Value> = policies
        .iter()
        .map(|(n, text)| {
            (
                key(&keys, n),
                serde_json::json!({"name": escape(n), "policy": text}),
            )
        })
        .collect();
    // `<`, `>`, `&` and the line separators as \uXXXX: no name can end the
    // element (`</script>`) or switch the parser's state (`<!--<script>`).
    let data = json_in_script(&serde_json::to_string(&entries).unwrap_or_else(|_| "{}".into()));
    let mut body = String::new();
    let s = &paths.summary;
    let _ = write!(
        body,
        "<p class=\"summary\"><b>{}</b> paths: <span class=\"ok\">{} allowed</span>, <span class=\"bad\">{} denied</span>, <span class=\"unchecked\">{} not checked</span>; {} lint findings; {} allowed connections in the matrix.</p>",
        s.paths,
        s.allowed,
        s.denied,
        s.not_checked,
        findings.len(),
        m.cells.len()
    );
    body.push_str("<h2>Enforcement points</h2><p>Click a node for its resolved policy. Green: every check of the hop allows; red: a check denies.</p><div class=\"graph\">");
    body.push_str(&svg(&g, &keys));
    body.push_str("</div><pre id=\"policy\" class=\"policy\">Select a node.</pre>");
    body.push_str("<h2>Paths</h2>");
    for ep in &paths.entry_points {
        let ctrl = match &ep.controller {
            Controller::Cilium => "Cilium Envoy (reserved:ingress)".to_string(),
            Controller::Pods { controller, .. } => controller.clone(),
            Controller::Unknown { controller } => format!("{controller} (pods not in the input)"),
        };
        let _ = write!(
            body,
            "<h3>{} listener {} ({} :{}) via {}</h3><table><tr><th>route</th><th>rule</th><th>service</th><th>backend</th><th>verdict</th><th>deciding check</th></tr>",
            esc(&ep.object.to_string()),
            esc(&ep.listener),
            esc(&ep.protocol),
            ep.port,
            esc(&ctrl)
        );
        for r in &ep.routes {
            if !r.attached {
                let _ = write!(body, "<tr class=\"denied\"><td>{}</td><td colspan=\"4\">not attached</td><td>{}</td></tr>", esc(&r.route.to_string()), esc(&r.findings.join("; ")));
                continue;
            }
            for b in &r.backends {
                if b.paths.is_empty() {
                    let (class, v) = if b.decision == Status::NotChecked {
                        ("unchecked", "not checked")
                    } else {
                        ("denied", "denied")
                    };
                    let _ = write!(body, "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td></td><td>{v}</td><td>{}</td></tr>", esc(&r.route.to_string()), esc(&b.rule), esc(&b.service), esc(&b.findings.join("; ")));
                }
                for p in &b.paths {
                    let why = p
                        .hops
                        .iter()
                        .flat_map(|h| h.checks.iter().map(move |c| (h, c)))
                        .find(|(_, c)| c.decision == Decision::Denied)
                        .map(|(h, c)| format!("{}: {}", h.name, c.explanation))
                        .or_else(|| p.not_checked.clone())
                        .or_else(|| p.findings.first().cloned())
                        .unwrap_or_default();
                    let (class, v) = match p.decision {
                        Status::Allowed => ("allowed", "allowed"),
                        Status::Denied => ("denied", "denied"),
                        Status::NotChecked => ("unchecked", "not checked"),
                    };
                    let _ = write!(
                        body,
                        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{v}</td><td>{}</td></tr>",
                        esc(&r.route.to_string()),
                        esc(&b.rule),
                        esc(&b.service),
                        esc(&p.backend),
                        esc(&why)
                    );
                }
            }
        }
        body.push_str("</table>");
    }
    if !paths.findings.is_empty() {
        body.push_str("<ul class=\"findings\">");
        for f in &paths.findings {
            let _ = write!(body, "<li>{}</li>", esc(f));
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Lint findings</h2>");
    if findings.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str("<table><tr><th>code</th><th>level</th><th>where</th><th>finding</th><th>how to fix</th></tr>");
        for f in findings {
            let _ = write!(
                body,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.level),
                esc(&f.code),
                esc(&f.level),
                esc(&f.location),
                esc(&f.message),
                esc(&f.help)
            );
        }
        body.push_str("</table>");
    }
    body.push_str("<h2>Who can reach whom</h2><table><tr><th>from</th><th>to</th><th>ports</th><th>flags</th></tr>");
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
            body,
            "<tr><td class=\"clickable\" data-name=\"{}\">{}</td><td class=\"clickable\" data-name=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            key(&keys, &c.from.name),
            esc(&c.from.name),
            key(&keys, &c.to.name),
            esc(&c.to.name),
            esc(&ports.join(" ")),
            flags.join(",")
        );
    }
    body.push_str("</table>");
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Helvetica,sans-serif;margin:24px;color:#1d2330}}
h1{{font-size:22px}} h2{{margin-top:32px;font-size:18px}} h3{{font-size:15px;margin-bottom:6px}}
table{{border-collapse:collapse;margin:8px 0;font-size:13px}} td,th{{border:1px solid #d4d8e0;padding:4px 8px;text-align:left;vertical-align:top}}
th{{background:#f2f4f8}} tr.denied td{{background:#fdecec}} tr.allowed td{{background:#edf8ee}} tr.unchecked td{{background:#f1f1f4}} tr.error td{{background:#fdecec}} tr.warning td{{background:#fff6e0}}
.summary .ok{{color:#1c7c2c}} .summary .bad{{color:#b42318}} .summary .unchecked{{color:#6b7a99}}
.graph{{overflow-x:auto;border:1px solid #d4d8e0;border-radius:8px;padding:8px}}
svg .node rect{{fill:#f5f7fb;stroke:#6b7a99}} svg .node text{{font-size:12px;fill:#1d2330}} svg .node{{cursor:pointer}}
svg .node.selected rect{{fill:#dfe8ff;stroke:#2f5bd3;stroke-width:2}} svg .col{{font-size:13px;font-weight:600;fill:#48526b}}
svg .edge{{fill:none;stroke-width:2.5}} svg .edge.ok{{stroke:#2e9d44}} svg .edge.denied{{stroke:#d93025;stroke-dasharray:6 4}}
.policy{{background:#0f1320;color:#dfe6f5;padding:12px;border-radius:8px;white-space:pre-wrap;font-size:12px;max-height:420px;overflow:auto}}
.clickable{{cursor:pointer;text-decoration:underline dotted}}
</style></head>
<body data-ready="false" data-errors="0">
<h1>{title}</h1>
{body}
<script type="application/json" id="policies">{data}</script>
<script>
(function(){{
  var errors = 0;
  window.addEventListener('error', function(){{ errors++; document.body.dataset.errors = String(errors); }});
  var policies = JSON.parse(document.getElementById('policies').textContent);
  var out = document.getElementById('policy');
  function show(key){{
    var e = policies[key];
    out.textContent = !e ? 'Select a node.' : (e.policy || (e.name + ': not an endpoint of the input (no policy of its own)'));
    document.querySelectorAll('svg .node').forEach(function(n){{ n.classList.toggle('selected', n.dataset.name === key); }});
  }}
  document.querySelectorAll('[data-name]').forEach(function(el){{
    el.addEventListener('click', function(){{ show(el.dataset.name); }});
    el.addEventListener('keydown', function(e){{ if (e.key === 'Enter') show(el.dataset.name); }});
  }});
  var nodes = document.querySelectorAll('svg .node').length;
  document.body.dataset.nodes = String(nodes);
  var first = document.querySelector('svg .node');
  if (first) show(first.dataset.name);
  document.body.dataset.ready = 'true';
}})();
</script>
</body></html>
"#,
        title = esc(title),
        body = body,
        data = data
    )
}
