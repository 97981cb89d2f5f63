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

mod backend;
mod controller;
mod entry_points;
mod model;
pub mod render;
pub mod routes;
mod threads;

pub use model::*;
pub use threads::{paths, paths_decisions, paths_on, PARALLEL_BACKENDS};

use crate::engine::side_context::{SideContext, SideContextKey};
use crate::engine::{Decision, Engine, Party, SideVerdict};
use crate::ingest::ContainerPort;
use crate::ingest::{Service, TargetPort, Workload};
use crate::labels::{Label, LabelSet, SOURCE_K8S};
use crate::near_miss::{near_misses_in, service_ports, NearMiss};
use crate::policy::{Direction, PeerKind, Protocol};
use crate::routes::{
    AllowedNamespaces, Gateway, Ingress, Listener, Route, Routing, ServicePortRef,
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
    ids: FxHashMap<Arc<[String]>, usize>,
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
    services: FxHashMap<(&'e str, &'e str), &'e Service>,
    /// Namespace -> its workloads, in input order.
    workloads: FxHashMap<&'e str, Vec<&'e Workload>>,
    /// Side decisions per identity pair and port: the replicas of a
    /// workload (one identity) share them.
    decided: RefCell<FxHashMap<SideKey, (Arc<Decided>, Lists)>>,
    /// The rule lists of the report.
    lists: RefCell<Interner>,
    /// Classes of backend pods ([`PodPath::class`]).
    classes: RefCell<FxHashMap<ClassKey, usize>>,
    /// Near misses per side and Service ports of the destination.
    near: RefCell<NearMisses>,
    /// The peer-free facts of each known subject identity's side.
    subjects: RefCell<FxHashMap<(usize, Direction), Rc<SideContext<'a>>>>,
    /// The same by what they are built from: identities selected by the
    /// same rules share one (100k synthetic pods: 10,000 identities).
    by_rules: RefCell<FxHashMap<SideContextKey, Rc<SideContext<'a>>>>,
    /// Whether denied checks get their near misses ([`paths_decisions`]: no).
    near_misses: bool,
}

/// Near misses per side key and Service ports of the destination.
type NearMisses = FxHashMap<(SideKey, Vec<u16>), Vec<NearMiss>>;

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
        if v.reason != crate::engine::Reason::DefaultDeny || !self.near_misses {
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
        let key = self.engine.side_context_key(subject, dir);
        let shared = self.by_rules.borrow().get(&key).cloned();
        let s = shared.unwrap_or_else(|| {
            let s = Rc::new(self.engine.side_context(subject, dir));
            self.by_rules.borrow_mut().insert(key, Rc::clone(&s));
            s
        });
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
