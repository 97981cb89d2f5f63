//! The indices behind [`crate::Context`], built once per lint run so that
//! rules look up instead of scanning: every distinct selector evaluated
//! once (through the engine's label-indexed `SelectorCache`), each rule's
//! selected identities, identity -> workloads, workloads by namespace.
//! Without them a rule that asks "which identities does this rule select"
//! for every rule costs rules x identities selector evaluations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use verdict_core::engine::Engine;
use verdict_core::ingest::Inventory;
use verdict_core::policy::{Policy, Rule, Subject};
use verdict_core::resolved::SelectorCache;
use verdict_core::selector::Selector;

/// The rules of every policy Cilium accepts, in input order.
pub(crate) fn accepted_rules(inv: &Inventory) -> impl Iterator<Item = (&Policy, &Rule)> {
    inv.policies
        .iter()
        .filter(|p| p.rejected.is_none() && p.ignored.is_none())
        .flat_map(|p| p.rules.iter().map(move |r| (p, r)))
}

/// Selectors evaluated so far, shared as `Arc`s.
struct Memo<'a> {
    cache: SelectorCache<'a>,
    shared: HashMap<Selector, Arc<[usize]>>,
}

/// Label key -> the values workloads carry: in the whole input, and by
/// namespace.
type LabelValues<'a> = HashMap<&'a str, (BTreeSet<&'a str>, HashMap<&'a str, BTreeSet<&'a str>>)>;

pub(crate) struct Index<'a> {
    inv: &'a Inventory,
    memo: Mutex<Memo<'a>>,
    /// Rule (by address) -> its selected identities (host excluded).
    selected: HashMap<usize, Arc<[usize]>>,
    /// Identity index -> workload indices.
    by_identity: Vec<Vec<usize>>,
    /// Namespace -> workload indices.
    by_namespace: HashMap<&'a str, Vec<usize>>,
    /// The identities of the host (an endpoint selector never selects them).
    hosts: Vec<usize>,
    /// Built on first use (VRD004's diagnosis).
    label_values: OnceLock<LabelValues<'a>>,
    pub(crate) ingress: OnceLock<BTreeSet<usize>>,
    pub(crate) backends: OnceLock<BTreeMap<usize, BTreeSet<String>>>,
}

fn rule_key(rule: &Rule) -> usize {
    std::ptr::from_ref(rule) as usize
}

impl<'a> Index<'a> {
    pub(crate) fn new(inv: &'a Inventory, engine: &'a Engine<'a>) -> Index<'a> {
        let mut ix = Index {
            inv,
            memo: Mutex::new(Memo {
                cache: SelectorCache::new(&engine.identities),
                shared: HashMap::new(),
            }),
            selected: HashMap::new(),
            by_identity: vec![Vec::new(); engine.identities.len()],
            by_namespace: HashMap::new(),
            label_values: OnceLock::new(),
            hosts: engine
                .identities
                .iter()
                .enumerate()
                .filter(|(_, id)| id.reserved_name() == Some("host"))
                .map(|(i, _)| i)
                .collect(),
            ingress: OnceLock::new(),
            backends: OnceLock::new(),
        };
        for ep in engine.endpoints.iter().flatten() {
            if let Some(v) = ix.by_identity.get_mut(ep.identity) {
                v.push(ep.workload);
            }
        }
        for (wi, w) in inv.workloads.iter().enumerate() {
            ix.by_namespace
                .entry(w.namespace.as_str())
                .or_default()
                .push(wi);
        }
        // The selectors every run reads (each rule's subject; the peers
        // of `fromEndpoints`/`toEndpoints` and the subjects not of the
        // reserved source, which VRD004 reads), selected ahead on the
        // machine's threads.
        let sels = accepted_rules(inv).flat_map(|(_, r)| {
            let peers = r
                .entries
                .iter()
                .flat_map(|e| &e.peers)
                .filter(|p| p.from_endpoints)
                .flat_map(|p| match &p.kind {
                    verdict_core::policy::PeerKind::Selectors { selectors } => selectors.as_slice(),
                    _ => &[],
                })
                .filter(|s| !s.has_source(verdict_core::labels::SOURCE_RESERVED));
            r.endpoint_selector().into_iter().chain(peers)
        });
        ix.memo
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .cache
            .warm(sels, verdict_core::threads());
        let selected: HashMap<usize, Arc<[usize]>> = accepted_rules(inv)
            .map(|(_, r)| (rule_key(r), ix.compute_selected(r)))
            .collect();
        ix.selected = selected;
        ix
    }

    pub(crate) fn matching(&self, sel: &Selector) -> Arc<[usize]> {
        // A poisoned lock only means another rule panicked; the memo is
        // still consistent (entries are inserted whole).
        let mut memo = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ids) = memo.shared.get(sel) {
            return ids.clone();
        }
        let ids: Arc<[usize]> = memo.cache.select(sel).iter().map(|&i| i as usize).collect();
        memo.shared.insert(sel.clone(), ids.clone());
        ids
    }

    fn compute_selected(&self, rule: &Rule) -> Arc<[usize]> {
        match &rule.subject {
            Subject::Endpoints(sel) => {
                let ids = self.matching(sel);
                // The host identities, looked up in the sorted set (not a
                // scan of the set per rule).
                if self.hosts.iter().any(|h| ids.binary_search(h).is_ok()) {
                    ids.iter()
                        .copied()
                        .filter(|i| !self.hosts.contains(i))
                        .collect()
                } else {
                    ids
                }
            }
            Subject::Nodes(_) => Arc::from(Vec::new()),
        }
    }

    pub(crate) fn selected(&self, rule: &Rule) -> Arc<[usize]> {
        match self.selected.get(&rule_key(rule)) {
            Some(ids) => ids.clone(),
            // A rule outside the accepted policies (not asked by rules today).
            None => self.compute_selected(rule),
        }
    }

    pub(crate) fn workloads_of(&self, idx: usize) -> &[usize] {
        self.by_identity.get(idx).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn workloads_in(&self, namespace: &str) -> &[usize] {
        self.by_namespace
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The values of label `key` on the workloads of `namespace` (or of
    /// the whole input), sorted.
    pub(crate) fn label_values(
        &self,
        namespace: Option<&str>,
        key: &str,
    ) -> Option<&BTreeSet<&'a str>> {
        self.label_values
            .get_or_init(|| {
                let mut m: LabelValues<'a> = HashMap::new();
                for w in &self.inv.workloads {
                    for (k, v) in &w.labels {
                        let (all, by_ns) = m.entry(k.as_str()).or_default();
                        all.insert(v.as_str());
                        by_ns
                            .entry(w.namespace.as_str())
                            .or_default()
                            .insert(v.as_str());
                    }
                }
                m
            })
            .get(key)
            .and_then(|(all, by_ns)| match namespace {
                None => Some(all),
                Some(ns) => by_ns.get(ns),
            })
    }
}
