//! The matrix by groups: identities that every policy treats alike share
//! one row, so the work (and the summarised output) grows with the number
//! of distinct behaviours, not with the number of connected pairs.
//!
//! ```text
//!  source role of a peer      = (kind, host?, filter match, its egress side, the ingress peer sets holding it)
//!  destination role of a peer = (kind, host?, filter match, its ingress side, the egress peer sets holding it)
//!  cell(a, b) depends only on (source class of a, destination class of b):
//!    b's ingress entries holding a + a's egress entries holding b decide it
//!  classes: partition refinement by every distinct peer set (cost: the sets' sizes)
//!  candidate class pairs: each side's allow sets as lists of classes
//!  one cell per candidate class pair, tested on one representative pair
//!  rows: class pairs with equal cells merged, over sources per destination
//!  class, then over destinations per source group
//! ```
//!
//! A "side" is compared by its entries (peer set by address, ports,
//! decision, tier, level, proxy, rule) and state, so two identities
//! selected by the same rules have the same side. [`Summary::expand`]
//! gives one cell per connected identity pair, in the order and with the
//! content of [`crate::matrix::matrix_by_pairs`] (checked by the tests).

use crate::engine::{Decision, Engine};
use crate::matrix::{
    node_matches, resolve_for_matrix, Cell, Ctx, Matrix, MatrixOptions, Node, PortRange, Scratch,
    Side,
};
use crate::peerset::PeerSet;
use crate::policy::{Protocol, Tier};
use serde::Serialize;
use std::collections::HashMap;

const NONE: u32 = u32::MAX;

/// Identities (or CIDR selections) named together by rows: every member
/// of a row's source group reaches every member of its destination group
/// alike. An identity can be a member of several groups.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Sorted by name (then identity number).
    pub members: Vec<Node>,
}

/// Every member of group `from` reaches every member of group `to` on
/// `ports`.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Index into [`Summary::groups`].
    pub from: usize,
    pub to: usize,
    pub ports: Vec<PortRange>,
    pub proxied: bool,
    pub deny_decided: bool,
    pub rules: Vec<String>,
    /// Identity pairs the row stands for (`from` members x `to` members).
    pub connections: usize,
}

/// The matrix as rows between groups (`verdict matrix --summarise`; its
/// JSON form is the serde form).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub groups: Vec<Group>,
    pub rows: Vec<Row>,
    pub open_ingress: Vec<String>,
    pub open_egress: Vec<String>,
    pub identities: usize,
    /// Identity pairs the rows stand for (the cells of the pair form).
    pub connections: usize,
    /// Per group and member: (rank of its name, rank of its identity), the
    /// order of the expanded cells.
    #[serde(skip)]
    keys: Vec<Vec<(u32, u32)>>,
}

/// One entry of a side, as compared between subjects (borrowed: no copy
/// per subject).
#[derive(PartialEq, Eq, Hash)]
struct EntryKey<'p, 'r> {
    peers: usize,
    protocol: Protocol,
    from_port: u16,
    to_port: u16,
    decision: Decision,
    tier: Tier,
    level: u32,
    pass: bool,
    proxied: &'p [&'r str],
    origins: Vec<usize>,
}

/// A cell's content, compared between class pairs.
type CellKey = (Vec<PortRange>, bool, bool, Vec<String>);

type SideKey<'p, 'r> = (bool, bool, bool, Vec<EntryKey<'p, 'r>>);

fn side_key<'p, 'r>(s: &Side<'p, 'r>) -> SideKey<'p, 'r> {
    let mut entries = Vec::new();
    for (_, es) in &s.by_set {
        for e in es {
            entries.push(EntryKey {
                peers: std::ptr::from_ref::<PeerSet>(&e.peers) as usize,
                protocol: e.protocol,
                from_port: e.from_port,
                to_port: e.to_port,
                decision: e.decision,
                tier: e.tier,
                level: e.level,
                pass: e.pass,
                proxied: &e.proxied,
                origins: e
                    .origins()
                    .map(|o| std::ptr::from_ref(o) as usize)
                    .collect(),
            });
        }
    }
    (
        s.state.enforced,
        s.state.default_deny,
        s.state.allow_localhost,
        entries,
    )
}

