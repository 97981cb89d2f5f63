//! One function per subcommand; each returns the exit code.

use crate::load;
use std::io::Write;
use std::path::{Path, PathBuf};
use verdict_core::engine::{Decision, Engine};
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::policytest;
use verdict_core::resolved::resolve;
use verdict_core::source::{Diagnostic, Severity};
use verdict_core::text::{escape, escape_lines, json_safe, plural};
use verdict_core::trace::{parse_flow_protocol, trace as trace_flow};

/// One line on standard error, escaped as a whole: a newline or an escape
/// sequence from the input (a name, a file path) is shown, not obeyed.
macro_rules! eline {
    ($($arg:tt)*) => {
        eprintln!("{}", escape(&format!($($arg)*)))
    };
}

/// Writes to standard output. A closed pipe (`| head`) is not an error;
/// any other write error (a full disk, `> /dev/full`) is.
fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing standard output: {e}")),
    }
}

/// Text for a terminal (text, Markdown, DOT, Mermaid): the renderers escape
/// each line's content; any other control character left is escaped here.
fn print_text(text: &str) -> Result<(), String> {
    print(&crate::style::paint(&escape_lines(text)))
}

/// Text views a person reads (trace, policy, paths, matrix, diff): as
/// [`print_text`], with long lines wrapped to the terminal width (see
/// `wrap.rs`) before colour is added.
fn print_wrapped(text: &str) -> Result<(), String> {
    print(&crate::style::paint(&crate::wrap::wrap(&escape_lines(
        text,
    ))))
}

/// Pretty JSON; DEL, C1 controls, line separators and bidirectional
/// formatting characters, which serde_json leaves raw, as `\uXXXX`.
fn json<T: serde::Serialize>(v: &T) -> Result<String, String> {
    serde_json::to_string_pretty(v)
        .map(|s| json_safe(&s).into_owned() + "\n")
        .map_err(|e| e.to_string())
}

/// The load diagnostics of `invs` for JSON outputs: errors and warnings
/// (and informational ones with `-v`), sorted.
fn diagnostics_json(invs: &[&Inventory], verbose: bool) -> serde_json::Value {
    let mut all: Vec<Diagnostic> = Vec::new();
    for inv in invs {
        all.extend(inv.diagnostics.iter().cloned());
        all.extend(inv.skipped_diagnostics());
    }
    all.sort();
    all.dedup();
    serde_json::Value::Array(
        all.iter()
            .filter(|d| verbose || d.severity != Severity::Info)
            .map(diagnostic_json)
            .collect(),
    )
}

fn diagnostic_json(d: &Diagnostic) -> serde_json::Value {
    serde_json::json!({
        "file": d.location.file.as_ref(),
        "line": d.location.line,
        "column": d.location.col,
        "severity": d.severity,
        "object": d.object.as_ref().map(ToString::to_string),
        "message": d.message,
    })
}

/// `v` as pretty JSON with a top-level `diagnostics` field.
fn json_with_diagnostics<T: serde::Serialize>(
    v: &T,
    invs: &[&Inventory],
    verbose: bool,
) -> Result<String, String> {
    json(&with_diagnostics(v, invs, verbose)?)
}

/// `v` as YAML with a top-level `diagnostics` field: the `-o json` data.
fn yaml_with_diagnostics<T: serde::Serialize>(
    v: &T,
    invs: &[&Inventory],
    verbose: bool,
) -> Result<String, String> {
    Ok(crate::yaml_out::to_yaml(&with_diagnostics(
        v, invs, verbose,
    )?))
}

fn with_diagnostics<T: serde::Serialize>(
    v: &T,
    invs: &[&Inventory],
    verbose: bool,
) -> Result<serde_json::Value, String> {
    let mut value = serde_json::to_value(v).map_err(|e| e.to_string())?;
    if let serde_json::Value::Object(m) = &mut value {
        m.insert("diagnostics".to_string(), diagnostics_json(invs, verbose));
    }
    Ok(value)
}

/// `v` as YAML (the data of the JSON output).
fn yaml<T: serde::Serialize>(v: &T) -> Result<String, String> {
    let value = serde_json::to_value(v).map_err(|e| e.to_string())?;
    Ok(crate::yaml_out::to_yaml(&value))
}

/// Error diagnostics from loading: any of them makes the command exit 2
/// (after printing what it could analyse).
fn input_errors(inv: &Inventory) -> usize {
    inv.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count()
}

/// The exit code: 2 on input errors, else `code`.
fn exit(code: u8, input_errors: usize) -> u8 {
    if input_errors > 0 {
        2
    } else {
        code
    }
}

/// `; did you mean `a`, `b`?` with the (at most 3) names of `known` closest
/// to `wanted`, or nothing.
fn suggest<'k>(wanted: &str, known: impl IntoIterator<Item = &'k str>) -> String {
    use verdict_core::names::{closest, did_you_mean};
    did_you_mean(&closest(wanted, known))
}

