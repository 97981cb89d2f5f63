#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict generate` never makes things worse: it keeps the clients the
//! input restricts the ingress to, opens no port on pods that do not use
//! it, states what `remote-node` admits, and writes only inside --out-dir.

mod common;
use common::{root, stderr, stdout, tmp, verdict};

const DOCS: &str = "../shared/corpus/scenarios/cilium-docs-ingress-and-network-policy";

#[test]
fn keeps_the_cidrs_the_input_restricts_the_ingress_to() {
    let docs = root().join(DOCS);
    if !docs.exists() {
        eprintln!("skipped: {} not present", docs.display());
        return;
    }
    let files = [
        format!("{DOCS}/isovalent__cilium-up-and-running/chapter07/ingress/bookinfo.yaml"),
        format!("{DOCS}/cilium__cilium/examples/kubernetes/servicemesh/basic-ingress.yaml"),
        format!(
            "{DOCS}/cilium__cilium/examples/kubernetes/servicemesh/policy/allow-ingress-cidr.yaml"
        ),
    ];
    let mut args = vec!["generate"];
    args.extend(files.iter().map(String::as_str));
    let o = verdict(&args);
    let y = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{y}{}", stderr(&o));
    assert!(!y.contains("world"), "world must not be admitted:\n{y}");
    assert!(
        y.contains("    - fromCIDRSet:\n        - cidr: 172.18.0.1/32\n      toPorts:"),
        "{y}"
    );
    assert!(
        stderr(&o).contains("reserved:ingress admits `fromCIDRSet: 172.18.0.1/32`"),
        "{}",
        stderr(&o)
    );
    // An ingress that admits only `cluster`: generate asks instead of
    // opening it to world.
    let lockdown = format!(
        "{DOCS}/cilium__cilium/examples/kubernetes/servicemesh/policy/external-lockdown.yaml"
    );
    let o = verdict(&["generate", &files[0], &files[1], &lockdown]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).contains("keeps world out of reserved:ingress and admits no client CIDR"),
        "{}",
        stderr(&o)
    );
    let o = verdict(&[
        "generate", "--client", "world", &files[0], &files[1], &lockdown,
    ]);
    assert!(
        stdout(&o).contains("fromEntities: [world]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn client_cidrs_are_written_exactly() {
    let shop = [
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
    ];
    for (client, cidr) in [
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.113.7/32", "203.0.113.7/32"),
        ("203.0.113.7", "203.0.113.7/32"),
        ("cidr:198.51.100.0/24", "198.51.100.0/24"),
    ] {
        let mut args = vec!["generate", "--client", client];
        args.extend(shop);
        let o = verdict(&args);
        let y = stdout(&o);
        assert_eq!(o.status.code(), Some(0), "{client}: {y}{}", stderr(&o));
        assert!(
            y.contains(&format!(
                "    - fromCIDRSet:\n        - cidr: {cidr}\n      toPorts:"
            )),
            "{client}: {y}"
        );
        assert!(!y.contains("world"), "{client}: {y}");
    }
    let mut args = vec!["generate", "--client", "shop/deployment/api"];
    args.extend(shop);
    let o = verdict(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--client `shop/deployment/api`"),
        "{}",
        stderr(&o)
    );
}

const SPLIT: &str = "apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-a, namespace: shop}
spec:
  selector: {matchLabels: {app: web, track: a}}
  template:
    metadata: {labels: {app: web, track: a}}
    spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}, {name: alt, containerPort: 9090}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web-b, namespace: shop}
spec:
  selector: {matchLabels: {app: web, track: b}}
  template:
    metadata: {labels: {app: web, track: b}}
    spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 9090}, {name: alt, containerPort: 8080}]}]}
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
metadata: {name: gw, namespace: shop}
spec:
  gatewayClassName: cilium
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
";

