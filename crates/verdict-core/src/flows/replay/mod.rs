//! Replaying observed Hubble flows against policies: every connection the
//! cluster observed is judged by the engine under the policies given, and
//! compared with what the cluster did (delivered, dropped, audit).
//!
//! * Each side's identity comes from the flow's security labels (so replay
//!   works with manifests that hold only policies), reserved identities from
//!   `reserved:*` labels or well-known numbers, world from the IP (a CIDR
//!   identity). Where the manifests hold the pod, its labels are compared.
//! * Replies, L7 records and TCP segments that do not open a connection are
//!   skipped: connection tracking lets them through, policy never sees them.
//! * The observed decision is compared on the side the record observed
//!   (the `traffic_direction` of a policy verdict or drop, the source side
//!   for packets not yet at their destination, the whole flow when
//!   delivered to the endpoint).
//!
//! See docs/replay.md for the contract.
//!
//! Files: `party.rs` (a flow endpoint -> the party it stands for, looked
//! up once per distinct endpoint), `decide.rs` (both sides of a connection
//! decided once per identity pair, ports and port, from each subject's
//! side context), `summary.rs` (records -> groups, text and Markdown),
//! `html.rs` (the report's section).

mod decide;
mod html;
mod party;
mod summary;

pub use summary::{Group, Summary, GROUPS_MAX};

use crate::engine::side_context::SideContext;
use crate::engine::{Decision, Engine, Party};
use crate::flows::Flow;
use crate::ingest::ContainerPort;
use crate::policy::{Direction, Protocol};
use decide::{CacheKey, IdKey, Judged, NamedKey, Sides};
use party::{EndpointKey, LabelNote, PartyResult};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// What the cluster did with the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Observed {
    /// FORWARDED or REDIRECTED (to the L7 proxy).
    Delivered,
    /// DROPPED by policy (POLICY_DENIED, POLICY_DENY, AUTH_REQUIRED), or
    /// DROPPED without a reason in the record.
    Dropped,
    /// AUDIT: delivered because the endpoint is in policy audit mode; the
    /// policy in force then would have dropped it.
    Audit,
}

impl Observed {
    pub fn delivered(self) -> bool {
        self != Observed::Dropped
    }
}

/// The enforcement point the observation speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The source's egress policy.
    Egress,
    /// The destination's ingress policy.
    Ingress,
    /// Both: the record saw the packet delivered (or dropped) end to end.
    Flow,
}

/// How the replayed verdict compares with the observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Observed delivered (or audit), denied now.
    Break,
    /// Observed dropped, allowed now.
    NewlyAllowed,
    Unchanged,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Break => "break",
            Change::NewlyAllowed => "newly-allowed",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One side of a replayed connection.
#[derive(Debug, Clone)]
pub struct FlowParty {
    pub party: Party,
    /// The name connections are grouped by: `ns/kind/name` (the flow's
    /// workload), `ns/pod`, `reserved:NAME`, `cidr:IP/32` or `world`.
    pub group: String,
    pub namespace: Option<String>,
    /// The flow's own cluster label, if any.
    pub cluster: Option<String>,
    /// The identity number of the pod in the manifests, when they hold it
    /// (its labels may differ from the flow's).
    pub manifest_id: Option<u32>,
    /// The party's index among the engine's identities, when it is one
    /// of them (`Engine::known_index`).
    pub known: Option<usize>,
}

/// One observed connection, before judging.
#[derive(Debug, Clone)]
pub struct Connection {
    pub from: Arc<FlowParty>,
    pub to: Arc<FlowParty>,
    pub protocol: Protocol,
    pub port: u16,
    pub observed: Observed,
    pub compared: Scope,
    pub notes: Vec<String>,
}

