//! Resolved policy per identity, like the agent's per-endpoint policy map:
//! (direction, peer identity, protocol, port range) -> allow/deny, proxy
//! redirect, and the rules it came from.
//!
//! Peers are resolved through a selector cache: each distinct selector is
//! evaluated once against the known identities, using an index from
//! `key=value` labels to identities so that a selector with an equality
//! requirement only looks at the identities carrying that label.

use crate::engine::{cidr_peer_matches, requirements, Decision, Engine, Party};
use crate::identity::Identity;
use crate::peerset::PeerSets;
use crate::policy::{
    first_decider, Direction, Entry, Origin, PeerKind, PortSel, Precedence, Protocol, Rule, Tier,
};
use crate::selector::Selector;
use crate::settings::PolicyEnforcement;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use crate::peerset::{PeerNames, PeerRef, PeerSet};
pub use crate::resolved_rows::{MapKey, MapValue, PeerKey};

/// One summarised map entry: a rule entry's decision for a set of peers
/// (resolved once, shared by every subject) on one port range. A peer's
/// verdict is read with [`ResolvedPolicy::lookup`]; the per-identity rows
/// with [`ResolvedPolicy::rows`].
#[derive(Debug, Clone)]
pub struct SetEntry<'r> {
    pub direction: Direction,
    pub peers: Arc<PeerSet>,
    pub protocol: Protocol,
    /// An entry without ports (an L3-only item): every protocol, ICMP
    /// included, as Cilium's protocol 0 key; `protocol` is then `Any`
    /// (which alone covers TCP, UDP and SCTP).
    pub all_protocols: bool,
    pub from_port: u16,
    pub to_port: u16,
    /// `allowed` for an Accept or a Pass, `denied` for a Deny.
    pub decision: Decision,
    pub tier: Tier,
    /// Order inside the tier (priority * 100 + rule index); 0 for ordinary
    /// entries, which all share one level (deny before allow).
    pub level: u32,
    /// A ClusterNetworkPolicy `Pass`: the next tier decides.
    pub pass: bool,
    pub proxied: Vec<&'r str>,
    /// The rule entries this entry stands for: entries of identical
    /// content (peers, ports, decision, tier, level, pass, proxy) from
    /// several rules are merged into one. Each origin carries its position
    /// in the unmerged order (rule, entry, port range), so readers list the
    /// deciding rules exactly as one entry per rule would.
    pub origins: Arc<[(u32, &'r Origin)]>,
}

/// [`SetEntry::effect`]: protocol, all protocols, port range, decision,
/// tier, level, pass.
pub type EntryEffect = (Protocol, bool, u16, u16, Decision, Tier, u32, bool);

impl<'r> SetEntry<'r> {
    /// Cilium's order of matching entries: tier, level, then deny before
    /// allow before pass (see [`first_decider`]).
    pub fn precedence(&self) -> Precedence {
        let action = match (self.decision, self.pass) {
            (Decision::Denied, _) => 0,
            (_, false) => 1,
            (_, true) => 2,
        };
        (self.tier, self.level, action)
    }

    /// The rules this entry came from, in rule order.
    pub fn origins(&self) -> impl Iterator<Item = &'r Origin> + '_ {
        self.origins.iter().map(|&(_, o)| o)
    }

    /// What the entry does on which ports: everything but its peers,
    /// proxy and origins (a key for entries that act alike).
    pub fn effect(&self) -> EntryEffect {
        (
            self.protocol,
            self.all_protocols,
            self.from_port,
            self.to_port,
            self.decision,
            self.tier,
            self.level,
            self.pass,
        )
    }

    /// Whether the entry's port range covers `port` of `protocol` (for
    /// ICMP, `port` is the ICMP type).
    pub fn covers(&self, protocol: Protocol, port: u16) -> bool {
        (self.all_protocols || self.protocol.covers(protocol))
            && self.from_port <= port
            && port <= self.to_port
    }
}

/// The resolved policy of one subject: per direction, whether policy is
/// enforced, and the summarised entries (one per rule entry and port range).
#[derive(Debug, Clone)]
pub struct ResolvedPolicy<'r> {
    pub subject: String,
    pub identity: Identity,
    /// The subject's index in the engine's identities.
    pub index: Option<u32>,
    /// Per direction: whether policy is enforced and default deny is on.
    pub ingress: DirectionState<'r>,
    pub egress: DirectionState<'r>,
    /// In rule order, then entry order, then port-range order, entries of
    /// identical content merged into the first (see [`SetEntry::origins`]).
    /// Shared: endpoints with the same rules and ports have the same
    /// entries (see [`Plan::same_maps`]), and their maps one list.
    pub entries: Arc<Vec<SetEntry<'r>>>,
    names: Arc<PeerNames>,
}

/// The answer of one side of a resolved map for one peer at one port.
#[derive(Debug, Clone, Default)]
pub struct Lookup<'r> {
    /// The flow passes this side (not enforced, an allow decides, or no
    /// entry decides and there is no default deny, or allow-localhost).
    pub allowed: bool,
    /// A deny entry decides.
    pub denied: bool,
    /// The deciding allow entries redirect to the L7 proxy.
    pub proxied: bool,
    /// The entries at the deciding precedence.
    pub origins: Vec<&'r Origin>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DirectionState<'r> {
    pub enforced: bool,
    pub default_deny: bool,
    /// `allow-localhost=always`: the node reaches this endpoint where no
    /// rule decides.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_localhost: bool,
    pub rules: Vec<&'r Origin>,
}

/// Caches the identities each selector selects.
pub struct SelectorCache<'e> {
    identities: &'e [Identity],
    /// (key, value) -> identities carrying such a label (any source).
    index: FxHashMap<(&'e str, &'e str), Vec<u32>>,
    /// key -> identities carrying a label with that key (any source).
    by_key: FxHashMap<&'e str, Vec<u32>>,
    cache: FxHashMap<Selector, Vec<u32>>,
}

