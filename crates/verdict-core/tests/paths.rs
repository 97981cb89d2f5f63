#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict paths` on small scenarios: attachment rules, service resolution,
//! the two enforcement points, SNAT sources, in-cluster clients.

use verdict_core::engine::{Decision, Engine};
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::paths::{paths, Hop1Port, PathOptions, PathsReport, PodPath};
use verdict_core::routes::Routing;

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {gateway-access: "true"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Namespace
metadata: {name: infra}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: cilium}
spec: {controllerName: io.cilium/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: cilium
  listeners:
    - name: web
      port: 443
      protocol: HTTPS
      hostname: "*.example.com"
      allowedRoutes:
        namespaces:
          from: Selector
          selector: {matchLabels: {gateway-access: "true"}}
"#;

fn run(extra: &str, opts: &PathOptions) -> PathsReport {
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.load_text("app.yaml", APP);
    inv.load_text("extra.yaml", extra);
    inv.complete_namespaces();
    let errors: Vec<_> = inv
        .diagnostics
        .iter()
        .filter(|d| d.severity == verdict_core::source::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let routing = Routing::from_inventory(&inv);
    assert!(routing.diagnostics.is_empty(), "{:?}", routing.diagnostics);
    let engine = Engine::new(&inv);
    paths(&engine, &routing, opts)
}

fn route(ns: &str, host: &str, backend_ns: &str, port: u16) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: {ns}}}
spec:
  parentRefs: [{{name: gw, namespace: infra}}]
  hostnames: ["{host}"]
  rules:
    - backendRefs: [{{name: web, namespace: {backend_ns}, port: {port}}}]
"#
    )
}

fn all_paths(r: &PathsReport) -> Vec<&PodPath> {
    r.entry_points
        .iter()
        .flat_map(|e| e.routes.iter())
        .flat_map(|r| r.backends.iter())
        .flat_map(|b| b.paths.iter())
        .collect()
}

fn findings(r: &PathsReport) -> String {
    let mut out = r.findings.join("\n");
    for e in &r.entry_points {
        for rt in &e.routes {
            out.push_str(&rt.findings.join("\n"));
            for b in &rt.backends {
                out.push_str(&b.findings.join("\n"));
                for p in &b.paths {
                    out.push_str(&p.findings.join("\n"));
                }
            }
        }
    }
    out
}

const POLICIES: &str = r#"
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: gateway}
spec:
  endpointSelector: {matchExpressions: [{key: reserved:ingress, operator: Exists}]}
  ingress:
    - fromEntities: [world]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  egress:
    - toEntities: [cluster]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
    - fromEntities: [ingress]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
"#;

#[test]
fn allowed_path_resolves_named_target_port_and_both_hops() {
    let r = run(
        &(route("shop", "a.example.com", "shop", 80) + POLICIES),
        &PathOptions::default(),
    );
    let p = all_paths(&r);
    assert_eq!(p.len(), 1, "{}", r.to_text());
    assert_eq!(p[0].backend, "shop/web-0");
    assert_eq!(p[0].target_port, Some(8080));
    assert_eq!(p[0].decision, Decision::Allowed, "{}", r.to_text());
    assert_eq!(p[0].hops.len(), 2);
    // hop 1 on the listener port (current Envoy), hop 2 on the target port
    assert_eq!(p[0].hops[0].checks[0].port, 443);
    assert_eq!(p[0].hops[1].checks[1].port, 8080);
    assert_eq!(r.summary.allowed, 1);
}

#[test]
fn older_envoy_checks_hop1_on_the_backend_port() {
    let opts = PathOptions {
        hop1_port: Hop1Port::Backend,
        ..PathOptions::default()
    };
    let r = run(
        &(route("shop", "a.example.com", "shop", 80) + POLICIES),
        &opts,
    );
    let p = all_paths(&r);
    assert_eq!(p[0].hops[0].checks[0].port, 8080);
    // the gateway policy admits world on 443 only: denied at hop 1
    assert_eq!(p[0].hops[0].decision, Decision::Denied, "{}", r.to_text());
    assert!(p[0].hops[0].checks[0]
        .explanation
        .contains("no rule allows reserved:world on TCP/8080"));
}

#[test]
fn routes_that_do_not_attach_are_reported_with_the_reason() {
    // namespace not selected by allowedRoutes
    let r = run(
        &(route("other", "a.example.com", "other", 80) + POLICIES),
        &PathOptions::default(),
    );
    assert!(
        findings(&r).contains("does not allow routes from namespace `other`"),
        "{}",
        r.to_text()
    );
    assert_eq!(r.summary.paths, 0);
    assert!(r
        .findings
        .iter()
        .any(|f| f.contains("attaches to no listener")));
    // hostname outside the listener's wildcard
    let r = run(
        &(route("shop", "a.example.org", "shop", 80) + POLICIES),
        &PathOptions::default(),
    );
    assert!(
        findings(&r).contains("matches listener hostname `*.example.com`"),
        "{}",
        r.to_text()
    );
}

