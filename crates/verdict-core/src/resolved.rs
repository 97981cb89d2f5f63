//! Resolved policy per identity, like the agent's per-endpoint policy map:
//! (direction, peer identity, protocol, port range) -> allow/deny, proxy
//! redirect, and the rules it came from.
//!
//! Peers are resolved through a selector cache: each distinct selector is
//! evaluated once against the known identities, using an index from
//! `key=value` labels to identities so that a selector with an equality
//! requirement only looks at the identities carrying that label.

use crate::engine::{cidr_peer_matches, Decision, Engine, Party};
use crate::identity::Identity;
use crate::policy::{Direction, Entry, Origin, PeerKind, PortSel, Protocol, Rule};
use crate::selector::Selector;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A peer in a resolved map: a known identity, or a CIDR selection whose
/// identities are created on demand.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum PeerKey {
    Identity { id: u32, name: String },
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
pub struct MapValue {
    pub decision: Decision,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxied: Vec<String>,
    pub origins: Vec<std::sync::Arc<Origin>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResolvedPolicy {
    pub subject: String,
    pub identity: Identity,
    /// Per direction: whether policy is enforced and default deny is on.
    pub ingress: DirectionState,
    pub egress: DirectionState,
    pub entries: Vec<(MapKey, MapValue)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DirectionState {
    pub enforced: bool,
    pub default_deny: bool,
    pub rules: Vec<Origin>,
}

/// Caches the identities each selector selects.
pub struct SelectorCache<'e> {
    identities: &'e [Identity],
    /// (key, value) -> identities carrying such a label (any source).
    index: HashMap<(&'e str, &'e str), Vec<u32>>,
    cache: HashMap<Selector, Vec<u32>>,
    names: Vec<Option<String>>,
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
            names: vec![None; identities.len()],
        }
    }

    /// The display name of identity `i`, formatted once.
    fn name(&mut self, i: usize) -> String {
        match self.names.get_mut(i) {
            Some(slot) => slot
                .get_or_insert_with(|| {
                    self.identities
                        .get(i)
                        .map(ToString::to_string)
                        .unwrap_or_default()
                })
                .clone(),
            None => String::new(),
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

fn ranges(
    e: &Entry,
    subject: &Party,
    engine: &Engine,
    dir: Direction,
) -> Vec<(Protocol, u16, u16)> {
    let Some(ports) = &e.ports else {
        return vec![(Protocol::Any, 0, 65535)];
    };
    let mut out = Vec::new();
    for pr in ports {
        match &pr.port {
            PortSel::Range { from, to } => out.push((pr.protocol, *from, *to)),
            PortSel::Named(name) => {
                for proto in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
                    if !pr.protocol.covers(proto) {
                        continue;
                    }
                    if let Some(p) = engine.named_port(subject, dir, name, proto) {
                        out.push((proto, p, p));
                    }
                }
            }
        }
    }
    out
}

/// Resolves the whole policy of one party.
pub fn resolve(engine: &Engine, cache: &mut SelectorCache, subject: &Party) -> ResolvedPolicy {
    let rules: Vec<&Rule> = engine.selecting_rules(&subject.identity).collect();
    resolve_with(engine, cache, subject, &rules)
}

/// Resolves the policy of every endpoint identity (one representative
/// endpoint each), selecting subjects through the selector cache.
pub fn resolve_all(engine: &Engine) -> Vec<ResolvedPolicy> {
    let mut cache = SelectorCache::new(&engine.identities);
    let mut by_identity: Vec<Vec<&Rule>> = vec![Vec::new(); engine.identities.len()];
    for (_, r) in &engine.rules {
        if let crate::policy::Subject::Endpoints(sel) = &r.subject {
            for &i in cache.select(sel) {
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
    let mut seen = vec![false; engine.identities.len()];
    let mut out = Vec::new();
    for ep in engine.endpoints.iter().flatten() {
        if std::mem::replace(&mut seen[ep.identity], true) {
            continue;
        }
        let (Some(w), Some(id)) = (
            engine.inv.workloads.get(ep.workload),
            engine.identities.get(ep.identity),
        ) else {
            continue;
        };
        let party = Party {
            name: format!("{}/{}", w.namespace, w.object.name),
            identity: id.clone(),
            ports: w.ports.clone(),
            enforced: true,
        };
        let rules = by_identity.get(ep.identity).cloned().unwrap_or_default();
        out.push(resolve_with(engine, &mut cache, &party, &rules));
    }
    out
}

/// A peer while accumulating: an identity index or a CIDR text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pk {
    Id(u32),
    Cidr(String),
}

struct Acc<'r> {
    decision: Decision,
    proxied: Vec<&'r str>,
    origins: Vec<&'r std::sync::Arc<Origin>>,
}

fn resolve_with(
    engine: &Engine,
    cache: &mut SelectorCache,
    subject: &Party,
    rules: &[&Rule],
) -> ResolvedPolicy {
    let mut map: BTreeMap<(Direction, Pk, Protocol, u16, u16), Acc> = BTreeMap::new();
    let mut states = Vec::new();
    let reserved: Vec<u32> = engine
        .identities
        .iter()
        .enumerate()
        .filter(|(_, id)| id.reserved_name().is_some())
        .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
        .collect();
    let mut peers: Vec<Pk> = Vec::new();
    for dir in Direction::BOTH {
        let d = dir.index();
        let active: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| r.applies_to(dir))
            .collect();
        states.push(DirectionState {
            enforced: !active.is_empty(),
            default_deny: active.iter().any(|r| r.default_deny[d]),
            rules: active.iter().map(|r| r.origin.clone()).collect(),
        });
        for e in active
            .iter()
            .flat_map(|r| r.entries.iter().filter(|e| e.direction == dir))
        {
            peers.clear();
            for p in &e.peers {
                match &p.kind {
                    PeerKind::Selectors { selectors } => {
                        for s in selectors {
                            peers.extend(cache.select(s).iter().map(|&i| Pk::Id(i)));
                        }
                    }
                    PeerKind::Cidr { cidr, except } => {
                        let mut text = cidr.to_string();
                        for x in except {
                            text.push_str(&format!(" except {x}"));
                        }
                        peers.push(Pk::Cidr(text));
                        for &i in &reserved {
                            if engine.identities.get(i as usize).is_some_and(|id| {
                                cidr_peer_matches(cidr, except, id, engine.inv.cluster.dual_stack)
                            }) {
                                peers.push(Pk::Id(i));
                            }
                        }
                    }
                    PeerKind::Unevaluable { .. } => {}
                }
            }
            peers.sort();
            peers.dedup();
            for (protocol, from_port, to_port) in ranges(e, subject, engine, dir) {
                for peer in &peers {
                    let v = map
                        .entry((dir, peer.clone(), protocol, from_port, to_port))
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
                    v.origins.push(&e.origin);
                }
            }
        }
    }
    let entries = map
        .into_iter()
        .map(|((direction, pk, protocol, from_port, to_port), acc)| {
            let peer = match pk {
                Pk::Id(i) => PeerKey::Identity {
                    id: engine.identities.get(i as usize).map_or(0, |id| id.id),
                    name: cache.name(i as usize),
                },
                Pk::Cidr(cidr) => PeerKey::Cidr { cidr },
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
                    proxied: acc.proxied.into_iter().map(str::to_string).collect(),
                    origins: acc.origins.into_iter().cloned().collect(),
                },
            )
        })
        .collect();
    let egress = states.pop().unwrap_or(DirectionState {
        enforced: false,
        default_deny: false,
        rules: vec![],
    });
    let ingress = states.pop().unwrap_or(DirectionState {
        enforced: false,
        default_deny: false,
        rules: vec![],
    });
    ResolvedPolicy {
        subject: subject.name.clone(),
        identity: subject.identity.clone(),
        ingress,
        egress,
        entries,
    }
}