impl<'e> SelectorCache<'e> {
    pub fn new(identities: &'e [Identity]) -> SelectorCache<'e> {
        let mut index: FxHashMap<(&str, &str), Vec<u32>> = FxHashMap::default();
        let mut by_key: FxHashMap<&str, Vec<u32>> = FxHashMap::default();
        for (i, id) in identities.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for l in id.labels.iter() {
                index
                    .entry((l.key.as_str(), l.value.as_str()))
                    .or_default()
                    .push(i);
                let list = by_key.entry(l.key.as_str()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        SelectorCache {
            identities,
            index,
            by_key,
            cache: FxHashMap::default(),
        }
    }

    /// Indices (into the engine's identities) selected by `sel`.
    pub fn select(&mut self, sel: &Selector) -> &[u32] {
        if !self.cache.contains_key(sel) {
            let result = self.compute(sel);
            self.cache.insert(sel.clone(), result);
        }
        self.cache.get(sel).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Selects, ahead of their use, every selector of `sels` not selected
    /// yet, on up to `threads` threads from [`WARM_PARALLEL`] selectors
    /// (a dense cluster's rules hold thousands, each matched against a
    /// share of the cluster's identities).
    pub fn warm<'s>(&mut self, sels: impl Iterator<Item = &'s Selector>, threads: usize) {
        self.warm_from(sels, threads, WARM_PARALLEL);
    }

    /// [`SelectorCache::warm`] on several threads from `parallel` selectors.
    fn warm_from<'s>(
        &mut self,
        sels: impl Iterator<Item = &'s Selector>,
        threads: usize,
        parallel: usize,
    ) {
        let mut seen: rustc_hash::FxHashSet<&Selector> = rustc_hash::FxHashSet::default();
        let todo: Vec<&Selector> = sels
            .filter(|s| !self.cache.contains_key(*s) && seen.insert(s))
            .collect();
        let threads = if todo.len() < parallel {
            1
        } else {
            threads.clamp(1, 64)
        };
        let this = &*self;
        let chunk = todo.len().div_ceil(threads).max(1);
        let done: Vec<Vec<Vec<u32>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = todo
                .chunks(chunk)
                .skip(1)
                .map(|part| scope.spawn(move || part.iter().map(|s| this.compute(s)).collect()))
                .collect();
            let first: Vec<Vec<u32>> = todo
                .chunks(chunk)
                .next()
                .unwrap_or(&[])
                .iter()
                .map(|s| this.compute(s))
                .collect();
            std::iter::once(first)
                .chain(
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))),
                )
                .collect()
        });
        for (s, ids) in todo.into_iter().zip(done.into_iter().flatten()) {
            self.cache.insert(s.clone(), ids);
        }
    }

    /// The identities `sel` selects (uncached).
    fn compute(&self, sel: &Selector) -> Vec<u32> {
        // The smallest `In` requirement's identities (the union over its
        // values) are the only candidates.
        let index = &self.index;
        let candidates: Option<Vec<u32>> = sel
            .in_sets()
            .map(|(k, values)| match values {
                Some(values) => values
                    .iter()
                    .map(|v| index.get(&(k, v.as_str())).unwrap_or(&EMPTY))
                    .collect::<Vec<_>>(),
                None => vec![self.by_key.get(k).unwrap_or(&EMPTY)],
            })
            .min_by_key(|lists| lists.iter().map(|l| l.len()).sum::<usize>())
            .map(|lists| {
                let mut c: Vec<u32> = lists.into_iter().flatten().copied().collect();
                c.sort_unstable();
                c.dedup();
                c
            });
        let ids = self.identities;
        match candidates {
            Some(c) => c
                .into_iter()
                .filter(|&i| {
                    ids.get(i as usize)
                        .is_some_and(|id| sel.matches(&id.labels))
                })
                .collect(),
            None => (0..ids.len())
                .filter(|&i| sel.matches(&ids[i].labels))
                .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                .collect(),
        }
    }
}

/// The selectors of the peers of `rules`' entries.
pub fn peer_selectors<'r>(rules: &'r [&Rule]) -> impl Iterator<Item = &'r Selector> {
    rules
        .iter()
        .flat_map(|r| &r.entries)
        .flat_map(|e| &e.peers)
        .flat_map(|p| match &p.kind {
            PeerKind::Selectors { selectors } => selectors.as_slice(),
            _ => &[],
        })
}

/// Below this many selectors to select, [`SelectorCache::warm`] stays on
/// one thread.
const WARM_PARALLEL: usize = 512;

static EMPTY: Vec<u32> = Vec::new();

/// An entry resolved once, for every subject it applies to: its peers and,
/// unless it names ports (resolved per subject), its port ranges.
struct EntryRes {
    peers: Vec<PeerRef>,
    /// Peers selected only through `fromEndpoints`/`toEndpoints` (which
    /// `fromRequires`/`toRequires` narrow further).
    endpoint_only: Vec<PeerRef>,
    ranges: Option<Vec<(Protocol, u16, u16)>>,
    /// `peers` as a shared set (set by [`Resolver::finalize`]).
    set: Option<Arc<PeerSet>>,
    /// Egress entries naming ports, where names resolve against each
    /// destination (1.20+): the peers grouped by the ranges their ports
    /// give, for endpoint subjects (set by [`Resolver::finalize`]).
    per_peer: Option<Vec<PeerGroup>>,
}

/// A rule's entry in a map's walk: its position in the rule, its
/// resolution and its twin (both indices into the resolver's `res`).
type RuleEntry = (u32, u32, u32);

/// A peer list keyed by its length and ends only (compared in full): lists
/// of thousands of peers are hashed in constant time.
#[derive(PartialEq, Eq)]
struct Ends<'k>(&'k [PeerRef]);

impl std::hash::Hash for Ends<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (self.0.len(), self.0.first(), self.0.last()).hash(h);
    }
}

/// Peers sharing the same resolved port ranges.
type PeerGroup = (Vec<(Protocol, u16, u16)>, Arc<PeerSet>);