/// The result of one input line.
#[derive(Debug, Clone, Serialize)]
pub struct LineVerdict {
    pub file: Arc<str>,
    pub line: usize,
    /// `allowed`, `denied` (the replayed decision at the compared scope) or
    /// `skipped`.
    pub verdict: &'static str,
    /// Why a line was skipped (a fixed category; `detail` says more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared: Option<Scope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Decision>,
    /// The deciding rules (file:line) of the compared sides (shared by
    /// every record of one decision).
    #[serde(skip_serializing_if = "no_rules")]
    pub deciding: Arc<[String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Arc<str>>,
    /// Label disagreements with the manifests, Gateway/Ingress hop notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl LineVerdict {
    pub fn skipped(file: &Arc<str>, line: usize, reason: &'static str, detail: String) -> Self {
        LineVerdict {
            file: Arc::clone(file),
            line,
            verdict: "skipped",
            reason: Some(reason),
            detail: Some(detail),
            from: None,
            to: None,
            protocol: None,
            port: None,
            observed: None,
            compared: None,
            change: None,
            egress: None,
            ingress: None,
            deciding: Arc::new([]),
            explanation: None,
            notes: Vec::new(),
        }
    }
}

fn no_rules(r: &Arc<[String]>) -> bool {
    r.is_empty()
}

/// Skip categories (the `reason` field).
pub mod skip {
    pub const MALFORMED: &str = "malformed";
    pub const NOT_A_FLOW: &str = "not-a-flow";
    pub const EMPTY: &str = "empty-line";
    pub const REPLY: &str = "reply";
    pub const L7: &str = "l7-record";
    pub const NOT_CONNECTION_START: &str = "not-connection-start";
    pub const NOT_A_DECISION: &str = "not-a-decision";
    pub const NOT_POLICY_DROP: &str = "dropped-not-by-policy";
    pub const NO_L4: &str = "no-l4";
    pub const UNKNOWN_ENDPOINT: &str = "unknown-endpoint";
}

/// Judges flow records one at a time.
pub struct Replayer<'e, 'a> {
    pub engine: &'e Engine<'a>,
    /// Both sides decided, by identities and port (free of names).
    cache: FxHashMap<CacheKey, Arc<Sides>>,
    /// Each decision explained for a pair of party names.
    named: FxHashMap<NamedKey, Arc<Judged>>,
    /// Party names, numbered (part of the named cache's keys).
    names: FxHashMap<String, u32>,
    /// The number of the last decision made (see `Sides::serial`).
    serial: u64,
    /// Each subject identity's side per direction, built once
    /// (`Engine::side_context`): a decision then costs a port test per
    /// entry and a peer test per distinct peer list.
    contexts: FxHashMap<(IdKey, Direction), Arc<SideContext<'a>>>,
    /// Parties of the endpoints seen (see [`Replayer::party`]), by the
    /// hash of their content.
    parties: FxHashMap<u64, Vec<(EndpointKey, PartyResult, Vec<String>)>>,
    parties_len: usize,
    /// Container port lists, numbered (part of the cache key).
    port_lists: FxHashMap<Vec<ContainerPort>, u32>,
    /// Pods compared with the manifests: per pod, the flow label sets seen
    /// and the disagreement note of each (bounded).
    checked_pods: HashMap<(String, String), Vec<LabelNote>>,
    /// The manifests' party of (namespace, pod, workload), looked up once.
    manifest_parties: HashMap<(String, String, String), Option<Party>>,
}

/// Most cached verdicts kept, and most explained verdicts and party
/// names (each cache is cleared when full).
const CACHE_MAX: usize = 20_000;
/// Most side contexts kept (each holds its subject's entries of one
/// direction; cleared when full).
const CONTEXTS_MAX: usize = 20_000;
const CHECKED_PODS_MAX: usize = 100_000;

impl<'e, 'a> Replayer<'e, 'a> {
    pub fn new(engine: &'e Engine<'a>) -> Self {
        Replayer {
            engine,
            cache: FxHashMap::default(),
            named: FxHashMap::default(),
            names: FxHashMap::default(),
            serial: 0,
            contexts: FxHashMap::default(),
            port_lists: FxHashMap::default(),
            parties: FxHashMap::default(),
            parties_len: 0,
            checked_pods: HashMap::new(),
            manifest_parties: HashMap::new(),
        }
    }

