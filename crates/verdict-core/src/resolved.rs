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
use crate::policy::{Direction, Entry, Origin, PeerKind, PortSel, Protocol, Rule, Tier};
use crate::selector::Selector;
use crate::settings::PolicyEnforcement;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A peer in a resolved map: a known identity, or a CIDR selection whose
/// identities are created on demand.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum PeerKey {
    Identity { id: u32, name: std::sync::Arc<str> },
    Cidr { cidr: String },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MapKey {
    pub direction: Direction,
    pub peer: PeerKey,
    pub protocol: Protocol,
    pub from_port: u16,
    pub to_port: u16,
}

#[derive(Debug, Clone, Serialize)]
pub struct MapValue<'r> {
    /// `allowed` for an Accept or a Pass, `denied` for a Deny.
    pub decision: Decision,
    /// The tier of the rules (ClusterNetworkPolicy Admin or Baseline).
    #[serde(skip_serializing_if = "is_normal_tier")]
    pub tier: Tier,
    /// Order inside the tier (priority * 100 + rule index), lower first.
    #[serde(skip_serializing_if = "is_zero")]
    pub level: u32,
    /// A ClusterNetworkPolicy `Pass`: the next tier decides.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pass: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxied: Vec<&'r str>,
    pub origins: Vec<&'r Origin>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResolvedPolicy<'r> {
    pub subject: String,
    pub identity: Identity,
    /// Per direction: whether policy is enforced and default deny is on.
    pub ingress: DirectionState<'r>,
    pub egress: DirectionState<'r>,
    pub entries: Vec<(MapKey, MapValue<'r>)>,
}

fn is_normal_tier(t: &Tier) -> bool {
    *t == Tier::Normal
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
    index: HashMap<(&'e str, &'e str), Vec<u32>>,
    cache: HashMap<Selector, Vec<u32>>,
}

impl<'e> SelectorCache<'e> {
    pub fn new(identities: &'e [Identity]) -> SelectorCache<'e> {
        let mut index: HashMap<(&str, &str), Vec<u32>> = HashMap::new();
        for (i, id) in identities.iter().enumerate() {
            for l in id.labels.iter() {
                index
                    .entry((l.key.as_str(), l.value.as_str()))
                    .or_default()
                    .push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
        SelectorCache {
            identities,
            index,
            cache: HashMap::new(),
        }
    }

    /// Indices (into the engine's identities) selected by `sel`.
    pub fn select(&mut self, sel: &Selector) -> &[u32] {
        if !self.cache.contains_key(sel) {
            let candidates: Option<&Vec<u32>> = sel
                .equalities()
                .filter_map(|(_, k, v)| self.index.get(&(k, v)).or(Some(&EMPTY)))
                .min_by_key(|c| c.len());
            let ids = self.identities;
            let result: Vec<u32> = match candidates {
                Some(c) => c
                    .iter()
                    .copied()
                    .filter(|&i| {
                        ids.get(i as usize)
                            .is_some_and(|id| sel.matches(&id.labels))
                    })
                    .collect(),
                None => (0..ids.len())
                    .filter(|&i| sel.matches(&ids[i].labels))
                    .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                    .collect(),
            };
            self.cache.insert(sel.clone(), result);
        }
        self.cache.get(sel).map(Vec::as_slice).unwrap_or(&[])
    }
}

static EMPTY: Vec<u32> = Vec::new();

/// A peer while accumulating: an identity's number, or the rank of a CIDR
/// selection's text. Both orders equal the order of [`PeerKey`], so maps come
/// out sorted as users see them (after [`Resolver::finalize`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pk {
    Id(u32),
    Cidr(u32),
}

/// An entry resolved once, for every subject it applies to: its peers and,
/// unless it names ports (resolved per subject), its port ranges.
struct EntryRes {
    peers: Vec<Pk>,
    /// Peers selected only through `fromEndpoints`/`toEndpoints` (which
    /// `fromRequires`/`toRequires` narrow further).
    endpoint_only: Vec<Pk>,
    ranges: Option<Vec<(Protocol, u16, u16)>>,
}

/// Resolution state shared by every subject: the selector cache, each
/// entry's resolved peers, the names of identities and CIDR selections.
/// Once entries are prepared, building a subject's map only reads it, so
/// subjects can be resolved in parallel.
pub struct Resolver<'e, 'a> {
    engine: &'e Engine<'a>,
    cache: SelectorCache<'e>,
    entries: HashMap<usize, EntryRes>,
    cidrs: Vec<String>,
    cidr_ids: HashMap<String, u32>,
    names: Vec<std::sync::Arc<str>>,
    reserved: Vec<u32>,
    /// Identity number -> index into the engine's identities.
    by_id: HashMap<u32, usize>,
}

/// The identity of an entry: its address (entries live as long as the
/// inventory and are never moved while resolving).
fn entry_key(e: &Entry) -> usize {
    std::ptr::from_ref(e) as usize
}

impl<'e, 'a> Resolver<'e, 'a> {
    pub fn new(engine: &'e Engine<'a>) -> Resolver<'e, 'a> {
        let reserved = engine
            .identities
            .iter()
            .enumerate()
            .filter(|(_, id)| id.reserved_name().is_some())
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        Resolver {
            engine,
            cache: SelectorCache::new(&engine.identities),
            entries: HashMap::new(),
            cidrs: Vec::new(),
            cidr_ids: HashMap::new(),
            names: engine
                .identities
                .iter()
                .map(|id| std::sync::Arc::from(id.to_string()))
                .collect(),
            reserved,
            by_id: engine
                .identities
                .iter()
                .enumerate()
                .map(|(i, id)| (id.id, i))
                .collect(),
        }
    }

    fn prepare(&mut self, e: &Entry) {
        let key = entry_key(e);
        if self.entries.contains_key(&key) {
            return;
        }
        let mut peers: Vec<Pk> = Vec::new();
        let mut from_endpoints: Vec<Pk> = Vec::new();
        for p in &e.peers {
            match &p.kind {
                PeerKind::Selectors { selectors } => {
                    let ids = &self.engine.identities;
                    let out = if p.from_endpoints {
                        &mut from_endpoints
                    } else {
                        &mut peers
                    };
                    for s in selectors {
                        out.extend(
                            self.cache
                                .select(s)
                                .iter()
                                .filter_map(|&i| ids.get(i as usize))
                                .map(|id| Pk::Id(id.id)),
                        );
                    }
                }
                PeerKind::Cidr { cidr, except } => {
                    let mut text = cidr.to_string();
                    for x in except {
                        text.push_str(&format!(" except {x}"));
                    }
                    let next = u32::try_from(self.cidrs.len()).unwrap_or(u32::MAX);
                    let id = *self.cidr_ids.entry(text.clone()).or_insert(next);
                    if id == next {
                        self.cidrs.push(text);
                    }
                    peers.push(Pk::Cidr(id));
                    let engine = self.engine;
                    for &i in &self.reserved {
                        if let Some(id) = engine.identities.get(i as usize) {
                            if cidr_peer_matches(cidr, except, id, engine.inv.cluster.dual_stack) {
                                peers.push(Pk::Id(id.id));
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
        let endpoint_only: Vec<Pk> = from_endpoints
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
        self.entries.insert(
            key,
            EntryRes {
                peers,
                endpoint_only,
                ranges,
            },
        );
    }

    /// Prepares every entry of `rules`.
    pub fn prepare_rules(&mut self, rules: &[&Rule]) {
        for r in rules {
            for e in &r.entries {
                self.prepare(e);
            }
        }
    }

    /// Whether peer `p` meets every requirement (`fromRequires`).
    fn meets(&self, p: Pk, requires: &[&Selector]) -> bool {
        let Pk::Id(id) = p else { return true };
        self.by_id
            .get(&id)
            .and_then(|&i| self.engine.identities.get(i))
            .is_some_and(|ident| requires.iter().all(|r| r.matches(&ident.labels)))
    }

    /// Renumbers CIDR selections in the order of their text, so that maps
    /// built afterwards are sorted by [`MapKey`]. Call after preparing.
    pub fn finalize(&mut self) {
        let mut order: Vec<u32> =
            (0..u32::try_from(self.cidrs.len()).unwrap_or(u32::MAX)).collect();
        order.sort_by(|a, b| {
            self.cidrs
                .get(*a as usize)
                .cmp(&self.cidrs.get(*b as usize))
        });
        let mut rank = vec![0u32; order.len()];
        for (r, &old) in order.iter().enumerate() {
            if let Some(slot) = rank.get_mut(old as usize) {
                *slot = u32::try_from(r).unwrap_or(u32::MAX);
            }
        }
        let mut sorted: Vec<String> = order
            .iter()
            .filter_map(|&o| self.cidrs.get(o as usize).cloned())
            .collect();
        std::mem::swap(&mut self.cidrs, &mut sorted);
        for text_rank in self.cidr_ids.values_mut() {
            *text_rank = rank.get(*text_rank as usize).copied().unwrap_or(*text_rank);
        }
        for res in self.entries.values_mut() {
            for p in &mut res.peers {
                if let Pk::Cidr(c) = p {
                    *c = rank.get(*c as usize).copied().unwrap_or(*c);
                }
            }
            res.peers.sort();
        }
    }

    /// The resolved policy of `subject`, selected by `rules` (which must
    /// have been prepared, then finalized).
    pub fn build<'r>(&self, subject: &Party, rules: &[&'r Rule]) -> ResolvedPolicy<'r> {
        let engine = self.engine;
        type Key = (Direction, Pk, Protocol, u16, u16, (Tier, u32, u8));
        let mut map: BTreeMap<Key, Acc> = BTreeMap::new();
        let never = engine.inv.cluster.policy_enforcement == PolicyEnforcement::Never;
        let forced = engine.forced_default_deny(&subject.identity).is_some();
        let mut states = Vec::new();
        let requires: Vec<(Vec<&Selector>, Vec<&Selector>)> = Direction::BOTH
            .iter()
            .map(|&dir| {
                let active: Vec<&Rule> = rules
                    .iter()
                    .copied()
                    .filter(|r| r.applies_to(dir))
                    .collect();
                (
                    requirements(&active, dir, false),
                    requirements(&active, dir, true),
                )
            })
            .collect();
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
                rules: active.iter().map(|r| &*r.origin).collect(),
            });
            if never {
                continue;
            }
            for e in active
                .iter()
                .flat_map(|r| r.entries.iter().filter(|e| e.direction == dir))
            {
                let Some(res) = self.entries.get(&entry_key(e)) else {
                    continue;
                };
                let requires = if e.deny {
                    &requires[dir.index()].1
                } else {
                    &requires[dir.index()].0
                };
                let narrowed: Vec<Pk>;
                let entry_peers = if requires.is_empty() || res.endpoint_only.is_empty() {
                    &res.peers
                } else {
                    narrowed = res
                        .peers
                        .iter()
                        .copied()
                        .filter(|p| {
                            res.endpoint_only.binary_search(p).is_err() || self.meets(*p, requires)
                        })
                        .collect();
                    &narrowed
                };
                let per_subject;
                let per_peer = res.ranges.is_none()
                    && dir == Direction::Egress
                    && engine.egress_named_per_peer();
                let ranges = match &res.ranges {
                    Some(r) => r,
                    None if per_peer => &Vec::new(),
                    None => {
                        per_subject = named_ranges(e, subject, engine, dir, None);
                        &per_subject
                    }
                };
                let mut pairs: Vec<(Pk, (Protocol, u16, u16))> = Vec::new();
                if per_peer {
                    for &peer in entry_peers {
                        let ports = match peer {
                            Pk::Id(id) => engine.identity_ports(id).to_vec(),
                            Pk::Cidr(_) => Vec::new(),
                        };
                        let dst = Party {
                            name: String::new(),
                            identity: subject.identity.clone(),
                            ports,
                            enforced: false,
                        };
                        for r in named_ranges(e, subject, engine, dir, Some(&dst)) {
                            pairs.push((peer, r));
                        }
                    }
                } else {
                    for &r in ranges {
                        for &peer in entry_peers {
                            pairs.push((peer, r));
                        }
                    }
                }
                for (peer, (protocol, from_port, to_port)) in pairs {
                    {
                        // Ordinary entries share one level (deny over
                        // allow); tiered entries keep their own.
                        let (tier, level, action) = e.precedence();
                        let at = if tier == Tier::Normal {
                            (tier, 0, 0)
                        } else {
                            (tier, level, action)
                        };
                        let v = map
                            .entry((dir, peer, protocol, from_port, to_port, at))
                            .or_insert_with(|| Acc {
                                decision: Decision::Allowed,
                                proxied: Vec::new(),
                                origins: Vec::new(),
                            });
                        if e.deny {
                            v.decision = Decision::Denied;
                            v.proxied.clear();
                        } else if v.decision == Decision::Allowed {
                            for k in &e.l7 {
                                if !v.proxied.contains(&k.as_str()) {
                                    v.proxied.push(k);
                                }
                            }
                        }
                        v.origins.push(&*e.origin);
                    }
                }
            }
        }
        let entries: Vec<(MapKey, MapValue)> = map
            .into_iter()
            .map(|((direction, pk, protocol, from_port, to_port, at), acc)| {
                let peer = match pk {
                    Pk::Id(id) => PeerKey::Identity {
                        id,
                        name: self
                            .by_id
                            .get(&id)
                            .and_then(|&i| self.names.get(i))
                            .cloned()
                            .unwrap_or_else(|| std::sync::Arc::from("")),
                    },
                    Pk::Cidr(i) => PeerKey::Cidr {
                        cidr: self.cidrs.get(i as usize).cloned().unwrap_or_default(),
                    },
                };
                (
                    MapKey {
                        direction,
                        peer,
                        protocol,
                        from_port,
                        to_port,
                    },
                    MapValue {
                        decision: acc.decision,
                        proxied: acc.proxied,
                        origins: acc.origins,
                        tier: at.0,
                        level: at.1,
                        pass: at.0 != Tier::Normal && at.2 == 2,
                    },
                )
            })
            .collect();

        let none = || DirectionState {
            enforced: false,
            default_deny: false,
            allow_localhost: false,
            rules: vec![],
        };
        let egress = states.pop().unwrap_or_else(none);
        let ingress = states.pop().unwrap_or_else(none);
        ResolvedPolicy {
            subject: subject.name.clone(),
            identity: subject.identity.clone(),
            ingress,
            egress,
            entries,
        }
    }
}

struct Acc<'r> {
    decision: Decision,
    proxied: Vec<&'r str>,
    origins: Vec<&'r Origin>,
}

/// Port ranges of an entry without named ports.
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
/// entry is resolved once, and identities are resolved in parallel on every
/// available core.
pub fn resolve_all<'a>(engine: &Engine<'a>) -> Vec<ResolvedPolicy<'a>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    resolve_all_threads(engine, threads)
}

