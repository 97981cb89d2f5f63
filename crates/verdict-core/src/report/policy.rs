//! The resolved-policy panels of the report, as data: one compact JSON
//! document (`<script type="application/json" id="panel-data">`) that the
//! page script draws on demand, one panel at a time. Every text (peer
//! names, ports, decisions, rule names and file:line) is stored once in a
//! string table and referenced by index; rules are (text, location) pairs
//! referenced by index; a panel's body (modes, selecting rules, rows) is
//! stored once for all identities whose panels would read alike, so the
//! page grows with the distinct policies, not with identities x rules.
//! Peers are named by their workloads (`shop/deployment/api`), as
//! `verdict policy` names them (`names.rs`).

use crate::engine::Decision;
use crate::identity::Identity;
use crate::policy::{port_text, Direction, Origin, Tier};
use crate::resolved::{PeerKey, PeerRef, PeerSet, ResolvedPolicy};
use crate::text::escape;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Most rules named in one cell; the rest are counted (`verdict policy`
/// lists them all). A clusterwide subject can be selected by thousands.
const ORIGINS_SHOWN: usize = 5;

/// Most summarised entries listed in a panel.
const ENTRIES_SHOWN: usize = 40;

/// Above this many (peer, entry) rows a panel lists summarised entries.
pub(super) const PANEL_ROWS: usize = 64;

/// A list of rules as a cell shows it: the first [`ORIGINS_SHOWN`] rule
/// indices and how many more there are.
#[derive(Serialize, PartialEq, Eq, Hash, Clone)]
struct Rules(Vec<u32>, usize);

/// One table row: class, direction, peer, protocol/port, decision (string
/// indices) and the rules.
#[derive(Serialize, PartialEq, Eq, Hash, Clone)]
struct Row(u32, u32, u32, u32, u32, Rules);

/// What a panel shows below its title and identity: each direction's mode
/// and selecting rules, a note above the table, the rows, a note below.
/// `None` text is `u32::MAX` nowhere: notes are optional indices.
#[derive(Serialize, PartialEq, Eq, Hash, Clone)]
struct Body {
    /// (direction, mode, selecting rules) for ingress and egress.
    modes: Vec<(u32, u32, Rules)>,
    note: Option<u32>,
    rows: Vec<Row>,
    tail: Option<u32>,
}

/// The panel data of the page (serialised as the JSON document).
#[derive(Serialize, Default)]
pub(super) struct Panels {
    /// Every text, once.
    s: Vec<String>,
    /// Rules: (text, file:line) as string indices.
    r: Vec<(u32, u32)>,
    /// Distinct panel bodies.
    b: Vec<Body>,
    /// Panels by key number: (title, identity text, body), the last two
    /// absent for a name that is not an endpoint of the input.
    p: Vec<(u32, Option<(u32, u32)>)>,
    #[serde(skip)]
    s_at: FxHashMap<String, u32>,
    #[serde(skip)]
    r_at: FxHashMap<*const Origin, u32>,
    #[serde(skip)]
    b_at: FxHashMap<Body, u32>,
}

impl Panels {
    /// The index of a text from the input (control characters shown
    /// escaped; the page sets it as text, never as markup).
    fn text(&mut self, t: &str) -> u32 {
        let t = escape(t);
        if let Some(&i) = self.s_at.get(t.as_ref()) {
            return i;
        }
        let i = u32::try_from(self.s.len()).unwrap_or(u32::MAX);
        self.s.push(t.to_string());
        self.s_at.insert(t.into_owned(), i);
        i
    }

    fn rule(&mut self, o: &Origin) -> u32 {
        if let Some(&i) = self.r_at.get(&std::ptr::from_ref(o)) {
            return i;
        }
        let text = self.text(&format!("{} {}", o.policy, o.path));
        let at = self.text(&o.location.to_string());
        let i = u32::try_from(self.r.len()).unwrap_or(u32::MAX);
        self.r.push((text, at));
        self.r_at.insert(std::ptr::from_ref(o), i);
        i
    }

    fn rules(&mut self, r: &RawRules) -> Rules {
        let shown = r.shown.iter().map(|o| self.rule(o)).collect();
        Rules(shown, r.total.saturating_sub(r.shown.len()))
    }

    /// Adds the panel of one name: `policy` is `None` for a name that is
    /// not an endpoint of the input. Panels are numbered in call order.
    pub(super) fn add(
        &mut self,
        title: &str,
        policy: Option<&ResolvedPolicy>,
        names: &BTreeMap<u32, String>,
    ) {
        match policy {
            Some(p) => self.add_raw(title, &p.identity, &raw_body(p, names)),
            None => {
                let title = self.text(title);
                self.p.push((title, None));
            }
        }
    }

    /// Adds the panel of an endpoint from its body as [`raw_body`] formed
    /// it (the texts numbered here, in the order they are shown).
    pub(super) fn add_raw(&mut self, title: &str, identity: &Identity, raw: &RawBody) {
        let title = self.text(title);
        let ident = self.text(&format!("identity {identity}"));
        let b = self.body(raw);
        self.p.push((title, Some((ident, b))));
    }

    /// [`Panels::add_raw`] of a body shared by many panels (`seen`: the
    /// number of each shared body added so far, by address; the caller
    /// keeps the bodies alive meanwhile): its texts are numbered once, as
    /// the first panel showing it numbered them (100k synthetic pods:
    /// 10,000 panels, 4,664 bodies).
    pub(super) fn add_shared<'r>(
        &mut self,
        title: &str,
        identity: &Identity,
        raw: &std::sync::Arc<RawBody<'r>>,
        seen: &mut FxHashMap<*const RawBody<'r>, u32>,
    ) {
        let title = self.text(title);
        let ident = self.text(&format!("identity {identity}"));
        let b = match seen.get(&std::sync::Arc::as_ptr(raw)) {
            Some(&b) => b,
            None => {
                let b = self.body(raw);
                seen.insert(std::sync::Arc::as_ptr(raw), b);
                b
            }
        };
        self.p.push((title, Some((ident, b))));
    }

    /// The number of a body (its texts numbered here, in the order they
    /// are shown; equal bodies share one number).
    fn body(&mut self, raw: &RawBody) -> u32 {
        let mut modes = Vec::new();
        for (dir, mode, rules) in &raw.modes {
            let d = self.text(dir);
            let m = self.text(mode);
            let r = self.rules(rules);
            modes.push((d, m, r));
        }
        let note = raw.note.as_deref().map(|n| self.text(n));
        let rows = raw
            .rows
            .iter()
            .map(|r| {
                Row(
                    self.text(r.class),
                    self.text(&r.direction),
                    self.text(&r.peer),
                    self.text(&r.port),
                    self.text(&r.decision),
                    self.rules(&r.rules),
                )
            })
            .collect();
        let tail = raw.tail.as_deref().map(|t| self.text(t));
        let body = Body {
            modes,
            note,
            rows,
            tail,
        };
        match self.b_at.get(&body) {
            Some(&b) => b,
            None => {
                let b = u32::try_from(self.b.len()).unwrap_or(u32::MAX);
                self.b.push(body.clone());
                self.b_at.insert(body, b);
                b
            }
        }
    }

    /// The JSON document, safe inside `<script type="application/json">`
    /// ([`super::script_json`]).
    pub(super) fn json<W: Write>(&self, out: &mut W) {
        super::script_json(out, self);
    }
}

