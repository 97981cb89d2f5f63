//! Replaying observed Hubble flows against policies: every connection the
//! cluster observed is judged by the engine under the policies given, and
//! compared with what the cluster did (delivered, dropped, audit).
//!
//! * Each side's identity comes from the flow's security labels (so replay
//!   works with manifests that hold only policies), reserved identities from
//!   `reserved:*` labels or well-known numbers, world from the IP (a CIDR
//!   identity). Where the manifests hold the pod, its labels are compared.
//! * Replies, L7 records and TCP segments that do not open a connection are
//!   skipped: connection tracking lets them through, policy never sees them.
//! * The observed decision is compared on the side the record observed
//!   (the `traffic_direction` of a policy verdict or drop, the source side
//!   for packets not yet at their destination, the whole flow when
//!   delivered to the endpoint).
//!
//! See docs/replay.md for the contract.

use crate::cidr::Cidr;
use crate::engine::side_context::SideContext;
use crate::engine::{Decision, Engine, Party, SideVerdict};
use crate::ingest::ContainerPort;
use rustc_hash::FxHashMap;
use crate::flows::{Flow, FlowEndpoint};
use crate::identity::{Identity, IdentityKind, RESERVED};
use crate::labels::{split_source, Label, LabelSet, CLUSTER_LABEL, POD_NAMESPACE_LABEL};
use crate::policy::{Direction, Protocol};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

/// What the cluster did with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Observed {
    /// FORWARDED or REDIRECTED (to the L7 proxy).
    Delivered,
    /// DROPPED by policy (POLICY_DENIED, POLICY_DENY, AUTH_REQUIRED), or
    /// DROPPED without a reason in the record.
    Dropped,
    /// AUDIT: delivered because the endpoint is in policy audit mode; the
    /// policy in force then would have dropped it.
    Audit,
}

impl Observed {
    pub fn delivered(self) -> bool {
        self != Observed::Dropped
    }
}

/// The enforcement point the observation speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The source's egress policy.
    Egress,
    /// The destination's ingress policy.
    Ingress,
    /// Both: the record saw the packet delivered (or dropped) end to end.
    Flow,
}

/// How the replayed verdict compares with the observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Observed delivered (or audit), denied now.
    Break,
    /// Observed dropped, allowed now.
    NewlyAllowed,
    Unchanged,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Break => "break",
            Change::NewlyAllowed => "newly-allowed",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One side of a replayed connection.
#[derive(Debug, Clone)]
pub struct FlowParty {
    pub party: Party,
    /// The name connections are grouped by: `ns/kind/name` (the flow's
    /// workload), `ns/pod`, `reserved:NAME`, `cidr:IP/32` or `world`.
    pub group: String,
    pub namespace: Option<String>,
    /// The flow's own cluster label, if any.
    pub cluster: Option<String>,
    /// The identity number of the pod in the manifests, when they hold it
    /// (its labels may differ from the flow's).
    pub manifest_id: Option<u32>,
    /// The party's index among the engine's identities, when it is one
    /// of them (`Engine::known_index`).
    pub known: Option<usize>,
}

/// One observed connection, before judging.
#[derive(Debug, Clone)]
pub struct Connection {
    pub from: Arc<FlowParty>,
    pub to: Arc<FlowParty>,
    pub protocol: Protocol,
    pub port: u16,
    pub observed: Observed,
    pub compared: Scope,
    pub notes: Vec<String>,
}

/// The result of one input line.
#[derive(Debug, Clone, Serialize)]
pub struct LineVerdict {
    pub file: Arc<str>,
    pub line: usize,
    /// `allowed`, `denied` (the replayed decision at the compared scope) or
    /// `skipped`.
    pub verdict: &'static str,
    /// Why a line was skipped (a fixed category; `detail` says more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared: Option<Scope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Decision>,
    /// The deciding rules (file:line) of the compared sides (shared by
    /// every record of one decision).
    #[serde(skip_serializing_if = "no_rules")]
    pub deciding: Arc<[String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Arc<str>>,
    /// Label disagreements with the manifests, Gateway/Ingress hop notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl LineVerdict {
    pub fn skipped(file: &Arc<str>, line: usize, reason: &'static str, detail: String) -> Self {
        LineVerdict {
            file: Arc::clone(file),
            line,
            verdict: "skipped",
            reason: Some(reason),
            detail: Some(detail),
            from: None,
            to: None,
            protocol: None,
            port: None,
            observed: None,
            compared: None,
            change: None,
            egress: None,
            ingress: None,
            deciding: Arc::new([]),
            explanation: None,
            notes: Vec::new(),
        }
    }
}

fn no_rules(r: &Arc<[String]>) -> bool {
    r.is_empty()
}

/// Skip categories (the `reason` field).
pub mod skip {
    pub const MALFORMED: &str = "malformed";
    pub const NOT_A_FLOW: &str = "not-a-flow";
    pub const EMPTY: &str = "empty-line";
    pub const REPLY: &str = "reply";
    pub const L7: &str = "l7-record";
    pub const NOT_CONNECTION_START: &str = "not-connection-start";
    pub const NOT_A_DECISION: &str = "not-a-decision";
    pub const NOT_POLICY_DROP: &str = "dropped-not-by-policy";
    pub const NO_L4: &str = "no-l4";
    pub const UNKNOWN_ENDPOINT: &str = "unknown-endpoint";
}

/// The judged sides of one connection (cached by identities and port),
/// with what each compared scope reports, shared by its records.
#[derive(Debug)]
struct Judged {
    egress: Decision,
    ingress: Decision,
    decision: Decision,
    /// Per scope (egress, ingress, flow): whether it passes, its deciding
    /// rules and its explanation.
    scopes: [(bool, Arc<[String]>, Arc<str>); 3],
}

/// The party of an endpoint, or why it has none.
type PartyResult = Result<Arc<FlowParty>, String>;

/// What [`Replayer::party`] reads of an endpoint besides its address.
#[derive(Debug)]
struct EndpointKey {
    labels: Vec<String>,
    identity: Option<u32>,
    namespace: Option<String>,
    pod_name: Option<String>,
    workloads: Vec<(String, String)>,
}

impl EndpointKey {
    fn of(ep: &FlowEndpoint) -> EndpointKey {
        EndpointKey {
            labels: ep.labels.clone(),
            identity: ep.identity,
            namespace: ep.namespace.clone(),
            pod_name: ep.pod_name.clone(),
            workloads: ep
                .workloads
                .iter()
                .map(|w| (w.kind.clone(), w.name.clone()))
                .collect(),
        }
    }

