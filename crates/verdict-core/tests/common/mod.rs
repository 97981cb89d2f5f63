//! What several integration tests read: the conformance scenarios.

use std::path::{Path, PathBuf};
use verdict_core::ingest::Inventory;
use verdict_core::policytest;

/// Every conformance scenario (all four sets, sorted by path) with its
/// file, as the inventory of its first case with namespaces completed.
pub fn conformance_inventories() -> Vec<(PathBuf, Inventory)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let mut files: Vec<PathBuf> = ["generated", "gateway", "hard", "tiers"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(root.join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let (cases, _) = policytest::parse("c.json", &std::fs::read_to_string(&f).unwrap());
            let mut inv = cases[0].inventory();
            inv.complete_namespaces();
            (f, inv)
        })
        .collect()
}
