//! `verdict generate`: the least-privilege policies that make exactly the
//! intended ingress paths work.
//!
//! From the paths of every route (see paths.rs):
//!
//! * Cilium's Envoy: a CCNP admitting the clients to `reserved:ingress` on
//!   the listener ports, a CCNP letting `reserved:ingress` reach exactly the
//!   backend pods on their target ports, and per backend Service a CNP
//!   admitting `fromEntities: [ingress]` on its target ports;
//! * other controllers: the same shape with the controller pods' labels and
//!   namespace (and their API server and DNS egress, which a controller needs
//!   once its egress is restricted).
//!
//! The output is deterministic YAML; [`verify`] loads it back, re-runs the
//! paths and diffs connectivity against the input.

use crate::connectivity::{added, connectivity, parties, Conn};
use crate::engine::{Decision, Engine, Party};
use crate::ingest::Inventory;
use crate::paths::{paths, Controller, PathOptions, PathsReport};
use crate::policy::Protocol;
use crate::routes::Routing;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default)]
pub struct GenerateOptions {
    /// Options for the paths the policies serve (clients, filters, ...).
    pub paths: PathOptions,
    /// Write backend and controller policies as clusterwide policies.
    pub prefer_ccnp: bool,
    /// Generated backend policies only add allows
    /// (`enableDefaultDeny.ingress: false`) instead of putting the backends
    /// into default deny.
    pub no_default_deny: bool,
    /// Only generate what the currently denied hops need.
    pub only_missing: bool,
}

/// A generated object.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// What it serves (routes and entry points).
    pub serves: Vec<String>,
    pub yaml: String,
}

type Labels = BTreeMap<String, String>;
type PortSet = BTreeSet<(Protocol, u16)>;

#[derive(Default)]
struct Backend {
    from_ingress: PortSet,
    from_controllers: BTreeMap<(String, Labels), PortSet>,
    serves: BTreeSet<String>,
}

#[derive(Default)]
struct Ctrl {
    clients: PortSet,
    remote_node: bool,
    to_backends: BTreeMap<(String, Labels), PortSet>,
    serves: BTreeSet<String>,
}

#[derive(Default)]
struct Plan {
    cilium_clients: PortSet,
    cilium_to_backends: BTreeMap<(String, Labels), PortSet>,
    cilium_serves: BTreeSet<String>,
    controllers: BTreeMap<(String, Labels), Ctrl>,
    backends: BTreeMap<(String, Labels), Backend>,
    /// Paths that cannot be served, and why.
    skipped: Vec<String>,
}

fn protocol_of(s: &str) -> Protocol {
    if s.contains("UDP") {
        Protocol::Udp
    } else {
        Protocol::Tcp
    }
}

