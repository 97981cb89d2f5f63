//! `verdict paths`: every route into the cluster, hop by hop.
//!
//! ```text
//!  client (world / CIDRs / after SNAT: remote-node, host / in-cluster pods)
//!     │ hop 1: outside -> ingress   (ingress policy of reserved:ingress, or of
//!     ▼                              the controller pods; egress of pod clients)
//!  ingress (Cilium Envoy = reserved:ingress, or controller pods)
//!     │ hop 2: ingress -> backend   (egress of the ingress + ingress of the pod)
//!     ▼
//!  backend pods (Service selector, targetPort)
//! ```
//!
//! A path is allowed only if every hop allows it for every source that can
//! occur. Facts about ports and source identities are in docs/semantics.md.

pub mod render;
pub mod routes;

use crate::engine::side_context::SideContext;
use crate::engine::{Decision, Engine, Party, SideVerdict};
use crate::ingest::ContainerPort;
use crate::ingest::{Service, TargetPort, Workload};
use crate::labels::{Label, LabelSet, SOURCE_K8S};
use crate::near_miss::{near_misses_in, service_ports, NearMiss};
use crate::policy::{Direction, PeerKind, Protocol};
use crate::routes::{
    AllowedNamespaces, Gateway, Listener, Route, Routing, ServicePortRef,
    CILIUM_GATEWAY_CONTROLLER, CILIUM_INGRESS_CONTROLLER,
};
use crate::selector::Selector;
use crate::side::Decided;
use crate::source::{Location, ObjectRef};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

/// What the user tells `paths`.
#[derive(Debug, Clone, Default)]
pub struct PathOptions {
    /// Client sources (party names); empty means `world`.
    pub clients: Vec<String>,
    /// In-cluster pods that call routes by hostname (party names).
    pub in_cluster_clients: Vec<String>,
    /// Explicit ingress-controller pods: namespace and pod label selector.
    pub controllers: Vec<(String, Selector)>,
    pub namespace: Option<String>,
    pub route: Option<String>,
    pub backend: Option<String>,
    /// Which destination port Cilium's Envoy uses for the hop-1 check.
    pub hop1_port: Hop1Port,
}

/// The destination port of the hop-1 policy check on Cilium's Envoy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hop1Port {
    /// The original destination port (the listener / Service port; the
    /// NodePort for node-IP traffic): Cilium's Envoy filters since their 2025
    /// policy rework (cilium/proxy `filter_state_cilium_policy.cc`).
    #[default]
    Listener,
    /// The selected backend's target port: Envoy filters from cilium/proxy
    /// PR 351 (Cilium 1.15) until that rework.
    Backend,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Controller {
    /// Cilium's own Envoy: identity reserved:ingress.
    Cilium,
    /// Another controller's pods.
    Pods {
        controller: String,
        pods: Vec<String>,
        service: Option<String>,
        /// Per pod: its namespace and the labels that select it (the
        /// fronting Service's selector, or the pod's own labels).
        selectors: BTreeMap<String, (String, BTreeMap<String, String>)>,
    },
    /// A controller whose pods were not found in the input.
    Unknown { controller: String },
}

/// The verdict of a hop, a path or a backend. `not-checked`: it could not
/// be evaluated (the controller's pods, the Service or its pods are not in
/// the input); such a path is neither allowed nor denied by policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Allowed,
    Denied,
    NotChecked,
}

impl Status {
    /// Several statuses together: a denial decides, then anything not
    /// checked; allowed only when all are (and there is at least one).
    pub fn all(items: impl IntoIterator<Item = Status>) -> Status {
        let mut any = false;
        let mut unchecked = false;
        for s in items {
            any = true;
            match s {
                Status::Denied => return Status::Denied,
                Status::NotChecked => unchecked = true,
                Status::Allowed => {}
            }
        }
        if unchecked || !any {
            Status::NotChecked
        } else {
            Status::Allowed
        }
    }
}

impl From<Decision> for Status {
    fn from(d: Decision) -> Status {
        match d {
            Decision::Allowed => Status::Allowed,
            Decision::Denied => Status::Denied,
        }
    }
}