    fn is(&self, ep: &FlowEndpoint) -> bool {
        self.labels == ep.labels
            && self.identity == ep.identity
            && self.namespace == ep.namespace
            && self.pod_name == ep.pod_name
            && self.workloads.len() == ep.workloads.len()
            && self
                .workloads
                .iter()
                .zip(&ep.workloads)
                .all(|((k, n), w)| *k == w.kind && *n == w.name)
    }
}

fn endpoint_hash(ep: &FlowEndpoint) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    ep.labels.hash(&mut h);
    ep.identity.hash(&mut h);
    ep.namespace.hash(&mut h);
    ep.pod_name.hash(&mut h);
    for w in &ep.workloads {
        w.kind.hash(&mut h);
        w.name.hash(&mut h);
    }
    h.finish()
}

/// Most endpoints whose parties are kept (cleared when full).
const PARTIES_MAX: usize = 50_000;

/// A flow's label set for a pod and the disagreement note it gave.
type LabelNote = (LabelSet, Option<String>);

type CacheKey = (IdKey, bool, u32, IdKey, bool, u32, Protocol, u16);

/// A party's identity in the verdict cache: its index among the engine's
/// identities when it is one of them (no label set to clone or hash), else
/// the identity itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Known(usize),
    Other(Identity),
}

/// Judges flow records one at a time.
pub struct Replayer<'e, 'a> {
    pub engine: &'e Engine<'a>,
    cache: FxHashMap<CacheKey, Arc<Judged>>,
    /// Each subject identity's side per direction, built once
    /// (`Engine::side_context`): a decision then costs a port test per
    /// entry and a peer test per distinct peer list.
    contexts: FxHashMap<(IdKey, Direction), Arc<SideContext<'a>>>,
    /// Parties of the endpoints seen (see [`Replayer::party`]), by the
    /// hash of their content.
    parties: FxHashMap<u64, Vec<(EndpointKey, PartyResult, Vec<String>)>>,
    parties_len: usize,
    /// Container port lists, numbered (part of the cache key).
    port_lists: FxHashMap<Vec<ContainerPort>, u32>,
    /// Pods compared with the manifests: per pod, the flow label sets seen
    /// and the disagreement note of each (bounded).
    checked_pods: HashMap<(String, String), Vec<LabelNote>>,
    /// The manifests' party of (namespace, pod, workload), looked up once.
    manifest_parties: HashMap<(String, String, String), Option<Party>>,
}

/// Most cached verdicts kept (the cache is cleared when full).
const CACHE_MAX: usize = 20_000;
/// Most side contexts kept (each holds its subject's entries of one
/// direction; cleared when full).
const CONTEXTS_MAX: usize = 20_000;
const CHECKED_PODS_MAX: usize = 100_000;

/// Which reserved name a set of reserved labels stands for, in Cilium's
/// order (an identity carrying `host` and `kube-apiserver` is the host).
const RESERVED_ORDER: &[&str] = &[
    "host",
    "kube-apiserver",
    "remote-node",
    "ingress",
    "health",
    "init",
    "unmanaged",
];

fn parse_label(text: &str) -> Label {
    let (source, rest) = split_source(text, "unspec");
    match rest.split_once('=') {
        Some((k, v)) => Label::new(source, k, v),
        None => Label::new(source, rest, ""),
    }
}

fn host_cidr(ip: Option<&str>) -> Option<Cidr> {
    ip.and_then(|s| s.parse::<IpAddr>().ok()).map(Cidr::host)
}

fn is_world(name: &str) -> bool {
    matches!(name, "world" | "world-ipv4" | "world-ipv6")
}

