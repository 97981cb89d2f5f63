//! The verdict of one side of a flow, in two steps:
//!
//! * [`Engine::decide`]: which entries of the rules selecting the subject
//!   match the flow, and what they decide. It reads the parties' identities,
//!   container ports and enforcement, never their names, so a caller that
//!   checks many pods of one identity (`paths`) computes it once per
//!   (subject identity, direction, peer identity, protocol, port).
//! * [`Engine::explain`]: the [`SideVerdict`] with its sentence for the
//!   named parties (the deciding rules are formatted once, in `decide`).
//!
//! Lists of rules in a sentence are capped ([`LIST_MAX`]): a side selected
//! by 1,900 rules names the first three and says how many more there are
//! and which command lists them all, so a sentence has a bounded length
//! whatever the cluster (`paths` writes one per backend pod). The complete
//! lists are kept, shared, in [`Decided`] and [`SideVerdict`].

use crate::engine::{Decision, Engine, Party, Reason, SideVerdict};
use crate::policy::{first_decider, Direction, Entry, Origin, Protocol, Rule, Tier};
use std::sync::Arc;

/// A side's decision, free of the parties' names.
#[derive(Debug, Clone)]
pub struct Decided {
    pub direction: Direction,
    pub enforced: bool,
    pub decision: Decision,
    pub reason: Reason,
    /// Shared with every verdict explained from this decision.
    pub deciding: Arc<[Arc<Origin>]>,
    pub selecting: Arc<[Arc<Origin>]>,
    pub proxied: Vec<String>,
    pub unevaluable: Vec<String>,
    pub tier: Option<Tier>,
    pub passed: Vec<Arc<Origin>>,
    /// The deciding entries' origins, formatted once, capped (`a, b`).
    pub(crate) deciding_text: String,
    /// The tier note of the first deciding entry (` (Admin tier, priority 3)`).
    pub(crate) note: String,
    /// What makes the side default deny (forced first, then the rules
    /// `policy (file:line)`), complete.
    pub default_deny_by: Arc<[String]>,
    /// `default_deny_by` formatted once, capped.
    pub(crate) default_deny_text: String,
}

impl Decided {
    /// No policy decided yet: allowed, no rules.
    pub(crate) fn empty(direction: Direction, enforced: bool) -> Decided {
        Decided {
            direction,
            enforced,
            decision: Decision::Allowed,
            reason: Reason::NoPolicy,
            deciding: Arc::new([]),
            selecting: Arc::new([]),
            proxied: Vec::new(),
            unevaluable: Vec::new(),
            tier: None,
            passed: Vec::new(),
            deciding_text: String::new(),
            note: String::new(),
            default_deny_by: Arc::new([]),
            default_deny_text: String::new(),
        }
    }

    /// Notes the parts of `e` that cannot be evaluated offline (once each):
    /// an entry that did not match may still have matched on them.
    pub(crate) fn note_unevaluable(&mut self, e: &Entry) {
        for u in &e.unevaluable {
            let note = format!("{}: {u}", e.origin);
            if !self.unevaluable.contains(&note) {
                self.unevaluable.push(note);
            }
        }
    }
}

/// The most names a sentence lists; a longer list shows its first
/// [`LIST_SHOWN`] and a count ([`capped`]).
pub const LIST_MAX: usize = 5;
/// How many names a capped list shows.
pub const LIST_SHOWN: usize = 3;

/// The first names of a list of `n` (all when `n <= LIST_MAX`, else
/// `LIST_SHOWN`), joined with `, `; only those are formatted.
pub fn capped_head<T: std::fmt::Display>(items: impl IntoIterator<Item = T>, n: usize) -> String {
    let take = if n <= LIST_MAX { n } else { LIST_SHOWN };
    let mut out = String::new();
    for (i, it) in items.into_iter().take(take).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&it.to_string());
    }
    out
}

/// What follows a capped head of a list of `n` about `subject`:
/// nothing when the list is complete, else ` and 1,897 more (all 1,900:
/// `verdict policy SUBJECT`)`.
pub fn capped_tail(n: usize, subject: &str) -> String {
    if n <= LIST_MAX {
        return String::new();
    }
    format!(
        " and {} more (all {}: `verdict policy {subject}`)",
        thousands(n - LIST_SHOWN),
        thousands(n)
    )
}

