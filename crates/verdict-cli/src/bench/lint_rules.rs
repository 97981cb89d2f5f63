//! `verdict bench --lint-rules`: where `verdict lint` spends its time and
//! output, inside one process: the parse (the baseline), loading, the
//! `paths` lint builds on, the context's indices, every rule on its own
//! (time, findings, bytes of message and help) and each output format.
//! Rules run one after another on one shared context, as `verdict_lint::run`
//! runs them, so a rule that first asks for a memoised index pays for it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;
use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::paths::{paths, PathOptions};
use verdict_core::routes::Routing;
use verdict_core::synth::Shape;
use verdict_core::yaml::parse_documents;

/// One line of the table.
struct Row {
    stage: String,
    secs: f64,
    findings: Option<usize>,
    bytes: Option<usize>,
}

fn row(stage: impl Into<String>, secs: f64) -> Row {
    Row {
        stage: stage.into(),
        secs,
        findings: None,
        bytes: None,
    }
}

pub fn run(sizes: &[(usize, usize)], shape: Shape) -> Result<u8, String> {
    let mut out = String::from(
        "| pods | policies | stage | s | / parse | findings | bytes |\n|---:|---:|---|---:|---:|---:|---:|\n",
    );
    for &(pods, policies) in sizes {
        let text = super::cluster(pods, policies, shape);
        let mut rows = Vec::new();
        let t = Instant::now();
        drop(std::hint::black_box(parse_documents(&text)));
        let parse = t.elapsed().as_secs_f64();
        rows.push(row("parse", parse));
        let t = Instant::now();
        let mut inv = Inventory::new(ClusterConfig {
            enable_k8s_cluster_network_policy: true,
            ..ClusterConfig::default()
        });
        inv.load_text("cluster.yaml", &text);
        inv.complete_namespaces();
        let routing = Routing::from_inventory(&inv);
        let engine = Engine::new(&inv);
        rows.push(row("load + identities", t.elapsed().as_secs_f64()));
        let t = Instant::now();
        let report_paths = paths(&engine, &routing, &PathOptions::default());
        rows.push(row("paths", t.elapsed().as_secs_f64()));
        let config = verdict_lint::LintConfig::default();
        let t = Instant::now();
        let cx = verdict_lint::Context::new(&inv, &engine, &routing, &report_paths, &config);
        rows.push(row("lint: context indices", t.elapsed().as_secs_f64()));
        let mut own = t.elapsed().as_secs_f64();
        let mut all = Vec::new();
        for rule in verdict_lint::registry() {
            let m = rule.meta();
            let mut found = Vec::new();
            let t = Instant::now();
            rule.check(&cx, &mut found);
            let secs = t.elapsed().as_secs_f64();
            own += secs;
            rows.push(Row {
                stage: format!("lint: {} {}", m.code, m.name),
                secs,
                findings: Some(found.len()),
                bytes: Some(found.iter().map(|f| f.message.len() + f.help.len()).sum()),
            });
            all.extend(found);
        }
        let t = Instant::now();
        let report = verdict_lint::run(&cx, &config);
        rows.push(Row {
            stage: "lint: run (all rules, sorted, suppressions)".into(),
            secs: t.elapsed().as_secs_f64(),
            findings: Some(report.findings.len()),
            bytes: None,
        });
        drop(all);
        let sources = BTreeMap::from([("cluster.yaml".to_string(), text.clone())]);
        let t = Instant::now();
        let txt = report.to_text(&sources);
        rows.push(Row {
            bytes: Some(txt.len()),
            ..row("lint: text output", t.elapsed().as_secs_f64())
        });
        let t = Instant::now();
        let json = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
        rows.push(Row {
            bytes: Some(json.len()),
            ..row("lint: JSON output", t.elapsed().as_secs_f64())
        });
        let t = Instant::now();
        let sarif = serde_json::to_string_pretty(&verdict_lint::sarif::to_sarif(&report, "bench"))
            .unwrap_or_default();
        rows.push(Row {
            bytes: Some(sarif.len()),
            ..row("lint: SARIF output", t.elapsed().as_secs_f64())
        });
        rows.push(row("lint's own (context + rules)", own));
        for r in rows {
            let _ = writeln!(
                out,
                "| {pods} | {policies} | {} | {:.3} | {:.2} | {} | {} |",
                r.stage,
                r.secs,
                r.secs / parse.max(1e-9),
                r.findings.map(|n| n.to_string()).unwrap_or_default(),
                r.bytes.map(|n| n.to_string()).unwrap_or_default()
            );
        }
        let _ = writeln!(
            out,
            "| {pods} | {policies} | peak RSS MiB | {:.0} | | | |",
            super::peak_rss_mib()
        );
    }
    print!("{out}");
    Ok(0)
}