impl PartialEq<Decision> for Status {
    fn eq(&self, d: &Decision) -> bool {
        *self == Status::from(*d)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Allowed => "allowed",
            Status::Denied => "denied",
            Status::NotChecked => "not checked",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// e.g. `egress of reserved:ingress` or `ingress of shop/web-0`.
    pub side: String,
    pub source: String,
    pub destination: String,
    pub protocol: Protocol,
    pub port: u16,
    pub decision: Decision,
    pub enforced: bool,
    pub explanation: String,
    /// The deciding rules (`policy path (file:line)`), shared by the checks
    /// of one decision. JSON: `rules`, an index into the report's
    /// `rule_lists` ([`Check::rules_list`]).
    #[serde(skip)]
    pub rules: Arc<[String]>,
    /// Index of `rules` in [`PathsReport::rule_lists`].
    #[serde(rename = "rules")]
    pub rules_list: usize,
    /// With a default deny: index in [`PathsReport::rule_lists`] of what
    /// makes the side default deny (the rules selecting it with default
    /// deny, `policy (file:line)`, after a forced default deny's reason);
    /// the explanation names at most a few of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected_by: Option<usize>,
    /// The tier of the deciding rules (ClusterNetworkPolicy Admin or
    /// Baseline), when a tiered rule decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<crate::policy::Tier>,
    /// Where to look: the deciding rules, or (for a default) the rules that
    /// select the side.
    #[serde(skip)]
    pub at: Arc<[Arc<crate::policy::Origin>]>,
    /// Where the check is made: at the `source` (egress of the client), at
    /// the `ingress` (either side of the ingress) or at the `backend`.
    pub role: Role,
    pub direction: Direction,
    /// Allow rules of this side that miss the flow only by its port or only
    /// by its peer (sides denied by default deny).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub near_miss: Vec<NearMiss>,
}

/// Where a check is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Source,
    Ingress,
    Backend,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Source => "source",
            Role::Ingress => "ingress",
            Role::Backend => "backend",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    pub name: String,
    pub decision: Status,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodPath {
    /// `ns/pod` or `ns/kind/name` of the backend endpoint.
    pub backend: String,
    pub target_port: Option<u16>,
    pub decision: Status,
    /// Why the path could not be checked (with `decision: not-checked`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    pub hops: Vec<Hop>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// Paths of one backend Service with the same class differ only by the
    /// pod's name: same identity, enforcement, container ports, namespace,
    /// labels and target port (what every check of the path reads), so the
    /// text view shows them as one block. `None`: a class of its own.
    #[serde(skip)]
    pub class: Option<usize>,
}

/// What the checks of a backend pod's path read besides its name
/// ([`PodPath::class`]).
#[derive(Debug, PartialEq, Eq, Hash)]
struct ClassKey {
    identity: usize,
    enforced: bool,
    host_network: bool,
    target: Option<u16>,
    ports: Vec<ContainerPort>,
    namespace: String,
    /// The Services of the namespace that select the pod, by position
    /// (near misses name their ports); not the labels, which differ by
    /// labels Cilium leaves out of identities (`pod-template-hash`).
    services: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendPaths {
    /// `ns/name:port` of the Service.
    pub service: String,
    pub rule: String,
    pub location: Location,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    pub paths: Vec<PodPath>,
    pub decision: Status,
    /// Why the backend could not be checked, when it has no paths and
    /// `decision` is `not-checked` (the Service or its pods are not in the
    /// input, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoutePaths {
    pub route: ObjectRef,
    pub location: Location,
    pub attached: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    pub hostnames: Vec<String>,
    pub backends: Vec<BackendPaths>,
}

/// A way into the cluster: a Gateway listener or an Ingress.
#[derive(Debug, Clone, Serialize)]
pub struct EntryPoint {
    pub object: ObjectRef,
    pub location: Location,
    /// Listener name, or `http`/`https` for an Ingress.
    pub listener: String,
    pub port: u16,
    pub protocol: String,
    pub hostname: Option<String>,
    pub controller: Controller,
    pub routes: Vec<RoutePaths>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathsReport {
    /// Lists of rules the checks refer to by index (their `rules` and
    /// `selected_by`): each distinct list once, in order of first use;
    /// list 0 is the empty list.
    pub rule_lists: Vec<Arc<[String]>>,
    pub entry_points: Vec<EntryPoint>,
    /// Routes that attach to nothing in the input, and other problems.
    pub findings: Vec<String>,
    pub summary: Summary,
}

impl PathsReport {
    /// Every check of every path, in report order.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.entry_points
            .iter()
            .flat_map(EntryPoint::hops)
            .flat_map(|h| &h.checks)
    }
}

impl EntryPoint {
    /// Every hop of every path through this entry point, in report order.
    pub fn hops(&self) -> impl Iterator<Item = &Hop> {
        self.routes
            .iter()
            .flat_map(|r| &r.backends)
            .flat_map(|b| &b.paths)
            .flat_map(|p| &p.hops)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub paths: usize,
    pub allowed: usize,
    /// Denied by policy or refused by the routing (a missing port, a
    /// reference Gateway API refuses).
    pub denied: usize,
    /// Paths that could not be evaluated: neither allowed nor denied.
    pub not_checked: usize,
}

impl Summary {
    /// Counts one path.
    pub fn add(&mut self, s: Status) {
        self.paths += 1;
        match s {
            Status::Allowed => self.allowed += 1,
            Status::Denied => self.denied += 1,
            Status::NotChecked => self.not_checked += 1,
        }
    }
}

/// The sources of hop 1 for one ingress.
struct Source {
    party: Party,
    /// Why this source can occur.
    why: String,
    /// An in-cluster pod whose own egress is checked too.
    pod: bool,
}

/// The rule lists of a side decision, interned in the report.
#[derive(Debug, Clone)]
struct Lists {
    rules: Arc<[String]>,
    rules_list: usize,
    selected_by: Option<usize>,
}

/// A side's verdict with its near misses and rule lists.
struct Side {
    v: SideVerdict,
    near: Vec<NearMiss>,
    lists: Lists,
}

/// Distinct rule lists, each stored once.
#[derive(Default)]
struct Interner {
    lists: Vec<Arc<[String]>>,
    ids: HashMap<Arc<[String]>, usize>,
    /// The same lists by address: a subject's complete list is one
    /// `Arc` shared by all its decisions, found without hashing its names.
    by_address: FxHashMap<(usize, usize), usize>,
}

impl Interner {
    fn new() -> Interner {
        let mut i = Interner::default();
        i.id(Arc::new([]));
        i
    }

    fn id(&mut self, list: Arc<[String]>) -> usize {
        // Only the addresses of the lists kept in `lists` are recorded:
        // they stay alive, so an address seen before is the same list.
        let address = (list.as_ptr() as usize, list.len());
        if let Some(id) = self.by_address.get(&address) {
            return *id;
        }
        if let Some(id) = self.ids.get(&list) {
            return *id;
        }
        let id = self.lists.len();
        self.lists.push(Arc::clone(&list));
        self.ids.insert(list, id);
        self.by_address.insert(address, id);
        id
    }

