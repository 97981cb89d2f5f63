//! verdict-lint: findings that show where policies are broader or more
//! broken than their authors think.
//!
//! ```text
//!  Inventory + Engine + Routing + paths ──▶ Context ──▶ rules/*.rs ──▶ Findings
//!                                                         │
//!                        config (enable, severity) ◀──────┤──▶ suppressions (annotations)
//!                                                         ▼
//!                                          render: text / JSON / SARIF 2.1.0
//! ```
//!
//! Every rule is one file in `rules/`, with a stable code and name, a
//! default severity, and a doc comment (What it does / Why is this bad /
//! Example / How to fix) published by `verdict lint --explain` and in
//! docs/rules.md. Codes are never reused.

pub mod config;
pub mod context;
mod index;
pub mod render;
pub mod rules;
pub mod sarif;

pub use config::LintConfig;
pub use context::Context;

use serde::Serialize;
use std::fmt;
use verdict_core::source::{Location, ObjectRef};

include!(concat!(env!("OUT_DIR"), "/rule_docs.rs"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Info,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warning" | "warn" => Some(Level::Warning),
            "info" | "note" => Some(Level::Info),
            _ => None,
        }
    }

    /// Whether a finding of this level is at or above `threshold`.
    pub fn at_least(self, threshold: Level) -> bool {
        self <= threshold
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        })
    }
}

/// A rule's identity and defaults.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Meta {
    /// Stable code, e.g. `VRD001`; never reused.
    pub code: &'static str,
    /// kebab-case name saying what is flagged.
    pub name: &'static str,
    pub level: Level,
    /// One line.
    pub summary: &'static str,
}

impl Meta {
    /// The rule's documentation (its doc comment).
    pub fn doc(&self) -> &'static str {
        RULE_DOCS
            .iter()
            .find(|(c, _)| *c == self.code)
            .map(|(_, d)| *d)
            .unwrap_or("")
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub location: Location,
    pub code: &'static str,
    pub name: &'static str,
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// Where in the object, e.g. `spec.ingress[0]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
    /// How to fix it.
    pub help: String,
}

pub trait Rule: Sync {
    fn meta(&self) -> Meta;
    fn check(&self, cx: &Context, out: &mut Vec<Finding>);
}

impl Meta {
    /// A finding of this rule.
    pub fn finding(
        &self,
        location: Location,
        object: Option<ObjectRef>,
        path: Option<String>,
        message: String,
        help: String,
    ) -> Finding {
        Finding {
            location,
            code: self.code,
            name: self.name,
            level: self.level,
            object,
            path,
            message,
            help,
        }
    }
}

/// Every rule, in code order.
pub fn registry() -> Vec<&'static dyn Rule> {
    rules::ALL.to_vec()
}

/// Looks a rule up by code or name.
pub fn find_rule(key: &str) -> Option<&'static dyn Rule> {
    rules::ALL
        .iter()
        .copied()
        .find(|r| r.meta().code.eq_ignore_ascii_case(key) || r.meta().name == key)
}

/// The outcome of a lint run.
#[derive(Debug, Default, Serialize)]
pub struct LintReport {
    pub findings: Vec<Finding>,
    /// Findings silenced by a `verdict.dev/ignore` annotation, with the reason.
    pub suppressed: Vec<(Finding, String)>,
    /// Problems with the configuration or with suppressions.
    pub notes: Vec<String>,
}

/// Runs every enabled rule, applies configured levels and suppressions,
/// and sorts the findings.
pub fn run(cx: &Context, config: &LintConfig) -> LintReport {
    let mut report = LintReport::default();
    let mut raw = Vec::new();
    for rule in registry() {
        let meta = rule.meta();
        if !config.enabled(meta.code) {
            continue;
        }
        let start = raw.len();
        rule.check(cx, &mut raw);
        if let Some(level) = config.level(meta.code) {
            for f in raw.iter_mut().skip(start) {
                f.level = level;
            }
        }
    }
    raw.sort();
    raw.dedup();
    let (suppressions, notes) = context::suppressions(cx.inv);
    report.notes = notes;
    // (object, code) -> the first reason given.
    let mut reasons: std::collections::HashMap<(ObjectRef, String), String> =
        std::collections::HashMap::new();
    for (obj, code, why) in suppressions {
        reasons
            .entry((obj, code.to_ascii_uppercase()))
            .or_insert(why);
    }
    for f in raw {
        let reason = f.object.as_ref().and_then(|o| {
            reasons
                .get(&(o.clone(), f.code.to_ascii_uppercase()))
                .cloned()
        });
        match reason {
            Some(why) => report.suppressed.push((f, why)),
            None => report.findings.push(f),
        }
    }
    report
}

/// docs/rules.md: every rule's documentation.
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "# Lint rules\n\nGenerated by `verdict lint --rules-doc` from each rule's doc comment \
         (crates/verdict-lint/src/rules/); do not edit by hand.\n\n| code | name | default level | summary |\n|---|---|---|---|\n",
    );
    for r in registry() {
        let m = r.meta();
        out.push_str(&format!(
            "| [{}](#{}) | `{}` | {} | {} |\n",
            m.code,
            m.code.to_ascii_lowercase(),
            m.name,
            m.level,
            m.summary
        ));
    }
    for r in registry() {
        let m = r.meta();
        out.push_str(&format!(
            "\n## {}\n\n`{}` (default level: {})\n\n{}\n",
            m.code,
            m.name,
            m.level,
            m.doc()
        ));
    }
    out
}
