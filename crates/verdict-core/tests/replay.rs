#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Replaying Hubble flows: every captured file is read, and replayed
//! verdicts agree with `trace` and with the conformance scenarios.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use verdict_core::engine::{Decision, Engine, Party};
use verdict_core::flows::{parse_line, Lines, Record};
use verdict_core::identity::IdentityKind;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::policytest::{self, Expect};
use verdict_core::replay::{skip, LineVerdict, Replayer, Summary};
use verdict_core::trace::{parse_flow_protocol, trace};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    v.sort();
    v
}

/// Reads a file line by line and judges every line; returns the verdicts.
fn replay_file(r: &mut Replayer, f: &Path) -> Vec<LineVerdict> {
    let name: Arc<str> = Arc::from(f.display().to_string().as_str());
    let file = std::fs::File::open(f).unwrap();
    let reader = verdict_core::flows::open(file).unwrap();
    let mut out = Vec::new();
    for (line, text) in Lines::new(reader) {
        let text = text.unwrap_or_else(|e| panic!("{}:{line}: {e}", f.display()));
        let v = match parse_line(&text) {
            Err(e) => panic!("{}:{line}: {e}", f.display()),
            Ok(Record::Empty) => LineVerdict::skipped(&name, line, skip::EMPTY, String::new()),
            Ok(Record::NotAFlow(w)) => LineVerdict::skipped(&name, line, skip::NOT_A_FLOW, w),
            Ok(Record::Flow(fl)) => r.judge(&name, line, &fl),
        };
        out.push(v);
    }
    out
}

fn empty_inventory() -> Inventory {
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.complete_namespaces();
    inv
}

fn check_files(dir: &Path) -> Summary {
    let inv = empty_inventory();
    let engine = Engine::new(&inv);
    let mut r = Replayer::new(&engine);
    let mut s = Summary::default();
    let files = jsonl_files(dir);
    assert!(!files.is_empty(), "{}: no .jsonl file", dir.display());
    for f in files {
        let vs = replay_file(&mut r, &f);
        assert!(!vs.is_empty(), "{}: no line", f.display());
        for v in &vs {
            assert!(
                matches!(v.verdict, "allowed" | "denied" | "skipped"),
                "{}:{}",
                v.file,
                v.line
            );
            if v.verdict == "skipped" {
                assert!(v.reason.is_some() && v.reason != Some(skip::MALFORMED));
            }
            s.add(v);
        }
    }
    s
}

/// Every capture in ../shared/flows (top level and reference-only) is read
/// without error: each record is replayed or skipped with a reason. The
/// directories must exist: a missing one fails the test.
#[test]
fn every_shared_flow_file_is_read() {
    let root = repo_root().join("../shared/flows");
    let top = check_files(&root);
    eprintln!("{}", top.to_text());
    assert!(top.judged > 0);
    let refs = check_files(&root.join("reference-only"));
    eprintln!("{}", refs.to_text());
    assert!(refs.judged > 0);
    // No policy at all: nothing that was delivered breaks.
    assert_eq!(top.breaks + refs.breaks, 0);
    // The Gateway capture: Envoy (reserved:ingress) to the backend is judged.
    assert!(refs.groups().any(|g| g.from == "reserved:ingress"));
    // AUDIT and DROPPED records were judged: with no policy they are
    // newly allowed.
    assert!(refs.newly_allowed > 0);
}

/// The Apache-2.0 captures copied into the project's test data.
#[test]
fn project_flow_copies_are_read() {
    let s = check_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flows"));
    assert!(s.records > 0);
    assert!(s.skipped_by_reason.contains_key(skip::L7));
}