/// Resolution state shared by every subject: the selector cache, each
/// entry's resolved peers, the names of identities and CIDR selections.
/// Once entries are prepared, building a subject's map only reads it, so
/// subjects can be resolved in parallel.
pub struct Resolver<'e, 'a> {
    engine: &'e Engine<'a>,
    cache: SelectorCache<'e>,
    /// Entry (by address) -> its resolution in `res`.
    entries: FxHashMap<usize, u32>,
    res: Vec<EntryRes>,
    /// Rule (by address) -> per direction, its entries of that direction
    /// as (position in the rule, resolution in `res`): a map reads its
    /// rules' entries with one lookup per rule, not one per entry.
    /// The third of each triple: the entry's twin (see
    /// [`Resolver::twins`]), set by [`Resolver::finalize`].
    by_rule: FxHashMap<usize, [Vec<RuleEntry>; 2]>,
    cidrs: Vec<String>,
    cidr_ids: HashMap<String, u32>,
    reserved: Vec<u32>,
    /// Identity number -> index into the engine's identities.
    by_id: HashMap<u32, usize>,
    sets: PeerSets,
    names: Arc<PeerNames>,
    /// Every prepared entry, in preparation order.
    entry_ptrs: Vec<&'a Entry>,
    /// Maps without rules: entries carry no origins, direction states no
    /// rule lists (see [`Plan::without_rules`]).
    no_origins: bool,
    /// The origin list every entry is built with; a map's origins are
    /// gathered beside its entries and set when they are merged (maps
    /// without rules keep it).
    empty_origins: Arc<[(u32, &'static Origin)]>,
}

/// The identity of an entry: its address (entries live as long as the
/// inventory and are never moved while resolving).
fn entry_key(e: &Entry) -> usize {
    std::ptr::from_ref(e) as usize
}

fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl<'e, 'a> Resolver<'e, 'a> {
    pub fn new(engine: &'e Engine<'a>) -> Resolver<'e, 'a> {
        let reserved = engine
            .identities
            .iter()
            .enumerate()
            .filter(|(_, id)| id.reserved_name().is_some())
            .map(|(i, _)| index_u32(i))
            .collect();
        Resolver {
            engine,
            cache: SelectorCache::new(&engine.identities),
            entries: FxHashMap::default(),
            res: Vec::new(),
            by_rule: FxHashMap::default(),
            cidrs: Vec::new(),
            cidr_ids: HashMap::new(),
            reserved,
            by_id: engine
                .identities
                .iter()
                .enumerate()
                .map(|(i, id)| (id.id, i))
                .collect(),
            sets: PeerSets::default(),
            names: Arc::new(PeerNames::default()),
            entry_ptrs: Vec::new(),
            no_origins: false,
            empty_origins: Arc::from(Vec::new()),
        }
    }

    fn prepare(&mut self, e: &Entry) {
        let key = entry_key(e);
        if self.entries.contains_key(&key) {
            return;
        }
        let mut peers: Vec<PeerRef> = Vec::new();
        let mut from_endpoints: Vec<PeerRef> = Vec::new();
        for p in &e.peers {
            match &p.kind {
                PeerKind::Selectors { selectors } => {
                    let out = if p.from_endpoints {
                        &mut from_endpoints
                    } else {
                        &mut peers
                    };
                    for s in selectors {
                        out.extend(self.cache.select(s).iter().map(|&i| PeerRef::Identity(i)));
                    }
                }
                PeerKind::Cidr { cidr, except } => {
                    let mut text = cidr.to_string();
                    for x in except {
                        text.push_str(&format!(" except {x}"));
                    }
                    let next = index_u32(self.cidrs.len());
                    let id = *self.cidr_ids.entry(text.clone()).or_insert(next);
                    if id == next {
                        self.cidrs.push(text);
                    }
                    peers.push(PeerRef::Cidr(id));
                    let engine = self.engine;
                    for &i in &self.reserved {
                        if let Some(id) = engine.identities.get(i as usize) {
                            if cidr_peer_matches(cidr, except, id, engine.inv.cluster.dual_stack) {
                                peers.push(PeerRef::Identity(i));
                            }
                        }
                    }
                }
                PeerKind::Unevaluable { .. } => {}
            }
        }
        peers.sort();
        peers.dedup();
        from_endpoints.sort();
        from_endpoints.dedup();
        let endpoint_only: Vec<PeerRef> = from_endpoints
            .iter()
            .copied()
            .filter(|p| peers.binary_search(p).is_err())
            .collect();
        peers.extend(endpoint_only.iter().copied());
        peers.sort();
        let named = e
            .ports
            .iter()
            .flatten()
            .any(|p| matches!(p.port, PortSel::Named(_)));
        let ranges = (!named).then(|| fixed_ranges(e));
        self.entries.insert(key, index_u32(self.res.len()));
        self.res.push(EntryRes {
            peers,
            endpoint_only,
            ranges,
            set: None,
            per_peer: None,
        });
    }

    /// Prepares every entry of `rules`.
    pub fn prepare_rules(&mut self, rules: &[&'a Rule]) {
        self.cache.warm(peer_selectors(rules), crate::threads());
        for r in rules {
            let mut lists: [Vec<RuleEntry>; 2] = [Vec::new(), Vec::new()];
            for (pos, e) in r.entries.iter().enumerate() {
                self.prepare(e);
                self.entry_ptrs.push(e);
                if let (Some(&i), Some(list)) = (
                    self.entries.get(&entry_key(e)),
                    lists.get_mut(e.direction.index()),
                ) {
                    list.push((index_u32(pos), i, i));
                }
            }
            self.by_rule
                .insert(std::ptr::from_ref::<Rule>(r) as usize, lists);
        }
    }

    /// The resolution of prepared entry `e`.
    fn res_of(&self, e: &Entry) -> Option<&EntryRes> {
        let i = *self.entries.get(&entry_key(e))?;
        self.res.get(i as usize)
    }

    /// Whether peer `p` meets every requirement (`fromRequires`).
    fn meets(&self, p: PeerRef, requires: &[&Selector]) -> bool {
        let PeerRef::Identity(i) = p else {
            return true;
        };
        self.engine
            .identities
            .get(i as usize)
            .is_some_and(|ident| requires.iter().all(|r| r.matches(&ident.labels)))
    }

    /// Renumbers CIDR selections in the order of their text and builds the
    /// shared peer sets. Call after preparing.
    pub fn finalize(&mut self) {
        let mut order: Vec<u32> = (0..index_u32(self.cidrs.len())).collect();
        order.sort_by(|a, b| {
            self.cidrs
                .get(*a as usize)
                .cmp(&self.cidrs.get(*b as usize))
        });
        let mut rank = vec![0u32; order.len()];
        for (r, &old) in order.iter().enumerate() {
            if let Some(slot) = rank.get_mut(old as usize) {
                *slot = index_u32(r);
            }
        }
        let sorted: Vec<String> = order
            .iter()
            .filter_map(|&o| self.cidrs.get(o as usize).cloned())
            .collect();
        self.cidrs.clone_from(&sorted);
        for text_rank in self.cidr_ids.values_mut() {
            *text_rank = rank.get(*text_rank as usize).copied().unwrap_or(*text_rank);
        }
        for res in &mut self.res {
            for p in &mut res.peers {
                if let PeerRef::Cidr(c) = p {
                    *c = rank.get(*c as usize).copied().unwrap_or(*c);
                }
            }
            res.peers.sort();
            res.set = Some(self.sets.intern(PeerSet::new(res.peers.iter().copied())));
        }
        if self.engine.egress_named_per_peer() {
            self.group_per_peer();
        }
        let twins = self.twins();
        for lists in self.by_rule.values_mut() {
            for (_, i, twin) in lists.iter_mut().flatten() {
                *twin = twins.get(*i as usize).copied().unwrap_or(*i);
            }
        }
        let ids = &self.engine.identities;
        self.names = Arc::new(PeerNames {
            numbers: ids.iter().map(|id| id.id).collect(),
            names: ids.iter().map(|id| Arc::from(id.to_string())).collect(),
            cidrs: sorted,
            host: ids
                .iter()
                .position(|id| id.reserved_name() == Some("host"))
                .map(index_u32),
        });
    }

    /// Per resolution in `res`, its twin: the first resolution of the same
    /// content. Twins build the same map entries for a subject, so a map
    /// builds them once and only counts the others' origins (the
    /// clusterwide policies that repeat the same DNS, API server or CIDR
    /// rule across a large cluster). Resolutions are keyed by everything
    /// building an entry's map entries reads of it (direction, action,
    /// tier, level, ports, proxy, requirements, unevaluable parts) and of
    /// its resolution (the interned peer set; the peers only
    /// `fromEndpoints` selects; port ranges and named-port groups follow
    /// from the ports and peers).
    fn twins(&self) -> Vec<u32> {
        type Key<'k> = (
            (Direction, bool, bool, Tier, u32),
            usize,
            Ends<'k>,
            &'k Option<Vec<crate::policy::PortRule>>,
            &'k [String],
            &'k [Selector],
            &'k [String],
        );
        let mut twin: Vec<u32> = (0..index_u32(self.res.len())).collect();
        let mut first: FxHashMap<Key<'_>, u32> = FxHashMap::default();
        for &e in &self.entry_ptrs {
            let Some(&i) = self.entries.get(&entry_key(e)) else {
                continue;
            };
            let Some(set) = self
                .res
                .get(i as usize)
                .and_then(|r| Some((r, r.set.as_ref()?)))
            else {
                continue;
            };
            let (res, set) = set;
            let key: Key<'_> = (
                (e.direction, e.deny, e.pass, e.tier, e.level),
                Arc::as_ptr(set) as usize,
                Ends(&res.endpoint_only),
                &e.ports,
                &e.l7,
                &e.requires,
                &e.unevaluable,
            );
            let t = *first.entry(key).or_insert(i);
            if let Some(slot) = twin.get_mut(i as usize) {
                *slot = t;
            }
        }
        twin
    }

    /// Groups the peers of egress entries with named ports by the ranges
    /// the names resolve to against each peer's own ports. On egress from
    /// 1.20 the subject only matters by being an endpoint or not
    /// ([`Engine::named_port`]), so one endpoint subject stands for all.
    fn group_per_peer(&mut self) {
        let engine = self.engine;
        let Some(rep) = engine.identities.iter().find(|i| i.is_endpoint()) else {
            return;
        };
        let subject = Party {
            name: String::new(),
            identity: rep.clone(),
            ports: Vec::new(),
            enforced: true,
        };
        let mut groups_of: HashMap<usize, Vec<PeerGroup>> = HashMap::new();
        for &e in &self.entry_ptrs {
            let Some(res) = self.res_of(e) else {
                continue;
            };
            if res.ranges.is_some() || e.direction != Direction::Egress {
                continue;
            }
            let mut by_ports: BTreeMap<&[crate::ingest::ContainerPort], usize> = BTreeMap::new();
            let mut groups: BTreeMap<Vec<(Protocol, u16, u16)>, Vec<PeerRef>> = BTreeMap::new();
            let mut ranges_of: Vec<Vec<(Protocol, u16, u16)>> = Vec::new();
            for &peer in &res.peers {
                let ports = match peer {
                    PeerRef::Identity(i) => engine
                        .identities
                        .get(i as usize)
                        .map_or(&[][..], |id| engine.identity_ports(id.id)),
                    PeerRef::Cidr(_) => &[],
                };
                let k = *by_ports.entry(ports).or_insert_with(|| {
                    let dst = Party {
                        name: String::new(),
                        identity: subject.identity.clone(),
                        ports: ports.to_vec(),
                        enforced: false,
                    };
                    ranges_of.push(named_ranges(
                        e,
                        &subject,
                        engine,
                        Direction::Egress,
                        Some(&dst),
                    ));
                    ranges_of.len() - 1
                });
                if let Some(r) = ranges_of.get(k) {
                    groups.entry(r.clone()).or_default().push(peer);
                }
            }
            let groups = groups
                .into_iter()
                .map(|(r, peers)| (r, self.sets.intern(PeerSet::new(peers))))
                .collect();
            groups_of.insert(entry_key(e), groups);
        }
        for (k, g) in groups_of {
            let at = self.entries.get(&k).copied();
            if let Some(res) = at.and_then(|i| self.res.get_mut(i as usize)) {
                res.per_peer = Some(g);
            }
        }
    }

    /// The resolved policy of `subject`, selected by `rules` (which must
    /// have been prepared, then finalized).
    pub fn build<'r>(&self, subject: &Party, rules: &[&'r Rule]) -> ResolvedPolicy<'r> {
        self.build_with(subject, rules, |_, _, _| true, true)
    }

    /// [`Resolver::build`] with only the rule entries `keep` accepts (given
    /// the direction, the rule entry and its peer set before any
    /// `fromRequires` narrowing): the direction states (enforced, default
    /// deny, allow-localhost, `fromRequires`) still come from all `rules`,
    /// so a peer that every dropped entry leaves out is decided as by the
    /// full map (entries are only merged, never split, by other entries).
    pub fn build_where<'r>(
        &self,
        subject: &Party,
        rules: &[&'r Rule],
        keep: impl Fn(Direction, &Entry, &PeerSet) -> bool,
    ) -> ResolvedPolicy<'r> {
        self.build_with(subject, rules, keep, false)
    }

    /// [`Resolver::build_where`]; `keep_all`: `keep` accepts every entry,
    /// so an entry whose twin is built is counted without reading it (or
    /// only its origin): most of a map's rule entries where many
    /// clusterwide rules repeat the same entries.
    fn build_with<'r>(
        &self,
        subject: &Party,
        rules: &[&'r Rule],
        keep: impl Fn(Direction, &Entry, &PeerSet) -> bool,
        keep_all: bool,
    ) -> ResolvedPolicy<'r> {
        let engine = self.engine;
        let never = engine.inv.cluster.policy_enforcement == PolicyEnforcement::Never;
        let forced = engine.forced_default_deny(&subject.identity).is_some();
        let mut states = Vec::new();
        let mut entries: Vec<SetEntry<'r>> = Vec::new();
        // Each built entry's origins as (entry, position in the unmerged
        // order, rule entry): the position counts the entries a twin would
        // have built too (see `Resolver::twins`).
        let with_origins = !self.no_origins;
        let mut origins: Vec<(u32, u32, &'r Origin)> = Vec::new();
        let mut seq = 0u32;
        // Twin -> the entries its first kept occurrence built (when their
        // peers are interned sets: a set narrowed by `fromRequires` is new
        // per entry, and such entries are not merged).
        let mut built: FxHashMap<u32, (u32, u32)> = FxHashMap::default();
        for dir in Direction::BOTH {
            let d = dir.index();
            let active: Vec<&'r Rule> = rules
                .iter()
                .copied()
                .filter(|r| r.applies_to(dir))
                .collect();
            let host = Party {
                name: String::new(),
                identity: crate::identity::Identity::reserved("host")
                    .unwrap_or_else(|| subject.identity.clone()),
                ports: Vec::new(),
                enforced: false,
            };
            states.push(DirectionState {
                enforced: !never && (!active.is_empty() || forced),
                default_deny: !never && (forced || active.iter().any(|r| r.default_deny[d])),
                allow_localhost: !never
                    && engine.localhost_allowed(subject, dir, &host, !active.is_empty()),
                rules: if self.no_origins {
                    Vec::new()
                } else {
                    active.iter().map(|r| &*r.origin).collect()
                },
            });
            if never {
                continue;
            }
            // The `fromRequires` of the side, gathered when an entry is
            // kept: a map trimmed to a few entries (generate's
            // verification) walked every entry of every rule for them.
            let mut requires = None;
            let prepared = active.iter().flat_map(|&r| {
                self.by_rule
                    .get(&(std::ptr::from_ref::<Rule>(r) as usize))
                    .and_then(|lists| lists.get(d))
                    .into_iter()
                    .flatten()
                    .map(move |&(pos, i, twin)| (r, pos, i, twin))
            });
            for (r, pos, i, twin) in prepared {
                if let (true, Some(&(start, len))) = (keep_all, built.get(&twin)) {
                    if let (true, Some(e)) = (with_origins, r.entries.get(pos as usize)) {
                        origins.extend((0..len).map(|k| (start + k, seq + k, &*e.origin)));
                    }
                    seq += len;
                    continue;
                }
                let Some(e) = r.entries.get(pos as usize) else {
                    continue;
                };
                let Some((res, Some(set))) =
                    self.res.get(i as usize).map(|res| (res, res.set.as_ref()))
                else {
                    continue;
                };
                if !keep(dir, e, set) {
                    continue;
                }
                let (start, len) = match built.get(&twin) {
                    Some(&range) => range,
                    None => {
                        let requires = requires.get_or_insert_with(|| {
                            (
                                requirements(&active, dir, false),
                                requirements(&active, dir, true),
                            )
                        });
                        let start = entries.len();
                        self.build_entry(subject, dir, e, res, set, requires, &mut entries);
                        let made = entries.get(start..).unwrap_or(&[]);
                        let range = (index_u32(start), index_u32(made.len()));
                        let interned = |p: &Arc<PeerSet>| {
                            Arc::ptr_eq(p, set)
                                || res
                                    .per_peer
                                    .iter()
                                    .flatten()
                                    .any(|(_, g)| Arc::ptr_eq(p, g))
                        };
                        if made.iter().all(|m| interned(&m.peers)) {
                            built.insert(twin, range);
                        }
                        range
                    }
                };
                if with_origins {
                    origins.extend((0..len).map(|k| (start + k, seq + k, &*e.origin)));
                }
                seq += len;
            }
        }
        let none = || DirectionState {
            enforced: false,
            default_deny: false,
            allow_localhost: false,
            rules: vec![],
        };
        let egress = states.pop().unwrap_or_else(none);
        let ingress = states.pop().unwrap_or_else(none);
        let entries = Arc::new(merge_entries(entries, with_origins.then_some(origins)));
        ResolvedPolicy {
            subject: subject.name.clone(),
            identity: subject.identity.clone(),
            index: self.by_id.get(&subject.identity.id).map(|&i| index_u32(i)),
            ingress,
            egress,
            entries,
            names: self.names.clone(),
        }
    }

    /// The summarised entries of rule entry `e` for `subject`: one per
    /// port range, all sharing the entry's peer set (narrowed by the
    /// subject's `fromRequires`; split by port where egress named ports
    /// resolve per destination).
    #[allow(clippy::too_many_arguments)]
    fn build_entry<'r>(
        &self,
        subject: &Party,
        dir: Direction,
        e: &'r Entry,
        res: &EntryRes,
        set_in: &Arc<PeerSet>,
        requires: &(Vec<&Selector>, Vec<&Selector>),
        out: &mut Vec<SetEntry<'r>>,
    ) {
        let engine = self.engine;
        let requires = if e.deny { &requires.1 } else { &requires.0 };
        let set = if requires.is_empty() || res.endpoint_only.is_empty() {
            set_in.clone()
        } else {
            Arc::new(PeerSet::new(res.peers.iter().copied().filter(|p| {
                res.endpoint_only.binary_search(p).is_err() || self.meets(*p, requires)
            })))
        };
        if set.is_empty() {
            return;
        }
        let (tier, level, _) = e.precedence();
        let level = if tier == Tier::Normal { 0 } else { level };
        let all_protocols = e.ports.is_none();
        let mut push = |peers: &Arc<PeerSet>, (protocol, from_port, to_port)| {
            out.push(SetEntry {
                direction: dir,
                peers: peers.clone(),
                protocol,
                all_protocols,
                from_port,
                to_port,
                decision: if e.deny {
                    Decision::Denied
                } else {
                    Decision::Allowed
                },
                tier,
                level,
                pass: e.pass && !e.deny,
                proxied: if e.deny {
                    Vec::new()
                } else {
                    e.l7.iter().map(String::as_str).collect()
                },
                origins: self.empty_origins.clone(),
            });
        };
        let per_peer =
            res.ranges.is_none() && dir == Direction::Egress && engine.egress_named_per_peer();
        if let (true, true, Some(groups)) = (
            per_peer,
            Arc::ptr_eq(&set, set_in),
            res.per_peer
                .as_ref()
                .filter(|_| subject.identity.is_endpoint()),
        ) {
            for (ranges, peers) in groups {
                for &r in ranges {
                    push(peers, r);
                }
            }
            return;
        }
        if per_peer {
            // Peers with the same resolved ports share one set.
            let mut groups: BTreeMap<Vec<(Protocol, u16, u16)>, Vec<PeerRef>> = BTreeMap::new();
            for peer in set.iter() {
                let ports = match peer {
                    PeerRef::Identity(i) => engine
                        .identities
                        .get(i as usize)
                        .map(|id| engine.identity_ports(id.id).to_vec())
                        .unwrap_or_default(),
                    PeerRef::Cidr(_) => Vec::new(),
                };
                let dst = Party {
                    name: String::new(),
                    identity: subject.identity.clone(),
                    ports,
                    enforced: false,
                };
                let ranges = named_ranges(e, subject, engine, dir, Some(&dst));
                groups.entry(ranges).or_default().push(peer);
            }
            for (ranges, peers) in groups {
                let peers = Arc::new(PeerSet::new(peers));
                for r in ranges {
                    push(&peers, r);
                }
            }
            return;
        }
        let per_subject;
        let ranges = match &res.ranges {
            Some(r) => r,
            None => {
                per_subject = named_ranges(e, subject, engine, dir, None);
                &per_subject
            }
        };
        for &r in ranges {
            push(&set, r);
        }
    }
}