impl<'e, 'a> Replayer<'e, 'a> {
    pub fn new(engine: &'e Engine<'a>) -> Self {
        Replayer {
            engine,
            cache: FxHashMap::default(),
            contexts: FxHashMap::default(),
            port_lists: FxHashMap::default(),
            parties: FxHashMap::default(),
            parties_len: 0,
            checked_pods: HashMap::new(),
            manifest_parties: HashMap::new(),
        }
    }

    fn world_party(
        &self,
        ip: Option<&str>,
        extra: &[Label],
        cidr_label: Option<&str>,
        world: &str,
    ) -> FlowParty {
        let dual = self.engine.inv.cluster.dual_stack;
        let cidr = host_cidr(ip).or_else(|| cidr_label.and_then(|c| Cidr::parse(c).ok()));
        let mut id = match cidr {
            Some(c) => Identity::cidr(c, dual),
            None => Identity::reserved(world).unwrap_or(Identity {
                id: 2,
                kind: IdentityKind::Reserved("world".into()),
                labels: LabelSet::new(vec![Label::reserved("world")]),
            }),
        };
        if !extra.is_empty() {
            let mut labels: Vec<Label> = id.labels.iter().cloned().collect();
            labels.extend(extra.iter().cloned());
            id.labels = LabelSet::new(labels);
        }
        let name = match cidr {
            Some(c) => format!("cidr:{c}"),
            None => format!("reserved:{}", id.reserved_name().unwrap_or("world")),
        };
        FlowParty {
            party: Party {
                name: name.clone(),
                enforced: self.engine.enforced(&id),
                identity: id,
                ports: Vec::new(),
            },
            group: name,
            namespace: None,
            cluster: None,
            manifest_id: None,
            known: None,
        }
    }

    fn reserved_party(&self, name: &str, labels: &[Label]) -> Result<FlowParty, String> {
        let mut id = Identity::reserved(name)
            .ok_or_else(|| format!("unknown reserved identity `reserved:{name}`"))?;
        let mut all: Vec<Label> = id.labels.iter().cloned().collect();
        all.extend(labels.iter().cloned());
        id.labels = LabelSet::new(all);
        let n = format!("reserved:{name}");
        Ok(FlowParty {
            party: Party {
                name: n.clone(),
                enforced: self.engine.enforced(&id),
                identity: id,
                ports: Vec::new(),
            },
            group: n,
            namespace: None,
            cluster: None,
            manifest_id: None,
            known: None,
        })
    }

    /// The manifests' party for a flow endpoint (by pod name, then by its
    /// workload), if the manifests hold it.
    fn manifest_party(&mut self, ep: &FlowEndpoint) -> Option<Party> {
        let ns = ep.namespace.as_deref()?;
        let key = (
            ns.to_string(),
            ep.pod_name.clone().unwrap_or_default(),
            ep.workloads
                .first()
                .map(|w| format!("{}/{}", w.kind, w.name))
                .unwrap_or_default(),
        );
        if let Some(p) = self.manifest_parties.get(&key) {
            return p.clone();
        }
        let found = self.find_manifest_party(ns, ep);
        if self.manifest_parties.len() >= CHECKED_PODS_MAX {
            self.manifest_parties.clear();
        }
        self.manifest_parties.insert(key, found.clone());
        found
    }

    fn find_manifest_party(&self, ns: &str, ep: &FlowEndpoint) -> Option<Party> {
        if let Some(pod) = ep.pod_name.as_deref() {
            if let Ok(p) = self.engine.party(&format!("{ns}/{pod}")) {
                return Some(p);
            }
        }
        ep.workloads.iter().find_map(|w| {
            self.engine
                .party(&format!("{ns}/{}/{}", w.kind, w.name))
                .ok()
        })
    }

    /// The party one flow endpoint stands for, with notes. Endpoints
    /// seen before are looked up (by their whole content, compared
    /// exactly), except world and CIDR parties, which depend on the
    /// record's address.
    pub fn party(
        &mut self,
        ep: Option<&FlowEndpoint>,
        ip: Option<&str>,
        notes: &mut Vec<String>,
    ) -> Result<Arc<FlowParty>, String> {
        let empty = FlowEndpoint::default();
        let ep = ep.unwrap_or(&empty);
        let hash = endpoint_hash(ep);
        if let Some((_, found, n)) = self
            .parties
            .get(&hash)
            .and_then(|list| list.iter().find(|(k, _, _)| k.is(ep)))
        {
            notes.extend(n.iter().cloned());
            return found.clone();
        }
        let mut own = Vec::new();
        let found = self.party_uncached(ep, ip, &mut own).map(|mut p| {
            p.known = self.engine.known_index(&p.party.identity);
            Arc::new(p)
        });
        let by_address = found.as_ref().is_ok_and(|p| {
            matches!(&p.party.identity.kind, IdentityKind::Cidr(_))
                || p.party.identity.reserved_name().is_some_and(is_world)
        });
        if !by_address {
            if self.parties_len >= PARTIES_MAX {
                self.parties.clear();
                self.parties_len = 0;
            }
            self.parties_len += 1;
            self.parties.entry(hash).or_default().push((
                EndpointKey::of(ep),
                found.clone(),
                own.clone(),
            ));
        }
        notes.extend(own);
        found
    }

