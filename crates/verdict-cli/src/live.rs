//! The live cluster as an input source (`--kubeconfig`, `--context`,
//! `--in-cluster`): every kind verdict reads is listed with kube-rs (plain
//! paginated `list` requests, no watch), and each kind's objects become YAML
//! text under a virtual source name (`cluster:CONTEXT/GROUP/VERSION/PLURAL`)
//! that goes through the same parser and ingest as files. `verdict snapshot`
//! writes exactly these texts. See docs/live-cluster.md.

use crate::live_objects::{normalise, without_terminated_pods};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use verdict_core::source::{Diagnostic, Location, Severity};

/// Where the cluster is: a kubeconfig (and context), or the in-cluster
/// service account.
#[derive(Clone, Default)]
pub struct LiveArgs {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub in_cluster: bool,
}

impl LiveArgs {
    pub fn given(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some() || self.in_cluster
    }
}

/// One kind verdict reads: API group, the versions tried in order (the
/// first one served is read), resource (plural) and an optional field
/// selector.
struct Kind {
    kind: &'static str,
    group: &'static str,
    versions: &'static [&'static str],
    plural: &'static str,
    field_selector: Option<&'static str>,
}

const fn kind(
    kind: &'static str,
    group: &'static str,
    versions: &'static [&'static str],
    plural: &'static str,
) -> Kind {
    Kind {
        kind,
        group,
        versions,
        plural,
        field_selector: None,
    }
}

/// Every kind read from the cluster, in the order they are listed.
const KINDS: &[Kind] = &[
    kind("Namespace", "", &["v1"], "namespaces"),
    kind("Pod", "", &["v1"], "pods"),
    kind("Service", "", &["v1"], "services"),
    Kind {
        field_selector: Some("metadata.name=cilium-config"),
        ..kind("ConfigMap", "", &["v1"], "configmaps")
    },
    kind("Deployment", "apps", &["v1"], "deployments"),
    kind("ReplicaSet", "apps", &["v1"], "replicasets"),
    kind("StatefulSet", "apps", &["v1"], "statefulsets"),
    kind("DaemonSet", "apps", &["v1"], "daemonsets"),
    kind("Job", "batch", &["v1"], "jobs"),
    kind("CronJob", "batch", &["v1"], "cronjobs"),
    kind(
        "NetworkPolicy",
        "networking.k8s.io",
        &["v1"],
        "networkpolicies",
    ),
    kind("Ingress", "networking.k8s.io", &["v1"], "ingresses"),
    kind(
        "IngressClass",
        "networking.k8s.io",
        &["v1"],
        "ingressclasses",
    ),
    kind(
        "CiliumNetworkPolicy",
        "cilium.io",
        &["v2"],
        "ciliumnetworkpolicies",
    ),
    kind(
        "CiliumClusterwideNetworkPolicy",
        "cilium.io",
        &["v2"],
        "ciliumclusterwidenetworkpolicies",
    ),
    kind(
        "ClusterNetworkPolicy",
        "policy.networking.k8s.io",
        &["v1alpha2"],
        "clusternetworkpolicies",
    ),
    kind(
        "GatewayClass",
        "gateway.networking.k8s.io",
        &["v1", "v1beta1"],
        "gatewayclasses",
    ),
    kind(
        "Gateway",
        "gateway.networking.k8s.io",
        &["v1", "v1beta1"],
        "gateways",
    ),
    kind(
        "HTTPRoute",
        "gateway.networking.k8s.io",
        &["v1", "v1beta1"],
        "httproutes",
    ),
    kind(
        "GRPCRoute",
        "gateway.networking.k8s.io",
        &["v1", "v1alpha2"],
        "grpcroutes",
    ),
    kind(
        "TLSRoute",
        "gateway.networking.k8s.io",
        &["v1alpha3", "v1alpha2"],
        "tlsroutes",
    ),
    kind(
        "TCPRoute",
        "gateway.networking.k8s.io",
        &["v1alpha2"],
        "tcproutes",
    ),
    kind(
        "UDPRoute",
        "gateway.networking.k8s.io",
        &["v1alpha2"],
        "udproutes",
    ),
    kind(
        "ReferenceGrant",
        "gateway.networking.k8s.io",
        &["v1beta1", "v1alpha2"],
        "referencegrants",
    ),
];

/// Kinds whose objects have no namespace.
pub fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "IngressClass"
            | "GatewayClass"
            | "CiliumClusterwideNetworkPolicy"
            | "ClusterNetworkPolicy"
    )
}

