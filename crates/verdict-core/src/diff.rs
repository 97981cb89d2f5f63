//! `verdict diff`: the connectivity one set of manifests has and the other
//! has not, explained by the policies that changed.

use crate::engine::Decision;
use crate::ingest::Inventory;
use crate::matrix::{Cell, Matrix};
use crate::paths::Status;
use crate::paths::{PathsReport, PodPath};
use crate::policy::Protocol;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub from: String,
    pub to: String,
    /// e.g. `TCP/8080`, `UDP/1000-2000`.
    pub ports: Vec<String>,
    /// The rules that decide it (on the side where it is allowed).
    pub rules: Vec<String>,
    /// The changed policies among those rules.
    pub because: Vec<String>,
    /// From outside the cluster (world or a CIDR) to anything but the
    /// ingress.
    pub world_exposure: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyChange {
    pub object: String,
    /// `added`, `removed` or `modified`.
    pub change: String,
    pub location: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub added: Vec<Change>,
    pub removed: Vec<Change>,
    /// Workloads that lost (or gained) every ingress policy: any source may
    /// now connect (or no longer may).
    pub newly_open_ingress: Vec<String>,
    pub no_longer_open_ingress: Vec<String>,
    pub policies: Vec<PolicyChange>,
    /// Paths (entry point -> route -> Service -> backend workload, as
    /// `verdict paths` computes them) whose verdict changed, or that were
    /// added or removed. Set with [`path_changes`].
    pub paths: Vec<PathChange>,
}

/// The verdict of one path on one side of the diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathState {
    /// Allowed, denied, or not checked (the input lacks what a hop needs).
    pub decision: Status,
    /// The backend's target port, when it resolves.
    pub target_port: Option<u16>,
    /// When denied: the first failing hop and its denied check (side, flow,
    /// explanation with the deciding rule), or the finding that stops it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<String>,
}

/// A path whose verdict changed between OLD and NEW, or that exists on one
/// side only. A path is identified by its entry point, route, backend
/// Service (and port) and backend workload.
#[derive(Debug, Clone, Serialize)]
pub struct PathChange {
    /// e.g. `Gateway shop/shop listener http :80`.
    pub entry: String,
    /// e.g. `HTTPRoute shop/shop`.
    pub route: String,
    /// e.g. `shop/api:80`.
    pub service: String,
    /// e.g. `shop/deployment/api`, or `(no backend pod)`.
    pub backend: String,
    /// `breaking` (allowed in OLD, denied in NEW, or gone while its route and
    /// Service are still there without an allowed path), `exposure` (allowed
    /// in NEW and not in OLD: newly reachable from the clients, world by
    /// default), `added` (new and denied), `removed` (gone, not breaking).
    pub change: String,
    pub old: Option<PathState>,
    pub new: Option<PathState>,
}

/// The name of a backend entry for a Service with no pod paths.
const NO_POD: &str = "(no backend pod)";

type PathKey = (String, String, String, String);

