use crate::context::{capped, SHOWN};
use crate::{Context, Finding, Level, Meta, Rule};
use std::collections::HashMap;
use verdict_core::engine::Decision;
use verdict_core::paths::Controller;
use verdict_core::source::Location;

/// ## What it does
/// Flags route backends that the ingress cannot reach: the second hop
/// (ingress -> backend) of a path from an Ingress or Gateway route is
/// denied, either by the backend's ingress policy (it does not admit
/// `reserved:ingress` or the controller pods on the target port) or by the
/// ingress's own egress policy.
///
/// The pods of one route backend (a Service's replicas) that fail for the
/// same reason are one finding: it names the first pod and ends with
/// `the same for N more backend pods of SERVICE (first three, ...)`. A pod
/// that fails for another reason (another rule denies it) gets its own.
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

/// Pods of one backend denied for the same reason.
struct Group {
    finding: Finding,
    /// The other pods, in path order.
    more: Vec<String>,
}

impl Group {
    fn finish(mut self, service: &str) -> Finding {
        if !self.more.is_empty() {
            let n = self.more.len();
            let shown: Vec<&str> = self.more.iter().take(3).map(String::as_str).collect();
            let rest = if n > 3 { ", ..." } else { "" };
            self.finding.message.push_str(&format!(
                "; the same for {} of {service} ({}{rest})",
                verdict_core::text::plural(n, "more backend pod", "more backend pods"),
                shown.join(", ")
            ));
        }
        self.finding
    }
}

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
                    capped(
                        &pods.iter().take(SHOWN).cloned().collect::<Vec<_>>(),
                        pods.len()
                    )
                ),
                Controller::Unknown { .. } => continue,
            };
            for r in &ep.routes {
                for b in &r.backends {
                    // The pods of one backend fail alike (replicas): one
                    // finding per cause, naming the first pod and how many
                    // more fail the same way.
                    let mut groups: Vec<Group> = Vec::new();
                    let mut by_key: HashMap<(Location, String, String), usize> = HashMap::new();
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
                                let message = format!(
                                    "{} -> {} ({}) is broken at {}: {}",
                                    r.route, p.backend, b.service, c.side, c.explanation
                                );
                                // The same cause for another pod reads the
                                // same once the pod's own name is set aside.
                                let key = (
                                    loc.clone(),
                                    format!("{obj:?} {path:?} {message}").replace(&p.backend, "\0"),
                                    help.replace(&p.backend, "\0"),
                                );
                                match by_key.get(&key) {
                                    Some(&g) => {
                                        if let Some(g) = groups.get_mut(g) {
                                            g.more.push(p.backend.clone());
                                        }
                                    }
                                    None => {
                                        by_key.insert(key, groups.len());
                                        groups.push(Group {
                                            finding: self
                                                .meta()
                                                .finding(loc, obj, path, message, help),
                                            more: Vec::new(),
                                        });
                                    }
                                }
                            }
                        }
                    }
                    for g in groups {
                        out.push(g.finish(&b.service));
                    }
                }
            }
        }
    }
}