impl ResolvedPolicy {
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n  identity {}\n", self.subject, self.identity);
        for (dir, st) in [
            (Direction::Ingress, &self.ingress),
            (Direction::Egress, &self.egress),
        ] {
            let mode = match (st.enforced, st.default_deny) {
                (false, _) => "not enforced (no policy selects it): everything allowed".to_string(),
                (true, true) => "enforced, default deny".to_string(),
                (true, false) => "enforced, no default deny (enableDefaultDeny: false): unmatched traffic allowed".to_string(),
            };
            out.push_str(&format!("  {dir}: {mode}\n"));
            for r in &st.rules {
                out.push_str(&format!("    selected by {r}\n"));
            }
            for (k, v) in self.entries.iter().filter(|(k, _)| k.direction == dir) {
                let peer = match &k.peer {
                    PeerKey::Identity { name, .. } => name.clone(),
                    PeerKey::Cidr { cidr } => format!("cidr {cidr}"),
                };
                let port = match (k.from_port, k.to_port) {
                    (0, 65535) => "*".to_string(),
                    (a, b) if a == b => a.to_string(),
                    (a, b) => format!("{a}-{b}"),
                };
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
                out.push_str(&format!(
                    "    {:<7} {}/{:<11} {}{}  [{}]\n",
                    v.decision.to_string(),
                    k.protocol,
                    port,
                    peer,
                    proxy,
                    from.join("; ")
                ));
            }
        }
        out
    }
}
