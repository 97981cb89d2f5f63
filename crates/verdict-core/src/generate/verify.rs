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
use crate::engine::side_context::SideContext;
use crate::engine::{Decision, Engine, Party};
use crate::ingest::{ContainerPort, Inventory};
use crate::paths::{paths, PathsReport, Status, Summary};
use crate::policy::{Direction, Protocol};
use crate::routes::Routing;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

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

/// The source name of the generated objects when they are loaded back.
pub const GENERATED_FILE: &str = "<generated>";

/// `base` (the input without the objects that merged ones replace) with
/// the generated objects loaded next to it, and the problems loading them
/// (diagnostics and policies Cilium would reject).
pub fn load_generated(base: &Inventory, generated: &str) -> (Inventory, Vec<String>) {
    let mut after = base.clone();
    let before_diags = after.diagnostics.len();
    after.load_text(GENERATED_FILE, generated);
    let mut load_errors: Vec<String> = after
        .diagnostics
        .iter()
        .skip(before_diags)
        .map(ToString::to_string)
        .collect();
    for p in after
        .policies
        .iter()
        .filter(|p| p.location.file.as_ref() == GENERATED_FILE)
    {
        if let Some(why) = &p.rejected {
            load_errors.push(format!("{}: {why}", p.object));
        }
    }
    (after, load_errors)
}

/// Loads the generated objects next to the input (`base`: the input without
/// the objects that merged ones replace), judges the paths again and diffs
/// connectivity against the input `inv`.
pub fn verify(
    inv: &Inventory,
    base: &Inventory,
    generated: &str,
    opts: &GenerateOptions,
) -> Verification {
    let (after_inv, load_errors) = load_generated(base, generated);
    let before = Engine::new(inv);
    let after = before
        .with_policies_of(&after_inv)
        .unwrap_or_else(|| Engine::new(&after_inv));
    let pb = paths(&before, &Routing::from_inventory(inv), &opts.paths);
    let routing = Routing::from_inventory(&after_inv);
    verify_loaded(&before, &pb, &after, &routing, load_errors, opts).0
}

/// [`verify`] on engines and paths the caller already has: the input's
/// (`before`, with the paths the objects were generated from) and the
/// input's with the generated objects (see [`load_generated`]; the engine
/// from [`Engine::with_policies_of`] when the workloads are the same).
///
/// The paths after are the paths before judged again ([`rejudge`]): the
/// generated objects are policies, so routes, Services and pods (the hops
/// and their checks) are the same and only the checks' decisions can
/// change. When that is not enough (a path whose verdict depends on more
/// than its hops changed, or a path is not allowed after), `paths` runs
/// again in full. Either is returned ([`PathsAfter::report`]: the report
/// after, for lint).
pub fn verify_loaded(
    before: &Engine,
    paths_before: &PathsReport,
    after: &Engine,
    after_routing: &Routing,
    load_errors: Vec<String>,
    opts: &GenerateOptions,
) -> (Verification, PathsAfter) {
    let (after_paths, judged) = judge_after(paths_before, after, after_routing, opts);
    let d = connectivity_after(before, after, opts);
    (judged.verification(d, load_errors), after_paths)
}

/// What [`judge_after`] keeps for the verification: the paths' summaries
/// and the connections they need.
pub struct JudgedPaths {
    paths_before: Summary,
    paths_after: Summary,
    needed: BTreeSet<(String, String, Protocol, u16)>,
}

/// The first half of [`verify_loaded`]: the paths after (the paths before
/// judged again, or computed in full) and what the verification needs of
/// them. Independent of [`connectivity_after`] (the second half), so the
/// caller may run both at once.
pub fn judge_after(
    paths_before: &PathsReport,
    after: &Engine,
    after_routing: &Routing,
    opts: &GenerateOptions,
) -> (PathsAfter, JudgedPaths) {
    let after_paths = match rejudge(paths_before, after) {
        Some(r) if r.summary.denied == 0 => PathsAfter::Judged(r),
        _ => PathsAfter::Full(paths(after, after_routing, &opts.paths)),
    };
    let summary_after = match &after_paths {
        PathsAfter::Judged(r) => r.summary.clone(),
        PathsAfter::Full(r) => r.summary.clone(),
    };
    // What the paths need: clients -> ingress on hop-1 ports, ingress ->
    // backends (the hops are the same before and after).
    let mut needed: BTreeSet<(String, String, Protocol, u16)> = BTreeSet::new();
    let hops_of = match &after_paths {
        PathsAfter::Full(r) => r,
        PathsAfter::Judged(_) => paths_before,
    };
    for c in hops_of.checks() {
        needed.insert((c.source.clone(), c.destination.clone(), c.protocol, c.port));
    }
    let judged = JudgedPaths {
        paths_before: paths_before.summary.clone(),
        paths_after: summary_after,
        needed,
    };
    (after_paths, judged)
}