/// What decides a cell: each side's signature (equal signatures: equal
/// entries in the same order, so equal peer-set lists) with the indices of
/// its peer sets that hold the other end, and whether each end is the host.
/// Two class pairs with equal keys have equal cells, so each key is
/// computed once: the sources of many classes reaching one destination
/// through the same rules cost one evaluation, not one per class.
type MemoKey = (u32, Vec<u32>, bool, u32, Vec<u32>, bool);

/// Indices of the peer sets of `side` that hold `peer`, into `out`.
fn held_sets(side: Option<&Side>, peer: crate::peerset::PeerRef, out: &mut Vec<u32>) {
    out.clear();
    for (i, (set, _)) in side.into_iter().flat_map(|s| s.by_set.iter()).enumerate() {
        if set.contains(peer) {
            out.push(u32::try_from(i).unwrap_or(NONE));
        }
    }
}

/// Members of a peer set as dense peer numbers (identities, then CIDR
/// selections after the `n` identities).
fn members(set: &PeerSet, n: usize) -> impl Iterator<Item = usize> + '_ {
    set.identities()
        .iter()
        .map(|&i| i as usize)
        .chain(set.cidrs().iter().map(move |&c| n + c as usize))
}

/// Splits every class by membership in each set: members move to a new
/// class, the rest stay. Cost: the sum of the sets' sizes.
fn refine(class: &mut [u32], next: &mut u32, sets: &[&PeerSet], n: usize) {
    let mut stamp: Vec<u32> = vec![NONE; *next as usize];
    let mut to: Vec<u32> = vec![0; *next as usize];
    for (si, set) in sets.iter().enumerate() {
        let si = u32::try_from(si).unwrap_or(NONE - 1);
        for q in members(set, n) {
            let Some(slot) = class.get_mut(q) else {
                continue;
            };
            let c = *slot as usize;
            let Some(st) = stamp.get_mut(c) else {
                continue;
            };
            if *st != si {
                *st = si;
                if let Some(t) = to.get_mut(c) {
                    *t = *next;
                }
                *next += 1;
                stamp.push(NONE);
                to.push(0);
            }
            if let Some(&t) = to.get(c) {
                *slot = t;
            }
        }
    }
}

/// Renumbers classes densely in the order of their first peer; returns the
/// number of classes.
fn compact(class: &mut [u32]) -> usize {
    let mut ids: HashMap<u32, u32> = HashMap::new();
    for c in class.iter_mut().filter(|c| **c != NONE) {
        let next = u32::try_from(ids.len()).unwrap_or(NONE);
        *c = *ids.entry(*c).or_insert(next);
    }
    ids.len()
}

/// The distinct peer sets of `sides` (by address), in first-seen order.
fn distinct_sets<'p>(sides: &[Side<'p, '_>]) -> Vec<&'p PeerSet> {
    let mut seen: HashMap<usize, ()> = HashMap::new();
    let mut out = Vec::new();
    for s in sides {
        for (set, _) in &s.by_set {
            if seen
                .insert(std::ptr::from_ref::<PeerSet>(*set) as usize, ())
                .is_none()
            {
                out.push(*set);
            }
        }
    }
    out
}

/// Per set (by address): the classes of its members, sorted.
fn class_lists(sets: &[&PeerSet], class: &[u32], n: usize) -> HashMap<usize, Vec<u32>> {
    sets.iter()
        .map(|set| {
            let mut v: Vec<u32> = members(set, n)
                .filter_map(|q| class.get(q).copied())
                .filter(|&c| c != NONE)
                .collect();
            v.sort_unstable();
            v.dedup();
            (std::ptr::from_ref::<PeerSet>(*set) as usize, v)
        })
        .collect()
}