/// Checks that `--namespace`, `--route` and `--backend` each name something
/// in the input: a filter that matches nothing is an error, not "0 paths".
fn check_path_filters(
    inv: &Inventory,
    namespace: Option<&str>,
    route: Option<&str>,
    backend: Option<&str>,
) -> Result<(), String> {
    const ROUTE_KINDS: &[&str] = &[
        "Ingress",
        "HTTPRoute",
        "GRPCRoute",
        "TLSRoute",
        "TCPRoute",
        "UDPRoute",
    ];
    if let Some(ns) = namespace {
        let found = inv
            .routing
            .iter()
            .any(|r| r.object.namespace.as_deref() == Some(ns))
            || inv.services.iter().any(|s| s.namespace == ns)
            || inv.workloads.iter().any(|w| w.namespace == ns);
        if !found {
            let known: Vec<&str> = inv
                .routing
                .iter()
                .filter_map(|r| r.object.namespace.as_deref())
                .chain(inv.services.iter().map(|s| s.namespace.as_str()))
                .chain(inv.workloads.iter().map(|w| w.namespace.as_str()))
                .collect();
            return Err(format!(
                "--namespace `{ns}` matches nothing: no route, Service or workload of the input is in namespace `{ns}`{}",
                suggest(ns, known)
            ));
        }
    }
    if let Some(r) = route {
        let found = inv.routing.iter().any(|o| {
            ROUTE_KINDS.contains(&o.object.kind.as_str())
                && (o.object.name == r || o.object.short() == r)
        });
        if !found {
            let known: Vec<String> = inv
                .routing
                .iter()
                .filter(|o| ROUTE_KINDS.contains(&o.object.kind.as_str()))
                .flat_map(|o| [o.object.name.clone(), o.object.short()])
                .collect();
            return Err(format!(
                "--route `{r}` matches nothing: no {} of the input is named `{r}`{}",
                ROUTE_KINDS.join(", "),
                suggest(r, known.iter().map(String::as_str))
            ));
        }
    }
    if let Some(b) = backend {
        let found = inv.services.iter().any(|s| s.object.short().contains(b))
            || inv.workloads.iter().any(|w| w.display_name().contains(b));
        if !found {
            let known: Vec<String> = inv
                .services
                .iter()
                .map(|s| s.object.short())
                .chain(inv.workloads.iter().map(|w| w.display_name()))
                .collect();
            return Err(format!(
                "--backend `{b}` matches nothing: no Service or workload name of the input contains `{b}`{}",
                suggest(b, known.iter().map(String::as_str))
            ));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn trace(
    paths: &[PathBuf],
    cluster: ClusterConfig,
    from: &str,
    to: &str,
    protocol: &str,
    port: u16,
    output: crate::Format,
    verbose: bool,
) -> Result<u8, String> {
    let inv = until_exit(load::inventory(paths, cluster)?);
    load::report(inv, verbose);
    let engine = until_exit(Engine::new(inv));
    let a = engine.party(from)?;
    let b = engine.party(to)?;
    let proto = parse_flow_protocol(protocol)?;
    let v = trace_flow(engine, &a, &b, proto, port);
    match output {
        crate::Format::Json => print(&json_with_diagnostics(&v, &[inv], verbose)?)?,
        crate::Format::Yaml => print(&yaml_with_diagnostics(&v, &[inv], verbose)?)?,
        crate::Format::Text => print_wrapped(&v.text(verbose))?,
    }
    let code = if v.decision == Decision::Allowed {
        0
    } else {
        1
    };
    Ok(exit(code, input_errors(inv)))
}

pub fn policy(
    paths: &[PathBuf],
    cluster: ClusterConfig,
    endpoint: &str,
    output: crate::Format,
    verbose: bool,
) -> Result<u8, String> {
    let inv = until_exit(load::inventory(paths, cluster)?);
    load::report(inv, verbose);
    let engine = until_exit(Engine::new(inv));
    let party = engine.party(endpoint)?;
    let r = resolve(engine, &party);
    match output {
        crate::Format::Json => print(&json_with_diagnostics(&r, &[inv], verbose)?)?,
        crate::Format::Yaml => print(&yaml_with_diagnostics(&r, &[inv], verbose)?)?,
        crate::Format::Text => {
            let names = verdict_core::names::identity_names(engine);
            print_wrapped(&r.to_text(&names, verbose))?
        }
    }
    Ok(exit(0, input_errors(inv)))
}

pub fn check(
    paths: &[PathBuf],
    cluster: ClusterConfig,
    output: crate::Format,
) -> Result<u8, String> {
    let inv = until_exit(load::inventory(paths, cluster)?);
    let mut all = inv.diagnostics.clone();
    all.extend(inv.skipped_diagnostics());
    all.sort();
    let errors = all.iter().filter(|d| d.severity == Severity::Error).count();
    if output != crate::Format::Text {
        let v = serde_json::json!({
            "counts": inv.counts(),
            "diagnostics": all.iter().map(diagnostic_json).collect::<Vec<_>>(),
        });
        print(&if output == crate::Format::Yaml {
            yaml(&v)?
        } else {
            json(&v)?
        })?;
    } else {
        let mut text = String::new();
        for d in &all {
            text.push_str(&format!("{}\n", escape(&d.to_string())));
        }
        let c = inv.counts();
        text.push_str(&format!(
            "loaded {}, {}, {}, {} ({} rejected by Cilium's validation); {}\n",
            plural(c.namespaces, "namespace", "namespaces"),
            plural(c.workloads, "workload", "workloads"),
            plural(c.services, "service", "services"),
            plural(c.policies, "policy", "policies"),
            c.rejected,
            plural(errors, "error", "errors")
        ));
        print_text(&text)?;
    }
    Ok(exit(0, errors))
}

pub fn test(
    paths: &[PathBuf],
    output: crate::TestFormat,
    junit: Option<&Path>,
    verbose: bool,
) -> Result<u8, String> {
    let mut t = Tally {
        github: output == crate::TestFormat::Github,
        ..Tally::default()
    };
    let mut skipped = 0;
    for path in paths {
        // A file named on the command line must be a test file; in a
        // directory, only files holding PolicyTest documents are tests (the
        // manifests they refer to usually live beside them).
        let from_dir = path.is_dir();
        let listed = load::expand(std::slice::from_ref(path))?;
        for d in &listed.diagnostics {
            if d.severity != Severity::Info || verbose {
                eline!("{d}");
            }
            if d.severity == Severity::Error {
                t.input_errors += 1;
            }
        }
        for f in listed.files {
            let text = load::read(&f)?;
            if from_dir && !policytest::is_test_file(&text) {
                skipped += 1;
                continue;
            }
            run_test_file(&f, &text, verbose, &mut t)?;
        }
    }
    if skipped > 0 && verbose {
        eline!(
            "skipped {} without PolicyTest documents",
            plural(skipped, "file", "files")
        );
    }
    if let Some(file) = junit {
        let xml = crate::ci_output::test_junit(&t.results);
        std::fs::write(file, xml).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    print_text(&format!("{} passed, {} failed\n", t.passed, t.failed))?;
    Ok(exit(if t.failed > 0 { 1 } else { 0 }, t.input_errors))
}

/// Results of `verdict test` so far.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    /// Errors in the test files or the manifests they read (exit 2).
    input_errors: usize,
    /// Failures as GitHub Actions annotations instead of `FAIL` lines.
    github: bool,
    /// Every expectation checked, per test case (for `--junit`).
    results: crate::ci_output::TestResults,
}

/// Runs the PolicyTest documents of one file.
fn run_test_file(f: &Path, text: &str, verbose: bool, t: &mut Tally) -> Result<(), String> {
    let name = f.display().to_string();
    let (cases, diags) = policytest::parse(&name, text);
    for d in &diags {
        eline!("{d}");
        if d.severity == Severity::Error {
            t.input_errors += 1;
        }
    }
    for c in cases {
        let mut inv = c.inventory();
        let base = f.parent().unwrap_or(Path::new("."));
        let extra: Vec<PathBuf> = c.files.iter().map(|p| base.join(p)).collect();
        match load::expand(&extra) {
            Ok(list) => load::add_files(&mut inv, list),
            Err(e) => {
                eline!(
                    "{name}: error: PolicyTest {}: `spec.files` names a file that cannot be read: {e}",
                    c.name
                );
                t.input_errors += 1;
                continue;
            }
        }
        load::finish(&mut inv);
        // Rejections are what `spec.rejected` checks (an unexpected one
        // fails the test); every other error is an input error.
        let expected_rejection = |d: &&Diagnostic| {
            d.message.starts_with("Cilium rejects")
                || d.message.starts_with("the API server refuses")
        };
        if verbose {
            load::report(&inv, true);
        } else {
            for d in inv
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error && !expected_rejection(d))
            {
                eline!("{d}");
            }
        }
        t.input_errors += inv
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error && !expected_rejection(d))
            .count();
        let o = c.run(&inv);
        t.passed += o.passed;
        t.failed += o.failures.len();
        if t.github {
            let mut text = String::new();
            for check in &o.checks {
                text.push_str(&crate::ci_output::test_github(&name, &c.name, check));
            }
            print(&text)?;
        } else {
            let mut text = String::new();
            for fl in &o.failures {
                text.push_str(&format!("FAIL {}\n", escape(&fl.to_string())));
            }
            print_text(&text)?;
        }
        t.results
            .cases
            .push((name.clone(), c.name.clone(), o.checks));
    }
    Ok(())
}

pub struct PathsArgs {
    pub output: crate::PathsFormat,
    pub clients: Vec<String>,
    pub in_cluster_clients: Vec<String>,
    pub controllers: Vec<String>,
    pub namespace: Option<String>,
    pub route: Option<String>,
    pub backend: Option<String>,
    pub report_only: bool,
    pub hop1_port: verdict_core::paths::Hop1Port,
}

/// Parses `NAMESPACE/KEY=VALUE[,KEY=VALUE]`.
fn controller_arg(s: &str) -> Result<(String, verdict_core::selector::Selector), String> {
    use verdict_core::selector::{Requirement, Selector};
    let (ns, labels) = s
        .split_once('/')
        .ok_or_else(|| format!("--controller `{s}`: expected NAMESPACE/KEY=VALUE[,KEY=VALUE]"))?;
    let mut reqs = Vec::new();
    for kv in labels.split(',') {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("--controller `{s}`: `{kv}` is not KEY=VALUE"))?;
        reqs.push(Requirement::equals("k8s", k.trim(), v.trim()));
    }
    Ok((ns.to_string(), Selector::new(reqs)))
}

