//! The two matrices `verdict diff` compares, computed only where they can
//! differ.
//!
//! ```text
//!  cell(a, b) = f(a's egress side: state + entries whose sets hold b,
//!                 b's ingress side: state + entries whose sets hold a, host?)
//!  peers are matched between the inputs by their node name (what the diff keys on)
//!  a side is unchanged when its state and entries are equal, entry by entry,
//!    its peer sets equal over the matched peers (compared without rules: the
//!    diff reports ports, and a side changed only in its rules changes none)
//!  marked: a's source role when its egress side changed, b's destination role
//!    when its ingress side changed, both roles of a peer on one side only
//!  only the pairs (a, b) with a marked source or a marked destination are computed
//! ```
//!
//! An unmarked pair has the same sides on both inputs, so the same ports:
//! it can add or remove nothing. The matrices returned hold every marked
//! pair's cell (and the full lists of open sides), so [`crate::diff::diff`]
//! finds exactly what it finds between the full matrices. The same idea as
//! [`crate::connectivity_delta`] (only what changed rules can reach), over
//! the matrix's sides instead of the rules, because the two inputs of a
//! diff may differ in workloads and labels as well as in policies. When a
//! node name stands for two peers of one input, the full matrices are
//! computed.
//!
//! Memory: the sides are compared identity by identity (the old and the
//! new map of one matched peer built, compared, dropped), and each input's
//! matrix is then built alone, from maps trimmed to what the marked pairs
//! read: a peer's egress side keeps every entry when its source role is
//! marked, else only the entries whose sets hold a marked destination;
//! its ingress side likewise (states always from all rules). A marked
//! pair's cell reads its sides' entries holding its other end, which the
//! trimmed maps keep, so every marked pair's cell is the full maps' cell;
//! peers whose trimmed sides agree may share a class, and their marked
//! pairs' cells agree as well (equal entries hold the marked other end).

use crate::engine::Engine;
use crate::matrix::{matrix_parties, side, threads, Ctx, Matrix, MatrixOptions, Node, Side};
use crate::matrix_summary::{build, Restrict};
use crate::peerset::PeerSet;
use crate::policy::Direction;
use crate::resolved::{Plan, SetEntry};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::Arc;

/// The matrices of `old` and `new`, each holding (at least) every pair
/// whose cell may differ between them.
pub fn changed_matrices(old: &Engine, new: &Engine) -> (Matrix, Matrix) {
    let (mut lo, mut ln) = (
        Plan::new(old, &matrix_parties(old)),
        Plan::new(new, &matrix_parties(new)),
    );
    // Sides are compared without their rules: a pair whose sides differ
    // only by rules keeps its ports, so the diff (of ports) cannot report
    // it; the matrices of the marked pairs then name their rules.
    lo.set_rules(false);
    ln.set_rules(false);
    let (ro, rn) = match marks(old, &lo, new, &ln) {
        Some((ro, rn)) => (Some(ro), Some(rn)),
        None => (None, None),
    };
    lo.set_rules(true);
    ln.set_rules(true);
    // The trimmed maps are small: both matrices at once.
    std::thread::scope(|scope| {
        let h = scope.spawn(|| restricted(new, &ln, rn.as_ref()));
        let mo = restricted(old, &lo, ro.as_ref());
        let mn = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (mo, mn)
    })
}

/// The matrix of the pairs `r` marks (every pair without `r`), from maps
/// trimmed to the entries those pairs read.
fn restricted(engine: &Engine, plan: &Plan, r: Option<&Restrict>) -> Matrix {
    let opts = MatrixOptions::default();
    let n = engine.identities.len();
    // Marked peers of each role as bitsets over dense peer numbers.
    let bits = |v: &[bool]| {
        let mut out = vec![0u64; v.len().div_ceil(64)];
        for (q, _) in v.iter().enumerate().filter(|(_, m)| **m) {
            if let Some(w) = out.get_mut(q / 64) {
                *w |= 1 << (q % 64);
            }
        }
        out
    };
    let (srcs, dsts) = r.map_or((Vec::new(), Vec::new()), |r| (bits(&r.src), bits(&r.dst)));
    let has = |b: &[u64], q: usize| b.get(q / 64).is_some_and(|w| w & (1 << (q % 64)) != 0);
    let holds = |b: &[u64], set: &PeerSet| {
        set.identities().iter().any(|&i| has(b, i as usize))
            || set.cidrs().iter().any(|&c| has(b, n + c as usize))
    };
    let maps = plan.map_all(
        threads(),
        std::cell::RefCell::<FxHashMap<(usize, bool), bool>>::default,
        |memo, pi| {
            let Some(r) = r else {
                return plan.build(pi);
            };
            let i = plan.index(pi).map(|i| i as usize);
            // An end of a marked pair reads its whole side.
            let (whole_egress, whole_ingress) = match i {
                Some(i) => (r.src(i), r.dst(i)),
                None => (true, true),
            };
            plan.build_where(pi, |dir, _, set| {
                let egress = dir == Direction::Egress;
                if (egress && whole_egress) || (!egress && whole_ingress) {
                    return true;
                }
                // Egress entries read for marked destinations, ingress
                // entries for marked sources.
                *memo
                    .borrow_mut()
                    .entry((std::ptr::from_ref(set) as usize, egress))
                    .or_insert_with(|| holds(if egress { &dsts } else { &srcs }, set))
            })
        },
    );
    let maps: Vec<_> = maps.into_iter().flatten().collect();
    let ctx = Ctx::new(engine, &maps);
    build(&ctx, &opts, r).expand()
}

