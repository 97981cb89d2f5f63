#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A side context's peer index (engine/side_index.rs) narrows which entries
//! a decision visits, and subjects selected by the same rules share one
//! context (`Engine::side_context_key`, as `paths` shares them); the
//! decision must be exactly the full scan's of the subject's own context:
//! same decision, reason, deciding and passed rules, proxy, tier, notes.

mod common;

use verdict_core::engine::{Engine, Party};
use verdict_core::ingest::Inventory;
use verdict_core::policy::{Direction, Protocol};
use verdict_core::side::Decided;

fn summary(d: &Decided) -> String {
    let list = |l: &[std::sync::Arc<verdict_core::policy::Origin>]| {
        l.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    format!(
        "{:?} {:?} deciding={:?} passed={:?} proxied={:?} tier={:?} unevaluable={:?} default_deny_by={:?} selecting={}",
        d.decision,
        d.reason,
        list(&d.deciding),
        list(&d.passed),
        d.proxied,
        d.tier,
        d.unevaluable,
        d.default_deny_by,
        d.selecting.len()
    )
}

/// Every party as subject, both directions, every party as peer, a few
/// ports and protocols: a reused context (indexed once it has decided
/// enough flows; shared with the subjects of the same key) against
/// `Engine::decide` (the subject's own fresh context, full scan).
/// Returns how many contexts got an index and how many subjects decided
/// in another's context.
fn indexed_equals_scanned(inv: &Inventory, name: &str) -> (usize, usize) {
    let engine = Engine::new(inv);
    let parties: Vec<Party> = verdict_core::connectivity::parties(&engine, &[]);
    let mut indexed = 0;
    let mut contexts = std::collections::HashMap::new();
    let mut shared = 0;
    for subject in &parties {
        for dir in [Direction::Ingress, Direction::Egress] {
            let key = engine.side_context_key(subject, dir);
            shared += usize::from(contexts.contains_key(&key));
            let ctx = contexts
                .entry(key)
                .or_insert_with(|| engine.side_context(subject, dir));
            for (proto, port) in [
                (Protocol::Tcp, 80),
                (Protocol::Tcp, 8080),
                (Protocol::Tcp, 443),
                (Protocol::Udp, 53),
                (Protocol::Tcp, 1),
            ] {
                for peer in &parties {
                    let idx = engine.known_index(&peer.identity);
                    let got = engine.decide_in(ctx, subject, peer, idx, proto, port);
                    let want = engine.decide(subject, dir, peer, proto, port);
                    // Without the default deny's names (generate's
                    // verification): the same decision, reason and
                    // enforcement, nothing named.
                    let bare = engine.decision_in(ctx, subject, peer, idx, proto, port);
                    assert_eq!(
                        (bare.decision, &bare.reason, bare.enforced),
                        (got.decision, &got.reason, got.enforced),
                        "{name}: decision_in {} {dir} {} {proto}/{port}",
                        subject.name,
                        peer.name
                    );
                    assert!(bare.default_deny_by.is_empty());
                    assert_eq!(
                        summary(&got),
                        summary(&want),
                        "{name}: {} {dir} {} {proto}/{port}",
                        subject.name,
                        peer.name
                    );
                }
            }
        }
    }
    for ctx in contexts.values() {
        indexed += usize::from(ctx.has_peer_index());
    }
    (indexed, shared)
}

#[test]
fn indexed_decisions_equal_full_scans_on_conformance_scenarios() {
    let (mut indexed, mut shared) = (0, 0);
    for (file, inv) in common::conformance_inventories() {
        let (i, s) = indexed_equals_scanned(&inv, &file.display().to_string());
        indexed += i;
        shared += s;
    }
    assert!(indexed > 0, "no context built a peer index");
    assert!(shared > 0, "no subject decided in a shared context");
}

#[test]
fn indexed_decisions_equal_full_scans_on_synthetic_clusters() {
    for shape in [
        verdict_core::synth::Shape::Standard,
        verdict_core::synth::Shape::Dense,
    ] {
        let spec = verdict_core::synth::SynthSpec {
            pods: 400,
            policies: 40,
            seed: 42,
        };
        let inv = verdict_core::synth::load_shaped(&spec, shape);
        // Only the note that the pods are represented by their ReplicaSets.
        assert!(inv.problems().next().is_none());
        let (indexed, shared) = indexed_equals_scanned(&inv, "synthetic");
        assert!(indexed > 0, "no context built a peer index");
        assert!(shared > 0, "no subject decided in a shared context");
    }
}
