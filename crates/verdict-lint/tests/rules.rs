#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every rule has a fixture that triggers it (snapshot of its findings) and
//! the fixed version, which does not; output formats are snapshotted too.
//! `UPDATE_SNAPSHOTS=1 cargo test -p verdict-lint` rewrites the snapshots.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::paths::{paths, PathOptions};
use verdict_core::routes::Routing;
use verdict_lint::{registry, Context, LintConfig, LintReport};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Run {
    report: LintReport,
    sources: BTreeMap<String, String>,
    denied_paths: usize,
}

fn lint(files: &[&str], config: &LintConfig) -> Run {
    let mut inv = Inventory::new(ClusterConfig::default());
    let mut sources = BTreeMap::new();
    for f in files {
        let text = std::fs::read_to_string(fixtures().join(f)).unwrap();
        inv.load_text(f, &text);
        sources.insert(f.to_string(), text);
    }
    inv.complete_namespaces();
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let report_paths = paths(&engine, &routing, &PathOptions::default());
    let cx = Context::new(&inv, &engine, &routing, &report_paths, config);
    Run {
        report: verdict_lint::run(&cx, config),
        sources,
        denied_paths: report_paths.summary.denied,
    }
}

fn snapshot(name: &str, actual: &str) {
    let path = fixtures().join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing snapshot {name}; run with UPDATE_SNAPSHOTS=1"));
    assert_eq!(
        expected, actual,
        "snapshot {name} differs; run with UPDATE_SNAPSHOTS=1 after checking the change"
    );
}

#[test]
fn the_shared_baseline_is_clean_and_every_path_works() {
    let r = lint(&["base.yaml"], &LintConfig::default());
    assert!(
        r.report.findings.is_empty(),
        "{}",
        r.report.to_text(&r.sources)
    );
    assert_eq!(r.denied_paths, 0);
}

#[test]
fn every_rule_fires_on_its_fixture_and_not_on_the_fixed_one() {
    for rule in registry() {
        let code = rule.meta().code;
        let fires = format!("{code}/fires.yaml");
        let quiet = format!("{code}/quiet.yaml");
        let r = lint(&["base.yaml", &fires], &LintConfig::default());
        let mine: Vec<_> = r
            .report
            .findings
            .iter()
            .filter(|f| f.code == code)
            .collect();
        assert!(
            !mine.is_empty(),
            "{code} does not fire on its fixture:\n{}",
            r.report.to_text(&r.sources)
        );
        let text: String = mine
            .iter()
            .map(|f| {
                format!(
                    "{} {}:{} {} | {} | help: {}\n",
                    f.code,
                    f.location.file,
                    f.location.line,
                    f.path.clone().unwrap_or_default(),
                    f.message,
                    f.help
                )
            })
            .collect();
        snapshot(&format!("{code}/fires.snap"), &text);
        let q = lint(&["base.yaml", &quiet], &LintConfig::default());
        let left: Vec<_> = q
            .report
            .findings
            .iter()
            .filter(|f| f.code == code)
            .collect();
        assert!(
            left.is_empty(),
            "{code} still fires on the fixed fixture: {left:?}"
        );
        // Applying the fix keeps (or makes) every path through the gateways work.
        assert_eq!(q.denied_paths, 0, "{code}: the fixed fixture breaks a path");
    }
}