/// Per shown peer of a matrix: its index by node name (`None`: a name
/// shared by two peers).
fn by_name(nodes: &[Option<Node>]) -> Option<HashMap<&str, usize>> {
    let mut out = HashMap::new();
    for (q, nd) in nodes.iter().enumerate() {
        if let Some(nd) = nd {
            if out.insert(nd.name.as_str(), q).is_some() {
                return None;
            }
        }
    }
    Some(out)
}

/// Compares sides of two matrices over the peers matched by name.
struct Compare {
    /// Identities of each input (CIDR ranks follow).
    n_old: usize,
    n_new: usize,
    /// Old peer -> new peer.
    to_new: Vec<Option<usize>>,
    /// New peer -> whether an old peer matches it.
    matched_new: Vec<bool>,
    sets: FxHashMap<(usize, usize), bool>,
    /// The sets compared so far, kept alive: the memo is keyed by address
    /// and maps are dropped after their comparison.
    alive: Vec<Arc<PeerSet>>,
}

/// Members of a set as dense peer numbers (identities, then CIDR ranks
/// after the `n` identities).
fn members(set: &PeerSet, n: usize) -> impl Iterator<Item = usize> + '_ {
    set.identities()
        .iter()
        .map(|&i| i as usize)
        .chain(set.cidrs().iter().map(move |&c| n + c as usize))
}

impl Compare {
    /// Whether two peer sets hold the same matched peers (a peer of one
    /// input only is marked in both roles, so its membership decides no
    /// compared pair).
    fn same_set(&mut self, a: &Arc<PeerSet>, b: &Arc<PeerSet>) -> bool {
        let key = (Arc::as_ptr(a) as usize, Arc::as_ptr(b) as usize);
        if let Some(&same) = self.sets.get(&key) {
            return same;
        }
        let mut x: Vec<usize> = members(a, self.n_old)
            .filter_map(|q| self.to_new.get(q).copied().flatten())
            .collect();
        let mut y: Vec<usize> = members(b, self.n_new)
            .filter(|&q| self.matched_new.get(q).copied().unwrap_or(false))
            .collect();
        x.sort_unstable();
        y.sort_unstable();
        let same = x == y;
        self.sets.insert(key, same);
        self.alive.extend([a.clone(), b.clone()]);
        same
    }
}

/// Equal entries, rule origins by object and path (not file and line;
/// none when the maps are built without rules).
fn same_entry(a: &SetEntry, b: &SetEntry) -> bool {
    a.protocol == b.protocol
        && a.from_port == b.from_port
        && a.to_port == b.to_port
        && a.decision == b.decision
        && a.tier == b.tier
        && a.level == b.level
        && a.pass == b.pass
        && a.proxied == b.proxied
        && a.origins.len() == b.origins.len()
        && a.origins()
            .zip(b.origins())
            .all(|(x, y)| x.policy == y.policy && x.path == y.path)
}

