//! The enforcement-point graph of the report: clients -> entry points (each
//! Gateway its own node, the Ingresses of one controller one node) ->
//! backends, as inline SVG. A node lists the listeners that have routes;
//! listeners without routes are collapsed into one line per node.

use super::{esc, key, Keys};
use crate::engine::Decision;
use crate::paths::{Controller, EntryPoint, PathsReport, Status};
use crate::text::{escape, plural};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Most listener lines drawn in one entry node; the rest are counted.
const MAX_LINES: usize = 6;

/// The state of an edge: the worst of the hops it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EdgeState {
    Allowed,
    NotChecked,
    Denied,
}

/// One line of an entry node: a listener with routes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    text: String,
    status: Status,
}

/// A Gateway, or the Ingresses of one controller (shown by its key in
/// [`Graph::entries`]: `Gateway shop/shop`, `Ingress controller Cilium`).
#[derive(Debug, Default)]
pub(super) struct EntryNode {
    /// Where hop 1 ends: Cilium's Envoy or the controller's pods.
    via: String,
    /// The party that enforces hop 1 (its resolved policy is shown on click).
    pub(super) enforcer: Option<String>,
    lines: BTreeSet<Line>,
    /// Names of the listeners without routes.
    idle: BTreeSet<String>,
}

/// Node identity: column and name (a name may be a client and a backend).
type NodeId = (u8, String);

#[derive(Debug, Default)]
pub(super) struct Graph {
    pub(super) clients: BTreeSet<String>,
    /// Sorted by kind then name: `Gateway ...` before `Ingress controller ...`.
    pub(super) entries: BTreeMap<String, EntryNode>,
    pub(super) backends: BTreeSet<String>,
    edges: BTreeMap<(NodeId, NodeId), EdgeState>,
}

impl Graph {
    fn edge(&mut self, a: NodeId, b: NodeId, s: EdgeState) {
        let e = self.edges.entry((a, b)).or_insert(s);
        *e = (*e).max(s);
    }
}

fn status_of(s: Status) -> EdgeState {
    match s {
        Status::Allowed => EdgeState::Allowed,
        Status::Denied => EdgeState::Denied,
        Status::NotChecked => EdgeState::NotChecked,
    }
}

fn controller_text(c: &Controller) -> (String, Option<String>) {
    match c {
        Controller::Cilium => (
            "via Cilium Envoy (reserved:ingress)".to_string(),
            Some("reserved:ingress".to_string()),
        ),
        Controller::Pods { pods, .. } => (
            format!("via pods {}", pods.join(", ")),
            pods.first().cloned(),
        ),
        Controller::Unknown { .. } => ("controller pods not in the input".to_string(), None),
    }
}

/// The entry node an entry point belongs to, by its key.
fn entry_key(ep: &EntryPoint) -> String {
    if ep.object.kind == "Ingress" {
        let name = match &ep.controller {
            Controller::Cilium => "Cilium".to_string(),
            Controller::Pods { controller, .. } | Controller::Unknown { controller } => {
                controller.clone()
            }
        };
        format!("Ingress controller {name}")
    } else {
        ep.object.to_string()
    }
}

/// The listener's status: the worst of its paths (denied, not checked,
/// allowed); a route that does not attach counts as denied.
fn listener_status(ep: &EntryPoint) -> Status {
    let mut worst = EdgeState::Allowed;
    for r in &ep.routes {
        if !r.attached {
            worst = worst.max(EdgeState::Denied);
        }
        for b in &r.backends {
            worst = worst.max(status_of(b.decision));
            for p in &b.paths {
                worst = worst.max(status_of(p.decision));
            }
        }
    }
    match worst {
        EdgeState::Allowed => Status::Allowed,
        EdgeState::NotChecked => Status::NotChecked,
        EdgeState::Denied => Status::Denied,
    }
}