#[test]
fn output_formats() {
    let r = lint(&["base.yaml", "VRD006/fires.yaml"], &LintConfig::default());
    snapshot("formats/text.snap", &r.report.to_text(&r.sources));
    snapshot(
        "formats/json.snap",
        &(serde_json::to_string_pretty(&r.report.to_json()).unwrap() + "\n"),
    );
    let sarif = verdict_lint::sarif::to_sarif(&r.report, "0.0.0-test");
    snapshot(
        "formats/sarif.snap",
        &(serde_json::to_string_pretty(&sarif).unwrap() + "\n"),
    );
    // SARIF essentials for code scanning: rules with help, results with a region.
    let run = &sarif["runs"][0];
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        registry().len()
    );
    assert!(run["tool"]["driver"]["rules"][0]["help"]["markdown"]
        .as_str()
        .unwrap()
        .contains("## How to fix"));
    let res = &run["results"][0];
    assert_eq!(res["ruleId"], "VRD006");
    assert_eq!(
        res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "VRD006/fires.yaml"
    );
    assert!(
        res["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn configuration_disables_and_changes_levels() {
    let mut cfg = LintConfig::from_yaml(
        "cfg.yaml",
        "lint:\n  rules:\n    VRD006: off\n    selector-selects-nothing: error\n",
    )
    .unwrap();
    let r = lint(
        &["base.yaml", "VRD006/fires.yaml", "VRD004/fires.yaml"],
        &cfg,
    );
    assert!(r.report.findings.iter().all(|f| f.code != "VRD006"));
    assert!(r
        .report
        .findings
        .iter()
        .filter(|f| f.code == "VRD004")
        .all(|f| f.level == verdict_lint::Level::Error));
    cfg.set("VRD006", "on").unwrap();
    let r = lint(&["base.yaml", "VRD006/fires.yaml"], &cfg);
    assert!(r.report.findings.iter().any(|f| f.code == "VRD006"));
    assert!(
        LintConfig::from_yaml("cfg.yaml", "lint:\n  rules:\n    VRD999: off\n")
            .unwrap_err()
            .contains("unknown lint rule `VRD999`")
    );
    assert!(LintConfig::from_yaml("cfg.yaml", "lint:\n  colour: red\n")
        .unwrap_err()
        .contains("unknown key `lint.colour`"));
}

#[test]
fn suppressions_need_a_reason() {
    let r = lint(
        &["base.yaml", "suppress/with-reason.yaml"],
        &LintConfig::default(),
    );
    assert!(
        r.report.findings.iter().all(|f| f.code != "VRD003"),
        "{}",
        r.report.to_text(&r.sources)
    );
    assert_eq!(r.report.suppressed.len(), 1);
    assert_eq!(
        r.report.suppressed[0].1,
        "the cluster-internal monitoring scrapes it"
    );
    let r = lint(
        &["base.yaml", "suppress/without-reason.yaml"],
        &LintConfig::default(),
    );
    assert!(r.report.findings.iter().any(|f| f.code == "VRD003"));
    assert!(
        r.report.notes.iter().any(|n| n.contains("has no reason")),
        "{:?}",
        r.report.notes
    );
}

#[test]
fn rules_doc_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules.md");
    let actual = verdict_lint::rules_markdown();
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        expected, actual,
        "docs/rules.md is stale: run `verdict lint --rules-doc > docs/rules.md`"
    );
    for r in registry() {
        let doc = r.meta().doc();
        for section in [
            "## What it does",
            "## Why is this bad",
            "## Example",
            "## How to fix",
        ] {
            assert!(doc.contains(section), "{} lacks `{section}`", r.meta().code);
        }
    }
}

#[test]
fn route_backend_replicas_failing_alike_are_one_finding() {
    let r = lint(
        &["base.yaml", "VRD005/fires.yaml", "VRD005/replicas.yaml"],
        &LintConfig::default(),
    );
    let mine: Vec<String> = r
        .report
        .findings
        .iter()
        .filter(|f| f.code == "VRD005")
        .map(|f| format!("{} {}", f.location.file, f.message))
        .collect();
    // The three plain replicas: one finding naming the first and counting
    // the others; the canary (also denied by canary-deny): its own.
    assert_eq!(mine.len(), 2, "{mine:#?}");
    assert!(
        mine[0].starts_with("VRD005/fires.yaml HTTPRoute shop/api -> shop/api-0 (shop/api:80) is broken at ingress of shop/api-0: denied by shop/api-extra")
            && mine[0].ends_with("; the same for 2 more backend pods of shop/api:80 (shop/api-1, shop/api-2)"),
        "{mine:#?}"
    );
    assert!(
        mine[1].contains("-> shop/api-canary (shop/api:80)")
            && mine[1].contains("shop/canary-deny")
            && !mine[1].contains("the same for"),
        "{mine:#?}"
    );
    // Alone, a pod's finding has no count (the fixture's snapshot).
    let one = lint(&["base.yaml", "VRD005/fires.yaml"], &LintConfig::default());
    assert!(one
        .report
        .findings
        .iter()
        .filter(|f| f.code == "VRD005")
        .all(|f| !f.message.contains("the same for")));
}

#[test]
fn findings_name_three_workloads_and_count_the_rest() {
    let r = lint(&["caps/replicas.yaml"], &LintConfig::default());
    let mine: Vec<&str> = r
        .report
        .findings
        .iter()
        .filter(|f| f.code == "VRD013")
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert!(
        mine[0].contains(
            "no other policy puts batch/worker-0, batch/worker-1, batch/worker-2 and 2 more into ingress default deny"
        ) && !mine[0].contains("worker-3"),
        "{mine:#?}"
    );
}

#[test]
fn dns_check_follows_the_engine_for_deny_rules_named_ports_and_protocols() {
    // Pods whose only DNS rule cannot match (TCP) are judged by their
    // default without deciding; the others are decided: a deny rule, a
    // named port the DNS pod does not have, a plain allow.
    let r = lint(
        &["base.yaml", "VRD011/variants.yaml"],
        &LintConfig::default(),
    );
    let mut named: Vec<&str> = r
        .report
        .findings
        .iter()
        .filter(|f| f.code == "VRD011")
        .map(|f| {
            f.message
                .strip_prefix("selects ")
                .and_then(|m| m.split(' ').next())
                .unwrap()
        })
        .collect();
    named.sort_unstable();
    assert_eq!(
        named,
        ["shop/denier-0", "shop/named-0", "shop/tcp-only-0"],
        "{}",
        r.report.to_text(&r.sources)
    );
}
