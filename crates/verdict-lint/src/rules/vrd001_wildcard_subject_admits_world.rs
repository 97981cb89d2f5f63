use crate::context::{entity, is_wildcard_subject};
use crate::{Context, Finding, Level, Meta, Rule};
use verdict_core::policy::{Direction, PeerKind, Subject};

/// ## What it does
/// Flags a policy whose `endpointSelector` is empty (every endpoint of the
/// namespace, or of the cluster for a CiliumClusterwideNetworkPolicy) and
/// that admits `fromEntities: [world]`, `[all]`, or a default-route CIDR
/// (`0.0.0.0/0`, `::/0`).
///
/// ## Why is this bad
/// Every pod it selects becomes reachable from the internet, not only the
/// ingress controller or Cilium's Envoy that should receive outside traffic.
/// One such rule undoes the default deny of every workload it covers.
///
/// ## Example
/// ```yaml
/// apiVersion: cilium.io/v2
/// kind: CiliumClusterwideNetworkPolicy
/// metadata: {name: allow-world}
/// spec:
///   endpointSelector: {}
///   ingress:
///     - fromEntities: [world]
/// ```
///
/// ## How to fix
/// Select only what must be reachable from outside: the ingress controller
/// pods by label (`matchLabels: {app.kubernetes.io/name: ingress-nginx}`), or
/// Cilium's Envoy (`matchExpressions: [{key: reserved:ingress, operator:
/// Exists}]`), and give the ports.
pub struct WildcardSubjectAdmitsWorld;

impl Rule for WildcardSubjectAdmitsWorld {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD001",
            name: "wildcard-subject-admits-world",
            level: Level::Warning,
            summary: "an empty endpointSelector admits world (or all, or 0.0.0.0/0)",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        for (p, r) in cx.rules() {
            let Subject::Endpoints(sel) = &r.subject else {
                continue;
            };
            if !is_wildcard_subject(sel) {
                continue;
            }
            let scope = match &p.object.namespace {
                Some(ns) if p.object.kind != "CiliumClusterwideNetworkPolicy" => {
                    format!("every pod of namespace `{ns}`")
                }
                _ => "every endpoint of the cluster".to_string(),
            };
            for e in r
                .entries
                .iter()
                .filter(|e| e.direction == Direction::Ingress && e.is_allow())
            {
                for peer in &e.peers {
                    let broad = match &peer.kind {
                        PeerKind::Cidr { cidr, except } => {
                            cidr.is_default_route() && except.is_empty()
                        }
                        _ => matches!(entity(peer), Some("world" | "all")),
                    };
                    if broad {
                        out.push(self.meta().finding(
                            e.origin.location.clone(),
                            Some(p.object.clone()),
                            Some(e.origin.path.clone()),
                            format!("`endpointSelector: {{}}` with `{}` makes {scope} reachable from outside the cluster", peer.text),
                            "select only the pods that must receive outside traffic (the ingress controller by label, or reserved:ingress) and list their ports".to_string(),
                        ));
                    }
                }
            }
        }
    }
}
