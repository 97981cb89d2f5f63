//! The policy domain: rules and entries after normalisation.
//!
//! Every CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and Kubernetes
//! NetworkPolicy becomes [`Rule`]s (one per `spec`/`specs` item) made of
//! [`Entry`]s (one per `ingress`/`ingressDeny`/`egress`/`egressDeny` item).
//! "Absent means any" is decided here, once: `peers: None` selects every
//! peer, `ports: None` every port.

use crate::cidr::Cidr;
use crate::selector::Selector;
use crate::source::{Location, ObjectRef};
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    pub fn index(self) -> usize {
        match self {
            Direction::Ingress => 0,
            Direction::Egress => 1,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Protocol {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
    #[serde(rename = "ICMP")]
    Icmp,
    #[serde(rename = "ICMPv6")]
    Icmpv6,
    /// `ANY` in a rule: TCP, UDP and SCTP.
    #[serde(rename = "ANY")]
    Any,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_uppercase().as_str() {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            "ICMP" => Some(Protocol::Icmp),
            "ICMPV6" => Some(Protocol::Icmpv6),
            "ANY" => Some(Protocol::Any),
            _ => None,
        }
    }

    /// Whether a rule's protocol covers a flow's protocol.
    pub fn covers(self, flow: Protocol) -> bool {
        self == flow
            || (self == Protocol::Any
                && matches!(flow, Protocol::Tcp | Protocol::Udp | Protocol::Sctp))
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
            Protocol::Icmp => "ICMP",
            Protocol::Icmpv6 => "ICMPv6",
            Protocol::Any => "ANY",
        })
    }
}

/// A port or port range, or a named port resolved per endpoint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(untagged)]
pub enum PortSel {
    Range { from: u16, to: u16 },
    Named(String),
}

impl fmt::Display for PortSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSel::Range { from: 0, to: 65535 } => f.write_str("*"),
            PortSel::Range { from, to } if from == to => write!(f, "{from}"),
            PortSel::Range { from, to } => write!(f, "{from}-{to}"),
            PortSel::Named(n) => write!(f, "{n}"),
        }
    }
}

/// A port range as verdict prints it: `*`, `80` or `80-90`.
pub fn port_text(from: u16, to: u16) -> String {
    PortSel::Range { from, to }.to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortRule {
    pub protocol: Protocol,
    pub port: PortSel,
}

impl fmt::Display for PortRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// What a peer field selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PeerKind {
    /// Endpoints or entities: identities whose labels match any selector.
    Selectors { selectors: Vec<Selector> },
    /// A CIDR (with exceptions): CIDR identities inside it; `0.0.0.0/0` also
    /// selects the world identity.
    Cidr { cidr: Cidr, except: Vec<Cidr> },
    /// A peer that cannot be resolved offline (toFQDNs, toServices, toGroups):
    /// it selects nothing here, and verdicts say so.
    Unevaluable { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// How the user wrote it, e.g. `fromEntities: world`.
    pub text: String,
    /// Whether it came from `fromEndpoints`/`toEndpoints` (the only peers
    /// that `fromRequires`/`toRequires` constrain).
    #[serde(skip)]
    pub from_endpoints: bool,
    #[serde(flatten)]
    pub kind: PeerKind,
}

/// Where a rule part came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub policy: ObjectRef,
    /// e.g. `spec.ingress[1]`.
    pub path: String,
    pub location: Location,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.policy.short(),
            self.path,
            self.location
        )
    }
}

/// Where a rule stands in Cilium's order of evaluation: ClusterNetworkPolicy
/// Admin rules first, then the ordinary policies (CiliumNetworkPolicy,
/// CiliumClusterwideNetworkPolicy, NetworkPolicy), then ClusterNetworkPolicy
/// Baseline rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Admin,
    #[default]
    Normal,
    Baseline,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Admin => "Admin",
            Tier::Normal => "normal",
            Tier::Baseline => "Baseline",
        })
    }
}

