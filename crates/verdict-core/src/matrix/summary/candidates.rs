//! Candidate class pairs of the grouped matrix: each limited side's allow
//! sets as class lists (see [`candidates`]).

use super::classes::{Classes, Sets};
use super::NONE;
use crate::engine::Decision;
use crate::matrix::{Ctx, Side};
use crate::peerset::PeerSet;
use rustc_hash::FxHashMap;

/// Sets of `side` with an allow entry.
fn allow_sets<'a, 'p>(side: &'a Side<'p, '_>) -> impl Iterator<Item = &'p PeerSet> + 'a {
    side.by_set
        .iter()
        .filter(|(_, es)| es.iter().any(|e| e.decision == Decision::Allowed))
        .map(|(set, _)| *set)
}

/// The classes of the members of `set` (a set of `sets`).
pub(super) fn classes_of<'c>(sets: &Sets, classes: &'c Classes, set: &PeerSet) -> &'c [u32] {
    sets.of(set)
        .and_then(|k| classes.per_set.get(k as usize))
        .map_or(&[], Vec::as_slice)
}

/// Candidate class pairs `(source << 32) | destination`, sorted, no
/// duplicates.
///
/// A side is limited when enforced with default deny: it allows only what
/// its allow sets hold. A pair is a candidate only when each side holds
/// the other end in an allow set or is not limited; a limited source pairs
/// through its own allow sets, tested against the destination's allowed
/// sources (a bitset per limited destination class), and unlimited sources
/// pair through the destinations' allow sets. So candidates are (nearly)
/// the connected pairs, not the union of both sides' reach.
pub(super) fn candidates(
    ctx: &Ctx,
    ing_sig: &[u32],
    egr_sig: &[u32],
    src: &Classes,
    dst: &Classes,
    ing_sets: &Sets,
    egr_sets: &Sets,
) -> Vec<u64> {
    let (nsrc, ndst) = (src.len(), dst.len());
    let limited = |classes: &Classes, sides: &[Side], c: usize| {
        classes
            .members
            .get(c)
            .and_then(|m| m.first())
            .and_then(|&q| ctx.side_of(q, sides))
            .is_some_and(|sd| sd.state.enforced && sd.state.default_deny)
    };
    let src_lim: Vec<bool> = (0..nsrc).map(|c| limited(src, &ctx.egress, c)).collect();
    let dst_lim: Vec<bool> = (0..ndst).map(|c| limited(dst, &ctx.ingress, c)).collect();
    let is_lim = |v: &[bool], c: u32| v.get(c as usize).copied().unwrap_or(false);
    let open_src: Vec<u32> = src
        .identity_classes(ctx.n)
        .into_iter()
        .filter(|&c| !is_lim(&src_lim, c))
        .collect();
    let open_dst: Vec<u32> = dst
        .identity_classes(ctx.n)
        .into_iter()
        .filter(|&c| !is_lim(&dst_lim, c))
        .collect();
    // Allowed source classes of each limited destination class.
    let words = nsrc.div_ceil(64);
    let mut in_ok: Vec<Vec<u64>> = vec![Vec::new(); ndst];
    for (pi, p) in ctx.policies.iter().enumerate() {
        let (Some(me), Some(side)) = (p.index.map(|i| i as usize), ctx.ingress.get(pi)) else {
            continue;
        };
        let Some(&d) = dst.of.get(me).filter(|&&d| is_lim(&dst_lim, d)) else {
            continue;
        };
        let Some(bits) = in_ok.get_mut(d as usize).filter(|b| b.is_empty()) else {
            continue;
        };
        bits.resize(words.max(1), 0);
        for set in allow_sets(side) {
            for &c in classes_of(ing_sets, src, set) {
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
    let mut done: FxHashMap<(bool, u32, u32), ()> = FxHashMap::default();
    let pair = |s: u32, d: u32| (u64::from(s) << 32) | u64::from(d);
    for (pi, p) in ctx.policies.iter().enumerate() {
        let Some(me) = p.index.map(|i| i as usize) else {
            continue;
        };
        let (Some(&d), Some(&s)) = (dst.of.get(me), src.of.get(me)) else {
            continue;
        };
        if let (Some(side), Some(&sg), true) = (ctx.ingress.get(pi), ing_sig.get(pi), d != NONE) {
            if done.insert((true, d, sg), ()).is_none() {
                if side.state.enforced {
                    if !side.state.default_deny {
                        pairs.extend(open_src.iter().map(|&c| pair(c, d)));
                    }
                    for set in allow_sets(side) {
                        for &c in classes_of(ing_sets, src, set) {
                            if !is_lim(&src_lim, c) {
                                pairs.push(pair(c, d));
                            }
                        }
                    }
                }
                // allow-localhost: the node reaches endpoints whose rules do not decide.
                if let (true, Some(&h)) = (
                    p.ingress.allow_localhost,
                    ctx.host.and_then(|h| src.of.get(h as usize)),
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
                for set in allow_sets(side) {
                    for &c in classes_of(egr_sets, dst, set) {
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
    pairs
}