/// The second half of [`verify_loaded`]: the connectivity the generated
/// objects change ([`delta`]), with the clients as extra parties.
pub fn connectivity_after(
    before: &Engine,
    after: &Engine,
    opts: &GenerateOptions,
) -> crate::connectivity_delta::Delta {
    let extra: Vec<Party> = opts
        .paths
        .clients
        .iter()
        .filter_map(|c| before.party(c).ok())
        .filter(|p| p.name != "reserved:world")
        .collect();
    delta(before, after, &extra)
}

impl JudgedPaths {
    /// The verification from the paths judged and the connectivity delta.
    pub fn verification(
        self,
        d: crate::connectivity_delta::Delta,
        load_errors: Vec<String>,
    ) -> Verification {
        let needed = self.needed;
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
            paths_before: self.paths_before,
            paths_after: self.paths_after,
            intended,
            unintended,
            accepted,
            closed: d.newly_default_deny,
            pairs_compared: d.pairs,
        }
    }
}

/// The paths of a report judged again by another engine.
#[derive(Debug)]
pub struct Rejudged {
    /// The summary `paths` would give with that engine.
    pub summary: Summary,
    /// The decision of every check, in report order.
    pub decisions: Vec<Decision>,
    /// The status of every path, in report order.
    pub statuses: Vec<Status>,
    /// Distinct side decisions computed (identity pair, direction,
    /// protocol, port and container ports).
    pub decided: usize,
    /// Side contexts built for them (one per subject identity and
    /// direction).
    pub contexts: usize,
}

/// What a side decision depends on (see `Engine::decide`): identities by
/// index, direction, protocol, port, enforcement and container ports (the
/// subject's and the peer's, interned: see [`Known`]).
type SideKey = (usize, usize, Direction, Protocol, u16, bool, usize, usize);

/// A party of the checks, looked up once per name: the party, and when its
/// identity is one of the engine's, that index with the party's container
/// ports interned (equal lists, equal numbers).
struct Known {
    party: Party,
    key: Option<(usize, usize)>,
}

/// `report`'s paths (computed with another engine over the same workloads,
/// Services and routes) judged by `engine`: each check's side decided again,
/// once per identity pair, port and container ports, and hops and paths
/// recombined as `paths` combines them (a hop is allowed when all its
/// checks are, a path when all its hops are). `None` when a check names a
/// party `engine` does not know, or when a check of a path whose verdict
/// does not follow from its hops alone (a finding, no target port) changed:
/// only `paths` itself can say then.
pub fn rejudge<'a>(report: &PathsReport, engine: &Engine<'a>) -> Option<Rejudged> {
    let mut parties: HashMap<&str, Known> = HashMap::new();
    let mut contexts: FxHashMap<(usize, Direction), SideContext<'a>> = FxHashMap::default();
    let mut port_lists: HashMap<Vec<ContainerPort>, usize> = HashMap::new();
    let mut memo: HashMap<SideKey, Decision> = HashMap::new();
    let mut decisions = Vec::new();
    let mut statuses = Vec::new();
    let mut summary = Summary::default();
    let backends = || {
        report
            .entry_points
            .iter()
            .flat_map(|ep| &ep.routes)
            .flat_map(|r| &r.backends)
    };
    // The checks each subject side is the subject of: its context is
    // dropped after its last check (kept until the end, the contexts of
    // every backend were alive at once: fresh memory, slow to fault in).
    let mut uses: FxHashMap<(usize, Direction), usize> = FxHashMap::default();
    for c in backends()
        .flat_map(|b| &b.paths)
        .flat_map(|p| &p.hops)
        .flat_map(|h| &h.checks)
    {
        for name in [&c.source, &c.destination] {
            if !parties.contains_key(name.as_str()) {
                let party = engine.party(name).ok()?;
                let key = engine.known_index(&party.identity).map(|i| {
                    let next = port_lists.len();
                    let ports = *port_lists.entry(party.ports.clone()).or_insert(next);
                    (i, ports)
                });
                parties.insert(name, Known { party, key });
            }
        }
        let subject = match c.direction {
            Direction::Ingress => &c.destination,
            Direction::Egress => &c.source,
        };
        if let Some((s, _)) = parties.get(subject.as_str()).and_then(|k| k.key) {
            *uses.entry((s, c.direction)).or_insert(0) += 1;
        }
    }
    let mut built = 0;
    for b in backends() {
        if b.paths.is_empty() {
            summary.add(b.decision);
        }
        for p in &b.paths {
            let mut changed = false;
            let mut hops = Vec::with_capacity(p.hops.len());
            for h in &p.hops {
                if h.checks.is_empty() {
                    hops.push(h.decision);
                    continue;
                }
                let mut all = true;
                for c in &h.checks {
                    let (src, dst) = (
                        parties.get(c.source.as_str())?,
                        parties.get(c.destination.as_str())?,
                    );
                    let (subject, peer) = match c.direction {
                        Direction::Ingress => (dst, src),
                        Direction::Egress => (src, dst),
                    };
                    // A subject's side context once per (identity,
                    // direction): the ingress is the subject of one check
                    // per backend, so building it per decision was
                    // backends x rules selecting the ingress.
                    let decide = |contexts: &mut FxHashMap<(usize, Direction), SideContext<'a>>,
                                  built: &mut usize| {
                        let d = match subject.key {
                            Some((s, _)) => {
                                let ctx = contexts.entry((s, c.direction)).or_insert_with(|| {
                                    *built += 1;
                                    engine.side_context(&subject.party, c.direction)
                                });
                                let peer_idx = peer.key.map(|(q, _)| q);
                                engine.decision_in(
                                    ctx,
                                    &subject.party,
                                    &peer.party,
                                    peer_idx,
                                    c.protocol,
                                    c.port,
                                )
                            }
                            None => engine.decide(
                                &subject.party,
                                c.direction,
                                &peer.party,
                                c.protocol,
                                c.port,
                            ),
                        };
                        if d.enforced {
                            d.decision
                        } else {
                            Decision::Allowed
                        }
                    };
                    let key = subject.key.zip(peer.key).map(|((s, sp), (q, qp))| {
                        (
                            s,
                            q,
                            c.direction,
                            c.protocol,
                            c.port,
                            subject.party.enforced,
                            sp,
                            qp,
                        )
                    });
                    let decision = match key {
                        Some(k) => match memo.get(&k) {
                            Some(&d) => d,
                            None => {
                                let d = decide(&mut contexts, &mut built);
                                memo.insert(k, d);
                                d
                            }
                        },
                        None => decide(&mut contexts, &mut built),
                    };
                    if let Some((s, _)) = subject.key {
                        if let Some(n) = uses.get_mut(&(s, c.direction)) {
                            *n = n.saturating_sub(1);
                            if *n == 0 {
                                contexts.remove(&(s, c.direction));
                            }
                        }
                    }
                    changed |= decision != c.decision;
                    all &= decision == Decision::Allowed;
                    decisions.push(decision);
                }
                hops.push(if all { Status::Allowed } else { Status::Denied });
            }
            let status = if !changed {
                p.decision
            } else if p.findings.is_empty() && p.target_port.is_some() && !hops.is_empty() {
                Status::all(hops)
            } else {
                return None;
            };
            summary.add(status);
            statuses.push(status);
        }
    }
    Some(Rejudged {
        summary,
        decisions,
        statuses,
        decided: memo.len(),
        contexts: built,
    })
}

