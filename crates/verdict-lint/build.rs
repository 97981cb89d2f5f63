//! Publishes each rule's doc comment as its documentation: reads
//! `src/rules/*.rs`, takes the `///` block before the rule's `pub struct` and
//! the rule's code (`code: "VRD..."`), and writes `rule_docs.rs` with a
//! table `(code, markdown)`.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new("src/rules");
    println!("cargo:rerun-if-changed=src/rules");
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        if f.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", f.display());
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut doc = Vec::new();
        let mut found_doc = None;
        for line in text.lines() {
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix("///") {
                doc.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            } else if t.starts_with("pub struct") && !doc.is_empty() {
                found_doc = Some(doc.join("\n"));
                break;
            } else if !t.starts_with("#[") {
                doc.clear();
            }
        }
        let code = text.lines().find_map(|l| {
            l.trim()
                .strip_prefix("code: \"")
                .and_then(|r| r.split('"').next())
                .map(str::to_string)
        });
        if let (Some(code), Some(doc)) = (code, found_doc) {
            entries.push((code, doc));
        }
    }
    let mut out = String::from("/// Rule documentation, from each rule's doc comment.\npub const RULE_DOCS: &[(&str, &str)] = &[\n");
    for (code, doc) in &entries {
        let _ = writeln!(out, "    ({code:?}, {doc:?}),");
    }
    out.push_str("];\n");
    let Ok(dest) = std::env::var("OUT_DIR") else {
        return;
    };
    let _ = std::fs::write(Path::new(&dest).join("rule_docs.rs"), out);
}
