#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict generate` on the bundled examples and on random clusters: every
//! intended path allowed afterwards, no connectivity opened beyond those
//! paths, every object accepted by Cilium's validation, lint-clean.

use verdict_core::engine::Engine;
use verdict_core::generate::{generate, rejudge, to_stream, verify, GenerateOptions};
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::paths::{paths, PathOptions};
use verdict_core::routes::Routing;

fn check(inv: &Inventory, opts: &GenerateOptions) -> (usize, usize, usize) {
    let routing = Routing::from_inventory(inv);
    let engine = Engine::new(inv);
    let report = paths(&engine, &routing, &opts.paths);
    let (objects, _skipped) = generate(&engine, &report, opts);
    let stream = to_stream(&objects);
    // Deterministic.
    let (again, _) = generate(&engine, &report, opts);
    assert_eq!(stream, to_stream(&again));
    let v = verify(inv, inv, &stream, opts);
    assert!(v.load_errors.is_empty(), "{:?}\n{stream}", v.load_errors);
    assert_eq!(v.paths_after.denied, 0, "a path is still denied\n{stream}");
    assert!(
        v.unintended.is_empty(),
        "unintended connectivity: {:?}\n{stream}",
        v.unintended
    );
    let mut after = inv.clone();
    after.load_text("<generated>", &stream);
    let r2 = Routing::from_inventory(&after);
    let e2 = Engine::new(&after);
    let p2 = paths(&e2, &r2, &opts.paths);
    // The verification judges the paths before again instead of running
    // `paths` a second time: same decisions, same summary.
    let reused = engine.with_policies_of(&after).expect("same workloads");
    let re = rejudge(&report, &reused).expect("the paths can be judged again");
    let decisions = |r: &verdict_core::paths::PathsReport| -> Vec<String> {
        let mut out = Vec::new();
        for b in r
            .entry_points
            .iter()
            .flat_map(|ep| &ep.routes)
            .flat_map(|r| &r.backends)
        {
            for p in &b.paths {
                out.push(format!("path {} {:?}", p.backend, p.decision));
                for h in &p.hops {
                    out.push(format!("  hop {} {:?}", h.name, h.decision));
                    for c in &h.checks {
                        out.push(format!("    {} {} {:?}", c.side, c.port, c.decision));
                    }
                }
            }
        }
        out
    };
    let full: Vec<_> = p2.checks().map(|c| c.decision).collect();
    assert_eq!(re.decisions, full, "check decisions after\n{stream}");
    assert_eq!(
        (
            re.summary.paths,
            re.summary.allowed,
            re.summary.denied,
            re.summary.not_checked
        ),
        (
            p2.summary.paths,
            p2.summary.allowed,
            p2.summary.denied,
            p2.summary.not_checked
        ),
        "summary after\n{stream}"
    );
    let mut applied = report.clone();
    re.apply(&mut applied);
    assert_eq!(decisions(&applied), decisions(&p2), "{stream}");
    assert_eq!(
        (v.paths_after.allowed, v.paths_after.denied),
        (p2.summary.allowed, p2.summary.denied)
    );
    let config = verdict_lint::LintConfig::default();
    let cx = verdict_lint::Context::new(&after, &e2, &r2, &p2, &config);
    let lint = verdict_lint::run(&cx, &config);
    let hits: Vec<_> = lint
        .findings
        .iter()
        .filter(|f| f.location.file.as_ref() == "<generated>" && f.level.at_least(config.fail_on))
        .collect();
    assert!(
        hits.is_empty(),
        "lint findings on generated objects: {hits:?}\n{stream}"
    );
    (
        v.paths_after.allowed,
        v.intended.len(),
        v.paths_before.denied,
    )
}

fn load(files: &[&str]) -> Inventory {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut inv = Inventory::new(ClusterConfig::default());
    for f in files {
        inv.load_text(f, &std::fs::read_to_string(root.join(f)).unwrap());
    }
    inv.complete_namespaces();
    inv
}

#[test]
fn bundled_examples() {
    let gw = load(&[
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
    ]);
    assert_eq!(check(&gw, &GenerateOptions::default()).0, 2);
    let nginx = load(&[
        "examples/shop-nginx/namespaces.yaml",
        "examples/shop-nginx/workloads.yaml",
        "examples/shop-nginx/ingress-nginx.yaml",
    ]);
    assert_eq!(check(&nginx, &GenerateOptions::default()).0, 2);
    // With client CIDRs and clusterwide backend policies.
    let opts = GenerateOptions {
        paths: PathOptions {
            clients: vec!["cidr:203.0.113.0/24".into()],
            ..PathOptions::default()
        },
        prefer_ccnp: true,
        ..GenerateOptions::default()
    };
    check(&gw, &opts);
}