pub fn paths(
    paths: &[PathBuf],
    cluster: ClusterConfig,
    args: PathsArgs,
    verbose: bool,
) -> Result<u8, String> {
    use verdict_core::paths::{paths as compute, PathOptions};
    use verdict_core::routes::Routing;
    let inv = until_exit(load::inventory(paths, cluster)?);
    load::report(inv, verbose);
    check_path_filters(
        inv,
        args.namespace.as_deref(),
        args.route.as_deref(),
        args.backend.as_deref(),
    )?;
    let routing = Routing::from_inventory(inv);
    for d in &routing.diagnostics {
        eline!("{d}");
    }
    let engine = until_exit(Engine::new(inv));
    for c in args.clients.iter().chain(&args.in_cluster_clients) {
        engine.party(c)?;
    }
    let opts = PathOptions {
        clients: args.clients,
        in_cluster_clients: args.in_cluster_clients,
        controllers: args
            .controllers
            .iter()
            .map(|c| controller_arg(c))
            .collect::<Result<_, _>>()?,
        namespace: args.namespace,
        route: args.route,
        backend: args.backend,
        hop1_port: args.hop1_port,
    };
    let report = compute(engine, &routing, &opts);
    match args.output {
        crate::PathsFormat::Text => print_wrapped(&report.to_text())?,
        crate::PathsFormat::Json => print(&json_with_diagnostics(&report, &[inv], verbose)?)?,
        crate::PathsFormat::Markdown => print_text(&report.to_markdown())?,
        crate::PathsFormat::Yaml => print(&yaml_with_diagnostics(&report, &[inv], verbose)?)?,
        crate::PathsFormat::Github => print(&crate::ci_output::paths_github(&report))?,
    }
    // A path that could not be checked is no answer: like an input error
    // it exits 2 (even with --report-only, which accepts denials only).
    let s = &report.summary;
    if s.not_checked > 0 {
        eline!(
            "error: {} of {} not checked (the input lacks what they go through: see `not checked` above); exit 2",
            s.not_checked,
            plural(s.paths, "path", "paths")
        );
        return Ok(2);
    }
    let code = if s.denied > 0 && !args.report_only {
        1
    } else {
        0
    };
    Ok(exit(code, input_errors(inv)))
}

