//! Objects read from the cluster, made ready for the parser: `apiVersion`
//! and `kind` on every item (list items of built-in kinds come without),
//! `metadata.managedFields` left out, sorted by namespace and name;
//! terminated pods left out; the key by which files overlay live objects.

use crate::live::{cluster_scoped, LiveState};
use serde_json::Value;
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

/// A pod that has terminated (`Succeeded`, `Failed`) has no endpoint and is
/// left out, with one informational line per kind saying how many. Pods
/// and ReplicaSets owned by a controller are kept: the core folds them into
/// their controller as it does for files (ingest/owners.rs), so their names
/// are accepted as parties on live input too.
pub fn without_terminated_pods(state: &mut LiveState) {
    for k in &mut state.kinds {
        let before = k.objects.len();
        k.objects.retain(|o| {
            let pod = o.get("kind").and_then(Value::as_str) == Some("Pod");
            let phase = o.pointer("/status/phase").and_then(Value::as_str);
            !(pod && matches!(phase, Some("Succeeded" | "Failed")))
        });
        let n = before - k.objects.len();
        if n == 0 {
            continue;
        }
        state.diagnostics.push(Diagnostic {
            location: Location {
                file: Arc::from(k.source.as_str()),
                line: 0,
                col: 0,
            },
            severity: Severity::Info,
            object: None,
            message: format!(
                "{} (phase Succeeded or Failed) {} no endpoint and {} left out",
                verdict_core::text::plural(n, "terminated pod", "terminated pods"),
                if n == 1 { "has" } else { "have" },
                if n == 1 { "is" } else { "are" }
            ),
        });
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