/// [`resolve_all`] on at most `threads` threads (results in the same order).
pub fn resolve_all_threads<'a>(engine: &Engine<'a>, threads: usize) -> Vec<ResolvedPolicy<'a>> {
    let mut resolver = Resolver::new(engine);
    let mut by_identity: Vec<Vec<&Rule>> = vec![Vec::new(); engine.identities.len()];
    let all_rules: Vec<&Rule> = engine.rules.iter().map(|(_, r)| *r).collect();
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
    let mut subjects: Vec<(Party, &Vec<&Rule>)> = Vec::new();
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
            by_identity.get(ep.identity),
        ) else {
            continue;
        };
        let party = Party {
            name: format!("{}/{}", w.namespace, w.object.name),
            identity: id.clone(),
            ports: w.ports.clone(),
            enforced: true,
        };
        subjects.push((party, rules));
    }
    let threads = threads.clamp(1, 64);
    let chunk = subjects.len().div_ceil(threads).max(1);
    let resolver = &resolver;
    std::thread::scope(|scope| {
        let handles: Vec<_> = subjects
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(p, rules)| resolver.build(p, rules))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

impl ResolvedPolicy<'_> {
    /// One line per entry; each line escaped as a whole (names and labels
    /// cannot add lines or escape sequences).
    pub fn to_text(&self) -> String {
        use crate::text::push_line;
        let mut out = String::new();
        push_line(&mut out, &self.subject);
        push_line(&mut out, &format!("  identity {}", self.identity));
        for (dir, st) in [
            (Direction::Ingress, &self.ingress),
            (Direction::Egress, &self.egress),
        ] {
            let mode = match (st.enforced, st.default_deny) {
                (false, _) => "not enforced (no policy selects it): everything allowed".to_string(),
                (true, true) => "enforced, default deny".to_string(),
                (true, false) => "enforced, no default deny (enableDefaultDeny: false): unmatched traffic allowed".to_string(),
            };
            push_line(&mut out, &format!("  {dir}: {mode}"));
            for r in &st.rules {
                push_line(&mut out, &format!("    selected by {r}"));
            }
            for (k, v) in self.entries.iter().filter(|(k, _)| k.direction == dir) {
                let peer = match &k.peer {
                    PeerKey::Identity { name, .. } => name.to_string(),
                    PeerKey::Cidr { cidr } => format!("cidr {cidr}"),
                };
                let port = crate::policy::port_text(k.from_port, k.to_port);
                let proxy = if v.proxied.is_empty() {
                    String::new()
                } else {
                    format!(" proxy:{}", v.proxied.join(","))
                };
                let from: Vec<String> = v
                    .origins
                    .iter()
                    .map(|o| format!("{} {}", o.policy.short(), o.location))
                    .collect();
                push_line(
                    &mut out,
                    &format!(
                        "    {:<7} {}/{:<11} {}{}  [{}]",
                        v.decision.to_string(),
                        k.protocol,
                        port,
                        peer,
                        proxy,
                        from.join("; ")
                    ),
                );
            }
        }
        out
    }
}