    /// The lists of a decision: its deciding rules and, with a default
    /// deny, what makes it.
    fn lists(&mut self, d: &Decided) -> Lists {
        let rules: Arc<[String]> = d.deciding.iter().map(ToString::to_string).collect();
        let rules_list = self.id(Arc::clone(&rules));
        let selected_by = (d.reason == crate::engine::Reason::DefaultDeny)
            .then(|| self.id(Arc::clone(&d.default_deny_by)));
        Lists {
            rules,
            rules_list,
            selected_by,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check(
    role: Role,
    side_name: &str,
    side: Side,
    src: &str,
    dst: &str,
    protocol: Protocol,
    port: u16,
) -> Check {
    let Side { v, near, lists } = side;
    Check {
        role,
        direction: v.direction,
        near_miss: near,
        side: side_name.to_string(),
        source: src.to_string(),
        destination: dst.to_string(),
        protocol,
        port,
        decision: if v.enforced {
            v.decision
        } else {
            Decision::Allowed
        },
        enforced: v.enforced,
        explanation: v.explanation,
        rules: lists.rules,
        rules_list: lists.rules_list,
        selected_by: lists.selected_by,
        tier: v.tier,
        at: if v.deciding.is_empty() {
            v.selecting
        } else {
            v.deciding
        },
    }
}

fn hop(name: &str, checks: Vec<Check>, notes: Vec<String>) -> Hop {
    let decision = if checks.iter().all(|c| c.decision == Decision::Allowed) {
        Status::Allowed
    } else {
        Status::Denied
    };
    Hop {
        name: name.to_string(),
        decision,
        checks,
        notes,
    }
}

fn party_of(engine: &Engine, w: &Workload) -> Option<Party> {
    let name = w.display_name();
    engine.party(&name).ok()
}

fn selects(selector: &BTreeMap<String, String>, w: &Workload) -> bool {
    selector.iter().all(|(k, v)| w.labels.get(k) == Some(v))
}

/// Host names match when equal or when a wildcard (`*.example.com`) on
/// either side covers the other (Gateway API hostname intersection).
pub fn hostnames_intersect(a: &str, b: &str) -> bool {
    let wild = |w: &str, h: &str| {
        w.strip_prefix('*')
            .is_some_and(|suffix| h.ends_with(suffix) && h.len() > suffix.len())
    };
    a == b || wild(a, b) || wild(b, a)
}

fn kinds_for(listener: &Listener) -> Vec<String> {
    if !listener.kinds.is_empty() {
        return listener.kinds.clone();
    }
    match listener.protocol.as_str() {
        "HTTP" | "HTTPS" => vec!["HTTPRoute".into(), "GRPCRoute".into()],
        "TLS" => vec!["TLSRoute".into()],
        "TCP" => vec!["TCPRoute".into()],
        "UDP" => vec!["UDPRoute".into()],
        _ => Vec::new(),
    }
}

struct Ctx<'e, 'a> {
    engine: &'e Engine<'a>,
    routing: &'e Routing,
    opts: &'e PathOptions,
    /// The transport of the entry point being followed (UDP for UDP
    /// listeners, TCP otherwise).
    proto: std::cell::Cell<Protocol>,
    /// (namespace, name) -> the first Service of that name.
    services: HashMap<(&'e str, &'e str), &'e Service>,
    /// Namespace -> its workloads, in input order.
    workloads: HashMap<&'e str, Vec<&'e Workload>>,
    /// Side decisions per identity pair and port: the replicas of a
    /// workload (one identity) share them.
    decided: RefCell<HashMap<SideKey, (Arc<Decided>, Lists)>>,
    /// The rule lists of the report.
    lists: RefCell<Interner>,
    /// Classes of backend pods ([`PodPath::class`]).
    classes: RefCell<HashMap<ClassKey, usize>>,
    /// Near misses per side and Service ports of the destination.
    near: RefCell<NearMisses>,
    /// The peer-free facts of each known subject identity's side.
    subjects: RefCell<FxHashMap<(usize, Direction), Rc<SideContext<'a>>>>,
}

/// Near misses per side key and Service ports of the destination.
type NearMisses = HashMap<(SideKey, Vec<u16>), Vec<NearMiss>>;

/// What a side decision depends on: the two identities (by index), the
/// direction, the flow's protocol and port, whether the subject enforces,
/// and the parties' container ports (named ports).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SideKey {
    subject: usize,
    peer: usize,
    dir: Direction,
    proto: Protocol,
    port: u16,
    enforced: bool,
    subject_ports: Vec<ContainerPort>,
    peer_ports: Vec<ContainerPort>,
}

impl<'a> Ctx<'_, 'a> {
    fn namespace_labels(&self, ns: &str) -> LabelSet {
        let labels = self
            .engine
            .inv
            .namespaces
            .get(ns)
            .map(|n| n.labels.clone())
            .unwrap_or_default();
        LabelSet::new(
            labels
                .iter()
                .map(|(k, v)| Label::new(SOURCE_K8S, k, v))
                .collect(),
        )
    }

    /// Why a route does not attach to a listener, or `None` if it does.
    fn attach_problem(&self, gw: &Gateway, l: &Listener, route: &Route) -> Option<String> {
        let gw_ns = gw.object.namespace.as_deref().unwrap_or_default();
        let route_ns = route.object.namespace.as_deref().unwrap_or_default();
        let refs: Vec<_> = route
            .parents
            .iter()
            .filter(|p| p.kind == "Gateway" && p.name == gw.object.name && p.namespace == gw_ns)
            .collect();
        if refs.is_empty() {
            return Some("no parentRef to this Gateway".into());
        }
        let section_ok = refs.iter().any(|p| {
            p.section.as_ref().is_none_or(|s| *s == l.name)
                && p.port.is_none_or(|port| port == l.port)
        });
        if !section_ok {
            return Some(format!(
                "its parentRefs name another listener (sectionName/port) than `{}`",
                l.name
            ));
        }
        let ns_ok = match &l.allowed {
            AllowedNamespaces::Same => route_ns == gw_ns,
            AllowedNamespaces::All => true,
            AllowedNamespaces::Selector { selector } => {
                selector.matches(&self.namespace_labels(route_ns))
            }
        };
        if !ns_ok {
            return Some(format!(
                "listener `{}` does not allow routes from namespace `{route_ns}` (allowedRoutes.namespaces)",
                l.name
            ));
        }
        if !kinds_for(l).contains(&route.object.kind) {
            return Some(format!(
                "listener `{}` ({}) does not accept {} (allowedRoutes.kinds / protocol)",
                l.name, l.protocol, route.object.kind
            ));
        }
        if let Some(h) = &l.hostname {
            if !route.hostnames.is_empty()
                && !route.hostnames.iter().any(|r| hostnames_intersect(h, r))
            {
                return Some(format!(
                    "no hostname of the route ({}) matches listener hostname `{h}`",
                    route.hostnames.join(", ")
                ));
            }
        }
        None
    }

    fn grant_allows(&self, route: &Route, ns: &str, service: &str) -> bool {
        let route_ns = route.object.namespace.as_deref().unwrap_or_default();
        self.routing.grants.iter().any(|g| {
            g.object.namespace.as_deref() == Some(ns)
                && g.from.iter().any(|(grp, kind, fns)| {
                    grp == "gateway.networking.k8s.io"
                        && *kind == route.object.kind
                        && fns == route_ns
                })
                && g.to.iter().any(|(grp, kind, name)| {
                    grp.is_empty()
                        && kind == "Service"
                        && name.as_deref().is_none_or(|n| n == service)
                })
        })
    }

    fn sources(&self, etp_cluster: bool, cilium: bool) -> Vec<Source> {
        let mut out = Vec::new();
        let clients: Vec<String> = if self.opts.clients.is_empty() {
            vec!["world".to_string()]
        } else {
            self.opts.clients.clone()
        };
        for c in &clients {
            if let Ok(party) = self.engine.party(c) {
                out.push(Source {
                    why: "client".to_string(),
                    party,
                    pod: false,
                });
            }
        }
        if etp_cluster && !cilium {
            for (name, why) in [(
                "remote-node",
                "externalTrafficPolicy: Cluster, native routing: traffic that arrived on another node is SNATed to that node's address",
            )] {
                if let Ok(party) = self.engine.party(name) {
                    out.push(Source {
                        why: why.to_string(),
                        party,
                        pod: false,
                    });
                }
            }
        }
        for c in &self.opts.in_cluster_clients {
            if let Ok(party) = self.engine.party(c) {
                out.push(Source {
                    why: "in-cluster client calling the route's hostname".to_string(),
                    party,
                    pod: true,
                });
            }
        }
        out
    }

    /// Hop 1 for Cilium's Envoy: the ingress policy of reserved:ingress
    /// from each source, on `port`.
    fn cilium_hop1(&self, ingress: &Party, port: u16, backend: &Party, target: u16) -> Hop {
        let mut checks = Vec::new();
        for s in self.sources(false, true) {
            if s.pod {
                // Envoy checks an in-cluster client's own egress policy
                // towards the selected backend on its target port (cilium/proxy
                // PR 1172; cilium/cilium issue 47617).
                let v = self.side(&s.party, Direction::Egress, backend, target);
                checks.push(check(
                    Role::Source,
                    &format!("egress of {} (checked by Envoy)", s.party.name),
                    v,
                    &s.party.name,
                    &backend.name,
                    self.proto.get(),
                    target,
                ));
            }
            let v = self.side(ingress, Direction::Ingress, &s.party, port);
            checks.push(check(
                Role::Ingress,
                "ingress of reserved:ingress",
                v,
                &s.party.name,
                &ingress.name,
                self.proto.get(),
                port,
            ));
        }
        hop("outside -> ingress", checks, Vec::new())
    }

    fn pod_hop1(&self, ctrl: &Party, port: u16, etp_cluster: bool) -> Hop {
        let mut checks = Vec::new();
        let mut notes = Vec::new();
        for s in self.sources(etp_cluster, false) {
            if s.pod {
                let v = self.side(&s.party, Direction::Egress, ctrl, port);
                checks.push(check(
                    Role::Source,
                    &format!("egress of {}", s.party.name),
                    v,
                    &s.party.name,
                    &ctrl.name,
                    self.proto.get(),
                    port,
                ));
            }
            let v = self.side(ctrl, Direction::Ingress, &s.party, port);
            let mut c = check(
                Role::Ingress,
                &format!("ingress of {}", ctrl.name),
                v,
                &s.party.name,
                &ctrl.name,
                self.proto.get(),
                port,
            );
            c.explanation = format!("[{}] {}", s.why, c.explanation);
            checks.push(c);
        }
        if etp_cluster {
            for r in self.engine.selecting_rules(&ctrl.identity) {
                for e in r
                    .entries
                    .iter()
                    .filter(|e| e.direction == Direction::Ingress && !e.deny)
                {
                    for p in &e.peers {
                        if let PeerKind::Cidr { .. } = p.kind {
                            notes.push(format!(
                                "{} `{}` matches clients only when they reach a controller pod on its own node: with externalTrafficPolicy: Cluster, traffic through other nodes arrives SNATed as remote-node (set externalTrafficPolicy: Local to keep client addresses)",
                                e.origin, p.text
                            ));
                        }
                    }
                }
            }
        }
        hop("outside -> ingress", checks, notes)
    }

    /// The verdict of `subject`'s side `dir` for a flow with `peer` on
    /// this path's protocol and `port`, with its near misses. Decisions and
    /// near misses are computed once per identity pair and port; only the
    /// sentences name the parties.
    fn side(&self, subject: &Party, dir: Direction, peer: &Party, port: u16) -> Side {
        let engine = self.engine;
        let proto = self.proto.get();
        let key = match (
            engine.known_index(&subject.identity),
            engine.known_index(&peer.identity),
        ) {
            (Some(s), Some(p)) => Some(SideKey {
                subject: s,
                peer: p,
                dir,
                proto,
                port,
                enforced: subject.enforced,
                subject_ports: subject.ports.clone(),
                peer_ports: peer.ports.clone(),
            }),
            _ => None,
        };
        let subject_idx = key.as_ref().map(|k| k.subject);
        let fresh = || {
            let ctx = self.side_context_of(subject, subject_idx, dir);
            let peer_idx = key.as_ref().map(|k| k.peer);
            let d = Arc::new(engine.decide_in(&ctx, subject, peer, peer_idx, proto, port));
            let lists = self.lists.borrow_mut().lists(&d);
            (d, lists)
        };
        let (decided, lists) = match &key {
            Some(k) => {
                let cached = self.decided.borrow().get(k).cloned();
                cached.unwrap_or_else(|| {
                    let m = fresh();
                    self.decided.borrow_mut().insert(k.clone(), m.clone());
                    m
                })
            }
            None => fresh(),
        };
        let v = engine.explain(&decided, subject, peer, proto, port);
        if v.reason != crate::engine::Reason::DefaultDeny {
            return Side {
                v,
                near: Vec::new(),
                lists,
            };
        }
        let destination = match dir {
            Direction::Ingress => subject,
            Direction::Egress => peer,
        };
        let sp = service_ports(engine, destination, port);
        let near_misses = |sp: &[u16]| {
            let ctx = self.side_context_of(subject, subject_idx, dir);
            near_misses_in(engine, &ctx, subject, peer, proto, port, sp)
        };
        let Some(k) = key else {
            let near = near_misses(&sp);
            return Side { v, near, lists };
        };
        let k = (k, sp);
        let cached = self.near.borrow().get(&k).cloned();
        let mut near = cached.unwrap_or_else(|| {
            let n = near_misses(&k.1);
            self.near.borrow_mut().insert(k, n.clone());
            n
        });
        for n in &mut near {
            n.peer.clone_from(&peer.name);
        }
        Side { v, near, lists }
    }

    /// The side context of `subject`'s side `dir`, once per known
    /// identity (`idx`, its [`Engine::known_index`]).
    fn side_context_of(
        &self,
        subject: &Party,
        idx: Option<usize>,
        dir: Direction,
    ) -> Rc<SideContext<'a>> {
        let Some(i) = idx else {
            return Rc::new(self.engine.side_context(subject, dir));
        };
        if let Some(s) = self.subjects.borrow().get(&(i, dir)) {
            return Rc::clone(s);
        }
        let s = Rc::new(self.engine.side_context(subject, dir));
        self.subjects.borrow_mut().insert((i, dir), Rc::clone(&s));
        s
    }

