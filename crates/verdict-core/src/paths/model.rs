//! The paths report: what `verdict paths` returns (entry points, routes,
//! backend pods, hops and their checks) and the options it takes.

use super::*;

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
