//! `verdict replay --flows FILE PATHS...`: Hubble flows judged under the
//! policies in PATHS, compared with what the cluster observed. Flow input
//! is streamed line by line (files, gzip-compressed files, directories,
//! `-` for standard input); the per-line JSON list is streamed too, so
//! memory does not grow with the number of records.

use crate::load;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use verdict_core::engine::Engine;
use verdict_core::flows::{self, parse_line, Lines, Record};
use verdict_core::ingest::ClusterConfig;
use verdict_core::replay::{skip, LineVerdict, Replayer, Summary};
use verdict_core::source::Severity;
use verdict_core::text::{escape, json_safe};

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum ReplayFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum ReplayFail {
    /// a connection observed as delivered (or in audit) would be denied
    Break,
    /// a connection would break, or one observed as dropped would be allowed
    Any,
    /// never
    None,
}

/// One line of flow input: its file, number and text (or why it could not
/// be read).
pub type FlowLine = (Arc<str>, usize, Result<String, String>);

/// Expands `--flows` arguments: files, `-`, and directories (recursively,
/// sorted, hidden entries skipped; files ending in `.json`, `.jsonl`,
/// `.ndjson`, `.log` or `.gz`).
pub fn expand_flows(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if p.extension().is_some_and(|x| {
                ["json", "jsonl", "ndjson", "log", "gz"]
                    .iter()
                    .any(|e| x == *e)
            }) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
        } else if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    Ok(out)
}

fn open(p: &Path) -> Result<Box<dyn BufRead>, String> {
    if p.as_os_str() == "-" {
        return flows::open(std::io::stdin()).map_err(|e| format!("<stdin>: {e}"));
    }
    let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    flows::open(f).map_err(|e| format!("{}: {e}", p.display()))
}

/// Every line of every flow file, one at a time; a file that cannot be
/// opened yields one error item (line 0).
pub fn lines(files: Vec<PathBuf>) -> impl Iterator<Item = FlowLine> {
    files.into_iter().flat_map(|p| {
        let name: Arc<str> = Arc::from(if p.as_os_str() == "-" {
            "<stdin>".to_string()
        } else {
            p.display().to_string()
        });
        let it: Box<dyn Iterator<Item = FlowLine>> = match open(&p) {
            Ok(r) => {
                let n = Arc::clone(&name);
                Box::new(Lines::new(r).map(move |(l, t)| (Arc::clone(&n), l, t)))
            }
            Err(e) => Box::new(std::iter::once((name, 0, Err(e)))),
        };
        it
    })
}

/// The cluster name a flow shows for endpoints local to the reporting node
/// (`ID` set, label `io.cilium.k8s.policy.cluster`).
fn cluster_of(line: &str) -> Option<String> {
    let Ok(Record::Flow(f)) = parse_line(line) else {
        return None;
    };
    let found = [f.source.as_ref(), f.destination.as_ref()]
        .into_iter()
        .flatten()
        .filter(|e| e.id.is_some())
        .flat_map(|e| e.labels.iter())
        .find_map(|l| {
            l.strip_prefix("k8s:io.cilium.k8s.policy.cluster=")
                .map(str::to_string)
        });
    found
}

/// Reads the first lines (at most `n`), looking for the cluster name, and
/// returns them with the rest of the stream.
pub fn peek_cluster(
    mut it: impl Iterator<Item = FlowLine> + 'static,
    n: usize,
) -> (Option<(String, String)>, Box<dyn Iterator<Item = FlowLine>>) {
    let mut head = Vec::new();
    let mut found = None;
    while head.len() < n {
        let Some(item) = it.next() else { break };
        if found.is_none() {
            if let Ok(text) = &item.2 {
                found = cluster_of(text).map(|c| (c, format!("{}:{}", item.0, item.1)));
            }
        }
        let done = found.is_some();
        head.push(item);
        if done {
            break;
        }
    }
    (found, Box::new(head.into_iter().chain(it)))
}

/// Turns one input line into its verdict.
pub fn judge_line(r: &mut Replayer, (file, line, text): &FlowLine) -> LineVerdict {
    match text {
        Err(e) => LineVerdict::skipped(file, *line, skip::MALFORMED, e.clone()),
        Ok(t) => match parse_line(t) {
            Err(e) => LineVerdict::skipped(file, *line, skip::MALFORMED, e),
            Ok(Record::Empty) => {
                LineVerdict::skipped(file, *line, skip::EMPTY, "empty line".to_string())
            }
            Ok(Record::NotAFlow(why)) => LineVerdict::skipped(file, *line, skip::NOT_A_FLOW, why),
            Ok(Record::Flow(f)) => r.judge(file, *line, &f),
        },
    }
}

