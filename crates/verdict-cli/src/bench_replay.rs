//! `verdict bench --replay N`: N flow records over the 10k-pod synthetic
//! cluster, replayed (parse + identities + verdict) and, as the baseline,
//! only read and parsed; reports the times, their ratio and peak memory.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Instant;
use verdict_core::engine::{Engine, Party};
use verdict_core::flows::{parse_line, Lines, Record};
use verdict_core::identity::IdentityKind;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::replay::{Replayer, Summary};
use verdict_core::synth::Shape;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn endpoint(p: &Party, n: usize) -> (serde_json::Value, String) {
    let mut ep = serde_json::json!({
        "identity": p.identity.id,
        "labels": p.identity.labels.to_strings(),
    });
    if p.identity.kind == IdentityKind::Endpoint {
        if let Some((ns, pod)) = p.name.split_once('/') {
            ep["namespace"] = serde_json::json!(ns);
            ep["pod_name"] = serde_json::json!(pod);
        }
        ep["ID"] = serde_json::json!(1000 + n % 3000);
    }
    let ip = match &p.identity.kind {
        IdentityKind::Cidr(c) => c.to_string().split('/').next().unwrap_or("").to_string(),
        _ => format!("10.{}.{}.{}", n % 200, (n / 200) % 250, n % 250),
    };
    (ep, ip)
}

pub fn run(records: usize, pods: usize, policies: usize) -> Result<u8, String> {
    let text = crate::bench::cluster(pods, policies, Shape::Standard);
    let mut inv = Inventory::new(ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    drop(text);
    let engine = Engine::new(&inv);
    let parties = parties(&engine, &inv)?;
    println!("| records | distinct connections | pods | policies | MiB of flows | parse s | serde_json::Value s | replay s | replay/parse | records/s | judged | would break | newly allowed | peak RSS MiB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    // Random pairs (every record a new connection: the worst case), then
    // 2,000 distinct connections repeated (as real traffic repeats).
    for pool in [None, Some(2_000usize)] {
        row(&engine, &parties, records, pool, pods, policies);
    }
    Ok(0)
}

/// The first 2,000 pods (named as Hubble names them, `ns/pod`, also where
/// the input represents them by their ReplicaSet) and a few reserved and
/// CIDR parties: the endpoints synthetic flows connect.
pub fn parties(engine: &Engine, inv: &Inventory) -> Result<Vec<Party>, String> {
    let pods = inv.workloads.iter().flat_map(|w| {
        let own = w.represents.is_empty().then(|| w.display_name());
        let represented = w
            .represents
            .iter()
            .filter(|r| r.kind == "Pod")
            .map(|r| format!("{}/{}", r.namespace.as_deref().unwrap_or_default(), r.name));
        own.into_iter().chain(represented)
    });
    let mut parties: Vec<Party> = Vec::new();
    for name in pods.take(2000) {
        let mut party = engine.party(&name)?;
        party.name = name;
        parties.push(party);
    }
    for extra in ["ingress", "world", "host", "198.51.7.9", "203.0.113.5"] {
        parties.push(engine.party(extra)?);
    }
    Ok(parties)
}

/// `records` Hubble flow records (jsonpb lines, as `hubble observe -o json`
/// writes them) between random parties, one in ten dropped: every record a
/// new connection (`pool` None), or drawn from `pool` distinct connections.
pub fn flow_lines(parties: &[Party], records: usize, pool: Option<usize>) -> String {
    let ports = [80u16, 443, 5432, 6379, 8080, 9090, 53];
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        usize::try_from(rng % (n.max(1) as u64)).unwrap_or(0)
    };
    let conns: Vec<(&Party, &Party, u16)> = (0..pool.unwrap_or(0))
        .map(|_| {
            (
                &parties[next(parties.len())],
                &parties[next(parties.len())],
                ports[next(ports.len())],
            )
        })
        .collect();
    let mut flows = String::new();
    for i in 0..records {
        let (a, b, port) = match pool {
            Some(_) => conns[next(conns.len())],
            None => (
                &parties[next(parties.len())],
                &parties[next(parties.len())],
                ports[next(ports.len())],
            ),
        };
        let (src, sip) = endpoint(a, i);
        let (dst, dip) = endpoint(b, i + 7);
        let verdict = if next(10) == 0 {
            "DROPPED"
        } else {
            "FORWARDED"
        };
        let line = serde_json::json!({"flow": {
            "time": "2026-01-01T00:00:00.000000000Z",
            "verdict": verdict,
            "drop_reason_desc": if verdict == "DROPPED" { Some("POLICY_DENIED") } else { None },
            "IP": {"source": sip, "destination": dip, "ipVersion": "IPv4"},
            "l4": {"TCP": {"source_port": 30000 + i % 30000, "destination_port": port, "flags": {"SYN": true}}},
            "source": src, "destination": dst, "Type": "L3_L4",
            "event_type": {"type": 4}, "trace_observation_point": "TO_ENDPOINT", "is_reply": false,
        }, "node_name": "node-1", "time": "2026-01-01T00:00:00.000000000Z"});
        flows.push_str(&line.to_string());
        flows.push('\n');
    }
    flows
}

fn row(
    engine: &Engine,
    parties: &[Party],
    records: usize,
    pool: Option<usize>,
    pods: usize,
    policies: usize,
) {
    let flows = flow_lines(parties, records, pool);
    let file: Arc<str> = Arc::from("bench.jsonl");
    // Baseline: read and parse every line.
    let t = Instant::now();
    let mut parsed = 0usize;
    for (_, l) in Lines::new(Cursor::new(flows.as_bytes())) {
        if let Ok(Ok(Record::Flow(f))) = l.map(|t| parse_line(&t)) {
            std::hint::black_box(&f);
            parsed += 1;
        }
    }
    let parse = t.elapsed().as_secs_f64();
    // Generic JSON parsing of the same lines, for reference.
    let t = Instant::now();
    for l in flows.lines() {
        std::hint::black_box(serde_json::from_str::<serde_json::Value>(l).ok());
    }
    let value = t.elapsed().as_secs_f64();
    // Replay: parse + identities + verdict + grouping.
    let t = Instant::now();
    let mut r = Replayer::new(engine);
    let mut s = Summary::default();
    for (n, l) in Lines::new(Cursor::new(flows.as_bytes())) {
        if let Ok(Ok(Record::Flow(f))) = l.map(|t| parse_line(&t)) {
            s.add(&r.judge(&file, n, &f));
        }
    }
    let replay = t.elapsed().as_secs_f64();
    println!(
        "| {records} | {} | {pods} | {policies} | {:.1} | {parse:.3} | {value:.3} | {replay:.3} | {:.2} | {:.0} | {} | {} | {} | {:.0} |",
        pool.map_or_else(|| "all".to_string(), |n| n.to_string()),
        flows.len() as f64 / 1_048_576.0,
        replay / parse.max(1e-9),
        parsed as f64 / replay.max(1e-9),
        s.judged,
        s.breaks,
        s.newly_allowed,
        peak_rss_mib()
    );
}
