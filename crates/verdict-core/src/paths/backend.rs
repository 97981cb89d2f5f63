//! The paths from an entry point through one backend Service: the
//! Service's pods grouped by what their checks read, each with its two hops.

use super::*;

impl<'a> Ctx<'_, 'a> {
    /// Paths from an entry point through one backend Service.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn backend(
        &self,
        ctrl: &Controller,
        ctrl_pods: &[(Party, u16, bool)],
        entry_port: u16,
        ns: &str,
        name: &str,
        port: Option<&ServicePortRef>,
        rule: String,
        location: Location,
        mut findings: Vec<String>,
    ) -> BackendPaths {
        let port_text = match port {
            Some(ServicePortRef::Number(n)) => n.to_string(),
            Some(ServicePortRef::Name(n)) => n.clone(),
            None => "?".to_string(),
        };
        let mut out = BackendPaths {
            service: format!("{ns}/{name}:{port_text}"),
            rule,
            location,
            findings: Vec::new(),
            paths: Vec::new(),
            decision: Status::Denied,
            not_checked: None,
        };
        let Some(svc) = self.service(ns, name) else {
            let why = format!("Service {ns}/{name} is not in the input");
            findings.push(why.clone());
            out.findings = findings;
            out.decision = Status::NotChecked;
            out.not_checked = Some(why);
            return out;
        };
        let sp = match port {
            Some(ServicePortRef::Number(n)) => svc.ports.iter().find(|p| p.port == *n),
            Some(ServicePortRef::Name(n)) => svc
                .ports
                .iter()
                .find(|p| p.name.as_deref() == Some(n.as_str())),
            None => {
                findings.push("the backend names no port".to_string());
                None
            }
        };
        let Some(sp) = sp else {
            if port.is_some() {
                let have: Vec<String> = svc.ports.iter().map(|p| p.port.to_string()).collect();
                findings.push(format!(
                    "Service {ns}/{name} has no port {port_text} (it has {})",
                    if have.is_empty() {
                        "none".to_string()
                    } else {
                        have.join(", ")
                    }
                ));
            }
            out.findings = findings;
            return out;
        };
        let Some(sel) = &svc.selector else {
            let why = format!(
                "Service {ns}/{name} has no selector: its endpoints are managed by hand and cannot be analysed"
            );
            findings.push(why.clone());
            out.findings = findings;
            out.decision = Status::NotChecked;
            out.not_checked = Some(why);
            return out;
        };
        let pods: Vec<&Workload> = self
            .workloads
            .get(ns)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|w| selects(sel, w))
            .collect();
        let mut no_pods = None;
        if pods.is_empty() {
            let s: Vec<String> = sel.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let why = format!(
                "Service {ns}/{name} selects no pods or workloads ({}): no backend to check",
                s.join(",")
            );
            findings.push(why.clone());
            no_pods = Some(why);
        }
        let ingress_party = self.engine.party("ingress").ok();
        for w in pods {
            let Some(backend) = party_of(self.engine, w) else {
                let name = w.display_name();
                if self
                    .opts
                    .backend
                    .as_deref()
                    .is_some_and(|b| !name.contains(b))
                {
                    continue;
                }
                let why = format!(
                    "{name} could not be resolved to an endpoint: no hop to it can be checked"
                );
                out.paths.push(PodPath {
                    backend: name,
                    target_port: None,
                    decision: Status::NotChecked,
                    not_checked: Some(why.clone()),
                    hops: Vec::new(),
                    findings: vec![why],
                    class: None,
                });
                continue;
            };
            if self
                .opts
                .backend
                .as_deref()
                .is_some_and(|b| !backend.name.contains(b))
            {
                continue;
            }
            let mut pf = Vec::new();
            let target = w.target_port(&sp.target, sp.protocol);
            if let (None, TargetPort::Name(n)) = (target, &sp.target) {
                // Kubernetes matches the name and the Service port's protocol.
                let other = w
                    .service_ports()
                    .any(|cp| cp.name.as_deref() == Some(n.as_str()));
                let proto = if other {
                    format!("{} ", sp.protocol)
                } else {
                    String::new()
                };
                pf.push(format!(
                    "{} has no {proto}container port named `{n}` (targetPort of {ns}/{name})",
                    backend.name
                ));
            }
            let mut hops = Vec::new();
            let mut not_checked = None;
            if let Some(t) = target {
                match ctrl {
                    Controller::Cilium => {
                        if let Some(ing) = &ingress_party {
                            let port = match self.opts.hop1_port {
                                Hop1Port::Listener => entry_port,
                                Hop1Port::Backend => t,
                            };
                            hops.push(self.cilium_hop1(ing, port, &backend, t));
                            hops.push(self.hop2(ing, &backend, t));
                        }
                    }
                    Controller::Pods { .. } => {
                        for (cp, cport, etp_cluster) in ctrl_pods {
                            let mut h1 = self.pod_hop1(cp, *cport, *etp_cluster);
                            h1.name = format!("outside -> ingress ({})", cp.name);
                            hops.push(h1);
                            let mut h2 = self.hop2(cp, &backend, t);
                            h2.name = format!("ingress ({}) -> backend", cp.name);
                            hops.push(h2);
                        }
                    }
                    Controller::Unknown { controller } => {
                        let why = format!(
                            "the pods of controller `{controller}` are not in the input: hops through them cannot be checked (name them with --controller NS/LABEL=VALUE)"
                        );
                        for name in ["outside -> ingress", "ingress -> backend"] {
                            hops.push(Hop {
                                name: name.to_string(),
                                decision: Status::NotChecked,
                                checks: Vec::new(),
                                notes: vec![why.clone()],
                            });
                        }
                        pf.push(why.clone());
                        not_checked = Some(why);
                    }
                }
            }
            if target.is_some() && hops.is_empty() && not_checked.is_none() {
                not_checked = Some("the ingress identity could not be resolved".to_string());
            }
            // Findings that are not a reason to leave the path unchecked
            // (a missing named port) deny it.
            let refused = pf.iter().any(|f| Some(f) != not_checked.as_ref());
            let decision = if refused || target.is_none() {
                Status::Denied
            } else if hops.is_empty() {
                Status::NotChecked
            } else {
                Status::all(hops.iter().map(|h| h.decision))
            };
            let class = self.engine.known_index(&backend.identity).map(|identity| {
                let key = ClassKey {
                    identity,
                    enforced: backend.enforced,
                    host_network: w.host_network,
                    target,
                    ports: w.ports.clone(),
                    namespace: w.namespace.clone(),
                    services: self
                        .engine
                        .services_in(&w.namespace)
                        .enumerate()
                        .filter(|(_, s)| {
                            s.selector
                                .as_ref()
                                .is_some_and(|sel| !sel.is_empty() && selects(sel, w))
                        })
                        .map(|(i, _)| i)
                        .collect(),
                };
                let mut classes = self.classes.borrow_mut();
                let next = classes.len();
                *classes.entry(key).or_insert(next)
            });
            out.paths.push(PodPath {
                class,
                backend: backend.name.clone(),
                target_port: target,
                decision,
                not_checked: if decision == Status::NotChecked {
                    not_checked
                } else {
                    None
                },
                hops,
                findings: pf,
            });
        }
        out.findings = findings;
        out.decision = if out.paths.is_empty() {
            if no_pods.is_some() {
                Status::NotChecked
            } else {
                Status::Denied
            }
        } else if out.findings.is_empty() {
            Status::all(out.paths.iter().map(|p| p.decision))
        } else {
            Status::Denied
        };
        if out.decision == Status::NotChecked {
            out.not_checked =
                no_pods.or_else(|| out.paths.iter().find_map(|p| p.not_checked.clone()));
        }
        out
    }
}
