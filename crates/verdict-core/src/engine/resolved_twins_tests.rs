//! Maps built once per twin entry equal maps built entry by entry.

use super::*;
use crate::ingest::{ClusterConfig, Inventory};
use crate::settings::CiliumVersion;
use crate::synth::{generate_shaped, Shape, SynthSpec};

/// Clusterwide rules repeating the same entries: plain ones, one
/// narrowed by `fromRequires` (its peer set is new per map), egress by
/// named port (resolved per destination from 1.20), and entries that
/// differ from their look-alikes only by port, action or peers.
const REPEATS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web, tier: front}}
spec:
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api, tier: back}}
spec:
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 9090}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: data, labels: {app: db, tier: back}}
spec:
  containers: [{name: c, image: x, ports: [{name: pg, containerPort: 5432}]}]
"#;

fn repeated_rule(i: usize) -> String {
    let port = if i % 3 == 2 { 444 } else { 443 };
    let deny = if i % 4 == 3 { "ingressDeny" } else { "ingress" };
    format!(
        r#"---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {{name: repeat-{i}}}
spec:
  endpointSelector: {{}}
  {deny}:
    - fromEndpoints: [{{matchLabels: {{tier: back}}}}]
      toPorts: [{{ports: [{{port: "{port}", protocol: TCP}}]}}]
    - fromCIDR: [10.0.0.0/8]
  egress:
    - toEndpoints: [{{matchLabels: {{app: api}}}}]
      toPorts: [{{ports: [{{port: http, protocol: TCP}}]}}]
    - toEndpoints: [{{}}]
      toPorts: [{{ports: [{{port: "53", protocol: ANY}}]}}]
"#
    )
}

/// Cilium 1.18 only (refused from 1.19).
const REQUIRES: &str = r#"---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: requires, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  ingress:
    - fromRequires: [{matchLabels: {tier: back}}]
      fromEndpoints: [{}]
"#;

/// Every map of `inv` as its entries with their origins (position and
/// rule entry).
type Seen<'r> = (Direction, Vec<PeerRef>, EntryEffect, Vec<&'r str>);

type Map<'r> = Vec<(Seen<'r>, Vec<(u32, usize)>)>;

fn maps(inv: &Inventory, twins: bool, rules: bool) -> Vec<Map<'_>> {
    let engine = Box::leak(Box::new(Engine::new(inv)));
    let mut plan = Plan::new(engine, &[]);
    plan.set_rules(rules);
    if !twins {
        for lists in plan.resolver.by_rule.values_mut() {
            for (_, i, twin) in lists.iter_mut().flatten() {
                *twin = *i;
            }
        }
    }
    (0..plan.len())
        .filter_map(|pi| plan.build(pi))
        .map(|m| {
            m.entries
                .iter()
                .map(|e| {
                    let origins = e
                        .origins
                        .iter()
                        .map(|&(seq, o)| (seq, std::ptr::from_ref(o) as usize))
                        .collect();
                    let peers = e.peers.iter().collect();
                    ((e.direction, peers, e.effect(), e.proxied.clone()), origins)
                })
                .collect()
        })
        .collect()
}

fn load(text: &str, version: CiliumVersion) -> Inventory {
    let mut inv = Inventory::new(ClusterConfig {
        version,
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text("twins.yaml", text);
    inv.complete_namespaces();
    inv
}

/// A map built once per twin entry (the others only adding their
/// origins) equals the map built entry by entry: the same entries, each
/// with every rule it stands for at the same positions.
#[test]
fn maps_built_once_per_twin_equal_maps_built_entry_by_entry() {
    let repeats: String = (0..12).map(repeated_rule).collect();
    let hand = format!("{REPEATS}{repeats}");
    let spec = SynthSpec {
        pods: 2000,
        policies: 200,
        seed: 5,
    };
    let standard = generate_shaped(&spec, Shape::Standard);
    let dense = generate_shaped(&spec, Shape::Dense);
    let inputs = [
        (format!("{hand}{REQUIRES}"), CiliumVersion::V1_18),
        (hand, CiliumVersion::V1_20),
        (standard.clone(), CiliumVersion::V1_18),
        (standard, CiliumVersion::V1_20),
        (dense, CiliumVersion::V1_20),
    ];
    for (k, (text, version)) in inputs.iter().enumerate() {
        let inv = load(text, *version);
        let errors: Vec<String> = inv
            .problems()
            .filter(|p| p.severity == crate::source::Severity::Error)
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "input {k}: {errors:?}");
        let engine = Engine::new(&inv);
        let plan = Plan::new(&engine, &[]);
        let twins = plan
            .resolver
            .by_rule
            .values()
            .flatten()
            .flatten()
            .filter(|&&(_, i, t)| t != i)
            .count();
        assert!(twins > 0, "input {k}: no twin entries");
        let with = maps(&inv, true, true);
        let without = maps(&inv, false, true);
        assert!(with.iter().any(|m| m.iter().any(|(_, o)| o.len() > 1)));
        // Maps without rules (the matrix's): the same entries.
        assert_eq!(
            maps(&inv, true, false),
            maps(&inv, false, false),
            "input {k}, {version:?}, without rules"
        );
        assert_eq!(with, without, "input {k}, {version:?}");
    }
}
