#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The JSON Schemas of `verdict schema`: every PolicyTest file of the
//! repository validates, wrong documents do not, and the copies in
//! docs/schemas/ are the generated ones.

mod common;
use common::root;

use std::path::{Path, PathBuf};
use std::process::Command;

fn schema(which: &str) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["schema", which])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The documents of a YAML or JSON file, as JSON values.
fn documents(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    verdict_core::yaml::parse_documents(&text)
        .into_iter()
        .map(|d| match d {
            verdict_core::yaml::Document::Ok(n) => n.to_json(),
            verdict_core::yaml::Document::Err { message, .. } => {
                panic!("{}: {message}", path.display())
            }
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
}

fn is_policytest(v: &serde_json::Value) -> bool {
    v.get("kind").and_then(|k| k.as_str()) == Some("PolicyTest")
}

#[test]
fn every_policytest_in_the_repository_validates() {
    let validator = jsonschema::validator_for(&schema("policytest")).unwrap();
    let mut all = Vec::new();
    for d in [
        "crates/verdict-core/tests/data",
        "examples",
        "crates/verdict-cli/tests/data",
    ] {
        files(&root().join(d), &mut all);
    }
    all.sort();
    let mut checked = 0;
    for f in &all {
        if !std::fs::read_to_string(f).unwrap().contains("PolicyTest") {
            continue;
        }
        for doc in documents(f).iter().filter(|d| is_policytest(d)) {
            let errors: Vec<String> = validator
                .iter_errors(doc)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
            checked += 1;
        }
    }
    // The conformance corpus alone has hundreds.
    assert!(checked > 400, "only {checked} PolicyTest documents found");
}

#[test]
fn wrong_policytests_do_not_validate() {
    let validator = jsonschema::validator_for(&schema("policytest")).unwrap();
    let ok: serde_json::Value = serde_json::json!({
        "apiVersion": "verdict.dev/v1", "kind": "PolicyTest", "metadata": {"name": "t"},
        "spec": {"files": ["a.yaml"], "cluster": {"ciliumVersion": "1.19"},
            "flows": [{"from": "world", "to": "ingress", "port": 80, "expect": "allowed"},
                      {"from": "world", "to": "ingress", "port": 80, "protocol": "udp",
                       "expect": {"ingress": "denied"}}]}
    });
    assert!(validator.is_valid(&ok));
    let bad = |patch: &dyn Fn(&mut serde_json::Value)| {
        let mut v = ok.clone();
        patch(&mut v);
        assert!(!validator.is_valid(&v), "{v}");
    };
    bad(&|v| v["kind"] = "Pod".into());
    bad(&|v| v["spec"]["flow"] = serde_json::json!([]));
    bad(&|v| v["spec"]["flows"][0]["port"] = 70000.into());
    bad(&|v| v["spec"]["flows"][0]["expect"] = "maybe".into());
    bad(&|v| v["spec"]["flows"][1]["expect"]["ingres"] = "denied".into());
    bad(&|v| v["spec"]["flows"][0]["protocol"] = "HTTP".into());
    bad(&|v| v["spec"]["cluster"]["ciliumVersion"] = "1.17".into());
    bad(&|v| v["spec"]["cluster"]["policyEnforcement"] = "sometimes".into());
    bad(&|v| {
        v["spec"]["flows"][0].as_object_mut().unwrap().remove("to");
    });
}

#[test]
fn config_schema() {
    let validator = jsonschema::validator_for(&schema("config")).unwrap();
    // The example of docs/lint.md.
    let doc = std::fs::read_to_string(root().join("docs/lint.md")).unwrap();
    let start = doc
        .find("```yaml\n# .verdict.yaml")
        .or_else(|| doc.find("```yaml\nlint:"));
    let example = match start {
        Some(s) => {
            let body = &doc[s + 8..];
            body[..body.find("```").unwrap()].to_string()
        }
        None => panic!("docs/lint.md has no .verdict.yaml example"),
    };
    let dir = std::env::temp_dir().join(format!("verdict-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join(".verdict.yaml");
    std::fs::write(&f, &example).unwrap();
    for v in documents(&f) {
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{example}: {errors:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    for good in [
        serde_json::json!({}),
        serde_json::json!({"lint": {"failOn": "error", "rules": {"VRD001": "off", "selector-selects-nothing": "error", "VRD004": false}}}),
    ] {
        assert!(validator.is_valid(&good), "{good}");
    }
    for bad in [
        serde_json::json!({"lnt": {}}),
        serde_json::json!({"lint": {"failOn": "fatal"}}),
        serde_json::json!({"lint": {"rules": {"VRD999": "off"}}}),
        serde_json::json!({"lint": {"rules": {"VRD001": "loud"}}}),
        serde_json::json!({"lint": {"clusterCidrs": []}}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad}");
    }
}

#[test]
fn committed_schemas_are_current() {
    for (which, file) in [
        ("policytest", "docs/schemas/policytest.json"),
        ("config", "docs/schemas/verdict-config.json"),
    ] {
        let path = root().join(file);
        let generated = schema(which);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
        }
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{file}: {e} (UPDATE_SNAPSHOTS=1 cargo test -p verdict-cli --test schema)")
            }))
            .unwrap();
        assert_eq!(
            committed, generated,
            "{file} is stale: UPDATE_SNAPSHOTS=1 cargo test -p verdict-cli --test schema"
        );
    }
}
