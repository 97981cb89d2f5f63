//! The two matrices `verdict diff` compares, computed only where they can
//! differ.
//!
//! ```text
//!  cell(a, b) = f(a's egress side: state + entries whose sets hold b,
//!                 b's ingress side: state + entries whose sets hold a, host?)
//!  peers are matched between the inputs by their node name (what the diff keys on)
//!  a side is unchanged when its state and entries are equal, entry by entry,
//!    its peer sets equal over the matched peers (rule text compared by object
//!    and path, not by file and line: the two inputs are different files)
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

use crate::engine::Engine;
use crate::matrix::{resolve_for_matrix, Ctx, Matrix, MatrixOptions, Side};
use crate::matrix_summary::{build, Restrict};
use crate::peerset::PeerSet;
use crate::resolved::SetEntry;
use rustc_hash::FxHashMap;
use std::collections::HashMap;

/// The matrices of `old` and `new`, each holding (at least) every pair
/// whose cell may differ between them.
pub fn changed_matrices(old: &Engine, new: &Engine) -> (Matrix, Matrix) {
    let (po, pn) = (resolve_for_matrix(old), resolve_for_matrix(new));
    let (co, cn) = (Ctx::new(old, &po), Ctx::new(new, &pn));
    let opts = MatrixOptions::default();
    let (ro, rn) = match marks(&co, &cn) {
        Some((ro, rn)) => (Some(ro), Some(rn)),
        None => (None, None),
    };
    (
        build(&co, &opts, ro.as_ref()).expand(),
        build(&cn, &opts, rn.as_ref()).expand(),
    )
}

/// Per shown peer of a matrix: its index by node name (`None`: a name
/// shared by two peers).
fn by_name<'c>(c: &'c Ctx) -> Option<HashMap<&'c str, usize>> {
    let mut out = HashMap::new();
    for (q, nd) in c.nodes.iter().enumerate() {
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
    fn same_set(&mut self, a: &PeerSet, b: &PeerSet) -> bool {
        let key = (
            std::ptr::from_ref(a) as usize,
            std::ptr::from_ref(b) as usize,
        );
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
        same
    }
}

/// Equal entries, rule origins by object and path (not file and line).
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
        for ((sa, ea), (sb, eb)) in a.by_set.iter().zip(&b.by_set) {
            if ea.len() != eb.len()
                || !ea.iter().zip(eb).all(|(x, y)| same_entry(x, y))
                || !self.same_set(sa, sb)
            {
                return false;
            }
        }
        true
    }
}

/// The pairs to compute on each input (`None`: every pair).
fn marks(co: &Ctx, cn: &Ctx) -> Option<(Restrict, Restrict)> {
    let (no, nn) = (by_name(co)?, by_name(cn)?);
    let mut to_new: Vec<Option<usize>> = vec![None; co.nodes.len()];
    let mut matched_new = vec![false; cn.nodes.len()];
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
        src: vec![true; co.nodes.len()],
        dst: vec![true; co.nodes.len()],
    };
    let mut rn = Restrict {
        src: vec![true; cn.nodes.len()],
        dst: vec![true; cn.nodes.len()],
    };
    let mut cmp = Compare {
        n_old: co.n,
        n_new: cn.n,
        to_new,
        matched_new,
        sets: FxHashMap::default(),
    };
    for q in 0..co.nodes.len() {
        let Some(q2) = cmp.to_new.get(q).copied().flatten() else {
            continue;
        };
        let host = co.is_host(q) != cn.is_host(q2);
        let src = host || !cmp.same_side(co.side_of(q, &co.egress), cn.side_of(q2, &cn.egress));
        let dst = host || !cmp.same_side(co.side_of(q, &co.ingress), cn.side_of(q2, &cn.ingress));
        for (r, i) in [(&mut ro, q), (&mut rn, q2)] {
            if let (Some(s), Some(d)) = (r.src.get_mut(i), r.dst.get_mut(i)) {
                *s = src;
                *d = dst;
            }
        }
    }
    Some((ro, rn))
}