fn plan(engine: &Engine, report: &PathsReport, opts: &GenerateOptions) -> Plan {
    let inv = engine.inv;
    let mut plan = Plan::default();
    let denied = |checks: &[crate::paths::Check], side_prefix: &str| {
        checks
            .iter()
            .any(|c| c.side.starts_with(side_prefix) && c.decision == Decision::Denied)
    };
    for ep in &report.entry_points {
        let proto = protocol_of(&ep.protocol);
        for r in &ep.routes {
            if !r.attached {
                continue;
            }
            for b in &r.backends {
                let serves = format!(
                    "{} via {} {} :{} -> Service {}",
                    r.route, ep.object, ep.listener, ep.port, b.service
                );
                if !b.findings.is_empty() {
                    plan.skipped
                        .push(format!("{serves}: {}", b.findings.join("; ")));
                }
                let svc_name = b.service.split(':').next().unwrap_or_default();
                let svc = inv.services.iter().find(|s| s.object.short() == svc_name);
                for p in &b.paths {
                    let (Some(t), Some(svc)) = (p.target_port, svc) else {
                        if !p.findings.is_empty() {
                            plan.skipped.push(format!(
                                "{serves} -> {}: {}",
                                p.backend,
                                p.findings.join("; ")
                            ));
                        }
                        continue;
                    };
                    let Some(sel) = &svc.selector else { continue };
                    let key = (svc.namespace.clone(), sel.clone());
                    let (hop1, hop2) = match (p.hops.first(), p.hops.get(1)) {
                        (Some(a), Some(b)) => (a, b),
                        _ => continue,
                    };
                    match &ep.controller {
                        Controller::Cilium => {
                            let port = hop1.checks.first().map_or(ep.port, |c| c.port);
                            if !opts.only_missing
                                || denied(&hop1.checks, "ingress of reserved:ingress")
                            {
                                plan.cilium_clients.insert((proto, port));
                            }
                            if !opts.only_missing
                                || denied(&hop2.checks, "egress of reserved:ingress")
                            {
                                plan.cilium_to_backends
                                    .entry(key.clone())
                                    .or_default()
                                    .insert((proto, t));
                            }
                            if !opts.only_missing || denied(&hop2.checks, "ingress of ") {
                                let be = plan.backends.entry(key.clone()).or_default();
                                be.from_ingress.insert((proto, t));
                                be.serves.insert(serves.clone());
                            }
                            plan.cilium_serves.insert(serves.clone());
                        }
                        Controller::Pods { selectors, .. } => {
                            for pair in p.hops.chunks(2) {
                                let [h1, h2] = pair else { continue };
                                let Some(c0) = h1.checks.first() else {
                                    continue;
                                };
                                let Some(ckey) = selectors
                                    .get(&c0.destination)
                                    .cloned()
                                    .filter(|(_, l)| !l.is_empty())
                                else {
                                    plan.skipped.push(format!(
                                        "{serves}: no labels select controller {}",
                                        c0.destination
                                    ));
                                    continue;
                                };
                                add_ctrl(
                                    &mut plan, ckey, h1, h2, c0.port, proto, t, &key, &serves, opts,
                                );
                            }
                        }
                        Controller::Unknown { .. } => {}
                    }
                }
            }
        }
    }
    plan
}

#[allow(clippy::too_many_arguments)]
fn add_ctrl(
    plan: &mut Plan,
    ckey: (String, Labels),
    h1: &crate::paths::Hop,
    h2: &crate::paths::Hop,
    hop1_port: u16,
    proto: Protocol,
    target: u16,
    backend: &(String, Labels),
    serves: &str,
    opts: &GenerateOptions,
) {
    let missing = |h: &crate::paths::Hop, p: &str| {
        h.checks
            .iter()
            .any(|c| c.side.starts_with(p) && c.decision == Decision::Denied)
    };
    let c = plan.controllers.entry(ckey.clone()).or_default();
    if !opts.only_missing || missing(h1, "ingress of ") {
        c.clients.insert((proto, hop1_port));
        c.remote_node |= h1.checks.iter().any(|x| x.source == "reserved:remote-node");
    }
    if !opts.only_missing || missing(h2, "egress of ") {
        c.to_backends
            .entry(backend.clone())
            .or_default()
            .insert((proto, target));
    }
    c.serves.insert(serves.to_string());
    if !opts.only_missing
        || h2
            .checks
            .iter()
            .any(|x| x.side.starts_with("ingress of ") && x.decision == Decision::Denied)
    {
        let be = plan.backends.entry(backend.clone()).or_default();
        be.from_controllers
            .entry(ckey)
            .or_default()
            .insert((proto, target));
        be.serves.insert(serves.to_string());
    }
}

// ---- YAML emission -------------------------------------------------------

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn labels_flow(ns: Option<&str>, labels: &Labels) -> String {
    let mut parts = Vec::new();
    if let Some(ns) = ns {
        parts.push(format!(
            "{}: {}",
            q("k8s:io.kubernetes.pod.namespace"),
            q(ns)
        ));
    }
    for (k, v) in labels {
        parts.push(format!("{}: {}", q(k), q(v)));
    }
    format!("{{{}}}", parts.join(", "))
}