#[test]
fn a_named_target_port_with_different_numbers_opens_each_number_on_its_pods_only() {
    let d = tmp("split");
    let input = d.join("input.yaml");
    std::fs::write(&input, SPLIT).unwrap();
    let o = verdict(&["generate", input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let generated = d.join("generated.yaml");
    std::fs::write(&generated, o.stdout).unwrap();
    let trace = |to: &str, port: &str| {
        verdict(&[
            "trace",
            "--from",
            "ingress",
            "--to",
            to,
            "--port",
            port,
            input.to_str().unwrap(),
            generated.to_str().unwrap(),
        ])
        .status
        .code()
    };
    assert_eq!(trace("shop/deployment/web-a", "8080"), Some(0));
    assert_eq!(trace("shop/deployment/web-b", "9090"), Some(0));
    assert_eq!(trace("shop/deployment/web-a", "9090"), Some(1));
    assert_eq!(trace("shop/deployment/web-b", "8080"), Some(1));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn remote_node_for_external_traffic_policy_cluster_is_stated_and_verified() {
    let d = tmp("etp");
    for f in ["namespaces.yaml", "workloads.yaml", "policies.yaml"] {
        std::fs::copy(root().join("examples/shop-nginx").join(f), d.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(root().join("examples/shop-nginx/ingress-nginx.yaml"))
        .unwrap()
        .replace(
            "externalTrafficPolicy: Local",
            "externalTrafficPolicy: Cluster",
        );
    std::fs::write(d.join("ingress-nginx.yaml"), text).unwrap();
    let o = verdict(&["generate", d.to_str().unwrap()]);
    let y = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{y}{}", stderr(&o));
    assert!(y.contains("    - fromEntities: [remote-node]\n"), "{y}");
    assert!(
        y.contains("This also admits reserved:kube-apiserver on these\n    # ports"),
        "{y}"
    );
    let e = stderr(&o);
    assert!(e.contains("1 stated, 0 added otherwise"), "{e}");
    assert!(
        e.contains("also admitted, as the generated policy states: reserved:kube-apiserver -> ingress-nginx/deployment/ingress-nginx-controller TCP/80"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

const SHOP: [&str; 3] = [
    "examples/shop-gateway/namespaces.yaml",
    "examples/shop-gateway/workloads.yaml",
    "examples/shop-gateway/gateway.yaml",
];

#[test]
fn out_dir_does_not_follow_symbolic_links() {
    let d = tmp("symlink");
    let out_dir = d.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let victim = d.join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(
        &victim,
        out_dir.join("ccnp-verdict-ingress-to-backends.yaml"),
    )
    .unwrap();
    let mut args = vec!["generate", "--out-dir", out_dir.to_str().unwrap()];
    args.extend(SHOP);
    let o = verdict(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a symbolic link"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    // Nothing was written before the refusal.
    assert!(!out_dir
        .join("ccnp-verdict-ingress-from-clients.yaml")
        .exists());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn merged_object_names_become_safe_file_names() {
    let d = tmp("names");
    let pol = d.join("pol.yaml");
    std::fs::write(
        &pol,
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: \"../../x/evil\\tname\"\n  namespace: shop\nspec:\n  endpointSelector:\n    matchLabels: {app: api}\n  ingress:\n    - fromEntities: [ingress]\n      toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n",
    )
    .unwrap();
    let out_dir = d.join("a").join("out");
    let mut args = vec![
        "generate",
        "--merge",
        "--out-dir",
        out_dir.to_str().unwrap(),
    ];
    args.extend(SHOP);
    args.push(pol.to_str().unwrap());
    let o = verdict(&args);
    // The input name is an input error (exit 2), but nothing leaves out-dir.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ccnp-verdict-ingress-from-clients.yaml",
            "ccnp-verdict-ingress-to-backends.yaml",
            "cnp-shop-_.__._x_evil_name.yaml",
            "cnp-shop-verdict-frontend-from-ingress.yaml",
        ]
    );
    assert!(!d.join("x").exists() && !d.join("a").join("x").exists());
    let _ = std::fs::remove_dir_all(&d);
}