/// A list of rules as a cell shows it, before numbering: the first
/// [`ORIGINS_SHOWN`] and how many there are.
pub(super) struct RawRules<'r> {
    shown: Vec<&'r Origin>,
    total: usize,
}

impl<'r> RawRules<'r> {
    fn of(origins: &[&'r Origin]) -> RawRules<'r> {
        RawRules {
            shown: origins.iter().take(ORIGINS_SHOWN).copied().collect(),
            total: origins.len(),
        }
    }
}

struct RawRow<'r> {
    class: &'static str,
    direction: String,
    peer: String,
    port: String,
    decision: String,
    rules: RawRules<'r>,
}

/// What a panel shows below its title and identity, with its texts
/// (numbered into the page's tables by [`Panels::add_raw`]): formed from a
/// resolved map on any thread, and dropped with the map's entries.
pub(super) struct RawBody<'r> {
    modes: Vec<(String, &'static str, RawRules<'r>)>,
    note: Option<String>,
    rows: Vec<RawRow<'r>>,
    tail: Option<String>,
}

/// The body of `p`'s panel: each direction's mode and selecting rules, and
/// its rows (above [`PANEL_ROWS`] expanded rows, the first
/// [`ENTRIES_SHOWN`] summarised entries with a note).
pub(super) fn raw_body<'r>(p: &ResolvedPolicy<'r>, names: &BTreeMap<u32, String>) -> RawBody<'r> {
    let mut modes = Vec::new();
    for (dir, st) in [
        (Direction::Ingress, &p.ingress),
        (Direction::Egress, &p.egress),
    ] {
        let mode = match (st.enforced, st.default_deny) {
            (false, _) => "not enforced (no policy selects it): everything allowed",
            (true, true) => "enforced, default deny",
            (true, false) => {
                "enforced, no default deny (enableDefaultDeny: false): unmatched traffic allowed"
            }
        };
        modes.push((dir.to_string(), mode, RawRules::of(&st.rules)));
    }
    let row = |(decision, class): (String, &'static str),
               dir: Direction,
               peer,
               port,
               origins: &[&'r Origin]| RawRow {
        class,
        direction: dir.to_string(),
        peer,
        port,
        decision,
        rules: RawRules::of(origins),
    };
    // Expanded rows are peers x entries: above this many, one row per
    // summarised entry (its peer set shown by size and first members).
    // One row per rule entry and port range, as before entries of equal
    // content were merged (see `SetEntry::origins`).
    let mut unmerged: Vec<_> = p
        .entries
        .iter()
        .flat_map(|e| e.origins.iter().map(move |&(seq, o)| (seq, e, o)))
        .collect();
    unmerged.sort_by_key(|&(seq, _, _)| seq);
    let expanded: usize = unmerged.iter().map(|(_, e, _)| e.peers.len()).sum();
    if expanded > PANEL_ROWS {
        let note = format!(
            "{} entries standing for {expanded} (peer, port) rows; each row's peers are shown by their number and first members (`verdict policy` lists every row).",
            unmerged.len()
        );
        let rows = unmerged
            .iter()
            .take(ENTRIES_SHOWN)
            .map(|&(_, e, origin)| {
                let peers = peers_text(p, &e.peers, names);
                let port = format!("{}/{}", e.protocol, port_text(e.from_port, e.to_port));
                let cells = decision_cell(e.decision, e.pass, e.tier, &e.proxied);
                row(cells, e.direction, peers, port, &[origin])
            })
            .collect();
        let tail = (unmerged.len() > ENTRIES_SHOWN).then(|| {
            format!(
                "The first {ENTRIES_SHOWN} entries of {} (`verdict policy` lists every row).",
                unmerged.len()
            )
        });
        return RawBody {
            modes,
            note: Some(note),
            rows,
            tail,
        };
    }
    let rows = p
        .rows()
        .iter()
        .map(|(k, v)| {
            let peer = peer_name(names, &k.peer);
            let port = format!("{}/{}", k.protocol, port_text(k.from_port, k.to_port));
            let cells = decision_cell(v.decision, v.pass, v.tier, &v.proxied);
            row(cells, k.direction, peer, port, &v.origins)
        })
        .collect();
    RawBody {
        modes,
        note: None,
        rows,
        tail: None,
    }
}

