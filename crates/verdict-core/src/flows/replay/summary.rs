//! Judged records summarised by group (change, source, destination,
//! protocol, port): memory bounded by the number of groups, not records;
//! text and Markdown renderings.

use super::{skip, Change, LineVerdict, Observed};
use crate::policy::Protocol;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

/// Connections grouped by workload pair, port and change.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub from: String,
    pub to: String,
    pub protocol: Protocol,
    pub port: u16,
    pub change: Change,
    pub verdict: &'static str,
    /// Records per observed outcome.
    pub observed: BTreeMap<Observed, usize>,
    pub count: usize,
    pub deciding: Arc<[String]>,
    pub explanation: Arc<str>,
    /// The first record of the group (file:line).
    pub first: String,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub notes: BTreeSet<String>,
}

/// Totals and groups of a replay (memory bounded by the number of
/// distinct groups and skip categories, not by the number of records).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub records: usize,
    pub judged: usize,
    pub skipped: usize,
    pub breaks: usize,
    pub newly_allowed: usize,
    pub unchanged: usize,
    pub malformed: usize,
    pub skipped_by_reason: BTreeMap<&'static str, usize>,
    #[serde(skip)]
    groups: BTreeMap<(Change, String, String, Protocol, u16), Group>,
}

/// Groups kept before new ones are merged (see [`Summary::add`]).
pub const GROUPS_MAX: usize = 50_000;
const OTHER_WORLD: &str = "cidr:(other addresses)";
const OTHER: &str = "(other connections)";

/// Most notes kept per group.
const NOTES_MAX: usize = 8;

