//! What rules see: the inventory, the engine, the routes and their paths,
//! and helpers shared by rules.

use crate::LintConfig;
use std::collections::{BTreeMap, BTreeSet};
use verdict_core::engine::Engine;
use verdict_core::ingest::{Inventory, Workload};
use verdict_core::paths::{Controller, PathsReport};
use verdict_core::policy::{Peer, PeerKind, Policy, Rule, Subject};
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
}

impl<'a> Context<'a> {
    /// The rules of every policy Cilium accepts.
    pub fn rules(&self) -> impl Iterator<Item = (&'a Policy, &'a Rule)> {
        self.inv
            .policies
            .iter()
            .filter(|p| p.rejected.is_none() && p.ignored.is_none())
            .flat_map(|p| p.rules.iter().map(move |r| (p, r)))
    }

    /// Indices of the identities a selector matches.
    pub fn matching(&self, sel: &Selector) -> Vec<usize> {
        self.engine
            .identities
            .iter()
            .enumerate()
            .filter(|(_, id)| sel.matches(&id.labels))
            .map(|(i, _)| i)
            .collect()
    }

    /// Indices of the identities a rule applies to (an endpoint selector
    /// never selects the host).
    pub fn selected(&self, rule: &Rule) -> Vec<usize> {
        match &rule.subject {
            Subject::Endpoints(sel) => self
                .matching(sel)
                .into_iter()
                .filter(|&i| {
                    self.engine
                        .identities
                        .get(i)
                        .and_then(|id| id.reserved_name())
                        != Some("host")
                })
                .collect(),
            Subject::Nodes(_) => Vec::new(),
        }
    }

    /// The workloads that have identity `idx`.
    pub fn workloads_of(&self, idx: usize) -> Vec<&'a Workload> {
        self.engine
            .endpoints
            .iter()
            .flatten()
            .filter(|e| e.identity == idx)
            .filter_map(|e| self.inv.workloads.get(e.workload))
            .collect()
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

    fn index_of_party(&self, name: &str) -> Option<usize> {
        let p = self.engine.party(name).ok()?;
        self.engine.identity_index(&p.identity.labels)
    }

    /// Identities that receive outside traffic: `reserved:ingress` and the
    /// pods of other ingress controllers found by `paths`.
    pub fn ingress_identities(&self) -> BTreeSet<usize> {
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
    }

    /// Identities of route backends, with the routes that reach them.
    pub fn backend_identities(&self) -> BTreeMap<usize, BTreeSet<String>> {
        let mut out: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        for ep in &self.paths.entry_points {
            for r in &ep.routes {
                for b in &r.backends {
                    for p in &b.paths {
                        if let Some(i) = self.index_of_party(&p.backend) {
                            out.entry(i).or_default().insert(r.route.to_string());
                        }
                    }
                }
            }
        }
        out
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
