//! The policy engine: identities, the rules that select them, and the
//! verdict of each side of a flow, with the rules that decided it.
//!
//! ```text
//!  flow (src, dst, proto, port)
//!     ├─ egress side:  rules selecting src for egress  -> verdict(dst)
//!     └─ ingress side: rules selecting dst for ingress -> verdict(src)
//!  per side: deny entry matches -> denied; else allow entry matches ->
//!  allowed (proxied if L7); else default deny if enforced; else allowed
//! ```
//!
//! Facts and their sources in Cilium are listed in docs/semantics.md.

pub mod connectivity;
pub mod connectivity_delta;
pub mod near_miss;
pub mod peerset;
pub mod resolved;
pub mod resolved_rows;
pub(crate) mod selector_memo;
pub mod side;
pub mod side_context;
pub(crate) mod side_index;
pub mod trace;

use crate::cidr::Cidr;
use crate::identity::{
    named_ports_labels, pod_identity_labels, Identity, IdentityKind, LabelFilter, PodLabels,
    FIRST_LOCAL_ID,
};
use crate::ingest::{ContainerPort, Inventory};
use crate::labels::LabelSet;
use crate::policy::{Direction, Entry, Origin, PeerKind, PortSel, Protocol, Rule, Subject, Tier};
use crate::selector::Selector;
use crate::settings::{AllowLocalhost, CiliumVersion, PolicyEnforcement};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// An endpoint: a pod or a workload's pod template, with its identity.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub workload: usize,
    pub identity: usize,
}

/// One side of a flow: who, and (for pods) which container ports it has.
#[derive(Debug, Clone, Serialize)]
pub struct Party {
    pub name: String,
    pub identity: Identity,
    #[serde(skip)]
    pub ports: Vec<ContainerPort>,
    /// Whether Cilium enforces policy on this side (a local endpoint).
    pub enforced: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allowed,
    Denied,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
        })
    }
}

/// Why a side decided as it did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// No rule selects the subject for this direction.
    NoPolicy,
    DeniedByRule,
    AllowedByRule,
    DefaultDeny,
    /// Rules select the subject but all set `enableDefaultDeny: false`.
    NoDefaultDeny,
    /// `enable-policy=never`: no policy is enforced anywhere.
    PolicyDisabled,
    /// `allow-localhost=always`: the node reaches its local endpoints.
    AllowLocalhost,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideVerdict {
    pub direction: Direction,
    /// Whether the datapath enforces this side: policy is computed for
    /// every identity (as Cilium's engine does), but only local endpoints
    /// (pods, the ingress proxy, the host with host policies) enforce it.
    pub enforced: bool,
    pub decision: Decision,
    pub reason: Reason,
    /// Human explanation.
    pub explanation: String,
    /// The entries that decided (deny or allow entries that matched);
    /// shared with the rules, never copied.
    pub deciding: Arc<[Arc<Origin>]>,
    /// Rules that select the subject for this direction.
    pub selecting: Arc<[Arc<Origin>]>,
    /// What makes the side default deny (`policy (file:line)`, complete;
    /// the explanation names at most a few): with reason `default-deny`.
    #[serde(skip)]
    pub default_deny_by: Arc<[String]>,
    /// L7 parsers the flow is redirected to (proxy), if allowed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxied: Vec<String>,
    /// Parts of the policy that could not be evaluated offline.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unevaluable: Vec<String>,
    /// The tier of the deciding rules (Admin or Baseline for
    /// ClusterNetworkPolicy rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// ClusterNetworkPolicy `Pass` rules that matched and handed the
    /// decision on to the next tier.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub passed: Vec<Arc<Origin>>,
    /// Allow rules of this side that miss the flow only by its port or only
    /// by its peer (filled by `trace`; see `near_miss.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub near_miss: Vec<crate::near_miss::NearMiss>,
}