pub(super) fn graph(paths: &PathsReport) -> Graph {
    let mut g = Graph::default();
    for ep in &paths.entry_points {
        let ek = entry_key(ep);
        let node = g.entries.entry(ek.clone()).or_insert_with(|| {
            let (via, enforcer) = controller_text(&ep.controller);
            EntryNode {
                via,
                enforcer,
                ..EntryNode::default()
            }
        });
        let is_ingress = ep.object.kind == "Ingress";
        let has_routes = if is_ingress {
            ep.routes.iter().any(|r| !r.backends.is_empty())
        } else {
            !ep.routes.is_empty()
        };
        let listener = if is_ingress {
            format!("{} {} :{}", ep.object.short(), ep.listener, ep.port)
        } else {
            format!("{} {} :{}", ep.listener, ep.protocol, ep.port)
        };
        if !has_routes {
            node.idle.insert(listener);
            continue;
        }
        let count = if is_ingress {
            plural(
                ep.routes.iter().map(|r| r.backends.len()).sum(),
                "backend",
                "backends",
            )
        } else {
            plural(ep.routes.len(), "route", "routes")
        };
        node.lines.insert(Line {
            text: format!("{listener}: {count}"),
            status: listener_status(ep),
        });
        let entry: NodeId = (1, ek);
        for r in &ep.routes {
            for b in &r.backends {
                for p in &b.paths {
                    g.backends.insert(p.backend.clone());
                    let backend: NodeId = (2, p.backend.clone());
                    for h in &p.hops {
                        if h.name.starts_with("outside -> ingress") {
                            for c in h.checks.iter().filter(|c| c.side.starts_with("ingress of")) {
                                g.clients.insert(c.source.clone());
                                let s = if c.decision == Decision::Allowed {
                                    EdgeState::Allowed
                                } else {
                                    EdgeState::Denied
                                };
                                g.edge((0, c.source.clone()), entry.clone(), s);
                            }
                        } else {
                            g.edge(entry.clone(), backend.clone(), status_of(h.decision));
                        }
                    }
                }
            }
        }
    }
    g
}

/// Left edge and width of each column; the drawing is `WIDTH` wide and
/// scales down with the page (to 640 px, then its box scrolls).
const XS: [f64; 3] = [16.0, 276.0, 696.0];
const WS: [f64; 3] = [220.0, 360.0, 248.0];
const WIDTH: f64 = 960.0;
const H_NODE: f64 = 34.0;
const H_LINE: f64 = 17.0;
const GAP: f64 = 16.0;

/// Text shown in a node: control characters escaped, cut at `max` characters.
fn shown(s: &str, max: usize) -> String {
    let s = escape(s);
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    } else {
        s.into_owned()
    }
}

fn line_class(s: Status) -> &'static str {
    match s {
        Status::Allowed => "l-ok",
        Status::Denied => "l-denied",
        Status::NotChecked => "l-unchecked",
    }
}

