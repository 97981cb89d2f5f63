//! Candidate class pairs of the grouped matrix: each limited side's allow
//! sets as class lists (see [`candidates`]).

use super::classes::{Classes, Sets, Signatures};
use super::NONE;
use crate::engine::Decision;
use crate::matrix::{Ctx, Side};
use crate::peerset::PeerSet;
use crate::policy::Protocol;
use crate::resolved::SetEntry;
use rustc_hash::FxHashMap;

/// Sets of `side` with an allow entry, with their entries.
fn allowing<'a, 'p, 'r>(
    side: &'a Side<'p, 'r>,
) -> impl Iterator<Item = (&'p PeerSet, &'a [&'p SetEntry<'r>])> + 'a {
    side.by_set
        .iter()
        .filter(|(_, es)| es.iter().any(|e| e.decision == Decision::Allowed))
        .map(|(set, es)| (*set, es.as_slice()))
}

/// Sets of `side` with an allow entry.
fn allow_sets<'a, 'p>(side: &'a Side<'p, '_>) -> impl Iterator<Item = &'p PeerSet> + 'a {
    allowing(side).map(|(set, _)| set)
}

/// A port range an allow entry opens, as the matrix reads it: the
/// protocols among TCP, UDP and SCTP it covers (bits 1, 2, 4), first and
/// last port.
type Span = (u8, u16, u16);