impl<'r> ResolvedPolicy<'r> {
    /// Names of identities and CIDR selections of the resolution.
    pub fn names(&self) -> &PeerNames {
        &self.names
    }

    pub fn state(&self, dir: Direction) -> &DirectionState<'r> {
        if dir == Direction::Ingress {
            &self.ingress
        } else {
            &self.egress
        }
    }

    /// The verdict of this side of the map for `peer` at `port`: the
    /// entries of `dir` whose peer set holds `peer` and whose range covers
    /// the port, in Cilium's order.
    pub fn lookup(
        &self,
        dir: Direction,
        peer: PeerRef,
        protocol: Protocol,
        port: u16,
    ) -> Lookup<'r> {
        let mut matching: Vec<&SetEntry<'r>> = self
            .entries
            .iter()
            .filter(|e| e.direction == dir && e.covers(protocol, port) && e.peers.contains(peer))
            .collect();
        let mut out = Lookup::default();
        (out.allowed, out.proxied, out.denied) = decide(
            self.state(dir),
            self.names.host == Some(peer_index(peer)),
            &mut matching,
            &mut out.origins,
        );
        out
    }
}

fn peer_index(p: PeerRef) -> u32 {
    match p {
        PeerRef::Identity(i) => i,
        PeerRef::Cidr(_) => u32::MAX,
    }
}

