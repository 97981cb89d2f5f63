//! The part of a side's decision that depends only on its subject's
//! identity and the direction ([`SideContext`]): the rules selecting the
//! subject, default deny and what causes it (formatted once), the
//! `fromRequires` selectors, and the entries of that direction with their
//! peers grouped by value. [`Engine::decide`] builds one per call;
//! a caller that decides many flows of one subject (`replay`) builds it once
//! and calls [`Engine::decide_in`], so a decision costs a port test per
//! entry and one peer test per distinct peer list, however many rules
//! repeat the same peers (a clusterwide policy selecting a fifth of the
//! cluster repeats its peers in every identity's context).

use crate::engine::side::{capped_head, Decided};
use crate::engine::{Decision, Engine, Party, Reason};
use crate::policy::{first_decider, Direction, Entry, Origin, PeerKind, Protocol, Rule};
use crate::selector::Selector;
use crate::settings::PolicyEnforcement;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// What a subject identity's side needs before the peer and port are known.
#[derive(Debug)]
pub struct SideContext<'a> {
    direction: Direction,
    /// `enable-policy=never`.
    disabled: bool,
    has_rules: bool,
    forced: Option<&'static str>,
    default_deny: bool,
    selecting: Arc<[Arc<Origin>]>,
    requires_allow: Vec<&'a Selector>,
    requires_deny: Vec<&'a Selector>,
    /// The entries of the direction in rule order, each with its peer
    /// group: entries of one group (same deny flag, same peers) select the
    /// same peers, so one test answers for all of them.
    entries: Vec<(&'a Entry, u32)>,
    groups: usize,
    default_deny_by: Arc<[String]>,
    default_deny_text: String,
}

/// The peers of an entry as its peer test reads them (not the text the
/// user wrote), with the deny flag that picks the `requires` selectors.
type PeerKey<'a> = (bool, Vec<(bool, &'a PeerKind)>);