/// Lines of an entry node: (text, tooltip, class).
fn entry_lines(n: &EntryNode) -> Vec<(String, String, &'static str)> {
    let mut out: Vec<(String, String, &'static str)> = n
        .lines
        .iter()
        .take(MAX_LINES)
        .map(|l| {
            let mark = match l.status {
                Status::Allowed => "✓",
                Status::Denied => "✗",
                Status::NotChecked => "?",
            };
            (
                format!("{mark} {}", l.text),
                l.text.clone(),
                line_class(l.status),
            )
        })
        .collect();
    if n.lines.len() > MAX_LINES {
        let more = plural(n.lines.len() - MAX_LINES, "listener", "listeners");
        out.push((format!("+ {more} with routes"), String::new(), "l-idle"));
    }
    if !n.idle.is_empty() {
        let names: Vec<&str> = n.idle.iter().map(String::as_str).collect();
        out.push((
            format!(
                "{} without routes",
                plural(n.idle.len(), "listener", "listeners")
            ),
            names.join("; "),
            "l-idle",
        ));
    }
    out
}

fn node_height(lines: usize) -> f64 {
    H_NODE + lines as f64 * H_LINE + if lines > 0 { 6.0 } else { 0.0 }
}

/// Writes the graph to `out`.
pub(super) fn svg<W: Write>(out: &mut W, g: &Graph, keys: &Keys) {
    // (column, name) -> (x, y, height): the node's box.
    let mut pos: BTreeMap<NodeId, (f64, f64, f64)> = BTreeMap::new();
    let mut heights = [44.0_f64; 3];
    let mut place = |col: u8, name: &str, h: f64| {
        let i = usize::from(col);
        let y = heights[i];
        pos.insert((col, name.to_string()), (XS[i], y, h));
        heights[i] = y + h + GAP;
    };
    for c in &g.clients {
        place(0, c, H_NODE);
    }
    for (k, n) in &g.entries {
        place(1, k, node_height(entry_lines(n).len()) + 16.0);
    }
    for b in &g.backends {
        place(2, b, H_NODE);
    }
    let height = heights.iter().fold(80.0_f64, |a, &b| a.max(b)) + 10.0;
    let _ = writeln!(
        out,
        "<svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"clients, entry points and backends\">"
    );
    for (i, title) in [
        "clients",
        "entry points (hop 1 target)",
        "backends (hop 2 target)",
    ]
    .iter()
    .enumerate()
    {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"24\" class=\"col\">{title}</text>",
            XS[i]
        );
    }
    for ((a, b), state) in &g.edges {
        let (Some(&(x1, y1, _)), Some(&(x2, y2, _))) = (pos.get(a), pos.get(b)) else {
            continue;
        };
        let (class, word) = match state {
            EdgeState::Allowed => ("edge ok", "allowed"),
            EdgeState::Denied => ("edge denied", "denied"),
            EdgeState::NotChecked => ("edge unchecked", "not checked"),
        };
        let x1 = x1 + WS[usize::from(a.0)];
        let bend = (x2 - x1) / 2.0;
        let (ya, yb) = (y1 + H_NODE / 2.0, y2 + H_NODE / 2.0);
        let _ = writeln!(
            out,
            "<path class=\"{class}\" d=\"M{x1:.0},{ya:.0} C{:.0},{ya:.0} {:.0},{yb:.0} {x2:.0},{yb:.0}\"><title>{} -> {}: {word}</title></path>",
            x1 + bend,
            x2 - bend,
            esc(&a.1),
            esc(&b.1),
        );
    }
    for ((col, name), (x, y, h)) in &pos {
        let w = WS[usize::from(*col)];
        let (data, tip, extra) = if *col == 1 {
            let n = g.entries.get(name);
            let enforcer = n.and_then(|n| n.enforcer.as_deref()).unwrap_or("");
            let via = n.map_or("", |n| n.via.as_str());
            (key(keys, enforcer), format!("{name} {via}"), n)
        } else {
            (key(keys, name), name.clone(), None)
        };
        let _ = write!(
            out,
            "<g class=\"node{}\" data-name=\"{data}\" tabindex=\"0\"><title>{}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"6\"/><text x=\"{}\" y=\"{}\" class=\"name\">{}</text>",
            if *col == 1 { " entry" } else { "" },
            esc(&tip),
            x + 10.0,
            y + 22.0,
            esc(&shown(name, (w / 7.2) as usize)),
        );
        if let Some(n) = extra {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" class=\"via\">{}</text>",
                x + 10.0,
                y + 38.0,
                esc(&shown(&n.via, (w / 6.3) as usize))
            );
            for (i, (text, title, class)) in entry_lines(n).iter().enumerate() {
                let _ = write!(
                    out,
                    "<text x=\"{}\" y=\"{}\" class=\"line {class}\"><title>{}</title>{}</text>",
                    x + 14.0,
                    y + 58.0 + i as f64 * H_LINE,
                    esc(title),
                    esc(&shown(text, (w / 6.6) as usize))
                );
            }
        }
        let _ = out.write_str("</g>\n");
    }
    let _ = out.write_str("</svg>\n");
}
