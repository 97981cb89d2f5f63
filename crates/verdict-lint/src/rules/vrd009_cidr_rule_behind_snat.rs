use crate::{Context, Finding, Level, Meta, Rule};
use std::collections::BTreeSet;
use verdict_core::paths::Controller;
use verdict_core::policy::{Direction, PeerKind};

/// ## What it does
/// Flags `fromCIDR`/`fromCIDRSet` rules on ingress-controller pods whose
/// LoadBalancer/NodePort Service has `externalTrafficPolicy: Cluster`.
///
/// ## Why is this bad
/// With `Cluster`, traffic that arrives on a node without a controller pod is
/// forwarded to another node and SNATed to that node's address (native
/// routing, Cilium's SNAT mode): the controller sees `remote-node`, not the
/// client. A rule on the client's CIDR then only works for clients that
/// happen to hit a node running a controller pod; the others are dropped, or
/// let in by a broader rule meant for nodes.
///
/// ## Example
/// ```yaml
/// # Service ingress-nginx-controller: type LoadBalancer, externalTrafficPolicy: Cluster
/// spec:
///   endpointSelector: {matchLabels: {app.kubernetes.io/name: ingress-nginx}}
///   ingress:
///     - fromCIDRSet: [{cidr: 203.0.113.0/24}]
/// ```
///
/// ## How to fix
/// Set `externalTrafficPolicy: Local` on the Service (or use DSR), so that
/// the client address reaches the pod; or filter clients before the cluster.
pub struct CidrRuleBehindSnat;

impl Rule for CidrRuleBehindSnat {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD009",
            name: "cidr-rule-behind-snat",
            level: Level::Warning,
            summary: "a client CIDR rule on controller pods that receive SNATed traffic (externalTrafficPolicy: Cluster)",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let mut snat_pods = BTreeSet::new();
        for ep in &cx.paths.entry_points {
            let Controller::Pods { pods, .. } = &ep.controller else {
                continue;
            };
            let snat = ep.hops().any(|h| {
                h.name.starts_with("outside -> ingress")
                    && h.checks.iter().any(|c| c.source == "reserved:remote-node")
            });
            if snat {
                snat_pods.extend(pods.iter().cloned());
            }
        }
        let mut seen = BTreeSet::new();
        for name in snat_pods {
            let Ok(party) = cx.engine.party(&name) else {
                continue;
            };
            // The rules selecting the pod: from the index when the pod's
            // identity is known (no selector evaluated per pod and rule).
            let idx = cx.engine.identity_index(&party.identity.labels);
            for (p, r) in cx.rules() {
                let selects = match (idx, &r.subject) {
                    (Some(i), _) => cx.selected(r).binary_search(&i).is_ok(),
                    (None, verdict_core::policy::Subject::Endpoints(s)) => {
                        s.matches(&party.identity.labels)
                    }
                    (None, verdict_core::policy::Subject::Nodes(_)) => false,
                };
                if !selects {
                    continue;
                }
                for e in r
                    .entries
                    .iter()
                    .filter(|e| e.direction == Direction::Ingress && e.is_allow())
                {
                    for peer in &e.peers {
                        if let PeerKind::Cidr { cidr, .. } = &peer.kind {
                            if cidr.is_default_route()
                                || !seen.insert((e.origin.location.clone(), peer.text.clone()))
                            {
                                continue;
                            }
                            out.push(self.meta().finding(
                                e.origin.location.clone(),
                                Some(p.object.clone()),
                                Some(e.origin.path.clone()),
                                format!("`{}` on {name}, whose Service has externalTrafficPolicy: Cluster: traffic through other nodes arrives SNATed as remote-node and never matches this CIDR", peer.text),
                                "set externalTrafficPolicy: Local on the controller's Service (or use DSR) so that client addresses reach the pods".to_string(),
                            ));
                        }
                    }
                }
            }
        }
    }
}
