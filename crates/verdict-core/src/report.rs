//! `verdict report`: one self-contained HTML page (no network needed): a
//! header (verdict version, git revision, time, inputs), the ingress paths,
//! a graph of clients, entry points (each Gateway, each Ingress controller)
//! and backends coloured by verdict, the lint findings, the filterable
//! connectivity matrix, and the resolved policy of any endpoint as a table.
//!
//! Pure: the caller passes the time and the build facts ([`ReportMeta`]).
//! Submodules: `graph` (the SVG), `policy` (the policy panels as one JSON
//! document, drawn by the script), `page` (header,
//! style, the document), `matrix_view` (the matrix and its filters),
//! `script.js` (the page script, included as text).

mod graph;
mod matrix_view;
mod page;
mod policy;

use crate::engine::{Decision, Engine};
use crate::matrix_summary::Summary;
use crate::paths::{Controller, PathsReport, Status};
use crate::resolved::Resolver;
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
    let g = graph::graph(paths);
    // Every name with a policy panel, and the party it is looked up as: graph
    // nodes (`reserved:world`, `shop/deployment/api`, an entry point's
    // enforcer) and matrix names (`a, b` for one identity: the first).
    let mut lookup: BTreeMap<String, String> = BTreeMap::new();
    for n in g
        .clients
        .iter()
        .chain(g.entries.values().filter_map(|e| e.enforcer.as_ref()))
        .chain(&g.backends)
    {
        lookup.insert(n.clone(), n.split(" (").next().unwrap_or(n).to_string());
    }
    // Each member once: groups share their members' nodes (a member of
    // hundreds of groups on dense clusters), so by address first.
    let mut seen: rustc_hash::FxHashSet<*const crate::matrix::Node> = Default::default();
    for x in m.groups.iter().flat_map(|g| &g.members) {
        if !seen.insert(std::sync::Arc::as_ptr(x)) {
            continue;
        }
        let n = &x.name;
        if !lookup.contains_key(n) {
            lookup.insert(n.clone(), n.split(", ").next().unwrap_or(n).to_string());
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
        let i = match engine.party(look) {
            Ok(p) => {
                let k = (p.identity.id, format!("{:?}", p.ports));
                *panel_of.entry(k).or_insert_with(|| {
                    panels.push((n, Some(p)));
                    panels.len() - 1
                })
            }
            Err(_) => {
                panels.push((n, None));
                panels.len() - 1
            }
        };
        keys.insert(n.clone(), format!("p{i}"));
    }
    let names = crate::names::identity_names(engine);
    // One resolution for every panel: each selector evaluated once. Each
    // map is turned into panel data and dropped; the page script draws a
    // panel when it is asked for.
    let resolver = Resolver::for_all(engine);
    let data = panel_data(&resolver, &panels, &names);
    page::open(body, meta);
    let s = &paths.summary;
    let _ = write!(
        body,
        "<p class=\"summary\"><b>{}</b> paths: <span class=\"ok\">{} allowed</span>, <span class=\"bad\">{} denied</span>, <span class=\"unchecked\">{} not checked</span>; {} lint findings; {} allowed connections in the matrix.</p>",
        s.paths,
        s.allowed,
        s.denied,
        s.not_checked,
        findings.len(),
        m.connections
    );
    push(body, "<h2>Enforcement points</h2><p>Each Gateway, and the Ingresses of each controller, is one node listing its listeners with routes; listeners without routes are counted on one line. Click a node for the resolved policy of the endpoint that enforces it. Green: every check of the hop allows; red: a check denies; grey: not checked.</p><div class=\"graph\">");
    graph::svg(body, &g, &keys);
    push(body, "</div><div id=\"policy\" aria-live=\"polite\"><p id=\"policy-hint\">Select a node in the graph or a name in the matrix.</p><p id=\"policy-none\" hidden>Not an endpoint of the input: no policy of its own.</p><noscript><p>The resolved policies are drawn by the page script: <code>verdict policy</code> prints them.</p></noscript></div>");
    push(body, "<h2>Paths</h2>");
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
                        body,
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
        push(body, "</table>");
    }
    if !paths.findings.is_empty() {
        push(body, "<ul class=\"findings\">");
        for f in &paths.findings {
            let _ = write!(body, "<li>{}</li>", esc(f));
        }
        push(body, "</ul>");
    }
    if !idle.is_empty() {
        push(body, "<h3>Listeners without routes</h3><ul class=\"idle\">");
        for (gw, listeners) in &idle {
            let _ = write!(body, "<li>{}: {}</li>", esc(gw), esc(&listeners.join(", ")));
        }
        push(body, "</ul>");
    }
    push(body, "<h2>Lint findings</h2>");
    if findings.is_empty() {
        push(body, "<p>None.</p>");
    } else {
        push(body, "<table><tr><th>code</th><th>level</th><th>where</th><th>finding</th><th>how to fix</th></tr>");
        for f in findings {
            let _ = write!(
                body,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.level),
                esc(&f.code),
                esc(&f.level),
                esc(&f.location),
                esc(&capped(&f.message, "verdict lint")),
                esc(&f.help)
            );
        }
        push(body, "</table>");
    }
    matrix_view::section(body, m, &keys);
    push(body, "<script type=\"application/json\" id=\"panel-data\">");
    data.json(body);
    push(body, "</script>");
    page::close(body);
}