    fn party_uncached(
        &mut self,
        ep: &FlowEndpoint,
        ip: Option<&str>,
        notes: &mut Vec<String>,
    ) -> Result<FlowParty, String> {
        let labels: Vec<Label> = ep.labels.iter().map(|l| parse_label(l)).collect();
        let reserved: Vec<&str> = labels
            .iter()
            .filter(|l| l.source == "reserved")
            .map(|l| l.key.as_str())
            .collect();
        let cidr_label = labels
            .iter()
            .filter(|l| l.source == "cidr")
            .map(|l| l.key.as_str())
            .max_by_key(|c| c.rsplit('/').next().and_then(|n| n.parse::<u8>().ok()));
        if let Some(world) = reserved.iter().find(|r| is_world(r)) {
            let extra: Vec<Label> = labels
                .iter()
                .filter(|l| l.source == "reserved" && !is_world(&l.key))
                .cloned()
                .collect();
            return Ok(self.world_party(ip, &extra, cidr_label, world));
        }
        if let Some(name) = RESERVED_ORDER.iter().find(|n| reserved.contains(n)) {
            let rl: Vec<Label> = labels
                .iter()
                .filter(|l| l.source == "reserved")
                .cloned()
                .collect();
            return self.reserved_party(name, &rl);
        }
        if let Some(r) = reserved.first() {
            return Err(format!("unknown reserved identity `reserved:{r}`"));
        }
        if labels.is_empty() {
            // No labels: a masked exporter record, or an old Hubble.
            if let Some(n) = ep.identity.filter(|n| (1..=10).contains(n)) {
                let name = RESERVED
                    .iter()
                    .find(|(_, id)| *id == n)
                    .map_or("world", |(name, _)| *name);
                if is_world(name) {
                    return Ok(self.world_party(ip, &[], None, name));
                }
                return self.reserved_party(name, &[]);
            }
            if ep
                .identity
                .is_some_and(|n| n >= crate::identity::FIRST_CIDR_ID - 1)
            {
                return Ok(self.world_party(ip, &[], None, "world"));
            }
            if let Some(p) = self.manifest_party(ep) {
                let group = p.name.clone();
                return Ok(FlowParty {
                    known: None,
                    manifest_id: Some(p.identity.id),
                    party: p,
                    group,
                    namespace: ep.namespace.clone(),
                    cluster: None,
                });
            }
            return Err(match (&ep.namespace, &ep.pod_name) {
                (Some(ns), Some(pod)) => format!(
                    "the record carries no labels for {ns}/{pod} and the manifests do not hold it (masked exporter output?)"
                ),
                _ => "the record names no labels, identity or pod for this endpoint".to_string(),
            });
        }
        // A pod (or any labelled endpoint): its identity is its labels.
        let set = LabelSet::new(labels);
        let namespace = ep
            .namespace
            .clone()
            .or_else(|| set.get("k8s", POD_NAMESPACE_LABEL).map(str::to_string));
        let cluster = set.get("k8s", CLUSTER_LABEL).map(str::to_string);
        let known = self
            .engine
            .identity_index(&set)
            .and_then(|i| self.engine.identities.get(i));
        let id_num = known.map(|i| i.id).or(ep.identity).unwrap_or(0);
        let identity = Identity {
            id: id_num,
            kind: IdentityKind::Endpoint,
            labels: set,
        };
        let manifest = self.manifest_party(ep);
        let ports = match &manifest {
            Some(p) => p.ports.clone(),
            None => self.engine.identity_ports(id_num).to_vec(),
        };
        if let (Some(m), Some(ns), Some(pod)) = (&manifest, &ep.namespace, &ep.pod_name) {
            let key = (ns.clone(), pod.clone());
            let seen = self
                .checked_pods
                .get(&key)
                .and_then(|l| l.iter().find(|(ls, _)| *ls == identity.labels))
                .map(|(_, n)| n.clone());
            let note = match seen {
                Some(n) => n,
                None => {
                    let n = label_disagreement(&m.name, &m.identity.labels, &identity.labels);
                    if self.checked_pods.len() >= CHECKED_PODS_MAX {
                        self.checked_pods.clear();
                    }
                    let list = self.checked_pods.entry(key).or_default();
                    if list.len() < 8 {
                        list.push((identity.labels.clone(), n.clone()));
                    }
                    n
                }
            };
            notes.extend(note);
        }
        let group = group_name(ep, &identity.labels, namespace.as_deref());
        Ok(FlowParty {
            party: Party {
                name: group.clone(),
                enforced: self.engine.enforced(&identity),
                identity,
                ports,
            },
            group,
            namespace,
            cluster,
            manifest_id: manifest.as_ref().map(|m| m.identity.id),
            known: None,
        })
    }

    /// The party's identity as a cache key.
    fn id_key(p: &FlowParty) -> IdKey {
        match p.known {
            Some(i) => IdKey::Known(i),
            None => IdKey::Other(p.party.identity.clone()),
        }
    }