impl Rejudged {
    /// Sets the decisions judged again on the report they were judged
    /// from: checks, hops, paths and the summary. A check whose decision
    /// changed keeps no explanation of the engine before: its sentence says
    /// it was judged again, its rules, tier and near misses are cleared
    /// (`verdict paths` on the input with the objects gives the sentence).
    pub fn apply(&self, report: &mut PathsReport) {
        let mut decisions = self.decisions.iter();
        let mut statuses = self.statuses.iter();
        for b in report
            .entry_points
            .iter_mut()
            .flat_map(|ep| &mut ep.routes)
            .flat_map(|r| &mut r.backends)
        {
            for p in &mut b.paths {
                for h in &mut p.hops {
                    if h.checks.is_empty() {
                        continue;
                    }
                    for c in &mut h.checks {
                        let Some(&d) = decisions.next() else {
                            return;
                        };
                        if d != c.decision {
                            c.decision = d;
                            c.explanation =
                                format!("{d} with the generated objects (judged again)");
                            c.rules = Default::default();
                            c.rules_list = 0; // the empty list
                            c.selected_by = None;
                            c.at = Default::default();
                            c.tier = None;
                            c.near_miss.clear();
                        }
                    }
                    h.decision = if h.checks.iter().all(|c| c.decision == Decision::Allowed) {
                        Status::Allowed
                    } else {
                        Status::Denied
                    };
                }
                if let Some(&st) = statuses.next() {
                    p.decision = st;
                }
            }
        }
        report.summary = self.summary.clone();
    }
}

/// The paths after, as the verification got them.
#[derive(Debug)]
pub enum PathsAfter {
    /// The paths before judged again (see [`Rejudged::apply`]).
    Judged(Rejudged),
    /// `paths` run again in full.
    Full(PathsReport),
}

impl PathsAfter {
    /// The report after: `before` with the decisions judged again, or the
    /// report computed in full.
    pub fn report(self, mut before: PathsReport) -> PathsReport {
        match self {
            PathsAfter::Judged(j) => {
                j.apply(&mut before);
                before
            }
            PathsAfter::Full(r) => r,
        }
    }
}