/// The verdict of one side among its `matching` entries (those holding
/// the peer and covering the port): (allowed, proxied, denied by a rule).
/// The entries at the deciding precedence are pushed to `origins`. A side
/// that is not enforced allows.
pub fn decide<'r>(
    state: &DirectionState,
    peer_is_host: bool,
    matching: &mut [&SetEntry<'r>],
    origins: &mut Vec<&'r Origin>,
) -> (bool, bool, bool) {
    decide_with(state, peer_is_host, matching, Some(origins))
}

/// [`decide`], the deciding entries' origins pushed to `origins` only
/// when given (the matrix without rules does not collect them).
pub fn decide_with<'r>(
    state: &DirectionState,
    peer_is_host: bool,
    matching: &mut [&SetEntry<'r>],
    origins: Option<&mut Vec<&'r Origin>>,
) -> (bool, bool, bool) {
    if !state.enforced {
        return (true, false, false);
    }
    let (decider, _) = first_decider(matching, |e| e.precedence());
    if let Some(d) = decider {
        let mut proxied = false;
        let mut deciding: Vec<(u32, &'r Origin)> = Vec::new();
        for e in matching.iter().filter(|e| e.precedence() == d) {
            proxied |= !e.proxied.is_empty();
            if origins.is_some() {
                deciding.extend(e.origins.iter().copied());
            }
        }
        if let Some(origins) = origins {
            // The order of the unmerged entries (rule, entry, port range),
            // each rule entry once however many of its port ranges cover
            // the port (as the trace lists it).
            deciding.sort_by_key(|&(seq, _)| seq);
            dedup_rule_entries(&mut deciding);
            origins.extend(deciding.into_iter().map(|(_, o)| o));
        }
        return if d.2 == 0 {
            (false, false, true)
        } else {
            (true, proxied, false)
        };
    }
    if state.default_deny && state.allow_localhost && peer_is_host {
        return (true, false, false);
    }
    (!state.default_deny, false, false)
}

/// Keeps one origin per rule entry in a list sorted by unmerged position:
/// the port ranges of one rule entry have consecutive positions and share
/// the entry's origin (each rule entry has its own), so they are adjacent.
pub(crate) fn dedup_rule_entries(origins: &mut Vec<(u32, &Origin)>) {
    origins.dedup_by(|a, b| std::ptr::eq(a.1, b.1));
}

/// The content of an entry that decides what it does: entries equal in
/// it differ only by origin.
type EntryContent<'r> = (Direction, usize, EntryEffect, Vec<&'r str>);

