//! The paths of one entry point: a Gateway's listeners with the routes
//! attached to them, or an Ingress.

use super::threads::Part;
use super::*;

/// The entry points of one Gateway: a listener each, with the routes
/// attached to it.
pub(super) fn gateway(ctx: &Ctx, gw: &Gateway, out: &mut Part) {
    let (routing, opts) = (ctx.routing, ctx.opts);
    let Part {
        entry_points,
        findings,
        attached_somewhere,
        ..
    } = out;
    let (controller_name, cilium, class_note) = match routing.gateway_classes.get(&gw.class) {
        Some(c) => (c.controller.clone(), c.controller == CILIUM_GATEWAY_CONTROLLER, None),
        None if gw.class == "cilium" => (
            CILIUM_GATEWAY_CONTROLLER.to_string(),
            true,
            Some(format!("GatewayClass `cilium` is not in the input; assumed to be Cilium's ({CILIUM_GATEWAY_CONTROLLER})")),
        ),
        None => (
            gw.class.clone(),
            false,
            Some(format!("GatewayClass `{}` is not in the input; its controller is unknown", gw.class)),
        ),
    };
    if let Some(n) = class_note {
        findings.push(format!("{} ({}): {n}", gw.object, gw.location));
    }
    for l in &gw.listeners {
        ctx.proto.set(if l.protocol == "UDP" {
            Protocol::Udp
        } else {
            Protocol::Tcp
        });
        let (controller, ctrl_pods) =
            ctx.controller(&controller_name, cilium, l.port, Some(&gw.object));
        let mut routes = Vec::new();
        for r in routing.routes.iter().filter(|r| {
            r.parents.iter().any(|p| {
                p.name == gw.object.name
                    && p.namespace == gw.object.namespace.clone().unwrap_or_default()
            })
        }) {
            let problem = ctx.attach_problem(gw, l, r);
            let attached = problem.is_none();
            // A route attaches to a Gateway through any one listener:
            // failing on the others is normal. It is shown under a
            // listener it failed on only when it attaches to none of the
            // Gateway's listeners and its parentRef aims at this one.
            if !attached {
                let anywhere = gw
                    .listeners
                    .iter()
                    .any(|x| ctx.attach_problem(gw, x, r).is_none());
                let aimed = r.parents.iter().any(|p| {
                    p.name == gw.object.name
                        && p.section.as_ref().is_none_or(|sn| *sn == l.name)
                        && p.port.is_none_or(|port| port == l.port)
                });
                if anywhere || !aimed {
                    continue;
                }
            }
            *attached_somewhere.entry(r.object.clone()).or_default() |= attached;
            let route_ns = r.object.namespace.clone().unwrap_or_default();
            let mut rp = RoutePaths {
                route: r.object.clone(),
                location: r.location.clone(),
                attached,
                findings: problem.into_iter().collect(),
                hostnames: r.hostnames.clone(),
                backends: Vec::new(),
            };
            if attached {
                for (ri, rule) in r.rules.iter().enumerate() {
                    for b in &rule.backends {
                        if !included(opts, &r.object, &b.namespace) {
                            continue;
                        }
                        let mut pre = Vec::new();
                        if !(b.kind == "Service" && (b.group.is_empty() || b.group == "core")) {
                            pre.push(format!(
                                "backend kind {}/{} is not a Service and is not analysed",
                                b.group, b.kind
                            ));
                        }
                        if b.namespace != route_ns && !ctx.grant_allows(r, &b.namespace, &b.name) {
                            pre.push(format!(
                                "backend {}/{} is in another namespace and no ReferenceGrant in `{}` permits {} from `{route_ns}`: Gateway API refuses the reference",
                                b.namespace, b.name, b.namespace, r.object.kind
                            ));
                        }
                        if b.weight == 0 {
                            pre.push("weight 0: this backend receives no traffic".to_string());
                        }
                        let port = b.port.map(ServicePortRef::Number);
                        let m = if rule.matches.is_empty() {
                            "any".to_string()
                        } else {
                            rule.matches.join(" | ")
                        };
                        let refused = pre.iter().any(|p| p.contains("Gateway API refuses"));
                        let other_kind = pre.iter().find(|p| p.contains("not a Service"));
                        let mut bp = if refused || other_kind.is_some() {
                            BackendPaths {
                                service: format!("{}/{}", b.namespace, b.name),
                                rule: format!("rules[{ri}] {m}"),
                                location: b.location.clone(),
                                findings: Vec::new(),
                                paths: Vec::new(),
                                decision: if refused {
                                    Status::Denied
                                } else {
                                    Status::NotChecked
                                },
                                not_checked: if refused { None } else { other_kind.cloned() },
                            }
                        } else {
                            ctx.backend(
                                &controller,
                                &ctrl_pods,
                                l.port,
                                &b.namespace,
                                &b.name,
                                port.as_ref(),
                                format!("rules[{ri}] {m}"),
                                b.location.clone(),
                                Vec::new(),
                            )
                        };
                        // A refused reference or weight 0 denies the
                        // backend, whatever its paths.
                        let denies = pre.iter().any(|p| !p.contains("not a Service"));
                        pre.append(&mut bp.findings);
                        bp.findings = pre;
                        if denies {
                            bp.decision = Status::Denied;
                            bp.not_checked = None;
                        }
                        if keep(opts, &bp) {
                            rp.backends.push(bp);
                        }
                    }
                }
            }
            if included(opts, &r.object, "") || !rp.backends.is_empty() {
                routes.push(rp);
            }
        }
        entry_points.push(EntryPoint {
            object: gw.object.clone(),
            location: l.location.clone(),
            listener: l.name.clone(),
            port: l.port,
            protocol: l.protocol.clone(),
            hostname: l.hostname.clone(),
            controller,
            routes,
        });
    }
}

