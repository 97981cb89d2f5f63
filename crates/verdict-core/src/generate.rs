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

use crate::engine::{Decision, Engine};
use crate::paths::{Controller, PathOptions, PathsReport};
use crate::policy::Protocol;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod merge;
mod verify;
pub use merge::merge;
pub use verify::{
    connectivity_after, judge_after, load_generated, rejudge, verify, verify_loaded, JudgedPaths,
    PathsAfter, Rejudged, Verification, GENERATED_FILE,
};

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
    /// `except` ranges of client CIDRs (party name `cidr:A/N` -> excepts),
    /// kept from the input's rules by [`clients_from_input`].
    pub client_except: BTreeMap<String, Vec<String>>,
}

/// A `--client` value as a party name: a bare CIDR (`203.0.113.0/24`)
/// becomes `cidr:203.0.113.0/24`; anything else is returned as is (an IP,
/// `cidr:...`, `world`, a reserved name).
pub fn client_party_name(text: &str) -> String {
    let t = text.trim();
    if !t.starts_with("cidr:") && t.contains('/') && crate::cidr::Cidr::parse(t).is_ok() {
        format!("cidr:{t}")
    } else {
        t.to_string()
    }
}

/// Checks that a client (a party name) is something a generated rule can
/// name: a CIDR, an IP or a reserved entity. Returns the party name Cilium's
/// rule will match (`cidr:A/N`, `reserved:world`, ...).
pub fn check_client(engine: &Engine, text: &str) -> Result<String, String> {
    let party = engine.party(&client_party_name(text))?;
    if party.identity.is_endpoint() {
        return Err(format!(
            "--client `{text}`: generate serves clients outside the pods (a CIDR, an IP, `world` or a reserved entity), not `{}`",
            party.name
        ));
    }
    Ok(party.name)
}