impl<'a> Engine<'a> {
    /// The context of `subject`'s side in `dir` (see the module doc); it
    /// depends on the subject's identity only.
    pub fn side_context(&self, subject: &Party, dir: Direction) -> SideContext<'a> {
        let d = dir.index();
        let disabled = self.inv.cluster.policy_enforcement == PolicyEnforcement::Never;
        let active: Vec<&'a Rule> = if disabled {
            Vec::new()
        } else {
            self.selecting_rules(&subject.identity)
                .filter(|r| r.applies_to(dir))
                .collect()
        };
        let forced = self.forced_default_deny(&subject.identity);
        let default_deny = forced.is_some() || active.iter().any(|r| r.default_deny[d]);
        let mut by_peers: FxHashMap<PeerKey<'a>, u32> = FxHashMap::default();
        let mut entries = Vec::new();
        for e in active
            .iter()
            .flat_map(|r| r.entries.iter().filter(|e| e.direction == dir))
        {
            let key: PeerKey<'a> = (
                e.deny,
                e.peers.iter().map(|p| (p.from_endpoints, &p.kind)).collect(),
            );
            let next = u32::try_from(by_peers.len()).unwrap_or(u32::MAX);
            let group = *by_peers.entry(key).or_insert(next);
            entries.push((e, group));
        }
        let default_deny_by: Arc<[String]> = if default_deny {
            forced
                .map(str::to_string)
                .into_iter()
                .chain(
                    active
                        .iter()
                        .filter(|r| r.default_deny[d])
                        .map(|r| format!("{} ({})", r.origin.policy.short(), r.origin.location)),
                )
                .collect()
        } else {
            Arc::new([])
        };
        SideContext {
            direction: dir,
            disabled,
            has_rules: !active.is_empty(),
            forced,
            default_deny,
            selecting: active.iter().map(|r| Arc::clone(&r.origin)).collect(),
            requires_allow: crate::engine::requirements(&active, dir, false),
            requires_deny: crate::engine::requirements(&active, dir, true),
            entries,
            groups: by_peers.len(),
            default_deny_text: capped_head(default_deny_by.iter(), default_deny_by.len()),
            default_deny_by,
        }
    }

    /// The decision of the side `ctx` was built for (`subject` must have
    /// the identity it was built from) for traffic with `peer` (whose
    /// [`Engine::known_index`] is `peer_idx`) on `protocol`/`port`, without
    /// an explanation.
    pub fn decide_in(
        &self,
        ctx: &SideContext<'a>,
        subject: &Party,
        peer: &Party,
        peer_idx: Option<usize>,
        protocol: Protocol,
        port: u16,
    ) -> Decided {
        let dir = ctx.direction;
        let mut v = Decided::empty(dir, subject.enforced);
        if ctx.disabled {
            v.reason = Reason::PolicyDisabled;
            return v;
        }
        v.selecting = Arc::clone(&ctx.selecting);
        if !ctx.has_rules && ctx.forced.is_none() {
            v.reason = Reason::NoPolicy;
            return v;
        }
        // Per peer group: 0 not tested yet, 1 selects the peer, 2 does not.
        let mut tested = vec![0u8; ctx.groups];
        let mut matched: Vec<&Entry> = Vec::new();
        for &(e, group) in &ctx.entries {
            let port_ok = self.entry_port_matches(e, subject, peer, dir, protocol, port);
            let peer_ok = port_ok
                && match tested.get(group as usize).copied() {
                    Some(1) => true,
                    Some(2) => false,
                    _ => {
                        let requires = if e.deny {
                            &ctx.requires_deny
                        } else {
                            &ctx.requires_allow
                        };
                        let ok = self.entry_peer_matches(e, peer, peer_idx, requires);
                        if let Some(t) = tested.get_mut(group as usize) {
                            *t = if ok { 1 } else { 2 };
                        }
                        ok
                    }
                };
            if !peer_ok {
                for u in &e.unevaluable {
                    let note = format!("{}: {u}", e.origin);
                    if !v.unevaluable.contains(&note) {
                        v.unevaluable.push(note);
                    }
                }
                continue;
            }
            matched.push(e);
        }
        // Tiers in order (Admin, the ordinary policies, Baseline); inside a
        // tier by level; Deny before Accept before Pass at one level. The
        // first entry decides; a Pass skips the rest of its tier.
        let (decider, passed) = first_decider(&mut matched, |e| e.precedence());
        v.passed = passed.iter().map(|e| Arc::clone(&e.origin)).collect();
        let deciding: Vec<&Entry> = matched
            .iter()
            .copied()
            .filter(|e| Some(e.precedence()) == decider)
            .collect();
        v.note = deciding.first().map(|e| e.tier_note()).unwrap_or_default();
        v.tier = deciding.first().map(|e| e.tier);
        if !deciding.is_empty() {
            v.deciding = deciding.iter().map(|e| Arc::clone(&e.origin)).collect();
            v.deciding_text = capped_head(v.deciding.iter(), v.deciding.len());
        }
        if deciding.first().is_some_and(|e| e.deny) {
            v.decision = Decision::Denied;
            v.reason = Reason::DeniedByRule;
        } else if !deciding.is_empty() {
            v.reason = Reason::AllowedByRule;
            let mut l7: Vec<String> = deciding.iter().flat_map(|e| e.l7.iter().cloned()).collect();
            l7.sort();
            l7.dedup();
            v.proxied = l7;
        } else if ctx.default_deny && self.localhost_allowed(subject, dir, peer, ctx.has_rules) {
            v.reason = Reason::AllowLocalhost;
        } else if ctx.default_deny {
            v.decision = Decision::Denied;
            v.reason = Reason::DefaultDeny;
            v.default_deny_by = Arc::clone(&ctx.default_deny_by);
            v.default_deny_text.clone_from(&ctx.default_deny_text);
        } else {
            v.reason = Reason::NoDefaultDeny;
        }
        v
    }
}
