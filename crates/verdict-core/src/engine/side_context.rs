//! The part of a side's decision that depends only on its subject's
//! identity and the direction ([`SideContext`]): the rules selecting the
//! subject, default deny and what causes it (formatted once), the
//! `fromRequires` selectors, and the entries of that direction with their
//! peers grouped by value. [`Engine::decide`] builds one per call;
//! a caller that decides many flows of one subject (`replay`) builds it once
//! and calls [`Engine::decide_in`], so a decision costs a port test per
//! entry and one peer test per distinct peer list, however many rules
//! repeat the same peers (a clusterwide policy selecting a fifth of the
//! cluster repeats its peers in every identity's context). Once a context
//! has decided enough flows, a peer index (side_index.rs) narrows each
//! decision with a known peer to the entries whose peers may select it.
//! `paths` (one context per subject identity and direction), near misses
//! (near_miss.rs) and lint's DNS check (rules restricted by
//! [`Engine::side_context_keeping`]) decide through it too.

use crate::engine::side::{capped_head, settle_matched, Decided};
use crate::engine::side_index::{GroupView, PeerIndex};
use crate::engine::{Decision, Engine, Party, Reason};
use crate::identity::IdentityKind;
use crate::policy::{Direction, Entry, Origin, PeerKind, PortSel, Protocol, Rule};
use crate::selector::Selector;
use crate::settings::PolicyEnforcement;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Peer tests made by [`Engine::decide_in`] (one per peer group it had to
/// test), for the benchmark's regression counters.
static PEER_TESTS: AtomicU64 = AtomicU64::new(0);

/// The peer tests made so far by [`Engine::decide_in`].
pub fn peer_tests() -> u64 {
    PEER_TESTS.load(Ordering::Relaxed)
}

/// Entries visited by [`Engine::decide_in`] (a port or peer test each),
/// for the benchmark's regression counters.
static ENTRIES_VISITED: AtomicU64 = AtomicU64::new(0);

/// The entries visited so far by [`Engine::decide_in`].
pub fn entries_visited() -> u64 {
    ENTRIES_VISITED.load(Ordering::Relaxed)
}

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
    entries: Vec<Slot<'a>>,
    groups: Vec<Group<'a>>,
    /// The fixed port ranges of the entries, read in place of their
    /// `ports` ([`PortTest::Ranges`] indexes into it).
    ranges: Vec<(Protocol, u16, u16)>,
    /// The rules setting default deny, formatted on first need.
    default_deny_rules: Vec<&'a Rule>,
    default_deny_by: OnceLock<(Arc<[String]>, String)>,
    /// Whether entries are grouped by peers (a context for many flows);
    /// only those get a peer index.
    grouped: bool,
    /// The peer index, built once the full scans made so far (`scanned`
    /// entries) cost about what building it costs (`index_cost`).
    index: OnceLock<PeerIndex>,
    scanned: AtomicU64,
    index_cost: u64,
}

/// See [`Engine::side_context_key`].
pub type SideContextKey = (Direction, Option<&'static str>, Vec<usize>);

/// The entries of one peer group.
#[derive(Debug)]
struct Group<'a> {
    /// Its first entry (all have the same peers).
    entry: &'a Entry,
    /// Its slots, in entry order.
    slots: Vec<u32>,
    /// Every peer is a CIDR (or cannot be evaluated), so the group never
    /// selects an endpoint identity (`cidr_peer_matches`).
    cidr_only: bool,
}

/// One entry of a context: the entry, its peer group and its port test.
#[derive(Debug)]
struct Slot<'a> {
    entry: &'a Entry,
    group: u32,
    ports: PortTest,
    /// The entry has parts that cannot be evaluated offline (read only
    /// then, so a decision touches only the entries that match).
    unevaluable: bool,
}

/// An entry's ports as the decision tests them.
#[derive(Debug)]
enum PortTest {
    /// No `ports`: every port.
    Any,
    /// Only numbers and ranges: `ranges[from..to]` of the context.
    Ranges(u32, u32),
    /// A named port: resolved per flow (`Engine::entry_port_matches`).
    Named,
}

