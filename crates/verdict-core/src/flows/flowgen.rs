//! Least-privilege CiliumNetworkPolicies from observed flows: for every
//! endpoint seen in a delivered (or audit) connection, an ingress rule per
//! observed peer and port at the destination and an egress rule at the
//! source, plus DNS to kube-dns for endpoints that get egress rules.
//!
//! * endpoints are selected by their identity labels without the labels
//!   Cilium derives (namespace, namespace labels, service account,
//!   cluster) and without generated hash labels;
//! * peers in another namespace carry `k8s:io.kubernetes.pod.namespace`,
//!   peers of another cluster their cluster label;
//! * world peers are written as `/32` (`/128`) CIDRs of the addresses seen,
//!   reserved peers as entities (`reserved:ingress` -> `ingress`);
//! * reserved subjects (host, remote-node, the ingress proxy) get no policy.

use crate::labels::{LabelSet, CLUSTER_LABEL, POD_NAMESPACE_LABEL};
use crate::policy::Protocol;
use crate::replay::{Connection, FlowParty};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    /// Namespace (None: unknown), selector labels, cluster (when not local).
    Endpoint(Option<String>, Vec<(String, String)>, Option<String>),
    Entity(String),
    Cidr(String),
}

type Ports = BTreeSet<(Protocol, u16)>;
/// A subject: its namespace and selector labels.
type SubjectKey = (String, Vec<(String, String)>);

#[derive(Debug, Default)]
struct Subject {
    ingress: BTreeMap<Peer, Ports>,
    egress: BTreeMap<Peer, Ports>,
}

/// Accumulates observed connections; [`FlowPolicies::to_yaml`] writes the
/// policies.
#[derive(Debug, Default)]
pub struct FlowPolicies {
    /// (namespace, selector labels) -> rules.
    subjects: BTreeMap<SubjectKey, Subject>,
    pub used: usize,
    /// Connections not turned into rules, with why (counted by reason).
    pub not_used: BTreeMap<String, usize>,
    local_cluster: String,
}

/// Whether a label key is derived by Cilium or generated per rollout.
fn derived(key: &str) -> bool {
    key == POD_NAMESPACE_LABEL
        || key.starts_with("io.cilium.k8s.")
        || key.ends_with("pod-template-hash")
        || key.ends_with("controller-revision-hash")
        || key.ends_with("pod-template-generation")
        || !crate::identity::keep_label(key)
}

/// The selector labels of an endpoint identity.
pub fn stable_labels(labels: &LabelSet) -> Vec<(String, String)> {
    labels
        .iter()
        .filter(|l| l.source == "k8s" && !derived(&l.key))
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect()
}

impl FlowPolicies {
    pub fn new(local_cluster: &str) -> Self {
        FlowPolicies {
            local_cluster: local_cluster.to_string(),
            ..FlowPolicies::default()
        }
    }

    fn peer(&self, p: &FlowParty) -> Option<Peer> {
        let id = &p.party.identity;
        match &id.kind {
            crate::identity::IdentityKind::Cidr(c) => Some(Peer::Cidr(c.to_string())),
            crate::identity::IdentityKind::Reserved(n) => Some(Peer::Entity(n.clone())),
            crate::identity::IdentityKind::Endpoint => {
                let sel = stable_labels(&id.labels);
                if sel.is_empty() {
                    return None;
                }
                let cluster = p.cluster.clone().filter(|c| *c != self.local_cluster);
                Some(Peer::Endpoint(p.namespace.clone(), sel, cluster))
            }
        }
    }

