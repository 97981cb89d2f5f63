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
    pub origins: Vec<Origin>,
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
    let mut map: BTreeMap<MapKey, MapValue> = BTreeMap::new();
    let mut states = Vec::new();
    for dir in Direction::BOTH {
        let d = dir.index();
        let active: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| r.default_deny[d] || r.entries.iter().any(|e| e.direction == dir))
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
            let mut peers: Vec<PeerKey> = Vec::new();
            for p in &e.peers {
                match &p.kind {
                    PeerKind::Selectors { selectors } => {
                        for s in selectors {
                            for &i in cache.select(s) {
                                if let Some(id) = engine.identities.get(i as usize) {
                                    peers.push(PeerKey::Identity {
                                        id: id.id,
                                        name: id.to_string(),
                                    });
                                }
                            }
                        }
                    }
                    PeerKind::Cidr { cidr, except } => {
                        let mut text = cidr.to_string();
                        for x in except {
                            text.push_str(&format!(" except {x}"));
                        }
                        peers.push(PeerKey::Cidr { cidr: text });
                        for id in &engine.identities {
                            if cidr_peer_matches(cidr, except, id, engine.inv.cluster.dual_stack) {
                                peers.push(PeerKey::Identity {
                                    id: id.id,
                                    name: id.to_string(),
                                });
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
                    let key = MapKey {
                        direction: dir,
                        peer: peer.clone(),
                        protocol,
                        from_port,
                        to_port,
                    };
                    let v = map.entry(key).or_insert_with(|| MapValue {
                        decision: Decision::Allowed,
                        proxied: Vec::new(),
                        origins: Vec::new(),
                    });
                    if e.deny {
                        v.decision = Decision::Denied;
                        v.proxied.clear();
                    } else if v.decision == Decision::Allowed {
                        for k in &e.l7 {
                            if !v.proxied.contains(k) {
                                v.proxied.push(k.clone());
                            }
                        }
                    }
                    v.origins.push(e.origin.clone());
                }
            }
        }
    }
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
        entries: map.into_iter().collect(),
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
