#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict matrix` on a matrix of more than 1,000 connections: text shows
//! rows between groups (`--pairs` every pair), `-o json` keeps the pair
//! form, `--summarise -o json` is the grouped form and stands for exactly
//! the cells of the pair form.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

/// 40 applications in namespace `big`, each its own identity, all
/// admitting ingress from every pod of the namespace on TCP/80; `big/lone`
/// also admits TCP/443 from app-0 only.
fn fixture() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("verdict-matrix-groups-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut y = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: big\n");
    for a in 0..40 {
        y.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{a}\n  namespace: big\n  labels:\n    app: app-{a}\n    part: member\nspec:\n  containers:\n    - name: c\n      image: x\n"
        ));
    }
    y.push_str("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: lone\n  namespace: big\n  labels:\n    app: lone\nspec:\n  containers:\n    - name: c\n      image: x\n");
    y.push_str("---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: all-in-ns\n  namespace: big\nspec:\n  endpointSelector: {}\n  ingress:\n    - fromEndpoints:\n        - matchLabels:\n            part: member\n      toPorts:\n        - ports:\n            - port: \"80\"\n              protocol: TCP\n");
    y.push_str("---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: lone\n  namespace: big\nspec:\n  endpointSelector:\n    matchLabels:\n      app: lone\n  ingress:\n    - fromEndpoints:\n        - matchLabels:\n            app: app-0\n      toPorts:\n        - ports:\n            - port: \"443\"\n              protocol: TCP\n");
    let f = dir.join("big.yaml");
    std::fs::write(&f, y).unwrap();
    f
}

fn verdict(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .output()
        .unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn large_matrix_text_is_grouped_and_json_keeps_pairs() {
    let f = fixture();
    let f = f.to_str().unwrap();
    // Pair form: 40 x 41 on TCP/80 (app-0 -> lone on 443 too), and the
    // node (allow-localhost) to all 41: 41 x 41.
    let pairs = json(&verdict(&["matrix", "-o", "json", f]));
    let cells = pairs["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 41 * 41);
    let mut by_pair: BTreeMap<(String, String), String> = BTreeMap::new();
    for c in cells {
        by_pair.insert(
            (
                c["from"]["name"].as_str().unwrap().to_string(),
                c["to"]["name"].as_str().unwrap().to_string(),
            ),
            c["ports"].to_string(),
        );
    }
    // Grouped JSON stands for exactly those cells.
    let g = json(&verdict(&["matrix", "--summarise", "-o", "json", f]));
    assert_eq!(g["connections"].as_u64(), Some(41 * 41));
    assert!(g.get("cells").is_none());
    let groups = g["groups"].as_array().unwrap();
    let rows = g["rows"].as_array().unwrap();
    assert!(rows.len() <= 5, "{} rows", rows.len());
    let mut covered = 0;
    for r in rows {
        let members = |k: &str| -> Vec<String> {
            groups[r[k].as_u64().unwrap() as usize]["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap().to_string())
                .collect()
        };
        let (from, to) = (members("from"), members("to"));
        assert_eq!(
            r["connections"].as_u64().unwrap() as usize,
            from.len() * to.len()
        );
        for a in &from {
            for b in &to {
                assert_eq!(
                    by_pair.get(&(a.clone(), b.clone())),
                    Some(&r["ports"].to_string()),
                    "{a} -> {b}"
                );
                covered += 1;
            }
        }
    }
    assert_eq!(covered, cells.len());
    // Text: grouped by default above 1,000 connections, pairs on request.
    let o = verdict(&["matrix", f]);
    assert_eq!(o.status.code(), Some(0));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("1681 allowed connections"), "{text}");
    assert!(
        text.contains("Groups (the identities a row names together)"),
        "{text}"
    );
    assert!(text.contains("G1 (40)"), "{text}");
    assert!(text.lines().count() < 20, "{text}");
    let o = verdict(&["matrix", "--pairs", f]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.lines().count() > 1640,
        "{} lines",
        text.lines().count()
    );
    assert!(!text.contains("Groups ("));
    // Groups apply to text, JSON and YAML only.
    let o = verdict(&["matrix", "--summarise", "-o", "csv", f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--summarise applies to"));
}

#[test]
fn small_matrix_text_stays_pairs_unless_asked() {
    let shop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop-gateway/");
    let shop = shop.to_str().unwrap();
    let o = verdict(&["matrix", shop]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(!text.contains("between groups"), "{text}");
    let o = verdict(&["matrix", "--summarise", shop]);
    let grouped = String::from_utf8(o.stdout).unwrap();
    assert!(grouped.contains("between groups"), "{grouped}");
    // Same number of connections either way.
    let count = |t: &str| {
        t.lines()
            .find_map(|l| {
                l.split(" allowed connection")
                    .next()
                    .filter(|_| l.contains(" allowed connection"))
            })
            .map(str::to_string)
    };
    assert_eq!(count(&text), count(&grouped));
}