    /// The number of a container port list.
    fn port_list(&mut self, ports: &[ContainerPort]) -> u32 {
        if let Some(&n) = self.port_lists.get(ports) {
            return n;
        }
        if self.port_lists.len() >= CACHE_MAX {
            // Numbers are part of the verdict cache's keys.
            self.port_lists.clear();
            self.cache.clear();
        }
        let n = u32::try_from(self.port_lists.len()).unwrap_or(u32::MAX);
        self.port_lists.insert(ports.to_vec(), n);
        n
    }

    /// One side's verdict, as `Engine::side` gives it, from the subject's
    /// cached context.
    #[allow(clippy::too_many_arguments)]
    fn side(
        &mut self,
        subject: &Party,
        subject_key: &IdKey,
        dir: Direction,
        peer: &Party,
        peer_known: Option<usize>,
        protocol: Protocol,
        port: u16,
    ) -> SideVerdict {
        let key = (subject_key.clone(), dir);
        let ctx = match self.contexts.get(&key) {
            Some(c) => Arc::clone(c),
            None => {
                let c = Arc::new(self.engine.side_context(subject, dir));
                if self.contexts.len() >= CONTEXTS_MAX {
                    self.contexts.clear();
                }
                self.contexts.insert(key, Arc::clone(&c));
                c
            }
        };
        let d = self
            .engine
            .decide_in(&ctx, subject, peer, peer_known, protocol, port);
        self.engine.explain(&d, subject, peer, protocol, port)
    }

    fn judge_parties(
        &mut self,
        from_party: &FlowParty,
        to_party: &FlowParty,
        protocol: Protocol,
        port: u16,
    ) -> Arc<Judged> {
        let (from_key, to_key) = (Self::id_key(from_party), Self::id_key(to_party));
        let (from, to) = (&from_party.party, &to_party.party);
        let key: CacheKey = (
            from_key.clone(),
            from.enforced,
            self.port_list(&from.ports),
            to_key.clone(),
            to.enforced,
            self.port_list(&to.ports),
            protocol,
            port,
        );
        if let Some(j) = self.cache.get(&key) {
            return Arc::clone(j);
        }
        // Both sides as `trace` evaluates them, without the near misses
        // (replay does not print them).
        let egress = self.side(
            from,
            &from_key,
            Direction::Egress,
            to,
            to_party.known,
            protocol,
            port,
        );
        let ingress = self.side(
            to,
            &to_key,
            Direction::Ingress,
            from,
            from_party.known,
            protocol,
            port,
        );
        let pass = |s: &SideVerdict| s.decision == Decision::Allowed || !s.enforced;
        let (egress_pass, ingress_pass) = (pass(&egress), pass(&ingress));
        let decision = if egress_pass && ingress_pass {
            Decision::Allowed
        } else {
            Decision::Denied
        };
        let rules = |s: &SideVerdict| -> Vec<String> {
            s.deciding.iter().map(ToString::to_string).collect()
        };
        let (egress_rules, ingress_rules) = (rules(&egress), rules(&ingress));
        let flow_rules: Arc<[String]> = egress_rules
            .iter()
            .chain(ingress_rules.iter())
            .cloned()
            .collect();
        let flow_why = if !egress_pass {
            egress.explanation.clone()
        } else if !ingress_pass {
            ingress.explanation.clone()
        } else {
            format!(
                "egress: {}; ingress: {}",
                egress.explanation, ingress.explanation
            )
        };
        let j = Arc::new(Judged {
            egress: egress.decision,
            ingress: ingress.decision,
            decision,
            scopes: [
                (egress_pass, egress_rules.into(), egress.explanation.into()),
                (ingress_pass, ingress_rules.into(), ingress.explanation.into()),
                (decision == Decision::Allowed, flow_rules, flow_why.into()),
            ],
        });
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(key, Arc::clone(&j));
        j
    }

    /// Judges one flow record.
    pub fn judge(&mut self, file: &Arc<str>, line: usize, f: &Flow) -> LineVerdict {
        match self.connection(f) {
            Err((reason, detail)) => LineVerdict::skipped(file, line, reason, detail),
            Ok(c) => self.judge_connection(file, line, c),
        }
    }

