//! Text and Markdown renderings of a [`PathsReport`] (JSON is its serde form).

use crate::engine::Decision;
use crate::paths::{Controller, EntryPoint, Hop, PathsReport};

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

fn mark(d: Decision) -> &'static str {
    match d {
        Decision::Allowed => "ALLOWED",
        Decision::Denied => "DENIED",
    }
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

fn hop_text(out: &mut String, h: &Hop, indent: &str) {
    out.push_str(&format!("{indent}{}: {}\n", h.name, h.decision));
    for c in &h.checks {
        let enforced = if c.enforced { "" } else { " (not enforced)" };
        out.push_str(&format!(
            "{indent}  {} {} -> {} {}/{}: {}{enforced} - {}\n",
            c.side, c.source, c.destination, c.protocol, c.port, c.decision, c.explanation
        ));
    }
    for n in &h.notes {
        out.push_str(&format!("{indent}  note: {n}\n"));
    }
}

impl PathsReport {
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for ep in &self.entry_points {
            out.push_str(&entry_title(ep));
            out.push('\n');
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
                out.push_str(&format!(
                    "  {} [{}] hostnames: {hosts}{state}\n",
                    r.route, r.location
                ));
                for f in &r.findings {
                    out.push_str(&format!("    ! {f}\n"));
                }
                if r.attached && r.backends.is_empty() {
                    out.push_str("    no backends (redirect or filter only)\n");
                }
                for b in &r.backends {
                    out.push_str(&format!(
                        "    {} -> Service {} [{}]: {}\n",
                        b.rule,
                        b.service,
                        b.location,
                        mark(b.decision)
                    ));
                    for f in &b.findings {
                        out.push_str(&format!("      ! {f}\n"));
                    }
                    for p in &b.paths {
                        let port = p
                            .target_port
                            .map(|t| format!(" targetPort {t}"))
                            .unwrap_or_default();
                        out.push_str(&format!(
                            "      {}{port}: {}\n",
                            p.backend,
                            mark(p.decision)
                        ));
                        for f in &p.findings {
                            out.push_str(&format!("        ! {f}\n"));
                        }
                        for h in &p.hops {
                            hop_text(&mut out, h, "        ");
                        }
                    }
                }
            }
        }
        if !self.findings.is_empty() {
            out.push_str("findings:\n");
            for f in &self.findings {
                out.push_str(&format!("  ! {f}\n"));
            }
        }
        out.push_str(&format!(
            "{} paths: {} allowed, {} denied\n",
            self.summary.paths, self.summary.allowed, self.summary.denied
        ));
        out
    }

    /// Markdown for pull-request comments: one table per entry point, the
    /// failing hop and rule for each denied path.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### verdict paths\n\n");
        out.push_str(&format!(
            "**{} paths: {} allowed, {} denied**\n\n",
            self.summary.paths, self.summary.allowed, self.summary.denied
        ));
        for ep in &self.entry_points {
            out.push_str(&format!("#### {}\n\n", entry_title(ep).replace('|', "\\|")));
            out.push_str("| route | rule | service | backend | verdict | deciding hop |\n|---|---|---|---|---|---|\n");
            for r in &ep.routes {
                if !r.attached {
                    out.push_str(&format!(
                        "| {} | | | | :x: not attached | {} |\n",
                        r.route,
                        r.findings.join("; ")
                    ));
                    continue;
                }
                for b in &r.backends {
                    if b.paths.is_empty() {
                        out.push_str(&format!(
                            "| {} | {} | {} | | :x: | {} |\n",
                            r.route,
                            b.rule,
                            b.service,
                            b.findings.join("; ")
                        ));
                    }
                    for p in &b.paths {
                        let why = p
                            .hops
                            .iter()
                            .find(|h| h.decision == Decision::Denied)
                            .map(|h| {
                                let c = h.checks.iter().find(|c| c.decision == Decision::Denied);
                                format!(
                                    "{}: {}",
                                    h.name,
                                    c.map(|c| c.explanation.clone()).unwrap_or_default()
                                )
                            })
                            .or_else(|| p.findings.first().cloned())
                            .unwrap_or_default();
                        let v = if p.decision == Decision::Allowed {
                            ":white_check_mark: allowed"
                        } else {
                            ":x: denied"
                        };
                        out.push_str(&format!(
                            "| {} | {} | {} | {} | {v} | {} |\n",
                            r.route,
                            b.rule.replace('|', "\\|"),
                            b.service,
                            p.backend,
                            why.replace('|', "\\|")
                        ));
                    }
                }
            }
            out.push('\n');
        }
        if !self.findings.is_empty() {
            out.push_str("**Findings**\n\n");
            for f in &self.findings {
                out.push_str(&format!("- {f}\n"));
            }
        }
        out
    }
}
