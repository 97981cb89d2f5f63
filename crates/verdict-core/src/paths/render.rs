//! Text and Markdown renderings of a [`PathsReport`] (JSON is its serde form).
//! Every line of text is escaped as a whole ([`push_line`]): a newline or
//! an escape sequence in a name is shown as `\n`, `\u{1b}`, never raw.

use crate::engine::Decision;
use crate::names::party_text;
use crate::near_miss::near_miss_lines;
use crate::paths::{Check, Controller, EntryPoint, Hop, PathsReport, PodPath, Status, Summary};
use crate::side::{capped_head, thousands, LIST_MAX, LIST_SHOWN};
use crate::text::{markdown, push_line};
use std::collections::HashMap;

fn controller_text(c: &Controller) -> String {
    match c {
        Controller::Cilium => "Cilium Envoy (identity reserved:ingress)".to_string(),
        Controller::Pods {
            controller,
            pods,
            service,
            ..
        } => format!(
            "{controller}: pods {}{}",
            pods.join(", "),
            service
                .as_ref()
                .map(|s| format!(" behind {s}"))
                .unwrap_or_default()
        ),
        Controller::Unknown { controller } => {
            format!("{controller} (controller pods not in the input)")
        }
    }
}

fn mark(d: Status) -> &'static str {
    match d {
        Status::Allowed => "ALLOWED",
        Status::Denied => "DENIED",
        Status::NotChecked => "NOT CHECKED",
    }
}

/// `N paths: a allowed, d denied, n not checked` (`1 path: ...`).
pub fn summary_text(s: &Summary) -> String {
    format!(
        "{}: {} allowed, {} denied, {} not checked",
        crate::text::plural(s.paths, "path", "paths"),
        s.allowed,
        s.denied,
        s.not_checked
    )
}

/// Why a path is not allowed: the first denying check, else why it was not
/// checked, else its first finding.
pub fn why_not(p: &PodPath) -> String {
    p.hops
        .iter()
        .find(|h| h.decision == Status::Denied)
        .map(|h| {
            let c = h.checks.iter().find(|c| c.decision == Decision::Denied);
            format!(
                "{}: {}",
                h.name,
                c.map(|c| c.explanation.clone()).unwrap_or_default()
            )
        })
        .or_else(|| p.not_checked.clone())
        .or_else(|| p.findings.first().cloned())
        .unwrap_or_default()
}

fn entry_title(ep: &EntryPoint) -> String {
    format!(
        "{} listener {} ({} :{}{}) via {}  [{}]",
        ep.object,
        ep.listener,
        ep.protocol,
        ep.port,
        ep.hostname
            .as_ref()
            .map(|h| format!(" {h}"))
            .unwrap_or_default(),
        controller_text(&ep.controller),
        ep.location
    )
}

/// Where a check is made and what it decided: `at the backend (ingress):
/// ingress (Cilium's Envoy) -> shop/deployment/api TCP/8080: denied - why`.
pub fn check_text(c: &Check) -> String {
    let enforced = if c.enforced { "" } else { " (not enforced)" };
    let by_envoy = if c.side.ends_with("(checked by Envoy)") {
        ", checked by Envoy"
    } else {
        ""
    };
    format!(
        "at the {} ({}{by_envoy}): {} -> {} {}/{}: {}{enforced} - {}",
        c.role,
        c.direction,
        party_text(&c.source, true),
        party_text(&c.destination, true),
        c.protocol,
        c.port,
        c.decision,
        c.explanation
    )
}

/// A hop and its checks; notes repeating `said` (the path's reason for not
/// being checked, already shown) are left out.
fn hop_text(out: &mut String, h: &Hop, indent: &str, said: Option<&String>) {
    push_line(out, &format!("{indent}{}: {}", h.name, h.decision));
    for c in &h.checks {
        push_line(out, &format!("{indent}  {}", check_text(c)));
        for line in near_miss_lines(&c.near_miss, |p| party_text(p, true)) {
            push_line(out, &format!("{indent}    {line}"));
        }
    }
    for n in h.notes.iter().filter(|n| Some(*n) != said) {
        push_line(out, &format!("{indent}  note: {n}"));
    }
}

/// The paths of a backend Service in groups of one class
/// ([`PodPath::class`]: identical but for the pod's name), in order of
/// their first path.
fn classes(paths: &[PodPath]) -> Vec<Vec<&PodPath>> {
    let mut groups: Vec<Vec<&PodPath>> = Vec::new();
    let mut at: HashMap<usize, usize> = HashMap::new();
    for p in paths {
        match p.class.and_then(|c| at.get(&c)) {
            Some(&i) => groups[i].push(p),
            None => {
                if let Some(c) = p.class {
                    at.insert(c, groups.len());
                }
                groups.push(vec![p]);
            }
        }
    }
    groups
}

/// The backend cell of a Markdown row for a group of paths of one class:
/// the pod, or the pods capped and counted (`a, b, c and 47 more (50 pods
/// of one identity, verdict of the first)`): the row's deciding hop names
/// the first pod.
fn backends_cell(group: &[&PodPath]) -> String {
    match group {
        [p] => p.backend.clone(),
        _ => format!(
            "{}{} ({} pods of one identity, verdict of the first)",
            capped_head(group.iter().map(|p| &p.backend), group.len()),
            if group.len() > LIST_MAX {
                format!(" and {} more", thousands(group.len() - LIST_SHOWN))
            } else {
                String::new()
            },
            thousands(group.len())
        ),
    }
}