fn ports_yaml(ports: &PortSet, indent: &str) -> String {
    let mut out = format!("{indent}toPorts:\n{indent}  - ports:\n");
    for (p, n) in ports {
        out.push_str(&format!(
            "{indent}      - {{port: \"{n}\", protocol: {p}}}\n"
        ));
    }
    out
}

/// A readable, valid object name.
pub fn object_name(parts: &[&str]) -> String {
    let raw = parts.join("-").to_ascii_lowercase();
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-');
    s.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

fn header(serves: &BTreeSet<String>) -> String {
    let mut out = String::from("# Generated by verdict generate. Serves:\n");
    for s in serves {
        out.push_str(&format!("#   {s}\n"));
    }
    out
}

struct Doc {
    kind: &'static str,
    namespace: Option<String>,
    name: String,
    serves: BTreeSet<String>,
    selector: String,
    body: String,
    default_deny_off: bool,
}

fn render(d: &Doc) -> String {
    let mut out = header(&d.serves);
    out.push_str(&format!(
        "apiVersion: cilium.io/v2\nkind: {}\nmetadata:\n  name: {}\n",
        d.kind, d.name
    ));
    if let Some(ns) = &d.namespace {
        out.push_str(&format!("  namespace: {ns}\n"));
    }
    out.push_str(&format!("spec:\n  endpointSelector:{}\n", d.selector));
    if d.default_deny_off {
        out.push_str("  enableDefaultDeny: {ingress: false}\n");
    }
    out.push_str(&d.body);
    out
}

fn clients_yaml(clients: &[String]) -> String {
    let cidrs: Vec<&String> = clients
        .iter()
        .filter(|c| c.contains('/') || c.parse::<std::net::IpAddr>().is_ok())
        .collect();
    if cidrs.is_empty() {
        "    - fromEntities: [world]\n".to_string()
    } else {
        let mut out = String::from("    - fromCIDRSet:\n");
        for c in cidrs {
            let c = crate::cidr::Cidr::parse(c)
                .map(|x| x.to_string())
                .unwrap_or_else(|_| c.clone());
            out.push_str(&format!("        - cidr: {c}\n"));
        }
        out
    }
}

/// Generates the policies for every path of `report`.
pub fn generate(
    engine: &Engine,
    report: &PathsReport,
    opts: &GenerateOptions,
) -> (Vec<Generated>, Vec<String>) {
    let plan = plan(engine, report, opts);
    let mut docs: Vec<Doc> = Vec::new();
    let ingress_sel =
        "\n    matchExpressions:\n      - {key: \"reserved:ingress\", operator: Exists}"
            .to_string();
    if !plan.cilium_clients.is_empty() {
        let mut body = String::from("  ingress:\n");
        body.push_str(&clients_yaml(&opts.paths.clients));
        body.push_str(&ports_yaml(&plan.cilium_clients, "      "));
        docs.push(Doc {
            kind: "CiliumClusterwideNetworkPolicy",
            namespace: None,
            name: "verdict-ingress-from-clients".into(),
            serves: plan.cilium_serves.clone(),
            selector: ingress_sel.clone(),
            body,
            default_deny_off: false,
        });
    }
    if !plan.cilium_to_backends.is_empty() {
        let mut body = String::from("  egress:\n");
        for ((ns, labels), ports) in &plan.cilium_to_backends {
            body.push_str(&format!(
                "    - toEndpoints:\n        - matchLabels: {}\n",
                labels_flow(Some(ns), labels)
            ));
            body.push_str(&ports_yaml(ports, "      "));
        }
        docs.push(Doc {
            kind: "CiliumClusterwideNetworkPolicy",
            namespace: None,
            name: "verdict-ingress-to-backends".into(),
            serves: plan.cilium_serves.clone(),
            selector: ingress_sel,
            body,
            default_deny_off: false,
        });
    }
    for ((ns, labels), c) in &plan.controllers {
        let ccnp = opts.prefer_ccnp;
        let mut body = String::new();
        if !c.clients.is_empty() {
            body.push_str("  ingress:\n");
            body.push_str(&clients_yaml(&opts.paths.clients));
            body.push_str(&ports_yaml(&c.clients, "      "));
            if c.remote_node {
                body.push_str("    # externalTrafficPolicy: Cluster: clients that arrive through other nodes are SNATed\n");
                body.push_str("    - fromEntities: [remote-node]\n");
                body.push_str(&ports_yaml(&c.clients, "      "));
            }
        }
        if !c.to_backends.is_empty() {
            body.push_str("  egress:\n");
            for ((bns, blabels), ports) in &c.to_backends {
                body.push_str(&format!(
                    "    - toEndpoints:\n        - matchLabels: {}\n",
                    labels_flow(Some(bns), blabels)
                ));
                body.push_str(&ports_yaml(ports, "      "));
            }
            body.push_str("    # the controller watches the API server and resolves names\n");
            body.push_str("    - toEntities: [kube-apiserver]\n");
            body.push_str(&ports_yaml(
                &[(Protocol::Tcp, 443), (Protocol::Tcp, 6443)]
                    .into_iter()
                    .collect(),
                "      ",
            ));
            body.push_str("    - toEndpoints:\n        - matchLabels: {\"k8s:io.kubernetes.pod.namespace\": \"kube-system\", \"k8s-app\": \"kube-dns\"}\n");
            body.push_str(&ports_yaml(
                &[(Protocol::Any, 53)].into_iter().collect(),
                "      ",
            ));
        }
        if body.is_empty() {
            continue;
        }
        let base = labels
            .get("app.kubernetes.io/name")
            .or_else(|| labels.get("app"))
            .cloned()
            .unwrap_or_else(|| "controller".into());
        docs.push(Doc {
            kind: if ccnp {
                "CiliumClusterwideNetworkPolicy"
            } else {
                "CiliumNetworkPolicy"
            },
            namespace: (!ccnp).then(|| ns.clone()),
            name: object_name(&["verdict", &base, "controller"]),
            serves: c.serves.clone(),
            selector: format!(
                " {{matchLabels: {}}}",
                labels_flow(ccnp.then_some(ns.as_str()), labels)
            ),
            body,
            default_deny_off: false,
        });
    }
    let mut used_names = BTreeSet::new();
    for ((ns, labels), b) in &plan.backends {
        let ccnp = opts.prefer_ccnp;
        let mut body = String::from("  ingress:\n");
        if !b.from_ingress.is_empty() {
            body.push_str("    - fromEntities: [ingress]\n");
            body.push_str(&ports_yaml(&b.from_ingress, "      "));
        }
        for ((cns, clabels), ports) in &b.from_controllers {
            body.push_str(&format!(
                "    - fromEndpoints:\n        - matchLabels: {}\n",
                labels_flow(Some(cns), clabels)
            ));
            body.push_str(&ports_yaml(ports, "      "));
        }
        let svc = engine
            .inv
            .services
            .iter()
            .find(|s| s.namespace == *ns && s.selector.as_ref() == Some(labels))
            .map(|s| s.object.name.clone())
            .unwrap_or_else(|| "backend".into());
        let mut name = object_name(&["verdict", &svc, "from-ingress"]);
        if ccnp {
            name = object_name(&["verdict", ns, &svc, "from-ingress"]);
        }
        while !used_names.insert((ns.clone(), name.clone())) {
            name.push('-');
            name.push('x');
        }
        docs.push(Doc {
            kind: if ccnp {
                "CiliumClusterwideNetworkPolicy"
            } else {
                "CiliumNetworkPolicy"
            },
            namespace: (!ccnp).then(|| ns.clone()),
            name,
            serves: b.serves.clone(),
            selector: format!(
                " {{matchLabels: {}}}",
                labels_flow(ccnp.then_some(ns.as_str()), labels)
            ),
            body,
            default_deny_off: opts.no_default_deny,
        });
    }
    let out = docs
        .iter()
        .map(|d| Generated {
            kind: d.kind.to_string(),
            namespace: d.namespace.clone(),
            name: d.name.clone(),
            serves: d.serves.iter().cloned().collect(),
            yaml: render(d),
        })
        .collect();
    (out, plan.skipped)
}

/// One YAML stream of every generated object.
pub fn to_stream(objects: &[Generated]) -> String {
    objects.iter().map(|g| format!("---\n{}", g.yaml)).collect()
}

/// The proof that the generated policies do what they should.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// Problems loading the generated objects back (must be none).
    pub load_errors: Vec<String>,
    pub paths_before: crate::paths::Summary,
    pub paths_after: crate::paths::Summary,
    /// Connectivity the generated policies add that serves a path.
    pub intended: Vec<Conn>,
    /// Connectivity they add that no path needs (must be none).
    pub unintended: Vec<Conn>,
    /// Connections that were open and are now denied (default deny
    /// tightening around the ingress and the backends).
    pub closed: usize,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.load_errors.is_empty() && self.unintended.is_empty() && self.paths_after.denied == 0
    }
}

