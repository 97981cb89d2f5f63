#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The connectivity delta (only the pairs changed rules can affect, from
//! resolved maps) must find exactly what the brute force finds (every pair
//! of parties, every port class, flow by flow, before and after): on every
//! conformance scenario, with each policy added and with each removed, and
//! with a client CIDR among the parties.

mod common;

use verdict_core::connectivity::{added, connectivity, parties};
use verdict_core::connectivity_delta::delta;
use verdict_core::engine::{Engine, Party};
use verdict_core::ingest::Inventory;
use verdict_core::policy::Direction;
use verdict_core::resolved::resolve;

fn scenarios() -> Vec<Inventory> {
    common::conformance_inventories()
        .into_iter()
        .map(|(_, inv)| inv)
        .collect()
}

/// Sides in default deny after and not before, from resolved maps.
fn closed_brute(before: &Engine, after: &Engine, extra: &[Party]) -> Vec<(String, Direction)> {
    let pb = parties(before, extra);
    let mut out = Vec::new();
    for (b, a) in pb.iter().zip(parties(after, extra)) {
        if !a.enforced || b.identity.is_endpoint() != a.identity.is_endpoint() {
            continue;
        }
        if matches!(
            b.identity.kind,
            verdict_core::identity::IdentityKind::Cidr(_)
        ) {
            continue;
        }
        let (mb, ma) = (resolve(before, b), resolve(after, &a));
        for dir in Direction::BOTH {
            let closed = |s: &verdict_core::resolved::DirectionState| s.enforced && s.default_deny;
            if closed(ma.state(dir)) && !closed(mb.state(dir)) {
                out.push((a.name.clone(), dir));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn compare(before: &Inventory, after: &Inventory, extra_names: &[&str], what: &str) -> usize {
    let (eb, ea) = (Engine::new(before), Engine::new(after));
    let extra: Vec<Party> = extra_names
        .iter()
        .filter_map(|n| eb.party(n).ok())
        .collect();
    let d = delta(&eb, &ea, &extra);
    let cb = connectivity(&eb, &parties(&eb, &extra));
    let ca = connectivity(&ea, &parties(&ea, &extra));
    let mut brute = added(&cb, &ca);
    brute.sort();
    brute.dedup();
    let only_delta: Vec<_> = d.added.iter().filter(|c| !brute.contains(c)).collect();
    let only_brute: Vec<_> = brute.iter().filter(|c| !d.added.contains(c)).collect();
    assert!(
        only_delta.is_empty() && only_brute.is_empty(),
        "{what}: added connectivity differs: only in the delta {only_delta:?}, only in the brute force {only_brute:?}"
    );
    assert_eq!(
        d.newly_default_deny,
        closed_brute(&eb, &ea, &extra),
        "{what}: sides newly in default deny differ"
    );
    brute.len()
}

#[test]
fn delta_agrees_with_brute_force_on_every_scenario() {
    let mut checked = 0;
    let mut found = 0;
    let start: usize = std::env::var("DELTA_FROM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for (si, full) in scenarios().iter().enumerate().skip(start) {
        // One policy of each scenario, the first, second or third in turn
        // (the brute force is slow: every policy of every scenario would
        // take ten minutes of CI's debug build).
        let n = full.policies.len().min(3);
        for k in (0..n).skip(si % n.max(1)).take(1) {
            let mut without = full.clone();
            without.policies.remove(k);
            let what = format!("scenario {si}, policy {k}");
            // Added, then removed.
            found += compare(&without, full, &["cidr:203.0.113.7/32"], &what);
            found += compare(full, &without, &["cidr:10.0.0.0/8"], &what);
            checked += 2;
        }
    }
    assert!(checked > 300, "only {checked} comparisons");
    assert!(
        found > 100,
        "the scenarios should open connectivity: {found}"
    );
}

#[test]
fn unchanged_input_compares_nothing() {
    let full = scenarios().into_iter().next().unwrap();
    let e = Engine::new(&full);
    let d = delta(&e, &e, &[]);
    assert!(d.added.is_empty() && d.newly_default_deny.is_empty());
    assert_eq!(d.pairs, 0);
}
