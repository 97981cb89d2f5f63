//! `verdict report`: one self-contained HTML page (no network needed): a
//! header (verdict version, git revision, time, inputs), the ingress paths,
//! a graph of clients, entry points (each Gateway, each Ingress controller)
//! and backends coloured by verdict, the lint findings, the filterable
//! connectivity matrix, and the resolved policy of any endpoint as a table.
//!
//! Pure: the caller passes the time and the build facts ([`ReportMeta`]).
//! Submodules: `graph` (the SVG), `policy` (the policy panels as one JSON
//! document, drawn by the script), `panels` (which panels, their maps or
//! bodies formed ahead, bodies shared by rules and ports), `page` (header,
//! style, the document), `matrix_view` (the matrix and its filters),
//! `script.js` (the page script, included as text).

mod graph;
mod matrix_view;
mod page;
mod panels;
mod policy;

pub use panels::{matrix_and_panels, panel_bodies, PanelBodies, PanelView};
use panels::{panel_key, Panel};

use crate::engine::{Decision, Engine};
use crate::matrix_summary::Summary;
use crate::paths::{Controller, PathsReport, Status};
pub use crate::text::IoText;
use crate::text::{escape, html};
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

/// What the page header states; the caller knows it (the core has no clock
/// and no build facts).
#[derive(Debug, Clone, Default)]
pub struct ReportMeta {
    /// verdict's version (`0.1.0`).
    pub version: String,
    /// The git revision verdict was built from (`unknown` outside a checkout).
    pub revision: String,
    /// The manifest inputs as given.
    pub inputs: Vec<String>,
    /// Hubble flow files (`--flows`), if any.
    pub flows: Vec<String>,
    /// When the page was generated (RFC 3339, UTC).
    pub generated: String,
}

/// Text from the input for an HTML text node or attribute value: control
/// characters shown escaped (`\n`, `\u{1b}`), then HTML-escaped.
fn esc(s: &str) -> String {
    html(&escape(s))
}

/// `value` as JSON safe inside `<script type="application/json">`: `<`,
/// `>` and `&` only occur in strings, written as `\u003c` etc., so no text
/// can close the element or open a comment.
fn script_json<W: Write, T: Serialize + ?Sized>(out: &mut W, value: &T) {
    let j = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string());
    let mut from = 0;
    for (i, b) in j.bytes().enumerate() {
        let e = match b {
            b'<' => "\\u003c",
            b'>' => "\\u003e",
            b'&' => "\\u0026",
            _ => continue,
        };
        // `i` is at an ASCII byte: a character boundary.
        let _ = out.write_str(j.get(from..i).unwrap_or_default());
        let _ = out.write_str(e);
        from = i + 1;
    }
    let _ = out.write_str(j.get(from..).unwrap_or_default());
}

/// Every name the page can show a policy for, with its key (`p0`, `p1`,
/// ...): elements carry the key, never the name, so no character of a name
/// (a carriage return the HTML parser would rewrite, say) can lose its entry.
type Keys = BTreeMap<String, String>;

fn key<'a>(keys: &'a Keys, name: &str) -> &'a str {
    keys.get(name).map_or("", String::as_str)
}

/// Renders the report as one string (the tests; `verdict report` writes
/// the page as it is formed with [`render_to`]).
pub fn render(
    engine: &Engine,
    paths: &PathsReport,
    m: &Summary,
    findings: &[ReportFinding],
    meta: &ReportMeta,
) -> String {
    let mut page = String::new();
    render_to(&mut page, engine, paths, m, findings, meta);
    page
}

/// Renders the report into `body` as it is formed (a write error stops
/// nothing here: the sink keeps it, see [`IoText`]).
pub fn render_to<W: Write>(
    body: &mut W,
    engine: &Engine,
    paths: &PathsReport,
    m: &Summary,
    findings: &[ReportFinding],
    meta: &ReportMeta,
) {
    let pre = panel_bodies(engine);
    let parts = page_parts(engine, paths, findings, pre.view());
    render_parts(body, paths, m, meta, &parts);
}

/// The parts of the page that do not need the matrix, formed ahead of it
/// (`verdict report` forms them while the matrix is computed): the panel
/// keys, the sections from the graph to the lint findings, and the panel
/// data.
pub struct PageParts {
    keys: Keys,
    findings: usize,
    /// The graph, paths and lint sections, as HTML.
    middle: String,
    /// The panel data, as JSON.
    data: String,
}

