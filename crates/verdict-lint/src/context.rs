//! What rules see: the inventory, the engine, the routes and their paths,
//! and helpers shared by rules.

use crate::index::{accepted_rules, Index};
use crate::LintConfig;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use verdict_core::engine::Engine;
use verdict_core::ingest::{Inventory, Workload};
use verdict_core::paths::{Controller, PathsReport};
use verdict_core::policy::{Peer, PeerKind, Policy, Rule};
use verdict_core::routes::Routing;
use verdict_core::selector::Selector;
use verdict_core::source::ObjectRef;

/// The annotation that silences findings on an object:
/// `verdict.dev/ignore: "VRD001: why; VRD004: why"`.
pub const IGNORE_ANNOTATION: &str = "verdict.dev/ignore";

pub struct Context<'a> {
    pub inv: &'a Inventory,
    pub engine: &'a Engine<'a>,
    pub routing: &'a Routing,
    pub paths: &'a PathsReport,
    pub config: &'a LintConfig,
    ix: Index<'a>,
}

impl<'a> Context<'a> {
    /// A context with its indices (each rule's selected identities,
    /// identity -> workloads, workloads by namespace) built once, so
    /// that rules look things up instead of scanning the cluster.
    pub fn new(
        inv: &'a Inventory,
        engine: &'a Engine<'a>,
        routing: &'a Routing,
        paths: &'a PathsReport,
        config: &'a LintConfig,
    ) -> Context<'a> {
        Context {
            inv,
            engine,
            routing,
            paths,
            config,
            ix: Index::new(inv, engine),
        }
    }

    /// The rules of every policy Cilium accepts.
    pub fn rules(&self) -> impl Iterator<Item = (&'a Policy, &'a Rule)> {
        accepted_rules(self.inv)
    }

    /// Indices of the identities a selector matches, ascending (memoised:
    /// each distinct selector is evaluated once, through the label index).
    pub fn matching(&self, sel: &Selector) -> Arc<[usize]> {
        self.ix.matching(sel)
    }

    /// Indices of the identities a rule applies to (an endpoint selector
    /// never selects the host), ascending.
    pub fn selected(&self, rule: &Rule) -> Arc<[usize]> {
        self.ix.selected(rule)
    }

    /// The workloads that have identity `idx`, in input order.
    pub fn workloads_of(&self, idx: usize) -> Vec<&'a Workload> {
        self.ix
            .workloads_of(idx)
            .iter()
            .filter_map(|&w| self.inv.workloads.get(w))
            .collect()
    }

    /// Indices of the workloads of a namespace, in input order.
    pub fn workloads_in(&self, namespace: &str) -> &[usize] {
        self.ix.workloads_in(namespace)
    }

    /// The values of label `key` on the workloads of `namespace` (or of the
    /// whole input when `None`), sorted; `None` when no workload has it.
    pub fn label_values(&self, namespace: Option<&str>, key: &str) -> Option<&BTreeSet<&'a str>> {
        self.ix.label_values(namespace, key)
    }

    /// `ns/kind/name` of the workloads with identity `idx`, or the identity.
    pub fn names_of(&self, idx: usize) -> Vec<String> {
        let w = self.workloads_of(idx);
        if w.is_empty() {
            return self
                .engine
                .identities
                .get(idx)
                .map(|i| vec![i.to_string()])
                .unwrap_or_default();
        }
        w.iter().map(|w| w.display_name()).collect()
    }

    /// [`Context::names_of`] for a message: the first [`SHOWN`] names, then
    /// how many more.
    pub fn names_of_capped(&self, idx: usize) -> String {
        let w = self.ix.workloads_of(idx);
        let names: Vec<String> = self.names_of_first(idx, SHOWN);
        capped(&names, w.len().max(names.len()))
    }

    /// The first `n` of [`Context::names_of`].
    fn names_of_first(&self, idx: usize, n: usize) -> Vec<String> {
        let w = self.ix.workloads_of(idx);
        if w.is_empty() {
            return self.names_of(idx);
        }
        w.iter()
            .take(n)
            .filter_map(|&w| self.inv.workloads.get(w))
            .map(|w| w.display_name())
            .collect()
    }

    fn index_of_party(&self, name: &str) -> Option<usize> {
        let p = self.engine.party(name).ok()?;
        self.engine.identity_index(&p.identity.labels)
    }

    /// Identities that receive outside traffic: `reserved:ingress` and the
    /// pods of other ingress controllers found by `paths` (computed once).
    pub fn ingress_identities(&self) -> &BTreeSet<usize> {
        self.ix.ingress.get_or_init(|| {
            let mut out = BTreeSet::new();
            if let Some(i) = self.index_of_party("ingress") {
                out.insert(i);
            }
            for ep in &self.paths.entry_points {
                if let Controller::Pods { pods, .. } = &ep.controller {
                    for p in pods {
                        if let Some(i) = self.index_of_party(p) {
                            out.insert(i);
                        }
                    }
                }
            }
            out
        })
    }

    /// Identities of route backends, with the routes that reach them
    /// (computed once; each backend name resolved once).
    pub fn backend_identities(&self) -> &BTreeMap<usize, BTreeSet<String>> {
        self.ix.backends.get_or_init(|| {
            let mut out: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
            let mut resolved: HashMap<&str, Option<usize>> = HashMap::new();
            for ep in &self.paths.entry_points {
                for r in &ep.routes {
                    for b in &r.backends {
                        for p in &b.paths {
                            let i = *resolved
                                .entry(p.backend.as_str())
                                .or_insert_with(|| self.index_of_party(&p.backend));
                            if let Some(i) = i {
                                out.entry(i).or_default().insert(r.route.to_string());
                            }
                        }
                    }
                }
            }
            out
        })
    }

    /// Namespaces that have at least one workload in the input.
    pub fn namespaces_with_workloads(&self) -> BTreeSet<&'a str> {
        self.inv
            .workloads
            .iter()
            .map(|w| w.namespace.as_str())
            .collect()
    }
}

