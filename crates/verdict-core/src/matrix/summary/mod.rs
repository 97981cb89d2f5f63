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
//!  per candidate class pair: the positions of the sets holding the other end
//!    in each side, from one sweep of a side's sets per class (held.rs): pass 1 by
//!    source (egress sides), pass 2 by destination (ingress sides, pairs counting-sorted)
//!  one cell per distinct (view of each side, host?), on one representative pair;
//!    a view is the side's state + the content of the held entries (views.rs)
//!  rows: class pairs with equal cells merged, over sources per destination
//!  class, then over destinations per source group
//! ```
//!
//! Files: `classes.rs` (signatures, refinement), `candidates.rs` (class
//! pairs), `held.rs` (sweeps of held sets), `views.rs` (cell memo keys by
//! content), `rows.rs` (rows, groups, expansion); this file evaluates the
//! cells of the candidate pairs.
//!
//! A "side" is compared by its entries (peer set by address, ports,
//! decision, tier, level, proxy, rule) and state, so two identities
//! selected by the same rules have the same side. [`Summary::expand`]
//! gives one cell per connected identity pair, in the order and with the
//! content of [`crate::matrix::matrix_by_pairs`] (checked by the tests).

mod candidates;
mod classes;
mod held;
mod rows;
mod views;

use crate::engine::Engine;
use crate::matrix::{
    node_matches, resolve_for_matrix, CellData, Ctx, MatrixOptions, Node, PortRange, Scratch,
};
use candidates::candidates;
use classes::{signatures, Classes, Sets};
use held::Sweep;
use rustc_hash::FxHashMap;
use serde::Serialize;
use views::{RunCache, Views};

const NONE: u32 = u32::MAX;

/// Identities (or CIDR selections) named together by rows: every member
/// of a row's source group reaches every member of its destination group
/// alike. An identity can be a member of several groups.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// Sorted by name (then identity number). Shared: an identity is a
    /// member of many groups on dense clusters (a million mentions of a
    /// few thousand nodes), each mention a pointer, not a copy.
    pub members: Vec<std::sync::Arc<Node>>,
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

