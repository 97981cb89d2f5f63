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
    let spec = verdict_core::synth::SynthSpec {
        pods,
        policies: pods / 10,
        seed: 42,
    };
    verdict_core::synth::load_shaped(&spec, shape)
}

/// The grouped computation (one cell per pair of identity classes, then
/// expanded) gives exactly the cells of the pair-by-pair computation, in
/// the same order, with and without filters: on every conformance
/// scenario and on synthetic clusters of both shapes.
#[test]
fn grouped_matrix_equals_the_pair_by_pair_matrix() {
    use verdict_core::matrix::matrix_by_pairs;
    use verdict_core::matrix_summary::{summarise, summarise_without_rules};
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
    // Enough namespaces that ClusterNetworkPolicy subjects reach apps of
    // other namespaces: many sides whose held entries are equal in content
    // (one cell evaluation for many signatures, views.rs).
    invs.push((
        "synthetic Standard 4000".to_string(),
        synthetic(4000, verdict_core::synth::Shape::Standard),
    ));
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
            // The summary without rules (report, matrix text/CSV/DOT/
            // Mermaid) stands for the same pairs with the same ports and
            // flags; rows that differed only by their rules are one row.
            let bare = summarise_without_rules(&engine, opts);
            assert!(bare.rows.iter().all(|r| r.rules.is_empty()), "{name}");
            let mut want_bare = want.clone();
            for c in &mut want_bare.cells {
                c.rules.clear();
            }
            assert_eq!(
                serde_json::to_string(&bare.expand()).unwrap(),
                serde_json::to_string(&want_bare).unwrap(),
                "{name}: the summary without rules differs"
            );
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

/// A cluster whose sides hold overlapping peer sets: twelve sources, each
/// labelled with the bits of its number; one destination admits each bit
/// (and each pair of bits) on its own port, so the sources' classes are held
/// by many sets of that side, while other sides hold them in one set (the
/// index answers from the class's sets or walks the side, whichever is
/// shorter). Egress sides do the same for the destinations.
fn overlapping_sets() -> String {
    let mut y = String::new();
    for i in 0..12u32 {
        let bits: String = (0..4)
            .map(|b| format!("    b{b}: \"{}\"\n", (i >> b) & 1))
            .collect();
        y += &format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: src-{i}\n  namespace: ov\n  labels:\n    role: src\n    n: \"{i}\"\n{bits}spec:\n  containers:\n    - name: main\n      image: registry.example/s:1\n"
        );
    }
    for d in 0..3 {
        y += &format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: dst-{d}\n  namespace: ov\n  labels:\n    role: dst\n    d: \"{d}\"\nspec:\n  containers:\n    - name: main\n      image: registry.example/d:1\n"
        );
    }
    // dst-0: one rule per bit and per pair of bits, each on its own port.
    let mut rules = String::new();
    let mut port = 1000;
    for a in 0..4 {
        for b in a..4 {
            port += 10;
            let second = if a == b {
                String::new()
            } else {
                format!("              b{b}: \"1\"\n")
            };
            rules += &format!(
                "    - from:\n        - podSelector:\n            matchLabels:\n              b{a}: \"1\"\n{second}      ports:\n        - port: {port}\n"
            );
        }
    }
    y += &format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: many\n  namespace: ov\nspec:\n  podSelector:\n    matchLabels:\n      d: \"0\"\n  ingress:\n{rules}"
    );
    // dst-1: one set holding half the sources.
    y += "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: one\n  namespace: ov\nspec:\n  podSelector:\n    matchLabels:\n      d: \"1\"\n  ingress:\n    - from:\n        - podSelector:\n            matchLabels:\n              b0: \"1\"\n      ports:\n        - port: 80\n";
    // Sources with b1=1: egress only to dst-0 and dst-2 (overlapping sets), and DNS-free.
    y += "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: out\n  namespace: ov\nspec:\n  podSelector:\n    matchLabels:\n      b1: \"1\"\n  policyTypes: [Egress]\n  egress:\n    - to:\n        - podSelector:\n            matchLabels:\n              role: dst\n      ports:\n        - port: 1010\n        - port: 80\n    - to:\n        - podSelector:\n            matchLabels:\n              d: \"0\"\n    - to:\n        - podSelector:\n            matchExpressions:\n              - {key: d, operator: In, values: [\"0\", \"2\"]}\n      ports:\n        - port: 1030\n";
    y
}

