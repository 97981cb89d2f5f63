//! From documents to an [`Inventory`]: one function per kind, located
//! diagnostics for everything that is wrong, nothing silently dropped.

pub mod clusternp;
pub mod cnp;
mod dedup;
pub mod k8s;
pub mod knp;
mod owners;
mod parts;
mod routing_rules;
pub mod routing_schema;
pub mod schema;

use crate::decode::Ctx;
use crate::policy::Policy;
use crate::source::{Diagnostic, Location, ObjectRef, Severity};
use crate::yaml::{Node, Value};
pub use cnp::ClusterConfig;
pub use k8s::{ContainerPort, Namespace, Service, ServicePort, TargetPort, Workload};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An object of a kind that a later analysis reads (Ingress, Gateway API),
/// kept as its node tree.
#[derive(Debug, Clone)]
pub struct RawObject {
    pub object: ObjectRef,
    pub api_version: String,
    pub node: Node,
    pub file: Arc<str>,
    pub location: Location,
}

/// Everything loaded from the input.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    pub cluster: ClusterConfig,
    pub namespaces: BTreeMap<String, Namespace>,
    pub workloads: Vec<Workload>,
    pub services: Vec<Service>,
    pub policies: Vec<Policy>,
    pub routing: Vec<RawObject>,
    /// Kinds that are not analysed, with where they were seen.
    pub skipped: BTreeMap<String, Vec<Location>>,
    /// The objects of those kinds (a HelmRelease or an operator's custom
    /// resource says the namespace has workloads that are not in the input).
    pub skipped_objects: Vec<ObjectRef>,
    pub diagnostics: Vec<Diagnostic>,
    /// Total bytes of text loaded.
    pub bytes: usize,
    /// Namespaces read by one piece of a text, each with the place among
    /// the diagnostics where a sequential read inserts it: inserted when
    /// the pieces are joined (`ingest/parts.rs`).
    deferred: Option<Vec<(Namespace, usize)>>,
}

pub const WORKLOAD_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];
pub const ROUTING_KINDS: &[&str] = &[
    "Ingress",
    "IngressClass",
    "Gateway",
    "GatewayClass",
    "HTTPRoute",
    "GRPCRoute",
    "TLSRoute",
    "TCPRoute",
    "UDPRoute",
    "ReferenceGrant",
];

impl Inventory {
    pub fn new(cluster: ClusterConfig) -> Inventory {
        Inventory {
            cluster,
            ..Inventory::default()
        }
    }

    /// Loads one object (or a `List` of them).
    pub fn load_node(&mut self, file: &Arc<str>, node: &Node) {
        let mut diags = Vec::new();
        self.load_object(file, node, None, &mut diags);
        self.diagnostics.append(&mut diags);
    }