pub struct LintArgs {
    pub output: crate::LintFormat,
    pub config: Option<PathBuf>,
    pub disable: Vec<String>,
    pub enable: Vec<String>,
    pub levels: Vec<String>,
    pub fail_on: Option<String>,
    pub explain: Option<String>,
    pub list: bool,
    pub rules_doc: bool,
}

pub fn lint(
    paths: &[PathBuf],
    cluster: ClusterConfig,
    args: LintArgs,
    verbose: bool,
) -> Result<u8, String> {
    use verdict_core::paths::{paths_decisions as compute, PathOptions};
    use verdict_core::routes::Routing;
    use verdict_lint::{registry, Context, Level, LintConfig};
    if let Some(key) = &args.explain {
        let rule = verdict_lint::find_rule(key)
            .ok_or_else(|| format!("unknown lint rule `{key}` (see `verdict lint --list`)"))?;
        let m = rule.meta();
        print(&format!(
            "{} {} (default level: {})\n\n{}\n",
            m.code,
            m.name,
            m.level,
            m.doc()
        ))?;
        return Ok(0);
    }
    if args.list {
        let mut text = String::new();
        for r in registry() {
            let m = r.meta();
            text.push_str(&format!(
                "{}  {:<36} {:<8} {}\n",
                m.code,
                m.name,
                m.level.to_string(),
                m.summary
            ));
        }
        print_text(&text)?;
        return Ok(0);
    }
    if args.rules_doc {
        print(&verdict_lint::rules_markdown())?;
        return Ok(0);
    }
    if paths.is_empty() && !load::live() {
        return Err("give the manifests to lint (files, directories or -)".to_string());
    }
    let mut config = match &args.config {
        Some(p) => LintConfig::from_yaml(&p.display().to_string(), &load::read(p)?)?,
        None => {
            let default = Path::new(".verdict.yaml");
            if default.exists() {
                LintConfig::from_yaml(".verdict.yaml", &load::read(default)?)?
            } else {
                LintConfig::default()
            }
        }
    };
    for d in &args.disable {
        config.set(d, "off")?;
    }
    for e in &args.enable {
        config.set(e, "on")?;
    }
    for l in &args.levels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| format!("--level `{l}`: expected CODE=LEVEL"))?;
        config.set(k, v)?;
    }
    if let Some(f) = &args.fail_on {
        config.fail_on = Level::parse(f)
            .ok_or_else(|| format!("--fail-on `{f}`: expected error, warning or info"))?;
    }
    let (inv, sources) = load::inventory_with_sources(paths, cluster)?;
    let (inv, sources) = (until_exit(inv), until_exit(sources));
    // Every error is an input error, a policy that Cilium rejects included
    // (the object is not what the user meant); warnings are shown as lint
    // findings or with -v.
    let errors = load::report(inv, verbose);
    let routing = Routing::from_inventory(inv);
    let engine = until_exit(Engine::new(inv));
    // No rule reads near misses: paths without them.
    let report_paths = compute(engine, &routing, &PathOptions::default());
    let cx = Context::new(inv, engine, &routing, &report_paths, &config);
    let report = verdict_lint::run(&cx, &config);
    match args.output {
        crate::LintFormat::Text => print_text(&report.to_text(sources))?,
        crate::LintFormat::Json => {
            print(&json_with_diagnostics(&report.to_json(), &[inv], verbose)?)?
        }
        crate::LintFormat::Sarif => print(&json(&verdict_lint::sarif::to_sarif(
            &report,
            env!("CARGO_PKG_VERSION"),
        ))?)?,
        crate::LintFormat::Yaml => {
            print(&yaml_with_diagnostics(&report.to_json(), &[inv], verbose)?)?
        }
        crate::LintFormat::Junit => print(&crate::ci_output::lint_junit(&report))?,
        crate::LintFormat::Github => print(&crate::ci_output::lint_github(&report))?,
    }
    let code = if report
        .findings
        .iter()
        .any(|f| f.level.at_least(config.fail_on))
    {
        1
    } else {
        0
    };
    Ok(exit(code, errors))
}

pub struct GenerateArgs {
    pub clients: Vec<String>,
    pub controllers: Vec<String>,
    pub namespace: Option<String>,
    pub route: Option<String>,
    pub prefer_ccnp: bool,
    pub no_default_deny: bool,
    pub only_missing: bool,
    pub merge: bool,
    pub out_dir: Option<PathBuf>,
    pub no_verify: bool,
}