/// The entry points of one Ingress: `http`, and `https` with TLS.
pub(super) fn ingress(ctx: &Ctx, ing: &Ingress, out: &mut Part) {
    let (routing, opts) = (ctx.routing, ctx.opts);
    let Part {
        entry_points,
        findings,
        ..
    } = out;
    let class = ing.class.clone().or_else(|| {
        routing
            .ingress_classes
            .values()
            .find(|c| c.is_default)
            .map(|c| c.name.clone())
    });
    let (controller_name, cilium) = match class
        .as_deref()
        .and_then(|c| routing.ingress_classes.get(c))
    {
        Some(c) => (
            c.controller.clone(),
            c.controller == CILIUM_INGRESS_CONTROLLER,
        ),
        None => match class.as_deref() {
            Some("cilium") => (CILIUM_INGRESS_CONTROLLER.to_string(), true),
            Some(other) => (other.to_string(), false),
            None => {
                findings.push(format!(
                    "{} ({}) has no ingressClassName and no default IngressClass is in the input; assumed to be served by Cilium",
                    ing.object, ing.location
                ));
                (CILIUM_INGRESS_CONTROLLER.to_string(), true)
            }
        },
    };
    let mut ports = vec![("http", 80u16)];
    if ing.tls {
        ports.push(("https", 443));
    }
    for (lname, port) in ports {
        ctx.proto.set(Protocol::Tcp);
        let (controller, ctrl_pods) = ctx.controller(&controller_name, cilium, port, None);
        let ns = ing.object.namespace.clone().unwrap_or_default();
        if !included(opts, &ing.object, &ns) {
            continue;
        }
        let mut rp = RoutePaths {
            route: ing.object.clone(),
            location: ing.location.clone(),
            attached: true,
            findings: Vec::new(),
            hostnames: ing
                .paths
                .iter()
                .filter_map(|p| p.host.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            backends: Vec::new(),
        };
        for p in &ing.paths {
            let rule = format!("{}{}", p.host.as_deref().unwrap_or("*"), p.path);
            let bp = ctx.backend(
                &controller,
                &ctrl_pods,
                port,
                &ns,
                &p.service,
                Some(&p.port),
                rule,
                p.location.clone(),
                Vec::new(),
            );
            if keep(opts, &bp) {
                rp.backends.push(bp);
            }
        }
        entry_points.push(EntryPoint {
            object: ing.object.clone(),
            location: ing.location.clone(),
            listener: lname.to_string(),
            port,
            protocol: if lname == "https" {
                "HTTPS".into()
            } else {
                "HTTP".into()
            },
            hostname: None,
            controller,
            routes: vec![rp],
        });
    }
}