    /// Loads one object; `implied` is the (kind, apiVersion) of the items of
    /// a typed list (`PodList`), whose items carry neither.
    fn load_object(
        &mut self,
        file: &Arc<str>,
        node: &Node,
        implied: Option<(&str, &str)>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let mut ctx = Ctx::new(file, diags);
        let Some(root) = ctx.fields_loose(node, "object") else {
            return;
        };
        let kind = match root.get("kind") {
            Some(k) => match ctx.string(k, "kind") {
                Some(k) => k,
                None => return,
            },
            None => match implied {
                Some((k, _)) => k.to_string(),
                None => {
                    ctx.warn(
                        node,
                        "document has no `kind` (not a Kubernetes object); it is skipped"
                            .to_string(),
                    );
                    return;
                }
            },
        };
        let api_version = root
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .or(implied.map(|(_, v)| v))
            .unwrap_or_default()
            .to_string();
        if kind.ends_with("List") && root.get("items").is_some() {
            // A typed list (`PodList`, from the API server) implies its
            // items' kind and apiVersion; a plain `List` implies nothing.
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
            if let Some(items) = root.get("items").and_then(|i| ctx.seq(i, "items")) {
                for item in items {
                    self.load_object(
                        file,
                        item,
                        item_kind.map(|k| (k, api_version.as_str())),
                        diags,
                    );
                }
            }
            return;
        }
        let meta = root
            .get("metadata")
            .and_then(|m| ctx.fields_loose(m, "metadata"));
        let mut unreadable = false;
        let name = match meta.as_ref().and_then(|m| m.get("name")) {
            Some(n) => match meta_string(&mut ctx, n, "metadata.name") {
                Some(s) => s,
                None => {
                    unreadable = true;
                    String::new()
                }
            },
            None => String::new(),
        };
        let clusterwide = matches!(
            kind.as_str(),
            "Namespace"
                | "CiliumClusterwideNetworkPolicy"
                | "ClusterNetworkPolicy"
                | "GatewayClass"
                | "IngressClass"
        );
        let namespace = if clusterwide {
            None
        } else {
            let written = match meta.as_ref().and_then(|m| m.get("namespace")) {
                Some(n) => match meta_string(&mut ctx, n, "metadata.namespace") {
                    Some(s) => Some(s),
                    None => {
                        unreadable = true;
                        None
                    }
                },
                None => None,
            };
            Some(
                written
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "default".to_string()),
            )
        };
        let object = ObjectRef::new(&kind, namespace.as_deref(), &name);
        ctx.object = Some(object.clone());
        if unreadable {
            ctx.error(
                node,
                format!("{kind}: `metadata.name` or `metadata.namespace` is not a string; the API server refuses this object; it is skipped"),
            );
            return;
        }
        if name.is_empty() {
            ctx.error(
                node,
                format!("{kind} has no `metadata.name`; it is skipped"),
            );
            return;
        }
        let Some(meta) = meta else { return };
        if let Some(n) = meta.get("name") {
            let why = if kind == "Namespace" {
                crate::decode::dns1123_label_error(&name)
            } else {
                crate::decode::dns1123_subdomain_error(&name)
            };
            if let Some(why) = why {
                ctx.error(
                    n,
                    format!(
                        "`metadata.name` `{name}` is {why}; the API server refuses this object"
                    ),
                );
            }
        }
        if let (Some(n), Some(ns)) = (meta.get("namespace"), namespace.as_deref()) {
            if let Some(why) = crate::decode::dns1123_label_error(ns) {
                ctx.error(
                    n,
                    format!(
                        "`metadata.namespace` `{ns}` is {why}; the API server refuses this object"
                    ),
                );
            }
        }
        if let Some(l) = meta.get("labels") {
            ctx.check_label_syntax(l, "metadata.labels");
        }
        let annotations = meta
            .get("annotations")
            .map(|a| ctx.string_map(a, "metadata.annotations"))
            .unwrap_or_default();
        let ns = namespace.clone().unwrap_or_default();
        let location = ctx.loc(node);
        match kind.as_str() {
            "Namespace" => {
                let n = k8s::namespace(&mut ctx, &meta, &name, node);
                match &mut self.deferred {
                    Some(later) => later.push((n, self.diagnostics.len() + ctx.diags.len())),
                    None => self.insert_namespace(n, ctx.diags),
                }
            }
            k if WORKLOAD_KINDS.contains(&k) => {
                if let Some(w) = k8s::workload(&mut ctx, k, &object, &ns, &root, &meta, node) {
                    self.workloads.push(w);
                }
            }
            "Service" => {
                if let Some(s) = k8s::service(&mut ctx, &object, &ns, &root, node) {
                    self.services.push(s);
                }
            }
            "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy" => {
                let top = ctx.fields(
                    node,
                    "object",
                    &["apiVersion", "kind", "metadata", "spec", "specs", "status"],
                );
                let Some(top) = top else { return };
                let cluster = self.cluster.clone();
                let before = ctx.diags.len();
                let (rules, rejected) =
                    cnp::decode_policy(&mut ctx, &top, &object, namespace.as_deref(), &cluster);
                let rejected = rejected.or_else(|| schema_error(&ctx.diags[before..]));
                if let Some(why) = &rejected {
                    ctx.error(node, format!("Cilium rejects this policy: {why}"));
                }
                self.policies.push(Policy {
                    object,
                    location,
                    rules,
                    rejected,
                    ignored: None,
                    annotations: annotations.clone(),
                    source: Some(node.clone()),
                });
            }
            "ClusterNetworkPolicy" => {
                let top = ctx.fields(
                    node,
                    "object",
                    &["apiVersion", "kind", "metadata", "spec", "status"],
                );
                let Some(top) = top else { return };
                let cluster = self.cluster.clone();
                let before = ctx.diags.len();
                let (rules, rejected) = clusternp::decode(&mut ctx, &top, &object, &cluster);
                let rejected = rejected.or_else(|| schema_error(&ctx.diags[before..]));
                if let Some(why) = &rejected {
                    ctx.error(node, format!("the API server refuses this policy: {why}"));
                }
                let ignored = (rejected.is_none() && !cluster.cluster_network_policy()).then(|| {
                    if cluster.version < crate::settings::CiliumVersion::V1_20 {
                        format!("ClusterNetworkPolicy is not enforced by Cilium {} (it needs 1.20 or later)", cluster.version)
                    } else {
                        "ClusterNetworkPolicy is ignored: the agent setting enable-k8s-cluster-network-policy is off (use --enable-k8s-cluster-network-policy if your agents enable it)".to_string()
                    }
                });
                if let Some(why) = &ignored {
                    ctx.warn(node, format!("not enforced: {why}"));
                }
                self.policies.push(Policy {
                    object,
                    location,
                    rules,
                    rejected,
                    ignored,
                    annotations: annotations.clone(),
                    source: Some(node.clone()),
                });
            }
            "NetworkPolicy" => {
                let top = ctx.fields(
                    node,
                    "object",
                    &["apiVersion", "kind", "metadata", "spec", "status"],
                );
                let Some(top) = top else { return };
                let before = ctx.diags.len();
                let cluster = self.cluster.clone();
                let rules = knp::decode_knp(&mut ctx, &top, &object, &ns, &cluster);
                let rejected = schema_error(&ctx.diags[before..]);
                if let Some(why) = &rejected {
                    ctx.error(node, format!("the API server refuses this policy: {why}"));
                }
                self.policies.push(Policy {
                    object,
                    location,
                    rules,
                    rejected,
                    ignored: None,
                    annotations: annotations.clone(),
                    source: Some(node.clone()),
                });
            }
            k if ROUTING_KINDS.contains(&k) => {
                let before = ctx.diags.len();
                validate_routing(&mut ctx, k, node);
                if let Some(why) = schema_error(&ctx.diags[before..]) {
                    ctx.error(
                        node,
                        format!("the API server refuses this {k}: {why}; it takes no part in the analysis"),
                    );
                    return;
                }
                self.routing.push(RawObject {
                    object,
                    api_version,
                    node: node.clone(),
                    file: Arc::clone(file),
                    location,
                })
            }
            _ => {
                self.skipped_objects.push(object);
                self.skipped.entry(kind).or_default().push(location);
            }
        }
    }

    /// Completes the inventory once everything is loaded: pods, ReplicaSets
    /// and Jobs represented by their controllers (`ingest/owners.rs`), then
    /// the namespaces that objects live in but that were not given, with
    /// the one label the API server always sets (each reported once).
    pub fn complete_namespaces(&mut self) {
        self.represent_by_controllers();
        let mut used: BTreeMap<String, Location> = BTreeMap::new();
        for w in &self.workloads {
            used.entry(w.namespace.clone())
                .or_insert_with(|| w.location.clone());
        }
        for (ns, loc) in used {
            if !self.namespaces.contains_key(&ns) {
                self.diagnostics.push(Diagnostic {
                    location: loc.clone(),
                    severity: Severity::Info,
                    object: Some(ObjectRef::new("Namespace", None, &ns)),
                    message: format!(
                        "namespace `{ns}` is not in the input; assuming its only label is kubernetes.io/metadata.name={ns}"
                    ),
                });
                let labels =
                    BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.clone())]);
                self.namespaces.insert(
                    ns.clone(),
                    Namespace {
                        name: ns,
                        labels,
                        location: loc,
                    },
                );
            }
        }
    }

    /// The diagnostics above info: warnings and errors.
    pub fn problems(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity != Severity::Info)
    }

    /// A summary of kinds that were skipped, one diagnostic per kind.
    pub fn skipped_diagnostics(&self) -> Vec<Diagnostic> {
        self.skipped
            .iter()
            .filter_map(|(kind, locs)| {
                let first = locs.first()?;
                Some(Diagnostic {
                    location: first.clone(),
                    severity: Severity::Info,
                    object: None,
                    message: format!(
                        "kind `{kind}` is not analysed: {} skipped",
                        crate::text::plural(locs.len(), "object", "objects")
                    ),
                })
            })
            .collect()
    }
}

