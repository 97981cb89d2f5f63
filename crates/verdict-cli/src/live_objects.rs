//! Objects read from the cluster, made ready for the parser: `apiVersion`
//! and `kind` on every item (list items of built-in kinds come without),
//! `metadata.managedFields` left out, sorted by namespace and name; pods
//! and replica sets represented by the controller that owns them; the key
//! by which files overlay live objects.

use crate::live::{cluster_scoped, LiveState};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use verdict_core::source::{Diagnostic, Location, ObjectRef, Severity};

fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get("metadata")?.get(field)?.as_str()
}

/// Items of a list response as objects of their own, sorted.
pub fn normalise(items: Vec<Value>, api_version: &str, kind: &str) -> Vec<Value> {
    let mut out: Vec<Value> = items
        .into_iter()
        .map(|mut item| {
            if let Value::Object(m) = &mut item {
                m.entry("apiVersion")
                    .or_insert_with(|| Value::String(api_version.to_string()));
                m.entry("kind")
                    .or_insert_with(|| Value::String(kind.to_string()));
                if let Some(Value::Object(meta)) = m.get_mut("metadata") {
                    meta.remove("managedFields");
                }
            }
            item
        })
        .collect();
    out.sort_by(|a, b| {
        (meta_str(a, "namespace"), meta_str(a, "name"))
            .cmp(&(meta_str(b, "namespace"), meta_str(b, "name")))
    });
    out
}

/// The object a live item is, as ingest names it: files overlay live
/// objects with the same key.
pub fn object_ref(v: &Value) -> ObjectRef {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
    let namespace = if cluster_scoped(kind) {
        None
    } else {
        Some(meta_str(v, "namespace").unwrap_or("default"))
    };
    ObjectRef::new(kind, namespace, meta_str(v, "name").unwrap_or_default())
}

/// The controller named by an object's `ownerReferences` (the entry with
/// `controller: true`), as (kind, name).
fn controller(v: &Value) -> Option<(&str, &str)> {
    v.get("metadata")?
        .get("ownerReferences")?
        .as_array()?
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|o| Some((o.get("kind")?.as_str()?, o.get("name")?.as_str()?)))
}

/// Workload kinds whose objects are made by a controller of another kind.
const OWNED: &[&str] = &["Pod", "ReplicaSet", "Job"];
const CONTROLLERS: &[&str] = &[
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
];

/// A running application is one workload: a pod whose controller was read
/// is represented by it (a ReplicaSet by its Deployment, a Job by its
/// CronJob), as `ns/deployment/name`; a pod that has terminated
/// (`Succeeded`, `Failed`) has no endpoint and is left out. Each kind says
/// how many objects it leaves out (informational).
pub fn represented_by_owner(state: &mut LiveState) {
    let mut listed: BTreeSet<(String, String, String)> = BTreeSet::new();
    for k in &state.kinds {
        for o in &k.objects {
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
            if CONTROLLERS.contains(&kind) {
                listed.insert((
                    kind.to_string(),
                    meta_str(o, "namespace").unwrap_or_default().to_string(),
                    meta_str(o, "name").unwrap_or_default().to_string(),
                ));
            }
        }
    }
    for k in &mut state.kinds {
        let mut left_out: BTreeMap<&'static str, usize> = BTreeMap::new();
        k.objects.retain(|o| {
            let kind = o.get("kind").and_then(Value::as_str).unwrap_or_default();
            if !OWNED.contains(&kind) {
                return true;
            }
            if kind == "Pod" {
                let phase = o.pointer("/status/phase").and_then(Value::as_str);
                if matches!(phase, Some("Succeeded" | "Failed")) {
                    *left_out.entry("terminated").or_default() += 1;
                    return false;
                }
            }
            let ns = meta_str(o, "namespace").unwrap_or_default();
            match controller(o) {
                Some((ck, cn))
                    if listed.contains(&(ck.to_string(), ns.to_string(), cn.to_string())) =>
                {
                    *left_out.entry("owned").or_default() += 1;
                    false
                }
                _ => true,
            }
        });
        for (why, n) in left_out {
            let message = match why {
                "terminated" => format!(
                    "{} (phase Succeeded or Failed) {} no endpoint and {} left out",
                    verdict_core::text::plural(n, "terminated pod", "terminated pods"),
                    if n == 1 { "has" } else { "have" },
                    if n == 1 { "is" } else { "are" }
                ),
                _ => format!(
                    "{} represented by the controller that owns them (ownerReferences, controller: true) and left out",
                    verdict_core::text::plural(n, "object is", "objects are")
                ),
            };
            state.diagnostics.push(Diagnostic {
                location: Location {
                    file: Arc::from(k.source.as_str()),
                    line: 0,
                    col: 0,
                },
                severity: Severity::Info,
                object: None,
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_get_kind_and_lose_managed_fields_and_are_sorted() {
        let items = vec![
            json!({"metadata": {"name": "b", "namespace": "x", "managedFields": [{}]}}),
            json!({"metadata": {"name": "a", "namespace": "x"}}),
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "z", "namespace": "a"}}),
        ];
        let out = normalise(items, "v1", "Pod");
        let names: Vec<_> = out.iter().map(|o| meta_str(o, "name").unwrap()).collect();
        assert_eq!(names, ["z", "a", "b"]);
        assert!(out
            .iter()
            .all(|o| o["kind"] == "Pod" && o["apiVersion"] == "v1"));
        assert!(out[2]["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn object_ref_defaults_namespace_like_ingest() {
        let ccnp = json!({"kind": "CiliumClusterwideNetworkPolicy", "metadata": {"name": "c"}});
        assert_eq!(object_ref(&ccnp).namespace, None);
        let pod = json!({"kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(object_ref(&pod).namespace.as_deref(), Some("default"));
    }
}
