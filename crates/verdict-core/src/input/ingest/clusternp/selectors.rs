//! The selectors of a ClusterNetworkPolicy (its subject and peers:
//! `namespaces`, `pods`), read as Cilium 1.20 reads them: without
//! Kubernetes' validation.

use crate::decode::Ctx;
use crate::ingest::cnp::label_selector_with;
use crate::labels::{NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, SOURCE_K8S};
use crate::selector::{Op, Requirement, Selector};
use crate::yaml::{Node, Value};

/// A selector over pod or namespace labels (keys of source `k8s`, after
/// `prefix`). Cilium 1.20 builds ClusterNetworkPolicy selectors without
/// Kubernetes' validation (pkg/policy/types/requirements.go
/// `LabelSelectorToRequirements`, "assumes that the provided LabelSelector
/// is validated beforehand", PR 43536): a selector Kubernetes cannot build is
/// not refused but read term by term ([`lenient`]); one whose shape the API
/// server would refuse matches nothing.
fn selector(ctx: &mut Ctx, n: &Node, path: &str, prefix: &str) -> Selector {
    let n = &without_presence_values(ctx, n, path);
    let mut scratch = Vec::new();
    let mut inner = Ctx::new(&ctx.file, &mut scratch);
    inner.object = ctx.object.clone();
    let sel = label_selector_with(&mut inner, n, path, &|k| {
        (SOURCE_K8S.to_string(), format!("{prefix}{k}"))
    });
    // Only the checks Cilium skips failed: the shape is one the API server
    // accepts.
    let semantic_only = scratch
        .iter()
        .filter(|d| d.severity == crate::source::Severity::Error)
        .all(|d| {
            d.message
                .contains("is not one of In, NotIn, Exists, DoesNotExist")
                || d.message.contains("values must be non-empty for operator")
        });
    let sel = match sel {
        Some(sel) => Some(sel),
        None if !semantic_only => None,
        None => lenient(n, path, prefix).map(|(sel, notes)| {
            for (at, msg) in notes {
                ctx.warn(&at, msg);
            }
            scratch.retain(|d| d.severity != crate::source::Severity::Error);
            sel
        }),
    };
    for d in scratch {
        // A wrong type or unknown field is refused by the CRD schema before
        // Cilium sees the object: it stays an error.
        let schema = d.message.contains(", found ") || d.message.starts_with("unknown field");
        let bad = d.severity == crate::source::Severity::Error && !schema;
        let msg = if bad {
            format!(
                "{}; Cilium cannot build this selector and it matches nothing",
                d.message
            )
        } else {
            d.message
        };
        ctx.diags.push(crate::source::Diagnostic {
            severity: if bad {
                crate::source::Severity::Warning
            } else {
                d.severity
            },
            message: msg,
            ..d
        });
    }
    sel.unwrap_or_else(|| Selector::new(vec![Requirement::new(SOURCE_K8S, "", Op::In, vec![])]))
}

/// A selector read as Cilium's unvalidated `LabelSelectorToRequirements`
/// reads it: `In` with no values never matches, `NotIn` with no values always
/// does, an operator other than In, NotIn, Exists, DoesNotExist is skipped
/// (the term then constrains nothing). `None` when the shape is not one the
/// API server accepts (a term without a string `key` or `operator`, values
/// that are not strings). Returns the notes to warn about.
fn lenient(n: &Node, path: &str, prefix: &str) -> Option<(Selector, Vec<(Node, String)>)> {
    let mut reqs = Vec::new();
    let mut notes = Vec::new();
    let key = |k: &str| format!("{prefix}{k}");
    if let Some(ml) = n.get("matchLabels") {
        match &ml.value {
            Value::Map(items) => {
                for (k, v) in items {
                    reqs.push(Requirement::equals(
                        SOURCE_K8S,
                        &key(k.as_str()?),
                        v.as_str()?,
                    ));
                }
            }
            Value::Null => {}
            _ => return None,
        }
    }
    if let Some(me) = n.get("matchExpressions") {
        let items = match &me.value {
            Value::Seq(items) => items.as_slice(),
            Value::Null => &[],
            _ => return None,
        };
        for (i, e) in items.iter().enumerate() {
            let p = format!("{path}.matchExpressions[{i}]");
            let k = e.get("key")?.as_str()?;
            let op_text = e.get("operator")?.as_str()?;
            let values: Vec<String> = match e.get("values") {
                None => Vec::new(),
                Some(v) if v.is_null() => Vec::new(),
                Some(v) => v
                    .as_seq()?
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()?,
            };
            let Some(op) = Op::parse(op_text) else {
                notes.push((e.clone(), format!("`{p}.operator` `{op_text}` is not one of In, NotIn, Exists, DoesNotExist (the API server does not check it); Cilium skips this term, so it constrains nothing")));
                continue;
            };
            match op {
                Op::In if values.is_empty() => notes.push((e.clone(), format!("`{p}`: In without values; Cilium does not validate the selector and the term matches no identity, so the selector matches nothing"))),
                Op::NotIn if values.is_empty() => notes.push((e.clone(), format!("`{p}`: NotIn without values; Cilium does not validate the selector and the term holds for every identity"))),
                _ => {}
            }
            reqs.push(Requirement::new(SOURCE_K8S, &key(k), op, values));
        }
    }
    Some((Selector::new(reqs), notes))
}