/// Objects per page (`limit`); the server's `continue` token fetches the next.
const PAGE: u32 = 500;

/// The objects of one kind as read.
pub struct LiveKind {
    /// `cluster:CONTEXT/GROUP/VERSION/PLURAL` (`core` for the core group).
    pub source: String,
    /// The snapshot file name: `GROUP_VERSION_PLURAL.yaml`.
    pub file_name: String,
    /// Objects with `apiVersion` and `kind`, without `managedFields`,
    /// sorted by namespace and name.
    pub objects: Vec<Value>,
}

/// What was read from the cluster, and the problems met per kind.
pub struct LiveState {
    pub context: String,
    pub kinds: Vec<LiveKind>,
    pub diagnostics: Vec<Diagnostic>,
}

impl LiveKind {
    /// The kind's objects as a YAML stream, leaving out those for which
    /// `skip` is true.
    pub fn text(&self, mut skip: impl FnMut(&Value) -> bool) -> String {
        let mut out = String::new();
        for o in self.objects.iter().filter(|o| !skip(o)) {
            out.push_str("---\n");
            out.push_str(&crate::yaml_out::to_yaml(o));
        }
        out
    }
}

fn diag(source: &str, severity: Severity, message: String) -> Diagnostic {
    Diagnostic {
        location: Location {
            file: Arc::from(source),
            line: 0,
            col: 0,
        },
        severity,
        object: None,
        message,
    }
}

/// Connects and lists every kind. A kind that cannot be listed (RBAC, an
/// absent CRD) is a diagnostic and the others are still read; a cluster
/// that cannot be reached at all (configuration, connection,
/// authentication) is an error.
pub fn fetch(args: &LiveArgs) -> Result<LiveState, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the cluster client: {e}"))?;
    rt.block_on(fetch_async(args))
}

async fn client(args: &LiveArgs) -> Result<(kube::Client, String), String> {
    use kube::config::{Config, KubeConfigOptions, Kubeconfig};
    let (mut config, context) = if args.in_cluster {
        let c = Config::incluster().map_err(|e| format!("--in-cluster: {e}"))?;
        (c, "in-cluster".to_string())
    } else {
        let kc = match &args.kubeconfig {
            Some(p) => Kubeconfig::read_from(p)
                .map_err(|e| format!("--kubeconfig {}: {e}", p.display()))?,
            None => Kubeconfig::read()
                .map_err(|e| format!("kubeconfig ($KUBECONFIG or ~/.kube/config): {e}"))?,
        };
        let context = args
            .context
            .clone()
            .or_else(|| kc.current_context.clone())
            .ok_or("the kubeconfig has no current-context; name one with --context")?;
        let opts = KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        };
        let c = Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|e| format!("kubeconfig context `{context}`: {e}"))?;
        (c, context)
    };
    config.connect_timeout = Some(std::time::Duration::from_secs(30));
    config.read_timeout = Some(std::time::Duration::from_secs(120));
    let client = kube::Client::try_from(config)
        .map_err(|e| format!("cluster `{context}`: cannot build the client: {e}"))?;
    Ok((client, context))
}

