use crate::{Context, Finding, Level, Meta, Rule};
use verdict_core::engine::Decision;
use verdict_core::paths::Controller;

/// ## What it does
/// Flags route backends that the ingress cannot reach: the second hop
/// (ingress -> backend) of a path from an Ingress or Gateway route is
/// denied, either by the backend's ingress policy (it does not admit
/// `reserved:ingress` or the controller pods on the target port) or by the
/// ingress's own egress policy.
///
/// ## Why is this bad
/// The route is published but its traffic is dropped: users get 503s or
/// resets from the gateway, and nothing in the Ingress or HTTPRoute shows why.
///
/// ## Example
/// ```yaml
/// # HTTPRoute -> Service api:80 -> targetPort 8080
/// spec:
///   endpointSelector: {matchLabels: {app: api}}
///   ingress:
///     - fromEntities: [ingress]
///       toPorts: [{ports: [{port: "80", protocol: TCP}]}]   # the Service port
/// ```
///
/// ## How to fix
/// Admit the ingress on the pod's target port: `fromEntities: [ingress]` with
/// `toPorts: [{ports: [{port: "8080", protocol: TCP}]}]` (for other
/// controllers, `fromEndpoints` with the controller pods' labels and
/// namespace), and let the ingress's egress reach that pod and port.
pub struct RouteBackendNotReachable;

impl Rule for RouteBackendNotReachable {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD005",
            name: "route-backend-not-reachable",
            level: Level::Error,
            summary:
                "a route's backend does not admit the ingress on its target port (a broken path)",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        for ep in &cx.paths.entry_points {
            let admit = match &ep.controller {
                Controller::Cilium => "`fromEntities: [ingress]`".to_string(),
                Controller::Pods { pods, .. } => format!(
                    "`fromEndpoints` selecting the controller pods ({})",
                    pods.join(", ")
                ),
                Controller::Unknown { .. } => continue,
            };
            for r in &ep.routes {
                for b in &r.backends {
                    for p in &b.paths {
                        for h in p.hops.iter().filter(|h| {
                            h.name.contains("-> backend") && h.decision == Decision::Denied
                        }) {
                            for c in h.checks.iter().filter(|c| c.decision == Decision::Denied) {
                                let backend_side = c.side == format!("ingress of {}", p.backend);
                                let (loc, obj, path) = match c.at.first() {
                                    Some(o) => (
                                        o.location.clone(),
                                        Some(o.policy.clone()),
                                        Some(o.path.clone()),
                                    ),
                                    None => (b.location.clone(), Some(r.route.clone()), None),
                                };
                                let help = if backend_side {
                                    format!("admit the ingress on the target port: {admit} with toPorts port \"{}\" protocol {}", c.port, c.protocol)
                                } else {
                                    format!(
                                        "allow the ingress's egress to {} on {}/{}",
                                        p.backend, c.protocol, c.port
                                    )
                                };
                                out.push(self.meta().finding(
                                    loc,
                                    obj,
                                    path,
                                    format!(
                                        "{} -> {} ({}) is broken at {}: {}",
                                        r.route, p.backend, b.service, c.side, c.explanation
                                    ),
                                    help,
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
}