/// Loads the generated objects next to the input (`base`: the input without
/// the objects that merged ones replace), re-runs the paths, and diffs
/// connectivity against the input `inv`.
pub fn verify(
    inv: &Inventory,
    base: &Inventory,
    generated: &str,
    opts: &GenerateOptions,
) -> Verification {
    let mut after_inv = base.clone();
    let before_diags = after_inv.diagnostics.len();
    after_inv.load_text("<generated>", generated);
    let mut load_errors: Vec<String> = after_inv
        .diagnostics
        .iter()
        .skip(before_diags)
        .map(ToString::to_string)
        .collect();
    for p in after_inv
        .policies
        .iter()
        .filter(|p| p.location.file.as_ref() == "<generated>")
    {
        if let Some(why) = &p.rejected {
            load_errors.push(format!("{}: {why}", p.object));
        }
    }
    let routing_before = Routing::from_inventory(inv);
    let routing_after = Routing::from_inventory(&after_inv);
    let before = Engine::new(inv);
    let after = Engine::new(&after_inv);
    let pb = paths(&before, &routing_before, &opts.paths);
    let pa = paths(&after, &routing_after, &opts.paths);
    let extra: Vec<Party> = opts
        .paths
        .clients
        .iter()
        .filter_map(|c| before.party(c).ok())
        .filter(|p| p.name != "reserved:world")
        .collect();
    let cb = connectivity(&before, &parties(&before, &extra));
    let ca = connectivity(&after, &parties(&after, &extra));
    let new = added(&cb, &ca);
    let closed = added(&ca, &cb).len();
    // What the paths need: clients -> ingress on hop-1 ports, ingress -> backends.
    let mut needed: BTreeSet<(String, String, Protocol, u16)> = BTreeSet::new();
    for ep in &pa.entry_points {
        for r in &ep.routes {
            for b in &r.backends {
                for p in &b.paths {
                    for h in &p.hops {
                        for c in &h.checks {
                            needed.insert((
                                c.source.clone(),
                                c.destination.clone(),
                                c.protocol,
                                c.port,
                            ));
                        }
                    }
                }
            }
        }
    }
    let (intended, unintended): (Vec<Conn>, Vec<Conn>) = new.into_iter().partition(|c| {
        c.from_port == c.to_port
            && needed.contains(&(c.from.clone(), c.to.clone(), c.protocol, c.from_port))
    });
    Verification {
        load_errors,
        paths_before: pb.summary,
        paths_after: pa.summary,
        intended,
        unintended,
        closed,
    }
}