/// Cells evaluated by [`summarise`] (distinct views of both sides; the benchmark's
/// `matrix_cell_evaluations` counter).
static CELL_EVALUATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Cells evaluated so far by every matrix of this process (one per
/// distinct combination of the deciding sides and entries).
pub fn cell_evaluations() -> usize {
    CELL_EVALUATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// (class, set position) entries written by the sweeps of the sides' sets
/// (held.rs; the benchmark's `matrix_held_set_visits` counter).
static HELD_SET_VISITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// (class, set position) entries written so far by every matrix of this
/// process to find which sets of a side hold each class of peers (one
/// sweep per side of a class with candidate pairs).
pub fn held_set_visits() -> usize {
    HELD_SET_VISITS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Which peers' sides are to be computed: a pair is kept only when its
/// source's egress side (`src`) or its destination's ingress side (`dst`)
/// is marked (`verdict diff`: the sides that changed).
pub(crate) struct Restrict {
    pub(crate) src: Vec<bool>,
    pub(crate) dst: Vec<bool>,
}

impl Restrict {
    pub(crate) fn src(&self, q: usize) -> bool {
        self.src.get(q).copied().unwrap_or(true)
    }

    pub(crate) fn dst(&self, q: usize) -> bool {
        self.dst.get(q).copied().unwrap_or(true)
    }
}

/// A cell as pass 2 keeps it: its rules as numbers in [`Texts`] (the
/// texts of a cell's rules repeat across hundreds of thousands of cells on
/// the dense clusters). Numbers are given by text, so two cells have equal
/// rule lists exactly when their texts are equal, in the same order.
pub(super) struct Cell {
    pub(super) ports: Vec<PortRange>,
    pub(super) proxied: bool,
    pub(super) deny_decided: bool,
    pub(super) rules: Vec<u32>,
}

/// Every rule text of the cells, once.
#[derive(Default)]
pub(super) struct Texts {
    at: FxHashMap<String, u32>,
    pub(super) texts: Vec<String>,
}

impl Texts {
    /// The number of text `t`.
    fn number(&mut self, t: String) -> u32 {
        if let Some(&i) = self.at.get(&t) {
            return i;
        }
        let i = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        self.texts.push(t.clone());
        self.at.insert(t, i);
        i
    }

    fn cell(&mut self, c: CellData) -> Cell {
        let rules = c.rules.into_iter().map(|t| self.number(t)).collect();
        Cell {
            ports: c.ports,
            proxied: c.proxied,
            deny_decided: c.deny_decided,
            rules,
        }
    }
}

/// The hash of a cell's content: cells are interned by content through
/// it (the table holds numbers, not a second copy of the cell).
fn cell_hash(c: &Cell) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    (&c.ports, c.proxied, c.deny_decided, &c.rules).hash(&mut h);
    h.finish()
}

/// Whether two cells have the same content.
fn same_cell(a: &Cell, b: &Cell) -> bool {
    a.ports == b.ports
        && a.proxied == b.proxied
        && a.deny_decided == b.deny_decided
        && a.rules == b.rules
}

/// Pairs of pass 2 from which its destinations are split into ranges
/// computed on threads of their own (below: one range, one thread).
const PARALLEL_PAIRS: usize = 1 << 16;

/// No cell (the pair is not connected).
const EMPTY: usize = usize::MAX;

/// Cells interned by content, with the texts of their rules.
#[derive(Default)]
struct CellTable {
    ids: FxHashMap<u64, Vec<usize>>,
    data: Vec<Cell>,
    texts: Texts,
}

impl CellTable {
    /// The number of the cell `c` (its rules' texts numbered here).
    fn add(&mut self, c: CellData) -> usize {
        let c = self.texts.cell(c);
        self.intern(c)
    }

    /// The number of the cell of `c`'s content, `c` added if new.
    fn intern(&mut self, c: Cell) -> usize {
        let ids = self.ids.entry(cell_hash(&c)).or_default();
        let data = &mut self.data;
        let same = ids
            .iter()
            .copied()
            .find(|&i| data.get(i).is_some_and(|x| same_cell(x, &c)));
        same.unwrap_or_else(|| {
            let next = data.len();
            ids.push(next);
            data.push(c);
            next
        })
    }
}

/// What pass 2 finds for a range of destination classes: its cells
/// (source class, destination class, cell number in its table).
#[derive(Default)]
struct DstPart {
    cells: Vec<(u32, u32, usize)>,
    table: CellTable,
    /// Cells evaluated (distinct memo keys of the range).
    evaluations: usize,
    /// Held-set visits of the range's sweeps.
    visits: usize,
}

impl DstPart {
    /// Adds `other`'s cells, its cells and rule texts renumbered into
    /// this table by content.
    fn merge(&mut self, other: DstPart) {
        let texts: Vec<u32> = other
            .table
            .texts
            .texts
            .into_iter()
            .map(|t| self.table.texts.number(t))
            .collect();
        let ids: Vec<usize> = other
            .table
            .data
            .into_iter()
            .map(|mut c| {
                for r in &mut c.rules {
                    *r = texts.get(*r as usize).copied().unwrap_or(u32::MAX);
                }
                self.table.intern(c)
            })
            .collect();
        self.cells.extend(
            other
                .cells
                .into_iter()
                .map(|(s, d, id)| (s, d, ids.get(id).copied().unwrap_or(EMPTY))),
        );
        self.evaluations += other.evaluations;
        self.visits += other.visits;
    }
}

/// Destination ranges `(from, to)` of about equal numbers of pairs, at
/// most `parts` of them; `start` holds each destination's first pair
/// (counting-sort offsets, one more than the destinations).
fn ranges_by_work(start: &[u32], parts: usize) -> Vec<(usize, usize)> {
    let n = start.len().saturating_sub(1);
    let total = start.last().copied().unwrap_or(0) as usize;
    let parts = parts.max(1);
    let mut out = Vec::new();
    let mut lo = 0;
    for k in 1..parts {
        let goal = total * k / parts;
        let hi = start.partition_point(|&x| (x as usize) < goal).clamp(lo, n);
        if hi > lo {
            out.push((lo, hi));
            lo = hi;
        }
    }
    out.push((lo, n));
    out
}

/// What decides a cell: the view (views.rs: side state and the content of
/// the entries that hold the other end) of each side, and whether each end
/// is the host. Two class pairs with equal keys have equal cells, so each
/// key is computed once.
type MemoKey = (u32, bool, u32, bool);

/// Computes the matrix by groups.
pub fn summarise(engine: &Engine, opts: &MatrixOptions) -> Summary {
    let policies = resolve_for_matrix(engine);
    let ctx = Ctx::new(engine, &policies);
    build_with(&ctx, opts, None, true)
}

/// [`summarise`] without rules (`verdict report` and the matrix's text,
/// CSV, DOT and Mermaid forms show none): cells are told apart only by
/// what they let through (ports, proxied, deny-decided), so rows that
/// [`summarise`] keeps apart only by their rules are one row here, and
/// every row's `rules` is empty.
pub fn summarise_without_rules(engine: &Engine, opts: &MatrixOptions) -> Summary {
    let policies = crate::matrix::resolve_for_matrix_without_rules(engine);
    summarise_maps_without_rules(engine, &policies, opts)
}

/// [`summarise_without_rules`] of maps already built (the maps of
/// `matrix_plan`, with or without their rules: the rows name none).
pub(crate) fn summarise_maps_without_rules(
    engine: &Engine,
    maps: &[crate::resolved::ResolvedPolicy],
    opts: &MatrixOptions,
) -> Summary {
    build_with(&Ctx::new(engine, maps), opts, None, false)
}

/// The matrix by groups of the pairs `restrict` marks.
pub(crate) fn build(ctx: &Ctx, opts: &MatrixOptions, restrict: Option<&Restrict>) -> Summary {
    build_with(ctx, opts, restrict, true)
}

/// [`build`], the rows' rules named when `rules`.
fn build_with(
    ctx: &Ctx,
    opts: &MatrixOptions,
    restrict: Option<&Restrict>,
    rules: bool,
) -> Summary {
    build_in(ctx, opts, restrict, rules, None, None)
}

/// [`build_with`], the candidates in `ranges` source ranges and pass 2
/// in `ranges` destination ranges (`None`: one per thread from
/// [`PARALLEL_PAIRS`] pairs, else one; the candidates likewise).
/// `lookups`: how the held lists are found (see [`Sweep::sweep`]; `None`:
/// by cost, `Some(true)`: lookups only, `Some(false)`: sweeps only).
fn build_in(
    ctx: &Ctx,
    opts: &MatrixOptions,
    restrict: Option<&Restrict>,
    rules: bool,
    ranges: Option<usize>,
    lookups: Option<bool>,
) -> Summary {
    let total = ctx.nodes.len();
    let n = ctx.n;
    let sig = signatures(&ctx.ingress, &ctx.egress, rules);
    // Initial classes of both roles.
    let mut src0 = vec![NONE; total];
    let mut dst0 = vec![NONE; total];
    let mut init: FxHashMap<(bool, bool, bool, u32, bool, bool), u32> = FxHashMap::default();
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
        let mut key = |sg: u32, role: bool| {
            let next = u32::try_from(init.len()).unwrap_or(NONE - 1);
            *init
                .entry((q < n, ctx.is_host(q), m, sg, role, marked(role)))
                .or_insert(next)
        };
        let es = pol
            .and_then(|pi| sig.egress.get(pi).copied())
            .unwrap_or(NONE);
        let is = pol
            .and_then(|pi| sig.ingress.get(pi).copied())
            .unwrap_or(NONE);
        if let (Some(s), Some(d)) = (src0.get_mut(q), dst0.get_mut(q)) {
            *s = key(es, false);
            *d = key(is, true);
        }
    }
    let next = u32::try_from(init.len()).unwrap_or(NONE - 1);
    // A peer's behaviour as a source depends on the ingress sets holding
    // it, as a destination on the egress sets.
    let ing_sets = Sets::new(&ctx.ingress);
    let egr_sets = Sets::new(&ctx.egress);
    let src = Classes::refine(src0, next, &ing_sets, n);
    let dst = Classes::refine(dst0, next, &egr_sets, n);
    let pairs = candidates(ctx, &sig, &src, &dst, &ing_sets, &egr_sets, ranges);
    // The pairs a cell is computed for (the filter and `restrict`).
    let kept = |s: u32, d: u32| {
        let (Some(a), Some(b)) = (src.first(s), dst.first(d)) else {
            return false;
        };
        (matches.get(a).copied().unwrap_or(false) || matches.get(b).copied().unwrap_or(false))
            && restrict.is_none_or(|r| r.src(a) || r.dst(b))
    };
    // The side (and its signature) of a class's first member, egress for
    // a source class, ingress for a destination class; none without a
    // policy or a signature.
    let side_of = |egress: bool, c: u32| {
        let (classes, sigs, sides) = if egress {
            (&src, &sig.egress, &ctx.egress)
        } else {
            (&dst, &sig.ingress, &ctx.ingress)
        };
        let pol = classes
            .first(c)
            .and_then(|i| ctx.policy_of.get(i).copied().flatten());
        let sg = pol.and_then(|pi| sigs.get(pi).copied()).unwrap_or(NONE);
        (pol.and_then(|pi| sides.get(pi)).filter(|_| sg != NONE), sg)
    };
    let egress_of = |s: u32| side_of(true, s);
    let ingress_of = |d: u32| side_of(false, d);
    // Pass 1, by source class (the candidates' order): the egress held
    // list and view of every pair, from one sweep of the source's egress
    // side (views cached per list within the run: one signature).
    let mut views = Views::new(sig.sides.len(), !rules);
    let mut run_views = RunCache::default();
    let mut from_sweep = Sweep::new(&dst, lookups);
    let mut wanted: Vec<u32> = Vec::new();
    let mut from: Vec<(u32, u32)> = vec![(0, 0); pairs.len()];
    let mut at = 0;
    for run in pairs.chunk_by(|x, y| x >> 32 == y >> 32) {
        let Some(&first) = run.first() else {
            continue;
        };
        let (side, sg) = egress_of((first >> 32) as u32);
        // The run's destinations (pairs are sorted: ascending, distinct).
        wanted.clear();
        wanted.extend(run.iter().map(|pr| (pr & 0xffff_ffff) as u32));
        from_sweep.sweep(side, &egr_sets, &dst, &wanted);
        run_views.clear();
        for (slot, pr) in from.iter_mut().skip(at).zip(run) {
            let list = from_sweep.held((pr & 0xffff_ffff) as u32);
            let view = run_views.get_or(list, || {
                views.view(side, sg, false, list, from_sweep.list(list))
            });
            *slot = (list, view);
        }
        at += run.len();
    }
    // Pass 2, by destination class: the pairs moved into destination
    // order (a counting sort) with their egress list and view, then per
    // destination one sweep of its ingress side, and the cell memoised by
    // the two views and interned by content.
    let mut start = vec![0u32; dst.len() + 1];
    for pr in &pairs {
        if let Some(x) = start.get_mut((pr & 0xffff_ffff) as usize + 1) {
            *x += 1;
        }
    }
    for i in 1..start.len() {
        let prev = start.get(i - 1).copied().unwrap_or(0);
        if let Some(x) = start.get_mut(i) {
            *x += prev;
        }
    }
    let mut by_dst: Vec<(u32, u32, u32)> = vec![(0, 0, 0); pairs.len()];
    {
        let mut fill = start.clone();
        for (pr, &(list, view)) in pairs.iter().zip(&from) {
            if let Some(at) = fill.get_mut((pr & 0xffff_ffff) as usize) {
                if let Some(slot) = by_dst.get_mut(*at as usize) {
                    *slot = ((pr >> 32) as u32, list, view);
                }
                *at += 1;
            }
        }
    }
    drop((pairs, from));
    // Destinations in ranges of about equal pairs, one per thread (one
    // range below PARALLEL_PAIRS pairs); each range's cells interned by
    // content in its own table, the tables then merged by content, so the
    // cells are the same whatever the number of ranges.
    let parts = ranges.unwrap_or(if by_dst.len() < PARALLEL_PAIRS {
        1
    } else {
        crate::threads()
    });
    let ranges = ranges_by_work(&start, parts);
    let dst_part = |(lo_d, hi_d): (usize, usize), mut views: Views| {
        let mut to_sweep = Sweep::new(&src, lookups);
        let mut wanted: Vec<u32> = Vec::new();
        let mut run_views = RunCache::default();
        let mut scratch = Scratch::default();
        scratch.without_rules = !rules;
        let mut memo: FxHashMap<MemoKey, usize> = FxHashMap::default();
        let mut table = CellTable::default();
        let mut cells: Vec<(u32, u32, usize)> = Vec::new();
        for d in lo_d..hi_d {
            let (Some(&lo), Some(&hi)) = (start.get(d), start.get(d + 1)) else {
                continue;
            };
            if lo == hi {
                continue;
            }
            let d = u32::try_from(d).unwrap_or(NONE);
            let (to_side, to_sig) = ingress_of(d);
            let run = by_dst.get(lo as usize..hi as usize).unwrap_or(&[]);
            wanted.clear();
            wanted.extend(run.iter().map(|&(s, _, _)| s));
            wanted.sort_unstable();
            wanted.dedup();
            to_sweep.sweep(to_side, &ing_sets, &src, &wanted);
            run_views.clear();
            for &(s, from_list, from_view) in run {
                if !kept(s, d) {
                    continue;
                }
                let (Some(a), Some(b)) = (src.first(s), dst.first(d)) else {
                    continue;
                };
                let to_list = to_sweep.held(s);
                let to_view = run_views.get_or(to_list, || {
                    views.view(to_side, to_sig, true, to_list, to_sweep.list(to_list))
                });
                let key: MemoKey = (to_view, ctx.is_host(a), from_view, ctx.is_host(b));
                let id = match memo.get(&key) {
                    Some(&id) => id,
                    None => {
                        let held = (to_sweep.list(to_list), from_sweep.list(from_list));
                        let id = match ctx.cell_held(a, b, held, &mut scratch) {
                            Some(c) => table.add(c),
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
        }
        DstPart {
            cells,
            table,
            evaluations: memo.len(),
            visits: to_sweep.visits,
        }
    };
    let parts: Vec<DstPart> = if let [r] = ranges.as_slice() {
        vec![dst_part(*r, views)]
    } else {
        let (dst_part, sides) = (&dst_part, sig.sides.len());
        std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .iter()
                .map(|&r| scope.spawn(move || dst_part(r, Views::new(sides, !rules))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    drop(by_dst);
    // The first range's table is kept; the others are merged into it.
    let mut parts = parts.into_iter();
    let mut whole = parts.next().unwrap_or_default();
    for part in parts {
        whole.merge(part);
    }
    let DstPart {
        mut cells,
        table,
        evaluations,
        visits,
    } = whole;
    let CellTable {
        data: cell_data,
        texts,
        ..
    } = table;
    // The cells in the candidates' order, cells numbered by first
    // appearance in it (the order the rows are built in).
    cells.sort_unstable_by_key(|&(s, d, _)| (s, d));
    let mut renumber = vec![NONE as usize; cell_data.len()];
    let mut order: Vec<usize> = Vec::with_capacity(cell_data.len());
    for c in &mut cells {
        if let Some(r) = renumber.get_mut(c.2) {
            if *r == NONE as usize {
                *r = order.len();
                order.push(c.2);
            }
            c.2 = *r;
        }
    }
    let mut slots: Vec<Option<Cell>> = cell_data.into_iter().map(Some).collect();
    let cell_data: Vec<Cell> = order
        .iter()
        .filter_map(|&i| slots.get_mut(i).and_then(Option::take))
        .collect();
    CELL_EVALUATIONS.fetch_add(evaluations, std::sync::atomic::Ordering::Relaxed);
    HELD_SET_VISITS.fetch_add(
        visits + from_sweep.visits,
        std::sync::atomic::Ordering::Relaxed,
    );
    rows::summary(
        ctx,
        opts,
        cells,
        cell_data,
        rules.then_some(texts.texts.as_slice()),
        &src,
        &dst,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The candidates found by source ranges and pass 2 split into
    /// destination ranges (cells interned per range, then merged by
    /// content) give the summary of one range, rules named or not, on
    /// synthetic clusters of both shapes.
    #[test]
    fn split_pass_two_equals_one_range() {
        let mut compared = 0;
        for shape in [crate::synth::Shape::Standard, crate::synth::Shape::Dense] {
            let spec = crate::synth::SynthSpec {
                pods: 4000,
                policies: 400,
                seed: 42,
            };
            let inv = crate::synth::load_shaped(&spec, shape);
            let engine = Engine::new(&inv);
            let maps = resolve_for_matrix(&engine);
            let ctx = Ctx::new(&engine, &maps);
            for rules in [true, false] {
                let opts = MatrixOptions::default();
                let one = build_in(&ctx, &opts, None, rules, Some(1), None);
                let json = |s: &Summary| serde_json::to_string(s).unwrap();
                compared += one.rows.len();
                for parts in [2, 3, 7] {
                    let split = build_in(&ctx, &opts, None, rules, Some(parts), None);
                    assert_eq!(
                        json(&one),
                        json(&split),
                        "{shape:?} rules={rules} parts={parts}"
                    );
                }
                // The held lists found by lookups of the wanted classes
                // only, or by sweeps of every set, give the same summary.
                for lookups in [true, false] {
                    let forced = build_in(&ctx, &opts, None, rules, None, Some(lookups));
                    assert_eq!(
                        json(&one),
                        json(&forced),
                        "{shape:?} rules={rules} lookups={lookups}"
                    );
                }
            }
        }
        assert!(compared > 1000, "{compared} rows compared");
    }

    /// Ranges cover every destination once, in order, at most `parts`.
    #[test]
    fn ranges_cover_every_destination_in_order() {
        let start = [0u32, 0, 5, 5, 9, 20, 20, 21];
        for parts in 1..10 {
            let r = ranges_by_work(&start, parts);
            assert!(r.len() <= parts);
            assert_eq!(r.first().map(|x| x.0), Some(0));
            assert_eq!(r.last().map(|x| x.1), Some(start.len() - 1));
            assert!(r.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
        }
    }
}
