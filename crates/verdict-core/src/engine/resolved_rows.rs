//! The per-identity view of a resolved map, as `verdict policy` shows it:
//! one row per (direction, peer identity or CIDR selection, protocol, port
//! range, tier level), entries of several rules for the same key merged
//! (a deny wins over an allow at one level). Expanded on demand from the
//! summarised entries of [`ResolvedPolicy`] (one per rule entry and port
//! range, keyed by peer set): only `verdict policy`, the report's policy
//! panels and tests expand, one subject at a time.

use crate::engine::Decision;
use crate::peerset::PeerRef;
use crate::policy::{Direction, Origin, Protocol, Tier};
use crate::resolved::{DirectionState, ResolvedPolicy};
use serde::Serialize;
use std::collections::BTreeMap;

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

fn is_normal_tier(t: &Tier) -> bool {
    *t == Tier::Normal
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Sort key of a peer as users see it: identities by number, then CIDR
/// selections by text (ranks are in text order).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Sk {
    Id(u32, u32),
    Cidr(u32),
}

impl<'r> ResolvedPolicy<'r> {
    /// The map with one row per peer identity (or CIDR selection) and port
    /// range, sorted, as the agent's policy map lists it.
    pub fn rows(&self) -> Vec<(MapKey, MapValue<'r>)> {
        type Key = (Direction, Sk, Protocol, u16, u16, (Tier, u32, u8));
        let names = self.names();
        // Each row with its origins numbered in unmerged order.
        type Row<'r> = (MapValue<'r>, Vec<(u32, &'r Origin)>);
        let mut map: BTreeMap<Key, Row<'r>> = BTreeMap::new();
        for e in self.entries.iter() {
            for p in e.peers.iter() {
                let sk = match p {
                    PeerRef::Identity(i) => Sk::Id(names.number(i).unwrap_or(u32::MAX), i),
                    PeerRef::Cidr(c) => Sk::Cidr(c),
                };
                // Ordinary entries share one level (deny over allow);
                // tiered entries keep their own, and their action.
                let at = if e.tier == Tier::Normal {
                    (e.tier, 0, 0)
                } else {
                    e.precedence()
                };
                let key = (e.direction, sk, e.protocol, e.from_port, e.to_port, at);
                let (v, seqs) = map.entry(key).or_insert_with(|| {
                    let v = MapValue {
                        decision: e.decision,
                        tier: e.tier,
                        level: at.1,
                        pass: e.tier != Tier::Normal && e.pass,
                        proxied: Vec::new(),
                        origins: Vec::new(),
                    };
                    (v, Vec::new())
                });
                if e.decision == Decision::Denied {
                    v.decision = Decision::Denied;
                    v.proxied.clear();
                } else if v.decision == Decision::Allowed {
                    for k in &e.proxied {
                        if !v.proxied.contains(k) {
                            v.proxied.push(k);
                        }
                    }
                }
                seqs.extend(e.origins.iter().copied());
            }
        }
        map.into_iter()
            .map(
                |((direction, sk, protocol, from_port, to_port, _), (mut v, mut seqs))| {
                    // The order of the unmerged entries (see `SetEntry::origins`).
                    seqs.sort_by_key(|&(seq, _)| seq);
                    crate::resolved::dedup_rule_entries(&mut seqs);
                    v.origins = seqs.into_iter().map(|(_, o)| o).collect();
                    let peer = match sk {
                        Sk::Id(number, i) => PeerKey::Identity {
                            id: number,
                            name: names
                                .name(i)
                                .cloned()
                                .unwrap_or_else(|| std::sync::Arc::from("")),
                        },
                        Sk::Cidr(c) => PeerKey::Cidr {
                            cidr: names.cidr(c).unwrap_or_default().to_string(),
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
                        v,
                    )
                },
            )
            .collect()
    }

    /// One line per row; each line escaped as a whole (names and labels
    /// cannot add lines or escape sequences). Peers are named as parties
    /// (`names`: identity number -> `shop/deployment/api`, `world`; see
    /// [`crate::names::identity_names`]), with their identity's labels when
    /// `verbose`; an identity `names` lacks shows its labels.
    pub fn to_text(&self, names: &BTreeMap<u32, String>, verbose: bool) -> String {
        use crate::text::push_line;
        let mut out = String::new();
        push_line(&mut out, &crate::names::party_text(&self.subject, true));
        push_line(&mut out, &format!("  identity {}", self.identity));
        let rows = self.rows();
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
            for (k, v) in rows.iter().filter(|(k, _)| k.direction == dir) {
                let peer = match &k.peer {
                    PeerKey::Identity { id, name } => match names.get(id) {
                        Some(party) if verbose => format!("{party} [{name}]"),
                        Some(party) => party.clone(),
                        None => name.to_string(),
                    },
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

/// The JSON form of `verdict policy`: the subject, both direction states
/// and the per-identity rows.
impl Serialize for ResolvedPolicy<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a, 'r> {
            subject: &'a str,
            identity: &'a crate::identity::Identity,
            ingress: &'a DirectionState<'r>,
            egress: &'a DirectionState<'r>,
            entries: Vec<(MapKey, MapValue<'r>)>,
        }
        View {
            subject: &self.subject,
            identity: &self.identity,
            ingress: &self.ingress,
            egress: &self.egress,
            entries: self.rows(),
        }
        .serialize(s)
    }
}