/// The content of `e` (its key among the entries of one map).
fn content<'r>(e: &SetEntry<'r>) -> EntryContent<'r> {
    (
        e.direction,
        Arc::as_ptr(&e.peers) as usize,
        e.effect(),
        e.proxied.clone(),
    )
}

/// Merges entries of identical content (the same interned peer set,
/// ports, decision, precedence and proxy) into the first of them, which
/// carries every origin numbered by its unmerged position. Where many
/// rules select an identity with the same entries (e.g. clusterwide
/// policies repeating the same DNS and API server rules), its map keeps
/// one entry instead of one per rule.
///
/// `origins`: each entry's origins as (entry, position, origin), in
/// position order (several for an entry whose twins it stands for); None
/// for maps without rules, whose entries keep the (shared, empty) origin
/// list they have.
fn merge_entries<'r>(
    mut entries: Vec<SetEntry<'r>>,
    origins: Option<Vec<(u32, u32, &'r Origin)>>,
) -> Vec<SetEntry<'r>> {
    let Some(origins) = origins else {
        return merge_entries_bare(entries);
    };
    // Merged in place: the first entry of each content is moved to the
    // front (`kept`), the others only give their origins.
    let mut at: FxHashMap<EntryContent, u32> = FxHashMap::default();
    let mut kept_as: Vec<u32> = Vec::with_capacity(entries.len());
    let mut kept = 0usize;
    for seq in 0..entries.len() {
        let Some(e) = entries.get(seq) else {
            continue;
        };
        let key = content(e);
        let k = match at.get(&key) {
            Some(&k) => k,
            None => {
                at.insert(key, index_u32(kept));
                entries.swap(kept, seq);
                kept += 1;
                index_u32(kept - 1)
            }
        };
        kept_as.push(k);
    }
    entries.truncate(kept);
    let mut lists: Vec<Vec<(u32, &Origin)>> = vec![Vec::new(); kept];
    for (slot, seq, o) in origins {
        let list = kept_as
            .get(slot as usize)
            .and_then(|&k| lists.get_mut(k as usize));
        if let Some(list) = list {
            list.push((seq, o));
        }
    }
    for (e, o) in entries.iter_mut().zip(lists) {
        e.origins = Arc::from(o);
    }
    // Maps of every identity stay alive together (matrix, diff, report):
    // no room left for the entries merged away.
    entries.shrink_to_fit();
    entries
}

/// [`merge_entries`] for entries without origins: the first entry of each
/// content is kept, the others dropped.
fn merge_entries_bare(mut entries: Vec<SetEntry<'_>>) -> Vec<SetEntry<'_>> {
    let mut seen: FxHashMap<EntryContent, ()> = FxHashMap::default();
    entries.retain(|e| seen.insert(content(e), ()).is_none());
    entries.shrink_to_fit();
    entries
}

/// Port ranges of an entry without named ports. No ports: every port of
/// every protocol (the entry's `all_protocols`, see [`SetEntry`]).
fn fixed_ranges(e: &Entry) -> Vec<(Protocol, u16, u16)> {
    let Some(ports) = &e.ports else {
        return vec![(Protocol::Any, 0, 65535)];
    };
    ports
        .iter()
        .filter_map(|pr| match &pr.port {
            PortSel::Range { from, to } => Some((pr.protocol, *from, *to)),
            PortSel::Named(_) => None,
        })
        .collect()
}

/// Port ranges of an entry with named ports, resolved for one subject.
fn named_ranges(
    e: &Entry,
    subject: &Party,
    engine: &Engine,
    dir: Direction,
    peer: Option<&Party>,
) -> Vec<(Protocol, u16, u16)> {
    let mut out = fixed_ranges(e);
    for pr in e.ports.iter().flatten() {
        if let PortSel::Named(name) = &pr.port {
            for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
                if pr.protocol.covers(proto) {
                    if let Some(p) = engine.named_port(subject, dir, name, pr.protocol, peer) {
                        out.push((proto, p, p));
                    }
                }
            }
        }
    }
    out
}

impl<'e, 'a> Resolver<'e, 'a> {
    /// A resolver with every rule of the engine prepared: any number of
    /// parties' maps can then be built from it ([`Resolver::resolve`]),
    /// each selector evaluated once for all of them.
    pub fn for_all(engine: &'e Engine<'a>) -> Resolver<'e, 'a> {
        let mut r = Resolver::new(engine);
        let all: Vec<&'a Rule> = engine.rules.iter().map(|(_, r)| *r).collect();
        r.prepare_rules(&all);
        r.finalize();
        r
    }