/// The flow stream with the cluster name settled: `--cluster-name` wins,
/// else the flows' local cluster label (the input's cilium-config, read
/// later, still overrides it).
pub fn flow_stream(
    flow_paths: &[PathBuf],
    cluster: &mut ClusterConfig,
) -> Result<Box<dyn Iterator<Item = FlowLine>>, String> {
    let files = expand_flows(flow_paths)?;
    let it = lines(files);
    if cluster.explicit.name {
        return Ok(Box::new(it));
    }
    let (found, it) = peek_cluster(it, 1000);
    if let Some((name, at)) = found {
        if name != cluster.name {
            eprintln!(
                "{}",
                escape(&format!(
                    "note: cluster name `{name}` taken from the flows ({at}); --cluster-name overrides"
                ))
            );
            cluster.name = name;
        }
    }
    Ok(it)
}

struct Out {
    w: std::io::BufWriter<std::io::Stdout>,
    closed: bool,
}

impl Out {
    fn put(&mut self, s: &str) -> Result<(), String> {
        if self.closed {
            return Ok(());
        }
        match self.w.write_all(s.as_bytes()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(format!("writing standard output: {e}")),
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        if self.closed {
            return Ok(());
        }
        match self.w.flush() {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(format!("writing standard output: {e}")),
        }
    }
}

pub fn replay(
    flow_paths: &[PathBuf],
    paths: &[PathBuf],
    mut cluster: ClusterConfig,
    output: ReplayFormat,
    fail_on: ReplayFail,
    verbose: bool,
) -> Result<u8, String> {
    let stream = flow_stream(flow_paths, &mut cluster)?;
    let inv = crate::commands::until_exit(load::inventory(paths, cluster)?);
    let manifest_errors = load::report(inv, verbose);
    let engine = crate::commands::until_exit(Engine::new(inv));
    let mut r = Replayer::new(engine);
    let mut summary = Summary::default();
    let mut out = Out {
        w: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
        closed: false,
    };
    let as_json = output == ReplayFormat::Json;
    if as_json {
        out.put("{\n  \"records\": [")?;
    }
    let mut first = true;
    let mut malformed_shown = 0usize;
    for item in stream {
        let v = judge_line(&mut r, &item);
        if v.reason == Some(skip::MALFORMED) {
            if malformed_shown < 100 {
                eprintln!(
                    "{}",
                    escape(&format!(
                        "{}:{}: {}",
                        v.file,
                        v.line,
                        v.detail.as_deref().unwrap_or("unreadable")
                    ))
                );
            }
            malformed_shown += 1;
        }
        if as_json {
            let s = serde_json::to_string(&v).map_err(|e| e.to_string())?;
            out.put(if first { "\n    " } else { ",\n    " })?;
            out.put(&json_safe(&s))?;
            first = false;
        }
        summary.add(&v);
    }
    if malformed_shown > 100 {
        eprintln!("... and {} more unreadable lines", malformed_shown - 100);
    }
    match output {
        ReplayFormat::Json => {
            let mut tail = summary.to_json();
            if let serde_json::Value::Object(m) = &mut tail {
                let diags: Vec<serde_json::Value> = inv
                    .diagnostics
                    .iter()
                    .filter(|d| verbose || d.severity != Severity::Info)
                    .map(|d| {
                        serde_json::json!({
                            "file": d.location.file.as_ref(),
                            "line": d.location.line,
                            "severity": d.severity,
                            "message": d.message,
                        })
                    })
                    .collect();
                m.insert("diagnostics".into(), serde_json::Value::Array(diags));
            }
            let body = serde_json::to_string_pretty(&tail).map_err(|e| e.to_string())?;
            // Splice the object's fields after the streamed records.
            let inner = body
                .trim()
                .strip_prefix('{')
                .and_then(|b| b.strip_suffix('}'))
                .unwrap_or("")
                .trim_end();
            out.put(if first { "],\n" } else { "\n  ],\n" })?;
            out.put(&json_safe(inner.trim_start_matches('\n')))?;
            out.put("\n}\n")?;
        }
        ReplayFormat::Text => out.put(&verdict_core::text::escape_lines(&summary.to_text()))?,
        ReplayFormat::Markdown => out.put(&summary.to_markdown())?,
    }
    out.finish()?;
    let code = match fail_on {
        ReplayFail::Break => u8::from(summary.breaks > 0),
        ReplayFail::Any => u8::from(summary.breaks > 0 || summary.newly_allowed > 0),
        ReplayFail::None => 0,
    };
    Ok(if summary.malformed > 0 || manifest_errors > 0 {
        2
    } else {
        code
    })
}

/// Replays a flow stream under an inventory; returns the summary and the
/// number of unreadable lines.
fn replay_summary(stream: Box<dyn Iterator<Item = FlowLine>>, engine: &Engine) -> Summary {
    let mut r = Replayer::new(engine);
    let mut s = Summary::default();
    for item in stream {
        s.add(&judge_line(&mut r, &item));
    }
    s
}

/// `verdict generate --from-flows FILE [PATHS...]`: least-privilege
/// policies allowing exactly the observed delivered connections, verified
/// by replaying the same flows (nothing observed delivered may break) and
/// linted.
pub fn generate_from_flows(
    flow_paths: &[PathBuf],
    paths: &[PathBuf],
    mut cluster: ClusterConfig,
    out_file: Option<&Path>,
    no_verify: bool,
    verbose: bool,
) -> Result<u8, String> {
    use verdict_core::flowgen::FlowPolicies;
    let stream = flow_stream(flow_paths, &mut cluster)?;
    let inv = crate::commands::until_exit(load::inventory(paths, cluster)?);
    let manifest_errors = load::report(inv, verbose);
    let engine = crate::commands::until_exit(Engine::new(inv));
    let mut r = Replayer::new(engine);
    let mut gen = FlowPolicies::new(&inv.cluster.name);
    let mut malformed = 0usize;
    let mut records = 0usize;
    let mut observed: std::collections::HashSet<ObservedKey> = std::collections::HashSet::new();
    for (file, line, text) in stream {
        records += 1;
        let rec = match text.map(|t| parse_line(&t)) {
            Ok(Ok(rec)) => rec,
            Ok(Err(e)) | Err(e) => {
                malformed += 1;
                eprintln!("{}", escape(&format!("{file}:{line}: {e}")));
                continue;
            }
        };
        if let Record::Flow(f) = rec {
            if let Ok(c) = r.connection(&f) {
                gen.add(&c);
                if c.observed.delivered() && observed.len() < OBSERVED_MAX {
                    // By the flow's identity and by the manifests' (their
                    // labels may differ).
                    for a in [Some(conn_key(&c.from.party)), c.from.manifest_id] {
                        for b in [Some(conn_key(&c.to.party)), c.to.manifest_id] {
                            if let (Some(a), Some(b)) = (a, b) {
                                observed.insert((a, b, c.protocol, c.port));
                            }
                        }
                    }
                }
            }
        }
    }
    let yaml = gen.to_yaml();
    match out_file {
        Some(f) => {
            std::fs::write(f, &yaml).map_err(|e| format!("{}: {e}", f.display()))?;
            eprintln!("{}", escape(&format!("wrote {}", f.display())));
        }
        None => {
            let mut o = std::io::stdout().lock();
            match o.write_all(yaml.as_bytes()).and_then(|()| o.flush()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                Err(e) => return Err(format!("writing standard output: {e}")),
            }
        }
    }
    eprintln!(
        "{}",
        escape(&format!(
            "{records} records, {} connections turned into rules; not used: {}",
            gen.used,
            if gen.not_used.is_empty() {
                "none".to_string()
            } else {
                gen.not_used
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
    );
    let input_errors = malformed + manifest_errors;
    if no_verify {
        return Ok(if input_errors > 0 { 2 } else { 0 });
    }
    if flow_paths.iter().any(|p| p.as_os_str() == "-") {
        eprintln!("note: not verified: flows from standard input cannot be read a second time");
        return Ok(if input_errors > 0 { 2 } else { 0 });
    }
    // Replay the same flows with the generated policies added.
    let mut after = inv.clone();
    after.load_text("<generated>", &yaml);
    after.complete_namespaces();
    let load_errors: Vec<String> = after
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error && d.location.file.as_ref() == "<generated>")
        .map(ToString::to_string)
        .collect();
    let rejected: Vec<String> = after
        .policies
        .iter()
        .filter(|p| p.location.file.as_ref() == "<generated>" && p.rejected.is_some())
        .map(|p| format!("{}: {}", p.object, p.rejected.as_deref().unwrap_or("")))
        .collect();
    let after_engine = Engine::new(&after);
    let mut c2 = after.cluster.clone();
    c2.explicit.name = true;
    let again = flow_stream(flow_paths, &mut c2)?;
    let s = replay_summary(again, &after_engine);
    let conn = connectivity_check(engine, &after_engine, &observed);
    // Lint the generated objects with the input.
    let routing = verdict_core::routes::Routing::from_inventory(&after);
    let paths_report = verdict_core::paths::paths(
        &after_engine,
        &routing,
        &verdict_core::paths::PathOptions::default(),
    );
    let config = verdict_lint::LintConfig::default();
    let cx = verdict_lint::Context::new(&after, &after_engine, &routing, &paths_report, &config);
    let lint = verdict_lint::run(&cx, &config);
    let hits: Vec<_> = lint
        .findings
        .iter()
        .filter(|f| f.location.file.as_ref() == "<generated>" && f.level.at_least(config.fail_on))
        .collect();
    eprintln!(
        "{}",
        escape(&format!(
            "verified: replaying the same flows with the generated policies: {} judged, {} would break; {} lint findings on generated objects",
            s.judged,
            s.breaks,
            hits.len()
        ))
    );
    for g in s
        .groups()
        .filter(|g| g.change == verdict_core::replay::Change::Break)
    {
        eprintln!(
            "{}",
            escape(&format!(
                "  breaks: {} -> {} {}/{}: {}",
                g.from, g.to, g.protocol, g.port, g.explanation
            ))
        );
    }
    match &conn {
        Some(c) => {
            eprintln!(
                "{}",
                escape(&format!(
                    "connectivity between the workloads of the manifests: {} added and observed, {} added as stated (DNS to kube-dns), {} added but never observed, {} closed",
                    c.observed, c.dns, c.unobserved.len(), c.closed
                ))
            );
            for u in &c.unobserved {
                eprintln!("{}", escape(&format!("  unobserved: {u}")));
            }
        }
        None => eprintln!(
            "note: connectivity not checked: more than {OBSERVED_MAX} distinct connections observed"
        ),
    }
    for e in load_errors.iter().chain(rejected.iter()) {
        eprintln!(
            "{}",
            escape(&format!("  generated object not accepted: {e}"))
        );
    }
    for f in &hits {
        eprintln!(
            "{}",
            escape(&format!("  lint {} {}: {}", f.code, f.location, f.message))
        );
    }
    let ok = s.breaks == 0
        && hits.is_empty()
        && load_errors.is_empty()
        && rejected.is_empty()
        && conn.as_ref().is_none_or(|c| c.unobserved.is_empty());
    Ok(if input_errors > 0 { 2 } else { u8::from(!ok) })
}

/// `verdict report --flows FILE`: the report page, plus the observed
/// traffic replayed under the same policies (a graph and a table), inserted
/// before the paths.
pub fn report_with_flows(
    flow_paths: &[PathBuf],
    paths: &[PathBuf],
    mut cluster: ClusterConfig,
    output: &Path,
    clients: Vec<String>,
    verbose: bool,
) -> Result<u8, String> {
    let stream = flow_stream(flow_paths, &mut cluster)?;
    let meta = crate::commands::report_meta(paths, flow_paths)?;
    // One inventory for the report and the replay.
    let inv = load::inventory(paths, cluster)?;
    let code = crate::commands::report_of(
        &inv,
        meta,
        output,
        clients,
        verbose,
        crate::commands::Then::Continue,
    )?;
    let engine = Engine::new(&inv);
    let mut r = Replayer::new(&engine);
    let mut s = Summary::default();
    for item in stream {
        let v = judge_line(&mut r, &item);
        if v.reason == Some(skip::MALFORMED) {
            eprintln!(
                "{}",
                escape(&format!(
                    "{}:{}: {}",
                    v.file,
                    v.line,
                    v.detail.as_deref().unwrap_or("unreadable")
                ))
            );
        }
        s.add(&v);
    }
    let html = std::fs::read_to_string(output).map_err(|e| format!("{}: {e}", output.display()))?;
    let section = s.to_html_section();
    let at = html
        .find("<h2>Paths</h2>")
        .or_else(|| html.find("<script type=\"application/json\""))
        .unwrap_or(html.len());
    let mut out = String::with_capacity(html.len() + section.len());
    out.push_str(&html[..at]);
    out.push_str(&section);
    out.push_str(&html[at..]);
    std::fs::write(output, out).map_err(|e| format!("{}: {e}", output.display()))?;
    eprintln!(
        "{}",
        escape(&format!("observed traffic: {}", s.headline_text()))
    );
    Ok(if s.malformed > 0 { 2 } else { code })
}

/// (from, to, protocol, port) of an observed delivered connection, sides by
/// identity number (world and CIDR identities as 2, `reserved:world`).
type ObservedKey = (u32, u32, verdict_core::policy::Protocol, u16);

/// Most distinct observed connections remembered for the connectivity check.
const OBSERVED_MAX: usize = 1_000_000;

fn conn_key(p: &verdict_core::engine::Party) -> u32 {
    use verdict_core::identity::IdentityKind;
    match &p.identity.kind {
        IdentityKind::Cidr(_) => 2,
        IdentityKind::Reserved(n) if n.starts_with("world") => 2,
        _ => p.identity.id,
    }
}

fn node_key(n: &verdict_core::matrix::Node) -> u32 {
    if n.name.starts_with("reserved:world") || n.name.starts_with("cidr") {
        2
    } else {
        n.identity.unwrap_or(u32::MAX)
    }
}

struct Connectivity {
    observed: usize,
    dns: usize,
    unobserved: Vec<String>,
    closed: usize,
}

/// The connectivity diff between the manifests and the manifests with the
/// generated policies (workloads the manifests hold): every connection
/// added must have been observed delivered, or be the DNS allow the
/// generator adds. `None` when too many connections were observed to
/// remember them.
fn connectivity_check(
    before: &Engine,
    after: &Engine,
    observed: &std::collections::HashSet<ObservedKey>,
) -> Option<Connectivity> {
    use verdict_core::matrix::{matrix, MatrixOptions, PortRange};
    if observed.len() >= OBSERVED_MAX {
        return None;
    }
    let m0 = matrix(before, &MatrixOptions::default());
    let m1 = matrix(after, &MatrixOptions::default());
    let key = |c: &verdict_core::matrix::Cell| (c.from.name.clone(), c.to.name.clone());
    let mut old: std::collections::BTreeMap<(String, String), Vec<PortRange>> =
        std::collections::BTreeMap::new();
    for c in &m0.cells {
        old.entry(key(c))
            .or_default()
            .extend(c.ports.iter().cloned());
    }
    let covered = |ranges: &[PortRange], proto, port: u16| {
        ranges
            .iter()
            .any(|r| r.protocol == proto && r.from <= port && port <= r.to)
    };
    let is_dns = |n: &verdict_core::matrix::Node| {
        n.identity.is_some_and(|id| {
            after.identities.iter().any(|i| {
                i.id == id
                    && i.labels.get("k8s", "k8s-app") == Some("kube-dns")
                    && i.labels.get("k8s", "io.kubernetes.pod.namespace") == Some("kube-system")
            })
        })
    };
    let mut out = Connectivity {
        observed: 0,
        dns: 0,
        unobserved: Vec::new(),
        closed: 0,
    };
    let mut new: std::collections::BTreeMap<(String, String), Vec<PortRange>> =
        std::collections::BTreeMap::new();
    for c in &m1.cells {
        new.entry(key(c))
            .or_default()
            .extend(c.ports.iter().cloned());
        let before_ports = old.get(&key(c)).map(Vec::as_slice).unwrap_or(&[]);
        for r in &c.ports {
            let span = u32::from(r.to) - u32::from(r.from) + 1;
            let ports: Vec<u16> = if span <= 64 {
                (r.from..=r.to).collect()
            } else {
                Vec::new()
            };
            let added: Vec<u16> = ports
                .iter()
                .copied()
                .filter(|p| !covered(before_ports, r.protocol, *p))
                .collect();
            let wide_added = span > 64
                && !before_ports
                    .iter()
                    .any(|b| b.protocol == r.protocol && b.from <= r.from && r.to <= b.to);
            if wide_added {
                out.unobserved
                    .push(format!("{} -> {} {r}", c.from.name, c.to.name));
                continue;
            }
            for p in added {
                let k = (node_key(&c.from), node_key(&c.to), r.protocol, p);
                if observed.contains(&k) {
                    out.observed += 1;
                } else if p == 53 && is_dns(&c.to) {
                    out.dns += 1;
                } else {
                    out.unobserved.push(format!(
                        "{} -> {} {}/{p}",
                        c.from.name, c.to.name, r.protocol
                    ));
                }
            }
        }
    }
    for c in &m0.cells {
        let now = new.get(&key(c)).map(Vec::as_slice).unwrap_or(&[]);
        out.closed += c
            .ports
            .iter()
            .filter(|r| {
                !now.iter()
                    .any(|n| n.protocol == r.protocol && n.from <= r.from && r.to <= n.to)
            })
            .count();
    }
    Some(out)
}
