//! Work counters of the regression guard (`verdict bench --counters`): how
//! many identities, map entries, matrix cells, path hops and lint findings a
//! synthetic cluster of fixed size produces, and how many selector
//! evaluations each stage spends. They are deterministic (fixed seed, sorted
//! maps), so an accidental quadratic shows up as a count that grows, not as a
//! flaky time. `crates/verdict-cli/tests/bench_counters.rs` compares them
//! with the values checked in beside it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::paths::{paths, PathOptions};
use verdict_core::routes::Routing;
use verdict_core::selector::{count_evaluations, evaluations};
use verdict_core::synth::Shape;

/// The counters of one synthetic cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub pods: usize,
    pub policies: usize,
    pub seed: u64,
    pub shape: String,
    /// Counter name -> value, sorted by name.
    pub counters: BTreeMap<String, u64>,
}

fn n(x: usize) -> u64 {
    u64::try_from(x).unwrap_or(u64::MAX)
}

/// Generates the cluster and counts the work of each stage.
pub fn measure(pods: usize, policies: usize, shape: Shape) -> Result<Counters, String> {
    let seed = 42;
    let text = super::cluster(pods, policies, shape);
    let mut c = BTreeMap::new();
    c.insert(
        "yaml_documents".to_string(),
        n(verdict_core::yaml::parse_documents(&text).len()),
    );
    let mut inv = Inventory::new(ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    drop(text);
    // An info (the pods are represented by their ReplicaSets) is expected.
    if let Some(d) = inv.problems().next() {
        return Err(format!("the synthetic cluster does not load cleanly: {d}"));
    }
    c.insert("rules".to_string(), n(inv.policies.len()));
    let routing = Routing::from_inventory(&inv);
    count_evaluations(true);
    let stage = |name: &str, c: &mut BTreeMap<String, u64>, since: &mut u64| {
        let now = evaluations();
        c.insert(format!("selector_evaluations_{name}"), now - *since);
        *since = now;
    };
    let mut since = evaluations();
    let engine = Engine::new(&inv);
    stage("identities", &mut c, &mut since);
    c.insert("identities".to_string(), n(engine.identities.len()));
    // One thread: the counts must not depend on scheduling.
    let maps = verdict_core::resolved::resolve_all_threads(&engine, 1);
    stage("resolve_all", &mut c, &mut since);
    c.insert(
        "map_entries".to_string(),
        n(maps.iter().map(|r| r.entries.len()).sum()),
    );
    drop(maps);
    let cells_before = verdict_core::matrix_summary::cell_evaluations();
    let held_before = verdict_core::matrix_summary::held_set_visits();
    let m = verdict_core::matrix_summary::summarise(
        &engine,
        &verdict_core::matrix::MatrixOptions::default(),
    );
    // Cells decided (once per distinct deciding sides and entries).
    c.insert(
        "matrix_cell_evaluations".to_string(),
        n(verdict_core::matrix_summary::cell_evaluations() - cells_before),
    );
    // Peer sets visited to find which sets of a side hold a class of peers.
    c.insert(
        "matrix_held_set_visits".to_string(),
        n(verdict_core::matrix_summary::held_set_visits() - held_before),
    );
    stage("matrix", &mut c, &mut since);
    c.insert("matrix_cells".to_string(), n(m.connections));
    // Rows between groups: each decided once (the matrix's work).
    c.insert("matrix_rows".to_string(), n(m.rows.len()));
    drop(m);
    // Entries of side contexts visited by decisions (a port or peer test
    // each): without the peer index, every entry of the rules selecting
    // reserved:ingress once per backend identity.
    let mut visited = verdict_core::engine::side_context::entries_visited();
    let mut visits = |name: &str, c: &mut BTreeMap<String, u64>| {
        let now = verdict_core::engine::side_context::entries_visited();
        c.insert(format!("side_entries_visited_{name}"), now - visited);
        visited = now;
    };
    let report = paths(&engine, &routing, &PathOptions::default());
    stage("paths", &mut c, &mut since);
    visits("paths", &mut c);
    let pod_paths = report
        .entry_points
        .iter()
        .flat_map(|e| &e.routes)
        .flat_map(|r| &r.backends)
        .flat_map(|b| &b.paths);
    c.insert("paths".to_string(), n(pod_paths.clone().count()));
    c.insert(
        "path_hops".to_string(),
        n(pod_paths.map(|p| p.hops.len()).sum()),
    );
    // What the paths' text and JSON hold: bytes of the text view (rule
    // lists capped, pods of one class in one block) and rule names in the
    // JSON's shared `rule_lists` (each distinct list once).
    c.insert("paths_text_bytes".to_string(), n(report.to_text().len()));
    c.insert(
        "paths_rule_list_entries".to_string(),
        n(report.rule_lists.iter().map(|l| l.len()).sum()),
    );
    let config = verdict_lint::LintConfig::default();
    let cx = verdict_lint::Context::new(&inv, &engine, &routing, &report, &config);
    let lint = verdict_lint::run(&cx, &config);
    stage("lint", &mut c, &mut since);
    visits("lint", &mut c);
    c.insert("lint_findings".to_string(), n(lint.findings.len()));
    // The findings' text (message and help): a message that lists an
    // unbounded set (every replica, route or rule) grows faster than the
    // findings.
    c.insert(
        "lint_message_bytes".to_string(),
        n(lint
            .findings
            .iter()
            .map(|f| f.message.len() + f.help.len())
            .sum()),
    );
    drop(lint);
    drop(cx);
    since = evaluations();
    generate_counters(&inv, &engine, &report, &mut c)?;
    stage("generate", &mut c, &mut since);
    replay_counters(&inv, &engine, pods, &mut c)?;
    stage("replay", &mut c, &mut since);
    count_evaluations(false);
    Ok(Counters {
        pods,
        policies,
        seed,
        shape: match shape {
            Shape::Standard => "standard",
            Shape::Dense => "dense",
        }
        .to_string(),
        counters: c,
    })
}

/// `verdict generate` on the cluster: the objects and bytes generated, the
/// side decisions of the paths judged again with them and the side
/// contexts (subject identity, direction) they were decided in, and the party pairs
/// whose connectivity the verification compared (`Verification::pairs_compared`).
fn generate_counters(
    inv: &Inventory,
    engine: &Engine,
    report: &verdict_core::paths::PathsReport,
    c: &mut BTreeMap<String, u64>,
) -> Result<(), String> {
    use verdict_core::generate::{generate, load_generated, rejudge, to_stream, verify_loaded};
    let opts = verdict_core::generate::GenerateOptions::default();
    let (objects, _) = generate(engine, report, &opts);
    let stream = to_stream(&objects);
    c.insert("generate_objects".to_string(), n(objects.len()));
    c.insert("generate_bytes".to_string(), n(stream.len()));
    let (after, load_errors) = load_generated(inv, &stream);
    let routing = Routing::from_inventory(&after);
    let after_engine = engine
        .with_policies_of(&after)
        .ok_or("the generated objects changed the workloads")?;
    let rejudged = rejudge(report, &after_engine).ok_or("the paths could not be judged again")?;
    c.insert(
        "verification_side_decisions".to_string(),
        n(rejudged.decided),
    );
    c.insert(
        "verification_side_contexts".to_string(),
        n(rejudged.contexts),
    );
    let (v, after_paths) =
        verify_loaded(engine, report, &after_engine, &routing, load_errors, &opts);
    if matches!(after_paths, verdict_core::generate::PathsAfter::Full(_)) || !v.ok() {
        return Err("generate on the synthetic cluster does not verify".to_string());
    }
    c.insert(
        "verification_pairs_compared".to_string(),
        n(v.pairs_compared),
    );
    Ok(())
}

/// `verdict replay` of one flow record per pod (each a new connection,
/// as the whole-command benchmark writes them): the peer tests its side
/// decisions made (one per distinct peer list of the subject's rules,
/// not one per rule entry) and the records judged.
fn replay_counters(
    inv: &Inventory,
    engine: &Engine,
    pods: usize,
    c: &mut BTreeMap<String, u64>,
) -> Result<(), String> {
    use verdict_core::flows::{parse_line, Record};
    let parties = crate::bench_replay::parties(engine, inv)?;
    let flows = crate::bench_replay::flow_lines(&parties, pods, None);
    let mut r = verdict_core::replay::Replayer::new(engine);
    let mut s = verdict_core::replay::Summary::default();
    let file: std::sync::Arc<str> = std::sync::Arc::from("flows.jsonl");
    let before = verdict_core::engine::side_context::peer_tests();
    for (i, line) in flows.lines().enumerate() {
        if let Ok(Record::Flow(f)) = parse_line(line) {
            s.add(&r.judge(&file, i + 1, &f));
        }
    }
    c.insert(
        "replay_peer_tests".to_string(),
        verdict_core::engine::side_context::peer_tests() - before,
    );
    c.insert("replay_judged".to_string(), n(s.judged));
    Ok(())
}

pub fn to_json(c: &Counters) -> String {
    serde_json::to_string_pretty(c).unwrap_or_default()
}