#[test]
fn cross_namespace_backend_needs_a_reference_grant() {
    let cross = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: other}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: other, labels: {app: web}}
spec: {containers: []}
"#;
    let without = route("shop", "a.example.com", "other", 80) + "---" + cross + POLICIES;
    let r = run(&without, &PathOptions::default());
    assert!(
        findings(&r).contains("no ReferenceGrant in `other` permits HTTPRoute from `shop`"),
        "{}",
        r.to_text()
    );
    assert_eq!(r.summary.denied, 1);
    let grant = r#"
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-shop, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
  to: [{group: "", kind: Service}]
"#;
    let r = run(&(without + grant), &PathOptions::default());
    assert!(!findings(&r).contains("ReferenceGrant"), "{}", r.to_text());
    assert_eq!(all_paths(&r)[0].backend, "other/web-1");
}

#[test]
fn service_problems_are_findings_on_the_path() {
    // a port the Service does not have
    let r = run(
        &(route("shop", "a.example.com", "shop", 8080) + POLICIES),
        &PathOptions::default(),
    );
    assert!(
        findings(&r).contains("Service shop/web has no port 8080 (it has 80)"),
        "{}",
        r.to_text()
    );
    assert_eq!(r.summary.denied, 1);
}

#[test]
fn wrong_backend_port_names_hop2_and_the_rule() {
    let broken = POLICIES.replace("port: \"8080\"", "port: \"80\"");
    let r = run(
        &(route("shop", "a.example.com", "shop", 80) + &broken),
        &PathOptions::default(),
    );
    let p = all_paths(&r);
    assert_eq!(p[0].decision, Decision::Denied);
    assert_eq!(p[0].hops[0].decision, Decision::Allowed);
    assert_eq!(p[0].hops[1].decision, Decision::Denied);
    let c = &p[0].hops[1].checks[1];
    assert_eq!(c.side, "ingress of shop/web-0");
    assert!(
        c.explanation.contains("selected by shop/web (extra.yaml:"),
        "{}",
        c.explanation
    );
}

#[test]
fn in_cluster_clients_need_egress_to_the_backend_pod() {
    let client = r#"
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: other, labels: {app: client}}
spec: {containers: []}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client, namespace: other}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
    - toEntities: [world, ingress]
      toPorts: [{ports: [{port: "443", protocol: TCP}]}]
"#;
    let opts = PathOptions {
        in_cluster_clients: vec!["other/client".into()],
        ..PathOptions::default()
    };
    let r = run(
        &(route("shop", "a.example.com", "shop", 80) + POLICIES + client),
        &opts,
    );
    let h1 = &all_paths(&r)[0].hops[0];
    let egress = h1
        .checks
        .iter()
        .find(|c| c.side.starts_with("egress of other/client"))
        .unwrap();
    assert_eq!(egress.destination, "shop/web-0");
    assert_eq!(egress.port, 8080);
    assert_eq!(egress.decision, Decision::Denied, "{}", r.to_text());
    // the client is also checked by reserved:ingress's ingress policy (world only): denied
    let ing = h1
        .checks
        .iter()
        .find(|c| c.side == "ingress of reserved:ingress" && c.source == "other/client")
        .unwrap();
    assert_eq!(ing.decision, Decision::Denied);
}

const CONTROLLER: &str = r#"
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: v1
kind: Pod
metadata: {name: nginx-0, namespace: infra, labels: {app.kubernetes.io/name: ingress-nginx}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8000}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: nginx, namespace: infra}
spec:
  type: LoadBalancer
  externalTrafficPolicy: ETP
  selector: {app.kubernetes.io/name: ingress-nginx}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