    /// Judges one flow record.
    pub fn judge(&mut self, file: &Arc<str>, line: usize, f: &Flow) -> LineVerdict {
        match self.connection(f) {
            Err((reason, detail)) => LineVerdict::skipped(file, line, reason, detail),
            Ok(c) => self.judge_connection(file, line, c),
        }
    }

    /// The connection a flow record observed: its parties, protocol, port
    /// and observed outcome; or why the record is skipped.
    pub fn connection(&mut self, f: &Flow) -> Result<Connection, (&'static str, String)> {
        let skip = |reason: &'static str, detail: String| Err((reason, detail));
        if f.is_reply == Some(true) || f.reply == Some(true) {
            return skip(
                skip::REPLY,
                "reply: connection tracking lets replies through, policy is not consulted".into(),
            );
        }
        let event = f.event_type.as_ref().and_then(|e| e.kind);
        if f.l7.is_some() || f.flow_type.as_deref() == Some("L7") || event == Some(129) {
            return skip(
                skip::L7,
                "L7 record (proxy access log): the connection's L3/L4 records carry the policy verdict".into(),
            );
        }
        let observed = match f.verdict.as_deref() {
            Some("FORWARDED" | "REDIRECTED") => Observed::Delivered,
            Some("AUDIT") => Observed::Audit,
            Some("DROPPED") => {
                let desc = f.drop_reason_desc.as_deref();
                let policy = matches!(
                    desc,
                    Some("POLICY_DENIED" | "POLICY_DENY" | "AUTH_REQUIRED")
                ) || (desc.is_none()
                    && matches!(f.drop_reason, Some(133 | 181 | 189)));
                let unknown = desc.is_none() && f.drop_reason.is_none();
                if !policy && !unknown {
                    let why = desc
                        .map(str::to_string)
                        .or_else(|| f.drop_reason.map(|n| format!("drop reason {n}")))
                        .unwrap_or_default();
                    return skip(
                        skip::NOT_POLICY_DROP,
                        format!("dropped for {why}, not by policy"),
                    );
                }
                Observed::Dropped
            }
            Some(v) => {
                return skip(
                    skip::NOT_A_DECISION,
                    format!("verdict {v} is not a policy decision"),
                )
            }
            None => return skip(skip::NOT_A_DECISION, "the record has no verdict".into()),
        };
        let Some(l4) = f.l4.as_ref() else {
            return skip(
                skip::NO_L4,
                "the record has no l4 (protocol and port)".into(),
            );
        };
        let (protocol, port) = if let Some(t) = &l4.tcp {
            if let Some(fl) = &t.flags {
                if !fl.syn || fl.ack {
                    return skip(
                        skip::NOT_CONNECTION_START,
                        "TCP segment that does not open a connection (not SYN-only): conntrack decides".into(),
                    );
                }
            }
            (Protocol::Tcp, t.destination_port)
        } else if let Some(u) = &l4.udp {
            (Protocol::Udp, u.destination_port)
        } else if let Some(s) = &l4.sctp {
            (Protocol::Sctp, s.destination_port)
        } else if let Some(i) = &l4.icmpv4 {
            let t = i.icmp_type.unwrap_or(0);
            if matches!(t, 0 | 14 | 16 | 18) {
                return skip(skip::REPLY, format!("ICMPv4 type {t} is a reply"));
            }
            (Protocol::Icmp, Some(t))
        } else if let Some(i) = &l4.icmpv6 {
            let t = i.icmp_type.unwrap_or(0);
            if t == 129 {
                return skip(skip::REPLY, "ICMPv6 echo reply".into());
            }
            (Protocol::Icmpv6, Some(t))
        } else {
            return skip(
                skip::NO_L4,
                "l4 protocol without a policy port (not TCP, UDP, SCTP or ICMP)".into(),
            );
        };
        let Some(port) = port.and_then(|p| u16::try_from(p).ok()) else {
            return skip(skip::NO_L4, "no destination port".into());
        };
        let mut notes = Vec::new();
        let ip = f.ip.as_ref();
        let from = match self.party(
            f.source.as_ref(),
            ip.and_then(|i| i.source.as_deref()),
            &mut notes,
        ) {
            Ok(p) => p,
            Err(e) => return skip(skip::UNKNOWN_ENDPOINT, format!("source: {e}")),
        };
        let to = match self.party(
            f.destination.as_ref(),
            ip.and_then(|i| i.destination.as_deref()),
            &mut notes,
        ) {
            Ok(p) => p,
            Err(e) => return skip(skip::UNKNOWN_ENDPOINT, format!("destination: {e}")),
        };
        if from.party.identity.reserved_name() == Some("ingress") {
            notes.push(
                "Gateway/Ingress hop 2: Cilium's Envoy (reserved:ingress) -> backend".to_string(),
            );
        } else if to.party.identity.reserved_name() == Some("ingress") {
            notes.push(
                "Gateway/Ingress hop 1: client -> Cilium's Envoy (reserved:ingress)".to_string(),
            );
        }
        Ok(Connection {
            compared: scope(f, observed),
            from,
            to,
            protocol,
            port,
            observed,
            notes,
        })
    }

