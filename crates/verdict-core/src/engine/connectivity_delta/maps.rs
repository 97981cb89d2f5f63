//! The resolved maps a delta reads: built only for the subjects of changed
//! rules, and trimmed to the entries whose peer sets hold one of the pairs'
//! other ends (the states still from all rules).

use super::*;

/// Maps of some parties of one engine, from one resolution.
pub(super) struct Maps<'a> {
    pub(super) of: HashMap<usize, ResolvedPolicy<'a>>,
}

/// The resolution the maps of some parties are built from: their rules'
/// entries resolved once, then one map per party with only the entries a
/// caller reads.
pub(super) struct Source<'e, 'a> {
    pub(super) resolver: Option<Resolver<'e, 'a>>,
    pub(super) rules_of: Vec<(usize, Vec<&'a Rule>)>,
}

impl<'e, 'a> Source<'e, 'a> {
    pub(super) fn new(
        engine: &'e Engine<'a>,
        parties: &[Party],
        subjects: &BTreeSet<usize>,
    ) -> Self {
        if subjects.is_empty() {
            return Source {
                resolver: None,
                rules_of: Vec::new(),
            };
        }
        let rules_of: Vec<(usize, Vec<&'a Rule>)> = subjects
            .iter()
            .filter_map(|&pi| {
                let p = parties.get(pi)?;
                Some((pi, engine.selecting_rules(&p.identity).collect()))
            })
            .collect();
        let mut seen: HashSet<*const Rule> = HashSet::new();
        let all: Vec<&'a Rule> = rules_of
            .iter()
            .flat_map(|(_, rules)| rules.iter().copied())
            .filter(|r| seen.insert(std::ptr::from_ref(*r)))
            .collect();
        let mut resolver = Resolver::new(engine);
        resolver.prepare_rules(&all);
        resolver.finalize();
        Source {
            resolver: Some(resolver),
            rules_of,
        }
    }

    /// Each party's map with the rule entries `keep` accepts (party index,
    /// direction, entry, its peer set); the states come from all rules.
    pub(super) fn maps(
        &self,
        parties: &[Party],
        keep: impl Fn(usize, Direction, &Entry, &PeerSet) -> bool,
    ) -> Maps<'a> {
        let mut of = HashMap::new();
        if let Some(resolver) = &self.resolver {
            for (pi, rules) in &self.rules_of {
                if let Some(p) = parties.get(*pi) {
                    let map = resolver.build_where(p, rules, |dir, e, set| keep(*pi, dir, e, set));
                    of.insert(*pi, map);
                }
            }
        }
        Maps { of }
    }
}

/// The peers (identity indices) a party's map is read for, per direction
/// (ingress, egress): the other ends of its pairs.
#[derive(Default)]
pub(super) struct Wanted {
    pub(super) ids: [Vec<u32>; 2],
    /// `ids` as a bitset, for long lists.
    pub(super) bits: [Vec<u64>; 2],
}

/// Lists longer than this are tested against a set word by word.
const WANTED_LIST: usize = 16;

impl Wanted {
    pub(super) fn finish(&mut self) {
        for (ids, bits) in self.ids.iter_mut().zip(self.bits.iter_mut()) {
            ids.sort_unstable();
            ids.dedup();
            if ids.len() > WANTED_LIST {
                let words = ids.last().map_or(0, |&m| m as usize / 64 + 1);
                *bits = vec![0; words];
                for &i in ids.iter() {
                    if let Some(w) = bits.get_mut(i as usize / 64) {
                        *w |= 1 << (i % 64);
                    }
                }
            }
        }
    }

    /// Whether `set` holds a wanted peer in `dir`.
    pub(super) fn held_by(&self, dir: Direction, set: &PeerSet) -> bool {
        let d = dir.index();
        let (Some(ids), Some(bits)) = (self.ids.get(d), self.bits.get(d)) else {
            return true;
        };
        if ids.len() > WANTED_LIST {
            bits.iter()
                .zip(set.identity_bits())
                .any(|(a, b)| a & b != 0)
        } else {
            ids.iter().any(|&i| set.has_identity(i))
        }
    }
}

/// Verdicts of non-held peers: (non-host peer allowed, host allowed).
pub(super) fn unheld(s: &DirectionState) -> (bool, bool) {
    let open = !s.enforced || !s.default_deny;
    (open, open || s.allow_localhost)
}