spec:
  ingressClassName: nginx
  rules: [{http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: nginx, namespace: infra}
spec:
  endpointSelector: {matchLabels: {app.kubernetes.io/name: ingress-nginx}}
  ingress:
    - fromCIDRSet: [{cidr: 203.0.113.0/24}]
      toPorts: [{ports: [{port: "8000", protocol: TCP}]}]
"#;

#[test]
fn controller_pods_behind_snat_see_remote_node() {
    let opts = PathOptions {
        clients: vec!["203.0.113.7".into()],
        ..PathOptions::default()
    };
    // externalTrafficPolicy: Local keeps the client address: allowed.
    let r = run(&CONTROLLER.replace("ETP", "Local"), &opts);
    let p = all_paths(&r);
    assert_eq!(p.len(), 1, "{}", r.to_text());
    let h1 = &p[0].hops[0];
    assert_eq!(h1.checks.len(), 1);
    assert_eq!(
        h1.checks[0].port, 8000,
        "controller container port behind the LB Service"
    );
    assert_eq!(h1.decision, Decision::Allowed, "{}", r.to_text());
    // Cluster: traffic via other nodes arrives as remote-node, which the CIDR rule never matches.
    let r = run(&CONTROLLER.replace("ETP", "Cluster"), &opts);
    let h1 = &all_paths(&r)[0].hops[0];
    let snat = h1
        .checks
        .iter()
        .find(|c| c.source == "reserved:remote-node")
        .unwrap();
    assert_eq!(snat.decision, Decision::Denied);
    assert_eq!(h1.decision, Decision::Denied);
    assert!(
        h1.notes
            .iter()
            .any(|n| n.contains("fromCIDRSet: 203.0.113.0/24") && n.contains("SNATed")),
        "{:?}",
        h1.notes
    );
}

#[test]
fn controller_pods_not_in_the_input_are_a_finding() {
    let without_pods = CONTROLLER
        .replace("ETP", "Local")
        .replace("kind: Pod", "kind: ConfigMap");
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.load_text("app.yaml", APP);
    inv.load_text("extra.yaml", &without_pods);
    inv.complete_namespaces();
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let r = paths(&engine, &routing, &PathOptions::default());
    assert!(
        findings(&r).contains("the pods of controller `k8s.io/ingress-nginx` are not in the input"),
        "{}",
        r.to_text()
    );
    // Not checked: neither allowed nor a denial.
    assert_eq!(r.summary.denied, 0, "{}", r.to_text());
    assert_eq!(r.summary.not_checked, 1);
    let p = all_paths(&r);
    assert_eq!(p[0].decision, verdict_core::paths::Status::NotChecked);
    assert!(p[0]
        .not_checked
        .as_deref()
        .unwrap_or_default()
        .contains("not in the input"));
    assert!(p[0]
        .hops
        .iter()
        .all(|h| h.decision == verdict_core::paths::Status::NotChecked));
}

#[test]
fn envoy_gateway_proxies_are_modelled_from_their_labels() {
    let eg = |gw_label: &str| {
        format!(
            r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: eg}}
spec: {{controllerName: gateway.envoyproxy.io/gatewayclass-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: public, namespace: infra}}
spec:
  gatewayClassName: eg
  listeners: [{{name: http, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: shop}}
spec:
  parentRefs: [{{name: public, namespace: infra}}]
  rules: [{{backendRefs: [{{name: web, port: 80}}]}}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: web, namespace: shop}}
spec:
  endpointSelector: {{matchLabels: {{app: web}}}}
  ingress:
    - fromEndpoints:
        - matchLabels:
            io.kubernetes.pod.namespace: envoy-gateway-system
            gateway.envoyproxy.io/owning-gateway-name: {gw_label}
      toPorts: [{{ports: [{{port: "8080", protocol: TCP}}]}}]
"#
        )
    };
    let r = run(&eg("public"), &PathOptions::default());
    let p = all_paths(&r);
    assert_eq!(p.len(), 1, "{}", r.to_text());
    assert_eq!(p[0].decision, Decision::Allowed, "{}", r.to_text());
    // hop 1 on the proxy's shifted container port, with the SNAT source too
    assert_eq!(p[0].hops[0].checks[0].port, 10080);
    assert!(p[0].hops[0]
        .checks
        .iter()
        .any(|c| c.source == "reserved:remote-node"));
    let r = run(&eg("private"), &PathOptions::default());
    let p = all_paths(&r);
    assert_eq!(p[0].hops[1].decision, Decision::Denied, "{}", r.to_text());
}

#[test]
fn controller_named_but_not_in_the_input_is_modelled_from_its_labels() {
    use verdict_core::selector::{Requirement, Selector};
    let without_pods = CONTROLLER
        .replace("ETP", "Local")
        .replace("kind: Pod", "kind: ConfigMap");
    let opts = PathOptions {
        clients: vec!["203.0.113.7".into()],
        controllers: vec![(
            "infra".into(),
            Selector::new(vec![Requirement::equals(
                "k8s",
                "app.kubernetes.io/name",
                "ingress-nginx",
            )]),
        )],
        ..PathOptions::default()
    };
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.load_text("app.yaml", APP);
    inv.load_text("extra.yaml", &without_pods);
    inv.complete_namespaces();
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let r = paths(&engine, &routing, &opts);
    let p = all_paths(&r);
    assert_eq!(p.len(), 1, "{}", r.to_text());
    // the CNP selecting the controller by label applies to the modelled pod: it
    // admits the client CIDR on 8000 only, and the listener port 80 is used
    let h1 = &p[0].hops[0];
    assert!(h1.name.contains("(from --controller)"), "{}", h1.name);
    assert_eq!(h1.checks[0].port, 80);
    assert_eq!(h1.decision, Decision::Denied, "{}", r.to_text());
    assert!(
        h1.checks[0].explanation.contains("selected by infra/nginx"),
        "{}",
        h1.checks[0].explanation
    );
}