/// The clients the input already restricts the entry points to, for when no
/// `--client` is given: for every enforcement point (reserved:ingress or
/// controller pods) that the input keeps world out of while admitting
/// others, the CIDRs (with their `except`) of its ingress allow rules.
///
/// Returns the clients (party names) and the excepts, or `None` when no
/// entry point is restricted this way (world is served). An entry point
/// that admits sources but no CIDR (only `cluster`, say) is an error: world
/// would open what the input keeps closed, so `--client` must say.
#[allow(clippy::type_complexity)]
pub fn clients_from_input(
    engine: &Engine,
    report: &PathsReport,
) -> Result<Option<(Vec<String>, BTreeMap<String, Vec<String>>, Vec<String>)>, String> {
    let mut points: BTreeSet<String> = BTreeSet::new();
    for ep in &report.entry_points {
        for r in &ep.routes {
            for b in &r.backends {
                for p in &b.paths {
                    for h in &p.hops {
                        for c in &h.checks {
                            if c.source == "reserved:world"
                                && c.side.starts_with("ingress of ")
                                && c.enforced
                                && c.decision == Decision::Denied
                            {
                                points.insert(c.destination.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    let mut cidrs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut closed = Vec::new();
    for point in &points {
        let Ok(party) = engine.party(point) else {
            continue;
        };
        let mut admits_something = false;
        let mut found = false;
        for r in engine.selecting_rules(&party.identity) {
            for e in r
                .entries
                .iter()
                .filter(|e| e.direction == crate::policy::Direction::Ingress && !e.deny && !e.pass)
            {
                admits_something = true;
                for peer in &e.peers {
                    if let crate::policy::PeerKind::Cidr { cidr, except } = &peer.kind {
                        found = true;
                        let set = cidrs.entry(format!("cidr:{cidr}")).or_default();
                        set.extend(except.iter().map(ToString::to_string));
                        notes.push(format!(
                            "{point} admits `{}` ({}): generated policies keep this restriction",
                            peer.text, e.origin
                        ));
                    }
                }
            }
        }
        if admits_something && !found {
            closed.push(point.clone());
        }
    }
    if !closed.is_empty() {
        return Err(format!(
            "the input keeps world out of {} and admits no client CIDR there: say which clients to serve with --client (a CIDR, or world to open it)",
            closed.join(", ")
        ));
    }
    if cidrs.is_empty() {
        return Ok(None);
    }
    notes.sort();
    notes.dedup();
    let clients = cidrs.keys().cloned().collect();
    let except = cidrs
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect();
    Ok(Some((clients, except, notes)))
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
    /// The Service (and, when its pods are split by port, the workload)
    /// the policy is named after.
    name: String,
}

/// Labels that never tell workloads apart for long (set per rollout).
const UNSTABLE_LABELS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
];

/// The labels that select `backend`'s pods for rules on target port
/// `port`: the Service's selector, or, when the Service's pods resolve its
/// (named) target port to different numbers, the selector plus labels of
/// `backend` that the pods with another number lack, so that no rule opens
/// a number on pods that do not use it. `None` when no labels tell them
/// apart.
fn backend_selector(
    engine: &Engine,
    selector: &Labels,
    b: &crate::paths::BackendPaths,
    backend: &str,
    port: u16,
) -> Option<Labels> {
    // The workload of a display name (`ns/pod`, `ns/kind/name`), first in
    // input order, through the engine's name index.
    let workload = |name: &str| engine.workload_by_display_name(name);
    let others: Vec<&crate::ingest::Workload> = b
        .paths
        .iter()
        .filter(|p| p.target_port.is_some_and(|t| t != port))
        .filter_map(|p| workload(&p.backend))
        .collect();
    if others.is_empty() {
        return Some(selector.clone());
    }
    let me = workload(backend)?;
    let mut sel = selector.clone();
    let matches = |sel: &Labels, w: &crate::ingest::Workload| {
        sel.iter().all(|(k, v)| w.labels.get(k) == Some(v))
    };
    loop {
        let left: Vec<&&crate::ingest::Workload> =
            others.iter().filter(|w| matches(&sel, w)).collect();
        if left.is_empty() {
            return Some(sel);
        }
        // The label of ours that the most remaining others lack.
        let best = me
            .labels
            .iter()
            .filter(|(k, _)| !sel.contains_key(*k) && !UNSTABLE_LABELS.contains(&k.as_str()))
            .map(|(k, v)| {
                let excluded = left.iter().filter(|w| w.labels.get(k) != Some(v)).count();
                (excluded, k, v)
            })
            .filter(|(n, _, _)| *n > 0)
            .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))?;
        sel.insert(best.1.clone(), best.2.clone());
    }
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
    // Services by their short name (`ns/name`), in input order.
    let mut services: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in inv.services.iter().enumerate() {
        services.entry(s.object.short()).or_default().push(i);
    }
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
                // The first Service of that name in input order, through
                // an index by name (not a scan of the namespace per
                // backend: namespaces grow with the cluster).
                let svc = services
                    .get(svc_name)
                    .into_iter()
                    .flatten()
                    .filter_map(|&i| inv.services.get(i))
                    .find(|s| match svc_name.split_once('/') {
                        Some((ns, name)) => s.namespace == ns && s.object.name == name,
                        None => true,
                    });
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
                    let Some(svc_sel) = &svc.selector else {
                        continue;
                    };
                    let Some(sel) = backend_selector(engine, svc_sel, b, &p.backend, t) else {
                        plan.skipped.push(format!(
                            "{serves} -> {}: the pods of Service {} resolve its target port to different numbers and no label tells {} from the others: a rule on port {t} would open it on pods that do not use it",
                            p.backend,
                            svc.object.short(),
                            p.backend
                        ));
                        continue;
                    };
                    // A hop an Admin-tier ClusterNetworkPolicy denies: no
                    // CiliumNetworkPolicy can override it, so nothing is
                    // generated for the path; the conflict is reported.
                    let admin: Vec<&crate::paths::Check> = p
                        .hops
                        .iter()
                        .flat_map(|h| &h.checks)
                        .filter(|c| {
                            c.decision == Decision::Denied
                                && c.tier == Some(crate::policy::Tier::Admin)
                        })
                        .collect();
                    if !admin.is_empty() {
                        let rules: Vec<&str> = admin
                            .iter()
                            .flat_map(|c| c.rules.iter().map(String::as_str))
                            .collect();
                        plan.skipped.push(format!(
                            "{serves} -> {}: conflict: denied by an Admin-tier ClusterNetworkPolicy ({}), which no CiliumNetworkPolicy can override; nothing is generated for this path (change the ClusterNetworkPolicy, or ask its owner)",
                            p.backend,
                            rules.join("; ")
                        ));
                        continue;
                    }
                    let split = &sel != svc_sel;
                    let key = (svc.namespace.clone(), sel);
                    let be_name = if split {
                        let short = p.backend.rsplit('/').next().unwrap_or(&p.backend);
                        format!("{}-{short}", svc.object.name)
                    } else {
                        svc.object.name.clone()
                    };
                    plan.backends.entry(key.clone()).or_default().name = be_name;
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

/// Why a controller behind `externalTrafficPolicy: Cluster` admits
/// `remote-node`, and what else that admits.
const REMOTE_NODE_NOTE: &str = "    # externalTrafficPolicy: Cluster: clients that arrive through other nodes are SNATed to the\n    # node's address, identity remote-node. This also admits reserved:kube-apiserver on these\n    # ports: a node that runs the API server carries reserved:remote-node too (and forwards\n    # clients the same way). externalTrafficPolicy: Local keeps client addresses instead.\n";

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

/// The `from` items admitting the clients: world and other entities by
/// `fromEntities`, CIDRs and IPs by `fromCIDRSet` (exactly those, with the
/// `except` kept from the input).
fn clients_yaml(clients: &[String], except: &BTreeMap<String, Vec<String>>) -> String {
    let mut entities = Vec::new();
    let mut cidrs = Vec::new();
    if clients.is_empty() {
        entities.push("world".to_string());
    }
    for c in clients {
        let name = client_party_name(c);
        if let Some(cidr) = name.strip_prefix("cidr:") {
            cidrs.push((name.clone(), cidr.to_string()));
        } else if let Ok(ip) = name.parse::<std::net::IpAddr>() {
            let len = if ip.is_ipv4() { 32 } else { 128 };
            cidrs.push((format!("cidr:{ip}/{len}"), format!("{ip}/{len}")));
        } else {
            entities.push(name.strip_prefix("reserved:").unwrap_or(&name).to_string());
        }
    }
    let mut out = String::new();
    if !entities.is_empty() {
        entities.sort();
        entities.dedup();
        out.push_str(&format!("    - fromEntities: [{}]\n", entities.join(", ")));
    }
    if !cidrs.is_empty() {
        if !out.is_empty() {
            // The ports follow each item: repeat them for the CIDR item.
            out.push_str("__PORTS__");
        }
        out.push_str("    - fromCIDRSet:\n");
        cidrs.sort();
        cidrs.dedup();
        for (name, c) in cidrs {
            let c = crate::cidr::Cidr::parse(&c)
                .map(|x| x.to_string())
                .unwrap_or(c);
            out.push_str(&format!("        - cidr: {c}\n"));
            if let Some(ex) = except.get(&name).filter(|e| !e.is_empty()) {
                out.push_str("          except:\n");
                for e in ex {
                    out.push_str(&format!("            - {e}\n"));
                }
            }
        }
    }
    out
}

/// The client items, each followed by the ports.
fn clients_with_ports(
    clients: &[String],
    except: &BTreeMap<String, Vec<String>>,
    ports: &PortSet,
) -> String {
    let p = ports_yaml(ports, "      ");
    let items = clients_yaml(clients, except).replace("__PORTS__", &p);
    items + &p
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
        body.push_str(&clients_with_ports(
            &opts.paths.clients,
            &opts.client_except,
            &plan.cilium_clients,
        ));
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
            body.push_str(&clients_with_ports(
                &opts.paths.clients,
                &opts.client_except,
                &c.clients,
            ));
            if c.remote_node {
                body.push_str(REMOTE_NODE_NOTE);
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
        if b.from_ingress.is_empty() && b.from_controllers.is_empty() {
            continue;
        }
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
        let svc = if b.name.is_empty() {
            "backend".to_string()
        } else {
            b.name.clone()
        };
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

/// The file name of a generated object in `--out-dir`
/// (`cnp-<ns>-<name>.yaml`, `ccnp-<name>.yaml`): the namespace and name
/// (which may come from input objects, with `--merge`) are reduced to
/// `[A-Za-z0-9._-]`, every other character (`/`, `\`, control characters,
/// spaces, non-ASCII) becomes `_`, dots never lead, and the name is cut
/// to 200 bytes, so the file is always directly inside the directory.
pub fn file_name(g: &Generated) -> String {
    let clean = |s: &str| -> String {
        let mut out: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        while out.contains("..") {
            out = out.replace("..", "_.");
        }
        out.trim_start_matches('.').chars().take(100).collect()
    };
    let kind = if g.kind == "CiliumNetworkPolicy" {
        "cnp"
    } else {
        "ccnp"
    };
    let ns = g
        .namespace
        .as_deref()
        .map(|n| format!("{}-", clean(n)))
        .unwrap_or_default();
    format!("{kind}-{ns}{}.yaml", clean(&g.name))
}

/// File names for `objects` in `--out-dir`, in order: [`file_name`], with
/// `-2`, `-3`, ... before `.yaml` when two objects would share one.
pub fn file_names(objects: &[Generated]) -> Vec<String> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    objects
        .iter()
        .map(|g| {
            let base = file_name(g);
            let stem = base.trim_end_matches(".yaml").to_string();
            let mut name = base;
            let mut n = 2;
            while !used.insert(name.to_ascii_lowercase()) {
                name = format!("{stem}-{n}.yaml");
                n += 1;
            }
            name
        })
        .collect()
}

/// One YAML stream of every generated object.
pub fn to_stream(objects: &[Generated]) -> String {
    objects.iter().map(|g| format!("---\n{}", g.yaml)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(kind: &str, ns: Option<&str>, name: &str) -> Generated {
        Generated {
            kind: kind.to_string(),
            namespace: ns.map(str::to_string),
            name: name.to_string(),
            serves: Vec::new(),
            yaml: String::new(),
        }
    }

    #[test]
    fn file_names_stay_inside_the_directory() {
        let objects = [
            g("CiliumNetworkPolicy", Some("shop"), "../../etc/passwd"),
            g("CiliumNetworkPolicy", Some("a/b"), "x\ny\tz\u{7}"),
            g("CiliumClusterwideNetworkPolicy", None, ".hidden"),
            g("CiliumNetworkPolicy", Some("shop"), "../../etc/passwd"),
            g("CiliumNetworkPolicy", Some("shop"), "ok-name.v2"),
        ];
        let names = file_names(&objects);
        assert_eq!(
            names,
            [
                "cnp-shop-_.__._etc_passwd.yaml",
                "cnp-a_b-x_y_z_.yaml",
                "ccnp-hidden.yaml",
                "cnp-shop-_.__._etc_passwd-2.yaml",
                "cnp-shop-ok-name.v2.yaml",
            ]
        );
        for n in &names {
            assert!(!n.contains('/') && !n.contains("..") && !n.starts_with('.'));
            assert!(n.chars().all(|c| c.is_ascii_graphic()));
        }
        let long = g("CiliumNetworkPolicy", Some("n"), &"a".repeat(300));
        assert!(file_name(&long).len() <= 120);
    }

    #[test]
    fn client_names() {
        assert_eq!(client_party_name("203.0.113.0/24"), "cidr:203.0.113.0/24");
        assert_eq!(client_party_name("203.0.113.7"), "203.0.113.7");
        assert_eq!(client_party_name("world"), "world");
        let y = clients_yaml(
            &["cidr:203.0.113.0/24".into(), "203.0.113.7".into()],
            &BTreeMap::from([(
                "cidr:203.0.113.0/24".to_string(),
                vec!["203.0.113.128/25".to_string()],
            )]),
        );
        assert_eq!(
            y,
            "    - fromCIDRSet:\n        - cidr: 203.0.113.0/24\n          except:\n            - 203.0.113.128/25\n        - cidr: 203.0.113.7/32\n"
        );
    }
}
