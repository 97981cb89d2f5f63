//! The page written as it is formed equals the page as one string; the
//! panel data built on workers equals the data built panel by panel.

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

/// Many blocks of panels (the workers' path, an odd count and a short
/// last one), with a name that is not an endpoint among them: the same
/// JSON as one panel at a time.
#[test]
fn panel_data_on_workers_equals_panel_by_panel() {
    let inv = synthetic(1500);
    let engine = Engine::new(&inv);
    let names = crate::names::identity_names(&engine);
    // The matrix's names, looked up by their first pod (as the page does).
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
    parties.insert(7, ("not/an/endpoint".to_string(), None));
    let panels: Vec<Panel> = parties
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    assert!(panels.len() > 40, "{} panels", panels.len());
    assert!(panels.iter().filter(|(_, p)| p.is_some()).count() > 40);
    let resolver = Resolver::for_all(&engine);
    let mut one = policy::Panels::default();
    for (title, party) in &panels {
        let map = party.as_ref().map(|p| resolver.resolve(p));
        one.add(title, map.as_ref(), &names);
    }
    let mut want = String::new();
    one.json(&mut want);
    for block in [1, 7, panels.len()] {
        let mut got = String::new();
        panel_data_in(&resolver, &panels, &names, block).json(&mut got);
        assert_eq!(want, got, "blocks of {block}");
    }
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
