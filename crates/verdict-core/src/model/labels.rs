//! Labels and label sets, in Cilium's vocabulary (`source:key=value`).
//!
//! Cilium gives every label a source: `k8s` for labels that come from
//! Kubernetes objects, `reserved` for reserved identities, `cidr` for CIDR
//! identities. Selectors may name a source or use `any`.

use serde::Serialize;
use std::fmt;

pub const SOURCE_K8S: &str = "k8s";
pub const SOURCE_RESERVED: &str = "reserved";
pub const SOURCE_CIDR: &str = "cidr";
pub const SOURCE_ANY: &str = "any";
/// Labels the agent generates itself (`gen`, Cilium 1.20: the named-ports label).
pub const SOURCE_GENERATED: &str = "gen";

/// The label Cilium puts on every pod for its namespace.
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
/// The prefix of namespace labels copied onto pods.
pub const NAMESPACE_LABELS_PREFIX: &str = "io.cilium.k8s.namespace.labels.";
pub const SERVICE_ACCOUNT_LABEL: &str = "io.cilium.k8s.policy.serviceaccount";
pub const CLUSTER_LABEL: &str = "io.cilium.k8s.policy.cluster";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Label {
    pub source: String,
    pub key: String,
    pub value: String,
}

impl Label {
    pub fn new(source: &str, key: &str, value: &str) -> Label {
        Label {
            source: source.to_string(),
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    pub fn k8s(key: &str, value: &str) -> Label {
        Label::new(SOURCE_K8S, key, value)
    }

    pub fn reserved(name: &str) -> Label {
        Label::new(SOURCE_RESERVED, name, "")
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.source, self.key)
        } else {
            write!(f, "{}:{}={}", self.source, self.key, self.value)
        }
    }
}

/// A sorted, de-duplicated set of labels: the key of a security identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct LabelSet(Vec<Label>);

impl LabelSet {
    pub fn new(mut labels: Vec<Label>) -> LabelSet {
        labels.sort();
        labels.dedup();
        LabelSet(labels)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of the first label with `key` whose source is `source`
    /// (`any` matches every source).
    pub fn get(&self, source: &str, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|l| l.key == key && (source == SOURCE_ANY || l.source == source))
            .map(|l| l.value.as_str())
    }

    pub fn has_source(&self, source: &str) -> bool {
        self.0.iter().any(|l| l.source == source)
    }

    pub fn has_reserved(&self, name: &str) -> bool {
        self.get(SOURCE_RESERVED, name).is_some()
    }

    /// Labels formatted as Cilium prints them, sorted.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(Label::to_string).collect()
    }
}

impl fmt::Display for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_strings().join(","))
    }
}

/// Splits `source:key` as Cilium's `parseSource` does (pkg/labels/labels.go):
/// the text before the first `:` is the source, a leading `$` means
/// `reserved`, and a key without a source gets `default` (`any` for
/// selectors).
pub fn split_source<'a>(text: &'a str, default: &'a str) -> (&'a str, &'a str) {
    if let Some(rest) = text.strip_prefix('$') {
        return (SOURCE_RESERVED, rest);
    }
    match text.split_once(':') {
        Some((src, rest)) if !src.is_empty() => (src, rest),
        Some((_, rest)) => (default, rest),
        None => (default, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_sorted_and_deduplicated() {
        let s = LabelSet::new(vec![
            Label::k8s("b", "1"),
            Label::k8s("a", "2"),
            Label::k8s("b", "1"),
        ]);
        assert_eq!(s.to_strings(), vec!["k8s:a=2", "k8s:b=1"]);
    }

    #[test]
    fn any_source_matches_every_source() {
        let s = LabelSet::new(vec![Label::k8s("app", "web"), Label::reserved("ingress")]);
        assert_eq!(s.get("any", "app"), Some("web"));
        assert_eq!(s.get("reserved", "app"), None);
        assert!(s.has_reserved("ingress"));
    }

    #[test]
    fn source_prefix_is_split_only_for_known_sources() {
        assert_eq!(split_source("k8s:app", "any"), ("k8s", "app"));
        assert_eq!(split_source("app", "any"), ("any", "app"));
        assert_eq!(split_source("$host", "any"), ("reserved", "host"));
    }
}