/// Appends text to the page (an error is kept by the sink).
fn push<W: Write>(out: &mut W, s: &str) {
    let _ = out.write_str(s);
}

/// Panels whose maps are built together, then added to the page data in
/// order and dropped.
const PANEL_BLOCK: usize = 256;

type Panel<'p> = (&'p str, Option<crate::engine::Party>);

/// The panel data of the page: the maps of a block of panels built on a
/// worker thread (two workers, alternate blocks), each block added to the
/// data on this thread in order while the workers build the next ones
/// (adding is about a quarter of the work at 100k and more than half on
/// the dense clusters, so this thread no longer waits for the maps nor
/// the workers for it). A worker holds one finished block until this
/// thread takes it (a rendezvous channel).
fn panel_data(
    resolver: &Resolver<'_, '_>,
    panels: &[Panel<'_>],
    names: &BTreeMap<u32, String>,
) -> policy::Panels {
    panel_data_in(resolver, panels, names, PANEL_BLOCK)
}

/// [`panel_data`] with blocks of `block` panels (the tests use small ones).
fn panel_data_in(
    resolver: &Resolver<'_, '_>,
    panels: &[Panel<'_>],
    names: &BTreeMap<u32, String>,
    block: usize,
) -> policy::Panels {
    let like = shared_bodies(resolver.engine(), panels);
    let build = |(start, part): &(usize, &[Panel<'_>])| {
        part.iter()
            .enumerate()
            .map(|(j, (_, party))| {
                let first = like.get(start + j).is_some_and(Option::is_none);
                party
                    .as_ref()
                    .filter(|_| first)
                    .map(|p| resolver.resolve(p))
            })
            .collect::<Vec<_>>()
    };
    let mut data = policy::Panels::default();
    let mut bodies: Vec<Option<u32>> = vec![None; panels.len()];
    let mut add =
        |data: &mut policy::Panels, i: usize, resolved: Option<crate::resolved::ResolvedPolicy>| {
            let Some((title, party)) = panels.get(i) else {
                return;
            };
            let shared = like.get(i).copied().flatten();
            let body = match (shared.and_then(|f| bodies.get(f).copied().flatten()), party) {
                (Some(b), Some(p)) => data.add_like(title, &p.identity, b),
                _ => data.add(title, resolved.as_ref(), names),
            };
            if let Some(slot) = bodies.get_mut(i) {
                *slot = body;
            }
        };
    let blocks: Vec<(usize, &[Panel<'_>])> = panels
        .chunks(block.max(1))
        .enumerate()
        .map(|(k, part)| (k * block.max(1), part))
        .collect();
    if blocks.len() < 2 {
        for b in &blocks {
            for (j, resolved) in build(b).into_iter().enumerate() {
                add(&mut data, b.0 + j, resolved);
            }
        }
        return data;
    }
    std::thread::scope(|s| {
        let mut rxs = Vec::new();
        for w in 0..2 {
            let (tx, rx) = std::sync::mpsc::sync_channel(0);
            rxs.push(rx);
            let (blocks, build) = (&blocks, &build);
            s.spawn(move || {
                for block in blocks.iter().skip(w).step_by(2) {
                    if tx.send(build(block)).is_err() {
                        break;
                    }
                }
            });
        }
        for (i, (start, _)) in blocks.iter().enumerate() {
            // A worker that stopped (it panicked) ends the loop; the scope
            // then resumes its panic.
            let Some(Ok(maps)) = rxs.get(i % 2).map(std::sync::mpsc::Receiver::recv) else {
                break;
            };
            for (j, resolved) in maps.into_iter().enumerate() {
                add(&mut data, start + j, resolved);
            }
        }
    });
    data
}

/// For each panel, the earlier panel whose body it shows, if any. An
/// endpoint's resolved policy follows from the rules selecting it and its
/// container ports (ingress named ports), under the agent settings every
/// endpoint shares (`Resolver::build_where` reads nothing else of the
/// subject but its name and identity, which the panel's title and identity
/// line show): endpoints with the same rules and ports have the same body,
/// so only the first is resolved (100k synthetic pods: 10,004 panels, 950
/// bodies). Reserved identities and names without a party are resolved
/// each. `panel_data_on_workers_equals_panel_by_panel` checks the bodies
/// against each panel's own map.
fn shared_bodies(engine: &Engine, panels: &[Panel<'_>]) -> Vec<Option<usize>> {
    let mut first: rustc_hash::FxHashMap<(Vec<usize>, String), usize> = Default::default();
    panels
        .iter()
        .enumerate()
        .map(|(i, (_, party))| {
            let p = party
                .as_ref()
                .filter(|p| p.identity.is_endpoint() && p.identity.reserved_name().is_none())?;
            let rules: Vec<usize> = engine
                .selecting_rules(&p.identity)
                .map(|r| std::ptr::from_ref(r) as usize)
                .collect();
            let key = (rules, format!("{:?}", p.ports));
            match first.get(&key) {
                Some(&f) => Some(f),
                None => {
                    first.insert(key, i);
                    None
                }
            }
        })
        .collect()
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