/// `1900` as `1,900`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl<'a> Engine<'a> {
    /// Whether an entry of `rule` in `dir` may match a flow with `peer` on
    /// `protocol`/`port`: its peers select `peer` (without the
    /// `fromRequires`/`toRequires`, which only narrow) and its ports cover
    /// the port, a named port counting as covering. When no rule selecting
    /// a subject may match, its decision is its default (deny or allow)
    /// without reading the subject's rules again: callers deciding one flow
    /// for many subjects (lint's DNS check) test each rule once.
    pub fn rule_may_match(
        &self,
        rule: &Rule,
        dir: Direction,
        peer: &Party,
        protocol: Protocol,
        port: u16,
    ) -> bool {
        let peer_idx = self.known_index(&peer.identity);
        rule.entries.iter().filter(|e| e.direction == dir).any(|e| {
            let ports_cover = e.ports.as_ref().is_none_or(|ports| {
                ports.iter().any(|pr| {
                    pr.protocol.covers(protocol)
                        && match &pr.port {
                            crate::policy::PortSel::Range { from, to } => {
                                *from <= port && port <= *to
                            }
                            crate::policy::PortSel::Named(_) => true,
                        }
                })
            });
            ports_cover && self.entry_peer_matches(e, peer, peer_idx, &[])
        })
    }

    /// The decision of `subject`'s policy in `dir` for traffic with `peer`
    /// on `protocol`/`port`, without an explanation (the subject's
    /// [`Engine::side_context`], then [`Engine::decide_in`]).
    pub fn decide(
        &self,
        subject: &Party,
        dir: Direction,
        peer: &Party,
        protocol: Protocol,
        port: u16,
    ) -> Decided {
        let ctx = self.build_side_context(subject, dir, false, &|_| true);
        let peer_idx = self.known_index(&peer.identity);
        self.decide_in(&ctx, subject, peer, peer_idx, protocol, port)
    }

    /// The verdict of a decision for the named parties, with its sentence.
    pub fn explain(
        &self,
        d: &Decided,
        subject: &Party,
        peer: &Party,
        protocol: Protocol,
        port: u16,
    ) -> SideVerdict {
        let dir = d.direction;
        let flow = || format!("{} on {protocol}/{port}", peer.name);
        let deciding = || {
            format!(
                "{}{}",
                d.deciding_text,
                capped_tail(d.deciding.len(), &subject.name)
            )
        };
        let explanation = match d.reason {
            Reason::PolicyDisabled => {
                "policy enforcement is off (enable-policy=never): allowed".to_string()
            }
            Reason::NoPolicy => format!(
                "no policy selects {} for {dir}: default allow",
                subject.name
            ),
            Reason::DeniedByRule if d.note.is_empty() => format!(
                "denied by {} ({}); deny rules take precedence over allow rules",
                deciding(),
                flow()
            ),
            Reason::DeniedByRule => {
                format!("denied by {}{} ({})", deciding(), d.note, flow())
            }
            Reason::AllowedByRule => {
                let mut s = format!("allowed by {}{} ({})", deciding(), d.note, flow());
                if !d.proxied.is_empty() {
                    s.push_str(&format!(
                        "; redirected to the L7 proxy ({})",
                        d.proxied.join(", ")
                    ));
                }
                s
            }
            Reason::AllowLocalhost => format!(
                "no rule matches {}, but the node reaches its local endpoints (allow-localhost=always): allowed",
                flow()
            ),
            Reason::DefaultDeny => format!(
                "default deny: {} is selected by {}{} for {dir}, no rule allows {}",
                subject.name,
                d.default_deny_text,
                capped_tail(d.default_deny_by.len(), &subject.name),
                flow()
            ),
            Reason::NoDefaultDeny => format!(
                "no rule matches {}, and every policy selecting {} sets enableDefaultDeny.{dir}: false: allowed",
                flow(),
                subject.name
            ),
        };
        SideVerdict {
            direction: dir,
            enforced: d.enforced,
            decision: d.decision,
            reason: d.reason.clone(),
            explanation,
            deciding: Arc::clone(&d.deciding),
            selecting: Arc::clone(&d.selecting),
            default_deny_by: Arc::clone(&d.default_deny_by),
            proxied: d.proxied.clone(),
            unevaluable: d.unevaluable.clone(),
            tier: d.tier,
            passed: d.passed.clone(),
            near_miss: Vec::new(),
        }
    }
}

/// Settles `v` from the entries that matched a flow, in Cilium's order:
/// tiers (Admin, the ordinary policies, Baseline), inside a tier by level,
/// Deny before Accept before Pass at one level; the first entry decides and
/// a Pass skips the rest of its tier. Returns whether an entry decided (else
/// default deny, allow-localhost or no default deny decide, per caller).
pub(crate) fn settle_matched(v: &mut Decided, matched: &mut Vec<&Entry>) -> bool {
    let (decider, passed) = first_decider(matched, |e| e.precedence());
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
    }
    !deciding.is_empty()
}