#[test]
fn broken_examples_are_repaired_with_only_the_missing_rules() {
    let inv = load(&[
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
        "examples/broken/gateway-no-egress/policies.yaml",
    ]);
    let opts = GenerateOptions {
        only_missing: true,
        ..GenerateOptions::default()
    };
    let (allowed, intended, before) = check(&inv, &opts);
    assert_eq!(before, 2);
    assert_eq!(allowed, 2);
    assert!(
        intended >= 2,
        "the egress of reserved:ingress to both backends is opened"
    );
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A random cluster: namespaces, deployments with named and numbered ports,
/// services, a Cilium Gateway with routes, sometimes ingress-nginx and an
/// Ingress, and random pre-existing policies (default deny, allows).
fn random_cluster(seed: u64) -> String {
    let mut r = Rng(seed * 2654435761 + 1);
    let mut y = String::new();
    let nss = 1 + r.next(3);
    y.push_str("apiVersion: v1\nkind: Namespace\nmetadata: {name: gw}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: cilium}\nspec: {controllerName: io.cilium/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: gw}\nspec:\n  gatewayClassName: cilium\n  listeners:\n    - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}\n    - {name: alt, port: 8443, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}\n");
    let nginx = r.next(2) == 0;
    if nginx {
        y.push_str("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ingress-nginx}\n---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: {name: nginx}\nspec: {controller: k8s.io/ingress-nginx}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ctrl, namespace: ingress-nginx}\nspec:\n  selector: {matchLabels: {app.kubernetes.io/name: ingress-nginx}}\n  template:\n    metadata: {labels: {app.kubernetes.io/name: ingress-nginx}}\n    spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: ctrl, namespace: ingress-nginx}\nspec:\n  type: LoadBalancer\n");
        y.push_str(if r.next(2) == 0 {
            "  externalTrafficPolicy: Local\n"
        } else {
            "  externalTrafficPolicy: Cluster\n"
        });
        y.push_str("  selector: {app.kubernetes.io/name: ingress-nginx}\n  ports: [{port: 80, targetPort: http}]\n");
    }
    for n in 0..nss {
        y.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: {{team: t{}}}}}\n", r.next(2)));
        let apps = 1 + r.next(4);
        for a in 0..apps {
            let port = [80, 3000, 8080, 9000][r.next(4) as usize];
            y.push_str(&format!(
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app{a}, namespace: ns{n}}}\nspec:\n  selector: {{matchLabels: {{app: app{a}}}}}\n  template:\n    metadata: {{labels: {{app: app{a}, tier: t{}}}}}\n    spec: {{containers: [{{name: c, image: x, ports: [{{name: web, containerPort: {port}}}, {{containerPort: 9100}}]}}]}}\n",
                r.next(2)
            ));
            let target = if r.next(2) == 0 {
                "web".to_string()
            } else {
                port.to_string()
            };
            y.push_str(&format!(
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: app{a}, namespace: ns{n}}}\nspec:\n  selector: {{app: app{a}}}\n  ports: [{{name: http, port: 80, targetPort: {target}}}]\n"
            ));
            if r.next(2) == 0 {
                let listener = if r.next(3) == 0 { "alt" } else { "http" };
                y.push_str(&format!(
                    "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: app{a}, namespace: ns{n}}}\nspec:\n  parentRefs: [{{name: gw, namespace: gw, sectionName: {listener}}}]\n  rules: [{{backendRefs: [{{name: app{a}, port: 80}}]}}]\n"
                ));
            }
            if nginx && r.next(3) == 0 {
                y.push_str(&format!(
                    "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: app{a}, namespace: ns{n}}}\nspec:\n  ingressClassName: nginx\n  rules: [{{http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: app{a}, port: {{number: 80}}}}}}}}]}}}}]\n"
                ));
            }
        }
        // Pre-existing policies: default deny for the namespace, east-west allows.
        match r.next(3) {
            0 => y.push_str(&format!(
                "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: default-deny, namespace: ns{n}}}\nspec:\n  endpointSelector: {{}}\n  ingress: [{{}}]\n"
            )),
            1 => y.push_str(&format!(
                "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: same-ns, namespace: ns{n}}}\nspec:\n  endpointSelector: {{}}\n  ingress: [{{fromEndpoints: [{{}}]}}]\n"
            )),
            _ => {}
        }
    }
    y
}

#[test]
fn random_clusters() {
    let mut total = 0;
    let mut repaired = 0;
    let mut opened = 0;
    for seed in 1..=40 {
        let text = random_cluster(seed);
        let mut inv = Inventory::new(ClusterConfig::default());
        inv.load_text(&format!("random-{seed}.yaml"), &text);
        inv.complete_namespaces();
        assert!(
            inv.diagnostics
                .iter()
                .all(|d| d.severity != verdict_core::source::Severity::Error),
            "seed {seed}: {:?}",
            inv.diagnostics
        );
        let (allowed, intended, denied_before) = check(&inv, &GenerateOptions::default());
        total += allowed;
        repaired += denied_before;
        opened += intended;
    }
    assert!(total > 40, "random clusters produced only {total} paths");
    // Some clusters had default deny in place: generation repaired their paths
    // and opened exactly the connectivity they need.
    assert!(
        repaired > 5 && opened > 5,
        "repaired {repaired} paths, opened {opened} connections"
    );
}