    /// The connection a flow record observed: its parties, protocol, port
    /// and observed outcome; or why the record is skipped.
    pub fn connection(&mut self, f: &Flow) -> Result<Connection, (&'static str, String)> {
        let skip = |reason: &'static str, detail: String| Err((reason, detail));
        if f.is_reply == Some(true) || f.reply == Some(true) {
            return skip(
                skip::REPLY,
                "reply: connection tracking lets replies through, policy is not consulted".into(),
            );
        }
        let event = f.event_type.as_ref().and_then(|e| e.kind);
        if f.l7.is_some() || f.flow_type.as_deref() == Some("L7") || event == Some(129) {
            return skip(
                skip::L7,
                "L7 record (proxy access log): the connection's L3/L4 records carry the policy verdict".into(),
            );
        }
        let observed = match f.verdict.as_deref() {
            Some("FORWARDED" | "REDIRECTED") => Observed::Delivered,
            Some("AUDIT") => Observed::Audit,
            Some("DROPPED") => {
                let desc = f.drop_reason_desc.as_deref();
                let policy = matches!(
                    desc,
                    Some("POLICY_DENIED" | "POLICY_DENY" | "AUTH_REQUIRED")
                ) || (desc.is_none()
                    && matches!(f.drop_reason, Some(133 | 181 | 189)));
                let unknown = desc.is_none() && f.drop_reason.is_none();
                if !policy && !unknown {
                    let why = desc
                        .map(str::to_string)
                        .or_else(|| f.drop_reason.map(|n| format!("drop reason {n}")))
                        .unwrap_or_default();
                    return skip(
                        skip::NOT_POLICY_DROP,
                        format!("dropped for {why}, not by policy"),
                    );
                }
                Observed::Dropped
            }
            Some(v) => {
                return skip(
                    skip::NOT_A_DECISION,
                    format!("verdict {v} is not a policy decision"),
                )
            }
            None => return skip(skip::NOT_A_DECISION, "the record has no verdict".into()),
        };
        let Some(l4) = f.l4.as_ref() else {
            return skip(
                skip::NO_L4,
                "the record has no l4 (protocol and port)".into(),
            );
        };
        let (protocol, port) = if let Some(t) = &l4.tcp {
            if let Some(fl) = &t.flags {
                if !fl.syn || fl.ack {
                    return skip(
                        skip::NOT_CONNECTION_START,
                        "TCP segment that does not open a connection (not SYN-only): conntrack decides".into(),
                    );
                }
            }
            (Protocol::Tcp, t.destination_port)
        } else if let Some(u) = &l4.udp {
            (Protocol::Udp, u.destination_port)
        } else if let Some(s) = &l4.sctp {
            (Protocol::Sctp, s.destination_port)
        } else if let Some(i) = &l4.icmpv4 {
            let t = i.icmp_type.unwrap_or(0);
            if matches!(t, 0 | 14 | 16 | 18) {
                return skip(skip::REPLY, format!("ICMPv4 type {t} is a reply"));
            }
            (Protocol::Icmp, Some(t))
        } else if let Some(i) = &l4.icmpv6 {
            let t = i.icmp_type.unwrap_or(0);
            if t == 129 {
                return skip(skip::REPLY, "ICMPv6 echo reply".into());
            }
            (Protocol::Icmpv6, Some(t))
        } else {
            return skip(
                skip::NO_L4,
                "l4 protocol without a policy port (not TCP, UDP, SCTP or ICMP)".into(),
            );
        };
        let Some(port) = port.and_then(|p| u16::try_from(p).ok()) else {
            return skip(skip::NO_L4, "no destination port".into());
        };
        let mut notes = Vec::new();
        let ip = f.ip.as_ref();
        let from = match self.party(
            f.source.as_ref(),
            ip.and_then(|i| i.source.as_deref()),
            &mut notes,
        ) {
            Ok(p) => p,
            Err(e) => return skip(skip::UNKNOWN_ENDPOINT, format!("source: {e}")),
        };
        let to = match self.party(
            f.destination.as_ref(),
            ip.and_then(|i| i.destination.as_deref()),
            &mut notes,
        ) {
            Ok(p) => p,
            Err(e) => return skip(skip::UNKNOWN_ENDPOINT, format!("destination: {e}")),
        };
        if from.party.identity.reserved_name() == Some("ingress") {
            notes.push(
                "Gateway/Ingress hop 2: Cilium's Envoy (reserved:ingress) -> backend".to_string(),
            );
        } else if to.party.identity.reserved_name() == Some("ingress") {
            notes.push(
                "Gateway/Ingress hop 1: client -> Cilium's Envoy (reserved:ingress)".to_string(),
            );
        }
        Ok(Connection {
            compared: scope(f, observed),
            from,
            to,
            protocol,
            port,
            observed,
            notes,
        })
    }

    /// Judges a connection under the policies.
    pub fn judge_connection(&mut self, file: &Arc<str>, line: usize, c: Connection) -> LineVerdict {
        let Connection {
            from,
            to,
            protocol,
            port,
            observed,
            compared,
            notes,
        } = c;
        let j = self.judge_parties(&from, &to, protocol, port);
        let (decision, scope) = match compared {
            Scope::Egress => (j.egress, &j.scopes[0]),
            Scope::Ingress => (j.ingress, &j.scopes[1]),
            Scope::Flow => (j.decision, &j.scopes[2]),
        };
        let (pass, deciding, why) = (scope.0, Arc::clone(&scope.1), Arc::clone(&scope.2));
        // A side that is not enforced passes whatever its policy says.
        let decision = if pass { Decision::Allowed } else { decision };
        let change = match (observed.delivered(), pass) {
            (true, false) => Change::Break,
            (false, true) => Change::NewlyAllowed,
            _ => Change::Unchanged,
        };
        LineVerdict {
            file: Arc::clone(file),
            line,
            verdict: if decision == Decision::Allowed {
                "allowed"
            } else {
                "denied"
            },
            reason: None,
            detail: None,
            from: Some(from.group.clone()),
            to: Some(to.group.clone()),
            protocol: Some(protocol),
            port: Some(port),
            observed: Some(observed),
            compared: Some(compared),
            change: Some(change),
            egress: Some(j.egress),
            ingress: Some(j.ingress),
            deciding,
            explanation: Some(why),
            notes,
        }
    }
}

