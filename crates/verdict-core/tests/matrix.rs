#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The matrix (computed from resolved maps over port classes) must agree
//! with the brute-force connectivity (every pair, every port class, a full
//! trace each) on the conformance scenarios.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use verdict_core::connectivity::{connectivity, parties};
use verdict_core::engine::Engine;
use verdict_core::matrix::{matrix, MatrixOptions};
use verdict_core::policy::Direction;
use verdict_core::policytest;

#[test]
fn matrix_agrees_with_brute_force_connectivity() {
    let mut compared = 0;
    for (f, inv) in &common::conformance_inventories() {
        let engine = Engine::new(inv);
        let m = matrix(&engine, &MatrixOptions::default());
        let ps = parties(&engine, &[]);
        let id_of = |name: &str| ps.iter().find(|p| p.name == name).map(|p| p.identity.id);
        // Brute force, restricted to pairs where some side has a policy.
        let mut brute = BTreeSet::new();
        for c in connectivity(&engine, &ps) {
            let from = ps.iter().find(|p| p.name == c.from).unwrap();
            let to = ps.iter().find(|p| p.name == c.to).unwrap();
            let e = engine.side(from, Direction::Egress, to, c.protocol, c.from_port);
            let i = engine.side(to, Direction::Ingress, from, c.protocol, c.from_port);
            let governed = (from.enforced && !e.selecting.is_empty())
                || (to.enforced && !i.selecting.is_empty());
            // The matrix shows world as world-ipv4/-ipv6 in dual stack
            // (and as world only in single stack).
            let hidden = |p: &verdict_core::engine::Party| match p.identity.reserved_name() {
                Some("world") => inv.cluster.dual_stack,
                Some("world-ipv4" | "world-ipv6") => !inv.cluster.dual_stack,
                _ => false,
            };
            if governed && !hidden(from) && !hidden(to) {
                brute.insert((
                    id_of(&c.from),
                    id_of(&c.to),
                    c.protocol,
                    c.from_port,
                    c.to_port,
                ));
            }
        }
        let mut cells = BTreeSet::new();
        for c in &m.cells {
            // Cells to CIDR selections and reserved identities the brute
            // force does not enumerate are skipped.
            let (Some(f_id), Some(t_id)) = (c.from.identity, c.to.identity) else {
                continue;
            };
            if f_id == t_id
                || !ps.iter().any(|p| p.identity.id == f_id)
                || !ps.iter().any(|p| p.identity.id == t_id)
            {
                continue;
            }
            for p in &c.ports {
                cells.insert((Some(f_id), Some(t_id), p.protocol, p.from, p.to));
            }
        }
        let brute = merge_adjacent(brute);
        assert_eq!(
            brute,
            cells,
            "{}: matrix and brute force differ",
            f.display()
        );
        compared += brute.len();
    }
    assert!(compared > 500, "only {compared} connections compared");
}

type Row = (
    Option<u32>,
    Option<u32>,
    verdict_core::policy::Protocol,
    u16,
    u16,
);

/// Joins adjacent ranges of the same pair (the brute force splits where only
/// the proxy redirect changes).
fn merge_adjacent(rows: BTreeSet<Row>) -> BTreeSet<Row> {
    let mut out: Vec<Row> = Vec::new();
    for r in rows {
        if let Some(last) = out.last_mut() {
            if (last.0, last.1, last.2) == (r.0, r.1, r.2)
                && u32::from(last.4) + 1 == u32::from(r.3)
            {
                last.4 = r.4;
                continue;
            }
        }
        out.push(r);
    }
    out.into_iter().collect()
}

/// Loads a synthetic cluster with ClusterNetworkPolicies enforced.
fn synthetic(pods: usize, shape: verdict_core::synth::Shape) -> verdict_core::ingest::Inventory {
    let text = verdict_core::synth::generate_shaped(
        &verdict_core::synth::SynthSpec {
            pods,
            policies: pods / 10,
            seed: 42,
        },
        shape,
    );
    let mut inv = verdict_core::ingest::Inventory::new(verdict_core::ingest::ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..verdict_core::ingest::ClusterConfig::default()
    });
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    inv
}

/// The grouped computation (one cell per pair of identity classes, then
/// expanded) gives exactly the cells of the pair-by-pair computation, in
/// the same order, with and without filters: on every conformance
/// scenario and on synthetic clusters of both shapes.
#[test]
fn grouped_matrix_equals_the_pair_by_pair_matrix() {
    use verdict_core::matrix::matrix_by_pairs;
    use verdict_core::matrix_summary::summarise;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let mut invs = Vec::new();
    for d in ["generated", "gateway", "hard", "tiers"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(d))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let (cases, _) = policytest::parse("c.json", &std::fs::read_to_string(&f).unwrap());
            let mut inv = cases[0].inventory();
            inv.complete_namespaces();
            invs.push((f.display().to_string(), inv));
        }
    }
    for shape in [
        verdict_core::synth::Shape::Standard,
        verdict_core::synth::Shape::Dense,
    ] {
        invs.push((format!("synthetic {shape:?}"), synthetic(1500, shape)));
    }
    let mut compared = 0;
    let mut collapsed = 0;
    for (name, inv) in &invs {
        let engine = Engine::new(inv);
        let filters = [
            MatrixOptions::default(),
            MatrixOptions {
                namespace: Some("ns-1".into()),
                workload: None,
            },
            MatrixOptions {
                namespace: None,
                workload: Some("app-3".into()),
            },
        ];
        for opts in &filters {
            let want = matrix_by_pairs(&engine, opts);
            let s = summarise(&engine, opts);
            assert_eq!(s.connections, want.cells.len(), "{name}");
            let got = s.clone().expand();
            assert_eq!(
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(&want).unwrap(),
                "{name}: grouped and pair-by-pair matrices differ"
            );
            // Every row's members are pairwise distinct groups of one role.
            for r in &s.rows {
                assert_eq!(
                    r.connections,
                    s.groups[r.from].members.len() * s.groups[r.to].members.len()
                );
            }
            compared += want.cells.len();
            if name.starts_with("synthetic") && opts.namespace.is_none() && opts.workload.is_none()
            {
                collapsed += want.cells.len() - s.rows.len();
            }
        }
    }
    assert!(compared > 5000, "only {compared} cells compared");
    // Grouping is not a no-op on the synthetic clusters.
    assert!(collapsed > 500, "grouping saved only {collapsed} rows");
}