#[test]
fn udp_listeners_are_checked_on_udp() {
    let extra = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: dns, namespace: shop}
spec:
  gatewayClassName: cilium
  listeners: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: dns, namespace: shop}
spec:
  parentRefs: [{name: dns}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
    - fromEntities: [ingress]
      toPorts: [{ports: [{port: "8080", protocol: UDP}]}]
"#;
    let r = run(extra, &PathOptions::default());
    let p = all_paths(&r);
    assert_eq!(p.len(), 1, "{}", r.to_text());
    assert_eq!(
        p[0].hops[1].checks[1].protocol,
        verdict_core::policy::Protocol::Udp
    );
    assert_eq!(p[0].decision, Decision::Allowed, "{}", r.to_text());
}

/// Replicas share one identity: their hop verdicts are computed once, but
/// every check, explanation and near miss names its own pod; a pod of the
/// same identity whose named target port resolves elsewhere gets its own
/// verdict.
#[test]
fn replicas_of_one_identity_get_their_own_names_and_ports() {
    let broken = POLICIES.replace("port: \"8080\"", "port: \"80\"");
    let replicas = r#"
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 80}]}]}
"#;
    let r = run(
        &(route("shop", "a.example.com", "shop", 80) + &broken + replicas),
        &PathOptions::default(),
    );
    let p = all_paths(&r);
    let names: Vec<&str> = p.iter().map(|x| x.backend.as_str()).collect();
    assert_eq!(names, ["shop/web-0", "shop/web-1", "shop/web-2"]);
    for (pod, decision) in [
        (p[0], Decision::Denied),
        (p[1], Decision::Denied),
        (p[2], Decision::Allowed),
    ] {
        assert_eq!(pod.decision, decision, "{}", pod.backend);
        let c = &pod.hops[1].checks[1];
        assert_eq!(c.side, format!("ingress of {}", pod.backend));
        assert_eq!(c.destination, pod.backend);
        if decision == Decision::Denied {
            assert!(
                c.explanation
                    .starts_with(&format!("default deny: {} is selected by", pod.backend)),
                "{}",
                c.explanation
            );
            assert_eq!(c.near_miss.len(), 1, "{:?}", c.near_miss);
            assert!(c.near_miss[0].service_port);
            assert_eq!(c.near_miss[0].flow, "TCP/8080");
        } else {
            assert!(c.explanation.starts_with("allowed by"), "{}", c.explanation);
            assert!(c.near_miss.is_empty());
        }
        // The egress check of the ingress names the backend as its peer.
        let e = &pod.hops[1].checks[0];
        assert!(
            e.explanation.contains(&format!("({} on TCP/", pod.backend)),
            "{}",
            e.explanation
        );
    }
}

/// `paths_decisions` (diff's first pass) is `paths` without near misses:
/// the same report once every check's near misses are cleared, on a
/// scenario with a near miss and on a synthetic cluster.
#[test]
fn paths_decisions_is_paths_without_near_misses() {
    use verdict_core::paths::paths_decisions;
    let broken = POLICIES.replace("port: \"8080\"", "port: \"80\"");
    let synthetic = verdict_core::synth::generate(&verdict_core::synth::SynthSpec {
        pods: 2000,
        policies: 200,
        seed: 42,
    });
    let inputs = [
        route("shop", "a.example.com", "shop", 80) + &broken,
        synthetic,
    ];
    let mut near = 0;
    for (i, text) in inputs.iter().enumerate() {
        let mut inv = Inventory::new(ClusterConfig {
            enable_k8s_cluster_network_policy: i == 1,
            ..ClusterConfig::default()
        });
        if i == 0 {
            inv.load_text("app.yaml", APP);
        }
        inv.load_text("extra.yaml", text);
        inv.complete_namespaces();
        let routing = Routing::from_inventory(&inv);
        let engine = Engine::new(&inv);
        let opts = PathOptions::default();
        let mut full = paths(&engine, &routing, &opts);
        for ep in &mut full.entry_points {
            for r in &mut ep.routes {
                for b in &mut r.backends {
                    for p in &mut b.paths {
                        for h in &mut p.hops {
                            for c in &mut h.checks {
                                near += c.near_miss.len();
                                c.near_miss.clear();
                            }
                        }
                    }
                }
            }
        }
        let decisions = paths_decisions(&engine, &routing, &opts);
        assert_eq!(
            serde_json::to_string(&full).unwrap(),
            serde_json::to_string(&decisions).unwrap()
        );
    }
    assert!(near > 0, "no near miss to leave out");
}