/// The enforcement point a record observed (see the module doc).
pub fn scope(f: &Flow, observed: Observed) -> Scope {
    let point = f.trace_observation_point.as_deref();
    if observed == Observed::Delivered && point == Some("TO_ENDPOINT") {
        return Scope::Flow;
    }
    match f.traffic_direction.as_deref() {
        Some("EGRESS") => return Scope::Egress,
        Some("INGRESS") => return Scope::Ingress,
        _ => {}
    }
    match point {
        Some(
            "TO_OVERLAY" | "TO_NETWORK" | "TO_STACK" | "TO_HOST" | "TO_PROXY" | "FROM_ENDPOINT",
        ) if observed == Observed::Delivered => Scope::Egress,
        _ => Scope::Flow,
    }
}

fn label_disagreement(name: &str, manifest: &LabelSet, flow: &LabelSet) -> Option<String> {
    if manifest == flow {
        return None;
    }
    let m: BTreeSet<String> = manifest.to_strings().into_iter().collect();
    let f: BTreeSet<String> = flow.to_strings().into_iter().collect();
    let only_flow: Vec<&String> = f.difference(&m).collect();
    let only_manifest: Vec<&String> = m.difference(&f).collect();
    Some(format!(
        "labels of {name} disagree with the manifests: only in the flow [{}], only in the manifests [{}] (the flow's labels are used)",
        only_flow.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
        only_manifest.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    ))
}

/// The grouping name of an endpoint with labels.
fn group_name(ep: &FlowEndpoint, labels: &LabelSet, ns: Option<&str>) -> String {
    let ns = ns.unwrap_or("-");
    if let Some(w) = ep.workloads.first() {
        return format!("{ns}/{}/{}", w.kind.to_ascii_lowercase(), w.name);
    }
    if let Some(p) = &ep.pod_name {
        return format!("{ns}/{p}");
    }
    for key in ["app.kubernetes.io/name", "app", "k8s-app", "name"] {
        if let Some(v) = labels.get("k8s", key) {
            return format!("{ns}/{key}={v}");
        }
    }
    format!("{ns}/{{{labels}}}")
}

/// Connections grouped by workload pair, port and change.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub from: String,
    pub to: String,
    pub protocol: Protocol,
    pub port: u16,
    pub change: Change,
    pub verdict: &'static str,
    /// Records per observed outcome.
    pub observed: BTreeMap<Observed, usize>,
    pub count: usize,
    pub deciding: Arc<[String]>,
    pub explanation: Arc<str>,
    /// The first record of the group (file:line).
    pub first: String,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub notes: BTreeSet<String>,
}

/// Totals and groups of a replay (memory bounded by the number of
/// distinct groups and skip categories, not by the number of records).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub records: usize,
    pub judged: usize,
    pub skipped: usize,
    pub breaks: usize,
    pub newly_allowed: usize,
    pub unchanged: usize,
    pub malformed: usize,
    pub skipped_by_reason: BTreeMap<&'static str, usize>,
    #[serde(skip)]
    groups: BTreeMap<(Change, String, String, Protocol, u16), Group>,
}

/// Groups kept before new ones are merged (see [`Summary::add`]).
pub const GROUPS_MAX: usize = 50_000;
const OTHER_WORLD: &str = "cidr:(other addresses)";
const OTHER: &str = "(other connections)";

/// Most notes kept per group.
const NOTES_MAX: usize = 8;