    /// The engine the resolver reads.
    pub fn engine(&self) -> &'e Engine<'a> {
        self.engine
    }

    /// The whole policy of one party (the resolver must hold every rule
    /// selecting it: [`Resolver::for_all`]).
    pub fn resolve(&self, subject: &Party) -> ResolvedPolicy<'a> {
        let rules: Vec<&'a Rule> = self.engine.selecting_rules(&subject.identity).collect();
        self.build(subject, &rules)
    }
}

/// Resolves the whole policy of one party.
pub fn resolve<'a>(engine: &Engine<'a>, subject: &Party) -> ResolvedPolicy<'a> {
    let rules: Vec<&Rule> = engine.selecting_rules(&subject.identity).collect();
    let mut r = Resolver::new(engine);
    r.prepare_rules(&rules);
    r.finalize();
    r.build(subject, &rules)
}

/// Resolves the policy of every endpoint identity (one representative
/// endpoint each): subjects are found through the selector cache, each
/// entry is resolved once, and identities are resolved in parallel when
/// there is enough work (see [`PARALLEL_WORK`]).
pub fn resolve_all<'a>(engine: &Engine<'a>) -> Vec<ResolvedPolicy<'a>> {
    let threads = crate::threads();
    resolve_all_with(engine, threads, &[])
}

/// [`resolve_all`] on at most `threads` threads (results in the same order).
pub fn resolve_all_threads<'a>(engine: &Engine<'a>, threads: usize) -> Vec<ResolvedPolicy<'a>> {
    resolve_all_with(engine, threads, &[])
}

/// Below this much work (rule entries summed over the subjects), one
/// thread builds every map. Measured on the synthetic clusters (2 shared
/// cores, 2026-11-30): work 5k (2k pods), 32k (5k pods) and 127k (10k
/// pods) built no faster on two threads than on one (0.049 s vs 0.055 s at
/// 5k pods); at 3.1M (50k pods with ClusterNetworkPolicies) two threads
/// saved 4%. Summarised maps made building cheap, so threads only pay off
/// on the largest inputs.
pub const PARALLEL_WORK: usize = 1_000_000;

/// [`resolve_all_threads`], followed by the maps of `extra` parties (e.g.
/// reserved identities that are local endpoints), all from one resolution
/// (so CIDR selections have the same ranks in every map).
pub fn resolve_all_with<'a>(
    engine: &Engine<'a>,
    threads: usize,
    extra: &[Party],
) -> Vec<ResolvedPolicy<'a>> {
    resolve_plan(&Plan::new(engine, extra), threads)
}

/// What an endpoint's map follows from besides the name, identity and
/// index it records (see [`Plan::same_maps`]): the rules selecting it (by
/// address) and its container ports. `None` for reserved identities and
/// other parties, whose maps are built each.
pub type SameMapKey = (Vec<usize>, String);

/// Whether `p`'s map can be shared with other subjects' (has a
/// [`SameMapKey`]): an endpoint identity, not a reserved one.
pub fn shares_maps(p: &Party) -> bool {
    p.identity.is_endpoint() && p.identity.reserved_name().is_none()
}

/// The [`SameMapKey`] of `p`, selected by `rules`.
pub fn map_key<'r>(p: &Party, rules: impl IntoIterator<Item = &'r Rule>) -> Option<SameMapKey> {
    if !shares_maps(p) {
        return None;
    }
    let rules = rules
        .into_iter()
        .map(|r| std::ptr::from_ref::<Rule>(r) as usize)
        .collect();
    Some((rules, format!("{:?}", p.ports)))
}

/// Every map of `plan` (see [`resolve_all_with`]). Endpoints selected by
/// the same rules with the same container ports have the same map but for
/// its subject (see [`Plan::same_maps`]): the first is built, the others
/// copy it (100k synthetic pods: 4,664 maps built for 10,000 identities).
pub fn resolve_plan<'a>(plan: &Plan<'_, 'a>, threads: usize) -> Vec<ResolvedPolicy<'a>> {
    let like = plan.same_maps();
    let mut maps = plan.map_all(
        threads,
        || (),
        |(), pi| match like.get(pi) {
            Some(Some(_)) => None,
            _ => plan.build(pi),
        },
    );
    for (pi, first) in like.iter().enumerate() {
        let copy = first
            .and_then(|f| maps.get(f)?.as_ref())
            .and_then(|m| plan.copy_for(m, pi));
        if let (Some(copy), Some(slot)) = (copy, maps.get_mut(pi)) {
            *slot = Some(copy);
        }
    }
    maps.into_iter().flatten().collect()
}

/// The maps [`resolve_all_with`] builds, before building them: the
/// subjects (one representative endpoint per identity, then the `extra`
/// parties), each with its selecting rules, and the one resolution they are
/// built from. `verdict diff` builds them one at a time, or trimmed.
pub struct Plan<'e, 'a> {
    resolver: Resolver<'e, 'a>,
    subjects: Vec<(Party, Vec<&'a Rule>)>,
    /// Rule entries summed over the endpoint subjects ([`PARALLEL_WORK`]).
    work: usize,
    /// [`Plan::same_maps`], found once when first asked.
    same: std::sync::OnceLock<Vec<Option<usize>>>,
}

impl<'e, 'a> Plan<'e, 'a> {
    pub fn new(engine: &'e Engine<'a>, extra: &[Party]) -> Plan<'e, 'a> {
        let mut resolver = Resolver::new(engine);
        let mut by_identity: Vec<Vec<&Rule>> = vec![Vec::new(); engine.identities.len()];
        let all_rules: Vec<&Rule> = engine.rules.iter().map(|(_, r)| *r).collect();
        // Every selector of the rules (subjects and peers), selected on
        // the machine's threads before the serial walks below read them.
        let subjects = all_rules.iter().filter_map(|r| r.endpoint_selector());
        resolver
            .cache
            .warm(subjects.chain(peer_selectors(&all_rules)), crate::threads());
        for r in &all_rules {
            if let crate::policy::Subject::Endpoints(sel) = &r.subject {
                for &i in resolver.cache.select(sel) {
                    let is_host = engine
                        .identities
                        .get(i as usize)
                        .and_then(Identity::reserved_name)
                        == Some("host");
                    if let (false, Some(v)) = (is_host, by_identity.get_mut(i as usize)) {
                        v.push(*r);
                    }
                }
            }
        }
        resolver.prepare_rules(&all_rules);
        resolver.finalize();
        let mut seen = vec![false; engine.identities.len()];
        let mut subjects: Vec<(Party, Vec<&Rule>)> = Vec::new();
        for ep in engine.endpoints.iter().flatten() {
            if seen.get(ep.identity).copied().unwrap_or(true) {
                continue;
            }
            if let Some(s) = seen.get_mut(ep.identity) {
                *s = true;
            }
            let (Some(w), Some(id), Some(rules)) = (
                engine.inv.workloads.get(ep.workload),
                engine.identities.get(ep.identity),
                by_identity.get_mut(ep.identity),
            ) else {
                continue;
            };
            let party = Party {
                name: w.display_name(),
                identity: id.clone(),
                ports: w.ports.clone(),
                enforced: true,
            };
            subjects.push((party, std::mem::take(rules)));
        }
        let work: usize = subjects
            .iter()
            .map(|(_, rules)| rules.iter().map(|r| r.entries.len()).sum::<usize>())
            .sum();
        for p in extra {
            let rules: Vec<&Rule> = engine.selecting_rules(&p.identity).collect();
            subjects.push((p.clone(), rules));
        }
        Plan {
            resolver,
            subjects,
            work,
            same: std::sync::OnceLock::new(),
        }
    }