    fn hop2(&self, from: &Party, to: &Party, port: u16) -> Hop {
        let e = self.side(from, Direction::Egress, to, port);
        let i = self.side(to, Direction::Ingress, from, port);
        hop(
            "ingress -> backend",
            vec![
                check(
                    Role::Ingress,
                    &format!("egress of {}", from.name),
                    e,
                    &from.name,
                    &to.name,
                    self.proto.get(),
                    port,
                ),
                check(
                    Role::Backend,
                    &format!("ingress of {}", to.name),
                    i,
                    &from.name,
                    &to.name,
                    self.proto.get(),
                    port,
                ),
            ],
            Vec::new(),
        )
    }

    fn service(&self, ns: &str, name: &str) -> Option<&Service> {
        self.services.get(&(ns, name)).copied()
    }

    /// The controller of a class, and its pods.
    fn controller(
        &self,
        controller_name: &str,
        cilium: bool,
        listener_port: u16,
        gateway: Option<&ObjectRef>,
    ) -> (Controller, Vec<(Party, u16, bool)>) {
        if cilium {
            return (Controller::Cilium, Vec::new());
        }
        // Explicit selection first.
        let inv = self.engine.inv;
        let mut found: Vec<(Party, u16, bool)> = Vec::new();
        let mut service = None;
        let explicit: Vec<&Workload> = inv
            .workloads
            .iter()
            .filter(|w| {
                self.opts.controllers.iter().any(|(ns, sel)| {
                    w.namespace == *ns
                        && sel.matches(&LabelSet::new(
                            w.labels
                                .iter()
                                .map(|(k, v)| Label::new(SOURCE_K8S, k, v))
                                .collect(),
                        ))
                })
            })
            .collect();
        let fronting: Vec<&Service> = inv
            .services
            .iter()
            .filter(|s| s.service_type == "LoadBalancer" || s.service_type == "NodePort")
            .collect();
        let hint = controller_hint(controller_name);
        for s in &fronting {
            let Some(sel) = &s.selector else { continue };
            let pods: Vec<&Workload> = inv
                .workloads
                .iter()
                .filter(|w| w.namespace == s.namespace && selects(sel, w))
                .collect();
            let matches_hint = !hint.is_empty()
                && pods.iter().any(|w| {
                    w.labels.values().any(|v| v.contains(&hint)) || w.object.name.contains(&hint)
                });
            let chosen: Vec<&&Workload> = if explicit.is_empty() {
                if matches_hint {
                    pods.iter().collect()
                } else {
                    continue;
                }
            } else {
                pods.iter()
                    .filter(|w| explicit.iter().any(|e| std::ptr::eq(**w, *e)))
                    .collect()
            };
            if chosen.is_empty() {
                continue;
            }
            let sp = s.ports.iter().find(|p| p.port == listener_port);
            for w in chosen {
                let Some(party) = party_of(self.engine, w) else {
                    continue;
                };
                let port = sp.and_then(|p| w.target_port(&p.target, p.protocol));
                if let Some(port) = port {
                    found.push((party, port, s.external_traffic_policy != "Local"));
                }
            }
            service = Some(format!(
                "{} ({}, externalTrafficPolicy: {})",
                s.object.short(),
                s.service_type,
                s.external_traffic_policy
            ));
        }
        if found.is_empty() && !explicit.is_empty() {
            // Controller pods named explicitly without a fronting Service:
            // the listener port is taken as their container port.
            for w in &explicit {
                if let Some(p) = party_of(self.engine, w) {
                    found.push((p, listener_port, true));
                }
            }
        }
        found.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        found.dedup_by(|a, b| a.0.name == b.0.name);
        if found.is_empty() && explicit.is_empty() && !self.opts.controllers.is_empty() {
            // Named with --controller but not in the input (a Helm release):
            // pods with exactly the given labels, on the listener port.
            for (ns, sel) in &self.opts.controllers {
                let labels: BTreeMap<String, String> = sel
                    .equalities()
                    .map(|(_, k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let name = format!("{ns}/{sel} (from --controller)");
                found.push((
                    self.engine.virtual_pod(ns, &labels, "default", name),
                    listener_port,
                    true,
                ));
            }
        }
        if found.is_empty() && controller_name == ENVOY_GATEWAY_CONTROLLER {
            if let Some(gw) = gateway {
                let proxy = self.envoy_gateway_proxy(gw);
                let port = envoy_gateway_container_port(listener_port);
                let name = proxy.name.clone();
                let selectors = BTreeMap::from([(name.clone(), own_labels(&proxy))]);
                return (
                    Controller::Pods {
                        controller: controller_name.to_string(),
                        pods: vec![name],
                        service: Some(format!(
                            "the LoadBalancer Service Envoy Gateway creates (externalTrafficPolicy: Cluster by default); proxy pods modelled from Envoy Gateway's labels, container port {port}"
                        )),
                        selectors,
                    },
                    vec![(proxy, port, true)],
                );
            }
        }
        if found.is_empty() {
            return (
                Controller::Unknown {
                    controller: controller_name.to_string(),
                },
                found,
            );
        }
        let selectors = found
            .iter()
            .map(|(p, _, _)| (p.name.clone(), self.selecting_labels(p)))
            .collect();
        (
            Controller::Pods {
                controller: controller_name.to_string(),
                pods: found.iter().map(|f| f.0.name.clone()).collect(),
                service,
                selectors,
            },
            found,
        )
    }

    /// The labels that select a controller pod: the selector of the
    /// LoadBalancer/NodePort Service in front of it, else its own labels.
    fn selecting_labels(&self, p: &Party) -> (String, BTreeMap<String, String>) {
        let (ns, own) = own_labels(p);
        let inv = self.engine.inv;
        let fronting = inv
            .services
            .iter()
            .filter(|s| {
                s.namespace == ns
                    && (s.service_type == "LoadBalancer" || s.service_type == "NodePort")
            })
            .filter_map(|s| s.selector.clone())
            .find(|sel| sel.iter().all(|(k, v)| own.get(k) == Some(v)));
        (ns, fronting.unwrap_or(own))
    }

    /// The data-plane pods Envoy Gateway runs for a Gateway: created at run
    /// time, so not in manifests; modelled with the labels Envoy Gateway puts
    /// on them, in its default namespace `envoy-gateway-system`.
    fn envoy_gateway_proxy(&self, gw: &ObjectRef) -> Party {
        let ns = "envoy-gateway-system";
        let gw_ns = gw.namespace.clone().unwrap_or_default();
        let labels = BTreeMap::from([
            (
                "app.kubernetes.io/component".to_string(),
                "proxy".to_string(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "envoy-gateway".to_string(),
            ),
            ("app.kubernetes.io/name".to_string(), "envoy".to_string()),
            (
                "gateway.envoyproxy.io/owning-gateway-name".to_string(),
                gw.name.clone(),
            ),
            (
                "gateway.envoyproxy.io/owning-gateway-namespace".to_string(),
                gw_ns.clone(),
            ),
        ]);
        self.engine.virtual_pod(
            ns,
            &labels,
            &format!("envoy-{gw_ns}-{}", gw.name),
            format!("{ns}/envoy-{gw_ns}-{} (Envoy Gateway proxy)", gw.name),
        )
    }

    /// Paths from an entry point through one backend Service.
    #[allow(clippy::too_many_arguments)]
    fn backend(
        &self,
        ctrl: &Controller,
        ctrl_pods: &[(Party, u16, bool)],
        entry_port: u16,
        ns: &str,
        name: &str,
        port: Option<&ServicePortRef>,
        rule: String,
        location: Location,
        mut findings: Vec<String>,
    ) -> BackendPaths {
        let port_text = match port {
            Some(ServicePortRef::Number(n)) => n.to_string(),
            Some(ServicePortRef::Name(n)) => n.clone(),
            None => "?".to_string(),
        };
        let mut out = BackendPaths {
            service: format!("{ns}/{name}:{port_text}"),
            rule,
            location,
            findings: Vec::new(),
            paths: Vec::new(),
            decision: Status::Denied,
            not_checked: None,
        };
        let Some(svc) = self.service(ns, name) else {
            let why = format!("Service {ns}/{name} is not in the input");
            findings.push(why.clone());
            out.findings = findings;
            out.decision = Status::NotChecked;
            out.not_checked = Some(why);
            return out;
        };
        let sp = match port {
            Some(ServicePortRef::Number(n)) => svc.ports.iter().find(|p| p.port == *n),
            Some(ServicePortRef::Name(n)) => svc
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(n.as_str())),
            None => {
                findings.push("the backend names no port".to_string());
                None
            }
        };
        let Some(sp) = sp else {
            if port.is_some() {
                let have: Vec<String> = svc.ports.iter().map(|p| p.port.to_string()).collect();
                findings.push(format!(
                    "Service {ns}/{name} has no port {port_text} (it has {})",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ));
            }
            out.findings = findings;
            return out;
        };
        let Some(sel) = &svc.selector else {
            let why = format!(
                "Service {ns}/{name} has no selector: its endpoints are managed by hand and cannot be analysed"
            );
            findings.push(why.clone());
            out.findings = findings;
            out.decision = Status::NotChecked;
            out.not_checked = Some(why);
            return out;
        };
        let pods: Vec<&Workload> = self
            .workloads
            .get(ns)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|w| selects(sel, w))
            .collect();
        let mut no_pods = None;
        if pods.is_empty() {
            let s: Vec<String> = sel.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let why = format!(
                "Service {ns}/{name} selects no pods or workloads ({}): no backend to check",
                s.join(",")
            );
            findings.push(why.clone());
            no_pods = Some(why);
        }
        let ingress_party = self.engine.party("ingress").ok();
        for w in pods {
            let Some(backend) = party_of(self.engine, w) else {
                let name = w.display_name();
                if self
                    .opts
                    .backend
                    .as_deref()
                    .is_some_and(|b| !name.contains(b))
                {
                    continue;
                }
                let why = format!(
                    "{name} could not be resolved to an endpoint: no hop to it can be checked"
                );
                out.paths.push(PodPath {
                    backend: name,
                    target_port: None,
                    decision: Status::NotChecked,
                    not_checked: Some(why.clone()),
                    hops: Vec::new(),
                    findings: vec![why],
                    class: None,
                });
                continue;
            };
            if self
                .opts
                .backend
                .as_deref()
                .is_some_and(|b| !backend.name.contains(b))
            {
                continue;
            }
            let mut pf = Vec::new();
            let target = w.target_port(&sp.target, sp.protocol);
            if let (None, TargetPort::Name(n)) = (target, &sp.target) {
                // Kubernetes matches the name and the Service port's protocol.
                let other = w
                    .service_ports()
                    .any(|cp| cp.name.as_deref() == Some(n.as_str()));
                let proto = if other {
                    format!("{} ", sp.protocol)
                } else {
                    String::new()
                };
                pf.push(format!(
                    "{} has no {proto}container port named `{n}` (targetPort of {ns}/{name})",
                    backend.name
                ));
            }
            let mut hops = Vec::new();
            let mut not_checked = None;
            if let Some(t) = target {
                match ctrl {
                    Controller::Cilium => {
                        if let Some(ing) = &ingress_party {
                            let port = match self.opts.hop1_port {
                                Hop1Port::Listener => entry_port,
                                Hop1Port::Backend => t,
                            };
                            hops.push(self.cilium_hop1(ing, port, &backend, t));
                            hops.push(self.hop2(ing, &backend, t));
                        }
                    }
                    Controller::Pods { .. } => {
                        for (cp, cport, etp_cluster) in ctrl_pods {
                            let mut h1 = self.pod_hop1(cp, *cport, *etp_cluster);
                            h1.name = format!("outside -> ingress ({})", cp.name);
                            hops.push(h1);
                            let mut h2 = self.hop2(cp, &backend, t);
                            h2.name = format!("ingress ({}) -> backend", cp.name);
                            hops.push(h2);
                        }
                    }
                    Controller::Unknown { controller } => {
                        let why = format!(
                            "the pods of controller `{controller}` are not in the input: hops through them cannot be checked (name them with --controller NS/LABEL=VALUE)"
                        );
                        for name in ["outside -> ingress", "ingress -> backend"] {
                            hops.push(Hop {
                                name: name.to_string(),
                                decision: Status::NotChecked,
                                checks: Vec::new(),
                                notes: vec![why.clone()],
                            });
                        }
                        pf.push(why.clone());
                        not_checked = Some(why);
                    }
                }
            }
            if target.is_some() && hops.is_empty() && not_checked.is_none() {
                not_checked = Some("the ingress identity could not be resolved".to_string());
            }
            // Findings that are not a reason to leave the path unchecked
            // (a missing named port) deny it.
            let refused = pf.iter().any(|f| Some(f) != not_checked.as_ref());
            let decision = if refused || target.is_none() {
                Status::Denied
            } else if hops.is_empty() {
                Status::NotChecked
            } else {
                Status::all(hops.iter().map(|h| h.decision))
            };
            let class = self.engine.known_index(&backend.identity).map(|identity| {
                let key = ClassKey {
                    identity,
                    enforced: backend.enforced,
                    host_network: w.host_network,
                    target,
                    ports: w.ports.clone(),
                    namespace: w.namespace.clone(),
                    services: self
                        .engine
                        .services_in(&w.namespace)
                        .enumerate()
                        .filter(|(_, s)| {
                            s.selector
                                .as_ref()
                                .is_some_and(|sel| !sel.is_empty() && selects(sel, w))
                        })
                        .map(|(i, _)| i)
                        .collect(),
                };
                let mut classes = self.classes.borrow_mut();
                let next = classes.len();
                *classes.entry(key).or_insert(next)
            });
            out.paths.push(PodPath {
                class,
                backend: backend.name.clone(),
                target_port: target,
                decision,
                not_checked: if decision == Status::NotChecked {
                    not_checked
                } else {
                    None
                },
                hops,
                findings: pf,
            });
        }
        out.findings = findings;
        out.decision = if out.paths.is_empty() {
            if no_pods.is_some() {
                Status::NotChecked
            } else {
                Status::Denied
            }
        } else if out.findings.is_empty() {
            Status::all(out.paths.iter().map(|p| p.decision))
        } else {
            Status::Denied
        };
        if out.decision == Status::NotChecked {
            out.not_checked =
                no_pods.or_else(|| out.paths.iter().find_map(|p| p.not_checked.clone()));
        }
        out
    }
}

/// A pod's namespace and own labels, from its identity (the labels Cilium
/// keeps, without the ones it adds).
pub fn own_labels(p: &Party) -> (String, BTreeMap<String, String>) {
    let mut ns = String::new();
    let mut labels = BTreeMap::new();
    for l in p.identity.labels.iter().filter(|l| l.source == SOURCE_K8S) {
        if l.key == crate::labels::POD_NAMESPACE_LABEL {
            ns = l.value.clone();
        } else if !l.key.starts_with("io.cilium.k8s.") && !l.key.starts_with("io.kubernetes.") {
            labels.insert(l.key.clone(), l.value.clone());
        }
    }
    (ns, labels)
}

/// Envoy Gateway's controller name.
pub const ENVOY_GATEWAY_CONTROLLER: &str = "gateway.envoyproxy.io/gatewayclass-controller";

/// Envoy Gateway's proxies listen on the listener port, shifted by 10000
/// below 1024 so that they run unprivileged.
fn envoy_gateway_container_port(listener_port: u16) -> u16 {
    if listener_port < 1024 {
        listener_port + 10000
    } else {
        listener_port
    }
}

/// A fragment to recognise a controller's pods by (`nginx` for
/// `k8s.io/ingress-nginx`, `traefik`, `envoy`, ...).
fn controller_hint(controller: &str) -> String {
    let last = controller
        .rsplit('/')
        .next()
        .unwrap_or(controller)
        .to_ascii_lowercase();
    for known in [
        "nginx",
        "traefik",
        "envoy",
        "haproxy",
        "kong",
        "contour",
        "istio",
        "skipper",
        "ambassador",
        "emissary",
    ] {
        if last.contains(known) || controller.to_ascii_lowercase().contains(known) {
            return known.to_string();
        }
    }
    last
}

/// With `--backend`, a Service whose pods all fall outside the filter is
/// left out (one whose backend names match is kept, even without pods).
fn keep(opts: &PathOptions, bp: &BackendPaths) -> bool {
    match &opts.backend {
        None => true,
        Some(b) => !bp.paths.is_empty() || bp.service.contains(b.as_str()),
    }
}

fn included(opts: &PathOptions, route: &ObjectRef, backend_ns: &str) -> bool {
    opts.namespace
        .as_deref()
        .is_none_or(|n| route.namespace.as_deref() == Some(n) || backend_ns == n)
        && opts
            .route
            .as_deref()
            .is_none_or(|r| route.name == r || route.short() == r)
}

/// Computes every path.
pub fn paths(engine: &Engine, routing: &Routing, opts: &PathOptions) -> PathsReport {
    let mut services: HashMap<(&str, &str), &Service> = HashMap::new();
    for s in &engine.inv.services {
        services
            .entry((s.namespace.as_str(), s.object.name.as_str()))
            .or_insert(s);
    }
    let mut workloads: HashMap<&str, Vec<&Workload>> = HashMap::new();
    for w in &engine.inv.workloads {
        workloads.entry(w.namespace.as_str()).or_default().push(w);
    }
    let ctx = Ctx {
        engine,
        routing,
        opts,
        proto: std::cell::Cell::new(Protocol::Tcp),
        services,
        workloads,
        decided: RefCell::new(HashMap::new()),
        lists: RefCell::new(Interner::new()),
        classes: RefCell::new(HashMap::new()),
        near: RefCell::new(HashMap::new()),
        subjects: RefCell::new(FxHashMap::default()),
    };
    let mut entry_points = Vec::new();
    let mut findings = Vec::new();
    let mut attached_somewhere: BTreeMap<ObjectRef, bool> = BTreeMap::new();
    for gw in &routing.gateways {
        let (controller_name, cilium, class_note) = match routing.gateway_classes.get(&gw.class) {
            Some(c) => (c.controller.clone(), c.controller == CILIUM_GATEWAY_CONTROLLER, None),
            None if gw.class == "cilium" => (
                CILIUM_GATEWAY_CONTROLLER.to_string(),
                true,
                Some(format!("GatewayClass `cilium` is not in the input; assumed to be Cilium's ({CILIUM_GATEWAY_CONTROLLER})")),
            ),
            None => (
                gw.class.clone(),
                false,
                Some(format!("GatewayClass `{}` is not in the input; its controller is unknown", gw.class)),
            ),
        };
        if let Some(n) = class_note {
            findings.push(format!("{} ({}): {n}", gw.object, gw.location));
        }
        for l in &gw.listeners {
            ctx.proto.set(if l.protocol == "UDP" {
                Protocol::Udp
            } else {
                Protocol::Tcp
            });
            let (controller, ctrl_pods) =
                ctx.controller(&controller_name, cilium, l.port, Some(&gw.object));
            let mut routes = Vec::new();
            for r in routing.routes.iter().filter(|r| {
                r.parents.iter().any(|p| {
                    p.name == gw.object.name
                        && p.namespace == gw.object.namespace.clone().unwrap_or_default()
                })
            }) {
                let problem = ctx.attach_problem(gw, l, r);
                let attached = problem.is_none();
                // A route attaches to a Gateway through any one listener:
                // failing on the others is normal. It is shown under a
                // listener it failed on only when it attaches to none of the
                // Gateway's listeners and its parentRef aims at this one.
                if !attached {
                    let anywhere = gw
                        .listeners
                        .iter()
                        .any(|x| ctx.attach_problem(gw, x, r).is_none());
                    let aimed = r.parents.iter().any(|p| {
                        p.name == gw.object.name
                            && p.section.as_ref().is_none_or(|sn| *sn == l.name)
                            && p.port.is_none_or(|port| port == l.port)
                    });
                    if anywhere || !aimed {
                        continue;
                    }
                }
                *attached_somewhere.entry(r.object.clone()).or_default() |= attached;
                let route_ns = r.object.namespace.clone().unwrap_or_default();
                let mut rp = RoutePaths {
                    route: r.object.clone(),
                    location: r.location.clone(),
                    attached,
                    findings: problem.into_iter().collect(),
                    hostnames: r.hostnames.clone(),
                    backends: Vec::new(),
                };
                if attached {
                    for (ri, rule) in r.rules.iter().enumerate() {
                        for b in &rule.backends {
                            if !included(opts, &r.object, &b.namespace) {
                                continue;
                            }
                            let mut pre = Vec::new();
                            if !(b.kind == "Service" && (b.group.is_empty() || b.group == "core")) {
                                pre.push(format!(
                                    "backend kind {}/{} is not a Service and is not analysed",
                                    b.group, b.kind
                                ));
                            }
                            if b.namespace != route_ns
                                && !ctx.grant_allows(r, &b.namespace, &b.name)
                            {
                                pre.push(format!(
                                    "backend {}/{} is in another namespace and no ReferenceGrant in `{}` permits {} from `{route_ns}`: Gateway API refuses the reference",
                                    b.namespace, b.name, b.namespace, r.object.kind
                                ));
                            }
                            if b.weight == 0 {
                                pre.push("weight 0: this backend receives no traffic".to_string());
                            }
                            let port = b.port.map(ServicePortRef::Number);
                            let m = if rule.matches.is_empty() {
                                "any".to_string()
                            } else {
                                rule.matches.join(" | ")
                            };
                            let refused = pre.iter().any(|p| p.contains("Gateway API refuses"));
                            let other_kind = pre.iter().find(|p| p.contains("not a Service"));
                            let mut bp = if refused || other_kind.is_some() {
                                BackendPaths {
                                    service: format!("{}/{}", b.namespace, b.name),
                                    rule: format!("rules[{ri}] {m}"),
                                    location: b.location.clone(),
                                    findings: Vec::new(),
                                    paths: Vec::new(),
                                    decision: if refused {
                                        Status::Denied
                                    } else {
                                        Status::NotChecked
                                    },
                                    not_checked: if refused { None } else { other_kind.cloned() },
                                }
                            } else {
                                ctx.backend(
                                    &controller,
                                    &ctrl_pods,
                                    l.port,
                                    &b.namespace,
                                    &b.name,
                                    port.as_ref(),
                                    format!("rules[{ri}] {m}"),
                                    b.location.clone(),
                                    Vec::new(),
                                )
                            };
                            // A refused reference or weight 0 denies the
                            // backend, whatever its paths.
                            let denies = pre.iter().any(|p| !p.contains("not a Service"));
                            pre.append(&mut bp.findings);
                            bp.findings = pre;
                            if denies {
                                bp.decision = Status::Denied;
                                bp.not_checked = None;
                            }
                            if keep(opts, &bp) {
                                rp.backends.push(bp);
                            }
                        }
                    }
                }
                if included(opts, &r.object, "") || !rp.backends.is_empty() {
                    routes.push(rp);
                }
            }
            entry_points.push(EntryPoint {
                object: gw.object.clone(),
                location: l.location.clone(),
                listener: l.name.clone(),
                port: l.port,
                protocol: l.protocol.clone(),
                hostname: l.hostname.clone(),
                controller,
                routes,
            });
        }
    }
    for r in &routing.routes {
        if attached_somewhere.get(&r.object).copied() != Some(true) && included(opts, &r.object, "")
        {
            let parents: Vec<String> = r
                .parents
                .iter()
                .map(|p| format!("{} {}/{}", p.kind, p.namespace, p.name))
                .collect();
            let exists = r.parents.iter().any(|p| {
                routing.gateways.iter().any(|g| {
                    g.object.name == p.name
                        && g.object.namespace.as_deref() == Some(p.namespace.as_str())
                })
            });
            let why = if r.parents.is_empty() {
                "it has no parentRefs".to_string()
            } else if r.parents.iter().all(|p| p.kind == "Service") {
                // GAMMA: a route on a Service is east-west mesh routing.
                format!(
                    "its parentRefs are Services ({}): mesh (GAMMA) routing inside the cluster, not a way in; not analysed",
                    parents.join(", ")
                )
            } else if exists {
                "see the reasons under its Gateway".to_string()
            } else {
                format!("its parent {} is not in the input", parents.join(", "))
            };
            findings.push(format!(
                "{} ({}) attaches to no listener: {why}",
                r.object, r.location
            ));
        }
    }
    for ing in &routing.ingresses {
        let class = ing.class.clone().or_else(|| {
            routing
                .ingress_classes
                .values()
                .find(|c| c.is_default)
                .map(|c| c.name.clone())
        });
        let (controller_name, cilium) = match class
            .as_deref()
            .and_then(|c| routing.ingress_classes.get(c))
        {
            Some(c) => (
                c.controller.clone(),
                c.controller == CILIUM_INGRESS_CONTROLLER,
            ),
            None => match class.as_deref() {
                Some("cilium") => (CILIUM_INGRESS_CONTROLLER.to_string(), true),
                Some(other) => (other.to_string(), false),
                None => {
                    findings.push(format!(
                        "{} ({}) has no ingressClassName and no default IngressClass is in the input; assumed to be served by Cilium",
                        ing.object, ing.location
                    ));
                    (CILIUM_INGRESS_CONTROLLER.to_string(), true)
                }
            },
        };
        let mut ports = vec![("http", 80u16)];
        if ing.tls {
            ports.push(("https", 443));
        }
        for (lname, port) in ports {
            ctx.proto.set(Protocol::Tcp);
            let (controller, ctrl_pods) = ctx.controller(&controller_name, cilium, port, None);
            let ns = ing.object.namespace.clone().unwrap_or_default();
            if !included(opts, &ing.object, &ns) {
                continue;
            }
            let mut rp = RoutePaths {
                route: ing.object.clone(),
                location: ing.location.clone(),
                attached: true,
                findings: Vec::new(),
                hostnames: ing
                    .paths
                    .iter()
                    .filter_map(|p| p.host.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                backends: Vec::new(),
            };
            for p in &ing.paths {
                let rule = format!("{}{}", p.host.as_deref().unwrap_or("*"), p.path);
                let bp = ctx.backend(
                    &controller,
                    &ctrl_pods,
                    port,
                    &ns,
                    &p.service,
                    Some(&p.port),
                    rule,
                    p.location.clone(),
                    Vec::new(),
                );
                if keep(opts, &bp) {
                    rp.backends.push(bp);
                }
            }
            entry_points.push(EntryPoint {
                object: ing.object.clone(),
                location: ing.location.clone(),
                listener: lname.to_string(),
                port,
                protocol: if lname == "https" {
                    "HTTPS".into()
                } else {
                    "HTTP".into()
                },
                hostname: None,
                controller,
                routes: vec![rp],
            });
        }
    }
    let mut summary = Summary::default();
    for ep in &entry_points {
        for r in &ep.routes {
            for b in &r.backends {
                if b.paths.is_empty() {
                    summary.add(b.decision);
                }
                for p in &b.paths {
                    summary.add(p.decision);
                }
            }
        }
    }
    if entry_points.is_empty() {
        let skipped: Vec<String> = engine
            .inv
            .skipped
            .iter()
            .map(|(k, v)| format!("{k} ({})", v.len()))
            .collect();
        findings.push(format!(
            "no Ingress or Gateway in the input{}",
            if skipped.is_empty() {
                String::new()
            } else {
                format!(
                    "; objects of these kinds were not analysed: {} (render Helm charts and Kustomize overlays first, e.g. `helm template`, `kustomize build`)",
                    skipped.join(", ")
                )
            }
        ));
    }
    findings.sort();
    findings.dedup();
    PathsReport {
        rule_lists: ctx.lists.into_inner().lists,
        entry_points,
        findings,
        summary,
    }
}