pub fn generate(
    paths: &[PathBuf],
    cluster: ClusterConfig,
    args: GenerateArgs,
    verbose: bool,
) -> Result<u8, String> {
    use verdict_core::generate::{
        check_client, clients_from_input, connectivity_after, generate as gen, judge_after,
        load_generated, to_stream, GenerateOptions,
    };
    // The paths without near misses: nothing generate prints, verifies or
    // lints reads them (a check's `near_miss` only), and on an input
    // without policies for the routes every check is a default deny.
    use verdict_core::paths::{paths_decisions as compute, PathOptions};
    use verdict_core::routes::Routing;
    let inv = until_exit(load::inventory(paths, cluster)?);
    load::report(inv, verbose);
    check_path_filters(inv, args.namespace.as_deref(), args.route.as_deref(), None)?;
    let errors = input_errors(inv);
    let routing = Routing::from_inventory(inv);
    let engine = until_exit(Engine::new(inv));
    let clients = args
        .clients
        .iter()
        .map(|c| check_client(engine, c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut opts = GenerateOptions {
        paths: PathOptions {
            clients,
            controllers: args
                .controllers
                .iter()
                .map(|c| controller_arg(c))
                .collect::<Result<_, _>>()?,
            namespace: args.namespace,
            route: args.route,
            ..PathOptions::default()
        },
        prefer_ccnp: args.prefer_ccnp,
        no_default_deny: args.no_default_deny,
        only_missing: args.only_missing,
        ..GenerateOptions::default()
    };
    let mut report = None;
    if opts.paths.clients.is_empty() {
        // Keep the clients the input already restricts the entry points to.
        let with_world = compute(engine, &routing, &opts.paths);
        if let Some((clients, except, notes)) = clients_from_input(engine, &with_world)? {
            for n in &notes {
                eline!("note: {n}");
            }
            opts.paths.clients = clients;
            opts.client_except = except;
        } else {
            report = Some(with_world);
        }
    }
    let report = report.unwrap_or_else(|| compute(engine, &routing, &opts.paths));
    let (objects, skipped) = gen(engine, &report, &opts);
    let merged_names: Vec<(String, Option<String>, String)>;
    let objects = if args.merge {
        let merged = verdict_core::generate::merge(inv, objects);
        merged_names = merged
            .iter()
            .filter(|g| g.yaml.starts_with("# Merged"))
            .map(|g| (g.kind.clone(), g.namespace.clone(), g.name.clone()))
            .collect();
        merged
    } else {
        merged_names = Vec::new();
        objects
    };
    for s in &skipped {
        eline!("not served: {s}");
    }
    let stream = to_stream(&objects);
    match &args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let names = verdict_core::generate::file_names(&objects);
            // Refuse before writing anything: a symbolic link in the
            // directory would send the write elsewhere.
            for name in &names {
                let file = dir.join(name);
                if let Ok(m) = std::fs::symlink_metadata(&file) {
                    if m.file_type().is_symlink() {
                        return Err(format!(
                            "{}: is a symbolic link; --out-dir does not follow links (remove it or choose another directory)",
                            file.display()
                        ));
                    }
                    if !m.is_file() {
                        return Err(format!("{}: exists and is not a file", file.display()));
                    }
                }
            }
            for (g, name) in objects.iter().zip(&names) {
                let file = dir.join(name);
                write_new_or_regular(&file, &g.yaml)?;
                eline!("wrote {}", file.display());
            }
        }
        None => print(&stream)?,
    }
    if args.no_verify {
        return Ok(exit(0, errors));
    }
    // Merged objects replace their originals.
    let replaced;
    let base = if merged_names.is_empty() {
        inv
    } else {
        let mut b = inv.clone();
        b.policies.retain(|p| {
            !merged_names.iter().any(|(k, ns, n)| {
                p.object.kind == *k && p.object.namespace == *ns && p.object.name == *n
            })
        });
        replaced = b;
        &replaced
    };
    // The paths after, borrowed by the lint for as long as the engine.
    let mut after_paths_slot = None;
    let (after, load_errors) = load_generated(base, &stream);
    let after_routing = Routing::from_inventory(&after);
    let after_engine = engine
        .with_policies_of(&after)
        .unwrap_or_else(|| Engine::new(&after));
    // Judge the paths again and lint the generated objects together with
    // the input (the lint reads the paths after), while a second thread
    // compares connectivity (independent of the paths after).
    let config = verdict_lint::LintConfig::default();
    let ((judged, lint), d) = both(
        || {
            let (after_paths, judged) = judge_after(&report, &after_engine, &after_routing, &opts);
            let after_paths = after_paths_slot.insert(after_paths.report(report));
            let cx = verdict_lint::Context::new(
                &after,
                &after_engine,
                &after_routing,
                after_paths,
                &config,
            );
            (judged, verdict_lint::run(&cx, &config))
        },
        || connectivity_after(engine, &after_engine, &opts),
    );
    let v = judged.verification(d, load_errors);
    // Lint-clean as `verdict lint` judges it (findings at or above failOn);
    // info-level notes (a generated rule repeating an existing one) are listed.
    let on_generated: Vec<_> = lint
        .findings
        .iter()
        .filter(|f| f.location.file.as_ref() == "<generated>")
        .collect();
    let lint_hits: Vec<_> = on_generated
        .iter()
        .filter(|f| f.level.at_least(config.fail_on))
        .collect();
    for f in on_generated
        .iter()
        .filter(|f| !f.level.at_least(config.fail_on))
    {
        eline!(
            "  note {} {}: {} (use --only-missing to leave out what the input already allows)",
            f.code,
            f.location,
            f.message
        );
    }
    eline!(
        "verified: {}; paths {} allowed / {} denied before, {} allowed / {} denied after; connectivity: {} added for the routes, {} stated, {} added otherwise, default deny on {} more; {} on generated objects",
        plural(objects.len(), "object", "objects"),
        v.paths_before.allowed,
        v.paths_before.denied,
        v.paths_after.allowed,
        v.paths_after.denied,
        v.intended.len(),
        v.accepted.len(),
        v.unintended.len(),
        plural(v.closed.len(), "side", "sides"),
        plural(lint_hits.len(), "lint finding", "lint findings")
    );
    for e in &v.load_errors {
        eline!("  generated object not accepted: {e}");
    }
    for c in &v.unintended {
        eline!("  unintended: {} -> {} {}", c.from, c.to, c.ports());
    }
    for c in &v.accepted {
        eline!(
            "  note: also admitted, as the generated policy states: {} -> {} {} (fromEntities: [remote-node] for externalTrafficPolicy: Cluster; the API server's identity carries reserved:remote-node)",
            c.from,
            c.to,
            c.ports()
        );
    }
    for f in &lint_hits {
        eline!("  lint {} {}: {}", f.code, f.location, f.message);
    }
    Ok(exit(
        if v.ok() && lint_hits.is_empty() { 0 } else { 1 },
        errors,
    ))
}

