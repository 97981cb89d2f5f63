#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict diff` computes both matrices only for the pairs whose sides
//! changed (`matrix_delta::changed_matrices`): its connectivity changes
//! must be exactly those of the full matrices, whatever changed between
//! the inputs (policies, pod and namespace labels, workloads, CIDRs, the
//! file the objects come from).

use verdict_core::diff::{diff, policy_changes};
use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::matrix::{matrix, MatrixOptions};
use verdict_core::matrix_delta::changed_matrices;
use verdict_core::synth::{generate_shaped, Shape, SynthSpec};

fn load(file: &str, text: &str) -> Inventory {
    let mut inv = Inventory::new(ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text(file, text);
    inv.complete_namespaces();
    inv
}

/// `text` without the document that contains `marker`.
fn without(text: &str, marker: &str) -> String {
    let docs: Vec<&str> = text
        .split("---\n")
        .filter(|d| !d.contains(marker))
        .collect();
    assert!(
        docs.len() < text.split("---\n").count(),
        "{marker} not found"
    );
    docs.join("---\n")
}

const ADDED: &str = "---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: added
  namespace: ns-1
spec:
  endpointSelector:
    matchLabels:
      app: app-3
  ingress:
    - fromEntities: [world]
      toPorts:
        - ports:
            - port: \"8443\"
              protocol: TCP
    - fromEndpoints:
        - matchLabels:
            k8s:io.kubernetes.pod.namespace: ns-2
  egress:
    - toCIDR: [192.0.2.0/24]
";

const NEW_POD: &str = "---
apiVersion: v1
kind: Pod
metadata:
  name: extra
  namespace: ns-2
  labels:
    app: app-4
    tier: db
spec:
  containers:
    - name: main
      image: registry.example/extra:1
";

#[test]
fn diff_of_changed_pairs_equals_diff_of_full_matrices() {
    let mut checked = 0;
    let mut changes = 0;
    for shape in [Shape::Standard, Shape::Dense] {
        let base = generate_shaped(
            &SynthSpec {
                pods: 800,
                policies: 80,
                seed: 7,
            },
            shape,
        );
        let policy = if shape == Shape::Standard {
            "name: pol-0\n"
        } else {
            "name: dense-0\n"
        };
        let variants: Vec<(&str, String)> = vec![
            ("unchanged", base.clone()),
            ("policy added", format!("{base}{ADDED}")),
            ("policy removed", without(&base, policy)),
            (
                "pod relabelled",
                base.replacen("tier: db\n    version:", "tier: web\n    version:", 1),
            ),
            (
                "namespace relabelled",
                base.replacen("team: team-1\n", "team: team-5\n", 1),
            ),
            ("pod added", format!("{base}{NEW_POD}")),
            // Only rules change (a policy renamed): no port can change.
            (
                "policy renamed",
                base.replacen(policy, &policy.replace("-0", "-zero"), 1),
            ),
            (
                "everything at once",
                format!(
                    "{}{ADDED}{NEW_POD}",
                    without(&base, policy).replacen("team: team-2\n", "team: team-6\n", 1)
                ),
            ),
        ];
        let news: Vec<Inventory> = variants.iter().map(|(_, t)| load("new.yaml", t)).collect();
        let old = load("old.yaml", &base);
        let eo = Engine::new(&old);
        let full_old = matrix(&eo, &MatrixOptions::default());
        for ((what, _), new) in variants.iter().zip(&news) {
            let en = Engine::new(new);
            let full_new = matrix(&en, &MatrixOptions::default());
            for (a, b, fa, fb, dir) in [
                (&eo, &en, &full_old, &full_new, "old -> new"),
                (&en, &eo, &full_new, &full_old, "new -> old"),
            ] {
                let want = diff(fa, fb, policy_changes(a.inv, b.inv));
                let (ma, mb) = changed_matrices(a, b);
                let got = diff(&ma, &mb, policy_changes(a.inv, b.inv));
                assert_eq!(
                    serde_json::to_string(&got).unwrap(),
                    serde_json::to_string(&want).unwrap(),
                    "{shape:?}, {what}, {dir}: the diffs differ"
                );
                // Fewer pairs computed than the full matrices hold, except
                // when everything may have changed.
                if *what != "everything at once" {
                    assert!(
                        ma.cells.len() < fa.cells.len() && mb.cells.len() < fb.cells.len(),
                        "{shape:?}, {what}: {} of {} pairs computed",
                        ma.cells.len(),
                        fa.cells.len()
                    );
                }
                // Sides are compared without their rules: a renamed
                // policy marks no pair.
                if *what == "unchanged" || *what == "policy renamed" {
                    assert!(
                        ma.cells.is_empty() && mb.cells.is_empty(),
                        "{shape:?}, {what}"
                    );
                }
                checked += 1;
                changes += want.added.len() + want.removed.len();
            }
        }
    }
    assert_eq!(checked, 32);
    // The variants do change connectivity (the comparison is not of two
    // empty diffs).
    assert!(changes > 50, "only {changes} changes");
}
