//! Agent settings found in the input: Cilium's `cilium-config` ConfigMap
//! (what the agent reads), the Cilium Helm chart's `values.yaml`, and the
//! release of the `cilium` agent image. Settings the user gave explicitly
//! (command line, PolicyTest `spec.cluster`) win; every setting taken from
//! the input is reported with its file and line.

use crate::settings::{AllowLocalhost, CiliumVersion, ClusterConfig, PolicyEnforcement};
use crate::source::{Diagnostic, Location, ObjectRef, Severity};
use crate::yaml::{parse_documents, Document, Node, Value};
use std::sync::Arc;

/// Whether a file may hold agent settings (cheap test on the raw text, so
/// that only such files are parsed twice).
pub fn may_hold_settings(file: &str, text: &str) -> bool {
    text.contains("cilium-config")
        || text.contains("cilium/cilium:")
        || file.ends_with("values.yaml")
        || file.ends_with("values.yml")
}

/// One setting read from the input.
struct Found<'n> {
    key: &'static str,
    value: String,
    node: &'n Node,
}

/// Applies the agent settings found in `text` to `cfg` (except explicit
/// ones); returns a diagnostic per setting taken or refused.
pub fn apply(cfg: &mut ClusterConfig, file: &str, text: &str) -> Vec<Diagnostic> {
    let file: Arc<str> = Arc::from(file);
    let mut out = Vec::new();
    for doc in parse_documents(text) {
        let Document::Ok(root) = doc else { continue };
        let kind = root.get("kind").and_then(Node::as_str);
        let items: Vec<&Node> = match (kind, root.get("items").and_then(Node::as_seq)) {
            (Some(k), Some(items)) if k.ends_with("List") => items.iter().collect(),
            _ => vec![&root],
        };
        for obj in items {
            let found = match obj.get("kind").and_then(Node::as_str) {
                Some("ConfigMap") => config_map(obj),
                Some("DaemonSet") => agent_image(obj),
                None if file.ends_with("values.yaml") || file.ends_with("values.yml") => {
                    helm_values(obj)
                }
                _ => continue,
            };
            let source = match obj.get("kind").and_then(Node::as_str) {
                Some(k) => ObjectRef::new(
                    k,
                    obj.get("metadata")
                        .and_then(|m| m.get("namespace"))
                        .and_then(Node::as_str),
                    obj.get("metadata")
                        .and_then(|m| m.get("name"))
                        .and_then(Node::as_str)
                        .unwrap_or_default(),
                )
                .short(),
                None => "Helm values".to_string(),
            };
            for f in found {
                let location = Location::new(&file, f.node.pos);
                match set(cfg, f.key, &f.value) {
                    Ok(true) => {
                        cfg.taken_from
                            .push(format!("{}={} ({source}, {location})", f.key, f.value));
                        out.push(Diagnostic {
                            location,
                            severity: Severity::Info,
                            object: None,
                            message: format!(
                                "agent setting {}={} taken from {source}",
                                f.key, f.value
                            ),
                        });
                    }
                    Ok(false) => out.push(Diagnostic {
                        location,
                        severity: Severity::Info,
                        object: None,
                        message: format!(
                            "agent setting {}={} in {source} is overridden by the command line",
                            f.key, f.value
                        ),
                    }),
                    Err(e) => out.push(Diagnostic {
                        location,
                        severity: Severity::Error,
                        object: None,
                        message: format!("{source}: {e}"),
                    }),
                }
            }
        }
    }
    out
}

/// Sets one setting unless it was given explicitly: `Ok(true)` when taken.
fn set(cfg: &mut ClusterConfig, key: &str, value: &str) -> Result<bool, String> {
    let e = cfg.explicit;
    let boolean = |v: &str| match v.trim() {
        "true" | "True" => Ok(true),
        "false" | "False" => Ok(false),
        _ => Err(format!("`{key}: {v}` is not true or false")),
    };
    match key {
        "enable-policy" => {
            let v = PolicyEnforcement::parse(value)?;
            if e.policy_enforcement {
                return Ok(false);
            }
            cfg.policy_enforcement = v;
        }
        "allow-localhost" => {
            let v = AllowLocalhost::parse(value)?;
            if e.allow_localhost {
                return Ok(false);
            }
            cfg.allow_localhost = v;
        }
        "policy-default-local-cluster" => {
            let v = boolean(value)?;
            if e.policy_default_local_cluster {
                return Ok(false);
            }
            cfg.policy_default_local_cluster = Some(v);
        }
        "enable-k8s-cluster-network-policy" => {
            let v = boolean(value)?;
            if e.enable_k8s_cluster_network_policy {
                return Ok(false);
            }
            cfg.enable_k8s_cluster_network_policy = v;
        }
        "cluster-name" => {
            if e.name {
                return Ok(false);
            }
            cfg.name = value.to_string();
        }
        "enable-ipv6" => {
            let v = boolean(value)?;
            if e.dual_stack {
                return Ok(false);
            }
            // Dual stack needs both families; IPv4 is on unless said otherwise.
            cfg.dual_stack = v;
        }
        "cilium-version" => {
            CiliumVersion::parse(value)?;
            if e.version {
                return Ok(false);
            }
            cfg.set_version(value)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The agent keys verdict reads from `cilium-config` (Cilium's own names).
const AGENT_KEYS: &[&str] = &[
    "enable-policy",
    "allow-localhost",
    "policy-default-local-cluster",
    "enable-k8s-cluster-network-policy",
    "cluster-name",
    "enable-ipv6",
];

fn config_map(obj: &Node) -> Vec<Found<'_>> {
    let named = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str)
        == Some("cilium-config");
    let Some(data) = obj.get("data").filter(|_| named) else {
        return Vec::new();
    };
    AGENT_KEYS
        .iter()
        .filter_map(|k| {
            let n = data.get(k)?;
            Some(Found {
                key: k,
                value: n.as_str()?.to_string(),
                node: n,
            })
        })
        .collect()
}

/// The release of the `cilium` agent image of a DaemonSet named `cilium`
/// (`quay.io/cilium/cilium:v1.19.3@sha256:...`).
fn agent_image(obj: &Node) -> Vec<Found<'_>> {
    let containers = obj
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("containers"))
        .and_then(Node::as_seq)
        .unwrap_or(&[]);
    containers
        .iter()
        .filter_map(|c| {
            let img = c.get("image")?;
            let text = img.as_str()?;
            let tag = image_tag(text, "cilium/cilium")?;
            Some(Found {
                key: "cilium-version",
                value: tag.to_string(),
                node: img,
            })
        })
        .take(1)
        .collect()
}

