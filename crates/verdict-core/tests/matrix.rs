#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The matrix (computed from resolved maps over port classes) must agree
//! with the brute-force connectivity (every pair, every port class, a full
//! trace each) on the conformance scenarios.

use std::collections::BTreeSet;
use std::path::Path;
use verdict_core::connectivity::{connectivity, parties};
use verdict_core::engine::Engine;
use verdict_core::matrix::{matrix, MatrixOptions};
use verdict_core::policy::Direction;
use verdict_core::policytest;

#[test]
fn matrix_agrees_with_brute_force_connectivity() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let mut files: Vec<_> = ["generated", "gateway", "hard", "tiers"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(root.join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .collect();
    files.sort();
    let mut compared = 0;
    for f in &files {
        let (cases, _) = policytest::parse("c.json", &std::fs::read_to_string(f).unwrap());
        let mut inv = cases[0].inventory();
        inv.complete_namespaces();
        let engine = Engine::new(&inv);
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
