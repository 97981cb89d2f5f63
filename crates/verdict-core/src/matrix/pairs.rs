//! The matrix pair by pair: the reference the grouped computation
//! ([`crate::matrix_summary`]) is checked against.

use crate::engine::{Decision, Engine};
use crate::matrix::{
    node_matches, resolve_for_matrix, Cell, Ctx, Matrix, MatrixOptions, Node, Scratch, Side,
};
use crate::policy::Direction;
use crate::resolved::ResolvedPolicy;

fn pair(from: usize, to: usize) -> u64 {
    (u64::try_from(from).unwrap_or(u64::MAX) << 32) | u64::try_from(to).unwrap_or(0)
}

/// The matrix computed pair by pair: every candidate pair of identities
/// tested on its own. The reference the grouped computation is checked
/// against (tests); its cost grows with the number of connected pairs.
#[doc(hidden)]
pub fn matrix_by_pairs(engine: &Engine, opts: &MatrixOptions) -> Matrix {
    let policies = resolve_for_matrix(engine);
    let ctx = Ctx::new(engine, &policies);
    let pairs = candidate_pairs(
        &policies,
        &ctx.ingress,
        &ctx.egress,
        &ctx.nodes,
        ctx.host,
        ctx.n,
    );
    let mut cells = Vec::new();
    let mut s = Scratch::default();
    for pr in pairs {
        let (from, to) = ((pr >> 32) as usize, (pr & 0xffff_ffff) as usize);
        let (Some(Some(from_node)), Some(Some(to_node))) = (ctx.nodes.get(from), ctx.nodes.get(to))
        else {
            continue;
        };
        let Some(c) = ctx.cell(from, to, &mut s) else {
            continue;
        };
        let cell = Cell {
            from: from_node.clone(),
            to: to_node.clone(),
            ports: c.ports,
            proxied: c.proxied,
            deny_decided: c.deny_decided,
            rules: c.rules,
        };
        if keep(opts, &cell) {
            cells.push(cell);
        }
    }
    cells.sort_by(|a, b| (&a.from.name, &a.to.name).cmp(&(&b.from.name, &b.to.name)));
    let (open_ingress, open_egress) = ctx.open_lists(opts);
    Matrix {
        cells,
        open_ingress,
        open_egress,
        identities: policies.len(),
    }
}

/// Candidate pairs `(from << 32) | to` over dense peer numbers: every peer
/// an enforced side's allow entries name (the union of their peer sets, as
/// a bitset), the node for allow-localhost, and every identity for a side
/// enforced without default deny. Sorted the way users read them
/// (identities by number, then CIDR selections by text), no duplicates.
fn candidate_pairs(
    policies: &[ResolvedPolicy],
    ingress: &[Side],
    egress: &[Side],
    nodes: &[Option<Node>],
    host: Option<u32>,
    n: usize,
) -> Vec<u64> {
    let mut pairs: Vec<u64> = Vec::new();
    let mut union = vec![0u64; n.div_ceil(64)];
    let mut cidrs: Vec<u32> = Vec::new();
    let named: Vec<usize> = (0..n)
        .filter(|&q| nodes.get(q).is_some_and(Option::is_some))
        .collect();
    for ((p, ing), eg) in policies.iter().zip(ingress).zip(egress) {
        let Some(me) = p.index.map(|i| i as usize) else {
            continue;
        };
        for (s, dir) in [(ing, Direction::Ingress), (eg, Direction::Egress)] {
            if !s.state.enforced {
                continue;
            }
            let mk = |q: usize| match dir {
                Direction::Ingress => pair(q, me),
                Direction::Egress => pair(me, q),
            };
            if !s.state.default_deny {
                // Admits every peer it does not deny.
                pairs.extend(named.iter().map(|&q| mk(q)));
            }
            union.fill(0);
            cidrs.clear();
            // Only allow entries can make a cell (a deny alone allows nothing).
            for (set, _) in s
                .by_set
                .iter()
                .filter(|(_, es)| es.iter().any(|e| e.decision == Decision::Allowed))
            {
                for (u, w) in union.iter_mut().zip(set.identity_bits()) {
                    *u |= w;
                }
                cidrs.extend_from_slice(set.cidrs());
            }
            for (wi, &w) in union.iter().enumerate() {
                let mut w = w;
                while w != 0 {
                    let bit = w.trailing_zeros() as usize;
                    w &= w - 1;
                    pairs.push(mk(wi * 64 + bit));
                }
            }
            cidrs.sort_unstable();
            cidrs.dedup();
            pairs.extend(cidrs.iter().map(|&c| mk(n + c as usize)));
        }
        // allow-localhost: the node reaches endpoints whose rules do not decide.
        if let (true, Some(h)) = (p.ingress.allow_localhost, host) {
            pairs.push(pair(h as usize, me));
        }
    }
    // Users read identities by number, CIDR selections by text (rank):
    // sort by the rank of each end in that order.
    let key = |q: usize| -> u64 {
        match nodes
            .get(q)
            .and_then(Option::as_ref)
            .and_then(|n| n.identity)
        {
            Some(id) if q < n => u64::from(id),
            _ => (1 << 32) + u64::try_from(q).unwrap_or(u64::MAX >> 1),
        }
    };
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_unstable_by_key(|&q| key(q));
    let mut rank = vec![0u64; nodes.len()];
    for (r, &q) in order.iter().enumerate() {
        if let Some(slot) = rank.get_mut(q) {
            *slot = u64::try_from(r).unwrap_or(u64::MAX);
        }
    }
    let rank_of = |q: u64| rank.get(usize::try_from(q).unwrap_or(usize::MAX)).copied();
    let unrank = |r: u64| order.get(usize::try_from(r).unwrap_or(usize::MAX)).copied();
    let mut ranked: Vec<u64> = pairs
        .iter()
        .filter_map(|&p| Some((rank_of(p >> 32)? << 32) | rank_of(p & 0xffff_ffff)?))
        .collect();
    ranked.sort_unstable();
    ranked.dedup();
    pairs.clear();
    pairs.extend(
        ranked
            .iter()
            .filter_map(|&r| Some(pair(unrank(r >> 32)?, unrank(r & 0xffff_ffff)?))),
    );
    pairs
}

fn keep(opts: &MatrixOptions, c: &Cell) -> bool {
    node_matches(opts, Some(&c.from)) || node_matches(opts, Some(&c.to))
}