/// The spans of the allow entries of one set (none: the set allows
/// nothing the matrix shows, e.g. ICMP only).
fn spans(entries: &[&SetEntry]) -> Vec<Span> {
    let mut out: Vec<Span> = entries
        .iter()
        .filter(|e| e.decision == Decision::Allowed)
        .filter_map(|e| {
            let mask = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp]
                .iter()
                .enumerate()
                .filter(|(_, p)| e.all_protocols || e.protocol.covers(**p))
                .fold(0u8, |m, (i, _)| m | (1 << i));
            (mask != 0).then_some((mask, e.from_port, e.to_port))
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether some span of `a` and some span of `b` share a protocol and a
/// port.
fn overlap(a: &[Span], b: &[Span]) -> bool {
    a.iter()
        .any(|&(m, f, t)| b.iter().any(|&(n, g, u)| m & n != 0 && f <= u && g <= t))
}

/// Sets of `side` with an allow entry, with the spans they allow.
fn allow_sets_with_ports<'a, 'p>(
    side: &'a Side<'p, '_>,
) -> impl Iterator<Item = (&'p PeerSet, Vec<Span>)> + 'a {
    allowing(side).map(|(set, es)| (set, spans(es)))
}

/// The classes of the members of `set` (a set of `sets`).
pub(super) fn classes_of<'c>(sets: &Sets, classes: &'c Classes, set: &PeerSet) -> &'c [u32] {
    sets.of(set)
        .and_then(|k| classes.per_set.get(k as usize))
        .map_or(&[], Vec::as_slice)
}

/// Egress sides from which the sources' pairs are found on threads of
/// their own.
const PARALLEL_SIDES: usize = 2048;

/// Candidate class pairs `(source << 32) | destination`, sorted, no
/// duplicates.
///
/// A side is limited when enforced with default deny: it allows only what
/// its allow sets hold. A pair is a candidate only when each side holds
/// the other end in an allow set or is not limited; a limited source pairs
/// through its own allow sets, tested against the destination's allowed
/// sources on ports the source's set opens too (bitsets per limited
/// destination class and opened spans), and unlimited sources
/// pair through the destinations' allow sets. So candidates are (nearly)
/// the connected pairs, not the union of both sides' reach. `split`: the
/// number of source ranges (`None`: one per thread from
/// [`PARALLEL_SIDES`] sides, else one).
pub(super) fn candidates(
    ctx: &Ctx,
    sig: &Signatures,
    src: &Classes,
    dst: &Classes,
    ing_sets: &Sets,
    egr_sets: &Sets,
    split: Option<usize>,
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
    // Allowed source classes of each limited destination class, per
    // spans its allow sets open (sets opening the same spans share one
    // bitset): a source whose egress opens other ports only is no
    // candidate (most candidates of a 100k-pod cluster were such pairs).
    let words = nsrc.div_ceil(64).max(1);
    let mut in_ok: Vec<Vec<(Vec<Span>, Vec<u64>)>> = vec![Vec::new(); ndst];
    let mut filled = vec![false; ndst];
    for (pi, p) in ctx.policies.iter().enumerate() {
        let (Some(me), Some(side)) = (p.index.map(|i| i as usize), ctx.ingress.get(pi)) else {
            continue;
        };
        let Some(&d) = dst.of.get(me).filter(|&&d| is_lim(&dst_lim, d)) else {
            continue;
        };
        let (Some(groups), Some(done)) = (in_ok.get_mut(d as usize), filled.get_mut(d as usize))
        else {
            continue;
        };
        if std::mem::replace(done, true) {
            continue;
        }
        for (set, sp) in allow_sets_with_ports(side) {
            if sp.is_empty() {
                continue;
            }
            let at = match groups.iter().position(|(g, _)| *g == sp) {
                Some(i) => i,
                None => {
                    groups.push((sp, vec![0u64; words]));
                    groups.len() - 1
                }
            };
            let Some((_, bits)) = groups.get_mut(at) else {
                continue;
            };
            for &c in classes_of(ing_sets, src, set) {
                if let Some(w) = bits.get_mut(c as usize / 64) {
                    *w |= 1 << (c % 64);
                }
            }
        }
    }
    drop(filled);
    // Each destination's groups with their bitsets interleaved by word
    // (word w of every group side by side): a source's test reads one or
    // two cache lines per destination, not one bitset per group (a
    // destination with many port spans has many groups; these reads were
    // most of the candidates' time at 100k pods).
    let in_ok: Vec<(Vec<Vec<Span>>, Vec<u64>)> = in_ok
        .into_iter()
        .map(|groups| {
            let n = groups.len();
            let mut words_by_word = vec![0u64; n * words];
            for (g, (_, bits)) in groups.iter().enumerate() {
                for (w, &b) in bits.iter().enumerate() {
                    if let Some(slot) = words_by_word.get_mut(w * n + g) {
                        *slot = b;
                    }
                }
            }
            (
                groups.into_iter().map(|(sp, _)| sp).collect(),
                words_by_word,
            )
        })
        .collect();
    let allowed_in = |s: u32, d: u32, sp: &[Span]| {
        !is_lim(&dst_lim, d)
            || in_ok.get(d as usize).is_some_and(|(spans, by_word)| {
                let n = spans.len();
                let at = s as usize / 64 * n;
                let bit = 1u64 << (s % 64);
                by_word
                    .get(at..at + n)
                    .unwrap_or(&[])
                    .iter()
                    .zip(spans)
                    .any(|(w, g)| w & bit != 0 && overlap(g, sp))
            })
    };
    // Candidate class pairs, once per (class, side).
    let mut pairs: Vec<u64> = Vec::new();
    let mut done: FxHashMap<(u32, u32), ()> = FxHashMap::default();
    let pair = |s: u32, d: u32| (u64::from(s) << 32) | u64::from(d);
    let mut by_src: Vec<(u32, usize)> = Vec::with_capacity(ctx.policies.len());
    for (pi, p) in ctx.policies.iter().enumerate() {
        let Some(me) = p.index.map(|i| i as usize) else {
            continue;
        };
        let (Some(&d), Some(&s)) = (dst.of.get(me), src.of.get(me)) else {
            continue;
        };
        if let (Some(side), Some(&sg), true) = (ctx.ingress.get(pi), sig.ingress.get(pi), d != NONE)
        {
            if done.insert((d, sg), ()).is_none() {
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
        if s != NONE {
            by_src.push((s, pi));
        }
    }
    // Egress sides by source class: the bits of neighbouring classes share
    // a word of the destinations' bitsets, so consecutive sources read the
    // same cache lines (in policy order, each test missed the cache). In
    // source ranges on threads of their own from PARALLEL_SIDES sides (a
    // class cut in two pairs twice: the pairs are deduplicated below).
    by_src.sort_unstable();
    let from_sources = |part: &[(u32, usize)]| {
        let mut out: Vec<u64> = Vec::new();
        let mut done: FxHashMap<(u32, u32), ()> = FxHashMap::default();
        for &(s, pi) in part {
            let (Some(side), Some(&sg)) = (ctx.egress.get(pi), sig.egress.get(pi)) else {
                continue;
            };
            if !side.state.enforced || done.insert((s, sg), ()).is_some() {
                continue;
            }
            if !side.state.default_deny {
                out.extend(open_dst.iter().map(|&c| pair(s, c)));
            }
            for (set, sp) in allow_sets_with_ports(side) {
                for &c in classes_of(egr_sets, dst, set) {
                    if allowed_in(s, c, &sp) {
                        out.push(pair(s, c));
                    }
                }
            }
        }
        out
    };
    let threads = split.unwrap_or(if by_src.len() < PARALLEL_SIDES {
        1
    } else {
        crate::threads()
    });
    if threads < 2 {
        pairs.append(&mut from_sources(&by_src));
    } else {
        // Small ranges taken in turn: the sides' work is uneven.
        let ranges: Vec<&[(u32, usize)]> = by_src
            .chunks(by_src.len().div_ceil(threads * 16).max(1))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (from_sources, ranges, next) = (&from_sources, &ranges, &next);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        while let Some(part) =
                            ranges.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                        {
                            out.append(&mut from_sources(part));
                        }
                        out
                    })
                })
                .collect();
            for h in handles {
                let mut out = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                pairs.append(&mut out);
            }
        });
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}
