//! The page written as it is formed equals the page as one string; the
//! panel data formed ahead (bodies shared by rules and ports) equals the
//! data built panel by panel from each panel's own map; the matrix from
//! the maps shared with the panels equals the matrix without rules.

use super::*;
use crate::ingest::{ClusterConfig, Inventory};

fn synthetic(pods: usize) -> Inventory {
    let text = crate::synth::generate(&crate::synth::SynthSpec {
        pods,
        policies: pods / 10,
        seed: 7,
    });
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    inv
}

/// The panels the page shows for `inv` (the matrix's names, looked up by
/// their first pod, as the page does), some reserved parties and a name
/// that is not an endpoint: the panel data from the bodies formed ahead,
/// each formed once for the endpoints that share it, must be the JSON of
/// every panel's own map added one at a time. Returns how many panel keys
/// shared a body formed for another.
fn panels_equal_panel_by_panel(inv: &Inventory) -> usize {
    let engine = Engine::new(inv);
    let names = crate::names::identity_names(&engine);
    let m = crate::matrix_summary::summarise(&engine, &crate::matrix::MatrixOptions::default());
    let members: std::collections::BTreeSet<&str> = m
        .groups
        .iter()
        .flat_map(|g| &g.members)
        .map(|x| x.name.as_str())
        .collect();
    let mut parties: Vec<(String, Option<crate::engine::Party>)> = members
        .into_iter()
        .map(|n| {
            let look = n.split(", ").next().unwrap_or(n);
            (n.to_string(), engine.party(look).ok())
        })
        .collect();
    for (i, n) in ["reserved:ingress", "reserved:host", "reserved:world"]
        .into_iter()
        .enumerate()
    {
        let at = (i * 2).min(parties.len());
        parties.insert(at, (n.to_string(), engine.party(n).ok()));
    }
    parties.insert(parties.len().min(7), ("not/an/endpoint".to_string(), None));
    let panels: Vec<Panel> = parties
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    let resolver = crate::resolved::Resolver::for_all(&engine);
    let mut one = policy::Panels::default();
    for (title, party) in &panels {
        let map = party.as_ref().map(|p| resolver.resolve(p));
        one.add(title, map.as_ref(), &names);
    }
    let mut want = String::new();
    one.json(&mut want);
    let pre = panel_bodies(&engine);
    let mut got = String::new();
    pre.view().panel_data(&panels, &names).json(&mut got);
    assert_eq!(want, got);
    pre.view().shared()
}

