//! `verdict matrix`: who can reach whom, computed from the resolved policy
//! maps of every identity (never pods x pods x ports).
//!
//! ```text
//!  for each destination D with an ingress policy:   sources = peers in D's ingress map
//!  for each source S with an egress policy:         destinations = peers in S's egress map
//!  a cell (S, D) = ports allowed by D's ingress side AND S's egress side,
//!                  over the port classes cut by both sides' entries
//!  pairs where neither side has a policy are unrestricted: summarised, not listed
//! ```

mod ctx;
pub mod delta;
pub mod json;
mod pairs;
pub mod render;
pub mod summary;

pub(crate) use ctx::{port_class, port_classes, side, side_verdict, CellData, Ctx, Scratch, Side};
pub use pairs::matrix_by_pairs;

use crate::engine::{Engine, Party};
use crate::peerset::PeerRef;
use crate::policy::Protocol;
use crate::resolved::{resolve_all_with, resolve_plan, Plan, ResolvedPolicy};
use serde::Serialize;

/// A node of the matrix: an identity, shown by its workloads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Node {
    /// `ns/kind/name` of the workloads (joined), or `reserved:world`, `cidr 10.0.0.0/8`.
    pub name: String,
    pub namespace: Option<String>,
    pub identity: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortRange {
    pub protocol: Protocol,
    pub from: u16,
    pub to: u16,
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.protocol,
            crate::policy::port_text(self.from, self.to)
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub from: Node,
    pub to: Node,
    pub ports: Vec<PortRange>,
    /// Some allowed traffic goes through the L7 proxy.
    pub proxied: bool,
    /// A deny rule removes ports that an allow rule would open.
    pub deny_decided: bool,
    /// The rules that allow (or deny) the traffic.
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    pub cells: Vec<Cell>,
    /// Identities with no ingress policy: every source may reach them
    /// unless its own egress policy forbids it.
    pub open_ingress: Vec<String>,
    /// Identities with no egress policy: they may reach every destination
    /// whose ingress policy admits them.
    pub open_egress: Vec<String>,
    pub identities: usize,
}

/// Options of the matrix.
#[derive(Debug, Clone, Default)]
pub struct MatrixOptions {
    pub namespace: Option<String>,
    pub workload: Option<String>,
}

/// Peers are numbered densely: identity index `i` is `i`, CIDR selection
/// of rank `c` is `identities + c`.
pub(crate) fn peer_of(q: usize, n: usize) -> PeerRef {
    let q32 = u32::try_from(q).unwrap_or(u32::MAX);
    match q.checked_sub(n) {
        Some(c) => PeerRef::Cidr(u32::try_from(c).unwrap_or(u32::MAX)),
        None => PeerRef::Identity(q32),
    }
}

/// The maps of every identity and of the reserved identities that are
/// local endpoints.
pub(crate) fn resolve_for_matrix<'a>(engine: &Engine<'a>) -> Vec<ResolvedPolicy<'a>> {
    resolve_all_with(engine, threads(), &matrix_parties(engine))
}

/// [`resolve_for_matrix`] without rules (see [`Plan::without_rules`]).
pub(crate) fn resolve_for_matrix_without_rules<'a>(engine: &Engine<'a>) -> Vec<ResolvedPolicy<'a>> {
    resolve_plan(&matrix_plan(engine).without_rules(), threads())
}

/// The plan of the maps [`resolve_for_matrix`] builds (with their rules):
/// one per endpoint identity, then the reserved identities that are local
/// endpoints.
pub(crate) fn matrix_plan<'e, 'a>(engine: &'e Engine<'a>) -> Plan<'e, 'a> {
    Plan::new(engine, &matrix_parties(engine))
}

/// The reserved identities that are local endpoints, whose maps the
/// matrix reads after every endpoint identity's.
pub(crate) fn matrix_parties(engine: &Engine) -> Vec<Party> {
    ["ingress", "health", "init", "unmanaged"]
        .iter()
        .filter_map(|name| engine.party(name).ok())
        .collect()
}

pub(crate) use crate::threads;

/// Computes the matrix of every identity: summarised by groups of
/// identities that every policy treats alike ([`crate::matrix_summary`]),
/// then expanded to one cell per connected pair.
pub fn matrix(engine: &Engine, opts: &MatrixOptions) -> Matrix {
    crate::matrix_summary::summarise(engine, opts).expand()
}

pub(crate) fn node_matches(opts: &MatrixOptions, n: Option<&Node>) -> bool {
    let Some(n) = n else {
        return opts.namespace.is_none() && opts.workload.is_none();
    };
    opts.namespace
        .as_deref()
        .is_none_or(|ns| n.namespace.as_deref() == Some(ns))
        && opts.workload.as_deref().is_none_or(|w| n.name.contains(w))
}
