use crate::{Context, Finding, Level, Meta, Rule};
use std::collections::BTreeSet;
use verdict_core::policy::{Direction, PortSel};

/// ## What it does
/// Flags an ingress rule that allows a Service's `port` on pods that listen
/// on a different `targetPort` (and not on the Service port).
///
/// ## Why is this bad
/// Cilium enforces policy on the pod, after the Service's address and port
/// have been translated: traffic arrives on the target port. A rule on the
/// Service port never matches it, so the traffic the rule was meant for is
/// denied. This is the most common reason a backend is unreachable through
/// a gateway.
///
/// ## Example
/// ```yaml
/// # Service api: port 80 -> targetPort 8080
/// spec:
///   endpointSelector: {matchLabels: {app: api}}
///   ingress:
///     - fromEntities: [ingress]
///       toPorts: [{ports: [{port: "80", protocol: TCP}]}]
/// ```
///
/// ## How to fix
/// Use the target port (`"8080"`), or the container port's name.
pub struct ServicePortNotTargetPort;

impl Rule for ServicePortNotTargetPort {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD006",
            name: "service-port-not-target-port",
            level: Level::Warning,
            summary:
                "a rule allows the Service port where the pods listen on a different targetPort",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let mut seen = BTreeSet::new();
        // Indexes built once (linear in the input): workloads by namespace,
        // and the rules selecting each identity.
        let mut by_ns: std::collections::HashMap<&str, Vec<usize>> =
            std::collections::HashMap::new();
        for (wi, w) in cx.inv.workloads.iter().enumerate() {
            by_ns.entry(w.namespace.as_str()).or_default().push(wi);
        }
        let mut rules_of: std::collections::HashMap<usize, Vec<_>> =
            std::collections::HashMap::new();
        for (p, r) in cx.rules() {
            if !r
                .entries
                .iter()
                .any(|e| e.direction == Direction::Ingress && e.is_allow() && e.ports.is_some())
            {
                continue;
            }
            for &id in cx.selected(r).iter() {
                rules_of.entry(id).or_default().push((p, r));
            }
        }
        for svc in &cx.inv.services {
            let Some(sel) = &svc.selector else { continue };
            let members: Vec<usize> = by_ns
                .get(svc.namespace.as_str())
                .map(|ws| {
                    ws.iter()
                        .copied()
                        .filter(|&wi| {
                            cx.inv.workloads.get(wi).is_some_and(|w| {
                                sel.iter().all(|(k, v)| w.labels.get(k) == Some(v))
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            for sp in &svc.ports {
                // Replicas (same identity, same ports) are judged once: the
                // finding names the first of them.
                let mut judged = std::collections::HashSet::new();
                for &wi in &members {
                    let Some(w) = cx.inv.workloads.get(wi) else {
                        continue;
                    };
                    let ports: Vec<(Option<&str>, u16)> = w
                        .ports
                        .iter()
                        .map(|c| (c.name.as_deref(), c.port))
                        .collect();
                    let identity = cx
                        .engine
                        .endpoints
                        .get(wi)
                        .cloned()
                        .flatten()
                        .map(|e| e.identity);
                    if !judged.insert((identity, ports)) {
                        continue;
                    }
                    let Some(target) = w.target_port(&sp.target, sp.protocol) else {
                        continue;
                    };
                    if target == sp.port || w.service_ports().any(|c| c.port == sp.port) {
                        continue;
                    }
                    let Some(ep) = cx.engine.endpoints.get(wi).cloned().flatten() else {
                        continue;
                    };
                    for (p, r) in rules_of.get(&ep.identity).map(Vec::as_slice).unwrap_or(&[]) {
                        for e in r
                            .entries
                            .iter()
                            .filter(|e| e.direction == Direction::Ingress && e.is_allow())
                        {
                            let Some(ports) = &e.ports else { continue };
                            let names_service_port = ports.iter().any(|pr| {
                                pr.protocol.covers(sp.protocol)
                                    && pr.port
                                        == PortSel::Range {
                                            from: sp.port,
                                            to: sp.port,
                                        }
                            });
                            let covers_target = ports.iter().any(|pr| match &pr.port {
                                PortSel::Range { from, to } => *from <= target && target <= *to,
                                PortSel::Named(n) => w.ports.iter().any(|c| {
                                    c.port == target && c.name.as_deref() == Some(n.as_str())
                                }),
                            });
                            if names_service_port
                                && !covers_target
                                && seen.insert((e.origin.location.clone(), svc.object.clone()))
                            {
                                out.push(self.meta().finding(
                                    e.origin.location.clone(),
                                    Some(p.object.clone()),
                                    Some(e.origin.path.clone()),
                                    format!(
                                        "allows port {} (the port of Service {}), but {} listens on targetPort {target}: policy is enforced after the Service's port is translated, so this rule never matches that traffic",
                                        sp.port,
                                        svc.object.short(),
                                        w.display_name()
                                    ),
                                    format!("allow port \"{target}\" (the targetPort) instead of \"{}\"", sp.port),
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
}