/// Merges each generated object into the existing policy of the same kind,
/// namespace and endpointSelector, when there is one with a single `spec`:
/// the generated `ingress`/`egress` items it lacks are appended, and the
/// existing object is written back once (as JSON, which is YAML) with
/// everything else it had. Objects without such a policy stay as they are.
pub fn merge(inv: &Inventory, objects: Vec<Generated>) -> Vec<Generated> {
    // Output slots in order; merged targets accumulate in one slot each.
    let mut out: Vec<Generated> = Vec::new();
    let mut merged: BTreeMap<usize, (usize, serde_json::Value)> = BTreeMap::new();
    for g in objects {
        let Some((target, gen_json)) = merge_target(inv, &g) else {
            out.push(g);
            continue;
        };
        let Some(existing) = inv.policies.get(target) else {
            continue;
        };
        let slot = match merged.get(&target) {
            Some((slot, _)) => *slot,
            None => {
                let json = existing
                    .source
                    .as_ref()
                    .map(crate::yaml::Node::to_json)
                    .unwrap_or_default();
                out.push(Generated {
                    kind: existing.object.kind.clone(),
                    namespace: existing.object.namespace.clone(),
                    name: existing.object.name.clone(),
                    serves: Vec::new(),
                    yaml: String::new(),
                });
                merged.insert(target, (out.len() - 1, json));
                out.len() - 1
            }
        };
        if let Some((_, json)) = merged.get_mut(&target) {
            append_items(json, &gen_json);
        }
        if let Some(o) = out.get_mut(slot) {
            for s in g.serves {
                if !o.serves.contains(&s) {
                    o.serves.push(s);
                }
            }
        }
    }
    for (target, (slot, json)) in merged {
        let (Some(existing), Some(o)) = (inv.policies.get(target), out.get_mut(slot)) else {
            continue;
        };
        let mut yaml = format!(
            "# Merged by verdict generate into {} ({}): the ingress/egress items it needs were appended. Serves:\n",
            existing.object, existing.location
        );
        for s in &o.serves {
            yaml.push_str(&format!("#   {s}\n"));
        }
        yaml.push_str(&serde_json::to_string_pretty(&json).unwrap_or_default());
        yaml.push('\n');
        o.yaml = yaml;
    }
    out
}