#[test]
fn merge_appends_to_existing_policies() {
    use verdict_core::generate::merge;
    let inv = load(&[
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
        "examples/broken/gateway-no-egress/policies.yaml",
    ]);
    let opts = GenerateOptions::default();
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let report = paths(&engine, &routing, &opts.paths);
    let (objects, _) = generate(&engine, &report, &opts);
    let merged = merge(&inv, objects);
    let names: Vec<_> = merged.iter().map(|g| g.name.as_str()).collect();
    // The two reserved:ingress objects merge into the existing world-to-gateway
    // CCNP (once), the backend ones into the backends' existing CNPs.
    assert_eq!(
        names,
        [
            "world-to-gateway",
            "api-from-gateway",
            "frontend-from-gateway"
        ]
    );
    assert!(
        merged[0].yaml.contains("\"app\": \"api\""),
        "{}",
        merged[0].yaml
    );
    assert!(merged[0].yaml.starts_with(
        "# Merged by verdict generate into CiliumClusterwideNetworkPolicy world-to-gateway"
    ));
    let mut base = inv.clone();
    base.policies.retain(|p| {
        !merged.iter().any(|g| {
            g.kind == p.object.kind && g.namespace == p.object.namespace && g.name == p.object.name
        })
    });
    let stream = to_stream(&merged);
    let v = verify(&inv, &base, &stream, &opts);
    assert!(v.load_errors.is_empty(), "{:?}", v.load_errors);
    assert_eq!(v.paths_after.denied, 0, "{stream}");
    assert!(v.unintended.is_empty(), "{:?}", v.unintended);
}

/// A generated stream that opens more than the paths need must fail the
/// verification: the extra connection is listed as unintended, the paths
/// still pass, and a stream that only narrows adds nothing.
#[test]
fn verification_catches_a_policy_that_opens_too_much() {
    let mut inv = load(&[
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
    ]);
    // The input closes the frontend (default deny, admitting no one that
    // exists), so what a generated policy opens to it shows as added.
    inv.load_text(
        "closed.yaml",
        "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend-closed, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: frontend}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: nobody}}]
",
    );
    assert!(inv.diagnostics.is_empty(), "{:?}", inv.diagnostics);
    let opts = GenerateOptions::default();
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let report = paths(&engine, &routing, &opts.paths);
    let (objects, _) = generate(&engine, &report, &opts);
    let good = to_stream(&objects);
    let v = verify(&inv, &inv, &good, &opts);
    assert!(v.ok() && v.unintended.is_empty(), "{v:?}");
    assert_eq!(v.paths_before.denied, 1, "the input closes the frontend");
    assert!(
        !v.closed.is_empty(),
        "the api backend and the ingress are put into default deny"
    );
    // Too wide: the world may reach the frontend directly, and the ingress
    // on every port.
    let bad = format!(
        "{good}---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: too-wide, namespace: shop}}
spec:
  endpointSelector: {{matchLabels: {{app: frontend}}}}
  ingress:
    - fromEntities: [ingress, world]
"
    );
    let v = verify(&inv, &inv, &bad, &opts);
    assert!(!v.ok(), "a policy opening more than the paths must fail");
    assert_eq!(v.paths_after.denied, 0);
    let unintended: Vec<String> = v
        .unintended
        .iter()
        .map(|c| format!("{} -> {} {}", c.from, c.to, c.ports()))
        .collect();
    assert!(
        unintended
            .iter()
            .any(|u| u.starts_with("reserved:world -> shop/deployment/frontend TCP/")),
        "{unintended:?}"
    );
    // The ingress's own egress (generated) still limits it to the target
    // port, so admitting it on every port at the frontend opens nothing.
    assert!(
        !unintended.iter().any(|u| u.starts_with("reserved:ingress")),
        "{unintended:?}"
    );
    // The intended hops are still recognised as such.
    assert!(v
        .intended
        .iter()
        .any(|c| c.from == "reserved:ingress" && c.to == "shop/deployment/frontend"));
}

/// Paths that stay denied after the generated objects are counted as
/// denied (the verification then runs `paths` again in full): an empty
/// stream repairs nothing, and a wrong-port example keeps its broken path.
#[test]
fn paths_still_denied_after_are_counted() {
    let inv = load(&[
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
        "examples/broken/gateway-no-egress/policies.yaml",
    ]);
    let opts = GenerateOptions::default();
    let v = verify(&inv, &inv, "", &opts);
    assert!(v.paths_before.denied > 0);
    assert_eq!(v.paths_after.denied, v.paths_before.denied);
    assert_eq!(v.paths_after.allowed, v.paths_before.allowed);
    assert!(!v.ok());
    let engine = Engine::new(&inv);
    let report = paths(&engine, &Routing::from_inventory(&inv), &opts.paths);
    let re = rejudge(&report, &engine).unwrap();
    assert_eq!(re.summary.denied, report.summary.denied);
}
