#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Resolved maps merge entries of identical content coming from several
//! rules into one entry carrying every origin. Readers must still see one
//! origin per rule entry, in rule order, as the trace engine reports them.

mod common;

use verdict_core::connectivity::parties;
use verdict_core::engine::{Decision, Engine, Party, Reason};
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::policy::{Direction, Protocol};
use verdict_core::resolved::{resolve, PeerRef};

const PODS: &str = "
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: shop, labels: {app: api}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec: {containers: [{name: c, image: x}]}
status: {podIP: 10.0.0.2}
";

fn ccnp(name: &str, egress: &str) -> String {
    format!(
        "---\napiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata: {{name: {name}}}\nspec:\n  endpointSelector: {{matchLabels: {{app: api}}}}\n  egress:\n{egress}"
    )
}

const DNS53: &str = "    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]\n      toPorts: [{ports: [{port: \"53\", protocol: ANY}]}]\n";
const DNS_ALL: &str = "    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]\n";

fn engine_of(text: &str) -> Inventory {
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.load_text("c.yaml", text);
    inv.complete_namespaces();
    inv
}

fn party<'p>(ps: &'p [Party], name: &str) -> &'p Party {
    ps.iter()
        .find(|p| p.name.contains(name))
        .unwrap_or_else(|| panic!("no party {name}"))
}

#[test]
fn identical_entries_of_many_rules_merge_and_keep_every_origin_in_rule_order() {
    // a: [dns:53, dns any port]; b, c: [dns:53]. The dns:53 entries of a,
    // b and c are one entry; a's second entry stays apart.
    let text = format!(
        "{PODS}{}{}{}",
        ccnp("a", &format!("{DNS53}{DNS_ALL}")),
        ccnp("b", DNS53),
        ccnp("c", DNS53)
    );
    let inv = engine_of(&text);
    let engine = Engine::new(&inv);
    let ps = parties(&engine, &[]);
    let (api, dns) = (party(&ps, "api"), party(&ps, "dns"));
    let map = resolve(&engine, api);
    let dns_index = resolve(&engine, dns).index.unwrap();
    let egress: Vec<_> = map
        .entries
        .iter()
        .filter(|e| e.direction == Direction::Egress)
        .collect();
    assert_eq!(egress.len(), 2, "{egress:#?}");
    let names = |it: Vec<String>| it.join(",");
    let merged: Vec<String> = egress[0].origins().map(|o| o.policy.name.clone()).collect();
    assert_eq!(names(merged), "a,b,c");
    // Deciding rules in unmerged order: a's dns:53, a's any port, b, c.
    let l = map.lookup(
        Direction::Egress,
        PeerRef::Identity(dns_index),
        Protocol::Udp,
        53,
    );
    assert!(l.allowed && !l.denied);
    let got: Vec<String> = l
        .origins
        .iter()
        .map(|o| format!("{} {}", o.policy.name, o.path))
        .collect();
    assert_eq!(
        got,
        [
            "a spec.egress[0]",
            "a spec.egress[1]",
            "b spec.egress[0]",
            "c spec.egress[0]"
        ]
    );
    // The same through the trace engine.
    let d = engine.decide(api, Direction::Egress, dns, Protocol::Udp, 53);
    let traced: Vec<String> = d
        .deciding
        .iter()
        .map(|o| format!("{} {}", o.policy.name, o.path))
        .collect();
    assert_eq!(traced, got);
    // The per-identity rows list every rule too.
    let rows = map.rows();
    let row = rows
        .iter()
        .find(|(k, _)| k.direction == Direction::Egress && k.from_port == 53)
        .unwrap();
    let row_rules: Vec<String> = row
        .1
        .origins
        .iter()
        .map(|o| o.policy.name.clone())
        .collect();
    assert_eq!(names(row_rules), "a,b,c");
}