/// Whether a selector node writes any term: Cilium's namespace processing
/// turns only a selector with no `matchLabels` and no `matchExpressions`
/// into "every namespace".
fn writes_terms(n: &Node) -> bool {
    let count = |field: &str| match n.get(field).map(|f| &f.value) {
        Some(Value::Map(items)) => items.len(),
        Some(Value::Seq(items)) => items.len(),
        _ => 0,
    };
    count("matchLabels") + count("matchExpressions") > 0
}

/// Cilium builds ClusterNetworkPolicy selectors without Kubernetes'
/// validation: `values` given to `Exists`/`DoesNotExist` are ignored
/// (conformance `tiers/`: such a subject still selects). Returns the node
/// with those values dropped, and warns about each.
fn without_presence_values(ctx: &mut Ctx, n: &Node, path: &str) -> Node {
    let mut out = n.clone();
    let Value::Map(items) = &mut out.value else {
        return out;
    };
    for (k, v) in items.iter_mut() {
        if k.as_str() != Some("matchExpressions") {
            continue;
        }
        let Value::Seq(exprs) = &mut v.value else {
            continue;
        };
        for (i, e) in exprs.iter_mut().enumerate() {
            let presence = matches!(
                e.get("operator").and_then(Node::as_str),
                Some("Exists" | "DoesNotExist")
            );
            let Value::Map(fields) = &mut e.value else {
                continue;
            };
            if !presence {
                continue;
            }
            if let Some(at) = fields
                .iter()
                .position(|(fk, fv)| fk.as_str() == Some("values") && !fv.is_null())
            {
                let pos = fields.get(at).map(|(_, fv)| fv.clone());
                fields.remove(at);
                if let Some(pos) = pos {
                    ctx.warn(&pos, format!("`{path}.matchExpressions[{i}].values` is ignored: Exists and DoesNotExist take no values (Kubernetes would refuse this selector; Cilium ignores them)"));
                }
            }
        }
    }
    out
}

fn ns_exists() -> Requirement {
    Requirement::new(SOURCE_K8S, POD_NAMESPACE_LABEL, Op::Exists, vec![])
}

/// `namespaces: <selector>`: the identities whose namespace labels match;
/// `{}` is every pod (`io.kubernetes.pod.namespace` exists). As in Cilium,
/// a selector made only of `NotIn`/`DoesNotExist` terms also matches
/// identities without a namespace (world, CIDRs, reserved identities).
pub(super) fn namespaces(ctx: &mut Ctx, n: &Node, path: &str) -> Selector {
    let sel = selector(ctx, n, path, NAMESPACE_LABELS_PREFIX);
    if sel.is_empty() && !writes_terms(n) {
        Selector::new(vec![ns_exists()])
    } else {
        sel
    }
}

/// `pods: {namespaceSelector, podSelector}`.
pub(super) fn pods(ctx: &mut Ctx, n: &Node, path: &str) -> Option<Selector> {
    let f = ctx.fields(n, path, &["namespaceSelector", "podSelector"])?;
    let Some(nsn) = f.get("namespaceSelector") else {
        ctx.error(n, format!("`{path}.namespaceSelector` is required"));
        return None;
    };
    let Some(psn) = f.get("podSelector") else {
        ctx.error(n, format!("`{path}.podSelector` is required"));
        return None;
    };
    let ns = namespaces(ctx, nsn, &format!("{path}.namespaceSelector"));
    let pod = selector(ctx, psn, &format!("{path}.podSelector"), "");
    let mut reqs = ns.reqs;
    reqs.extend(pod.reqs);
    Some(Selector::new(reqs))
}