/// The [`PageParts`] of the report: every name with a panel (the graph's
/// nodes and every node the matrix can show, its groups' members among
/// them) keyed and its panel formed from `prepared`.
pub fn page_parts(
    engine: &Engine,
    paths: &PathsReport,
    findings: &[ReportFinding],
    prepared: PanelView<'_, '_, '_>,
) -> PageParts {
    let g = graph::graph(paths);
    // Every name with a policy panel, and the party it is looked up as: graph
    // nodes (`reserved:world`, `shop/deployment/api`, an entry point's
    // enforcer) and matrix nodes (`a, b` for one identity: the first).
    // CIDR selections are not endpoints: no lookup.
    let mut lookup: BTreeMap<String, Option<String>> = BTreeMap::new();
    for n in g
        .clients
        .iter()
        .chain(g.entries.values().filter_map(|e| e.enforcer.as_ref()))
        .chain(&g.backends)
    {
        lookup.insert(
            n.clone(),
            Some(n.split(" (").next().unwrap_or(n).to_string()),
        );
    }
    for (n, identity) in prepared.node_names(engine) {
        if let std::collections::btree_map::Entry::Vacant(v) = lookup.entry(n) {
            let look = identity.then(|| v.key().split(", ").next().unwrap_or_default().to_string());
            v.insert(look);
        }
    }
    // One panel per identity (and container ports, which name ports): the
    // names standing for one identity (a pod in the graph, its identity's
    // name in the matrix) share one key and one panel, so the page has a
    // panel per identity, not per name. Its title is the first of its names.
    let mut keys: Keys = BTreeMap::new();
    let mut panels: Vec<Panel> = Vec::new();
    let mut panel_of: BTreeMap<(u32, String), usize> = BTreeMap::new();
    for (n, look) in &lookup {
        let party = look.as_deref().map(|l| engine.party(l));
        let i = match party {
            Some(Ok(p)) => *panel_of.entry(panel_key(&p)).or_insert_with(|| {
                panels.push((n, Some(p)));
                panels.len() - 1
            }),
            _ => {
                panels.push((n, None));
                panels.len() - 1
            }
        };
        keys.insert(n.clone(), format!("p{i}"));
    }
    let names = crate::names::identity_names(engine);
    // The panel data from the prepared bodies (the page script draws a
    // panel when it is asked for).
    let mut data = String::new();
    prepared.panel_data(&panels, &names).json(&mut data);
    let mut middle = String::new();
    push(&mut middle, "<h2>Enforcement points</h2><p>Each Gateway, and the Ingresses of each controller, is one node listing its listeners with routes; listeners without routes are counted on one line. Click a node for the resolved policy of the endpoint that enforces it. Green: every check of the hop allows; red: a check denies; grey: not checked.</p><div class=\"graph\">");
    graph::svg(&mut middle, &g, &keys);
    push(&mut middle, "</div><div id=\"policy\" aria-live=\"polite\"><p id=\"policy-hint\">Select a node in the graph or a name in the matrix.</p><p id=\"policy-none\" hidden>Not an endpoint of the input: no policy of its own.</p><noscript><p>The resolved policies are drawn by the page script: <code>verdict policy</code> prints them.</p></noscript></div>");
    push(&mut middle, "<h2>Paths</h2>");
    // Listeners without routes: one line per Gateway after the tables.
    let mut idle: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ep in &paths.entry_points {
        if ep.routes.is_empty() {
            idle.entry(ep.object.to_string())
                .or_default()
                .push(format!("{} ({} :{})", ep.listener, ep.protocol, ep.port));
            continue;
        }
        let ctrl = match &ep.controller {
            Controller::Cilium => "Cilium Envoy (reserved:ingress)".to_string(),
            Controller::Pods { controller, .. } => controller.clone(),
            Controller::Unknown { controller } => format!("{controller} (pods not in the input)"),
        };
        let _ = write!(
            middle,
            "<h3>{} listener {} ({} :{}) via {}</h3><table><tr><th>route</th><th>rule</th><th>service</th><th>backend</th><th>verdict</th><th>deciding check</th></tr>",
            esc(&ep.object.to_string()),
            esc(&ep.listener),
            esc(&ep.protocol),
            ep.port,
            esc(&ctrl)
        );
        for r in &ep.routes {
            if !r.attached {
                let _ = write!(middle, "<tr class=\"denied\"><td>{}</td><td colspan=\"4\">not attached</td><td>{}</td></tr>", esc(&r.route.to_string()), esc(&r.findings.join("; ")));
                continue;
            }
            for b in &r.backends {
                if b.paths.is_empty() {
                    let (class, v) = if b.decision == Status::NotChecked {
                        ("unchecked", "not checked")
                    } else {
                        ("denied", "denied")
                    };
                    let _ = write!(middle, "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td></td><td>{v}</td><td>{}</td></tr>", esc(&r.route.to_string()), esc(&b.rule), esc(&b.service), esc(&b.findings.join("; ")));
                }
                // The pods of a backend grouped by verdict and deciding
                // check (hop, side, deciding rules): replicas that share
                // them are one row, explained by its first pod.
                type Group<'p> = (&'static str, &'static str, String, Vec<&'p str>);
                let mut groups: Vec<Group> = Vec::new();
                let mut at: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
                for p in &b.paths {
                    let (class, v) = match p.decision {
                        Status::Allowed => ("allowed", "allowed"),
                        Status::Denied => ("denied", "denied"),
                        Status::NotChecked => ("unchecked", "not checked"),
                    };
                    let k = (class, group_key(p));
                    match at.get(&k) {
                        Some(&i) => groups[i].3.push(&p.backend),
                        None => {
                            at.insert(k, groups.len());
                            groups.push((class, v, deciding_check(p), vec![&p.backend]));
                        }
                    }
                }
                for (class, v, why, pods) in &groups {
                    let _ = write!(
                        middle,
                        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{v}</td><td>{}</td></tr>",
                        esc(&r.route.to_string()),
                        esc(&b.rule),
                        esc(&b.service),
                        esc(&backends_text(pods)),
                        esc(&capped(why, "verdict paths"))
                    );
                }
            }
        }
        push(&mut middle, "</table>");
    }
    if !paths.findings.is_empty() {
        push(&mut middle, "<ul class=\"findings\">");
        for f in &paths.findings {
            let _ = write!(middle, "<li>{}</li>", esc(f));
        }
        push(&mut middle, "</ul>");
    }
    if !idle.is_empty() {
        push(
            &mut middle,
            "<h3>Listeners without routes</h3><ul class=\"idle\">",
        );
        for (gw, listeners) in &idle {
            let _ = write!(
                middle,
                "<li>{}: {}</li>",
                esc(gw),
                esc(&listeners.join(", "))
            );
        }
        push(&mut middle, "</ul>");
    }
    push(&mut middle, "<h2>Lint findings</h2>");
    if findings.is_empty() {
        push(&mut middle, "<p>None.</p>");
    } else {
        push(&mut middle, "<table><tr><th>code</th><th>level</th><th>where</th><th>finding</th><th>how to fix</th></tr>");
        for f in findings {
            let _ = write!(
                middle,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.level),
                esc(&f.code),
                esc(&f.level),
                esc(&f.location),
                esc(&capped(&f.message, "verdict lint")),
                esc(&f.help)
            );
        }
        push(&mut middle, "</table>");
    }
    PageParts {
        keys,
        findings: findings.len(),
        middle,
        data,
    }
}