/// The conformance scenarios (their agent settings vary).
fn conformance_files() -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let mut files: Vec<std::path::PathBuf> = ["generated", "gateway", "hard", "tiers"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn conformance_inventory(f: &std::path::Path) -> Inventory {
    let (cases, _) = crate::policytest::parse("c.json", &std::fs::read_to_string(f).unwrap());
    let mut inv = cases[0].inventory();
    inv.complete_namespaces();
    inv
}

/// Most endpoints of the synthetic cluster share a body; the bare-pod
/// variant (each pod its own workload) too.
#[test]
fn panel_data_formed_ahead_equals_panel_by_panel() {
    let shared = panels_equal_panel_by_panel(&synthetic(1500));
    assert!(shared > 20, "{shared} panels shared a body");
    let mut bare = Inventory::new(ClusterConfig::default());
    bare.load_text(
        "bare.yaml",
        &crate::synth::generate_bare(&crate::synth::SynthSpec {
            pods: 600,
            policies: 60,
            seed: 3,
        }),
    );
    bare.complete_namespaces();
    panels_equal_panel_by_panel(&bare);
}

/// Bodies shared by rules and ports hold under every agent setting and
/// policy kind of the conformance scenarios (enable-policy, allow-localhost,
/// named ports, tiers, host policies).
#[test]
fn shared_panel_bodies_equal_own_maps_on_conformance_scenarios() {
    let files = conformance_files();
    assert!(files.len() > 50, "{} scenario files", files.len());
    let mut shared = 0;
    for f in &files {
        shared += panels_equal_panel_by_panel(&conformance_inventory(f));
    }
    assert!(shared > 0, "no scenario shared a body");
}

/// The report's matrix, computed from the maps it shares with the panels
/// (which carry their rules), is the matrix without rules: on the
/// synthetic cluster and under every conformance scenario's settings.
#[test]
fn report_matrix_from_shared_maps_equals_matrix_without_rules() {
    let mut invs = vec![synthetic(1500)];
    invs.extend(conformance_files().iter().map(|f| conformance_inventory(f)));
    let mut rows = 0;
    for inv in &invs {
        let engine = Engine::new(inv);
        let opts = crate::matrix::MatrixOptions::default();
        let ((), shared, _) = matrix_and_panels(&engine, &opts, || (), |(), _| ());
        let own = crate::matrix_summary::summarise_without_rules(&engine, &opts);
        assert_eq!(
            serde_json::to_string(&shared).unwrap(),
            serde_json::to_string(&own).unwrap()
        );
        rows += own.rows.len();
    }
    assert!(rows > 1000, "{rows} rows compared");
}

/// The page as `verdict report` writes it, its parts formed while the
/// matrix is computed (every name the matrix can show keyed ahead of it),
/// is the page rendered after the matrix; every member of the matrix's
/// groups names its panel. On the synthetic cluster (grouped matrix) and
/// the conformance scenarios.
#[test]
fn page_from_parts_formed_beside_the_matrix_equals_render() {
    let mut invs = vec![synthetic(1500)];
    invs.extend(conformance_files().iter().map(|f| conformance_inventory(f)));
    let meta = ReportMeta {
        version: "1".into(),
        ..ReportMeta::default()
    };
    let mut members = 0;
    for inv in &invs {
        let engine = Engine::new(inv);
        let routing = crate::routes::Routing::from_inventory(inv);
        let p = crate::paths::paths(&engine, &routing, &crate::paths::PathOptions::default());
        let opts = crate::matrix::MatrixOptions::default();
        let (parts, m, _) = matrix_and_panels(
            &engine,
            &opts,
            || (),
            |(), view| page_parts(&engine, &p, &[], view),
        );
        let mut got = String::new();
        render_parts(&mut got, &p, &m, &meta, &parts);
        let own = crate::matrix_summary::summarise_without_rules(&engine, &opts);
        assert_eq!(got, render(&engine, &p, &own, &[], &meta));
        let matrix = &got[got.find("<table id=\"matrix\">").unwrap()..];
        let matrix = &matrix[..matrix.find("<script").unwrap()];
        assert!(
            !matrix.contains("data-name=\"\""),
            "a matrix name without a panel"
        );
        members += matrix.matches("data-name=\"p").count();
    }
    assert!(members > 1000, "{members} matrix names");
}

/// `render_to` a buffered writer gives the bytes of `render`.
#[test]
fn page_written_as_formed_equals_page_as_string() {
    let inv = synthetic(600);
    let engine = Engine::new(&inv);
    let routing = crate::routes::Routing::from_inventory(&inv);
    let p = crate::paths::paths(&engine, &routing, &crate::paths::PathOptions::default());
    let m = crate::matrix_summary::summarise(&engine, &crate::matrix::MatrixOptions::default());
    let meta = ReportMeta {
        version: "1".into(),
        inputs: vec!["synthetic.yaml".into()],
        ..ReportMeta::default()
    };
    let page = render(&engine, &p, &m, &[], &meta);
    let mut out = IoText::new(std::io::BufWriter::with_capacity(64, Vec::new()));
    render_to(&mut out, &engine, &p, &m, &[], &meta);
    let bytes = out.finish().unwrap().into_inner().unwrap();
    assert_eq!(page.as_bytes(), bytes.as_slice());
    assert!(page.contains("id=\"panel-data\""));
}

/// A write error is kept and returned, and later writes are refused.
#[test]
fn a_write_error_is_returned_by_finish() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = IoText::new(Full);
    assert!(out.write_str("a").is_err());
    assert!(out.write_str("b").is_err());
    assert_eq!(
        out.finish().err().map(|e| e.to_string()),
        Some("disk full".to_string())
    );
}
