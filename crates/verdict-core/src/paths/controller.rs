//! The controller of a route's parent (Cilium's Envoy, an Envoy Gateway
//! proxy, another controller's pods) and how policies select it.

use super::*;

impl<'a> Ctx<'_, 'a> {
    /// The controller of a class, and its pods.
    pub(super) fn controller(
        &self,
        controller_name: &str,
        cilium: bool,
        listener_port: u16,
        gateway: Option<&ObjectRef>,
    ) -> (Controller, Vec<(Party, u16, bool)>) {
        if cilium {
            return (Controller::Cilium, Vec::new());
        }
        // Explicit selection first.
        let inv = self.engine.inv;
        let mut found: Vec<(Party, u16, bool)> = Vec::new();
        let mut service = None;
        let explicit: Vec<&Workload> = inv
            .workloads
            .iter()
            .filter(|w| {
                self.opts.controllers.iter().any(|(ns, sel)| {
                    w.namespace == *ns
                        && sel.matches(&LabelSet::new(
                            w.labels
                                .iter()
                                .map(|(k, v)| Label::new(SOURCE_K8S, k, v))
                                .collect(),
                        ))
                })
            })
            .collect();
        let fronting: Vec<&Service> = inv
            .services
            .iter()
            .filter(|s| s.service_type == "LoadBalancer" || s.service_type == "NodePort")
            .collect();
        let hint = controller_hint(controller_name);
        for s in &fronting {
            let Some(sel) = &s.selector else { continue };
            let pods: Vec<&Workload> = inv
                .workloads
                .iter()
                .filter(|w| w.namespace == s.namespace && selects(sel, w))
                .collect();
            let matches_hint = !hint.is_empty()
                && pods.iter().any(|w| {
                    w.labels.values().any(|v| v.contains(&hint)) || w.object.name.contains(&hint)
                });
            let chosen: Vec<&&Workload> = if explicit.is_empty() {
                if matches_hint {
                    pods.iter().collect()
                } else {
                    continue;
                }
            } else {
                pods.iter()
                    .filter(|w| explicit.iter().any(|e| std::ptr::eq(**w, *e)))
                    .collect()
            };
            if chosen.is_empty() {
                continue;
            }
            let sp = s.ports.iter().find(|p| p.port == listener_port);
            for w in chosen {
                let Some(party) = party_of(self.engine, w) else {
                    continue;
                };
                let port = sp.and_then(|p| w.target_port(&p.target, p.protocol));
                if let Some(port) = port {
                    found.push((party, port, s.external_traffic_policy != "Local"));
                }
            }
            service = Some(format!(
                "{} ({}, externalTrafficPolicy: {})",
                s.object.short(),
                s.service_type,
                s.external_traffic_policy
            ));
        }
        if found.is_empty() && !explicit.is_empty() {
            // Controller pods named explicitly without a fronting Service:
            // the listener port is taken as their container port.
            for w in &explicit {
                if let Some(p) = party_of(self.engine, w) {
                    found.push((p, listener_port, true));
                }
            }
        }
        found.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        found.dedup_by(|a, b| a.0.name == b.0.name);
        if found.is_empty() && explicit.is_empty() && !self.opts.controllers.is_empty() {
            // Named with --controller but not in the input (a Helm release):
            // pods with exactly the given labels, on the listener port.
            for (ns, sel) in &self.opts.controllers {
                let labels: BTreeMap<String, String> = sel
                    .equalities()
                    .map(|(_, k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let name = format!("{ns}/{sel} (from --controller)");
                found.push((
                    self.engine.virtual_pod(ns, &labels, "default", name),
                    listener_port,
                    true,
                ));
            }
        }
        if found.is_empty() && controller_name == ENVOY_GATEWAY_CONTROLLER {
            if let Some(gw) = gateway {
                let proxy = self.envoy_gateway_proxy(gw);
                let port = envoy_gateway_container_port(listener_port);
                let name = proxy.name.clone();
                let selectors = BTreeMap::from([(name.clone(), own_labels(&proxy))]);
                return (
                    Controller::Pods {
                        controller: controller_name.to_string(),
                        pods: vec![name],
                        service: Some(format!(
                            "the LoadBalancer Service Envoy Gateway creates (externalTrafficPolicy: Cluster by default); proxy pods modelled from Envoy Gateway's labels, container port {port}"
                        )),
                        selectors,
                    },
                    vec![(proxy, port, true)],
                );
            }
        }
        if found.is_empty() {
            return (
                Controller::Unknown {
                    controller: controller_name.to_string(),
                },
                found,
            );
        }
        let selectors = found
            .iter()
            .map(|(p, _, _)| (p.name.clone(), self.selecting_labels(p)))
            .collect();
        (
            Controller::Pods {
                controller: controller_name.to_string(),
                pods: found.iter().map(|f| f.0.name.clone()).collect(),
                service,
                selectors,
            },
            found,
        )
    }

    /// The labels that select a controller pod: the selector of the
    /// LoadBalancer/NodePort Service in front of it, else its own labels.
    pub(super) fn selecting_labels(&self, p: &Party) -> (String, BTreeMap<String, String>) {
        let (ns, own) = own_labels(p);
        let inv = self.engine.inv;
        let fronting = inv
            .services
            .iter()
            .filter(|s| {
                s.namespace == ns
                    && (s.service_type == "LoadBalancer" || s.service_type == "NodePort")
            })
            .filter_map(|s| s.selector.clone())
            .find(|sel| sel.iter().all(|(k, v)| own.get(k) == Some(v)));
        (ns, fronting.unwrap_or(own))
    }

    /// The data-plane pods Envoy Gateway runs for a Gateway: created at run
    /// time, so not in manifests; modelled with the labels Envoy Gateway puts
    /// on them, in its default namespace `envoy-gateway-system`.
    pub(super) fn envoy_gateway_proxy(&self, gw: &ObjectRef) -> Party {
        let ns = "envoy-gateway-system";
        let gw_ns = gw.namespace.clone().unwrap_or_default();
        let labels = BTreeMap::from([
            (
                "app.kubernetes.io/component".to_string(),
                "proxy".to_string(),
            ),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "envoy-gateway".to_string(),
            ),
            ("app.kubernetes.io/name".to_string(), "envoy".to_string()),
            (
                "gateway.envoyproxy.io/owning-gateway-name".to_string(),
                gw.name.clone(),
            ),
            (
                "gateway.envoyproxy.io/owning-gateway-namespace".to_string(),
                gw_ns.clone(),
            ),
        ]);
        self.engine.virtual_pod(
            ns,
            &labels,
            &format!("envoy-{gw_ns}-{}", gw.name),
            format!("{ns}/envoy-{gw_ns}-{} (Envoy Gateway proxy)", gw.name),
        )
    }
}
