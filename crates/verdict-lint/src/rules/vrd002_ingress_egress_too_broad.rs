use crate::context::{capped, entity, SHOWN};
use verdict_core::labels::POD_NAMESPACE_LABEL;
use verdict_core::selector::{Op, Selector};

/// `toEndpoints: [{}]` in a clusterwide policy: every pod of every namespace.
fn selects_every_pod(sel: &Selector) -> bool {
    sel.is_empty()
        || (sel.reqs.len() == 1
            && sel
                .reqs
                .iter()
                .all(|r| r.key == POD_NAMESPACE_LABEL && r.op == Op::Exists))
}
use crate::{Context, Finding, Level, Meta, Rule};
use std::collections::BTreeSet;
use verdict_core::policy::{Direction, PeerKind};

/// ## What it does
/// Flags egress rules of the ingress (Cilium's Envoy, `reserved:ingress`,
/// or ingress-controller pods) that allow `toEntities: [cluster]`,
/// `[world]`, `[all]`, `0.0.0.0/0`, or `toEndpoints: [{}]` in a clusterwide
/// policy (every pod of every namespace).
///
/// ## Why is this bad
/// The ingress is exposed to the internet. If it may reach every pod of the
/// cluster (or the internet), a compromised or misconfigured proxy, or a route
/// added by anyone who can create an HTTPRoute, reaches far more than the
/// backends it serves.
///
/// ## Example
/// ```yaml
/// spec:
///   endpointSelector:
///     matchExpressions: [{key: reserved:ingress, operator: Exists}]
///   egress:
///     - toEntities: [cluster]
/// ```
///
/// ## How to fix
/// Allow egress only to the route backends, by their labels and namespaces,
/// on their target ports (`verdict generate` writes these rules), e.g.
/// `toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: shop, app: api}}]`
/// with `toPorts: [{ports: [{port: "8080", protocol: TCP}]}]`.
pub struct IngressEgressTooBroad;

impl Rule for IngressEgressTooBroad {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD002",
            name: "ingress-egress-too-broad",
            level: Level::Warning,
            summary: "the ingress identity or controller pods may reach the whole cluster or world",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let ingress = cx.ingress_identities();
        // reserved:ingress matters when Cilium serves a route, or when the
        // rule names it explicitly.
        let cilium_routes = cx
            .paths
            .entry_points
            .iter()
            .any(|e| matches!(e.controller, verdict_core::paths::Controller::Cilium));
        let ingress_idx = cx
            .engine
            .party("ingress")
            .ok()
            .and_then(|p| cx.engine.identity_index(&p.identity.labels));
        if ingress.is_empty() {
            return;
        }
        // The route backends, named once when a first finding needs them:
        // the first few and how many more (`verdict paths` lists them all).
        let mut hint: Option<String> = None;
        let hint_text = || {
            let backends: BTreeSet<String> = cx
                .backend_identities()
                .keys()
                .flat_map(|&i| cx.names_of(i))
                .collect();
            if backends.is_empty() {
                String::new()
            } else {
                let shown: Vec<String> = backends.iter().take(SHOWN).cloned().collect();
                format!(
                    " (the route backends here: {})",
                    capped(&shown, backends.len())
                )
            }
        };
        for (p, r) in cx.rules() {
            let names_ingress = matches!(&r.subject, verdict_core::policy::Subject::Endpoints(s) if s.has_key(&["reserved", "any"], "ingress"));
            let selected = cx.selected(r);
            // The first selected identity that receives outside traffic
            // (both sets sorted; the ingress identities are few).
            let Some(&first) = ingress.iter().find(|i| {
                selected.binary_search(*i).is_ok()
                    && (Some(**i) != ingress_idx || cilium_routes || names_ingress)
            }) else {
                continue;
            };
            let who = cx.names_of_capped(first);
            for e in r
                .entries
                .iter()
                .filter(|e| e.direction == Direction::Egress && e.is_allow())
            {
                for peer in &e.peers {
                    let broad = match &peer.kind {
                        PeerKind::Selectors { selectors } => {
                            matches!(entity(peer), Some("cluster" | "world" | "all"))
                                || (peer.from_endpoints && selectors.iter().any(selects_every_pod))
                        }
                        PeerKind::Cidr { cidr, .. } => cidr.is_default_route(),
                        PeerKind::Unevaluable { .. } => false,
                    };
                    if broad {
                        let hint = hint.get_or_insert_with(&hint_text);
                        out.push(self.meta().finding(
                            e.origin.location.clone(),
                            Some(p.object.clone()),
                            Some(e.origin.path.clone()),
                            format!("{who} receives outside traffic and `{}` lets it reach far more than its backends", peer.text),
                            format!("allow egress only to the route backends, by label and namespace, on their target ports{hint}"),
                        ));
                    }
                }
            }
        }
    }
}
