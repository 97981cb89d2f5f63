#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Runs every conformance scenario (expected verdicts computed by Cilium's
//! own policy engine) and requires every flow and rejection to agree.

use std::path::Path;
use verdict_core::policytest;

fn run_dir(dir: &str) -> (usize, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/conformance")
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
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
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
                if !d.message.starts_with("Cilium rejects") {
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

fn check(dir: &str) {
    let (passed, failures) = run_dir(dir);
    for f in &failures {
        eprintln!("{f}");
    }
    eprintln!("{dir}: {passed} passed, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} conformance failures in {dir}",
        failures.len()
    );
    assert!(passed > 0);
}

#[test]
fn conformance_gateway() {
    check("gateway");
}

#[test]
fn conformance_generated() {
    check("generated");
}