    /// Judges a connection under the policies.
    pub fn judge_connection(&mut self, file: &Arc<str>, line: usize, c: Connection) -> LineVerdict {
        let Connection {
            from,
            to,
            protocol,
            port,
            observed,
            compared,
            notes,
        } = c;
        let j = self.judge_parties(&from, &to, protocol, port);
        let (decision, scope) = match compared {
            Scope::Egress => (j.egress, &j.scopes[0]),
            Scope::Ingress => (j.ingress, &j.scopes[1]),
            Scope::Flow => (j.decision, &j.scopes[2]),
        };
        let (pass, deciding, why) = (scope.0, Arc::clone(&scope.1), Arc::clone(&scope.2));
        // A side that is not enforced passes whatever its policy says.
        let decision = if pass { Decision::Allowed } else { decision };
        let change = match (observed.delivered(), pass) {
            (true, false) => Change::Break,
            (false, true) => Change::NewlyAllowed,
            _ => Change::Unchanged,
        };
        LineVerdict {
            file: Arc::clone(file),
            line,
            verdict: if decision == Decision::Allowed {
                "allowed"
            } else {
                "denied"
            },
            reason: None,
            detail: None,
            from: Some(from.group.clone()),
            to: Some(to.group.clone()),
            protocol: Some(protocol),
            port: Some(port),
            observed: Some(observed),
            compared: Some(compared),
            change: Some(change),
            egress: Some(j.egress),
            ingress: Some(j.ingress),
            deciding,
            explanation: Some(why),
            notes,
        }
    }
}

/// The enforcement point a record observed (see the module doc).
pub fn scope(f: &Flow, observed: Observed) -> Scope {
    let point = f.trace_observation_point.as_deref();
    if observed == Observed::Delivered && point == Some("TO_ENDPOINT") {
        return Scope::Flow;
    }
    match f.traffic_direction.as_deref() {
        Some("EGRESS") => return Scope::Egress,
        Some("INGRESS") => return Scope::Ingress,
        _ => {}
    }
    match point {
        Some(
            "TO_OVERLAY" | "TO_NETWORK" | "TO_STACK" | "TO_HOST" | "TO_PROXY" | "FROM_ENDPOINT",
        ) if observed == Observed::Delivered => Scope::Egress,
        _ => Scope::Flow,
    }
}