/// The held-set index gives the cells of the plain walk over every peer
/// set of both sides (`matrix_by_pairs`), on sides with many overlapping
/// sets, and visits fewer sets than that walk.
#[test]
fn held_set_index_equals_the_walk_over_overlapping_sets() {
    use verdict_core::matrix::matrix_by_pairs;
    use verdict_core::matrix_summary::{held_set_visits, summarise};
    let mut inv =
        verdict_core::ingest::Inventory::new(verdict_core::ingest::ClusterConfig::default());
    inv.load_text("overlap.yaml", &overlapping_sets());
    inv.complete_namespaces();
    assert!(
        inv.diagnostics
            .iter()
            .all(|d| d.severity != verdict_core::source::Severity::Error),
        "{:?}",
        inv.diagnostics
    );
    let engine = Engine::new(&inv);
    let want = matrix_by_pairs(&engine, &MatrixOptions::default());
    let before = held_set_visits();
    let got = summarise(&engine, &MatrixOptions::default()).expand();
    assert!(held_set_visits() > before, "the index was not used");
    assert_eq!(
        serde_json::to_string_pretty(&got).unwrap(),
        serde_json::to_string_pretty(&want).unwrap()
    );
    // The overlaps decide: src-3 (bits 0 and 1) reaches dst-0 on 1010
    // (b0), 1020 (b0+b1) and 1050 (b1) only; its egress allows any port
    // to dst-0.
    let cell = |from: &str, to: &str| {
        got.cells
            .iter()
            .find(|c| {
                c.from.name.ends_with(&format!("/{from}")) && c.to.name.ends_with(&format!("/{to}"))
            })
            .map(|c| c.ports.iter().map(|p| p.from).collect::<Vec<_>>())
    };
    assert_eq!(cell("src-3", "dst-0"), Some(vec![1010, 1020, 1050]));
    // src-1 (bit 0 only, no egress policy): 1010 only.
    assert_eq!(cell("src-1", "dst-0"), Some(vec![1010]));
    // src-2 (bit 1): egress to dst-1 on 80 allowed by egress, not by dst-1's ingress (b0).
    assert_eq!(cell("src-2", "dst-1"), None);
    assert_eq!(cell("src-3", "dst-1"), Some(vec![80]));
    // src-2 reaches dst-2 (no ingress policy) on 80, 1010 and 1030 only.
    assert_eq!(cell("src-2", "dst-2"), Some(vec![80, 1010, 1030]));
}

/// Without rules (the matrix's text, CSV, DOT and Mermaid forms, the
/// report), destinations that two different policies open alike are one
/// row: the rules that tell them apart are not shown. With rules (JSON,
/// YAML) they stay two rows, each naming its own policy.
#[test]
fn rows_that_differ_only_by_rules_are_one_row_without_rules() {
    use verdict_core::matrix_summary::{summarise, summarise_without_rules};
    let pod = |name: &str, app: &str| {
        format!("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: web\n  labels: {{app: {app}}}\nspec:\n  containers:\n    - name: main\n      image: registry.example/x:1\n")
    };
    let policy = |name: &str, app: &str| {
        format!("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: {name}\n  namespace: web\nspec:\n  podSelector: {{matchLabels: {{app: {app}}}}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n    - from: [{{podSelector: {{matchLabels: {{app: client}}}}}}]\n      ports: [{{port: 8080}}]\n")
    };
    let text = [
        pod("client", "client"),
        pod("a", "a"),
        pod("b", "b"),
        policy("allow-a", "a"),
        policy("allow-b", "b"),
    ]
    .concat();
    let mut inv =
        verdict_core::ingest::Inventory::new(verdict_core::ingest::ClusterConfig::default());
    inv.load_text("web.yaml", &text);
    inv.complete_namespaces();
    let engine = Engine::new(&inv);
    let opts = MatrixOptions::default();
    let to_a_or_b = |s: &verdict_core::matrix_summary::Summary| {
        s.rows
            .iter()
            .filter(|r| {
                s.groups[r.from]
                    .members
                    .iter()
                    .any(|m| m.name == "web/client")
            })
            .map(|r| {
                let to: Vec<&str> = s.groups[r.to]
                    .members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect();
                (to.join(" "), r.rules.len())
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        to_a_or_b(&summarise(&engine, &opts)),
        [("web/a".to_string(), 1), ("web/b".to_string(), 1)]
    );
    assert_eq!(
        to_a_or_b(&summarise_without_rules(&engine, &opts)),
        [("web/a web/b".to_string(), 0)]
    );
}
