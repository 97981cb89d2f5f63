//! SARIF 2.1.0 output for code scanning (GitHub and others): every rule
//! with its metadata and help, every finding with a located region.

use crate::{registry, Level, LintReport};
use serde_json::{json, Value};

fn level(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
        Level::Info => "note",
    }
}

/// A relative URI reference for a path (forward slashes, spaces and other
/// reserved characters percent-encoded).
fn uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.strip_prefix("./").unwrap_or(&p);
    let mut out = String::new();
    for c in p.chars() {
        if c.is_ascii_alphanumeric() || "-._~/".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

pub fn to_sarif(report: &LintReport, version: &str) -> Value {
    let rules: Vec<Value> = registry()
        .iter()
        .map(|r| {
            let m = r.meta();
            json!({
                "id": m.code,
                "name": m.name,
                "shortDescription": {"text": m.summary},
                "fullDescription": {"text": m.summary},
                "help": {"text": m.doc(), "markdown": m.doc()},
                "defaultConfiguration": {"level": level(m.level)},
                "properties": {"tags": ["security", "cilium", "network-policy"]}
            })
        })
        .collect();
    let index = |code: &str| {
        registry()
            .iter()
            .position(|r| r.meta().code == code)
            .unwrap_or(0)
    };
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut message = f.message.clone();
            message.push_str("\nHow to fix: ");
            message.push_str(&f.help);
            json!({
                "ruleId": f.code,
                "ruleIndex": index(f.code),
                "level": level(f.level),
                "message": {"text": message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri(&f.location.file)},
                        "region": {"startLine": f.location.line.max(1), "startColumn": f.location.col.max(1)}
                    },
                    "logicalLocations": f.object.as_ref().map(|o| vec![json!({
                        "name": o.name,
                        "fullyQualifiedName": format!("{o}{}", f.path.as_ref().map(|p| format!(" {p}")).unwrap_or_default()),
                        "kind": "object"
                    })]).unwrap_or_default()
                }],
                "partialFingerprints": {
                    "verdictFinding/v1": format!("{}:{}:{}", f.code, f.object.as_ref().map(ToString::to_string).unwrap_or_default(), f.path.clone().unwrap_or_default())
                }
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "verdict",
                "version": version,
                "semanticVersion": version,
                "rules": rules
            }},
            "columnKind": "unicodeCodePoints",
            "results": results
        }]
    })
}
