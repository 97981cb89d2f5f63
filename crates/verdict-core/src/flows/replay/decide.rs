//! Both sides of a connection, decided once per (source identity and
//! enforcement, its container ports, destination identity and
//! enforcement, its container ports, protocol, port) from each subject's
//! side context (`Engine::side_context`, built once per identity and
//! direction), as `Engine::side` decides them; the deciding rules and the
//! explanation of each compared scope are shared by every record.

use super::FlowParty;
use super::{Replayer, CACHE_MAX, CONTEXTS_MAX};
use crate::engine::{Decision, Party, SideVerdict};
use crate::identity::Identity;
use crate::ingest::ContainerPort;
use crate::policy::{Direction, Protocol};
use std::sync::Arc;

/// The judged sides of one connection (cached by identities and port),
/// with what each compared scope reports, shared by its records.
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

    /// The number of a container port list.
    fn port_list(&mut self, ports: &[ContainerPort]) -> u32 {
        if let Some(&n) = self.port_lists.get(ports) {
            return n;
        }
        if self.port_lists.len() >= CACHE_MAX {
            // Numbers are part of the verdict cache's keys.
            self.port_lists.clear();
            self.cache.clear();
        }
        let n = u32::try_from(self.port_lists.len()).unwrap_or(u32::MAX);
        self.port_lists.insert(ports.to_vec(), n);
        n
    }

    /// One side's verdict, as `Engine::side` gives it, from the subject's
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
    ) -> SideVerdict {
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
        let d = self
            .engine
            .decide_in(&ctx, subject, peer, peer_known, protocol, port);
        self.engine.explain(&d, subject, peer, protocol, port)
    }

    pub(super) fn judge_parties(
        &mut self,
        from_party: &FlowParty,
        to_party: &FlowParty,
        protocol: Protocol,
        port: u16,
    ) -> Arc<Judged> {
        let (from_key, to_key) = (Self::id_key(from_party), Self::id_key(to_party));
        let (from, to) = (&from_party.party, &to_party.party);
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
        if let Some(j) = self.cache.get(&key) {
            return Arc::clone(j);
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
        let pass = |s: &SideVerdict| s.decision == Decision::Allowed || !s.enforced;
        let (egress_pass, ingress_pass) = (pass(&egress), pass(&ingress));
        let decision = if egress_pass && ingress_pass {
            Decision::Allowed
        } else {
            Decision::Denied
        };
        let rules = |s: &SideVerdict| -> Vec<String> {
            s.deciding.iter().map(ToString::to_string).collect()
        };
        let (egress_rules, ingress_rules) = (rules(&egress), rules(&ingress));
        let flow_rules: Arc<[String]> = egress_rules
            .iter()
            .chain(ingress_rules.iter())
            .cloned()
            .collect();
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
            decision,
            scopes: [
                (egress_pass, egress_rules.into(), egress.explanation.into()),
                (
                    ingress_pass,
                    ingress_rules.into(),
                    ingress.explanation.into(),
                ),
                (decision == Decision::Allowed, flow_rules, flow_why.into()),
            ],
        });
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(key, Arc::clone(&j));
        j
    }
}