/// A flow record for two parties, as Hubble writes it at the destination
/// endpoint (FORWARDED, TO_ENDPOINT, SYN) or as a policy verdict of one
/// side (`direction`).
fn record(
    from: &Party,
    to: &Party,
    proto: &str,
    port: u16,
    direction: Option<&str>,
) -> Option<String> {
    fn endpoint(p: &Party) -> Option<(serde_json::Value, Option<String>)> {
        let mut ep = serde_json::json!({
            "identity": p.identity.id,
            "labels": p.identity.labels.to_strings(),
        });
        let mut ip = None;
        match &p.identity.kind {
            IdentityKind::Endpoint => {
                let parts: Vec<&str> = p.name.split('/').collect();
                ep["namespace"] = serde_json::json!(parts[0]);
                match parts.as_slice() {
                    [_, pod] => ep["pod_name"] = serde_json::json!(pod),
                    [_, kind, name] => {
                        ep["workloads"] = serde_json::json!([{"name": name, "kind": kind}]);
                    }
                    _ => return None,
                }
                ep["ID"] = serde_json::json!(1);
            }
            IdentityKind::Cidr(c) => {
                let s = c.to_string();
                let (addr, len) = s.split_once('/').unwrap();
                if !(len == "32" || len == "128") {
                    return None;
                }
                ip = Some(addr.to_string());
            }
            IdentityKind::Reserved(_) => {}
        }
        Some((ep, ip))
    }
    let (src, sip) = endpoint(from)?;
    let (dst, dip) = endpoint(to)?;
    let l4 = match proto {
        "TCP" => {
            serde_json::json!({"TCP": {"source_port": 40000, "destination_port": port, "flags": {"SYN": true}}})
        }
        "UDP" => serde_json::json!({"UDP": {"source_port": 40000, "destination_port": port}}),
        "SCTP" => serde_json::json!({"SCTP": {"source_port": 40000, "destination_port": port}}),
        "ICMP" => serde_json::json!({"ICMPv4": {"type": port}}),
        "ICMPv6" => serde_json::json!({"ICMPv6": {"type": port}}),
        _ => return None,
    };
    let mut flow = serde_json::json!({
        "verdict": "FORWARDED",
        "IP": {"ipVersion": "IPv4"},
        "l4": l4,
        "source": src,
        "destination": dst,
        "Type": "L3_L4",
        "is_reply": false,
    });
    // A world party without an address (reserved:world) keeps none: an
    // address would make it a CIDR identity.
    if let Some(ip) = sip {
        flow["IP"]["source"] = serde_json::json!(ip);
    }
    if let Some(ip) = dip {
        flow["IP"]["destination"] = serde_json::json!(ip);
    }
    match direction {
        Some(d) => {
            flow["event_type"] = serde_json::json!({"type": 5});
            flow["traffic_direction"] = serde_json::json!(d);
        }
        None => {
            flow["event_type"] = serde_json::json!({"type": 4});
            flow["trace_observation_point"] = serde_json::json!("TO_ENDPOINT");
        }
    }
    Some(
        serde_json::json!({"flow": flow, "node_name": "n1", "time": "2026-01-01T00:00:00Z"})
            .to_string(),
    )
}

fn judge_text(r: &mut Replayer, text: &str) -> LineVerdict {
    let file: Arc<str> = Arc::from("gen.jsonl");
    match parse_line(text).unwrap() {
        Record::Flow(f) => r.judge(&file, 1, &f),
        _ => panic!("not a flow: {text}"),
    }
}

fn decision(v: &LineVerdict) -> Option<Decision> {
    match v.verdict {
        "allowed" => Some(Decision::Allowed),
        "denied" => Some(Decision::Denied),
        _ => None,
    }
}