/// Writes `text` to `file` without following a symbolic link: the file is
/// replaced through a temporary file in the same directory, renamed over it
/// (a link put there in between is replaced, not followed).
fn write_new_or_regular(file: &Path, text: &str) -> Result<(), String> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.verdict-tmp-{}", std::process::id()));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, file));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", file.display())
    })
}

/// `verdict matrix`: rows between groups (`--summarise`), one row per
/// pair (`--pairs`), or groups for text above
/// [`verdict_core::matrix_render::SUMMARISE_ABOVE`] connections.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MatrixForm {
    Auto,
    Groups,
    Pairs,
}

impl MatrixForm {
    pub fn pick(summarise: bool, pairs: bool) -> MatrixForm {
        match (summarise, pairs) {
            (true, _) => MatrixForm::Groups,
            (_, true) => MatrixForm::Pairs,
            _ => MatrixForm::Auto,
        }
    }
}

pub fn matrix(
    paths: &[PathBuf],
    cluster: ClusterConfig,
    output: crate::MatrixFormat,
    (namespace, workload): (Option<String>, Option<String>),
    form: MatrixForm,
    verbose: bool,
) -> Result<u8, String> {
    use crate::MatrixFormat as F;
    use verdict_core::matrix::MatrixOptions;
    use verdict_core::matrix_summary::summarise;
    if form == MatrixForm::Groups && matches!(output, F::Csv | F::Dot | F::Mermaid) {
        return Err("--summarise applies to -o text, json and yaml".to_string());
    }
    let inv = until_exit(load::inventory(paths, cluster)?);
    load::report(inv, verbose);
    // A bare pod as the text views print it, `ns/pod/name`, is `ns/name`.
    let workload = workload.map(|w| match w.split('/').collect::<Vec<_>>().as_slice() {
        [ns, kind, name] if kind.eq_ignore_ascii_case("pod") => format!("{ns}/{name}"),
        _ => w,
    });
    if let Some(ns) = &namespace {
        if !inv.workloads.iter().any(|w| &w.namespace == ns) {
            return Err(format!(
                "--namespace `{ns}` matches nothing: no workload of the input is in namespace `{ns}`{}",
                suggest(ns, inv.workloads.iter().map(|w| w.namespace.as_str()))
            ));
        }
    }
    if let Some(w) = &workload {
        if !inv
            .workloads
            .iter()
            .any(|x| x.display_name().contains(w.as_str()))
        {
            let known: Vec<String> = inv.workloads.iter().map(|x| x.display_name()).collect();
            return Err(format!(
                "--workload `{w}` matches nothing: no workload name of the input contains `{w}`{}",
                suggest(w, known.iter().map(String::as_str))
            ));
        }
    }
    let engine = until_exit(Engine::new(inv));
    let opts = MatrixOptions {
        namespace,
        workload,
    };
    // Only JSON and YAML show the deciding rules: the other formats get
    // the same rows without their rule names (on dense clusters, naming
    // the rules of every row was a fifth of the matrix's time).
    let s = if matches!(output, F::Json | F::Yaml) {
        summarise(engine, &opts)
    } else {
        verdict_core::matrix_summary::summarise_without_rules(engine, &opts)
    };
    let groups = match form {
        MatrixForm::Groups => true,
        MatrixForm::Pairs => false,
        MatrixForm::Auto => {
            output == F::Text && s.connections > verdict_core::matrix_render::SUMMARISE_ABOVE
        }
    };
    match output {
        F::Text if groups => {
            // Streamed: the groups of a dense cluster are hundreds of MiB.
            let mut lines = crate::stream_out::Lines::new();
            let _ = s.write_text(&mut lines);
            lines.finish()?;
        }
        F::Json if groups => print(&json_with_diagnostics(&s, &[inv], verbose)?)?,
        F::Yaml if groups => print(&yaml_with_diagnostics(&s, &[inv], verbose)?)?,
        F::Json => {
            // Streamed from the rows: the JSON of a dense cluster is
            // hundreds of MiB.
            let out = std::io::BufWriter::new(std::io::stdout().lock());
            let diagnostics = diagnostics_json(&[inv], verbose);
            match verdict_core::matrix_json::write_json_pairs(&s, &diagnostics, out) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(format!("writing standard output: {e}"));
                }
                _ => {}
            }
        }
        F::Text => print_wrapped(&s.expand().to_text())?,
        F::Csv => print(&s.expand().to_csv())?,
        F::Dot => print_text(&s.expand().to_dot())?,
        F::Mermaid => print_text(&s.expand().to_mermaid())?,
        F::Yaml => print(&yaml_with_diagnostics(&s.expand(), &[inv], verbose)?)?,
    }
    Ok(exit(0, input_errors(inv)))
}

/// A git path (raw bytes from `-z` output) as a command argument.
#[cfg(unix)]
fn git_arg(bytes: &[u8]) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(bytes).to_os_string()
}

#[cfg(not(unix))]
fn git_arg(bytes: &[u8]) -> std::ffi::OsString {
    String::from_utf8_lossy(bytes).into_owned().into()
}