impl Summary {
    pub fn add(&mut self, v: &LineVerdict) {
        self.records += 1;
        if let Some(r) = v.reason {
            self.skipped += 1;
            *self.skipped_by_reason.entry(r).or_default() += 1;
            if r == skip::MALFORMED {
                self.malformed += 1;
            }
            return;
        }
        self.judged += 1;
        let (Some(from), Some(to), Some(protocol), Some(port), Some(change), Some(observed)) = (
            v.from.as_ref(),
            v.to.as_ref(),
            v.protocol,
            v.port,
            v.change,
            v.observed,
        ) else {
            return;
        };
        match change {
            Change::Break => self.breaks += 1,
            Change::NewlyAllowed => self.newly_allowed += 1,
            Change::Unchanged => self.unchanged += 1,
        }
        // Bounded: past GROUPS_MAX groups, new world addresses are
        // grouped as one, past twice that every new pair is.
        let mut key = (change, from.clone(), to.clone(), protocol, port);
        if self.groups.len() >= GROUPS_MAX && !self.groups.contains_key(&key) {
            for side in [&mut key.1, &mut key.2] {
                if side.starts_with("cidr:") {
                    *side = OTHER_WORLD.to_string();
                }
            }
            if self.groups.len() >= 2 * GROUPS_MAX && !self.groups.contains_key(&key) {
                key.1 = OTHER.to_string();
                key.2 = OTHER.to_string();
            }
        }
        let g = self.groups.entry(key.clone()).or_insert_with(|| Group {
            from: key.1.clone(),
            to: key.2.clone(),
            protocol,
            port,
            change,
            verdict: v.verdict,
            observed: BTreeMap::new(),
            count: 0,
            deciding: Arc::clone(&v.deciding),
            explanation: v.explanation.clone().unwrap_or_else(|| Arc::from("")),
            first: format!("{}:{}", v.file, v.line),
            notes: BTreeSet::new(),
        });
        g.count += 1;
        *g.observed.entry(observed).or_default() += 1;
        for n in &v.notes {
            if g.notes.len() < NOTES_MAX {
                g.notes.insert(n.clone());
            }
        }
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The summary and the groups as JSON values.
    pub fn to_json(&self) -> serde_json::Value {
        let groups: Vec<&Group> = self.groups.values().collect();
        serde_json::json!({
            "summary": self,
            "groups": groups,
        })
    }

    /// The groups of one kind of change, in key order.
    fn groups_of(&self, change: Change) -> Vec<&Group> {
        self.groups
            .values()
            .filter(|g| g.change == change)
            .collect()
    }

    /// One line: records, judged, breaks, newly allowed, skipped.
    pub fn headline_text(&self) -> String {
        self.headline()
    }

    fn headline(&self) -> String {
        format!(
            "{} records: {} connections judged ({} would break, {} newly allowed, {} unchanged), {} skipped",
            self.records, self.judged, self.breaks, self.newly_allowed, self.unchanged, self.skipped
        )
    }

    fn skipped_line(&self) -> String {
        self.skipped_by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Text: groups that break, then newly allowed, then unchanged.
    pub fn to_text(&self) -> String {
        use crate::text::push_line;
        let mut out = String::new();
        for (change, title, _) in SECTIONS {
            let gs = self.groups_of(change);
            if gs.is_empty() {
                continue;
            }
            push_line(&mut out, &format!("{title}: {} group(s)", gs.len()));
            for g in gs {
                push_line(
                    &mut out,
                    &format!(
                        "  {} -> {} {}/{}: {} now; observed {} (first at {})",
                        g.from,
                        g.to,
                        g.protocol,
                        g.port,
                        g.verdict,
                        observed_summary(g),
                        g.first
                    ),
                );
                if change != Change::Unchanged || g.verdict == "denied" {
                    push_line(&mut out, &format!("    {}", g.explanation));
                }
                for n in &g.notes {
                    push_line(&mut out, &format!("    note: {n}"));
                }
            }
        }
        push_line(&mut out, &self.headline());
        if !self.skipped_by_reason.is_empty() {
            push_line(&mut out, &format!("skipped: {}", self.skipped_line()));
        }
        out
    }

    /// Markdown for pull requests.
    pub fn to_markdown(&self) -> String {
        use crate::text::markdown as md_cell;
        let mut out = String::new();
        let _ = writeln!(out, "### Replay of observed flows\n\n{}\n", self.headline());
        for (change, _, title) in SECTIONS {
            let gs = self.groups_of(change);
            if gs.is_empty() {
                continue;
            }
            let _ = writeln!(out, "#### {title}\n\n| from | to | port | now | observed | records | why |\n|---|---|---|---|---|---:|---|");
            for g in gs {
                let _ = writeln!(
                    out,
                    "| {} | {} | {}/{} | {} | {} | {} | {} |",
                    md_cell(&g.from),
                    md_cell(&g.to),
                    g.protocol,
                    g.port,
                    g.verdict,
                    observed_summary(g),
                    g.count,
                    md_cell(&g.explanation)
                );
            }
            out.push('\n');
        }
        if !self.skipped_by_reason.is_empty() {
            let _ = writeln!(out, "Skipped: {}", md_cell(&self.skipped_line()));
        }
        out
    }
}

/// The three sections of a replay, in order: which change, its title in
/// text and its title in Markdown.
const SECTIONS: [(Change, &str, &str); 3] = [
    (
        Change::Break,
        "WOULD BREAK (observed delivered, denied now)",
        "Would break (observed delivered, denied now)",
    ),
    (
        Change::NewlyAllowed,
        "NEWLY ALLOWED (observed dropped, allowed now)",
        "Newly allowed (observed dropped, allowed now)",
    ),
    (Change::Unchanged, "UNCHANGED", "Unchanged"),
];

/// What was observed of a group: "3 delivered, 1 dropped".
fn observed_summary(g: &Group) -> String {
    g.observed
        .iter()
        .map(|(o, n)| format!("{n} {}", observed_name(*o)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn observed_name(o: Observed) -> &'static str {
    match o {
        Observed::Delivered => "delivered",
        Observed::Dropped => "dropped",
        Observed::Audit => "audit",
    }
}

impl Change {
    pub fn name(self) -> &'static str {
        self.as_str()
    }
}

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
        for g in self.groups.values() {
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
            esc(&self.headline())
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
        for g in self.groups.values() {
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
