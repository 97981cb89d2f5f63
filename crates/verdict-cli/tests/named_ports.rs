#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Cilium 1.20's named-ports identity label (docs/semantics.md "Named ports
//! in the identity"): two Deployments whose pods have equal labels but
//! declare `http` as 8080 and 9090, and an egress rule `toPorts: [{port:
//! http}]` to them.

mod common;
use common::{stdout, verdict};

const CLUSTER: &str = "crates/verdict-cli/tests/data/named-ports/cluster.yaml";

fn run(args: &[&str]) -> String {
    let o = verdict(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stdout(&o));
    stdout(&o)
}

/// The matrix rows (`FROM TO PORTS`), whitespace collapsed.
fn rows(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with("shop/"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The `allowed PROTO/PORT PEER` rows of `verdict policy`.
fn allowed_rows(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.trim_start().starts_with("allowed"))
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn named_ports_split_identities_on_1_20() {
    // 1.20: two identities, each with its own `http`.
    let out = run(&["matrix", CLUSTER]);
    assert_eq!(
        rows(&out),
        vec![
            "shop/pod/web shop/deployment/api-v1 TCP/8080",
            "shop/pod/web shop/deployment/api-v2 TCP/9090",
        ],
        "{out}"
    );
    assert!(out.contains("between 7 identities"), "{out}");
    let out = run(&["policy", "shop/deployment/api-v1", CLUSTER]);
    assert!(
        out.contains("identity gen:io.cilium.k8s.named-ports=http.TCP.8080,k8s:app=api,"),
        "{out}"
    );
    let out = run(&["policy", "shop/deployment/api-v2", CLUSTER]);
    assert!(
        out.contains("identity gen:io.cilium.k8s.named-ports=http.TCP.9090,k8s:app=api,"),
        "{out}"
    );
    let out = run(&["policy", "shop/pod/web", CLUSTER]);
    let allowed = allowed_rows(&out);
    assert_eq!(
        allowed,
        vec![
            "allowed TCP/8080 shop/deployment/api-v1",
            "allowed TCP/9090 shop/deployment/api-v2",
        ],
        "{out}"
    );
    // Trace agrees: api-v2 is not reached on api-v1's number.
    let o = verdict(&[
        "trace",
        "--from",
        "shop/pod/web",
        "--to",
        "shop/deployment/api-v2",
        "--port",
        "8080",
        CLUSTER,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

#[test]
fn named_ports_share_one_identity_before_1_20() {
    // 1.19: one identity without the label, and `http` names two numbers
    // in the cluster, so the rule allows nothing.
    let out = run(&["matrix", "--cilium-version", "1.19", CLUSTER]);
    assert!(rows(&out).is_empty(), "{out}");
    assert!(out.contains("between 6 identities"), "{out}");
    let out = run(&[
        "policy",
        "--cilium-version",
        "1.19",
        "shop/deployment/api-v1",
        CLUSTER,
    ]);
    assert!(
        out.contains("identity k8s:app=api,") && !out.contains("gen:"),
        "{out}"
    );
}

#[test]
fn init_and_sidecar_container_ports_are_not_named_ports() {
    // Cilium reads named ports from `spec.containers` only: `metrics` (a
    // sidecar's) and `admin` (an init container's) name nothing, so the rule
    // allows 8080 alone, and 1.20's label lists `http` only.
    let cluster = "crates/verdict-cli/tests/data/sidecar-ports/cluster.yaml";
    let out = run(&["policy", "shop/pod/web", cluster]);
    let allowed = allowed_rows(&out);
    assert_eq!(
        allowed,
        vec!["allowed TCP/8080 shop/deployment/api"],
        "{out}"
    );
    let out = run(&["policy", "shop/deployment/api", cluster]);
    assert!(
        out.contains("identity gen:io.cilium.k8s.named-ports=http.TCP.8080,k8s:app=api,"),
        "{out}"
    );
}

#[test]
fn an_invalid_container_port_name_is_an_input_error() {
    // The API server refuses the pod; verdict reports where and exits 2,
    // after analysing the rest.
    let dir = common::tmp("bad-port-name");
    let file = dir.join("pod.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nspec:\n  containers:\n  - name: c\n    ports: [{name: HTTP, containerPort: 80}]\n",
    )
    .unwrap();
    let o = verdict(&["policy", "shop/pod/web", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("shop/pod/web\n"), "{}", stdout(&o));
    assert!(
        common::stderr(&o).contains(
            "`spec.containers[0].ports[0].name` `HTTP` is not a valid port name: must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
        ),
        "{}",
        common::stderr(&o)
    );
}
