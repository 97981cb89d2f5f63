//! `verdict generate --merge`: generated items appended to the existing
//! policy of the same kind, namespace and endpointSelector.

use super::Generated;
use crate::ingest::Inventory;
use std::collections::BTreeMap;

/// Merges each generated object into the existing policy of the same kind,
/// namespace and endpointSelector, when there is one with a single `spec`:
/// the generated `ingress`/`egress` items it lacks are appended, and the
/// existing object is written back once (as JSON, which is YAML) with
/// everything else it had. Objects without such a policy stay as they are.
pub fn merge(inv: &Inventory, objects: Vec<Generated>) -> Vec<Generated> {
    // Output slots in order; merged targets accumulate in one slot each.
    let mut out: Vec<Generated> = Vec::new();
    let mut merged: BTreeMap<usize, (usize, serde_json::Value)> = BTreeMap::new();
    for g in objects {
        let Some((target, gen_json)) = merge_target(inv, &g) else {
            out.push(g);
            continue;
        };
        let Some(existing) = inv.policies.get(target) else {
            continue;
        };
        let slot = match merged.get(&target) {
            Some((slot, _)) => *slot,
            None => {
                let json = existing
                    .source
                    .as_ref()
                    .map(crate::yaml::Node::to_json)
                    .unwrap_or_default();
                out.push(Generated {
                    kind: existing.object.kind.clone(),
                    namespace: existing.object.namespace.clone(),
                    name: existing.object.name.clone(),
                    serves: Vec::new(),
                    yaml: String::new(),
                });
                merged.insert(target, (out.len() - 1, json));
                out.len() - 1
            }
        };
        if let Some((_, json)) = merged.get_mut(&target) {
            append_items(json, &gen_json);
        }
        if let Some(o) = out.get_mut(slot) {
            for s in g.serves {
                if !o.serves.contains(&s) {
                    o.serves.push(s);
                }
            }
        }
    }
    for (target, (slot, json)) in merged {
        let (Some(existing), Some(o)) = (inv.policies.get(target), out.get_mut(slot)) else {
            continue;
        };
        let mut yaml = format!(
            "# Merged by verdict generate into {} ({}): the ingress/egress items it needs were appended. Serves:\n",
            existing.object, existing.location
        );
        for s in &o.serves {
            yaml.push_str(&format!("#   {s}\n"));
        }
        yaml.push_str(&serde_json::to_string_pretty(&json).unwrap_or_default());
        yaml.push('\n');
        o.yaml = yaml;
    }
    out
}

/// The existing policy (its index) a generated object merges into, and the
/// generated object as JSON.
fn merge_target(inv: &Inventory, g: &Generated) -> Option<(usize, serde_json::Value)> {
    let mut tmp = Inventory::new(inv.cluster.clone());
    tmp.load_text("<generated>", &g.yaml);
    let gen_policy = tmp.policies.first()?;
    let gen_rule = gen_policy.rules.first()?;
    let gen_json = gen_policy.source.as_ref()?.to_json();
    let target = inv.policies.iter().position(|p| {
        p.rejected.is_none()
            && p.object.kind == gen_policy.object.kind
            && p.object.namespace == gen_policy.object.namespace
            && p.rules.len() == 1
            && p.rules
                .first()
                .is_some_and(|r| r.subject == gen_rule.subject)
            && p.source.as_ref().is_some_and(|n| n.get("spec").is_some())
    })?;
    Some((target, gen_json))
}

fn append_items(json: &mut serde_json::Value, gen_json: &serde_json::Value) {
    let Some(spec) = json.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    for section in ["ingress", "egress"] {
        let Some(items) = gen_json
            .get("spec")
            .and_then(|s| s.get(section))
            .and_then(|v| v.as_array())
        else {
            continue;
        };
        let list = spec
            .entry(section)
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(arr) = list.as_array_mut() {
            for item in items {
                if !arr.contains(item) {
                    arr.push(item.clone());
                }
            }
        }
    }
}