/// One block for a group of paths of one class: its pods named (capped),
/// then the first path's findings and hops, which hold for each.
fn pod_text(out: &mut String, group: &[&PodPath]) {
    let Some(p) = group.first() else {
        return;
    };
    let port = p
        .target_port
        .map(|t| format!(" targetPort {t}"))
        .unwrap_or_default();
    let why = p
        .not_checked
        .as_ref()
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    let names = if group.len() == 1 {
        party_text(&p.backend, false)
    } else {
        format!(
            "{}{}: {} pods of one identity, checks shown for the first,",
            capped_head(
                group.iter().map(|p| party_text(&p.backend, false)),
                group.len()
            ),
            if group.len() > LIST_MAX {
                format!(
                    " and {} more (`-o json` lists each)",
                    thousands(group.len() - LIST_SHOWN)
                )
            } else {
                String::new()
            },
            thousands(group.len())
        )
    };
    push_line(
        out,
        &format!("      {names}{port}: {}{why}", mark(p.decision)),
    );
    for f in p
        .findings
        .iter()
        .filter(|f| p.not_checked.as_ref() != Some(f))
    {
        push_line(out, &format!("        ! {f}"));
    }
    for h in &p.hops {
        hop_text(out, h, "        ", p.not_checked.as_ref());
    }
}

impl PathsReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for ep in &self.entry_points {
            push_line(&mut out, &entry_title(ep));
            if ep.routes.is_empty() {
                out.push_str("  no route attaches to this listener\n");
            }
            for r in &ep.routes {
                let state = if r.attached {
                    String::new()
                } else {
                    " NOT ATTACHED".to_string()
                };
                let hosts = if r.hostnames.is_empty() {
                    "*".to_string()
                } else {
                    r.hostnames.join(", ")
                };
                push_line(
                    &mut out,
                    &format!("  {} [{}] hostnames: {hosts}{state}", r.route, r.location),
                );
                for f in &r.findings {
                    push_line(&mut out, &format!("    ! {f}"));
                }
                if r.attached && r.backends.is_empty() {
                    out.push_str("    no backends (redirect or filter only)\n");
                }
                for b in &r.backends {
                    push_line(
                        &mut out,
                        &format!(
                            "    {} -> Service {} [{}]: {}",
                            b.rule,
                            b.service,
                            b.location,
                            mark(b.decision)
                        ),
                    );
                    for f in &b.findings {
                        push_line(&mut out, &format!("      ! {f}"));
                    }
                    for group in classes(&b.paths) {
                        pod_text(&mut out, &group);
                    }
                }
            }
        }
        if !self.findings.is_empty() {
            out.push_str("findings:\n");
            for f in &self.findings {
                push_line(&mut out, &format!("  ! {f}"));
            }
        }
        push_line(&mut out, &summary_text(&self.summary));
        out
    }

    /// Markdown for pull-request comments: one table per entry point, the
    /// failing hop and rule for each denied path; the pods of one class
    /// (one identity, identical checks) share a row, named as in the text
    /// view. Every text from the input
    /// is escaped ([`markdown`]): a `|`, a backtick, `<!--` or a newline in
    /// a name cannot split a cell or hide the rest of the comment.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### verdict paths\n\n");
        out.push_str(&format!("**{}**\n\n", summary_text(&self.summary)));
        for ep in &self.entry_points {
            out.push_str(&format!("#### {}\n\n", markdown(&entry_title(ep))));
            out.push_str("| route | rule | service | backend | verdict | deciding hop |\n|---|---|---|---|---|---|\n");
            for r in &ep.routes {
                let route = markdown(&r.route.to_string());
                if !r.attached {
                    out.push_str(&format!(
                        "| {route} | | | | :x: not attached | {} |\n",
                        markdown(&r.findings.join("; "))
                    ));
                    continue;
                }
                for b in &r.backends {
                    if b.paths.is_empty() {
                        let v = match b.decision {
                            Status::NotChecked => ":grey_question: not checked",
                            _ => ":x: denied",
                        };
                        out.push_str(&format!(
                            "| {route} | {} | {} | | {v} | {} |\n",
                            markdown(&b.rule),
                            markdown(&b.service),
                            markdown(&b.findings.join("; "))
                        ));
                    }
                    for group in classes(&b.paths) {
                        let Some(p) = group.first() else {
                            continue;
                        };
                        let why = if p.decision == Status::Allowed {
                            String::new()
                        } else {
                            why_not(p)
                        };
                        let v = match p.decision {
                            Status::Allowed => ":white_check_mark: allowed",
                            Status::Denied => ":x: denied",
                            Status::NotChecked => ":grey_question: not checked",
                        };
                        out.push_str(&format!(
                            "| {route} | {} | {} | {} | {v} | {} |\n",
                            markdown(&b.rule),
                            markdown(&b.service),
                            markdown(&backends_cell(&group)),
                            markdown(&why)
                        ));
                    }
                }
            }
            out.push('\n');
        }
        if !self.findings.is_empty() {
            out.push_str("**Findings**\n\n");
            for f in &self.findings {
                out.push_str(&format!("- {}\n", markdown(f)));
            }
        }
        out
    }
}