/// A file name for messages: control characters and backslashes escaped
/// (`\t`, `\n`, `\\`), bytes that are not UTF-8 as `\xNN`; everything
/// else (non-ASCII letters, quotes, spaces) as is.
fn display_name(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The manifests of a git revision: every .yaml/.yml/.json file under the
/// given paths. Names are read NUL-separated (`ls-tree -z`), never parsed
/// from git's quoted form, so any file name is read.
fn git_inventory(
    rev: &str,
    paths: &[String],
    cluster: ClusterConfig,
) -> Result<verdict_core::ingest::Inventory, String> {
    let run = |args: &[std::ffi::OsString]| -> Result<Vec<u8>, String> {
        let o = std::process::Command::new("git")
            .args(args)
            .output()
            .map_err(|e| format!("git: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "git {}: {}",
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(o.stdout)
    };
    // --full-name: paths from the repository root, as `REV:PATH` needs
    // them, whatever the current directory.
    let mut args: Vec<std::ffi::OsString> = ["ls-tree", "-r", "-z", "--full-name", "--name-only"]
        .iter()
        .map(Into::into)
        .collect();
    args.push(rev.into());
    args.push("--".into());
    args.extend(paths.iter().map(Into::into));
    let listing = run(&args)?;
    let mut inv = verdict_core::ingest::Inventory::new(cluster);
    let mut files: Vec<&[u8]> = listing
        .split(|b| *b == 0)
        .filter(|f| f.ends_with(b".yaml") || f.ends_with(b".yml") || f.ends_with(b".json"))
        .collect();
    files.sort();
    for f in files {
        let mut spec = rev.as_bytes().to_vec();
        spec.push(b':');
        spec.extend_from_slice(f);
        let bytes = run(&["cat-file".into(), "blob".into(), git_arg(&spec)])?;
        let label = format!("{rev}:{}", display_name(f));
        let text = String::from_utf8(bytes).map_err(|_| format!("{label}: not UTF-8 text"))?;
        inv.load_text(&label, &text);
    }
    load::finish(&mut inv);
    Ok(inv)
}

/// `d` with every text from the input (names, rules, file paths) passed
/// through `f`, for the text and Markdown renderings: each of them is one
/// line or one table cell.
fn escaped_diff(
    d: &verdict_core::diff::Diff,
    f: impl Fn(&str) -> String,
) -> verdict_core::diff::Diff {
    let mut d = d.clone();
    let all = |v: &mut Vec<String>| v.iter_mut().for_each(|s| *s = f(s));
    for c in d.added.iter_mut().chain(d.removed.iter_mut()) {
        c.from = f(&c.from);
        c.to = f(&c.to);
        all(&mut c.ports);
        all(&mut c.rules);
        all(&mut c.because);
    }
    all(&mut d.newly_open_ingress);
    all(&mut d.no_longer_open_ingress);
    for p in &mut d.policies {
        p.object = f(&p.object);
        p.change = f(&p.change);
        p.location = f(&p.location);
    }
    d
}

/// `f()` and `g()`, `g` on a second thread.
fn both<A: Send, B: Send>(f: impl FnOnce() -> A + Send, g: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|s| {
        let h = s.spawn(g);
        let x = f();
        let y = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (x, y)
    })
}

#[allow(clippy::too_many_arguments)]
pub fn diff(
    old: &str,
    new: &str,
    cluster_base: &[PathBuf],
    git: bool,
    git_paths: &[String],
    cluster: ClusterConfig,
    output: crate::DiffFormat,
    fail_on: &[crate::DiffFail],
    verbose: bool,
) -> Result<u8, String> {
    use verdict_core::diff::{diff as compute, path_changes, policy_changes};
    use verdict_core::paths::{paths as routes_paths, paths_decisions, PathOptions};
    use verdict_core::routes::Routing;
    let (a, b) = if !cluster_base.is_empty() {
        // The live state, and the live state overlaid with the manifests.
        (
            load::inventory(&[], cluster.clone())?,
            load::inventory(cluster_base, cluster)?,
        )
    } else if git {
        (
            git_inventory(old, git_paths, cluster.clone())?,
            git_inventory(new, git_paths, cluster)?,
        )
    } else {
        // The two inputs load on two threads (errors as if one after the
        // other: the old input's first).
        let (a, b) = both(
            || load::inventory(&[PathBuf::from(old)], cluster.clone()),
            || load::inventory(&[PathBuf::from(new)], cluster.clone()),
        );
        (a?, b?)
    };
    load::report(&a, verbose);
    load::report(&b, verbose);
    // The two inputs' engines and paths are independent: one thread each.
    let (a, b) = (until_exit(a), until_exit(b));
    let (ea, eb) = both(|| Engine::new(a), || Engine::new(b));
    let (ea, eb) = (until_exit(ea), until_exit(eb));
    // Only the pairs whose sides changed can differ: both matrices are
    // computed for those pairs.
    let (ma, mb) = verdict_core::matrix_delta::changed_matrices(ea, eb);
    let mut d = compute(&ma, &mb, policy_changes(a, b));
    drop((ma, mb));
    // The paths of `verdict paths` on both sides (clients: world): first
    // without near misses (they change no decision); only when a path
    // changed, again with them, for the changed paths' reasons.
    let (ra, rb) = (Routing::from_inventory(a), Routing::from_inventory(b));
    let opts = PathOptions::default();
    let (pa, pb) = both(
        || paths_decisions(ea, &ra, &opts),
        || paths_decisions(eb, &rb, &opts),
    );
    d.paths = path_changes(&pa, &pb);
    drop((pa, pb));
    if !d.paths.is_empty() {
        let (pa, pb) = both(
            || routes_paths(ea, &ra, &opts),
            || routes_paths(eb, &rb, &opts),
        );
        d.paths = path_changes(&pa, &pb);
    }
    match output {
        crate::DiffFormat::Text => {
            print_wrapped(&escaped_diff(&d, |s| escape(s).into_owned()).to_text())?
        }
        crate::DiffFormat::Json => print(&json_with_diagnostics(&d, &[a, b], verbose)?)?,
        crate::DiffFormat::Yaml => print(&yaml_with_diagnostics(&d, &[a, b], verbose)?)?,
        crate::DiffFormat::Markdown => {
            print_text(&escaped_diff(&d, verdict_core::text::markdown).to_markdown())?
        }
    }
    let fail = fail_on.iter().any(|f| match f {
        crate::DiffFail::WorldExposure => d.world_exposure(),
        crate::DiffFail::Breaking => d.breaking() > 0,
        crate::DiffFail::PathExposure => d.path_exposure() > 0,
        crate::DiffFail::Any => {
            !d.added.is_empty() || !d.newly_open_ingress.is_empty() || !d.paths.is_empty()
        }
        crate::DiffFail::None => false,
    });
    Ok(exit(
        if fail { 1 } else { 0 },
        input_errors(a) + input_errors(b),
    ))
}

pub fn report(
    paths: &[PathBuf],
    flows: &[PathBuf],
    cluster: ClusterConfig,
    output: &Path,
    clients: Vec<String>,
    verbose: bool,
) -> Result<u8, String> {
    let meta = report_meta(paths, flows)?;
    let inv = until_exit(load::inventory(paths, cluster)?);
    report_of(inv, meta, output, clients, verbose, Then::Exit)
}

/// What follows a command's work: the process's exit, or more work that
/// needs the memory back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Exit,
    Continue,
}

/// `x` for the rest of the process, never freed: for the values a command
/// reads until the process exits (see [`keep_until_exit`]).
pub fn until_exit<'a, T: 'a>(x: T) -> &'a T {
    Box::leak(Box::new(x))
}

