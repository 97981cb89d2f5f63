#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `kubectl get pods,rs,deploy -o yaml` output as input: pods and
//! ReplicaSets are represented by the workload that controls them
//! (ownerReferences), their names are accepted as parties, and a name that
//! matches nothing suggests the closest.

mod common;
use common::{stderr, stdout, verdict};

const LIST: &str = "crates/verdict-cli/tests/data/owners/kubectl-get-pods-rs-deploy.yaml";
const POLICY: &str = "crates/verdict-cli/tests/data/owners/policy.yaml";

#[test]
fn pods_are_shown_as_the_workloads_that_control_them() {
    let o = verdict(&["matrix", LIST, POLICY]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    // Two pods, two ReplicaSets and a Deployment are one party.
    let row = out.lines().find(|l| l.starts_with("shop/deployment/web "));
    let cells: Vec<&str> = row.unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        cells,
        ["shop/deployment/web", "shop/deployment/api", "TCP/8080"],
        "{out}"
    );
    // A pod whose StatefulSet is not in the input is named by it.
    assert!(out.contains("shop/statefulset/db"), "{out}");
    for hidden in ["api-7d9c5b8f4", "api-5f6b7c8d9", "web-6c8d9f7b5", "db-0"] {
        assert!(!out.contains(hidden), "{hidden} shown:\n{out}");
    }
}

#[test]
fn a_pod_name_is_accepted_as_its_workload() {
    for (from, to) in [
        ("shop/web-6c8d9f7b5-r4n8d", "shop/pod/api-7d9c5b8f4-xk2p9"),
        ("shop/deployment/web", "shop/replicaset/api-7d9c5b8f4"),
        ("shop/deployment/web", "shop/api-7d9c5b8f4-mq7tz"),
    ] {
        let o = verdict(&[
            "trace", "--from", from, "--to", to, "--port", "8080", LIST, POLICY,
        ]);
        let out = stdout(&o);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{from} -> {to}: {out}{}",
            stderr(&o)
        );
        assert!(
            out.contains("shop/deployment/web") && out.contains("shop/deployment/api"),
            "{from} -> {to}: {out}"
        );
    }
    // db is not web: the policy on api denies it.
    let o = verdict(&[
        "trace",
        "--from",
        "shop/pod/db-0",
        "--to",
        "shop/deployment/api",
        "--port",
        "8080",
        LIST,
        POLICY,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("shop/statefulset/db"), "{}", stdout(&o));
}

#[test]
fn a_mistyped_pod_name_suggests_the_pod() {
    let o = verdict(&["policy", "shop/pod/api-7d9c5b8f4-xk2p8", LIST, POLICY]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("did you mean `shop/pod/api-7d9c5b8f4-xk2p9`"),
        "{err}"
    );
}

#[test]
fn policy_names_peers_as_workloads_and_labels_only_with_verbose() {
    let o = verdict(&["policy", "shop/pod/api-7d9c5b8f4-xk2p9", LIST, POLICY]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.starts_with("shop/deployment/api\n"), "{out}");
    let row = out
        .lines()
        .find(|l| l.contains("allowed") && l.contains("TCP/8080"))
        .unwrap_or_else(|| panic!("no allow row:\n{out}"));
    assert!(row.contains(" shop/deployment/web "), "{row}");
    assert!(!row.contains("k8s:app=web"), "{row}");
    let o = verdict(&["-v", "policy", "shop/deployment/api", LIST, POLICY]);
    let out = stdout(&o);
    let row = out
        .lines()
        .find(|l| l.contains("allowed") && l.contains("TCP/8080"))
        .unwrap_or_else(|| panic!("no allow row:\n{out}"));
    assert!(
        row.contains("shop/deployment/web [") && row.contains("k8s:app=web"),
        "{row}"
    );
}
