//! Both sides of a connection, decided once per (source identity and
//! enforcement, its container ports, destination identity and
//! enforcement, its container ports, protocol, port) from each subject's
//! side context (`Engine::side_context`, built once per identity and
//! direction), as `Engine::side` decides them. The decision is free of the
//! parties' names; the explanations, which name them, are rendered once
//! per decision and pair of party names (two pods of one identity in two
//! groups share the decision, each explanation names its own pod). The
//! deciding rules of each compared scope are shared by every record.

use super::FlowParty;
use super::{Replayer, CACHE_MAX, CONTEXTS_MAX};
use crate::engine::side::Decided;
use crate::engine::{Decision, Party};
use crate::identity::Identity;
use crate::ingest::ContainerPort;
use crate::policy::{Direction, Protocol};
use std::sync::Arc;

/// Both sides of a connection decided, free of names (cached by
/// identities and port).
#[derive(Debug)]
pub(super) struct Sides {
    /// Unique per decision made by one replayer: the named cache's key.
    serial: u64,
    egress: Decided,
    ingress: Decided,
    decision: Decision,
    /// Per scope (egress, ingress, flow): whether it passes and its
    /// deciding rules.
    scopes: [(bool, Arc<[String]>); 3],
}

/// The judged sides of one connection for two named parties, with what
/// each compared scope reports, shared by their records.
#[derive(Debug)]
pub(super) struct Judged {
    pub(super) egress: Decision,
    pub(super) ingress: Decision,
    pub(super) decision: Decision,
    /// Per scope (egress, ingress, flow): whether it passes, its deciding
    /// rules and its explanation.
    pub(super) scopes: [(bool, Arc<[String]>, Arc<str>); 3],
}

pub(super) type CacheKey = (IdKey, bool, u32, IdKey, bool, u32, Protocol, u16);

/// A decision ([`Sides::serial`]) with the numbers of the source's and
/// the destination's names.
pub(super) type NamedKey = (u64, u32, u32);

/// A party's identity in the verdict cache: its index among the engine's
/// identities when it is one of them (no label set to clone or hash), else
/// the identity itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum IdKey {
    Known(usize),
    Other(Identity),
}

impl Replayer<'_, '_> {
    /// The party's identity as a cache key.
    fn id_key(p: &FlowParty) -> IdKey {
        match p.known {
            Some(i) => IdKey::Known(i),
            None => IdKey::Other(p.party.identity.clone()),
        }
    }

    /// The number of a container port list (part of the verdict cache's
    /// keys; see `sides` for their bound).
    fn port_list(&mut self, ports: &[ContainerPort]) -> u32 {
        if let Some(&n) = self.port_lists.get(ports) {
            return n;
        }
        let n = u32::try_from(self.port_lists.len()).unwrap_or(u32::MAX);
        self.port_lists.insert(ports.to_vec(), n);
        n
    }

    /// The number of a party name (part of the named cache's keys; see
    /// `judge_parties` for their bound).
    fn name_number(&mut self, name: &str) -> u32 {
        if let Some(&n) = self.names.get(name) {
            return n;
        }
        let n = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.insert(name.to_string(), n);
        n
    }

    /// One side's decision, as `Engine::side` makes it, from the subject's
    /// cached context.
    #[allow(clippy::too_many_arguments)]
    fn side(
        &mut self,
        subject: &Party,
        subject_key: &IdKey,
        dir: Direction,
        peer: &Party,
        peer_known: Option<usize>,
        protocol: Protocol,
        port: u16,
    ) -> Decided {
        let key = (subject_key.clone(), dir);
        let ctx = match self.contexts.get(&key) {
            Some(c) => Arc::clone(c),
            None => {
                let c = Arc::new(self.engine.side_context(subject, dir));
                if self.contexts.len() >= CONTEXTS_MAX {
                    self.contexts.clear();
                }
                self.contexts.insert(key, Arc::clone(&c));
                c
            }
        };
        self.engine
            .decide_in(&ctx, subject, peer, peer_known, protocol, port)
    }

