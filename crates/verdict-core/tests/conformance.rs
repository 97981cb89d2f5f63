#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Runs every conformance scenario (expected verdicts computed by Cilium's
//! own policy engine) and requires every flow and rejection to agree.

use std::path::Path;
use verdict_core::policytest;

fn run_dir(dir: &str) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut passed = 0;
    let mut failures = Vec::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json" || e == "yaml"))
    {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let (cases, diags) = policytest::parse(&name, &text);
        for d in diags
            .iter()
            .filter(|d| d.severity == verdict_core::source::Severity::Error)
        {
            failures.push(format!("{d}"));
        }
        assert!(!cases.is_empty(), "{name}: no test case");
        for c in cases {
            let mut inv = c.inventory();
            inv.complete_namespaces();
            for d in inv
                .diagnostics
                .iter()
                .filter(|d| d.severity == verdict_core::source::Severity::Error)
            {
                // Errors in policies Cilium refuses are checked by the
                // scenario's `rejected` list.
                let refused = inv
                    .policies
                    .iter()
                    .any(|p| p.rejected.is_some() && Some(&p.object) == d.object.as_ref());
                if !refused {
                    failures.push(format!("{d}"));
                }
            }
            let o = c.run(&inv);
            passed += o.passed;
            failures.extend(o.failures);
        }
    }
    (passed, failures)
}