/// Writes the page from its parts formed ahead and the matrix.
pub fn render_parts<W: Write>(
    body: &mut W,
    paths: &PathsReport,
    m: &Summary,
    meta: &ReportMeta,
    parts: &PageParts,
) {
    page::open(body, meta);
    let s = &paths.summary;
    let _ = write!(
        body,
        "<p class=\"summary\"><b>{}</b> paths: <span class=\"ok\">{} allowed</span>, <span class=\"bad\">{} denied</span>, <span class=\"unchecked\">{} not checked</span>; {} lint findings; {} allowed connections in the matrix.</p>",
        s.paths,
        s.allowed,
        s.denied,
        s.not_checked,
        parts.findings,
        m.connections
    );
    push(body, &parts.middle);
    matrix_view::section(body, m, &parts.keys);
    push(body, "<script type=\"application/json\" id=\"panel-data\">");
    push(body, &parts.data);
    push(body, "</script>");
    page::close(body);
}

/// Appends text to the page (an error is kept by the sink).
fn push<W: Write>(out: &mut W, s: &str) {
    let _ = out.write_str(s);
}

/// The check that decides a pod path, as the paths table states it: the
/// first denying check with its hop, else why it was not checked, else its
/// first finding.
fn deciding_check(p: &crate::paths::PodPath) -> String {
    p.hops
        .iter()
        .flat_map(|h| h.checks.iter().map(move |c| (h, c)))
        .find(|(_, c)| c.decision == Decision::Denied)
        .map(|(h, c)| format!("{}: {}", h.name, c.explanation))
        .or_else(|| p.not_checked.clone())
        .or_else(|| p.findings.first().cloned())
        .unwrap_or_default()
}

/// What makes two pods of a backend one row: the deciding check's hop,
/// side and rules (its text names the pod), else the text shown.
fn group_key(p: &crate::paths::PodPath) -> String {
    let denied = p
        .hops
        .iter()
        .flat_map(|h| h.checks.iter().map(move |c| (h, c)))
        .find(|(_, c)| c.decision == Decision::Denied);
    match denied {
        Some((h, c)) => format!("{}\n{}\n{}", h.name, c.side, c.rules.join("\n")),
        None => deciding_check(p),
    }
}

/// Backends shown in one paths row: all of up to [`PODS_SHOWN`], else the first
/// few and the count (`verdict paths` lists every pod).
const PODS_SHOWN: usize = 3;

fn backends_text(pods: &[&str]) -> String {
    if pods.len() <= PODS_SHOWN {
        return pods.join(", ");
    }
    format!(
        "{} backends: {}, …",
        pods.len(),
        pods[..PODS_SHOWN].join(", ")
    )
}

/// Longest deciding-check or finding text shown in a row; the rest is
/// counted (`verdict paths` / `verdict lint` print it whole). A default
/// deny's explanation lists every rule selecting the subject, which grows
/// with the cluster.
const WHY_MAX: usize = 600;

fn capped(why: &str, whole: &str) -> String {
    if why.chars().count() <= WHY_MAX {
        return why.to_string();
    }
    let cut: String = why.chars().take(WHY_MAX).collect();
    let rest = why.chars().count() - WHY_MAX;
    format!("{cut}… ({rest} more characters: `{whole}` prints the whole text)")
}

#[cfg(test)]
mod tests;
