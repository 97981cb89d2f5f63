#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict paths` on a synthetic cluster where many rules select one side
//! (every fifth policy is a ClusterNetworkPolicy selecting reserved:ingress):
//! explanations name a few rules and a count, the JSON's `rule_lists` hold
//! the complete lists once, and the text shows pods of one identity as one
//! block (the cluster's pods are bare: each stands for itself).

use std::collections::BTreeSet;
use verdict_core::engine::{Engine, Reason};
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::paths::{paths, paths_on, PathOptions, PathsReport, PodPath};
use verdict_core::policy::Direction;
use verdict_core::routes::Routing;
use verdict_core::side::{LIST_MAX, LIST_SHOWN};

fn synthetic(pods: usize) -> Inventory {
    let text = verdict_core::synth::generate_bare(&verdict_core::synth::SynthSpec {
        pods,
        policies: pods / 10,
        seed: 42,
    });
    let mut inv = Inventory::new(ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    inv
}

fn all_paths(r: &PathsReport) -> Vec<&PodPath> {
    r.entry_points
        .iter()
        .flat_map(|e| &e.routes)
        .flat_map(|r| &r.backends)
        .flat_map(|b| &b.paths)
        .collect()
}

#[test]
fn long_rule_lists_are_capped_in_sentences_and_complete_once_in_the_lists() {
    let inv = synthetic(1000);
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let report = paths(&engine, &routing, &PathOptions::default());
    let ingress = engine.party("reserved:ingress").unwrap();
    // What makes reserved:ingress default deny for egress, independently:
    // the rules selecting it with a default deny for egress.
    let expected: BTreeSet<String> = engine
        .selecting_rules(&ingress.identity)
        .filter(|r| r.applies_to(Direction::Egress) && r.default_deny[Direction::Egress.index()])
        .map(|r| format!("{} ({})", r.origin.policy.short(), r.origin.location))
        .collect();
    assert!(expected.len() > LIST_MAX, "{}", expected.len());
    let pods = all_paths(&report);
    assert!(pods.len() > 100, "{}", pods.len());
    let mut seen = 0;
    for p in &pods {
        for c in p.hops.iter().flat_map(|h| &h.checks) {
            // Every check's rules are the list it refers to.
            assert_eq!(*report.rule_lists[c.rules_list], *c.rules);
            if c.side != "egress of reserved:ingress" || c.selected_by.is_none() {
                continue;
            }
            seen += 1;
            let list = &report.rule_lists[c.selected_by.unwrap()];
            let got: BTreeSet<String> = list.iter().cloned().collect();
            assert_eq!(got, expected);
            let shown: Vec<&String> = list.iter().take(LIST_SHOWN).collect();
            let head = shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            assert!(
                c.explanation.starts_with(&format!(
                    "default deny: reserved:ingress is selected by {head} and {} more (all {}: `verdict policy reserved:ingress`) for egress, no rule allows "
                , list.len() - LIST_SHOWN, list.len())),
                "{}",
                c.explanation
            );
            // The fourth rule is not named.
            assert!(!c.explanation.contains(list[LIST_SHOWN].as_str()));
        }
    }
    assert!(seen > 100, "{seen}");
    // Each distinct list is stored once.
    let distinct: BTreeSet<&[String]> = report.rule_lists.iter().map(|l| &l[..]).collect();
    assert_eq!(distinct.len(), report.rule_lists.len());
    assert!(report.rule_lists[0].is_empty());
    // The JSON refers to the lists by index and holds them at the top.
    let json = serde_json::to_value(&report).unwrap();
    let check =
        &json["entry_points"][0]["routes"][0]["backends"][0]["paths"][0]["hops"][1]["checks"][0];
    let by = check["selected_by"].as_u64().unwrap() as usize;
    assert_eq!(
        json["rule_lists"][by].as_array().unwrap().len(),
        report.rule_lists[by].len()
    );
    assert!(check["rules"].is_u64(), "{check}");
}

#[test]
fn the_side_verdict_keeps_every_name() {
    let inv = synthetic(1000);
    let engine = Engine::new(&inv);
    let ingress = engine.party("reserved:ingress").unwrap();
    let backend = engine.party("ns-0/app-0-0").unwrap();
    let v = engine.side(
        &ingress,
        Direction::Egress,
        &backend,
        verdict_core::policy::Protocol::Tcp,
        80,
    );
    assert_eq!(v.reason, Reason::DefaultDeny);
    assert!(v.default_deny_by.len() > LIST_MAX);
    assert_eq!(v.selecting.len(), v.default_deny_by.len());
    let n = v.default_deny_by.len();
    assert!(
        v.explanation
            .contains(&format!(" and {} more (all {n}: ", n - LIST_SHOWN)),
        "{}",
        v.explanation
    );
}

#[test]
fn pods_of_one_identity_are_one_text_block() {
    let inv = synthetic(1000);
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let report = paths(&engine, &routing, &PathOptions::default());
    let pods = all_paths(&report);
    let text = report.to_text();
    // The first backend's ten replicas share an identity: one block naming
    // three of them and the count; their checks are shown once.
    assert!(
        text.contains("ns-0/pod/app-0-0, ns-0/pod/app-0-1, ns-0/pod/app-0-2 and 7 more (`-o json` lists each): 10 pods of one identity, checks shown for the first, targetPort 80: DENIED"),
        "{}",
        &text[..text.len().min(3000)]
    );
    assert!(!text.contains("ns-0/pod/app-0-1 TCP/80"));
    // Pods of one class have the same verdicts and checks but for names.
    let classes: BTreeSet<usize> = pods.iter().filter_map(|p| p.class).collect();
    assert!(
        classes.len() * 5 < pods.len(),
        "{} {}",
        classes.len(),
        pods.len()
    );
    for c in classes {
        let members: Vec<&&PodPath> = pods.iter().filter(|p| p.class == Some(c)).collect();
        let first = members[0];
        for m in &members[1..] {
            assert_eq!(m.decision, first.decision);
            assert_eq!(m.target_port, first.target_port);
            let shape = |p: &PodPath| -> Vec<_> {
                p.hops
                    .iter()
                    .flat_map(|h| &h.checks)
                    .map(|c| (c.decision, c.rules_list, c.selected_by, c.near_miss.len()))
                    .collect()
            };
            assert_eq!(shape(m), shape(first));
        }
    }
    // Every pod still counts in the summary.
    assert_eq!(report.summary.paths, pods.len());
    assert!(text.ends_with(&format!(
        "{}\n",
        verdict_core::paths_render::summary_text(&report.summary)
    )));
}

/// Entry points are followed on several threads when the input is large;
/// the report must be the one a single thread writes: entry points in
/// input order (Gateways, then Ingresses), rule lists numbered in order of
/// first use, every check's numbers pointing at its own lists.
#[test]
fn paths_on_any_number_of_threads_is_the_same_report() {
    let mut text = verdict_core::synth::generate(&verdict_core::synth::SynthSpec {
        pods: 2000,
        policies: 200,
        seed: 42,
    });
    for n in 0..4 {
        text.push_str(&format!(
            "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: ns-{n}\nspec:\n  ingressClassName: cilium\n  rules:\n    - http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: app-{n}\n                port:\n                  number: 80\n"
        ));
    }
    let mut inv = Inventory::new(ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    let routing = Routing::from_inventory(&inv);
    assert!(routing.gateways.len() > 4 && routing.ingresses.len() == 4);
    let engine = Engine::new(&inv);
    let opts = PathOptions::default();
    let one = paths_on(&engine, &routing, &opts, 1);
    assert!(one.rule_lists.len() > 2, "{}", one.rule_lists.len());
    let kinds: BTreeSet<&str> = one
        .entry_points
        .iter()
        .map(|e| e.object.kind.as_str())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["Gateway", "Ingress"]));
    let json = serde_json::to_string(&one).unwrap();
    for threads in [2, 3, 7] {
        let many = paths_on(&engine, &routing, &opts, threads);
        assert_eq!(
            serde_json::to_string(&many).unwrap(),
            json,
            "{threads} threads"
        );
    }
    assert_eq!(
        serde_json::to_string(&paths(&engine, &routing, &opts)).unwrap(),
        json
    );
}