    /// Both sides decided for the parties' identities (cached).
    fn sides(
        &mut self,
        from_party: &FlowParty,
        to_party: &FlowParty,
        protocol: Protocol,
        port: u16,
    ) -> Arc<Sides> {
        let (from_key, to_key) = (Self::id_key(from_party), Self::id_key(to_party));
        let (from, to) = (&from_party.party, &to_party.party);
        if self.port_lists.len() + 2 > CACHE_MAX {
            // Port lists are numbered afresh: forget the keys holding them
            // (before numbering both, so that neither number is stale).
            self.port_lists.clear();
            self.cache.clear();
        }
        let key: CacheKey = (
            from_key.clone(),
            from.enforced,
            self.port_list(&from.ports),
            to_key.clone(),
            to.enforced,
            self.port_list(&to.ports),
            protocol,
            port,
        );
        if let Some(s) = self.cache.get(&key) {
            return Arc::clone(s);
        }
        // Both sides as `trace` evaluates them, without the near misses
        // (replay does not print them).
        let egress = self.side(
            from,
            &from_key,
            Direction::Egress,
            to,
            to_party.known,
            protocol,
            port,
        );
        let ingress = self.side(
            to,
            &to_key,
            Direction::Ingress,
            from,
            from_party.known,
            protocol,
            port,
        );
        let pass = |d: &Decided| d.decision == Decision::Allowed || !d.enforced;
        let (egress_pass, ingress_pass) = (pass(&egress), pass(&ingress));
        let decision = if egress_pass && ingress_pass {
            Decision::Allowed
        } else {
            Decision::Denied
        };
        let rules =
            |d: &Decided| -> Vec<String> { d.deciding.iter().map(ToString::to_string).collect() };
        let (egress_rules, ingress_rules) = (rules(&egress), rules(&ingress));
        let flow_rules: Arc<[String]> = egress_rules
            .iter()
            .chain(ingress_rules.iter())
            .cloned()
            .collect();
        self.serial += 1;
        let s = Arc::new(Sides {
            serial: self.serial,
            egress,
            ingress,
            decision,
            scopes: [
                (egress_pass, egress_rules.into()),
                (ingress_pass, ingress_rules.into()),
                (decision == Decision::Allowed, flow_rules),
            ],
        });
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(key, Arc::clone(&s));
        s
    }

    /// The judged connection between two parties: the decision of their
    /// identities (cached), explained for their names (cached per
    /// decision and pair of names).
    pub(super) fn judge_parties(
        &mut self,
        from_party: &FlowParty,
        to_party: &FlowParty,
        protocol: Protocol,
        port: u16,
    ) -> Arc<Judged> {
        let sides = self.sides(from_party, to_party, protocol, port);
        let (from, to) = (&from_party.party, &to_party.party);
        if self.names.len() + 2 > CACHE_MAX {
            // Names are numbered afresh: forget the keys holding them
            // (before numbering both, so that neither number is stale).
            self.names.clear();
            self.named.clear();
        }
        let key: NamedKey = (
            sides.serial,
            self.name_number(&from.name),
            self.name_number(&to.name),
        );
        if let Some(j) = self.named.get(&key) {
            return Arc::clone(j);
        }
        let engine = self.engine;
        let egress = engine.explain(&sides.egress, from, to, protocol, port);
        let ingress = engine.explain(&sides.ingress, to, from, protocol, port);
        let [(egress_pass, egress_rules), (ingress_pass, ingress_rules), (flow_pass, flow_rules)] =
            &sides.scopes;
        let flow_why = if !egress_pass {
            egress.explanation.clone()
        } else if !ingress_pass {
            ingress.explanation.clone()
        } else {
            format!(
                "egress: {}; ingress: {}",
                egress.explanation, ingress.explanation
            )
        };
        let j = Arc::new(Judged {
            egress: egress.decision,
            ingress: ingress.decision,
            decision: sides.decision,
            scopes: [
                (
                    *egress_pass,
                    Arc::clone(egress_rules),
                    egress.explanation.into(),
                ),
                (
                    *ingress_pass,
                    Arc::clone(ingress_rules),
                    ingress.explanation.into(),
                ),
                (*flow_pass, Arc::clone(flow_rules), flow_why.into()),
            ],
        });
        if self.named.len() >= CACHE_MAX {
            self.named.clear();
        }
        self.named.insert(key, Arc::clone(&j));
        j
    }
}
