//! From documents to an [`Inventory`]: one function per kind, located
//! diagnostics for everything that is wrong, nothing silently dropped.

pub mod clusternp;
pub mod cnp;
pub mod k8s;
pub mod knp;

use crate::decode::Ctx;
use crate::policy::Policy;
use crate::source::{Diagnostic, Location, ObjectRef, Severity};
use crate::yaml::{parse_documents, Document, Node};
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

    /// Loads every document of `text`, read from `file`.
    pub fn load_text(&mut self, file: &str, text: &str) {
        let file: Arc<str> = Arc::from(file);
        self.bytes += text.len();
        for doc in parse_documents(text) {
            match doc {
                Document::Err { pos, message } => self.diagnostics.push(Diagnostic {
                    location: Location::new(&file, pos),
                    severity: Severity::Error,
                    object: None,
                    message: format!("YAML syntax error: {message}; this document is skipped"),
                }),
                Document::Ok(node) => self.load_node(&file, &node),
            }
        }
    }

    /// Loads one object (or a `List` of them).
    pub fn load_node(&mut self, file: &Arc<str>, node: &Node) {
        let mut diags = Vec::new();
        self.load_object(file, node, &mut diags);
        self.diagnostics.append(&mut diags);
    }

    fn load_object(&mut self, file: &Arc<str>, node: &Node, diags: &mut Vec<Diagnostic>) {
        let mut ctx = Ctx::new(file, diags);
        let Some(root) = ctx.fields_loose(node, "object") else {
            return;
        };
        let kind = match root.get("kind").and_then(|k| k.as_str()) {
            Some(k) => k.to_string(),
            None => {
                ctx.warn(
                    node,
                    "document has no `kind` (not a Kubernetes object); it is skipped".to_string(),
                );
                return;
            }
        };
        let api_version = root
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        if kind.ends_with("List") && root.get("items").is_some() {
            if let Some(items) = root.get("items").and_then(|i| ctx.seq(i, "items")) {
                for item in items {
                    self.load_object(file, item, diags);
                }
            }
            return;
        }
        let meta = root
            .get("metadata")
            .and_then(|m| ctx.fields_loose(m, "metadata"));
        let name = meta
            .as_ref()
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_string();
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
            Some(
                meta.as_ref()
                    .and_then(|m| m.get("namespace"))
                    .and_then(|n| n.as_str())
                    .filter(|s| !s.is_empty())
                    .unwrap_or("default")
                    .to_string(),
            )
        };
        let object = ObjectRef::new(&kind, namespace.as_deref(), &name);
        ctx.object = Some(object.clone());
        if name.is_empty() {
            ctx.error(
                node,
                format!("{kind} has no `metadata.name`; it is skipped"),
            );
            return;
        }
        let Some(meta) = meta else { return };
        let annotations = meta
            .get("annotations")
            .map(|a| ctx.string_map(a, "metadata.annotations"))
            .unwrap_or_default();
        let ns = namespace.clone().unwrap_or_default();
        let location = ctx.loc(node);
        match kind.as_str() {
            "Namespace" => {
                let n = k8s::namespace(&mut ctx, &meta, &name, node);
                self.namespaces.insert(name, n);
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
            k if ROUTING_KINDS.contains(&k) => self.routing.push(RawObject {
                object,
                api_version,
                node: node.clone(),
                file: Arc::clone(file),
                location,
            }),
            _ => {
                self.skipped_objects.push(object);
                self.skipped.entry(kind).or_default().push(location);
            }
        }
    }

    /// Adds the namespaces that objects live in but that were not given,
    /// with the one label the API server always sets; reports each once.
    pub fn complete_namespaces(&mut self) {
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
                        "kind `{kind}` is not analysed: {} object(s) skipped",
                        locs.len()
                    ),
                })
            })
            .collect()
    }
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
