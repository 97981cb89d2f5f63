//! The proof that generated policies do what they should: they load
//! cleanly, every intended path is allowed, and the connectivity they add
//! is exactly the hops of those paths.
//!
//! Connectivity is compared only where the generated objects can change it
//! (`connectivity_delta.rs`: the subjects of the changed rules and the
//! peers those rules name), so verification costs about what the
//! generated objects are, not identities² of the cluster.

use super::GenerateOptions;
use crate::connectivity::Conn;
use crate::connectivity_delta::delta;
use crate::engine::{Engine, Party};
use crate::ingest::Inventory;
use crate::paths::{paths, PathsReport};
use crate::policy::{Direction, Protocol};
use crate::routes::Routing;
use serde::Serialize;
use std::collections::BTreeSet;

/// The proof that the generated policies do what they should.
#[derive(Debug, Serialize)]
pub struct Verification {
    /// Problems loading the generated objects back (must be none).
    pub load_errors: Vec<String>,
    pub paths_before: crate::paths::Summary,
    pub paths_after: crate::paths::Summary,
    /// Connectivity the generated policies add that serves a path.
    pub intended: Vec<Conn>,
    /// Connectivity they add that no path needs (must be none).
    pub unintended: Vec<Conn>,
    /// Connectivity they add that no path names but that the generated
    /// objects state: `reserved:kube-apiserver` to a controller on its
    /// client ports, which `fromEntities: [remote-node]` admits (the API
    /// server's identity carries reserved:remote-node).
    pub accepted: Vec<Conn>,
    /// Sides of local endpoints (party, direction) that had no default
    /// deny and have it now (the ingress, the backends, controllers):
    /// whatever their rules do not allow is closed.
    pub closed: Vec<(String, Direction)>,
    /// Party pairs whose connectivity was compared.
    pub pairs_compared: usize,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.load_errors.is_empty() && self.unintended.is_empty() && self.paths_after.denied == 0
    }
}

/// `base` (the input without the objects that merged ones replace) with
/// the generated objects loaded next to it, and the problems loading them
/// (diagnostics and policies Cilium would reject).
pub fn load_generated(base: &Inventory, generated: &str) -> (Inventory, Vec<String>) {
    let mut after = base.clone();
    let before_diags = after.diagnostics.len();
    after.load_text("<generated>", generated);
    let mut load_errors: Vec<String> = after
        .diagnostics
        .iter()
        .skip(before_diags)
        .map(ToString::to_string)
        .collect();
    for p in after
        .policies
        .iter()
        .filter(|p| p.location.file.as_ref() == "<generated>")
    {
        if let Some(why) = &p.rejected {
            load_errors.push(format!("{}: {why}", p.object));
        }
    }
    (after, load_errors)
}

/// Loads the generated objects next to the input (`base`: the input without
/// the objects that merged ones replace), re-runs the paths, and diffs
/// connectivity against the input `inv`.
pub fn verify(
    inv: &Inventory,
    base: &Inventory,
    generated: &str,
    opts: &GenerateOptions,
) -> Verification {
    let (after_inv, load_errors) = load_generated(base, generated);
    let before = Engine::new(inv);
    let after = Engine::new(&after_inv);
    let pb = paths(&before, &Routing::from_inventory(inv), &opts.paths);
    let pa = paths(&after, &Routing::from_inventory(&after_inv), &opts.paths);
    verify_loaded(&before, &pb, &after, &pa, load_errors, opts)
}

/// [`verify`] on engines and paths the caller already has: the input's
/// (`before`, with the paths the objects were generated from) and the
/// input's with the generated objects (see [`load_generated`]).
pub fn verify_loaded(
    before: &Engine,
    paths_before: &PathsReport,
    after: &Engine,
    paths_after: &PathsReport,
    load_errors: Vec<String>,
    opts: &GenerateOptions,
) -> Verification {
    let extra: Vec<Party> = opts
        .paths
        .clients
        .iter()
        .filter_map(|c| before.party(c).ok())
        .filter(|p| p.name != "reserved:world")
        .collect();
    let d = delta(before, after, &extra);
    // What the paths need: clients -> ingress on hop-1 ports, ingress -> backends.
    let mut needed: BTreeSet<(String, String, Protocol, u16)> = BTreeSet::new();
    for ep in &paths_after.entry_points {
        for r in &ep.routes {
            for b in &r.backends {
                for p in &b.paths {
                    for h in &p.hops {
                        for c in &h.checks {
                            needed.insert((
                                c.source.clone(),
                                c.destination.clone(),
                                c.protocol,
                                c.port,
                            ));
                        }
                    }
                }
            }
        }
    }
    // remote-node admitted on a controller's client ports also admits the
    // kube-apiserver identity there (it carries reserved:remote-node); the
    // generated object says so.
    let stated: BTreeSet<(String, String, Protocol, u16)> = needed
        .iter()
        .filter(|(src, _, _, _)| src == "reserved:remote-node")
        .map(|(_, dst, p, port)| {
            (
                "reserved:kube-apiserver".to_string(),
                dst.clone(),
                *p,
                *port,
            )
        })
        .collect();
    let is = |set: &BTreeSet<(String, String, Protocol, u16)>, c: &Conn| {
        c.from_port == c.to_port
            && set.contains(&(c.from.clone(), c.to.clone(), c.protocol, c.from_port))
    };
    let (intended, rest): (Vec<Conn>, Vec<Conn>) =
        d.added.into_iter().partition(|c| is(&needed, c));
    let (accepted, unintended): (Vec<Conn>, Vec<Conn>) =
        rest.into_iter().partition(|c| is(&stated, c));
    Verification {
        load_errors,
        paths_before: paths_before.summary.clone(),
        paths_after: paths_after.summary.clone(),
        intended,
        unintended,
        accepted,
        closed: d.newly_default_deny,
        pairs_compared: d.pairs,
    }
}