/// On every conformance scenario, each party's resolved map decides every
/// peer at every port its entries name like the trace engine, with the
/// same deciding rules in the same order.
#[test]
fn merged_lookups_match_the_trace_engine_on_the_conformance_scenarios() {
    let mut compared = 0;
    let mut merged = 0;
    let mut icmp = 0;
    for (f, inv) in &common::conformance_inventories() {
        let engine = Engine::new(inv);
        let ps = parties(&engine, &[]);
        let maps: Vec<_> = ps.iter().map(|p| resolve(&engine, p)).collect();
        for (s, m) in ps.iter().zip(&maps) {
            merged += m.entries.iter().filter(|e| e.origins.len() > 1).count();
            for (peer, pm) in ps.iter().zip(&maps) {
                let Some(pi) = pm.index else { continue };
                for dir in Direction::BOTH {
                    let mut ports: Vec<(Protocol, u16)> = m
                        .entries
                        .iter()
                        .filter(|e| e.direction == dir)
                        .flat_map(|e| [(e.protocol, e.from_port), (e.protocol, e.to_port)])
                        .map(|(p, port)| (if p == Protocol::Any { Protocol::Tcp } else { p }, port))
                        .collect();
                    // ICMP echo requests of both families (an ICMP "port"
                    // is its type): L3-only entries cover them, `ANY` does not.
                    ports.extend([
                        (Protocol::Tcp, 80),
                        (Protocol::Icmp, 8),
                        (Protocol::Icmpv6, 128),
                    ]);
                    ports.sort();
                    ports.dedup();
                    for (proto, port) in ports {
                        icmp += usize::from(matches!(proto, Protocol::Icmp | Protocol::Icmpv6));
                        let l = m.lookup(dir, PeerRef::Identity(pi), proto, port);
                        let d = engine.decide(s, dir, peer, proto, port);
                        // Each deciding rule entry once, in the same order.
                        let a: Vec<String> = l.origins.iter().map(|o| o.to_string()).collect();
                        let b: Vec<String> = d.deciding.iter().map(|o| o.to_string()).collect();
                        assert_eq!(
                            a, b,
                            "{} {dir} {} {proto}/{port} in {f:?}",
                            s.name, peer.name
                        );
                        assert_eq!(
                            (l.allowed, l.denied),
                            (
                                d.decision == Decision::Allowed,
                                d.reason == Reason::DeniedByRule
                            ),
                            "{} {dir} {} {proto}/{port} in {f:?}",
                            s.name,
                            peer.name
                        );
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 1000, "{compared}");
    assert!(icmp > 1000, "{icmp}");
    assert!(merged > 0, "no scenario merges entries");
}

fn lookup_and_trace(
    engine: &Engine,
    map: &verdict_core::resolved::ResolvedPolicy,
    (s, dir, peer): (&Party, Direction, &Party),
    (proto, port): (Protocol, u16),
) -> (bool, bool, Vec<String>) {
    let pi = resolve(engine, peer).index.unwrap();
    let l = map.lookup(dir, PeerRef::Identity(pi), proto, port);
    let got: Vec<String> = l
        .origins
        .iter()
        .map(|o| format!("{} {}", o.policy.name, o.path))
        .collect();
    let d = engine.decide(s, dir, peer, proto, port);
    let traced: Vec<String> = d
        .deciding
        .iter()
        .map(|o| format!("{} {}", o.policy.name, o.path))
        .collect();
    assert_eq!(got, traced, "{} {dir} {} {proto}/{port}", s.name, peer.name);
    assert_eq!(l.allowed, d.decision == Decision::Allowed);
    (l.allowed, l.denied, got)
}

/// An item without `toPorts`/`icmps` is Cilium's protocol-0 key: every
/// protocol, ICMP included; `protocol: ANY` is TCP, UDP and SCTP only.
#[test]
fn l3_only_entries_cover_icmp_and_any_does_not() {
    let any0 = "    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]\n      toPorts: [{ports: [{port: \"0\", protocol: ANY}]}]\n";
    let text = format!("{PODS}{}{}", ccnp("l3", DNS_ALL), ccnp("any", any0));
    let inv = engine_of(&text);
    let engine = Engine::new(&inv);
    let ps = parties(&engine, &[]);
    let (api, dns) = (party(&ps, "api"), party(&ps, "dns"));
    let map = resolve(&engine, api);
    let side = (api, Direction::Egress, dns);
    for icmp in [(Protocol::Icmp, 8), (Protocol::Icmpv6, 128)] {
        let (allowed, _, rules) = lookup_and_trace(&engine, &map, side, icmp);
        assert!(allowed);
        assert_eq!(rules, ["l3 spec.egress[0]"]);
    }
    let (allowed, _, mut rules) = lookup_and_trace(&engine, &map, side, (Protocol::Udp, 53));
    assert!(allowed);
    rules.sort();
    assert_eq!(rules, ["any spec.egress[0]", "l3 spec.egress[0]"]);

    // Without the L3-only rule, ICMP to dns meets default deny.
    let inv = engine_of(&format!("{PODS}{}", ccnp("any", any0)));
    let engine = Engine::new(&inv);
    let ps = parties(&engine, &[]);
    let (api, dns) = (party(&ps, "api"), party(&ps, "dns"));
    let map = resolve(&engine, api);
    let (allowed, denied, rules) = lookup_and_trace(
        &engine,
        &map,
        (api, Direction::Egress, dns),
        (Protocol::Icmp, 8),
    );
    assert!(!allowed && !denied && rules.is_empty());
}

/// Conformance scenario hard-0004: a clusterwide `ingressDeny` from the
/// `cluster` entity without ports denies shop/cache-0's ICMP echo to
/// itself; the resolved map names that deny, as the trace engine does.
#[test]
fn an_l3_only_deny_decides_icmp_in_the_resolved_map() {
    let all = common::conformance_inventories();
    let (_, inv) = all
        .iter()
        .find(|(f, _)| f.ends_with("hard/hard-0004.json"))
        .unwrap();
    let engine = Engine::new(inv);
    let ps = parties(&engine, &[]);
    let cache = party(&ps, "shop/cache-0");
    let map = resolve(&engine, cache);
    let (allowed, denied, rules) = lookup_and_trace(
        &engine,
        &map,
        (cache, Direction::Ingress, cache),
        (Protocol::Icmp, 8),
    );
    assert!(!allowed && denied);
    assert_eq!(rules, ["hard-1 spec.ingressDeny[0]"]);
}

/// A rule entry whose several port ranges cover the port decides once:
/// lookups and `verdict policy` rows list it once, as the trace does.
#[test]
fn a_rule_entry_with_several_ranges_covering_a_port_is_listed_once() {
    let ports = "    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]\n      toPorts: [{ports: [{port: \"50\", endPort: 60, protocol: UDP}, {port: \"53\", protocol: UDP}, {port: \"53\", protocol: UDP}]}]\n";
    let text = format!("{PODS}{}{}", ccnp("r", ports), ccnp("s", DNS53));
    let inv = engine_of(&text);
    let engine = Engine::new(&inv);
    let ps = parties(&engine, &[]);
    let (api, dns) = (party(&ps, "api"), party(&ps, "dns"));
    let map = resolve(&engine, api);
    let (allowed, _, rules) = lookup_and_trace(
        &engine,
        &map,
        (api, Direction::Egress, dns),
        (Protocol::Udp, 53),
    );
    assert!(allowed);
    assert_eq!(rules, ["r spec.egress[0]", "s spec.egress[0]"]);
    // `verdict policy` rows: the UDP/53 row names r once (s is on ANY/53).
    let rows = map.rows();
    let row = rows
        .iter()
        .find(|(k, _)| {
            k.direction == Direction::Egress
                && k.protocol == Protocol::Udp
                && (k.from_port, k.to_port) == (53, 53)
        })
        .unwrap();
    let row_rules: Vec<&str> = row
        .1
        .origins
        .iter()
        .map(|o| o.policy.name.as_str())
        .collect();
    assert_eq!(row_rules, ["r"]);
    for (k, v) in &rows {
        let mut seen: Vec<String> = v.origins.iter().map(|o| o.to_string()).collect();
        let n = seen.len();
        seen.dedup();
        assert_eq!(seen.len(), n, "{k:?}: {:?}", v.origins);
    }
}