/// Replay verdicts agree with `trace` for flows built from the pods of
/// random synthetic clusters (labels only, as Hubble names them).
#[test]
fn replay_agrees_with_trace_on_synthetic_clusters() {
    for seed in [3u64, 11, 29] {
        let text = verdict_core::synth::generate(&verdict_core::synth::SynthSpec {
            pods: 400,
            policies: 60,
            seed,
        });
        let mut inv = Inventory::new(ClusterConfig {
            enable_k8s_cluster_network_policy: true,
            ..ClusterConfig::default()
        });
        inv.load_text("synthetic.yaml", &text);
        inv.complete_namespaces();
        let engine = Engine::new(&inv);
        let pods: Vec<String> = inv.workloads.iter().map(|w| w.display_name()).collect();
        let mut parties: Vec<Party> = pods.iter().map(|p| engine.party(p).unwrap()).collect();
        for extra in [
            "ingress",
            "world",
            "host",
            "remote-node",
            "198.51.7.9",
            "203.0.113.5",
        ] {
            parties.push(engine.party(extra).unwrap());
        }
        let mut r = Replayer::new(&engine);
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            usize::try_from(rng % n as u64).unwrap()
        };
        let ports = [80u16, 443, 5432, 6379, 8080, 9090, 9100, 53];
        let mut counts: BTreeMap<Decision, usize> = BTreeMap::new();
        for _ in 0..600 {
            let a = &parties[next(parties.len())];
            let b = &parties[next(parties.len())];
            let port = ports[next(ports.len())];
            let proto = if next(5) == 0 { "UDP" } else { "TCP" };
            let expected = trace(&engine, a, b, parse_flow_protocol(proto).unwrap(), port);
            let rec = record(a, b, proto, port, None).unwrap();
            let v = judge_text(&mut r, &rec);
            assert_eq!(
                decision(&v),
                Some(expected.decision),
                "seed {seed}: {} -> {} {proto}/{port}: replay {v:?}, trace {}",
                a.name,
                b.name,
                expected.to_text()
            );
            *counts.entry(expected.decision).or_default() += 1;
            for (dir, side) in [("EGRESS", &expected.egress), ("INGRESS", &expected.ingress)] {
                let v = judge_text(&mut r, &record(a, b, proto, port, Some(dir)).unwrap());
                let got = if dir == "EGRESS" { v.egress } else { v.ingress };
                assert_eq!(
                    got,
                    Some(side.decision),
                    "seed {seed}: {dir} {} -> {}",
                    a.name,
                    b.name
                );
            }
        }
        assert!(
            counts.len() == 2,
            "seed {seed}: both verdicts occur: {counts:?}"
        );
    }
}

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

