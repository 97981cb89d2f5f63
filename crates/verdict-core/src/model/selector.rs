//! Endpoint selectors: Kubernetes label selectors over Cilium labels.
//!
//! A selector is a conjunction of requirements. Every requirement names a
//! label source (`any` matches all sources). `matchLabels` entries become
//! `In` requirements with one value, as in Kubernetes. Keys of source `cidr`
//! are prefixes and match by containment: `cidr:10.0.0.0/8` selects the CIDR
//! identity of `10.1.2.3/32` (Cilium's CIDR label semantics).

use crate::cidr::Cidr;
use crate::labels::{LabelSet, SOURCE_ANY, SOURCE_CIDR};
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Benchmark counter: how many times a selector was evaluated against an
/// identity's labels (`verdict bench --counters`, the CI regression guard).
/// Off by default, so the hot path pays one relaxed load.
static COUNTING: AtomicBool = AtomicBool::new(false);
static EVALUATIONS: AtomicU64 = AtomicU64::new(0);

/// Starts (or stops) counting selector evaluations in this process.
pub fn count_evaluations(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// Selector evaluations counted since counting was turned on.
pub fn evaluations() -> u64 {
    EVALUATIONS.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "In" => Some(Op::In),
            "NotIn" => Some(Op::NotIn),
            "Exists" => Some(Op::Exists),
            "DoesNotExist" => Some(Op::DoesNotExist),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Requirement {
    pub source: String,
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    pub fn new(source: &str, key: &str, op: Op, values: Vec<String>) -> Requirement {
        let mut values = values;
        values.sort();
        values.dedup();
        Requirement {
            source: source.to_string(),
            key: key.to_string(),
            op,
            values,
        }
    }

    pub fn equals(source: &str, key: &str, value: &str) -> Requirement {
        Requirement::new(source, key, Op::In, vec![value.to_string()])
    }

    fn lookup<'a>(&self, labels: &'a LabelSet) -> Option<&'a str> {
        if self.source == SOURCE_CIDR {
            let Ok(prefix) = Cidr::parse(&self.key) else {
                return None;
            };
            return labels
                .iter()
                .filter(|l| l.source == SOURCE_CIDR)
                .find(|l| Cidr::parse(&l.key).is_ok_and(|c| prefix.contains(&c)))
                .map(|l| l.value.as_str());
        }
        labels.get(&self.source, &self.key)
    }

    pub fn matches(&self, labels: &LabelSet) -> bool {
        let found = self.lookup(labels);
        match self.op {
            Op::In => found.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => found.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => found.is_some(),
            Op::DoesNotExist => found.is_none(),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.source == SOURCE_ANY {
            self.key.clone()
        } else {
            format!("{}:{}", self.source, self.key)
        };
        match self.op {
            Op::In if self.values.len() == 1 => write!(f, "{key}={}", self.values.join("")),
            Op::In => write!(f, "{key} in ({})", self.values.join(",")),
            Op::NotIn => write!(f, "{key} notin ({})", self.values.join(",")),
            Op::Exists => write!(f, "{key}"),
            Op::DoesNotExist => write!(f, "!{key}"),
        }
    }
}

/// A conjunction of requirements; empty selects every identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Selector {
    pub reqs: Vec<Requirement>,
}

impl Selector {
    pub fn new(mut reqs: Vec<Requirement>) -> Selector {
        reqs.sort();
        reqs.dedup();
        Selector { reqs }
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &LabelSet) -> bool {
        if COUNTING.load(Ordering::Relaxed) {
            EVALUATIONS.fetch_add(1, Ordering::Relaxed);
        }
        self.reqs.iter().all(|r| r.matches(labels))
    }

    pub fn with(mut self, req: Requirement) -> Selector {
        self.reqs.push(req);
        Selector::new(self.reqs)
    }

    /// Whether any requirement is on `key` with one of `sources`.
    pub fn has_key(&self, sources: &[&str], key: &str) -> bool {
        self.reqs
            .iter()
            .any(|r| r.key == key && sources.contains(&r.source.as_str()))
    }

    pub fn has_source(&self, source: &str) -> bool {
        self.reqs.iter().any(|r| r.source == source)
    }

    /// `In` and `Exists` requirements `(key, values)` (not on CIDR keys;
    /// `None`: any value): an identity the selector selects carries `key`
    /// (with one of `values`), so the identities carrying such labels are
    /// the only candidates.
    pub fn in_sets(&self) -> impl Iterator<Item = (&str, Option<&[String]>)> {
        self.reqs
            .iter()
            .filter(|r| matches!(r.op, Op::In | Op::Exists) && r.source != SOURCE_CIDR)
            .map(|r| {
                (
                    r.key.as_str(),
                    (r.op == Op::In).then_some(r.values.as_slice()),
                )
            })
    }

    /// Equality requirements `(source, key, value)`: candidates for indexing.
    pub fn equalities(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.reqs
            .iter()
            .filter_map(|r| match (r.op, r.values.as_slice()) {
                (Op::In, [v]) if r.source != SOURCE_CIDR => {
                    Some((r.source.as_str(), r.key.as_str(), v.as_str()))
                }
                _ => None,
            })
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reqs.is_empty() {
            return f.write_str("{}");
        }
        let parts: Vec<String> = self.reqs.iter().map(ToString::to_string).collect();
        write!(f, "{{{}}}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Label;

    fn pod() -> LabelSet {
        LabelSet::new(vec![
            Label::k8s("app", "web"),
            Label::k8s("io.kubernetes.pod.namespace", "shop"),
        ])
    }

    #[test]
    fn match_expressions_on_absent_keys() {
        let absent = |op| Requirement::new("any", "tier", op, vec!["x".into()]);
        assert!(!absent(Op::In).matches(&pod()));
        assert!(absent(Op::NotIn).matches(&pod()));
        assert!(!absent(Op::Exists).matches(&pod()));
        assert!(absent(Op::DoesNotExist).matches(&pod()));
    }

    #[test]
    fn sources_are_respected() {
        assert!(Requirement::equals("k8s", "app", "web").matches(&pod()));
        assert!(Requirement::equals("any", "app", "web").matches(&pod()));
        assert!(!Requirement::equals("reserved", "app", "web").matches(&pod()));
    }

    #[test]
    fn cidr_keys_match_by_containment() {
        let id = LabelSet::new(vec![
            Label::new("cidr", "10.1.2.3/32", ""),
            Label::reserved("world"),
        ]);
        assert!(Requirement::new("cidr", "10.0.0.0/8", Op::Exists, vec![]).matches(&id));
        assert!(Requirement::equals("cidr", "10.0.0.0/8", "").matches(&id));
        assert!(!Requirement::new("cidr", "10.1.3.0/24", Op::Exists, vec![]).matches(&id));
        assert!(!Requirement::new("cidr", "10.1.2.0/24", Op::DoesNotExist, vec![]).matches(&id));
    }

    #[test]
    fn empty_selector_matches_all() {
        assert!(Selector::default().matches(&pod()));
    }
}