async fn fetch_async(args: &LiveArgs) -> Result<LiveState, String> {
    let (client, context) = client(args).await?;
    let mut state = LiveState {
        context: context.clone(),
        kinds: Vec::new(),
        diagnostics: Vec::new(),
    };
    for k in KINDS {
        let group_dir = if k.group.is_empty() { "core" } else { k.group };
        let resource = if k.group.is_empty() {
            k.plural.to_string()
        } else {
            format!("{}.{}", k.plural, k.group)
        };
        let mut absent = Vec::new();
        for (i, version) in k.versions.iter().enumerate() {
            let source = format!("cluster:{context}/{group_dir}/{version}/{}", k.plural);
            let path = if k.group.is_empty() {
                format!("/api/{version}/{}", k.plural)
            } else {
                format!("/apis/{}/{version}/{}", k.group, k.plural)
            };
            match list(&client, &path, k.field_selector).await {
                Ok((items, pages)) => {
                    let api_version = if k.group.is_empty() {
                        version.to_string()
                    } else {
                        format!("{}/{version}", k.group)
                    };
                    let objects = normalise(items, &api_version, k.kind);
                    state.diagnostics.push(diag(
                        &source,
                        Severity::Info,
                        format!(
                            "read {} of kind {} from the cluster ({})",
                            verdict_core::text::plural(objects.len(), "object", "objects"),
                            k.kind,
                            verdict_core::text::plural(pages, "page", "pages")
                        ),
                    ));
                    state.kinds.push(LiveKind {
                        source,
                        file_name: format!("{group_dir}_{version}_{}.yaml", k.plural),
                        objects,
                    });
                    break;
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    absent.push(format!("{}/{version}", group_dir));
                    if i + 1 == k.versions.len() {
                        state.diagnostics.push(diag(
                            &source,
                            Severity::Info,
                            format!(
                                "{} is not served by this cluster (tried {}; its CRD is not installed): no {} objects read",
                                k.plural,
                                absent.join(", "),
                                k.kind
                            ),
                        ));
                    }
                }
                Err(kube::Error::Api(e)) if e.code == 403 => {
                    state.diagnostics.push(diag(
                        &source,
                        Severity::Error,
                        format!(
                            "forbidden: cannot list {resource} (RBAC: verb `list` on resource `{}` in API group \"{}\"{}): {}; {} objects are not analysed, the other kinds are",
                            k.plural,
                            k.group,
                            if cluster_scoped(k.kind) {
                                ""
                            } else {
                                ", all namespaces"
                            },
                            e.message,
                            k.kind
                        ),
                    ));
                    break;
                }
                Err(kube::Error::Api(e)) if e.code == 401 => {
                    return Err(format!(
                        "cluster `{context}`: unauthorized (401) listing {resource}: {}; check the credentials of the kubeconfig",
                        e.message
                    ));
                }
                Err(kube::Error::Api(e)) => {
                    state.diagnostics.push(diag(
                        &source,
                        Severity::Error,
                        format!(
                            "cannot list {resource}: {} {} ({}); {} objects are not analysed, the other kinds are",
                            e.code, e.reason, e.message, k.kind
                        ),
                    ));
                    break;
                }
                Err(e) => {
                    return Err(format!(
                        "cluster `{context}`: listing {resource}: {e}; nothing was analysed"
                    ));
                }
            }
        }
    }
    without_terminated_pods(&mut state);
    state.diagnostics.sort();
    Ok(state)
}

/// Lists every object of one resource, page by page (`limit` and
/// `continue`); returns the items and the number of pages.
///
/// As client-go's pager: when the `continue` token of a later page has
/// expired (410 Gone, the API server compacted that resourceVersion), the
/// list starts over once as a single full list without `limit`, so no page
/// is lost or read twice. A 429 (API priority and fairness throttling) is
/// retried after a growing pause, up to [`THROTTLE_RETRIES`] times.
async fn list(
    client: &kube::Client,
    path: &str,
    field_selector: Option<&str>,
) -> Result<(Vec<Value>, usize), kube::Error> {
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    let mut full_list = false;
    let mut throttled = 0;
    loop {
        let mut lp = kube::api::ListParams::default();
        if !full_list {
            lp = lp.limit(PAGE);
        }
        if let Some(s) = field_selector {
            lp = lp.fields(s);
        }
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let req = kube::core::Request::new(path)
            .list(&lp)
            .map_err(kube::Error::BuildRequest)?;
        let mut page: Value = match client.request(req).await {
            Ok(page) => page,
            Err(kube::Error::Api(e)) if e.code == 410 && token.is_some() && !full_list => {
                items.clear();
                token = None;
                pages = 0;
                full_list = true;
                continue;
            }
            Err(kube::Error::Api(e)) if e.code == 429 && throttled < THROTTLE_RETRIES => {
                throttled += 1;
                tokio::time::sleep(std::time::Duration::from_millis(250 * u64::from(throttled)))
                    .await;
                continue;
            }
            Err(e) => return Err(e),
        };
        pages += 1;
        match page.get_mut("items").map(Value::take) {
            Some(Value::Array(a)) => items.extend(a),
            Some(Value::Null) | None => {}
            Some(_) => {
                return Err(kube::Error::Api(kube::core::ErrorResponse {
                    status: "Failure".to_string(),
                    message: format!("{path}: `items` of the response is not a list"),
                    reason: "unexpected response".to_string(),
                    code: 500,
                }))
            }
        }
        token = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok((items, pages));
        }
    }
}

/// How many times one list request is retried when the API server
/// throttles it (429).
const THROTTLE_RETRIES: u32 = 5;