impl Compare {
    /// Whether two sides decide every matched peer alike (equal state,
    /// entries equal in order).
    fn same_side(&mut self, a: Option<&Side>, b: Option<&Side>) -> bool {
        let (a, b) = match (a, b) {
            (None, None) => return true,
            (Some(a), Some(b)) => (a, b),
            _ => return false,
        };
        if (
            a.state.enforced,
            a.state.default_deny,
            a.state.allow_localhost,
        ) != (
            b.state.enforced,
            b.state.default_deny,
            b.state.allow_localhost,
        ) || a.by_set.len() != b.by_set.len()
        {
            return false;
        }
        for ((_, ea), (_, eb)) in a.by_set.iter().zip(&b.by_set) {
            // A group's entries share its set.
            let (Some(xa), Some(xb)) = (ea.first(), eb.first()) else {
                return false;
            };
            if ea.len() != eb.len()
                || !ea.iter().zip(eb).all(|(x, y)| same_entry(x, y))
                || !self.same_set(&xa.peers, &xb.peers)
            {
                return false;
            }
        }
        true
    }
}

/// Per dense peer number below `n`, the map (plan index) of that identity.
fn policy_of(plan: &Plan, n: usize) -> Vec<Option<usize>> {
    let mut out = vec![None; n];
    for pi in 0..plan.len() {
        if let Some(slot) = plan.index(pi).and_then(|i| out.get_mut(i as usize)) {
            *slot = Some(pi);
        }
    }
    out
}

/// The pairs to compute on each input (`None`: every pair), from the
/// sides of each matched peer, compared one peer at a time.
fn marks(old: &Engine, lo: &Plan, new: &Engine, ln: &Plan) -> Option<(Restrict, Restrict)> {
    let (nodes_o, host_o, n_o) = Ctx::nodes(old, lo.names());
    let (nodes_n, host_n, n_n) = Ctx::nodes(new, ln.names());
    let (no, nn) = (by_name(&nodes_o)?, by_name(&nodes_n)?);
    let mut to_new: Vec<Option<usize>> = vec![None; nodes_o.len()];
    let mut matched_new = vec![false; nodes_n.len()];
    for (name, &q) in &no {
        if let Some(&q2) = nn.get(name) {
            if let (Some(slot), Some(m)) = (to_new.get_mut(q), matched_new.get_mut(q2)) {
                *slot = Some(q2);
                *m = true;
            }
        }
    }
    // Unmatched peers are marked in both roles.
    let mut ro = Restrict {
        src: vec![true; nodes_o.len()],
        dst: vec![true; nodes_o.len()],
    };
    let mut rn = Restrict {
        src: vec![true; nodes_n.len()],
        dst: vec![true; nodes_n.len()],
    };
    let (po, pn) = (policy_of(lo, n_o), policy_of(ln, n_n));
    let matched: Vec<(usize, usize)> = to_new
        .iter()
        .enumerate()
        .filter_map(|(q, q2)| Some((q, (*q2)?)))
        .collect();
    let is_host = |h: Option<u32>, q: usize| h.is_some_and(|h| h as usize == q);
    // Two threads, each its own memo of compared sets.
    let chunk = matched.len().div_ceil(threads().max(1)).max(1);
    let (to_new, matched_new) = (&to_new, &matched_new);
    let compared: Vec<(usize, usize, bool, bool)> = std::thread::scope(|scope| {
        let handles: Vec<_> = matched
            .chunks(chunk)
            .map(|part| {
                let (po, pn) = (&po, &pn);
                scope.spawn(move || {
                    let mut cmp = Compare {
                        n_old: n_o,
                        n_new: n_n,
                        to_new: to_new.clone(),
                        matched_new: matched_new.clone(),
                        sets: FxHashMap::default(),
                        alive: Vec::new(),
                    };
                    part.iter()
                        .map(|&(q, q2)| {
                            let a = po.get(q).copied().flatten().and_then(|pi| lo.build(pi));
                            let b = pn.get(q2).copied().flatten().and_then(|pi| ln.build(pi));
                            let sides = |dir| {
                                (
                                    a.as_ref().map(|p| side(p, dir)),
                                    b.as_ref().map(|p| side(p, dir)),
                                )
                            };
                            let host = is_host(host_o, q) != is_host(host_n, q2);
                            let (ea, eb) = sides(Direction::Egress);
                            let src = host || !cmp.same_side(ea.as_ref(), eb.as_ref());
                            let (ia, ib) = sides(Direction::Ingress);
                            let dst = host || !cmp.same_side(ia.as_ref(), ib.as_ref());
                            (q, q2, src, dst)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (q, q2, src, dst) in compared {
        for (r, i) in [(&mut ro, q), (&mut rn, q2)] {
            if let (Some(s), Some(d)) = (r.src.get_mut(i), r.dst.get_mut(i)) {
                *s = src;
                *d = dst;
            }
        }
    }
    Some((ro, rn))
}
