#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Nothing panics on any input: mangled manifests (truncated, bytes
//! flipped, lines shuffled, indentation broken) go through every analysis.

use std::path::Path;
use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::matrix::{matrix, MatrixOptions};
use verdict_core::paths::{paths, PathOptions};
use verdict_core::routes::Routing;

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % (n.max(1) as u64)) as usize
    }
}

fn mangle(text: &str, r: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match r.next(6) {
        0 => {
            let cut = r.next(text.len());
            return text.chars().take(cut).collect();
        }
        1 => {
            for _ in 0..5 {
                let i = r.next(lines.len());
                if let Some(l) = lines.get_mut(i) {
                    *l = format!("{}{l}", " ".repeat(r.next(5)));
                }
            }
        }
        2 => {
            let (a, b) = (r.next(lines.len()), r.next(lines.len()));
            if a < lines.len() && b < lines.len() {
                lines.swap(a, b);
            }
        }
        3 => {
            let i = r.next(lines.len());
            if let Some(l) = lines.get_mut(i) {
                *l = l.replace(':', ": [").replace('-', "{");
            }
        }
        4 => {
            let i = r.next(lines.len());
            let noise = [
                "port: 99999",
                "endPort: -1",
                "cidr: 300.1.1.1/40",
                "protocol: XYZ",
                "matchLabels: [a]",
                "- *alias",
                "&a [*a, *a]",
                "key: 'unterminated",
                "\t- tab",
            ];
            lines.insert(i.min(lines.len()), noise[r.next(noise.len())].to_string());
        }
        _ => {
            let i = r.next(lines.len());
            if i < lines.len() {
                lines.remove(i);
            }
        }
    }
    lines.join("\n")
}

#[test]
fn mangled_inputs_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut seeds: Vec<String> = Vec::new();
    for dir in [
        "examples/shop-gateway",
        "examples/shop-nginx",
        "crates/verdict-lint/tests/fixtures",
    ] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                seeds.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    let all = seeds.join("\n---\n");
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..200 {
        let text = mangle(&all, &mut r);
        let mut inv = Inventory::new(ClusterConfig {
            name: "default".into(),
            dual_stack: round % 2 == 0,
            ..ClusterConfig::default()
        });
        inv.load_text("mangled.yaml", &text);
        inv.complete_namespaces();
        let routing = Routing::from_inventory(&inv);
        let engine = Engine::new(&inv);
        let report = paths(&engine, &routing, &PathOptions::default());
        let _ = report.to_text();
        let _ = matrix(&engine, &MatrixOptions::default()).to_text();
    }
}

#[test]
fn alias_bombs_are_bounded() {
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..12 {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            format!("b{}", i - 1)
        };
        bomb.push_str(&format!("b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.load_text("bomb.yaml", &bomb);
    assert!(
        inv.diagnostics
            .iter()
            .any(|d| d.message.contains("expands to more than")),
        "{:?}",
        inv.diagnostics
    );
}