/// How many names a message lists before "and N more": a finding never
/// lists an unbounded set (replicas, routes, backends), so that its size
/// does not grow with the cluster.
pub const SHOWN: usize = 3;

/// `a, b, c and 7 more`: the first [`SHOWN`] of `shown` (already in
/// order), then how many of `total` are left.
pub fn capped(shown: &[String], total: usize) -> String {
    let head: Vec<&str> = shown.iter().take(SHOWN).map(String::as_str).collect();
    let rest = total.saturating_sub(head.len());
    if rest == 0 {
        head.join(", ")
    } else {
        format!("{} and {rest} more", head.join(", "))
    }
}

/// The entity a peer names (`fromEntities: world` -> `world`).
pub fn entity(peer: &Peer) -> Option<&str> {
    match peer.kind {
        PeerKind::Selectors { .. } => peer
            .text
            .strip_prefix("fromEntities: ")
            .or_else(|| peer.text.strip_prefix("toEntities: ")),
        _ => None,
    }
}

/// Whether an endpoint selector is "every endpoint" (`{}`), possibly
/// scoped to its policy's namespace only.
pub fn is_wildcard_subject(sel: &Selector) -> bool {
    sel.reqs
        .iter()
        .all(|r| r.key == verdict_core::labels::POD_NAMESPACE_LABEL && r.source == "k8s")
}

/// Parses the ignore annotations of every policy: (object, code, reason),
/// and notes about malformed ones.
pub fn suppressions(inv: &Inventory) -> (Vec<(ObjectRef, String, String)>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for p in &inv.policies {
        let Some(value) = p.annotations.get(IGNORE_ANNOTATION) else {
            continue;
        };
        for part in value
            .split([';', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (key, why) = match part.split_once(':') {
                Some((k, w)) => (k.trim(), w.trim()),
                None => (part, ""),
            };
            let Ok(code) = LintConfig::code_of(key) else {
                notes.push(format!(
                    "{} ({}): `{IGNORE_ANNOTATION}` names unknown rule `{key}`",
                    p.object, p.location
                ));
                continue;
            };
            if why.is_empty() {
                notes.push(format!(
                    "{} ({}): `{IGNORE_ANNOTATION}: {key}` has no reason; write `{key}: <why>` (the finding is still reported)",
                    p.object, p.location
                ));
                continue;
            }
            out.push((p.object.clone(), code.to_string(), why.to_string()));
        }
    }
    (out, notes)
}
