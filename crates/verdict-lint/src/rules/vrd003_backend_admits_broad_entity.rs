use crate::context::{capped, entity, SHOWN};
use crate::{Context, Finding, Level, Meta, Rule};
use verdict_core::policy::Direction;

/// ## What it does
/// Flags ingress rules on route backends (pods that an Ingress or a Gateway
/// route sends traffic to) that admit `fromEntities: [cluster]` or `[all]`.
///
/// ## Why is this bad
/// The backend only needs traffic from the ingress (Cilium's Envoy, identity
/// `reserved:ingress`, or the controller pods). `cluster` admits every pod,
/// every node and the ingress; `all` admits the internet as well. Lateral
/// movement from any compromised pod reaches the backend.
///
/// ## Example
/// ```yaml
/// spec:
///   endpointSelector: {matchLabels: {app: api}}
///   ingress:
///     - fromEntities: [cluster]
/// ```
///
/// ## How to fix
/// Admit only the ingress on the target port: `fromEntities: [ingress]` for
/// Cilium Ingress / Gateway API, or `fromEndpoints` with the controller pods'
/// labels and namespace, with `toPorts` listing the pod's port.
pub struct BackendAdmitsBroadEntity;

impl Rule for BackendAdmitsBroadEntity {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD003",
            name: "backend-admits-broad-entity",
            level: Level::Warning,
            summary:
                "a route backend admits the cluster or all entity where only the ingress is needed",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let backends = cx.backend_identities();
        if backends.is_empty() {
            return;
        }
        for (p, r) in cx.rules() {
            let selected = cx.selected(r);
            let Some((first, routes)) = selected
                .iter()
                .find_map(|i| backends.get(i).map(|rt| (*i, rt)))
            else {
                continue;
            };
            for e in r
                .entries
                .iter()
                .filter(|e| e.direction == Direction::Ingress && e.is_allow())
            {
                for peer in &e.peers {
                    if let Some(ent @ ("cluster" | "all")) = entity(peer) {
                        out.push(self.meta().finding(
                            e.origin.location.clone(),
                            Some(p.object.clone()),
                            Some(e.origin.path.clone()),
                            format!(
                                "{} is a backend of {} and admits `fromEntities: {ent}`",
                                cx.names_of_capped(first),
                                capped(
                                    &routes.iter().take(SHOWN).cloned().collect::<Vec<_>>(),
                                    routes.len()
                                )
                            ),
                            "admit only the ingress on the target port: `fromEntities: [ingress]` (Cilium Ingress / Gateway API) or the controller pods by label and namespace".to_string(),
                        ));
                    }
                }
            }
        }
    }
}