pub struct Engine<'a> {
    pub inv: &'a Inventory,
    /// Endpoint identities (sorted by labels), then reserved identities.
    pub identities: Vec<Identity>,
    by_labels: HashMap<LabelSet, usize>,
    /// One per workload, `None` for host-network pods (they use the host identity).
    pub endpoints: Vec<Option<Endpoint>>,
    /// Valid rules with their policy's index.
    pub rules: Vec<(usize, &'a Rule)>,
    /// Named container ports of every endpoint: Cilium (up to 1.18) resolves
    /// egress named ports against this cluster-wide map.
    egress_named: BTreeMap<(String, Protocol), BTreeSet<u16>>,
    /// Identity number -> the container ports of its endpoints (from 1.20
    /// its endpoints have the same named ports: they are in the identity).
    ports_by_identity: HashMap<u32, Vec<ContainerPort>>,
    /// (namespace, name) -> the workloads of that name (any kind).
    by_name: HashMap<(String, String), Vec<usize>>,
    /// Identity index -> the rules selecting it (built on first use).
    selecting_index: std::sync::OnceLock<Vec<Vec<u32>>>,
    /// The identities each peer selector of the rules selects (on first use).
    selector_memo: std::sync::OnceLock<crate::selector_memo::SelectorMemo<'a>>,
    /// Namespace -> its Services, in input order (built on first use).
    services_by_ns: std::sync::OnceLock<HashMap<String, Vec<usize>>>,
    /// What makes a default deny, named once per distinct list of rules
    /// (see `SideContext`): every backend's side has the same tier
    /// policies' rules, so their names were formatted (and the lists
    /// hashed and compared by the paths) once per backend.
    default_deny_names: std::sync::Mutex<DefaultDenyNames>,
    host_firewall: bool,
}

