//! CI renderings of lint, paths and test results: JUnit XML and GitHub
//! Actions annotations (see `junit.rs`, `github.rs`).

use crate::github::{annotation, Annotation, Level as Gh};
use crate::junit::{Case, Failure, Suite};
use verdict_core::paths::{PathsReport, Status};
use verdict_core::paths_render::why_not;
use verdict_lint::{Level, LintReport};

fn gh_level(l: Level) -> Gh {
    match l {
        Level::Error => Gh::Error,
        Level::Warning => Gh::Warning,
        Level::Info => Gh::Notice,
    }
}

/// Lint findings as JUnit: one suite per file, one failed test case per
/// finding; no finding gives one passing case, so that CI shows the run.
pub fn lint_junit(report: &LintReport) -> String {
    let mut suites: Vec<Suite> = Vec::new();
    for f in &report.findings {
        let file = f.location.file.to_string();
        if suites.last().is_none_or(|s| s.name != file) {
            suites.push(Suite {
                name: file.clone(),
                cases: Vec::new(),
            });
        }
        let what = f
            .object
            .as_ref()
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        let case = Case {
            name: format!("{} {}{what} ({}:{})", f.code, f.name, file, f.location.line),
            classname: format!("verdict.lint.{}", f.code),
            file: Some(file),
            line: Some(f.location.line),
            failure: Some(Failure {
                message: f.message.clone(),
                kind: f.level.to_string(),
                text: format!(
                    "{} {} ({}) at {}\n{}\nHow to fix: {}\n",
                    f.code, f.name, f.level, f.location, f.message, f.help
                ),
            }),
        };
        if let Some(s) = suites.last_mut() {
            s.cases.push(case);
        }
    }
    if suites.is_empty() {
        suites.push(Suite {
            name: "verdict lint".to_string(),
            cases: vec![Case {
                name: "no findings".to_string(),
                classname: "verdict.lint".to_string(),
                file: None,
                line: None,
                failure: None,
            }],
        });
    }
    crate::junit::render("verdict lint", &suites)
}

/// Lint findings as annotations: errors, warnings and notices by level.
pub fn lint_github(report: &LintReport) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let title = format!("{} {}", f.code, f.name);
        let message = format!("{}\nHow to fix: {}", f.message, f.help);
        out.push_str(&annotation(&Annotation {
            level: gh_level(f.level),
            file: Some(&*f.location.file),
            line: Some(f.location.line),
            title: &title,
            message: &message,
        }));
    }
    out
}

/// Paths that are not allowed, as annotations at the route rule that leads
/// to them: denied ones as errors, those not checked as warnings.
pub fn paths_github(report: &PathsReport) -> String {
    let mut out = String::new();
    for ep in &report.entry_points {
        for r in &ep.routes {
            for b in &r.backends {
                let mut emit = |status: Status, backend: &str, why: String| {
                    let (level, what) = match status {
                        Status::Denied => (Gh::Error, "path denied"),
                        Status::NotChecked => (Gh::Warning, "path not checked"),
                        Status::Allowed => return,
                    };
                    let message = format!(
                        "{} listener {} :{} -> {} -> Service {} -> {backend}: {what}: {why}",
                        ep.object, ep.listener, ep.port, r.route, b.service
                    );
                    out.push_str(&annotation(&Annotation {
                        level,
                        file: Some(&*b.location.file),
                        line: Some(b.location.line),
                        title: &format!("verdict: {what}"),
                        message: &message,
                    }));
                };
                if b.paths.is_empty() {
                    let why = b.not_checked.clone().unwrap_or_default();
                    emit(b.decision, "(no backend)", why);
                }
                for p in &b.paths {
                    emit(p.decision, &p.backend, why_not(p));
                }
            }
        }
    }
    out
}

/// The results of `verdict test`, per test case.
#[derive(Default)]
pub struct TestResults {
    pub cases: Vec<(String, String, Vec<verdict_core::policytest::CheckResult>)>,
}

/// One suite per PolicyTest document (named by file and test name), one
/// test case per expectation.
pub fn test_junit(results: &TestResults) -> String {
    let suites: Vec<Suite> = results
        .cases
        .iter()
        .map(|(file, name, checks)| Suite {
            name: format!("{file}: {name}"),
            cases: checks
                .iter()
                .map(|c| Case {
                    name: c.name.clone(),
                    classname: format!("verdict.test.{name}"),
                    file: Some(file.clone()),
                    line: c.line,
                    failure: c.failure.as_ref().map(|f| Failure {
                        message: f.clone(),
                        kind: "expectation".to_string(),
                        text: f.clone(),
                    }),
                })
                .collect(),
        })
        .collect();
    crate::junit::render("verdict test", &suites)
}

/// A failed expectation as an error annotation at its file and line.
pub fn test_github(file: &str, name: &str, c: &verdict_core::policytest::CheckResult) -> String {
    let Some(f) = &c.failure else {
        return String::new();
    };
    annotation(&Annotation {
        level: Gh::Error,
        file: Some(file),
        line: c.line,
        title: &format!("PolicyTest {name}: {}", c.name),
        message: f,
    })
}