/// A `metadata` string (name, namespace): a number, boolean, list or
/// mapping is an error (the API server refuses it), never read as text.
fn meta_string(ctx: &mut Ctx, n: &Node, path: &str) -> Option<String> {
    match &n.value {
        Value::Scalar { .. } if n.type_name() == "string" => n.as_str().map(str::to_string),
        _ => {
            ctx.error(
                n,
                format!("`{path}` must be a string, found {}", n.type_name()),
            );
            None
        }
    }
}

/// Checks a routing object (Ingress, IngressClass, Gateway API) as the API
/// server does: its structural schema, then the rules on its values.
fn validate_routing(ctx: &mut Ctx, kind: &str, node: &Node) {
    let Some(ty) = routing_schema::of_kind(kind) else {
        return;
    };
    let before = ctx.diags.len();
    schema::check(ctx, node, "object", &ty);
    let typed = ctx.diags[before..]
        .iter()
        .all(|d| d.severity != Severity::Error || d.message.starts_with("unknown field"));
    // Value rules need well-typed values; with a wrong type the object is
    // refused anyway.
    if typed {
        routing_rules::check(ctx, kind, node);
    }
}

/// The object a document root describes, as far as it says (for
/// diagnostics found before the object is decoded).
fn object_of(root: &Node) -> Option<ObjectRef> {
    let kind = root.get("kind")?.as_str()?;
    let meta = root.get("metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Node::as_str)?;
    let ns = meta.and_then(|m| m.get("namespace")).and_then(Node::as_str);
    Some(ObjectRef::new(kind, ns, name))
}

/// The first schema error among a policy's diagnostics (a wrong type, an
/// invalid selector...): the API server refuses such an object, so it takes
/// no part in verdicts. Unknown fields are not counted: the API server
/// prunes them (or refuses them under strict validation; both are reported).
fn schema_error(diags: &[Diagnostic]) -> Option<String> {
    diags
        .iter()
        .find(|d| d.severity == Severity::Error && !d.message.starts_with("unknown field"))
        .map(|d| format!("invalid object ({}): {}", d.location, d.message))
}

/// Counts of what was loaded, for summaries.
#[derive(Debug, Serialize)]
pub struct Counts {
    pub namespaces: usize,
    pub workloads: usize,
    pub services: usize,
    pub policies: usize,
    pub rejected: usize,
}

impl Inventory {
    pub fn counts(&self) -> Counts {
        Counts {
            namespaces: self.namespaces.len(),
            workloads: self.workloads.len(),
            services: self.services.len(),
            policies: self.policies.len(),
            rejected: self
                .policies
                .iter()
                .filter(|p| p.rejected.is_some())
                .count(),
        }
    }
}