/// A default deny's forcing setting and rules (by address) -> the names
/// of what makes it and that list's capped text.
pub(crate) type DefaultDenyNames =
    rustc_hash::FxHashMap<(Option<&'static str>, Vec<usize>), (Arc<[String]>, String)>;

impl<'a> Engine<'a> {
    pub fn new(inv: &'a Inventory) -> Engine<'a> {
        let label_sets = endpoint_label_sets(inv);
        // Distinct label sets found by hashing, then only they are sorted
        // (identities are numbered in label order); `slot` remembers each
        // endpoint's set so that it is not looked up again.
        let mut slots: rustc_hash::FxHashMap<&LabelSet, usize> = Default::default();
        let mut distinct: Vec<&LabelSet> = Vec::new();
        let slot: Vec<Option<usize>> = label_sets
            .iter()
            .map(|ls| {
                ls.as_ref().map(|ls| {
                    *slots.entry(ls).or_insert_with(|| {
                        distinct.push(ls);
                        distinct.len() - 1
                    })
                })
            })
            .collect();
        drop(slots);
        let mut order: Vec<usize> = (0..distinct.len()).collect();
        order.sort_unstable_by(|&a, &b| distinct.get(a).cmp(&distinct.get(b)));
        let mut rank = vec![0usize; distinct.len()];
        for (r, &d) in order.iter().enumerate() {
            if let Some(x) = rank.get_mut(d) {
                *x = r;
            }
        }
        let distinct: Vec<&LabelSet> = order
            .iter()
            .filter_map(|&d| distinct.get(d).copied())
            .collect();
        let mut identities = Vec::with_capacity(distinct.len() + 16);
        let mut by_labels = HashMap::with_capacity(distinct.len() + 16);
        for (i, ls) in distinct.into_iter().enumerate() {
            by_labels.insert(ls.clone(), identities.len());
            identities.push(Identity {
                id: FIRST_LOCAL_ID + u32::try_from(i).unwrap_or(u32::MAX - FIRST_LOCAL_ID),
                kind: IdentityKind::Endpoint,
                labels: ls.clone(),
            });
        }
        for (name, _) in crate::identity::RESERVED {
            if let Some(id) = Identity::reserved(name) {
                by_labels.insert(id.labels.clone(), identities.len());
                identities.push(id);
            }
        }
        let host_idx = by_labels
            .get(&LabelSet::new(vec![crate::labels::Label::reserved("host")]))
            .copied();
        let endpoints: Vec<Option<Endpoint>> = slot
            .iter()
            .enumerate()
            .map(|(w, slot)| match slot {
                Some(d) => rank.get(*d).map(|&identity| Endpoint {
                    workload: w,
                    identity,
                }),
                None => host_idx.map(|identity| Endpoint {
                    workload: w,
                    identity,
                }),
            })
            .collect();
        let rules: Vec<(usize, &Rule)> = inv
            .policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.rejected.is_none() && p.ignored.is_none())
            .flat_map(|(i, p)| p.rules.iter().map(move |r| (i, r)))
            .collect();
        let mut egress_named: BTreeMap<(String, Protocol), BTreeSet<u16>> = BTreeMap::new();
        for w in inv.workloads.iter().filter(|w| !w.host_network) {
            for p in &w.ports {
                if let Some(n) = &p.name {
                    egress_named
                        .entry((n.to_ascii_lowercase(), p.protocol))
                        .or_default()
                        .insert(p.port);
                }
            }
        }
        let host_firewall = rules
            .iter()
            .any(|(_, r)| matches!(r.subject, Subject::Nodes(_)));
        let mut by_name: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (wi, w) in inv.workloads.iter().enumerate() {
            by_name
                .entry((w.namespace.clone(), w.object.name.clone()))
                .or_default()
                .push(wi);
        }
        let mut ports_by_identity: HashMap<u32, Vec<ContainerPort>> = HashMap::new();
        for (w, ep) in inv.workloads.iter().zip(endpoints.iter()) {
            let ep: &Option<Endpoint> = ep;
            let Some(id) = ep
                .as_ref()
                .and_then(|e: &Endpoint| identities.get(e.identity))
            else {
                continue;
            };
            if w.host_network {
                continue;
            }
            let list = ports_by_identity.entry(id.id).or_default();
            for p in &w.ports {
                if !list.contains(p) {
                    list.push(p.clone());
                }
            }
        }
        Engine {
            inv,
            identities,
            by_labels,
            endpoints,
            rules,
            egress_named,
            ports_by_identity,
            by_name,
            selecting_index: std::sync::OnceLock::new(),
            selector_memo: std::sync::OnceLock::new(),
            services_by_ns: std::sync::OnceLock::new(),
            default_deny_names: std::sync::Mutex::default(),
            host_firewall,
        }
    }

    /// The engine of `inv`, an inventory with this engine's workloads,
    /// namespaces and cluster settings and other policies (the input with
    /// generated policies added): identities, endpoints and ports are
    /// taken from this engine instead of being computed again (they depend
    /// on workloads and namespaces only); the rules are `inv`'s. `None`
    /// when the workloads, namespaces or settings differ (use
    /// [`Engine::new`]).
    pub fn with_policies_of<'b>(&self, inv: &'b Inventory) -> Option<Engine<'b>> {
        let (a, b) = (self.inv, inv);
        let same = a.cluster == b.cluster
            && a.namespaces.len() == b.namespaces.len()
            && a.namespaces
                .iter()
                .zip(&b.namespaces)
                .all(|((n, x), (m, y))| n == m && x.labels == y.labels)
            && a.workloads.len() == b.workloads.len()
            && a.workloads.iter().zip(&b.workloads).all(|(x, y)| {
                x.object == y.object
                    && x.namespace == y.namespace
                    && x.labels == y.labels
                    && x.service_account == y.service_account
                    && x.ports == y.ports
                    && x.host_network == y.host_network
            });
        if !same {
            return None;
        }
        let rules: Vec<(usize, &Rule)> = inv
            .policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.rejected.is_none() && p.ignored.is_none())
            .flat_map(|(i, p)| p.rules.iter().map(move |r| (i, r)))
            .collect();
        let host_firewall = rules
            .iter()
            .any(|(_, r)| matches!(r.subject, Subject::Nodes(_)));
        Some(Engine {
            inv,
            identities: self.identities.clone(),
            by_labels: self.by_labels.clone(),
            endpoints: self.endpoints.clone(),
            rules,
            egress_named: self.egress_named.clone(),
            ports_by_identity: self.ports_by_identity.clone(),
            by_name: self.by_name.clone(),
            selecting_index: std::sync::OnceLock::new(),
            selector_memo: std::sync::OnceLock::new(),
            services_by_ns: std::sync::OnceLock::new(),
            default_deny_names: std::sync::Mutex::default(),
            host_firewall,
        })
    }

    pub fn identity_index(&self, labels: &LabelSet) -> Option<usize> {
        self.by_labels.get(labels).copied()
    }

    /// The index of a party's identity among the engine's identities, when
    /// it is one of them (same labels and number); `None` for CIDR
    /// identities and pods that are not in the input.
    pub fn known_index(&self, id: &Identity) -> Option<usize> {
        self.by_labels
            .get(&id.labels)
            .copied()
            .filter(|&i| self.identities.get(i).is_some_and(|k| k.id == id.id))
    }

    /// The workload whose display name (`ns/pod`, `ns/kind/name`) is
    /// `name`, the first in input order, through the (namespace, name) index.
    pub fn workload_by_display_name(&self, name: &str) -> Option<&'a crate::ingest::Workload> {
        let (ns, obj) = match name.split('/').collect::<Vec<_>>().as_slice() {
            [ns, n] | [ns, _, n] => (ns.to_string(), n.to_string()),
            _ => return None,
        };
        let inv: &'a Inventory = self.inv;
        self.by_name
            .get(&(ns, obj))?
            .iter()
            .filter_map(|&wi| inv.workloads.get(wi))
            .find(|w| w.display_name() == name)
    }

    /// The Services of a namespace, in input order.
    pub fn services_in(&self, ns: &str) -> impl Iterator<Item = &'a crate::ingest::Service> + '_ {
        let inv: &'a Inventory = self.inv;
        self.services_by_ns
            .get_or_init(|| {
                let mut m: HashMap<String, Vec<usize>> = HashMap::new();
                for (i, s) in inv.services.iter().enumerate() {
                    m.entry(s.namespace.clone()).or_default().push(i);
                }
                m
            })
            .get(ns)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .filter_map(move |&i| inv.services.get(i))
    }

    fn memo(&self) -> &crate::selector_memo::SelectorMemo<'a> {
        self.selector_memo.get_or_init(|| {
            crate::selector_memo::SelectorMemo::new(self.rules.iter().map(|(_, r)| r))
        })
    }

    /// The known identities a peer selector of the rules selects, as a
    /// bitset over [`Engine::identities`] (see `SelectorMemo::selected_bits`).
    pub(crate) fn selector_bits(&self, sel: &Selector) -> Option<&[u64]> {
        self.memo().selected_bits(&self.identities, sel)
    }

    /// Whether `sel` selects `peer` (whose known index is `peer_idx`):
    /// a bit test in the selector memo for the rules' own selectors and
    /// known identities, else the labels are matched.
    fn peer_selected(&self, sel: &Selector, peer: &Party, peer_idx: Option<usize>) -> bool {
        let memo = self.memo();
        peer_idx
            .and_then(|i| memo.selects(&self.identities, sel, i))
            .unwrap_or_else(|| sel.matches(&peer.identity.labels))
    }

    /// Whether Cilium enforces policy on an identity's own side.
    pub fn enforced(&self, id: &Identity) -> bool {
        if self.inv.cluster.policy_enforcement == PolicyEnforcement::Never {
            return false;
        }
        match &id.kind {
            IdentityKind::Endpoint => true,
            IdentityKind::Cidr(_) => false,
            IdentityKind::Reserved(n) => match n.as_str() {
                "ingress" | "health" | "init" | "unmanaged" => true,
                "host" => self.host_firewall,
                _ => false,
            },
        }
    }

    /// Resolves a user's name for a party: `ns/pod`, `ns/kind/name`,
    /// `reserved:NAME` (or a bare entity name such as `world`), `cidr:P`, or
    /// an IP address.
    pub fn party(&self, text: &str) -> Result<Party, String> {
        let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let reserved_name = t.strip_prefix("reserved:").or_else(|| {
            crate::identity::RESERVED
                .iter()
                .find(|(n, _)| *n == t)
                .map(|(n, _)| *n)
        });
        if let Some(name) = reserved_name {
            let id = Identity::reserved(name).ok_or_else(|| {
                let known: Vec<&str> = crate::identity::RESERVED.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown reserved identity `{name}`; known: {}{}",
                    known.join(", "),
                    crate::names::did_you_mean(&crate::names::closest(name, known.iter().copied()))
                )
            })?;
            return Ok(Party {
                name: format!("reserved:{name}"),
                enforced: self.enforced(&id),
                identity: id,
                ports: Vec::new(),
            });
        }
        // `cidr:P`, an address, or a prefix written bare (`10.0.0.0/8`, as
        // the matrix prints it).
        let bare_prefix = t
            .split_once('/')
            .is_some_and(|(a, n)| a.parse::<IpAddr>().is_ok() && n.parse::<u8>().is_ok());
        let cidr_text = t
            .strip_prefix("cidr:")
            .or_else(|| (t.parse::<IpAddr>().is_ok() || bare_prefix).then_some(t));
        if let Some(c) = cidr_text {
            let cidr = Cidr::parse(c)?;
            let id = Identity::cidr(cidr, self.inv.cluster.dual_stack);
            return Ok(Party {
                name: format!("cidr:{cidr}"),
                enforced: self.enforced(&id),
                identity: id,
                ports: Vec::new(),
            });
        }
        let parts: Vec<&str> = t.split('/').collect();
        // Candidates by (namespace, name), from an index built once: a
        // lookup is constant time however many workloads there are.
        let candidates: &[usize] = match parts.as_slice() {
            [ns, name] | [ns, _, name] => self
                .by_name
                .get(&(ns.to_string(), name.to_string()))
                .map(Vec::as_slice)
                .unwrap_or(&[]),
            _ => &[],
        };
        let pick = |wi: &usize| self.inv.workloads.get(*wi).map(|w| (*wi, w));
        let found = candidates
            .iter()
            .filter_map(pick)
            .find(|(_, w)| match parts.as_slice() {
                [_, _] => w.object.kind == "Pod",
                [_, kind, _] => w.object.kind.eq_ignore_ascii_case(kind),
                _ => false,
            });
        let found = found.or_else(|| match parts.as_slice() {
            // `ns/name` also names a workload when no pod has that name.
            [_, _] => match candidates {
                [one] => pick(one),
                _ => None,
            },
            _ => None,
        });
        // A pod (or ReplicaSet, Job) the input represents by its controller.
        let found = found.or_else(|| {
            let wi = match parts.as_slice() {
                [ns, name] => self.inv.representing(ns, None, name),
                [ns, kind, name] => self.inv.representing(ns, Some(kind), name),
                _ => None,
            }?;
            pick(&wi)
        });
        let found = match (found, parts.as_slice()) {
            (None, [ns, kind, name])
                if kind.eq_ignore_ascii_case("service") || kind.eq_ignore_ascii_case("svc") =>
            {
                Some(self.service_backend(ns, name)?)
            }
            (f, _) => f,
        };
        let Some((wi, w)) = found else {
            let names: Vec<String> = self
                .inv
                .workloads
                .iter()
                .map(crate::ingest::Workload::display_name)
                .chain(self.inv.represented_names())
                .chain(
                    crate::identity::RESERVED
                        .iter()
                        .map(|(n, _)| (*n).to_string()),
                )
                .collect();
            let near = crate::names::closest(t, names.iter().map(String::as_str));
            return Err(format!(
                "`{t}` names no pod or workload in the input (use ns/pod, ns/kind/name, ns/service/name, world, ingress, reserved:NAME, cidr:A.B.C.D/N or an IP){}",
                crate::names::did_you_mean(&near)
            ));
        };
        let ep = self
            .endpoints
            .get(wi)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("`{t}` has no identity"))?;
        let id = self
            .identities
            .get(ep.identity)
            .cloned()
            .ok_or_else(|| format!("`{t}` has no identity"))?;
        let name = w.display_name();
        Ok(Party {
            name,
            enforced: self.enforced(&id),
            identity: id,
            ports: w.ports.clone(),
        })
    }

    /// The workload behind `ns/service/name`: the Service's selector picks
    /// the workloads of its namespace (an empty or absent selector picks
    /// none); they must share one identity, else the name is ambiguous and
    /// the error names them.
    fn service_backend(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<(usize, &'a crate::ingest::Workload), String> {
        let svc = self
            .inv
            .services
            .iter()
            .find(|s| s.namespace == ns && s.object.name == name)
            .ok_or_else(|| {
                let names: Vec<String> = self
                    .inv
                    .services
                    .iter()
                    .map(|s| format!("{}/service/{}", s.namespace, s.object.name))
                    .collect();
                format!(
                    "`{ns}/service/{name}` names no Service in the input{}",
                    crate::names::did_you_mean(&crate::names::closest(
                        &format!("{ns}/service/{name}"),
                        names.iter().map(String::as_str)
                    ))
                )
            })?;
        let mut picked: Vec<(usize, &'a crate::ingest::Workload)> = self
            .inv
            .workloads
            .iter()
            .enumerate()
            .filter(|(_, w)| w.namespace == ns && !w.host_network)
            .filter(|(_, w)| {
                svc.selector.as_ref().is_some_and(|sel| {
                    !sel.is_empty() && sel.iter().all(|(k, v)| w.labels.get(k) == Some(v))
                })
            })
            .collect();
        picked.sort_by_key(|(_, w)| w.display_name());
        let ids: BTreeSet<usize> = picked
            .iter()
            .filter_map(|(wi, _)| self.endpoints.get(*wi).cloned().flatten())
            .map(|e| e.identity)
            .collect();
        match (picked.first(), ids.len()) {
            (None, _) => Err(format!(
                "Service {ns}/{name} selects no pod or workload of the input with its own identity (host-network pods have the node's)"
            )),
            (Some(first), 1) => Ok(*first),
            _ => Err(format!(
                "Service {ns}/{name} selects workloads of different identities ({}); name one of them",
                picked
                    .iter()
                    .map(|(_, w)| w.display_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// A pod that is not in the input (created at run time, or deployed by
    /// a Helm release), from its namespace and labels; its identity is
    /// derived like any pod's.
    pub fn virtual_pod(
        &self,
        ns: &str,
        labels: &BTreeMap<String, String>,
        service_account: &str,
        name: String,
    ) -> Party {
        let ns_labels = self
            .inv
            .namespaces
            .get(ns)
            .map(|n| n.labels.clone())
            .unwrap_or_else(|| {
                BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.to_string())])
            });
        let labels = pod_identity_labels(&PodLabels {
            namespace: ns,
            labels,
            namespace_labels: &ns_labels,
            service_account,
            cluster: &self.inv.cluster.name,
            filter: LabelFilter::of(&self.inv.cluster),
            // Not in the input: no container ports known, so no named ports.
            generated: &[],
        });
        let id = self
            .identity_index(&labels)
            .and_then(|i| self.identities.get(i))
            .map_or(0, |i| i.id);
        Party {
            name,
            identity: Identity {
                id,
                kind: IdentityKind::Endpoint,
                labels,
            },
            ports: Vec::new(),
            enforced: true,
        }
    }

    /// The rules selecting `id` as their subject.
    pub fn selecting_rules<'s>(&'s self, id: &'s Identity) -> impl Iterator<Item = &'a Rule> + 's {
        // Known identities read a table built once (each rule's subject
        // evaluated through the selector cache); others (CIDR identities,
        // pods not in the input) are matched against every rule.
        let known = self
            .by_labels
            .get(&id.labels)
            .filter(|&&i| self.identities.get(i).is_some_and(|k| k.id == id.id));
        let table = known.map(|&i| {
            self.selecting_index
                .get_or_init(|| self.build_selecting_index())
                .get(i)
                .map(Vec::as_slice)
                .unwrap_or(&[])
        });
        let is_host = id.reserved_name() == Some("host");
        let scan = table.is_none();
        let listed = table
            .unwrap_or(&[])
            .iter()
            .filter_map(|&ri| self.rules.get(ri as usize).map(|(_, r)| *r));
        let scanned = self
            .rules
            .iter()
            .filter(move |_| scan)
            .filter_map(move |(_, r)| {
                let selected = match &r.subject {
                    Subject::Endpoints(s) => !is_host && s.matches(&id.labels),
                    Subject::Nodes(s) => is_host && s.matches(&id.labels),
                };
                selected.then_some(*r)
            });
        listed.chain(scanned)
    }

    /// For every known identity, the indices of the rules selecting it, in
    /// rule order.
    fn build_selecting_index(&self) -> Vec<Vec<u32>> {
        let mut table: Vec<Vec<u32>> = vec![Vec::new(); self.identities.len()];
        let mut cache = crate::resolved::SelectorCache::new(&self.identities);
        for (ri, (_, r)) in self.rules.iter().enumerate() {
            let ri = u32::try_from(ri).unwrap_or(u32::MAX);
            match &r.subject {
                Subject::Endpoints(sel) => {
                    for &i in cache.select(sel) {
                        let host = self
                            .identities
                            .get(i as usize)
                            .and_then(Identity::reserved_name)
                            == Some("host");
                        if let (false, Some(v)) = (host, table.get_mut(i as usize)) {
                            v.push(ri);
                        }
                    }
                }
                Subject::Nodes(sel) => {
                    for (i, id) in self.identities.iter().enumerate() {
                        if id.reserved_name() == Some("host") && sel.matches(&id.labels) {
                            if let Some(v) = table.get_mut(i) {
                                v.push(ri);
                            }
                        }
                    }
                }
            }
        }
        table
    }

    /// The verdict of `subject`'s policy in `dir` for traffic with `peer`
    /// (`Engine::decide`, then `Engine::explain`; see side.rs).
    pub fn side(
        &self,
        subject: &Party,
        dir: Direction,
        peer: &Party,
        protocol: Protocol,
        port: u16,
    ) -> SideVerdict {
        let d = self.decide(subject, dir, peer, protocol, port);
        self.explain(&d, subject, peer, protocol, port)
    }

    /// Why an identity is default-deny in both directions whatever selects
    /// it: `reserved:init` always is; with `enable-policy=always` every
    /// identity but the node is.
    pub fn forced_default_deny(&self, id: &Identity) -> Option<&'static str> {
        match id.reserved_name() {
            Some("init") => Some("Cilium itself (reserved:init is always default deny)"),
            Some("host") => None,
            _ if self.inv.cluster.policy_enforcement == PolicyEnforcement::Always => {
                Some("the agent setting enable-policy=always")
            }
            _ => None,
        }
    }

    /// Whether `allow-localhost=always` lets `peer` (the node) into
    /// `subject` where no rule decides: the allow is part of the policy
    /// computed from the rules selecting the endpoint, so an endpoint that
    /// is default deny only through `enable-policy=always`, with no rule
    /// selecting it, gets none (Cilium's 1.20 engine, conformance `tiers/`).
    pub fn localhost_allowed(
        &self,
        subject: &Party,
        dir: Direction,
        peer: &Party,
        has_rules: bool,
    ) -> bool {
        let c = &self.inv.cluster;
        dir == Direction::Ingress
            && c.allow_localhost == AllowLocalhost::Always
            && has_rules
            && peer.identity.reserved_name() == Some("host")
            && !matches!(subject.identity.reserved_name(), Some("init" | "host"))
    }

    /// Whether one of an entry's peers selects `peer` (with the
    /// `fromRequires`/`toRequires` selectors `requires` on endpoint peers);
    /// `peer_idx` is the peer's [`Engine::known_index`].
    pub(crate) fn entry_peer_matches(
        &self,
        e: &Entry,
        peer: &Party,
        peer_idx: Option<usize>,
        requires: &[&Selector],
    ) -> bool {
        e.peers.iter().any(|p| match &p.kind {
            PeerKind::Selectors { selectors } => selectors.iter().any(|s| {
                self.peer_selected(s, peer, peer_idx)
                    && (!p.from_endpoints
                        || requires
                            .iter()
                            .all(|r| self.peer_selected(r, peer, peer_idx)))
            }),
            PeerKind::Cidr { cidr, except } => {
                cidr_peer_matches(cidr, except, &peer.identity, self.inv.cluster.dual_stack)
            }
            PeerKind::Unevaluable { .. } => false,
        })
    }

    /// Whether an entry's ports (none: any port) cover `protocol`/`port`.
    pub(crate) fn entry_port_matches(
        &self,
        e: &Entry,
        subject: &Party,
        peer: &Party,
        dir: Direction,
        protocol: Protocol,
        port: u16,
    ) -> bool {
        let Some(ports) = &e.ports else {
            return true;
        };
        ports.iter().any(|pr| {
            if !pr.protocol.covers(protocol) {
                return false;
            }
            match &pr.port {
                PortSel::Range { from, to } => *from <= port && port <= *to,
                PortSel::Named(name) => {
                    self.named_port(subject, dir, name, pr.protocol, Some(peer)) == Some(port)
                }
            }
        })
    }
}

impl Engine<'_> {
    /// Resolves a named port of a rule's `protocol` (a rule with protocol
    /// ANY takes the name's number whatever the container port's protocol,
    /// and applies it to TCP, UDP and SCTP: conformance `tiers/`): on
    /// ingress against the subject pod's own container ports. On egress, Cilium up to 1.19 resolves against the
    /// named ports of every pod in the cluster (`NamedPortMultiMap`), which
    /// resolves only when all pods agree on one number, and non-pod
    /// subjects resolve nothing; from 1.20 against the destination's own
    /// ports (cilium/cilium PR 44429), so a name never matches world, a
    /// CIDR or a reserved identity. On 1.20 the named ports are part of
    /// the identity (PR 45760), so an identity's endpoints agree on them.
    pub fn named_port(
        &self,
        subject: &Party,
        dir: Direction,
        name: &str,
        protocol: Protocol,
        peer: Option<&Party>,
    ) -> Option<u16> {
        let own = |p: &Party| {
            p.ports
                .iter()
                .find(|cp| {
                    protocol.covers(cp.protocol)
                        && cp
                            .name
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .map(|cp| cp.port)
        };
        match dir {
            Direction::Ingress => own(subject),
            // A non-pod subject (world, a CIDR, a reserved identity)
            // resolves no egress named port (conformance gen-0090).
            Direction::Egress if !subject.identity.is_endpoint() => None,
            Direction::Egress if self.egress_named_per_peer() => peer.and_then(own),
            Direction::Egress => {
                let set: BTreeSet<u16> = self
                    .egress_named
                    .range((name.to_string(), Protocol::Tcp)..=(name.to_string(), Protocol::Any))
                    .filter(|((_, p), _)| protocol.covers(*p))
                    .flat_map(|(_, ports)| ports.iter().copied())
                    .collect();
                match set.iter().collect::<Vec<_>>().as_slice() {
                    [one] => Some(**one),
                    _ => None,
                }
            }
        }
    }

    /// Whether egress named ports resolve against each destination (1.20+).
    pub fn egress_named_per_peer(&self) -> bool {
        self.inv.cluster.version >= CiliumVersion::V1_20
    }

    /// The container ports of the endpoints of an identity (by number),
    /// for resolving egress named ports against a destination identity.
    pub fn identity_ports(&self, id: u32) -> &[ContainerPort] {
        self.ports_by_identity
            .get(&id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The `fromRequires`/`toRequires` selectors of the allow (or deny) entries
/// of `rules` in `dir`: Cilium ANDs them into every endpoint selector of the
/// allow (or deny) entries of every rule selecting the subject
/// (`requirements` and `requirementsDeny` in pkg/policy/rule.go).
pub fn requirements<'r>(rules: &[&'r Rule], dir: Direction, deny: bool) -> Vec<&'r Selector> {
    rules
        .iter()
        .flat_map(|r| {
            r.entries
                .iter()
                .filter(move |e| e.direction == dir && e.deny == deny)
        })
        .flat_map(|e| e.requires.iter())
        .collect()
}

/// Whether a CIDR peer (with exceptions) selects an identity: CIDR
/// identities inside the prefix and outside every exception; a `/0` prefix
/// also selects the world identity of its family.
pub fn cidr_peer_matches(cidr: &Cidr, except: &[Cidr], id: &Identity, dual_stack: bool) -> bool {
    match &id.kind {
        IdentityKind::Cidr(c) => cidr.contains(c) && !except.iter().any(|e| e.contains(c)),
        IdentityKind::Reserved(name) if cidr.is_default_route() => {
            let world = match (dual_stack, cidr.is_ipv4()) {
                (false, _) => "world",
                (true, true) => "world-ipv4",
                (true, false) => "world-ipv6",
            };
            name == world
        }
        _ => false,
    }
}

/// Below this many workloads, one thread computes their identity labels.
const PARALLEL_WORKLOADS: usize = 20_000;

/// Every workload's identity labels (`None` for host-network pods, which
/// are the host), on the machine's threads for large inputs.
fn endpoint_label_sets(inv: &Inventory) -> Vec<Option<LabelSet>> {
    let empty = BTreeMap::new();
    let named_ports = inv.cluster.named_ports_in_identity();
    let filter = LabelFilter::of(&inv.cluster);
    let labels_of = |w: &crate::ingest::Workload| -> Option<LabelSet> {
        if w.host_network {
            return None;
        }
        let ns_labels = inv
            .namespaces
            .get(&w.namespace)
            .map(|n| &n.labels)
            .unwrap_or(&empty);
        let generated = if named_ports {
            named_ports_labels(
                w.ports
                    .iter()
                    .filter_map(|p| Some((p.name.as_deref()?, p.protocol, p.port))),
            )
        } else {
            Vec::new()
        };
        Some(pod_identity_labels(&PodLabels {
            namespace: &w.namespace,
            labels: &w.labels,
            namespace_labels: ns_labels,
            service_account: &w.service_account,
            cluster: &inv.cluster.name,
            filter,
            generated: &generated,
        }))
    };
    let threads = crate::threads();
    if threads < 2 || inv.workloads.len() < PARALLEL_WORKLOADS {
        return inv.workloads.iter().map(labels_of).collect();
    }
    let chunk = inv.workloads.len().div_ceil(threads);
    let labels_of = &labels_of;
    std::thread::scope(|scope| {
        let handles: Vec<_> = inv
            .workloads
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(labels_of).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