/// One `ingress`/`egress`/`ingressDeny`/`egressDeny` item (or one
/// ClusterNetworkPolicy rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub direction: Direction,
    pub deny: bool,
    /// A ClusterNetworkPolicy `Pass`: hand the decision to the next tier.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pass: bool,
    /// The tier of the rule the entry belongs to.
    #[serde(skip_serializing_if = "is_normal")]
    pub tier: Tier,
    /// Order inside the tier, lower first: a ClusterNetworkPolicy rule's
    /// `priority * 100 + index` (Cilium: `priority + index/100`); 0 for
    /// the ordinary policies, whose entries all stand at one level.
    #[serde(skip_serializing_if = "is_zero")]
    pub level: u32,
    /// The peers the item selects (their union). An item that names no
    /// peer but has ports selects every peer (a wildcard peer is put here);
    /// one with neither selects nothing.
    pub peers: Vec<Peer>,
    /// Requirements from `fromRequires`/`toRequires` of this item.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Selector>,
    /// `None`: every port and protocol.
    pub ports: Option<Vec<PortRule>>,
    /// L7 rule kinds on the item's ports (`http`, `dns`, `kafka`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub l7: Vec<String>,
    /// Parts that cannot be evaluated offline (FQDNs, services, groups).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unevaluable: Vec<String>,
    /// Shared: resolved policy maps refer to it from many entries.
    pub origin: std::sync::Arc<Origin>,
}

/// What a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "selector", rename_all = "camelCase")]
pub enum Subject {
    Endpoints(Selector),
    /// A host policy (`nodeSelector`): applies to nodes, not evaluable on
    /// pods; the host identity is selected when the selector is empty.
    Nodes(Selector),
}

/// One rule: a subject and its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Admin and Baseline rules (ClusterNetworkPolicy) decide in order of
    /// `priority` (lower first), then of their entries.
    #[serde(skip_serializing_if = "is_normal")]
    pub tier: Tier,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    pub subject: Subject,
    pub entries: Vec<Entry>,
    /// Whether this rule turns on default deny, per direction
    /// (`[ingress, egress]`).
    pub default_deny: [bool; 2],
    pub origin: std::sync::Arc<Origin>,
}

fn is_normal(t: &Tier) -> bool {
    *t == Tier::Normal
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The order in which matching rules decide: tier, level, then action
/// (0 deny, 1 allow, 2 pass).
pub type Precedence = (Tier, u32, u8);

/// Cilium's walk over the rules that match one flow on one side, sorted
/// here by precedence: the first that is not a Pass decides, and a Pass
/// skips the rest of its tier. Returns the deciding precedence (every item
/// at it decided together) and the Pass items that handed the decision on.
pub fn first_decider<T>(
    items: &mut [T],
    precedence: impl Fn(&T) -> Precedence,
) -> (Option<Precedence>, Vec<&T>) {
    items.sort_by_key(|i| precedence(i));
    let mut passed_tier = None;
    let mut passed = Vec::new();
    for i in items.iter() {
        let p = precedence(i);
        if passed_tier == Some(p.0) {
            continue;
        }
        if p.2 == 2 {
            passed_tier = Some(p.0);
            passed.push(i);
            continue;
        }
        return (Some(p), passed);
    }
    (None, passed)
}

impl Entry {
    /// An allow (CiliumNetworkPolicy allow item, ClusterNetworkPolicy
    /// Accept): neither a deny nor a Pass.
    pub fn is_allow(&self) -> bool {
        !self.deny && !self.pass
    }

    /// The order in which matching entries decide: tier, then level, then
    /// Deny before Accept before Pass at the same level
    /// (pkg/policy/types/entry.go precedence).
    pub fn precedence(&self) -> Precedence {
        let action = if self.deny {
            0
        } else if self.pass {
            2
        } else {
            1
        };
        (self.tier, self.level, action)
    }

    /// `(Admin tier, priority 10)` for tiered entries, empty otherwise.
    pub fn tier_note(&self) -> String {
        match self.tier {
            Tier::Normal => String::new(),
            t => format!(" ({t} tier, priority {})", self.level / 100),
        }
    }
}

impl Rule {
    /// Whether the rule takes part in `dir` for the endpoints it selects:
    /// it has entries for that direction, or (a Kubernetes NetworkPolicy's
    /// `policyTypes`) turns on default deny for it.
    pub fn applies_to(&self, dir: Direction) -> bool {
        self.default_deny[dir.index()] || self.entries.iter().any(|e| e.direction == dir)
    }

    /// The endpoint selector of the rule (`None` for a host policy).
    pub fn endpoint_selector(&self) -> Option<&Selector> {
        match &self.subject {
            Subject::Endpoints(sel) => Some(sel),
            Subject::Nodes(_) => None,
        }
    }
}

/// A loaded policy object and the rules it contributes.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub object: ObjectRef,
    pub location: Location,
    pub rules: Vec<Rule>,
    /// Cilium's reason for refusing the policy; a rejected policy takes no
    /// part in verdicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    /// Why a valid policy is not enforced under the chosen Cilium release
    /// and agent settings (ClusterNetworkPolicy without its feature flag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// The object as written (for `verdict generate --merge`).
    #[serde(skip)]
    pub source: Option<crate::yaml::Node>,
    /// `metadata.annotations` (lint suppressions live there).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}
