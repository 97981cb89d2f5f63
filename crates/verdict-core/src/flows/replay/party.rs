//! The party a flow endpoint stands for: reserved identities from
//! `reserved:*` labels or well-known numbers, world from the address (a
//! CIDR identity), pods from their labels (compared with the manifests'
//! pod when they hold it). Each distinct endpoint is resolved once.

use super::{FlowParty, Replayer, CHECKED_PODS_MAX};
use crate::cidr::Cidr;
use crate::engine::Party;
use crate::flows::FlowEndpoint;
use crate::identity::{Identity, IdentityKind, RESERVED};
use crate::labels::{split_source, Label, LabelSet, CLUSTER_LABEL, POD_NAMESPACE_LABEL};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

/// The party of an endpoint, or why it has none.
pub(super) type PartyResult = Result<Arc<FlowParty>, String>;

/// What [`Replayer::party`] reads of an endpoint besides its address.
#[derive(Debug)]
pub(super) struct EndpointKey {
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
pub(super) type LabelNote = (LabelSet, Option<String>);

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

impl Replayer<'_, '_> {
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