    /// Maps without rules: their entries carry no origins and their
    /// direction states no rule lists, so nothing built from them can
    /// name a rule (the matrix forms that show none). On the synthetic
    /// 100k-pod cluster an identity is selected by ~400 rules: their
    /// origins were a third of the maps' memory.
    pub fn without_rules(mut self) -> Self {
        self.set_rules(false);
        self
    }

    /// Whether the maps built from now on carry their rules (see
    /// [`Plan::without_rules`]).
    pub fn set_rules(&mut self, rules: bool) {
        self.resolver.no_origins = !rules;
    }

    /// How many maps (subjects).
    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// The names every map carries (`None` without subjects, as a slice
    /// of no maps has none).
    pub fn names(&self) -> Option<&PeerNames> {
        (!self.subjects.is_empty()).then_some(&*self.resolver.names)
    }

    /// The subject of map `pi` and the rules selecting it.
    pub fn subject(&self, pi: usize) -> Option<(&Party, &[&'a Rule])> {
        self.subjects.get(pi).map(|(p, r)| (p, r.as_slice()))
    }

    /// The resolver the maps are built with (any other party's map can be
    /// built from it: [`Resolver::resolve`]).
    pub fn resolver(&self) -> &Resolver<'e, 'a> {
        &self.resolver
    }

    /// The identity index of map `pi` ([`ResolvedPolicy::index`]).
    pub fn index(&self, pi: usize) -> Option<u32> {
        let (p, _) = self.subjects.get(pi)?;
        self.resolver
            .by_id
            .get(&p.identity.id)
            .map(|&i| index_u32(i))
    }

    /// Map `pi` (see [`Resolver::build`]).
    pub fn build(&self, pi: usize) -> Option<ResolvedPolicy<'a>> {
        let (p, rules) = self.subjects.get(pi)?;
        Some(self.resolver.build(p, rules))
    }

    /// For each map, the earlier map it equals but for its subject, if
    /// any. A map is built from the rules selecting its subject; of the
    /// subject it reads only the name, identity and index it records, its
    /// container ports (ingress named ports), and what follows from its
    /// identity's kind and reserved name (enforcement, `allow-localhost`,
    /// egress named ports), the same for every endpoint. So endpoints
    /// with the same rules and ports share a map; reserved identities and
    /// other parties are built each. `maps_agree_with_flows` (conformance
    /// tests) compares every copied map with the subject's own.
    pub fn same_maps(&self) -> &[Option<usize>] {
        self.same.get_or_init(|| {
            let mut first: FxHashMap<SameMapKey, usize> = FxHashMap::default();
            self.subjects
                .iter()
                .enumerate()
                .map(|(pi, (p, rules))| {
                    let key = map_key(p, rules.iter().copied())?;
                    match first.get(&key) {
                        Some(&f) => Some(f),
                        None => {
                            first.insert(key, pi);
                            None
                        }
                    }
                })
                .collect()
        })
    }

    /// `m` (the map of a subject with the same [`map_key`]) as the map
    /// of subject `pi`.
    fn copy_for(&self, m: &ResolvedPolicy<'a>, pi: usize) -> Option<ResolvedPolicy<'a>> {
        let (p, _) = self.subjects.get(pi)?;
        let mut copy = m.clone();
        copy.subject.clone_from(&p.name);
        copy.identity = p.identity.clone();
        copy.index = self
            .resolver
            .by_id
            .get(&p.identity.id)
            .map(|&i| index_u32(i));
        Some(copy)
    }

    /// Map `pi` with the rule entries `keep` accepts (see
    /// [`Resolver::build_where`]).
    pub fn build_where(
        &self,
        pi: usize,
        keep: impl Fn(Direction, &Entry, &PeerSet) -> bool,
    ) -> Option<ResolvedPolicy<'a>> {
        let (p, rules) = self.subjects.get(pi)?;
        Some(self.resolver.build_where(p, rules, keep))
    }

    /// `f(state, pi)` for every map index, in order, on up to `threads`
    /// threads when there is enough work (one `init()` state per thread).
    pub fn map_all<S, T: Send>(
        &self,
        threads: usize,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, usize) -> T + Sync,
    ) -> Vec<T> {
        let threads = if self.work < PARALLEL_WORK {
            1
        } else {
            threads.clamp(1, 64)
        };
        let all: Vec<usize> = (0..self.subjects.len()).collect();
        if threads == 1 {
            let mut st = init();
            return all.into_iter().map(|pi| f(&mut st, pi)).collect();
        }
        let chunk = all.len().div_ceil(threads).max(1);
        let (init, f) = (&init, &f);
        std::thread::scope(|scope| {
            let handles: Vec<_> = all
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let mut st = init();
                        part.iter().map(|&pi| f(&mut st, pi)).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }
}

#[cfg(test)]
mod warm_tests {
    use super::*;
    use crate::synth::{load_shaped, Shape, SynthSpec};

    /// Selectors selected ahead on several threads (duplicates, ones
    /// already cached) select what one selection at a time selects.
    #[test]
    fn warmed_selections_equal_selections_one_by_one() {
        let spec = SynthSpec {
            pods: 3000,
            policies: 300,
            seed: 7,
        };
        let inv = load_shaped(&spec, Shape::Dense);
        let engine = Engine::new(&inv);
        let rules: Vec<&Rule> = engine.rules.iter().map(|(_, r)| *r).collect();
        let sels: Vec<&Selector> = peer_selectors(&rules).collect();
        let distinct: rustc_hash::FxHashSet<&Selector> = sels.iter().copied().collect();
        assert!(distinct.len() > 100, "{} selectors", distinct.len());
        let mut one = SelectorCache::new(&engine.identities);
        let expected: Vec<Vec<u32>> = sels.iter().map(|s| one.select(s).to_vec()).collect();
        assert!(expected.iter().any(|ids| ids.len() > 1));
        for threads in [1, 2, 3] {
            let mut warmed = SelectorCache::new(&engine.identities);
            warmed.select(sels[0]);
            warmed.warm_from(sels.iter().copied(), threads, 100);
            assert_eq!(warmed.cache.len(), distinct.len());
            let got: Vec<Vec<u32>> = sels.iter().map(|s| warmed.select(s).to_vec()).collect();
            assert_eq!(got, expected, "{threads} threads");
        }
    }
}

#[cfg(test)]
#[path = "resolved_twins_tests.rs"]
mod twin_tests;