/// Cells evaluated by [`summarise`] (distinct decisions; the benchmark's
/// `matrix_cell_evaluations` counter).
static CELL_EVALUATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Cells evaluated so far by every matrix of this process (one per
/// distinct combination of the deciding sides and entries).
pub fn cell_evaluations() -> usize {
    CELL_EVALUATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Which peers' sides are to be computed: a pair is kept only when its
/// source's egress side (`src`) or its destination's ingress side (`dst`)
/// is marked (`verdict diff`: the sides that changed).
pub(crate) struct Restrict {
    pub(crate) src: Vec<bool>,
    pub(crate) dst: Vec<bool>,
}

impl Restrict {
    fn src(&self, q: usize) -> bool {
        self.src.get(q).copied().unwrap_or(true)
    }

    fn dst(&self, q: usize) -> bool {
        self.dst.get(q).copied().unwrap_or(true)
    }
}

/// Computes the matrix by groups.
pub fn summarise(engine: &Engine, opts: &MatrixOptions) -> Summary {
    let policies = resolve_for_matrix(engine);
    let ctx = Ctx::new(engine, &policies);
    build(&ctx, opts, None)
}

/// The matrix by groups of the pairs `restrict` marks.
pub(crate) fn build(ctx: &Ctx, opts: &MatrixOptions, restrict: Option<&Restrict>) -> Summary {
    let total = ctx.nodes.len();
    let n = ctx.n;
    // Side signatures.
    let mut sig_ids: HashMap<SideKey, u32> = HashMap::new();
    let mut ing_sig: Vec<u32> = Vec::with_capacity(ctx.ingress.len());
    let mut egr_sig: Vec<u32> = Vec::with_capacity(ctx.egress.len());
    for (sides, out) in [(&ctx.ingress, &mut ing_sig), (&ctx.egress, &mut egr_sig)] {
        for s in sides {
            let next = u32::try_from(sig_ids.len()).unwrap_or(NONE - 1);
            out.push(*sig_ids.entry(side_key(s)).or_insert(next));
        }
    }
    // Initial classes of both roles.
    let mut src = vec![NONE; total];
    let mut dst = vec![NONE; total];
    let mut init: HashMap<(bool, bool, bool, u32, bool, bool), u32> = HashMap::new();
    let matches: Vec<bool> = ctx
        .nodes
        .iter()
        .map(|nd| nd.as_ref().is_some_and(|nd| node_matches(opts, Some(nd))))
        .collect();
    for q in 0..total {
        if !ctx.nodes.get(q).is_some_and(Option::is_some) {
            continue;
        }
        let pol = ctx.policy_of.get(q).copied().flatten();
        let m = matches.get(q).copied().unwrap_or(false);
        // Marked and unmarked peers never share a class.
        let marked = |role: bool| restrict.is_some_and(|r| if role { r.dst(q) } else { r.src(q) });
        let mut key = |sig: u32, role: bool| {
            let next = u32::try_from(init.len()).unwrap_or(NONE - 1);
            *init
                .entry((q < n, ctx.is_host(q), m, sig, role, marked(role)))
                .or_insert(next)
        };
        let es = pol.and_then(|pi| egr_sig.get(pi).copied()).unwrap_or(NONE);
        let is = pol.and_then(|pi| ing_sig.get(pi).copied()).unwrap_or(NONE);
        if let (Some(s), Some(d)) = (src.get_mut(q), dst.get_mut(q)) {
            *s = key(es, false);
            *d = key(is, true);
        }
    }
    let mut next = u32::try_from(init.len()).unwrap_or(NONE - 1);
    // A peer's behaviour as a source depends on the ingress sets holding
    // it, as a destination on the egress sets.
    let ing_sets = distinct_sets(&ctx.ingress);
    let egr_sets = distinct_sets(&ctx.egress);
    refine(&mut src, &mut next, &ing_sets, n);
    refine(&mut dst, &mut next, &egr_sets, n);
    let nsrc = compact(&mut src);
    let ndst = compact(&mut dst);
    let src_lists = class_lists(&ing_sets, &src, n);
    let dst_lists = class_lists(&egr_sets, &dst, n);
    let mut src_members: Vec<Vec<usize>> = vec![Vec::new(); nsrc];
    let mut dst_members: Vec<Vec<usize>> = vec![Vec::new(); ndst];
    for q in 0..total {
        if let Some(v) = src.get(q).and_then(|&c| src_members.get_mut(c as usize)) {
            v.push(q);
        }
        if let Some(v) = dst.get(q).and_then(|&c| dst_members.get_mut(c as usize)) {
            v.push(q);
        }
    }
    let ident_classes = |members: &[Vec<usize>]| -> Vec<u32> {
        (0..members.len())
            .filter(|&c| {
                members
                    .get(c)
                    .and_then(|m| m.first())
                    .is_some_and(|&q| q < n)
            })
            .map(|c| u32::try_from(c).unwrap_or(NONE))
            .collect()
    };
    let (ident_src, ident_dst) = (ident_classes(&src_members), ident_classes(&dst_members));
    // A side is limited when enforced with default deny: it allows only
    // what its allow sets hold. A pair is a candidate only when each side
    // holds the other end in an allow set or is not limited; a limited
    // source pairs through its own allow sets, tested against the
    // destination's allowed sources (a bitset per limited destination
    // class), and unlimited sources pair through the destinations' allow
    // sets. So candidates are (nearly) the connected pairs, not the union
    // of both sides' reach.
    let class_side = |members: &[Vec<usize>], sides: &'_ [Side<'_, '_>], c: usize| {
        members
            .get(c)
            .and_then(|m| m.first())
            .and_then(|&q| ctx.side_of(q, sides))
            .map(|sd| sd.state.enforced && sd.state.default_deny)
            .unwrap_or(false)
    };
    let src_lim: Vec<bool> = (0..nsrc)
        .map(|c| class_side(&src_members, &ctx.egress, c))
        .collect();
    let dst_lim: Vec<bool> = (0..ndst)
        .map(|c| class_side(&dst_members, &ctx.ingress, c))
        .collect();
    let is_lim = |v: &[bool], c: u32| v.get(c as usize).copied().unwrap_or(false);
    let open_src: Vec<u32> = ident_src
        .iter()
        .copied()
        .filter(|&c| !is_lim(&src_lim, c))
        .collect();
    let open_dst: Vec<u32> = ident_dst
        .iter()
        .copied()
        .filter(|&c| !is_lim(&dst_lim, c))
        .collect();
    let allow_sets = |side: &Side| -> Vec<usize> {
        side.by_set
            .iter()
            .filter(|(_, es)| es.iter().any(|e| e.decision == Decision::Allowed))
            .map(|(set, _)| std::ptr::from_ref::<PeerSet>(*set) as usize)
            .collect()
    };
    // Allowed source classes of each limited destination class.
    let words = nsrc.div_ceil(64);
    let mut in_ok: Vec<Vec<u64>> = vec![Vec::new(); ndst];
    for (pi, p) in ctx.policies.iter().enumerate() {
        let (Some(me), Some(side)) = (p.index.map(|i| i as usize), ctx.ingress.get(pi)) else {
            continue;
        };
        let Some(&d) = dst.get(me).filter(|&&d| is_lim(&dst_lim, d)) else {
            continue;
        };
        let Some(bits) = in_ok.get_mut(d as usize).filter(|b| b.is_empty()) else {
            continue;
        };
        bits.resize(words.max(1), 0);
        for key in allow_sets(side) {
            for &c in src_lists.get(&key).into_iter().flatten() {
                if let Some(w) = bits.get_mut(c as usize / 64) {
                    *w |= 1 << (c % 64);
                }
            }
        }
    }
    let allowed_in = |s: u32, d: u32| {
        !is_lim(&dst_lim, d)
            || in_ok
                .get(d as usize)
                .and_then(|b| b.get(s as usize / 64))
                .is_some_and(|w| w & (1 << (s % 64)) != 0)
    };
    // Candidate class pairs, once per (class, side).
    let mut pairs: Vec<u64> = Vec::new();
    let mut done: HashMap<(bool, u32, u32), ()> = HashMap::new();
    let pair = |s: u32, d: u32| (u64::from(s) << 32) | u64::from(d);
    for (pi, p) in ctx.policies.iter().enumerate() {
        let Some(me) = p.index.map(|i| i as usize) else {
            continue;
        };
        let (Some(&d), Some(&s)) = (dst.get(me), src.get(me)) else {
            continue;
        };
        if let (Some(side), Some(&sg), true) = (ctx.ingress.get(pi), ing_sig.get(pi), d != NONE) {
            if done.insert((true, d, sg), ()).is_none() {
                if side.state.enforced {
                    if !side.state.default_deny {
                        pairs.extend(open_src.iter().map(|&c| pair(c, d)));
                    }
                    for key in allow_sets(side) {
                        for &c in src_lists.get(&key).into_iter().flatten() {
                            if !is_lim(&src_lim, c) {
                                pairs.push(pair(c, d));
                            }
                        }
                    }
                }
                // allow-localhost: the node reaches endpoints whose rules do not decide.
                if let (true, Some(&h)) = (
                    p.ingress.allow_localhost,
                    ctx.host.and_then(|h| src.get(h as usize)),
                ) {
                    if h != NONE {
                        pairs.push(pair(h, d));
                    }
                }
            }
        }
        if let (Some(side), Some(&sg), true) = (ctx.egress.get(pi), egr_sig.get(pi), s != NONE) {
            if side.state.enforced && done.insert((false, s, sg), ()).is_none() {
                if !side.state.default_deny {
                    pairs.extend(open_dst.iter().map(|&c| pair(s, c)));
                }
                for key in allow_sets(side) {
                    for &c in dst_lists.get(&key).into_iter().flatten() {
                        if allowed_in(s, c) {
                            pairs.push(pair(s, c));
                        }
                    }
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    // One cell per class pair, on its first members; cells memoised by
    // what decides them and interned by content.
    let mut scratch = Scratch::default();
    let mut memo: HashMap<MemoKey, usize> = HashMap::new();
    let mut cell_ids: HashMap<CellKey, usize> = HashMap::new();
    let mut cell_data: Vec<crate::matrix::CellData> = Vec::new();
    let mut cells: Vec<(u32, u32, usize)> = Vec::new();
    let (mut to_sets, mut from_sets) = (Vec::new(), Vec::new());
    const EMPTY: usize = usize::MAX;
    for pr in pairs {
        let (s, d) = ((pr >> 32) as u32, (pr & 0xffff_ffff) as u32);
        let (Some(&a), Some(&b)) = (
            src_members.get(s as usize).and_then(|m| m.first()),
            dst_members.get(d as usize).and_then(|m| m.first()),
        ) else {
            continue;
        };
        let kept =
            matches.get(a).copied().unwrap_or(false) || matches.get(b).copied().unwrap_or(false);
        if !kept || !restrict.is_none_or(|r| r.src(a) || r.dst(b)) {
            continue;
        }
        let (to_pol, from_pol) = (
            ctx.policy_of.get(b).copied().flatten(),
            ctx.policy_of.get(a).copied().flatten(),
        );
        let to_side = to_pol.and_then(|pi| ctx.ingress.get(pi));
        let from_side = from_pol.and_then(|pi| ctx.egress.get(pi));
        held_sets(to_side, crate::matrix::peer_of(a, n), &mut to_sets);
        held_sets(from_side, crate::matrix::peer_of(b, n), &mut from_sets);
        let key: MemoKey = (
            to_pol
                .and_then(|pi| ing_sig.get(pi).copied())
                .unwrap_or(NONE),
            to_sets.clone(),
            ctx.is_host(a),
            from_pol
                .and_then(|pi| egr_sig.get(pi).copied())
                .unwrap_or(NONE),
            from_sets.clone(),
            ctx.is_host(b),
        );
        let id = match memo.get(&key) {
            Some(&id) => id,
            None => {
                let id = match ctx.cell(a, b, &mut scratch) {
                    Some(c) => {
                        let ck = (c.ports.clone(), c.proxied, c.deny_decided, c.rules.clone());
                        let next = cell_data.len();
                        *cell_ids.entry(ck).or_insert_with(|| {
                            cell_data.push(c);
                            next
                        })
                    }
                    None => EMPTY,
                };
                memo.insert(key, id);
                id
            }
        };
        if id != EMPTY {
            cells.push((s, d, id));
        }
    }
    CELL_EVALUATIONS.fetch_add(memo.len(), std::sync::atomic::Ordering::Relaxed);
    // Display order: names, then identity numbers (as the pair form sorts).
    let (name_rank, id_rank) = ranks(ctx);
    let key_of = |q: usize| {
        (
            name_rank.get(q).copied().unwrap_or(NONE),
            id_rank.get(q).copied().unwrap_or(NONE),
        )
    };
    // Groups: the distinct member sets of the classes in some row.
    let mut group_of: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut group_members: Vec<Vec<usize>> = Vec::new();
    let mut intern = |mut m: Vec<usize>| -> usize {
        m.sort_by_key(|&q| key_of(q));
        let next = group_members.len();
        *group_of.entry(m.clone()).or_insert_with(|| {
            group_members.push(m);
            next
        })
    };
    // Rows: class pairs with the same cell merged, first over sources (per
    // destination class), then over destinations (per source group), so a
    // row is "every member of these -> every member of those".
    let mut by_dst: std::collections::BTreeMap<(u32, usize), Vec<u32>> = Default::default();
    for (s, d, id) in cells {
        by_dst.entry((d, id)).or_default().push(s);
    }
    let union = |classes: &[u32], members: &[Vec<usize>]| -> Vec<usize> {
        classes
            .iter()
            .flat_map(|&c| members.get(c as usize).into_iter().flatten().copied())
            .collect()
    };
    let mut by_src: std::collections::BTreeMap<(usize, usize), Vec<u32>> = Default::default();
    let mut src_group: HashMap<Vec<u32>, usize> = HashMap::new();
    for ((d, id), srcs) in by_dst {
        let g = match src_group.get(&srcs) {
            Some(&g) => g,
            None => {
                let g = intern(union(&srcs, &src_members));
                src_group.insert(srcs, g);
                g
            }
        };
        by_src.entry((g, id)).or_default().push(d);
    }
    let mut rows_raw: Vec<(usize, usize, usize)> = Vec::new();
    for ((g, id), dsts) in by_src {
        rows_raw.push((g, intern(union(&dsts, &dst_members)), id));
    }
    // Groups in the order of their members' keys.
    let mut order: Vec<usize> = (0..group_members.len()).collect();
    let gkeys: Vec<Vec<(u32, u32)>> = group_members
        .iter()
        .map(|m| m.iter().map(|&q| key_of(q)).collect())
        .collect();
    order.sort_by(|&a, &b| gkeys.get(a).cmp(&gkeys.get(b)));
    let mut pos = vec![0usize; order.len()];
    for (i, &g) in order.iter().enumerate() {
        if let Some(p) = pos.get_mut(g) {
            *p = i;
        }
    }
    let groups: Vec<Group> = order
        .iter()
        .map(|&g| Group {
            members: group_members
                .get(g)
                .into_iter()
                .flatten()
                .filter_map(|&q| ctx.nodes.get(q).cloned().flatten())
                .collect(),
        })
        .collect();
    let keys: Vec<Vec<(u32, u32)>> = order
        .iter()
        .map(|&g| gkeys.get(g).cloned().unwrap_or_default())
        .collect();
    let size = |g: usize| groups.get(g).map_or(0, |x| x.members.len());
    let mut rows: Vec<Row> = rows_raw
        .into_iter()
        .filter_map(|(a, b, id)| {
            let c = cell_data.get(id)?;
            let (from, to) = (
                pos.get(a).copied().unwrap_or(0),
                pos.get(b).copied().unwrap_or(0),
            );
            Some(Row {
                from,
                to,
                ports: c.ports.clone(),
                proxied: c.proxied,
                deny_decided: c.deny_decided,
                rules: c.rules.clone(),
                connections: size(from) * size(to),
            })
        })
        .collect();
    rows.sort_by_key(|r| (r.from, r.to));
    let (open_ingress, open_egress) = ctx.open_lists(opts);
    Summary {
        connections: rows.iter().map(|r| r.connections).sum(),
        groups,
        rows,
        open_ingress,
        open_egress,
        identities: ctx.policies.len(),
        keys,
    }
}

/// Per peer: the rank of its name among all names, and its rank in the
/// order of the pair form (identities by number, then CIDR selections).
fn ranks(ctx: &Ctx) -> (Vec<u32>, Vec<u32>) {
    let total = ctx.nodes.len();
    let mut by_name: Vec<(&str, usize)> = ctx
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(q, nd)| nd.as_ref().map(|nd| (nd.name.as_str(), q)))
        .collect();
    by_name.sort_unstable();
    let mut name_rank = vec![NONE; total];
    let mut r = 0u32;
    for (i, &(name, q)) in by_name.iter().enumerate() {
        if i > 0 && by_name.get(i - 1).is_some_and(|p| p.0 != name) {
            r += 1;
        }
        if let Some(slot) = name_rank.get_mut(q) {
            *slot = r;
        }
    }
    let id_key = |q: usize| -> u64 {
        match ctx
            .nodes
            .get(q)
            .and_then(Option::as_ref)
            .and_then(|nd| nd.identity)
        {
            Some(id) if q < ctx.n => u64::from(id),
            _ => (1 << 32) + u64::try_from(q).unwrap_or(u64::MAX >> 1),
        }
    };
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_unstable_by_key(|&q| id_key(q));
    let mut id_rank = vec![NONE; total];
    for (i, &q) in order.iter().enumerate() {
        if let Some(slot) = id_rank.get_mut(q) {
            *slot = u32::try_from(i).unwrap_or(NONE);
        }
    }
    (name_rank, id_rank)
}

impl Summary {
    /// Calls `f` for every connected identity pair (from, to, its row), in
    /// the order of the pair form: by the names of both ends, then by
    /// identity number. Work and memory: the output, and per source its
    /// own destinations.
    pub fn try_each_cell<E>(
        &self,
        mut f: impl FnMut(&Node, &Node, &Row) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rows_from: Vec<Vec<usize>> = vec![Vec::new(); self.groups.len()];
        for (ri, r) in self.rows.iter().enumerate() {
            if let Some(v) = rows_from.get_mut(r.from) {
                v.push(ri);
            }
        }
        // Every source, once per group it is a source of.
        let mut sources: Vec<((u32, u32), usize, usize)> = Vec::new();
        for (g, rs) in rows_from.iter().enumerate() {
            if rs.is_empty() {
                continue;
            }
            for (m, &k) in self.keys.get(g).into_iter().flatten().enumerate() {
                sources.push((k, g, m));
            }
        }
        sources.sort_unstable();
        let mut items: Vec<(u32, u32, u32, usize, usize, usize, usize)> = Vec::new();
        for run in sources.chunk_by(|a, b| a.0 .0 == b.0 .0) {
            items.clear();
            for &((_, from_rank), g, m) in run {
                for &ri in rows_from.get(g).into_iter().flatten() {
                    let Some(r) = self.rows.get(ri) else {
                        continue;
                    };
                    for (tm, &(tn, tr)) in self.keys.get(r.to).into_iter().flatten().enumerate() {
                        items.push((tn, from_rank, tr, g, m, tm, ri));
                    }
                }
            }
            items.sort_unstable();
            for &(_, _, _, g, m, tm, ri) in &items {
                let Some(r) = self.rows.get(ri) else {
                    continue;
                };
                let (Some(from), Some(to)) = (
                    self.groups.get(g).and_then(|x| x.members.get(m)),
                    self.groups.get(r.to).and_then(|x| x.members.get(tm)),
                ) else {
                    continue;
                };
                f(from, to, r)?;
            }
        }
        Ok(())
    }

    /// One cell per connected identity pair (the pair form).
    pub fn expand(self) -> Matrix {
        let mut cells = Vec::with_capacity(self.connections);
        let _ = self.try_each_cell(|from, to, r| -> Result<(), ()> {
            cells.push(Cell {
                from: from.clone(),
                to: to.clone(),
                ports: r.ports.clone(),
                proxied: r.proxied,
                deny_decided: r.deny_decided,
                rules: r.rules.clone(),
            });
            Ok(())
        });
        Matrix {
            cells,
            open_ingress: self.open_ingress,
            open_egress: self.open_egress,
            identities: self.identities,
        }
    }
}