impl Summary {
    pub fn add(&mut self, v: &LineVerdict) {
        self.records += 1;
        if let Some(r) = v.reason {
            self.skipped += 1;
            *self.skipped_by_reason.entry(r).or_default() += 1;
            if r == skip::MALFORMED {
                self.malformed += 1;
            }
            return;
        }
        self.judged += 1;
        let (Some(from), Some(to), Some(protocol), Some(port), Some(change), Some(observed)) = (
            v.from.as_ref(),
            v.to.as_ref(),
            v.protocol,
            v.port,
            v.change,
            v.observed,
        ) else {
            return;
        };
        match change {
            Change::Break => self.breaks += 1,
            Change::NewlyAllowed => self.newly_allowed += 1,
            Change::Unchanged => self.unchanged += 1,
        }
        // Bounded: past GROUPS_MAX groups, new world addresses are
        // grouped as one, past twice that every new pair is.
        let mut key = (change, from.clone(), to.clone(), protocol, port);
        if self.groups.len() >= GROUPS_MAX && !self.groups.contains_key(&key) {
            for side in [&mut key.1, &mut key.2] {
                if side.starts_with("cidr:") {
                    *side = OTHER_WORLD.to_string();
                }
            }
            if self.groups.len() >= 2 * GROUPS_MAX && !self.groups.contains_key(&key) {
                key.1 = OTHER.to_string();
                key.2 = OTHER.to_string();
            }
        }
        let g = self.groups.entry(key.clone()).or_insert_with(|| Group {
            from: key.1.clone(),
            to: key.2.clone(),
            protocol,
            port,
            change,
            verdict: v.verdict,
            observed: BTreeMap::new(),
            count: 0,
            deciding: Arc::clone(&v.deciding),
            explanation: v.explanation.clone().unwrap_or_else(|| Arc::from("")),
            first: format!("{}:{}", v.file, v.line),
            notes: BTreeSet::new(),
        });
        g.count += 1;
        *g.observed.entry(observed).or_default() += 1;
        for n in &v.notes {
            if g.notes.len() < NOTES_MAX {
                g.notes.insert(n.clone());
            }
        }
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The summary and the groups as JSON values.
    pub fn to_json(&self) -> serde_json::Value {
        let groups: Vec<&Group> = self.groups.values().collect();
        serde_json::json!({
            "summary": self,
            "groups": groups,
        })
    }

    /// The groups of one kind of change, in key order.
    fn groups_of(&self, change: Change) -> Vec<&Group> {
        self.groups
            .values()
            .filter(|g| g.change == change)
            .collect()
    }

    /// One line: records, judged, breaks, newly allowed, skipped.
    pub fn headline_text(&self) -> String {
        self.headline()
    }

    fn headline(&self) -> String {
        format!(
            "{} records: {} connections judged ({} would break, {} newly allowed, {} unchanged), {} skipped",
            self.records, self.judged, self.breaks, self.newly_allowed, self.unchanged, self.skipped
        )
    }

    fn skipped_line(&self) -> String {
        self.skipped_by_reason
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Text: groups that break, then newly allowed, then unchanged.
    pub fn to_text(&self) -> String {
        use crate::text::push_line;
        let mut out = String::new();
        for (change, title, _) in SECTIONS {
            let gs = self.groups_of(change);
            if gs.is_empty() {
                continue;
            }
            push_line(&mut out, &format!("{title}: {} group(s)", gs.len()));
            for g in gs {
                push_line(
                    &mut out,
                    &format!(
                        "  {} -> {} {}/{}: {} now; observed {} (first at {})",
                        g.from,
                        g.to,
                        g.protocol,
                        g.port,
                        g.verdict,
                        observed_summary(g),
                        g.first
                    ),
                );
                if change != Change::Unchanged || g.verdict == "denied" {
                    push_line(&mut out, &format!("    {}", g.explanation));
                }
                for n in &g.notes {
                    push_line(&mut out, &format!("    note: {n}"));
                }
            }
        }
        push_line(&mut out, &self.headline());
        if !self.skipped_by_reason.is_empty() {
            push_line(&mut out, &format!("skipped: {}", self.skipped_line()));
        }
        out
    }

    /// Markdown for pull requests.
    pub fn to_markdown(&self) -> String {
        use crate::text::markdown as md_cell;
        let mut out = String::new();
        let _ = writeln!(out, "### Replay of observed flows\n\n{}\n", self.headline());
        for (change, _, title) in SECTIONS {
            let gs = self.groups_of(change);
            if gs.is_empty() {
                continue;
            }
            let _ = writeln!(out, "#### {title}\n\n| from | to | port | now | observed | records | why |\n|---|---|---|---|---|---:|---|");
            for g in gs {
                let _ = writeln!(
                    out,
                    "| {} | {} | {}/{} | {} | {} | {} | {} |",
                    md_cell(&g.from),
                    md_cell(&g.to),
                    g.protocol,
                    g.port,
                    g.verdict,
                    observed_summary(g),
                    g.count,
                    md_cell(&g.explanation)
                );
            }
            out.push('\n');
        }
        if !self.skipped_by_reason.is_empty() {
            let _ = writeln!(out, "Skipped: {}", md_cell(&self.skipped_line()));
        }
        out
    }
}

/// The three sections of a replay, in order: which change, its title in
/// text and its title in Markdown.
const SECTIONS: [(Change, &str, &str); 3] = [
    (
        Change::Break,
        "WOULD BREAK (observed delivered, denied now)",
        "Would break (observed delivered, denied now)",
    ),
    (
        Change::NewlyAllowed,
        "NEWLY ALLOWED (observed dropped, allowed now)",
        "Newly allowed (observed dropped, allowed now)",
    ),
    (Change::Unchanged, "UNCHANGED", "Unchanged"),
];

/// What was observed of a group: "3 delivered, 1 dropped".
pub(super) fn observed_summary(g: &Group) -> String {
    g.observed
        .iter()
        .map(|(o, n)| format!("{n} {}", observed_name(*o)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn observed_name(o: Observed) -> &'static str {
    match o {
        Observed::Delivered => "delivered",
        Observed::Dropped => "dropped",
        Observed::Audit => "audit",
    }
}

impl Change {
    pub fn name(self) -> &'static str {
        self.as_str()
    }
}
