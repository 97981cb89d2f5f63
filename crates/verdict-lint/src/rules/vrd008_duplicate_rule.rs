use crate::{Context, Finding, Level, Meta, Rule};
use std::collections::BTreeMap;

/// ## What it does
/// Flags a rule item (an `ingress`, `egress`, `ingressDeny` or `egressDeny`
/// entry) that repeats another item with the same subject, direction,
/// peers, ports and L7 rules, in the same policy or in another one.
///
/// ## Why is this bad
/// Duplicates add nothing but make policies harder to review, and they
/// drift: a later change to one copy silently keeps the other in force.
///
/// ## Example
/// ```yaml
/// ingress:
///   - fromEntities: [ingress]
///     toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
///   - fromEntities: [ingress]
///     toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
/// ```
///
/// ## How to fix
/// Delete the repeated item.
pub struct DuplicateRule;

impl Rule for DuplicateRule {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD008",
            name: "duplicate-rule",
            level: Level::Info,
            summary: "a rule item repeats another one exactly",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let mut first: BTreeMap<String, String> = BTreeMap::new();
        for (p, r) in cx.rules() {
            let subject = serde_json::to_string(&r.subject).unwrap_or_default();
            for e in &r.entries {
                if e.peers.is_empty() {
                    continue;
                }
                let key = serde_json::to_string(&(
                    &subject,
                    e.direction,
                    e.deny,
                    e.pass,
                    (e.tier, e.level),
                    &e.peers,
                    &e.ports,
                    &e.l7,
                    &e.requires,
                ))
                .unwrap_or_default();
                match first.get(&key) {
                    Some(orig) => out.push(self.meta().finding(
                        e.origin.location.clone(),
                        Some(p.object.clone()),
                        Some(e.origin.path.clone()),
                        format!("repeats {orig} exactly"),
                        "delete this item".to_string(),
                    )),
                    None => {
                        first.insert(key, e.origin.to_string());
                    }
                }
            }
        }
    }
}