/// The peers of an entry as its peer test reads them (not the text the
/// user wrote), with the deny flag that picks the `requires` selectors.
type PeerKey<'a> = (bool, Vec<(bool, &'a PeerKind)>);

impl<'a> Engine<'a> {
    /// The context of `subject`'s side in `dir` (see the module doc), to
    /// decide many flows with; it depends on the subject's identity only.
    pub fn side_context(&self, subject: &Party, dir: Direction) -> SideContext<'a> {
        self.build_side_context(subject, dir, true, &|_| true)
    }

    /// [`Engine::side_context`] deciding with the entries of the rules
    /// `keep` accepts only; default deny, the `fromRequires`/`toRequires`
    /// selectors and the lists of rules still come from every rule
    /// selecting the subject. A flow's decision is unchanged when no rule
    /// dropped has an entry that may match it ([`Engine::rule_may_match`]).
    /// For one decision (entries are not grouped).
    pub fn side_context_keeping(
        &self,
        subject: &Party,
        dir: Direction,
        keep: impl Fn(&Rule) -> bool,
    ) -> SideContext<'a> {
        self.build_side_context(subject, dir, false, &keep)
    }

    /// What [`Engine::side_context`] builds `subject`'s context from: the
    /// direction, the default deny Cilium forces on the identity, and the
    /// rules selecting it that apply in `dir` (by address). Subjects with
    /// equal keys have equal contexts, so they can share one (the replicas
    /// of many workloads are selected by the same rules).
    pub fn side_context_key(&self, subject: &Party, dir: Direction) -> SideContextKey {
        (
            dir,
            self.forced_default_deny(&subject.identity),
            self.active_rules(subject, dir)
                .iter()
                .map(|r| std::ptr::from_ref::<Rule>(r) as usize)
                .collect(),
        )
    }

    /// The rules selecting `subject` that apply in `dir` (none when
    /// policy enforcement is off).
    fn active_rules(&self, subject: &Party, dir: Direction) -> Vec<&'a Rule> {
        if self.inv.cluster.policy_enforcement == PolicyEnforcement::Never {
            return Vec::new();
        }
        self.selecting_rules(&subject.identity)
            .filter(|r| r.applies_to(dir))
            .collect()
    }

    /// [`Engine::side_context`]; `group` groups entries by their peers,
    /// which pays off only when the context decides several flows.
    pub(crate) fn build_side_context(
        &self,
        subject: &Party,
        dir: Direction,
        group: bool,
        keep: &dyn Fn(&Rule) -> bool,
    ) -> SideContext<'a> {
        let d = dir.index();
        let disabled = self.inv.cluster.policy_enforcement == PolicyEnforcement::Never;
        let active = self.active_rules(subject, dir);
        let forced = self.forced_default_deny(&subject.identity);
        let default_deny = forced.is_some() || active.iter().any(|r| r.default_deny[d]);
        let mut by_peers: FxHashMap<PeerKey<'a>, u32> = FxHashMap::default();
        let mut entries = Vec::new();
        let mut groups: Vec<Group<'a>> = Vec::new();
        let mut ranges = Vec::new();
        for e in active
            .iter()
            .filter(|r| keep(r))
            .flat_map(|r| r.entries.iter().filter(|e| e.direction == dir))
        {
            let key: PeerKey<'a> = if group {
                (
                    e.deny,
                    e.peers
                        .iter()
                        .map(|p| (p.from_endpoints, &p.kind))
                        .collect(),
                )
            } else {
                (e.deny, Vec::new())
            };
            let next = u32::try_from(groups.len()).unwrap_or(u32::MAX);
            let group = if group {
                *by_peers.entry(key).or_insert(next)
            } else {
                next
            };
            if group == next {
                groups.push(Group {
                    entry: e,
                    slots: Vec::new(),
                    cidr_only: e.peers.iter().all(|p| {
                        matches!(p.kind, PeerKind::Cidr { .. } | PeerKind::Unevaluable { .. })
                    }),
                });
            }
            if let Some(g) = groups.get_mut(group as usize) {
                g.slots
                    .push(u32::try_from(entries.len()).unwrap_or(u32::MAX));
            }
            let ports = match &e.ports {
                None => PortTest::Any,
                Some(list) if list.iter().any(|pr| matches!(pr.port, PortSel::Named(_))) => {
                    PortTest::Named
                }
                Some(list) => {
                    let from = u32::try_from(ranges.len()).unwrap_or(u32::MAX);
                    for pr in list {
                        if let PortSel::Range { from, to } = pr.port {
                            ranges.push((pr.protocol, from, to));
                        }
                    }
                    PortTest::Ranges(from, u32::try_from(ranges.len()).unwrap_or(u32::MAX))
                }
            };
            entries.push(Slot {
                entry: e,
                group,
                ports,
                unevaluable: !e.unevaluable.is_empty(),
            });
        }
        SideContext {
            direction: dir,
            disabled,
            has_rules: !active.is_empty(),
            forced,
            default_deny,
            selecting: active.iter().map(|r| Arc::clone(&r.origin)).collect(),
            requires_allow: crate::engine::requirements(&active, dir, false),
            requires_deny: crate::engine::requirements(&active, dir, true),
            index_cost: index_cost(self, groups.len(), entries.len()),
            entries,
            groups,
            ranges,
            default_deny_rules: active
                .iter()
                .copied()
                .filter(|r| r.default_deny[d])
                .collect(),
            default_deny_by: OnceLock::new(),
            grouped: group,
            index: OnceLock::new(),
            scanned: AtomicU64::new(0),
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
        self.decide_in_with(ctx, subject, peer, peer_idx, protocol, port, true)
    }

    /// [`Engine::decide_in`] for a caller that reads only the decision,
    /// its reason and enforcement: a default deny's rules
    /// (`default_deny_by`, `default_deny_text`) are left empty, so a
    /// context's default-deny rules are never named (one string per rule
    /// and context; generate's verification builds a context per backend).
    pub fn decision_in(
        &self,
        ctx: &SideContext<'a>,
        subject: &Party,
        peer: &Party,
        peer_idx: Option<usize>,
        protocol: Protocol,
        port: u16,
    ) -> Decided {
        self.decide_in_with(ctx, subject, peer, peer_idx, protocol, port, false)
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_in_with(
        &self,
        ctx: &SideContext<'a>,
        subject: &Party,
        peer: &Party,
        peer_idx: Option<usize>,
        protocol: Protocol,
        port: u16,
        name_default_deny: bool,
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
        let endpoint_peer = peer.identity.kind == IdentityKind::Endpoint;
        let mut tested: Vec<u8> = ctx
            .groups
            .iter()
            .map(|g| if g.cidr_only && endpoint_peer { 2 } else { 0 })
            .collect();
        let mut matched: Vec<&Entry> = Vec::new();
        let candidates = peer_idx.and_then(|i| {
            let index = self.peer_index(ctx)?;
            let mut c = index.always(endpoint_peer).to_vec();
            for &g in index.groups_of(i) {
                if let Some(g) = ctx.groups.get(g as usize) {
                    c.extend_from_slice(&g.slots);
                }
            }
            c.sort_unstable();
            c.dedup();
            Some(c)
        });
        let (mut all, mut picked);
        let slots: &mut dyn Iterator<Item = &Slot<'a>> = match candidates {
            Some(c) => {
                ENTRIES_VISITED.fetch_add(c.len() as u64, Ordering::Relaxed);
                picked = c.into_iter().filter_map(|s| ctx.entries.get(s as usize));
                &mut picked
            }
            None => {
                ENTRIES_VISITED.fetch_add(ctx.entries.len() as u64, Ordering::Relaxed);
                all = ctx.entries.iter();
                &mut all
            }
        };
        for slot in slots {
            let (e, group) = (slot.entry, slot.group);
            let port_ok = match slot.ports {
                PortTest::Any => true,
                PortTest::Ranges(from, to) => ctx
                    .ranges
                    .get(from as usize..to as usize)
                    .unwrap_or(&[])
                    .iter()
                    .any(|&(p, lo, hi)| p.covers(protocol) && lo <= port && port <= hi),
                PortTest::Named => self.entry_port_matches(e, subject, peer, dir, protocol, port),
            };
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
                        PEER_TESTS.fetch_add(1, Ordering::Relaxed);
                        if let Some(t) = tested.get_mut(group as usize) {
                            *t = if ok { 1 } else { 2 };
                        }
                        ok
                    }
                };
            if !peer_ok {
                if !slot.unevaluable {
                    continue;
                }
                v.note_unevaluable(e);
                continue;
            }
            matched.push(e);
        }
        if settle_matched(&mut v, &mut matched) {
            // An entry decided.
        } else if ctx.default_deny && self.localhost_allowed(subject, dir, peer, ctx.has_rules) {
            v.reason = Reason::AllowLocalhost;
        } else if ctx.default_deny {
            v.decision = Decision::Denied;
            v.reason = Reason::DefaultDeny;
            if !name_default_deny {
                return v;
            }
            let (by, text) = ctx
                .default_deny_by
                .get_or_init(|| self.default_deny_names(ctx.forced, &ctx.default_deny_rules));
            v.default_deny_by = Arc::clone(by);
            v.default_deny_text.clone_from(text);
        } else {
            v.reason = Reason::NoDefaultDeny;
        }
        v
    }

    /// The names of what makes a default deny (the forcing setting, then
    /// each rule as `policy (location)`) and their capped text, formatted
    /// once per distinct list: contexts with the same rules share them.
    fn default_deny_names(
        &self,
        forced: Option<&'static str>,
        rules: &[&'a Rule],
    ) -> (Arc<[String]>, String) {
        let key = (
            forced,
            rules.iter().map(|r| *r as *const Rule as usize).collect(),
        );
        let known = |m: &std::sync::Mutex<crate::engine::DefaultDenyNames>| {
            m.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
                .cloned()
        };
        if let Some(v) = known(&self.default_deny_names) {
            return v;
        }
        let by: Arc<[String]> = forced
            .map(str::to_string)
            .into_iter()
            .chain(
                rules
                    .iter()
                    .map(|r| format!("{} ({})", r.origin.policy.short(), r.origin.location)),
            )
            .collect();
        let text = capped_head(by.iter(), by.len());
        self.default_deny_names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_insert((by, text))
            .clone()
    }

    /// The peer index of a grouped context, built once the full scans
    /// made so far have visited about as many entries as building it reads.
    fn peer_index<'c>(&self, ctx: &'c SideContext<'a>) -> Option<&'c PeerIndex> {
        if !ctx.grouped {
            return None;
        }
        if let Some(index) = ctx.index.get() {
            return Some(index);
        }
        let n = ctx.entries.len() as u64;
        if ctx.scanned.fetch_add(n, Ordering::Relaxed) + n < ctx.index_cost {
            return None;
        }
        Some(ctx.index.get_or_init(|| {
            PeerIndex::build(
                self,
                ctx.groups.iter().map(|g| GroupView {
                    entry: g.entry,
                    slots: &g.slots,
                    cidr_only: g.cidr_only,
                }),
                ctx.entries
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.unevaluable)
                    .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX)),
            )
        }))
    }
}

/// What building a context's peer index reads, in entry visits: a word of
/// each group's selector bitsets per 64 identities (a few words cost
/// about one entry's port and peer test).
fn index_cost(engine: &Engine<'_>, groups: usize, entries: usize) -> u64 {
    let words = engine.identities.len().div_ceil(64) as u64;
    (groups as u64).saturating_mul(words / 4 + 1) + entries as u64
}

impl<'a> SideContext<'a> {
    /// The direction of the side.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Whether the peer index has been built (after enough decisions).
    pub fn has_peer_index(&self) -> bool {
        self.index.get().is_some()
    }

    /// The allow entries of the side (neither deny nor pass), in entry
    /// order (near misses).
    pub(crate) fn allow_entries(&self) -> impl Iterator<Item = &'a Entry> + '_ {
        self.entries
            .iter()
            .map(|s| s.entry)
            .filter(|e| e.is_allow())
    }

    /// The `fromRequires`/`toRequires` selectors of the allow entries.
    pub(crate) fn requires_allow(&self) -> &[&'a Selector] {
        &self.requires_allow
    }
}