    fn subject_key(&self, p: &FlowParty) -> Result<SubjectKey, &'static str> {
        if !p.party.identity.is_endpoint() {
            return Err("reserved or world subject (no policy generated for it)");
        }
        if p.cluster
            .as_deref()
            .is_some_and(|c| c != self.local_cluster)
        {
            return Err("endpoint of another cluster");
        }
        let ns = p.namespace.clone().ok_or("endpoint without a namespace")?;
        let sel = stable_labels(&p.party.identity.labels);
        if sel.is_empty() {
            return Err("endpoint without stable labels to select it");
        }
        Ok((ns, sel))
    }

    fn skip(&mut self, why: &str) {
        *self.not_used.entry(why.to_string()).or_default() += 1;
    }

    /// Adds one observed connection (dropped ones are not allowed).
    pub fn add(&mut self, c: &Connection) {
        if !c.observed.delivered() {
            self.skip("observed dropped");
            return;
        }
        let mut used = false;
        // Ingress at the destination.
        match (self.subject_key(&c.to), self.peer(&c.from)) {
            (Ok(key), Some(peer)) => {
                self.subjects
                    .entry(key)
                    .or_default()
                    .ingress
                    .entry(peer)
                    .or_default()
                    .insert((c.protocol, c.port));
                used = true;
            }
            (Err(why), _) => self.skip(&format!("ingress side: {why}")),
            (_, None) => self.skip("ingress side: peer without stable labels"),
        }
        match (self.subject_key(&c.from), self.peer(&c.to)) {
            (Ok(key), Some(peer)) => {
                self.subjects
                    .entry(key)
                    .or_default()
                    .egress
                    .entry(peer)
                    .or_default()
                    .insert((c.protocol, c.port));
                used = true;
            }
            (Err(why), _) => self.skip(&format!("egress side: {why}")),
            (_, None) => self.skip("egress side: peer without stable labels"),
        }
        if used {
            self.used += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }

    /// The policies as a multi-document YAML stream, sorted.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        let mut names: BTreeSet<(String, String)> = BTreeSet::new();
        for ((ns, sel), s) in &self.subjects {
            let base = sel
                .iter()
                .find(|(k, _)| k == "app.kubernetes.io/name" || k == "app" || k == "k8s-app")
                .or_else(|| sel.first())
                .map_or("endpoint".to_string(), |(_, v)| dns_name(v));
            let mut name = format!("flows-{base}");
            let mut i = 2;
            while !names.insert((ns.clone(), name.clone())) {
                name = format!("flows-{base}-{i}");
                i += 1;
            }
            let _ = write!(
                out,
                "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: {}\n  namespace: {}\n  annotations:\n    verdict.dev/generated-from: observed Hubble flows\nspec:\n  endpointSelector:\n    matchLabels:\n",
                q(&name),
                q(ns)
            );
            for (k, v) in sel {
                let _ = writeln!(out, "      {}: {}", q(&format!("k8s:{k}")), q(v));
            }
            if !s.ingress.is_empty() {
                out.push_str("  ingress:\n");
                for (peer, ports) in &s.ingress {
                    write_rule(&mut out, peer, ports, ns, true);
                }
            }
            if !s.egress.is_empty() {
                out.push_str("  egress:\n");
                let dns = Peer::Endpoint(
                    Some("kube-system".into()),
                    vec![("k8s-app".into(), "kube-dns".into())],
                    None,
                );
                let mut egress = s.egress.clone();
                let d = egress.entry(dns).or_default();
                d.insert((Protocol::Udp, 53));
                d.insert((Protocol::Tcp, 53));
                for (peer, ports) in &egress {
                    write_rule(&mut out, peer, ports, ns, false);
                }
            }
        }
        out
    }
}

fn dns_name(v: &str) -> String {
    let s: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-');
    let s: String = s.chars().take(50).collect();
    if s.is_empty() {
        "endpoint".into()
    } else {
        s
    }
}

/// A YAML double-quoted scalar.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// One rule per peer and kind of port (Cilium refuses `toPorts` and
/// `icmps` in one rule).
fn write_rule(out: &mut String, peer: &Peer, ports: &Ports, ns: &str, ingress: bool) {
    let (icmp, l4): (Vec<_>, Vec<_>) = ports
        .iter()
        .partition(|(p, _)| matches!(p, Protocol::Icmp | Protocol::Icmpv6));
    if !l4.is_empty() || icmp.is_empty() {
        write_peer(out, peer, ns, ingress);
        if !l4.is_empty() {
            out.push_str("      toPorts:\n        - ports:\n");
            for (p, n) in &l4 {
                let _ = writeln!(
                    out,
                    "            - port: \"{n}\"\n              protocol: {p}"
                );
            }
        }
    }
    if !icmp.is_empty() {
        write_peer(out, peer, ns, ingress);
        out.push_str("      icmps:\n        - fields:\n");
        for (p, n) in &icmp {
            let family = if *p == Protocol::Icmp { "IPv4" } else { "IPv6" };
            let _ = writeln!(
                out,
                "            - type: {n}\n              family: {family}"
            );
        }
    }
}

fn write_peer(out: &mut String, peer: &Peer, ns: &str, ingress: bool) {
    let (ep, ent, cidr) = if ingress {
        ("fromEndpoints", "fromEntities", "fromCIDR")
    } else {
        ("toEndpoints", "toEntities", "toCIDR")
    };
    match peer {
        Peer::Endpoint(pns, sel, cluster) => {
            let _ = write!(out, "    - {ep}:\n        - matchLabels:\n");
            for (k, v) in sel {
                let _ = writeln!(out, "            {}: {}", q(&format!("k8s:{k}")), q(v));
            }
            if let Some(pns) = pns.as_deref().filter(|p| *p != ns) {
                let _ = writeln!(
                    out,
                    "            {}: {}",
                    q(&format!("k8s:{POD_NAMESPACE_LABEL}")),
                    q(pns)
                );
            }
            if let Some(c) = cluster {
                let _ = writeln!(
                    out,
                    "            {}: {}",
                    q(&format!("k8s:{CLUSTER_LABEL}")),
                    q(c)
                );
            }
        }
        Peer::Entity(e) => {
            let _ = writeln!(out, "    - {ent}: [{}]", q(e));
        }
        Peer::Cidr(c) => {
            let _ = writeln!(out, "    - {cidr}: [{}]", q(c));
        }
    }
}