/// The conformance scenarios, their `flows:` turned into Hubble records,
/// give their expected verdicts when replayed.
#[test]
fn conformance_flows_replayed_give_expected_verdicts() {
    let gaps = known_gaps();
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let (mut checked, mut not_expressible) = (0, 0);
    let mut failures = Vec::new();
    for dir in ["gateway", "generated", "hard", "tiers"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(base.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(&f).unwrap();
            let (cases, _) = policytest::parse(&name, &text);
            for c in cases {
                let mut inv = c.inventory();
                inv.complete_namespaces();
                let engine = Engine::new(&inv);
                let mut r = Replayer::new(&engine);
                for fc in &c.flows {
                    let at = format!("{name}:{}", fc.line);
                    if gaps
                        .iter()
                        .any(|g| at.starts_with(&format!("{g}:")) || at == *g)
                    {
                        continue;
                    }
                    let (Ok(a), Ok(b)) = (engine.party(&fc.from), engine.party(&fc.to)) else {
                        not_expressible += 1;
                        continue;
                    };
                    let proto = fc.protocol.to_ascii_uppercase();
                    let proto = if proto == "ICMPV6" {
                        "ICMPv6".to_string()
                    } else {
                        proto
                    };
                    match &fc.expect {
                        Expect::Overall(d) => {
                            let Some(rec) = record(&a, &b, &proto, fc.port, None) else {
                                not_expressible += 1;
                                continue;
                            };
                            let v = judge_text(&mut r, &rec);
                            if v.verdict == "skipped" {
                                not_expressible += 1;
                                continue;
                            }
                            checked += 1;
                            if decision(&v) != Some(*d) {
                                failures.push(format!(
                                    "{at}: {} -> {} {proto}/{}: expected {d}, replay {:?}",
                                    fc.from, fc.to, fc.port, v.explanation
                                ));
                            }
                        }
                        Expect::Sides { egress, ingress } => {
                            for (dir, want) in [("EGRESS", egress), ("INGRESS", ingress)] {
                                let Some(want) = want else { continue };
                                let Some(rec) = record(&a, &b, &proto, fc.port, Some(dir)) else {
                                    not_expressible += 1;
                                    continue;
                                };
                                let v = judge_text(&mut r, &rec);
                                if v.verdict == "skipped" {
                                    not_expressible += 1;
                                    continue;
                                }
                                checked += 1;
                                let got = if dir == "EGRESS" { v.egress } else { v.ingress };
                                if got != Some(*want) {
                                    failures.push(format!("{at}: {dir} {} -> {} {proto}/{}: expected {want}, replay {got:?}", fc.from, fc.to, fc.port));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("conformance as flows: {checked} checked, {not_expressible} not expressible as a host flow record, {} failed", failures.len());
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} replayed conformance flows disagree",
        failures.len()
    );
    assert!(checked > 500, "only {checked} flows checked");
}

fn inventory(yaml: &str) -> Inventory {
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.load_text("m.yaml", yaml);
    inv.complete_namespaces();
    inv
}

const MANIFESTS: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, namespace: shop, labels: {app: web, tier: front}}\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: web, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: web}}\n  egress:\n    - toCIDR: [203.0.113.0/24]\n  ingress:\n    - fromEntities: [ingress]\n      toPorts: [{ports: [{port: \"8080\", protocol: TCP}]}]\n";

fn web(extra: &str) -> String {
    format!(
        r#"{{"ID":5,"namespace":"shop","pod_name":"web-0","labels":["k8s:app=web",{extra}"k8s:io.kubernetes.pod.namespace=shop","k8s:io.cilium.k8s.policy.cluster=default","k8s:io.cilium.k8s.policy.serviceaccount=default","k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop"]}}"#
    )
}

#[test]
fn identities_from_labels_numbers_and_addresses() {
    let inv = inventory(MANIFESTS);
    let engine = Engine::new(&inv);
    let mut r = Replayer::new(&engine);
    // World by its address: a CIDR rule matches it.
    let line = format!(
        r#"{{"flow":{{"verdict":"FORWARDED","IP":{{"source":"10.0.0.5","destination":"203.0.113.7"}},"l4":{{"TCP":{{"destination_port":443,"flags":{{"SYN":true}}}}}},"source":{},"destination":{{"identity":2,"labels":["reserved:world"]}},"traffic_direction":"EGRESS","is_reply":false}}}}"#,
        web(r#""k8s:tier=front","#)
    );
    let v = judge_text(&mut r, &line);
    assert_eq!(v.verdict, "allowed", "{v:?}");
    assert_eq!(v.to.as_deref(), Some("cidr:203.0.113.7/32"));
    assert!(v.notes.is_empty(), "labels agree: {:?}", v.notes);
    // Another address of the world is denied at egress: a break.
    let other = line.replace("203.0.113.7", "198.51.100.1");
    let v = judge_text(&mut r, &other);
    assert_eq!(v.verdict, "denied");
    assert_eq!(v.change.map(|c| c.name()), Some("break"));
    // The ingress proxy, by identity number only (masked record), on 8080.
    let line = format!(
        r#"{{"flow":{{"verdict":"FORWARDED","l4":{{"TCP":{{"destination_port":8080,"flags":{{"SYN":true}}}}}},"source":{{"identity":8}},"destination":{},"trace_observation_point":"TO_ENDPOINT"}}}}"#,
        web(r#""k8s:tier=front","#)
    );
    let v = judge_text(&mut r, &line);
    assert_eq!(v.verdict, "allowed", "{v:?}");
    assert_eq!(v.from.as_deref(), Some("reserved:ingress"));
    assert!(v.notes.iter().any(|n| n.contains("hop 2")));
    // Labels that disagree with the manifests are reported.
    let line = line.replace(r#""k8s:tier=front","#, r#""k8s:tier=back","#);
    let v = judge_text(&mut r, &line);
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("disagree") && n.contains("k8s:tier=back")),
        "{:?}",
        v.notes
    );
    // AUDIT observed, denied by the policies: a break; DROPPED, allowed: newly allowed.
    let audit = line.replace("FORWARDED", "AUDIT").replace("8080", "9090");
    let v = judge_text(&mut r, &audit);
    assert_eq!(v.change.map(|c| c.name()), Some("break"), "{v:?}");
    let dropped = line.replace(
        "\"verdict\":\"FORWARDED\"",
        "\"verdict\":\"DROPPED\",\"drop_reason_desc\":\"POLICY_DENIED\"",
    );
    let v = judge_text(&mut r, &dropped);
    assert_eq!(v.change.map(|c| c.name()), Some("newly-allowed"), "{v:?}");
    // Replies and non-SYN segments are skipped.
    let v = judge_text(&mut r, &line.replace("\"SYN\":true", "\"ACK\":true"));
    assert_eq!(v.reason, Some(skip::NOT_CONNECTION_START));
    let v = judge_text(
        &mut r,
        &line.replace("\"verdict\"", "\"is_reply\":true,\"verdict\""),
    );
    assert_eq!(v.reason, Some(skip::REPLY));
}

/// The grouped view stays bounded however many world addresses appear.
#[test]
fn groups_are_bounded() {
    use verdict_core::replay::GROUPS_MAX;
    let inv = inventory(MANIFESTS);
    let engine = Engine::new(&inv);
    let mut r = Replayer::new(&engine);
    let mut s = Summary::default();
    let n = GROUPS_MAX + 500;
    for i in 0..n {
        let line = format!(
            r#"{{"flow":{{"verdict":"FORWARDED","IP":{{"source":"100.{}.{}.{}","destination":"10.0.0.5"}},"l4":{{"TCP":{{"destination_port":8080,"flags":{{"SYN":true}}}}}},"source":{{"identity":2,"labels":["reserved:world"]}},"destination":{},"trace_observation_point":"TO_ENDPOINT"}}}}"#,
            i / 65536,
            (i / 256) % 256,
            i % 256,
            web(r#""k8s:tier=front","#)
        );
        s.add(&judge_text(&mut r, &line));
    }
    assert_eq!(s.judged, n);
    let groups: Vec<_> = s.groups().collect();
    assert_eq!(groups.len(), GROUPS_MAX + 1);
    assert!(groups
        .iter()
        .any(|g| g.from == "cidr:(other addresses)" && g.count == 500));
}

/// Two pods of one identity (same labels, different pods) are grouped
/// apart; the verdict cache shares their decision, and each explanation
/// names its own pod, as the subject and as the peer.
#[test]
fn explanations_name_each_pod_of_one_identity() {
    let policy = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: db, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n    - fromEndpoints: [{matchLabels: {app: front}}]\n";
    let inv = inventory(policy);
    let engine = Engine::new(&inv);
    let mut r = Replayer::new(&engine);
    let pod = |name: &str, app: &str| {
        format!(
            r#"{{"ID":5,"identity":70000,"namespace":"shop","pod_name":"{name}","labels":["k8s:app={app}","k8s:io.kubernetes.pod.namespace=shop","k8s:io.cilium.k8s.policy.cluster=default","k8s:io.cilium.k8s.policy.serviceaccount=default","k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop"]}}"#
        )
    };
    let line = |from: &str, to: &str| {
        format!(
            r#"{{"flow":{{"verdict":"DROPPED","drop_reason_desc":"POLICY_DENIED","IP":{{"source":"10.0.0.5","destination":"10.0.0.6"}},"l4":{{"TCP":{{"destination_port":5432,"flags":{{"SYN":true}}}}}},"source":{},"destination":{},"traffic_direction":"INGRESS","is_reply":false}}}}"#,
            pod(from, "web"),
            pod(to, "db")
        )
    };
    let mut seen = Vec::new();
    for (from, to) in [
        ("web-0", "db-0"),
        ("web-1", "db-0"),
        ("web-0", "db-1"),
        ("web-1", "db-1"),
        ("web-0", "db-0"),
    ] {
        let v = judge_text(&mut r, &line(from, to));
        assert_eq!(v.verdict, "denied", "{v:?}");
        let why = v.explanation.as_deref().unwrap();
        assert!(
            why.starts_with(&format!("default deny: shop/{to} is selected by "))
                && why.ends_with(&format!("no rule allows shop/{from} on TCP/5432")),
            "{from} -> {to}: {why}"
        );
        seen.push(v.deciding.clone());
    }
    // The decision is shared: the deciding rules are one allocation.
    assert!(seen.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
}