/// Leaves `x` to the process's exit instead of freeing it: the exit
/// returns the whole heap to the system at once, while freeing a large
/// cluster's inventory, engine and maps allocation by allocation took
/// 0.14 s (dense 50k) to 0.25 s (100k pods) after the report was written
/// (docs/performance.md). Only for values the rest of the process never
/// needs: peak memory is what it was.
pub fn keep_until_exit<T>(x: T) {
    std::mem::forget(x);
}

/// The report header's facts (inputs, time), before loading.
pub fn report_meta(
    paths: &[PathBuf],
    flows: &[PathBuf],
) -> Result<verdict_core::report::ReportMeta, String> {
    let mut meta = crate::invocation::report_meta(paths, flows)?;
    if load::live() {
        meta.inputs.insert(0, "the live cluster".to_string());
    }
    Ok(meta)
}

/// The lint findings as the report shows them.
fn report_findings<'a>(
    inv: &'a verdict_core::ingest::Inventory,
    engine: &'a Engine<'a>,
    routing: &'a verdict_core::routes::Routing,
    p: &'a verdict_core::paths::PathsReport,
    config: &'a verdict_lint::LintConfig,
) -> Vec<verdict_core::report::ReportFinding> {
    let cx = verdict_lint::Context::new(inv, engine, routing, p, config);
    let lint = verdict_lint::run(&cx, config);
    lint.findings
        .iter()
        .map(|f| verdict_core::report::ReportFinding {
            code: f.code.to_string(),
            level: f.level.to_string(),
            location: f.location.to_string(),
            message: f.message.clone(),
            help: f.help.clone(),
        })
        .collect()
}

/// `report` of a loaded inventory (`report --flows` then replays the
/// flows against the same inventory).
pub fn report_of(
    inv: &verdict_core::ingest::Inventory,
    meta: verdict_core::report::ReportMeta,
    output: &Path,
    clients: Vec<String>,
    verbose: bool,
    then: Then,
) -> Result<u8, String> {
    use verdict_core::matrix::MatrixOptions;
    use verdict_core::paths::{paths_decisions as compute, PathOptions};
    use verdict_core::report::{matrix_and_panels, page_parts, render_parts};
    use verdict_core::routes::Routing;
    use verdict_core::text::IoText;
    load::report(inv, verbose);
    let routing = Routing::from_inventory(inv);
    // Declared before the engine: the lint borrows them for its lifetime.
    let config = verdict_lint::LintConfig::default();
    let paths_slot = std::sync::OnceLock::new();
    // Left to the process's exit when it comes next (see keep_until_exit).
    let owned;
    let engine: &Engine = if then == Then::Exit {
        until_exit(Engine::new(inv))
    } else {
        owned = Engine::new(inv);
        &owned
    };
    let opts = PathOptions {
        clients,
        ..PathOptions::default()
    };
    // The paths and the lint (which reads them) on this thread, every
    // identity's map (resolved once for the matrix and the endpoints'
    // policy panels) and the matrix on a second one. The page shows no
    // near misses (nor does the lint read them): paths without them; it
    // names no rule of the matrix (the dense clusters' rows name many
    // rules each).
    let (parts, m, panels) = matrix_and_panels(
        engine,
        &MatrixOptions::default(),
        || {
            let p = paths_slot.get_or_init(|| compute(engine, &routing, &opts));
            report_findings(inv, engine, &routing, p, &config)
        },
        // The parts of the page that do not need the matrix, meanwhile.
        |findings, view| {
            paths_slot
                .get()
                .map(|p| page_parts(engine, p, &findings, view))
        },
    );
    let (Some(p), Some(parts)) = (paths_slot.get(), parts) else {
        return Err("the paths were not computed".to_string());
    };
    // The page is written as it is formed: never held whole in memory.
    let fail = |e: std::io::Error| format!("{}: {e}", output.display());
    let file = std::fs::File::create(output).map_err(fail)?;
    let mut page = IoText::new(std::io::BufWriter::with_capacity(1 << 20, file));
    render_parts(&mut page, p, &m, &meta, &parts);
    page.finish().map_err(fail)?;
    eline!("wrote {}", output.display());
    let code = exit(0, input_errors(inv));
    if then == Then::Exit {
        keep_until_exit((panels, m, parts));
    }
    Ok(code)
}