fn failing(p: &PodPath) -> Option<String> {
    if p.decision == Decision::Allowed {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(h) = p.hops.iter().find(|h| h.decision == Decision::Denied) {
        let checks: Vec<String> = h
            .checks
            .iter()
            .filter(|c| c.decision == Decision::Denied)
            .map(|c| {
                let mut t = crate::paths_render::check_text(c);
                if let Some(m) = c.near_miss.first() {
                    t.push_str(&format!(
                        " (near miss: {})",
                        m.to_text(|p| crate::names::party_text(p, true))
                    ));
                }
                t
            })
            .collect();
        parts.push(format!("{}: {}", h.name, checks.join("; ")));
    }
    parts.extend(p.findings.iter().cloned());
    if parts.is_empty() {
        parts.push("no hop could be checked".to_string());
    }
    Some(parts.join("; "))
}

/// Every path of a report by key, and per (entry, route, service) whether
/// one of its paths is allowed.
#[allow(clippy::type_complexity)]
fn path_index(
    r: &PathsReport,
) -> (
    BTreeMap<PathKey, PathState>,
    BTreeMap<(String, String, String), bool>,
) {
    let mut paths: BTreeMap<PathKey, PathState> = BTreeMap::new();
    let mut triples: BTreeMap<(String, String, String), bool> = BTreeMap::new();
    for ep in &r.entry_points {
        let entry = format!("{} listener {} :{}", ep.object, ep.listener, ep.port);
        for route in &ep.routes {
            let rname = route.route.to_string();
            for b in &route.backends {
                let mut states: Vec<(String, PathState)> = b
                    .paths
                    .iter()
                    .map(|p| {
                        let mut st = PathState {
                            decision: p.decision,
                            target_port: p.target_port,
                            failing: failing(p),
                        };
                        if !route.attached {
                            st.decision = Status::Denied;
                            st.failing = Some(format!(
                                "the route does not attach: {}",
                                route.findings.join("; ")
                            ));
                        }
                        (p.backend.clone(), st)
                    })
                    .collect();
                if states.is_empty() {
                    let mut why: Vec<String> = b.findings.clone();
                    why.extend(route.findings.iter().cloned());
                    states.push((
                        NO_POD.to_string(),
                        PathState {
                            decision: Status::Denied,
                            target_port: None,
                            failing: Some(if why.is_empty() {
                                "no backend pod".to_string()
                            } else {
                                why.join("; ")
                            }),
                        },
                    ));
                }
                for (backend, st) in states {
                    let any = triples
                        .entry((entry.clone(), rname.clone(), b.service.clone()))
                        .or_default();
                    *any |= st.decision == Decision::Allowed;
                    let key = (entry.clone(), rname.clone(), b.service.clone(), backend);
                    // The same Service behind several rules of a route: the
                    // path is allowed only when every occurrence is.
                    match paths.get_mut(&key) {
                        Some(prev) if prev.decision == Decision::Allowed => *prev = st,
                        Some(_) => {}
                        None => {
                            paths.insert(key, st);
                        }
                    }
                }
            }
        }
    }
    (paths, triples)
}

/// The paths that changed between two reports (sorted: breaking first,
/// then exposure, added, removed; each by entry, route, Service, backend).
pub fn path_changes(old: &PathsReport, new: &PathsReport) -> Vec<PathChange> {
    let (a, _) = path_index(old);
    let (b, b_triples) = path_index(new);
    let mut out = Vec::new();
    let mk = |k: &PathKey, change: &str, o: Option<&PathState>, n: Option<&PathState>| PathChange {
        entry: k.0.clone(),
        route: k.1.clone(),
        service: k.2.clone(),
        backend: k.3.clone(),
        change: change.to_string(),
        old: o.cloned(),
        new: n.cloned(),
    };
    for (k, n) in &b {
        match a.get(k) {
            Some(o) if o.decision == Decision::Allowed && n.decision == Decision::Denied => {
                out.push(mk(k, "breaking", Some(o), Some(n)));
            }
            Some(o) if o.decision == Decision::Denied && n.decision == Decision::Allowed => {
                out.push(mk(k, "exposure", Some(o), Some(n)));
            }
            Some(_) => {}
            None if n.decision == Decision::Allowed => out.push(mk(k, "exposure", None, Some(n))),
            None => out.push(mk(k, "added", None, Some(n))),
        }
    }
    for (k, o) in &a {
        if b.contains_key(k) {
            continue;
        }
        // Gone while its route still sends this Service traffic that no
        // backend pod now serves: the route is broken, not retired.
        let still_routed = b_triples
            .get(&(k.0.clone(), k.1.clone(), k.2.clone()))
            .is_some_and(|any_allowed| !any_allowed);
        let change = if o.decision == Decision::Allowed && still_routed {
            "breaking"
        } else {
            "removed"
        };
        out.push(mk(k, change, Some(o), None));
    }
    let rank = |c: &str| match c {
        "breaking" => 0,
        "exposure" => 1,
        "added" => 2,
        _ => 3,
    };
    out.sort_by(|x, y| {
        (rank(&x.change), &x.entry, &x.route, &x.service, &x.backend).cmp(&(
            rank(&y.change),
            &y.entry,
            &y.route,
            &y.service,
            &y.backend,
        ))
    });
    out
}

impl PathChange {
    /// `entry -> route -> Service svc -> backend`.
    pub fn title(&self) -> String {
        format!(
            "{} -> {} -> Service {} -> {}",
            self.entry, self.route, self.service, self.backend
        )
    }

    fn verdicts(&self) -> String {
        let d = |s: &Option<PathState>| {
            s.as_ref()
                .map_or("absent".to_string(), |s| s.decision.to_string())
        };
        format!("{} -> {}", d(&self.old), d(&self.new))
    }

    /// Why the path is denied now (NEW), or was (OLD) for a removed one.
    fn why(&self) -> Option<&str> {
        self.new
            .as_ref()
            .and_then(|s| s.failing.as_deref())
            .or_else(|| {
                if self.new.is_none() && self.change == "breaking" {
                    Some("the path is gone: its route and Service remain, no backend pod is reachable")
                } else {
                    None
                }
            })
    }
}

/// A Markdown table cell: pipes and line breaks escaped.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

type Ranges = BTreeMap<Protocol, BTreeSet<(u16, u16)>>;

fn ranges(c: &Cell) -> Ranges {
    let mut out: Ranges = BTreeMap::new();
    for p in &c.ports {
        out.entry(p.protocol).or_default().insert((p.from, p.to));
    }
    out
}

/// Ports of `a` not in `b`, per protocol.
fn minus(a: &Ranges, b: &Ranges) -> Vec<String> {
    let mut out = Vec::new();
    for (proto, rs) in a {
        let other: Vec<(u16, u16)> = b
            .get(proto)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for &(from, to) in rs {
            let mut cursor = u32::from(from);
            let end = u32::from(to);
            for &(x, y) in &other {
                let (x, y) = (u32::from(x), u32::from(y));
                if y < cursor || x > end {
                    continue;
                }
                if x > cursor {
                    out.push(fmt_range(*proto, cursor, x - 1));
                }
                cursor = cursor.max(y + 1);
            }
            if cursor <= end {
                out.push(fmt_range(*proto, cursor, end));
            }
        }
    }
    out
}

fn fmt_range(p: Protocol, a: u32, b: u32) -> String {
    let port = |x: u32| u16::try_from(x).unwrap_or(u16::MAX);
    format!("{p}/{}", crate::policy::port_text(port(a), port(b)))
}

fn is_outside(name: &str) -> bool {
    name.starts_with("reserved:world") || name.starts_with("cidr ")
}

/// Policies added, removed or modified between two inventories.
pub fn policy_changes(old: &Inventory, new: &Inventory) -> Vec<PolicyChange> {
    let key = |inv: &Inventory| -> BTreeMap<String, (String, String)> {
        inv.policies
            .iter()
            .map(|p| {
                let body = serde_json::to_string(&(
                    &p.rules
                        .iter()
                        .map(|r| {
                            (
                                &r.subject,
                                &r.default_deny,
                                r.entries
                                    .iter()
                                    .map(|e| (&e.direction, e.deny, &e.peers, &e.ports, &e.l7))
                                    .collect::<Vec<_>>(),
                            )
                        })
                        .collect::<Vec<_>>(),
                    &p.rejected,
                ))
                .unwrap_or_default();
                (p.object.to_string(), (body, p.location.to_string()))
            })
            .collect()
    };
    let (a, b) = (key(old), key(new));
    let mut out = Vec::new();
    for (obj, (body, loc)) in &b {
        match a.get(obj) {
            None => out.push(PolicyChange {
                object: obj.clone(),
                change: "added".into(),
                location: loc.clone(),
            }),
            Some((old_body, _)) if old_body != body => out.push(PolicyChange {
                object: obj.clone(),
                change: "modified".into(),
                location: loc.clone(),
            }),
            _ => {}
        }
    }
    for (obj, (_, loc)) in &a {
        if !b.contains_key(obj) {
            out.push(PolicyChange {
                object: obj.clone(),
                change: "removed".into(),
                location: loc.clone(),
            });
        }
    }
    out
}

fn index(m: &Matrix) -> BTreeMap<(String, String), &Cell> {
    m.cells
        .iter()
        .map(|c| ((c.from.name.clone(), c.to.name.clone()), c))
        .collect()
}

/// Compares two matrices.
pub fn diff(old: &Matrix, new: &Matrix, policies: Vec<PolicyChange>) -> Diff {
    let (a, b) = (index(old), index(new));
    let changed: Vec<&PolicyChange> = policies.iter().collect();
    let because = |rules: &[String]| -> Vec<String> {
        let mut out: Vec<String> = changed
            .iter()
            .filter(|pc| {
                let short = pc.object.split_once(' ').map(|x| x.1).unwrap_or(&pc.object);
                rules.iter().any(|r| r.starts_with(&format!("{short} ")))
            })
            .map(|pc| format!("{} ({})", pc.object, pc.change))
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let empty = Ranges::new();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (k, c) in &b {
        let old_r = a.get(k).map(|o| ranges(o)).unwrap_or_default();
        let ports = minus(&ranges(c), &old_r);
        if !ports.is_empty() {
            added.push(Change {
                from: k.0.clone(),
                to: k.1.clone(),
                ports,
                rules: c.rules.clone(),
                because: because(&c.rules),
                world_exposure: is_outside(&k.0) && k.1 != "reserved:ingress",
            });
        }
    }
    for (k, c) in &a {
        let new_r = b.get(k).map(|n| ranges(n)).unwrap_or_else(|| empty.clone());
        let ports = minus(&ranges(c), &new_r);
        if !ports.is_empty() {
            // Why it closed: the changed policies among the new rules of the
            // destination, or among the old rules that allowed it.
            let mut why = because(&c.rules);
            if why.is_empty() {
                why = changed
                    .iter()
                    .map(|pc| format!("{} ({})", pc.object, pc.change))
                    .collect();
            }
            removed.push(Change {
                from: k.0.clone(),
                to: k.1.clone(),
                ports,
                rules: c.rules.clone(),
                because: why,
                world_exposure: false,
            });
        }
    }
    let set = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<String>>();
    let (oi, ni) = (set(&old.open_ingress), set(&new.open_ingress));
    Diff {
        added,
        removed,
        newly_open_ingress: ni.difference(&oi).cloned().collect(),
        no_longer_open_ingress: oi.difference(&ni).cloned().collect(),
        policies,
        paths: Vec::new(),
    }
}

impl Diff {
    /// New exposure to outside the cluster: a connection from world/a CIDR
    /// to something other than the ingress, or a workload that lost every
    /// ingress policy.
    pub fn world_exposure(&self) -> bool {
        self.added.iter().any(|c| c.world_exposure) || !self.newly_open_ingress.is_empty()
    }

    /// Paths allowed in OLD that NEW denies (or no longer serves).
    pub fn breaking(&self) -> usize {
        self.paths.iter().filter(|p| p.change == "breaking").count()
    }

    /// Paths newly reachable from the clients (world by default).
    pub fn path_exposure(&self) -> usize {
        self.paths.iter().filter(|p| p.change == "exposure").count()
    }

    fn paths_text(&self, out: &mut String) {
        if self.paths.is_empty() {
            return;
        }
        out.push_str("paths changed:\n");
        for p in &self.paths {
            let tag = match p.change.as_str() {
                "breaking" => "BREAKING",
                "exposure" => "EXPOSURE",
                "added" => "added",
                _ => "removed",
            };
            out.push_str(&format!("  {tag} {}: {}\n", p.title(), p.verdicts()));
            if let Some(why) = p.why() {
                out.push_str(&format!("      failing hop: {why}\n"));
            }
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if !self.policies.is_empty() {
            out.push_str("policies changed:\n");
            for p in &self.policies {
                out.push_str(&format!("  {} {} ({})\n", p.change, p.object, p.location));
            }
        }
        self.paths_text(&mut out);
        for (title, list, sign) in [
            ("connectivity added:", &self.added, '+'),
            ("connectivity removed:", &self.removed, '-'),
        ] {
            if list.is_empty() {
                continue;
            }
            out.push_str(title);
            out.push('\n');
            for c in list {
                let flag = if c.world_exposure {
                    "  [WORLD EXPOSURE]"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "  {sign} {} -> {} {}{flag}\n",
                    crate::names::node_text(&c.from),
                    crate::names::node_text(&c.to),
                    c.ports.join(" ")
                ));
                if !c.because.is_empty() {
                    out.push_str(&format!("      because: {}\n", c.because.join(", ")));
                }
            }
        }
        for (title, list) in [
            (
                "now without any ingress policy (any source may connect):",
                &self.newly_open_ingress,
            ),
            (
                "no longer without ingress policy:",
                &self.no_longer_open_ingress,
            ),
        ] {
            if !list.is_empty() {
                out.push_str(&format!("{title} {}\n", list.join(", ")));
            }
        }
        out.push_str(&format!(
            "{} added ({} world exposure), {} removed, {} changed; paths: {} breaking, {} newly exposed, {} added denied, {} removed\n",
            crate::text::plural(self.added.len(), "connection", "connections"),
            self.added.iter().filter(|c| c.world_exposure).count(),
            self.removed.len(),
            crate::text::plural(self.policies.len(), "policy", "policies"),
            self.breaking(),
            self.path_exposure(),
            self.paths.iter().filter(|p| p.change == "added").count(),
            self.paths.iter().filter(|p| p.change == "removed").count(),
        ));
        out
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### verdict diff\n\n");
        let mut warnings = Vec::new();
        if self.breaking() > 0 {
            warnings.push(":x: paths broken.");
        }
        if self.world_exposure() {
            warnings.push(":warning: new exposure to outside the cluster.");
        }
        if self.path_exposure() > 0 {
            warnings.push(":warning: paths newly reachable from outside.");
        }
        out.push_str(&format!(
            "{} **{} added, {} removed, {} changed; {} broken, {} newly exposed**\n\n",
            if warnings.is_empty() {
                ":white_check_mark:".to_string()
            } else {
                warnings.join(" ")
            },
            crate::text::plural(self.added.len(), "connection", "connections"),
            self.removed.len(),
            crate::text::plural(self.policies.len(), "policy", "policies"),
            crate::text::plural(self.breaking(), "path", "paths"),
            self.path_exposure(),
        ));
        if !self.paths.is_empty() {
            out.push_str(
                "#### Paths\n\n| change | path | verdict | failing hop |\n|---|---|---|---|\n",
            );
            for p in &self.paths {
                let mark = match p.change.as_str() {
                    "breaking" => ":x: breaking",
                    "exposure" => ":warning: exposure",
                    other => other,
                };
                out.push_str(&format!(
                    "| {mark} | {} | {} | {} |\n",
                    cell(&p.title()),
                    cell(&p.verdicts()),
                    cell(p.why().unwrap_or(""))
                ));
            }
            out.push('\n');
        }
        if !self.policies.is_empty() {
            out.push_str("| policy | change |\n|---|---|\n");
            for p in &self.policies {
                out.push_str(&format!("| {} | {} |\n", cell(&p.object), p.change));
            }
            out.push('\n');
        }
        for (title, list) in [("Added", &self.added), ("Removed", &self.removed)] {
            if list.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "#### {title}\n\n| from | to | ports | because |\n|---|---|---|---|\n"
            ));
            for c in list {
                let warn = if c.world_exposure { ":warning: " } else { "" };
                out.push_str(&format!(
                    "| {warn}{} | {} | {} | {} |\n",
                    cell(&c.from),
                    cell(&c.to),
                    c.ports.join(" "),
                    cell(&c.because.join(", "))
                ));
            }
            out.push('\n');
        }
        if !self.newly_open_ingress.is_empty() {
            out.push_str(&format!(
                ":warning: now without any ingress policy: {}\n",
                self.newly_open_ingress.join(", ")
            ));
        }
        out
    }
}