/// The tag of `repo` in an image reference, when the image is that repo.
fn image_tag<'t>(image: &'t str, repo: &str) -> Option<&'t str> {
    let no_digest = image.split('@').next()?;
    let (name, tag) = no_digest.rsplit_once(':')?;
    (name == repo || name.ends_with(&format!("/{repo}"))).then_some(tag)
}

/// Settings in the Cilium Helm chart's values: `policyEnforcementMode`,
/// `cluster.name`, `ipv6.enabled`, `image.tag`, and any agent key under
/// `extraConfig`.
fn helm_values(root: &Node) -> Vec<Found<'_>> {
    let mut found: Vec<Found<'_>> = Vec::new();
    let direct: [(&'static str, Option<&Node>); 4] = [
        ("enable-policy", root.get("policyEnforcementMode")),
        (
            "cluster-name",
            root.get("cluster").and_then(|c| c.get("name")),
        ),
        (
            "enable-ipv6",
            root.get("ipv6").and_then(|c| c.get("enabled")),
        ),
        (
            "cilium-version",
            root.get("image").and_then(|c| c.get("tag")),
        ),
    ];
    for (key, n) in direct {
        if let Some(n) = n {
            if let Some(v) = n.as_str() {
                found.push(Found {
                    key,
                    value: v.to_string(),
                    node: n,
                });
            }
        }
    }
    if let Some(Value::Map(items)) = root.get("extraConfig").map(|n| &n.value) {
        for (k, v) in items {
            let Some(key) = k
                .as_str()
                .and_then(|k| AGENT_KEYS.iter().find(|a| **a == k))
            else {
                continue;
            };
            if let Some(text) = v.as_str() {
                found.push(Found {
                    key,
                    value: text.to_string(),
                    node: v,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_map_settings_apply_unless_explicit() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cilium-config, namespace: kube-system}\ndata:\n  enable-policy: always\n  allow-localhost: policy\n  cluster-name: prod\n";
        let mut cfg = ClusterConfig::default();
        cfg.explicit.name = true;
        let diags = apply(&mut cfg, "cm.yaml", text);
        assert_eq!(cfg.policy_enforcement, PolicyEnforcement::Always);
        assert_eq!(cfg.allow_localhost, AllowLocalhost::Policy);
        assert_eq!(cfg.name, "default");
        assert_eq!(diags.len(), 3);
        assert!(diags.iter().any(|d| d.message.contains("overridden")));
        assert_eq!(cfg.taken_from.len(), 2);
    }

    #[test]
    fn bad_values_are_errors() {
        let text =
            "kind: ConfigMap\nmetadata: {name: cilium-config}\ndata: {enable-policy: sometimes}\n";
        let mut cfg = ClusterConfig::default();
        let diags = apply(&mut cfg, "cm.yaml", text);
        assert_eq!(diags[0].severity, Severity::Error);
        assert_eq!(diags[0].location.line, 3);
    }

    #[test]
    fn agent_image_and_helm_values_give_the_release() {
        let ds = "kind: DaemonSet\nmetadata: {name: cilium}\nspec:\n  template:\n    spec:\n      containers:\n      - name: cilium-agent\n        image: quay.io/cilium/cilium:v1.18.4@sha256:abc\n";
        let mut cfg = ClusterConfig::default();
        apply(&mut cfg, "ds.yaml", ds);
        assert_eq!(cfg.version, CiliumVersion::V1_18);
        assert_eq!(cfg.patch, Some(4));
        assert!(!cfg.ignores_topology_labels());
        let values = "policyEnforcementMode: never\nimage:\n  tag: v1.19.0\nextraConfig:\n  allow-localhost: policy\n";
        let mut cfg = ClusterConfig::default();
        apply(&mut cfg, "charts/values.yaml", values);
        assert_eq!(cfg.version, CiliumVersion::V1_19);
        assert_eq!(cfg.policy_enforcement, PolicyEnforcement::Never);
        assert_eq!(cfg.allow_localhost, AllowLocalhost::Policy);
    }
}