fn peer_name(names: &BTreeMap<u32, String>, peer: &PeerKey) -> String {
    match peer {
        PeerKey::Identity { id, name } => {
            names.get(id).cloned().unwrap_or_else(|| name.to_string())
        }
        PeerKey::Cidr { cidr } => format!("cidr {cidr}"),
    }
}

/// The peers of a set as the panel names them: all of a small set, else
/// the first few and the count.
fn peers_text(p: &ResolvedPolicy, set: &PeerSet, names: &BTreeMap<u32, String>) -> String {
    const SHOWN: usize = 3;
    let text = |r: PeerRef| match r {
        PeerRef::Identity(i) => {
            let id = p.names().number(i);
            id.and_then(|id| names.get(&id).cloned())
                .or_else(|| p.names().name(i).map(ToString::to_string))
                .unwrap_or_default()
        }
        PeerRef::Cidr(c) => format!("cidr {}", p.names().cidr(c).unwrap_or_default()),
    };
    let shown: Vec<String> = set.iter().take(SHOWN).map(text).collect();
    if set.len() <= SHOWN {
        shown.join(", ")
    } else {
        format!("{} peers: {}, …", set.len(), shown.join(", "))
    }
}

/// The decision cell of a policy-table row (pass, tier, L7 proxy) and the
/// row's class.
fn decision_cell(
    decision: Decision,
    pass: bool,
    tier: Tier,
    proxied: &[&str],
) -> (String, &'static str) {
    let mut text = if pass {
        "pass (the next tier decides)".to_string()
    } else {
        decision.to_string()
    };
    if tier != Tier::Normal {
        let _ = write!(text, ", {tier} tier");
    }
    if !proxied.is_empty() {
        let _ = write!(text, ", L7 proxy: {}", proxied.join(", "));
    }
    let class = match (pass, decision) {
        (true, _) => "unchecked",
        (false, Decision::Allowed) => "allowed",
        (false, Decision::Denied) => "denied",
    };
    (text, class)
}
