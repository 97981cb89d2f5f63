#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The regression guard for accidental quadratics: the work counters of
//! `verdict bench --counters` (map entries, matrix cells, path hops, lint
//! findings, selector evaluations per stage) on fixed synthetic clusters,
//! compared with the values checked in at `tests/data/bench-counters.json`.
//! Not a timed test: a loop that went quadratic shows up as a count.
//!
//! After an intended change (a better algorithm, a changed synthetic
//! cluster), regenerate the file with
//! `VERDICT_BLESS=1 cargo test -p verdict-cli --test bench_counters`
//! and commit it with the change that explains it.

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/bench-counters.json"
);

/// The clusters the guard measures: small enough for a debug build, big
/// enough that the selectors of the dense shape reach across namespaces.
const CASES: &[(&str, &[&str])] = &[
    ("standard", &["--sizes", "2000:200"]),
    ("dense", &["--sizes", "2000:200", "--dense"]),
];

/// Relative tolerance of a counter: output sizes must be equal; selector
/// evaluations may move by 1% (a reordered cache lookup is not a
/// regression; a quadratic is far more).
fn tolerance(name: &str) -> f64 {
    if name.starts_with("selector_evaluations") {
        0.01
    } else {
        0.0
    }
}

/// Every difference between the expected and the measured counters, one
/// line each: a counter outside its tolerance, missing, or new.
fn compare(case: &str, expected: &Value, actual: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for field in ["pods", "policies", "seed", "shape"] {
        if expected.get(field) != actual.get(field) {
            problems.push(format!(
                "{case}: {field} is {:?}, the checked-in counters are for {:?}",
                actual.get(field),
                expected.get(field)
            ));
        }
    }
    let map = |v: &Value| -> BTreeMap<String, u64> {
        v.get("counters")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(u64::MAX)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (want, got) = (map(expected), map(actual));
    for (name, &w) in &want {
        match got.get(name) {
            None => problems.push(format!("{case}: counter {name} is no longer measured")),
            Some(&g) => {
                let allowed = (w as f64 * tolerance(name)).floor() as u64;
                if g.abs_diff(w) > allowed {
                    problems.push(format!(
                        "{case}: {name} is {g}, expected {w}{} ({:+.1}%)",
                        if allowed > 0 {
                            format!(" +/- {allowed}")
                        } else {
                            String::new()
                        },
                        (g as f64 - w as f64) * 100.0 / (w.max(1) as f64)
                    ));
                }
            }
        }
    }
    for name in got.keys().filter(|k| !want.contains_key(*k)) {
        problems.push(format!("{case}: new counter {name} is not checked in"));
    }
    problems
}

fn measure(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("bench")
        .arg("--counters")
        .args(args)
        .output()
        .expect("run verdict bench --counters");
    assert!(
        out.status.success(),
        "verdict bench --counters {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("counters are JSON")
}

#[test]
fn work_counters_match_the_checked_in_values() {
    let measured: BTreeMap<&str, Value> = CASES
        .iter()
        .map(|(name, args)| (*name, measure(args)))
        .collect();
    if std::env::var_os("VERDICT_BLESS").is_some_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&measured).unwrap() + "\n";
        std::fs::write(DATA, text).unwrap();
        eprintln!("wrote {DATA}");
        return;
    }
    let text = std::fs::read_to_string(DATA).expect("tests/data/bench-counters.json");
    let expected: Value = serde_json::from_str(&text).expect("bench-counters.json is JSON");
    let mut problems = Vec::new();
    for (name, got) in &measured {
        match expected.get(*name) {
            Some(want) => problems.extend(compare(name, want, got)),
            None => problems.push(format!("{name}: no checked-in counters")),
        }
    }
    assert!(
        problems.is_empty(),
        "work counters changed (an accidental quadratic, or an intended change: then run \
         VERDICT_BLESS=1 cargo test -p verdict-cli --test bench_counters and commit the file):\n{}",
        problems.join("\n")
    );
}

/// The guard can fail: a doubled count, a missing or a new counter, and a
/// count just outside the tolerance are all reported; a count inside it is not.
#[test]
fn compare_reports_a_doubled_count() {
    let expected = serde_json::json!({
        "pods": 2000, "policies": 200, "seed": 42, "shape": "standard",
        "counters": {"map_entries": 1000, "matrix_cells": 50, "selector_evaluations_matrix": 10000}
    });
    assert!(compare("t", &expected, &expected).is_empty());
    let mut doubled = expected.clone();
    doubled["counters"]["map_entries"] = 2000.into();
    let p = compare("t", &expected, &doubled);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("map_entries is 2000, expected 1000"), "{p:?}");
    let mut slower = expected.clone();
    slower["counters"]["selector_evaluations_matrix"] = 20000.into();
    assert_eq!(compare("t", &expected, &slower).len(), 1);
    slower["counters"]["selector_evaluations_matrix"] = 10101.into();
    assert_eq!(
        compare("t", &expected, &slower).len(),
        1,
        "1.01% is outside 1%"
    );
    slower["counters"]["selector_evaluations_matrix"] = 10100.into();
    assert!(compare("t", &expected, &slower).is_empty(), "1% is inside");
    let mut other = expected.clone();
    other["counters"]
        .as_object_mut()
        .unwrap()
        .remove("matrix_cells");
    other["counters"]["paths"] = 3.into();
    other["pods"] = 1000.into();
    assert_eq!(compare("t", &expected, &other).len(), 3);
}