/// The existing policy (its index) a generated object merges into, and the
/// generated object as JSON.
fn merge_target(inv: &Inventory, g: &Generated) -> Option<(usize, serde_json::Value)> {
    let mut tmp = Inventory::new(inv.cluster.clone());
    tmp.load_text("<generated>", &g.yaml);
    let gen_policy = tmp.policies.first()?;
    let gen_rule = gen_policy.rules.first()?;
    let gen_json = gen_policy.source.as_ref()?.to_json();
    let target = inv.policies.iter().position(|p| {
        p.rejected.is_none()
            && p.object.kind == gen_policy.object.kind
            && p.object.namespace == gen_policy.object.namespace
            && p.rules.len() == 1
            && p.rules
                .first()
                .is_some_and(|r| r.subject == gen_rule.subject)
            && p.source.as_ref().is_some_and(|n| n.get("spec").is_some())
    })?;
    Some((target, gen_json))
}

fn append_items(json: &mut serde_json::Value, gen_json: &serde_json::Value) {
    let Some(spec) = json.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    for section in ["ingress", "egress"] {
        let Some(items) = gen_json
            .get("spec")
            .and_then(|s| s.get(section))
            .and_then(|v| v.as_array())
        else {
            continue;
        };
        let list = spec
            .entry(section)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(arr) = list.as_array_mut() {
            for item in items {
                if !arr.contains(item) {
                    arr.push(item.clone());
                }
            }
        }
    }
}