/// Flows that verdict does not yet get right, one `file:line` per line
/// (`tests/data/conformance/known-gaps.txt`): the list may only shrink; a
/// listed flow that now passes must be removed from it.
fn known_gaps() -> Vec<String> {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance/known-gaps.txt");
    std::fs::read_to_string(f)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

fn check(dir: &str) {
    let (passed, failures) = run_dir(dir);
    let gaps = known_gaps();
    let is_gap = |f: &str| gaps.iter().any(|g| f.starts_with(&format!("{g}:")));
    let (known, new): (Vec<&String>, Vec<&String>) = failures.iter().partition(|f| is_gap(f));
    for f in &new {
        eprintln!("{f}");
    }
    eprintln!(
        "{dir}: {passed} passed, {} failed ({} known gaps)",
        failures.len(),
        known.len()
    );
    assert!(
        new.is_empty(),
        "{} conformance failures in {dir}",
        new.len()
    );
    let prefix = dir.rsplit('/').next().unwrap_or(dir);
    for g in gaps.iter().filter(|g| g.starts_with(&format!("{prefix}-"))) {
        assert!(
            failures.iter().any(|f| f.starts_with(&format!("{g}:"))),
            "{g} is listed in known-gaps.txt but passes now: remove it"
        );
    }
    assert!(passed > 0);
}

/// Our own scenarios (semantics established from Cilium's source, each
/// file says which).
#[test]
fn scenario_cases() {
    check("cases");
}

#[test]
fn conformance_gateway() {
    check("conformance/gateway");
}

#[test]
fn conformance_generated() {
    check("conformance/generated");
}

#[test]
fn conformance_hard() {
    check("conformance/hard");
}

#[test]
fn conformance_tiers() {
    check("conformance/tiers");
}

#[test]
fn synthetic_cluster_loads_cleanly_and_resolves() {
    use verdict_core::engine::Engine;
    use verdict_core::ingest::{ClusterConfig, Inventory};
    let text = verdict_core::synth::generate(&verdict_core::synth::SynthSpec {
        pods: 750,
        policies: 50,
        seed: 7,
    });
    let mut inv = Inventory::new(ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    // Only the note that the pods are represented by their ReplicaSets.
    let problem = inv.problems().next();
    assert!(problem.is_none(), "{problem:?}");
    let pods: usize = inv.workloads.iter().map(|w| w.represents.len()).sum();
    assert_eq!(pods, 750);
    assert!(inv.workloads.iter().all(|w| w.object.kind == "ReplicaSet"));
    assert_eq!(inv.policies.len(), 50);
    let engine = Engine::new(&inv);
    let all = verdict_core::resolved::resolve_all(&engine);
    // One resolved policy per distinct identity; pod-template-hash is filtered.
    let endpoint_ids = engine.identities.iter().filter(|i| i.is_endpoint()).count();
    assert_eq!(all.len(), endpoint_ids);
    assert!(endpoint_ids < 750);
    assert!(all.iter().any(|r| !r.entries.is_empty()));
}

/// The resolved maps (selector cache, entries resolved once, parallel) and
/// the direct per-flow evaluation must agree: every allow entry of a map is
/// an allowed flow unless a deny entry for the same peer covers it, and
/// every deny entry is a denied flow. Returns the number of entries checked.
fn maps_agree_with_flows(inv: &verdict_core::ingest::Inventory) -> usize {
    use verdict_core::engine::{Decision, Engine, Party};
    use verdict_core::policy::Protocol;
    use verdict_core::resolved::{resolve, resolve_all, resolve_all_threads, PeerKey};
    let engine = Engine::new(inv);
    let all = resolve_all(&engine);
    let serial = resolve_all_threads(&engine, 1);
    assert_eq!(
        serde_json::to_string(&all).unwrap(),
        serde_json::to_string(&serial).unwrap(),
        "parallel and serial resolution differ"
    );
    let mut checked = 0;
    for r in all.iter().take(60) {
        let subject = engine.party(&r.subject).unwrap();
        let single = resolve(&engine, &subject);
        assert_eq!(
            serde_json::to_string(&single).unwrap(),
            serde_json::to_string(r).unwrap()
        );
        let rows = r.rows();
        for (k, _) in &rows {
            let PeerKey::Identity { id, .. } = &k.peer else {
                continue;
            };
            let Some(peer_id) = engine.identities.iter().find(|i| i.id == *id) else {
                continue;
            };
            let peer = Party {
                name: peer_id.to_string(),
                identity: peer_id.clone(),
                ports: engine.identity_ports(peer_id.id).to_vec(),
                enforced: true,
            };
            let protocol = if k.protocol == Protocol::Any {
                Protocol::Tcp
            } else {
                k.protocol
            };
            let side = engine.side(&subject, k.direction, &peer, protocol, k.from_port);
            // The map's own answer: covering entries of this peer in
            // Cilium's order (tier, level, deny before allow before pass),
            // the first non-pass decides, a pass skips its tier.
            let mut covering: Vec<_> = rows
                .iter()
                .filter(|(k2, _)| {
                    k2.direction == k.direction
                        && k2.peer == k.peer
                        && k2.from_port <= k.from_port
                        && k.from_port <= k2.to_port
                        && k2.protocol.covers(protocol)
                })
                .map(|(_, v2)| {
                    let action = match (v2.decision, v2.pass) {
                        (Decision::Denied, _) => 0,
                        (_, false) => 1,
                        (_, true) => 2,
                    };
                    (v2.tier, v2.level, action)
                })
                .collect();
            covering.sort();
            let mut passed = None;
            let mut decided = None;
            for (tier, _, action) in covering {
                if passed == Some(tier) {
                    continue;
                }
                if action == 2 {
                    passed = Some(tier);
                    continue;
                }
                decided = Some(if action == 0 {
                    Decision::Denied
                } else {
                    Decision::Allowed
                });
                break;
            }
            let state = if k.direction == verdict_core::policy::Direction::Ingress {
                &r.ingress
            } else {
                &r.egress
            };
            let expected = decided.unwrap_or(if state.default_deny {
                Decision::Denied
            } else {
                Decision::Allowed
            });
            assert_eq!(
                side.decision, expected,
                "{} {:?} -> {}: {}",
                r.subject, k, side.explanation, peer.name
            );
            checked += 1;
        }
        // The summarised map answers a (peer, port) lookup exactly: for
        // peers in and out of its peer sets, on ports in and out of its
        // ranges, as the flow evaluator does.
        let mut ports: Vec<u16> = rows.iter().map(|(k, _)| k.from_port).collect();
        ports.extend([53, 80, 8080, 65535]);
        ports.sort_unstable();
        ports.dedup();
        for (i, peer_id) in engine.identities.iter().enumerate().step_by(5) {
            let peer = Party {
                name: peer_id.to_string(),
                identity: peer_id.clone(),
                ports: engine.identity_ports(peer_id.id).to_vec(),
                enforced: true,
            };
            for dir in verdict_core::policy::Direction::BOTH {
                if !r.state(dir).enforced {
                    continue;
                }
                for &port in ports.iter().take(8) {
                    let side = engine.side(&subject, dir, &peer, Protocol::Tcp, port);
                    let got = r.lookup(
                        dir,
                        verdict_core::peerset::PeerRef::Identity(u32::try_from(i).unwrap()),
                        Protocol::Tcp,
                        port,
                    );
                    assert_eq!(
                        got.allowed,
                        side.decision == Decision::Allowed,
                        "lookup {} {dir:?} {} TCP/{port}: {}",
                        r.subject,
                        peer.name,
                        side.explanation
                    );
                    checked += 1;
                }
            }
        }
    }
    checked
}

#[test]
fn resolved_maps_agree_with_flow_verdicts() {
    use verdict_core::ingest::{ClusterConfig, Inventory};
    let text = verdict_core::synth::generate(&verdict_core::synth::SynthSpec {
        pods: 1500,
        policies: 300,
        seed: 11,
    });
    let mut inv = Inventory::new(ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    assert!(
        inv.policies
            .iter()
            .any(|p| p.object.kind == "ClusterNetworkPolicy"),
        "the synthetic cluster has ClusterNetworkPolicies"
    );
    let checked = maps_agree_with_flows(&inv);
    assert!(checked > 100, "only {checked} entries checked");
}

#[test]
fn resolved_maps_apply_from_requires_like_flows() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cases/requires.yaml");
    let (cases, _) = policytest::parse("requires.yaml", &std::fs::read_to_string(f).unwrap());
    let mut inv = cases[0].inventory();
    inv.complete_namespaces();
    assert!(maps_agree_with_flows(&inv) >= 3);
    let engine = verdict_core::engine::Engine::new(&inv);
    let db = engine.party("shop/db").unwrap();
    let map = verdict_core::resolved::resolve(&engine, &db);
    use verdict_core::engine::Decision;
    use verdict_core::resolved::PeerKey;
    let rows = map.rows();
    let find = |team: &str, port: u16| {
        rows.iter()
            .filter(|(k, _)| matches!(&k.peer, PeerKey::Identity { name, .. } if name.contains(&format!("k8s:team={team}"))))
            .filter(|(k, _)| k.from_port <= port && port <= k.to_port)
            .map(|(_, v)| v.decision)
            .collect::<Vec<_>>()
    };
    // web-a passes the requirement: allowed on every port.
    assert!(
        find("a", 5432).contains(&Decision::Allowed),
        "{}",
        map.to_text(&Default::default(), true)
    );
    // web-b does not: nothing allows it on 5432; on 9999 `all` allows and the deny wins.
    assert!(
        find("b", 5432).iter().all(|d| *d == Decision::Denied),
        "{}",
        map.to_text(&Default::default(), true)
    );
    assert!(
        find("b", 9999).contains(&Decision::Denied),
        "{}",
        map.to_text(&Default::default(), true)
    );
}
