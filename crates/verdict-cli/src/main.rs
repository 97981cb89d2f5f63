#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
//! The `verdict` binary: argument parsing, I/O and exit codes only.
//!
//! Exit codes: 0 ok; 1 a finding (denied traffic, failed tests, lint
//! findings, new world exposure); 2 usage errors, and any input error (an
//! error diagnostic from loading, a filter that matches nothing, a write
//! error), after printing what could be analysed.

mod bench;
mod bench_replay;
mod ci_output;
mod commands;
mod github;
mod help;
mod invocation;
mod junit;
mod live;
mod live_objects;
mod live_overlay;
mod load;
mod replay;
mod schema;
mod snapshot;
mod stream_out;
mod style;
mod tools;
mod wrap;
mod yaml_out;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "verdict",
    version = invocation::VERSION,
    about = "Will outside traffic reach my app through Cilium Ingress / Gateway API? Cilium's policy engine, offline.",
    after_help = help::MAIN
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Cluster name (Cilium's cluster-name; selects the `cluster` entity) [default: default, or the input's cilium-config]
    #[arg(long, global = true)]
    cluster_name: Option<String>,
    /// Both IPv4 and IPv6 enabled (world-ipv4 / world-ipv6 identities)
    #[arg(long, global = true)]
    dual_stack: bool,
    /// The Cilium release whose semantics apply: 1.18, 1.19 or 1.20, optionally with its patch (1.18.6) [default: 1.20, or the input's cilium agent image]
    #[arg(long, global = true, value_name = "VERSION")]
    cilium_version: Option<String>,
    /// The agent's enable-policy: default, always (every endpoint default deny) or never [default: default, or the input's cilium-config]
    #[arg(long, global = true, value_name = "MODE")]
    policy_enforcement: Option<String>,
    /// The agent's allow-localhost: always (the node reaches its pods; what auto means in Kubernetes) or policy [default: always]
    #[arg(long, global = true, value_name = "MODE")]
    allow_localhost: Option<String>,
    /// The agent's policy-default-local-cluster: selectors match only the local cluster [default: the release's default, true]
    #[arg(long, global = true, value_name = "BOOL")]
    policy_default_local_cluster: Option<bool>,
    /// The agent's enable-k8s-cluster-network-policy: enforce ClusterNetworkPolicy objects (Cilium 1.20+) [default: false]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    enable_k8s_cluster_network_policy: Option<bool>,
    /// Also print informational diagnostics
    #[arg(long, short, global = true)]
    verbose: bool,
    /// Leave out files and directories matching this glob when reading directories (repeatable; `.gitignore` is honoured too)
    #[arg(long, global = true, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Colour text output: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    color: style::ColorWhen,
    /// Read the live cluster of this kubeconfig file; files given are applied on top (see docs/live-cluster.md)
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Read the live cluster of this kubeconfig context ($KUBECONFIG or ~/.kube/config unless --kubeconfig); files given are applied on top
    #[arg(long, global = true, value_name = "NAME")]
    context: Option<String>,
    /// Read the live cluster with the service account of the pod verdict runs in; files given are applied on top
    #[arg(long, global = true)]
    in_cluster: bool,
    /// Wrap long lines of text output at N columns (0: never); by default the terminal's width on a terminal, no wrapping into pipes and files
    #[arg(long, global = true, value_name = "N")]
    width: Option<usize>,
}

/// The options that read a live cluster: with one of them, manifests are optional.
const LIVE_ARGS: [&str; 3] = ["kubeconfig", "context", "in_cluster"];

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MatrixFormat {
    Text,
    Json,
    Csv,
    Dot,
    Mermaid,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DiffFormat {
    Text,
    Json,
    Markdown,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DiffFail {
    /// new connections from outside the cluster to anything but the ingress, or workloads left without ingress policy
    WorldExposure,
    /// a path (entry point -> route -> Service -> backend) allowed in OLD and denied, or no longer served, in NEW
    Breaking,
    /// a path newly reachable from outside (added allowed, or denied before)
    PathExposure,
    /// any added connection, workload left without ingress policy, or path change
    Any,
    /// never
    None,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
    /// JUnit XML: one test case per finding
    Junit,
    /// GitHub Actions annotations (workflow commands)
    Github,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Hop1PortArg {
    Listener,
    Backend,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PathsFormat {
    Text,
    Json,
    Markdown,
    /// GitHub Actions annotations: denied paths as errors, paths not checked as warnings
    Github,
    Yaml,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TestFormat {
    Text,
    /// GitHub Actions annotations: each failed expectation as an error at its file and line
    Github,
}

#[derive(Subcommand)]
enum Command {
    /// The verdict for one flow: egress at the source, ingress at the destination, and the deciding rules
    #[command(after_help = help::TRACE)]
    Trace {
        /// Source: ns/pod, ns/kind/name, world, ingress, reserved:NAME, cidr:A.B.C.D/N or an IP
        #[arg(long)]
        from: String,
        /// Destination, named like --from
        #[arg(long)]
        to: String,
        /// Destination port (or ICMP type)
        #[arg(long)]
        port: u16,
        /// TCP, UDP, SCTP, ICMP or ICMPv6
        #[arg(long, default_value = "TCP")]
        protocol: String,
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Format,
        /// Manifests: files, directories (searched recursively), or - for standard input
        #[arg(required_unless_present_any = LIVE_ARGS)]
        paths: Vec<PathBuf>,
    },
    /// Every route into the cluster (Ingress, Gateway listeners) to every backend pod, hop by hop
    #[command(after_help = help::PATHS)]
    Paths {
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: PathsFormat,
        /// Client sources (default: world); repeatable: a CIDR, an IP, or any party name
        #[arg(long = "client")]
        clients: Vec<String>,
        /// An in-cluster pod that calls routes by hostname (ns/pod); repeatable
        #[arg(long = "in-cluster-client")]
        in_cluster_clients: Vec<String>,
        /// Ingress-controller pods for non-Cilium controllers: NAMESPACE/KEY=VALUE[,KEY=VALUE]; repeatable
        #[arg(long = "controller")]
        controllers: Vec<String>,
        /// Only routes in, or backends in, this namespace
        #[arg(long)]
        namespace: Option<String>,
        /// Only this route (name or ns/name)
        #[arg(long)]
        route: Option<String>,
        /// Only backends whose name contains this text
        #[arg(long)]
        backend: Option<String>,
        /// Exit 0 even when paths are denied
        #[arg(long)]
        report_only: bool,
        /// Destination port of Cilium Envoy's hop-1 check: `listener` (current Envoy) or `backend` (Cilium 1.15-era Envoy)
        #[arg(long, value_enum, default_value = "listener")]
        envoy_hop1_port: Hop1PortArg,
        /// Manifests: files, directories (searched recursively), or - for standard input
        #[arg(required_unless_present_any = LIVE_ARGS)]
        paths: Vec<PathBuf>,
    },
    /// Who can reach whom: allowed connectivity between identities, with ports and protocols
    #[command(after_help = help::MATRIX)]
    Matrix {
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: MatrixFormat,
        /// Only connections from or to this namespace
        #[arg(long)]
        namespace: Option<String>,
        /// Only connections from or to workloads whose name contains this text
        #[arg(long)]
        workload: Option<String>,
        /// Rows between groups of identities that every policy treats alike (text, json, yaml); text uses them above 1000 connections anyway
        #[arg(long, conflicts_with = "pairs")]
        summarise: bool,
        /// One text row per connected pair of identities, however many
        #[arg(long)]
        pairs: bool,
        /// Manifests: files, directories (searched recursively), or - for standard input
        #[arg(required_unless_present_any = LIVE_ARGS)]
        paths: Vec<PathBuf>,
    },
    /// Connectivity added and removed between two sets of manifests (or two git revisions)
    #[command(after_help = help::DIFF)]
    Diff {
        /// Old manifests (a file or directory), or a git revision with --git
        #[arg(required_unless_present = "cluster_base")]
        old: Option<String>,
        /// New manifests (a file or directory), or a git revision with --git
        #[arg(required_unless_present = "cluster_base")]
        new: Option<String>,
        /// Compare the live cluster (--context, --kubeconfig or --in-cluster) with the live cluster plus these manifests
        #[arg(long, value_name = "PATHS", num_args = 1.., conflicts_with_all = ["old", "new", "git"])]
        cluster_base: Vec<PathBuf>,
        /// OLD and NEW are git revisions of the repository in the current directory
        #[arg(long)]
        git: bool,
        /// With --git: the directories (or files) inside the repository to read
        #[arg(long = "path", default_value = ".")]
        git_paths: Vec<String>,
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: DiffFormat,
        /// When to exit 1 (comma-separated or repeated; any of them fails)
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [DiffFail::WorldExposure, DiffFail::Breaking])]
        fail_on: Vec<DiffFail>,
    },
    /// One self-contained HTML page: paths, enforcement-point graph, lint findings, matrix
    #[command(after_help = help::REPORT)]
    Report {
        /// Where to write the page
        #[arg(long, short = 'o', default_value = "verdict-report.html")]
        output: PathBuf,
        /// Client sources (default: world); repeatable
        #[arg(long = "client")]
        clients: Vec<String>,
        /// Also show observed traffic from these Hubble flows (delivered, dropped, would break); repeatable
        #[arg(long = "flows")]
        flows: Vec<PathBuf>,
        /// Manifests: files, directories (searched recursively), or - for standard input
        #[arg(required_unless_present_any = LIVE_ARGS)]
        paths: Vec<PathBuf>,
    },
    /// Least-privilege policies for both enforcement points of every route, verified
    #[command(after_help = help::GENERATE)]
    Generate {
        /// Client sources, repeatable: a CIDR (203.0.113.0/24), an IP, or world [default: the CIDRs the input already restricts the ingress to, else world]
        #[arg(long = "client")]
        clients: Vec<String>,
        /// Ingress-controller pods for non-Cilium controllers: NAMESPACE/KEY=VALUE[,KEY=VALUE]; repeatable
        #[arg(long = "controller")]
        controllers: Vec<String>,
        /// Only routes in, or backends in, this namespace
        #[arg(long)]
        namespace: Option<String>,
        /// Only this route (name or ns/name)
        #[arg(long)]
        route: Option<String>,
        /// Write backend and controller policies as CiliumClusterwideNetworkPolicy
        #[arg(long)]
        prefer_ccnp: bool,
        /// Backend policies only add allows (enableDefaultDeny.ingress: false)
        #[arg(long)]
        no_default_deny: bool,
        /// Only what the currently denied hops need
        #[arg(long)]
        only_missing: bool,
        /// Append the generated rules to existing policies with the same selector (written back whole)
        #[arg(long)]
        merge: bool,
        /// Write one file per object into this directory instead of one stream
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Skip the verification (paths, connectivity diff, lint)
        #[arg(long)]
        no_verify: bool,
        /// Instead of routes: policies allowing exactly the connections observed delivered in these Hubble flows (file, directory or -; repeatable); PATHS then optional
        #[arg(long = "from-flows")]
        from_flows: Vec<PathBuf>,
        /// Manifests: files, directories (searched recursively), or - for standard input
        #[arg(required_unless_present_any = ["from_flows", "kubeconfig", "context", "in_cluster"])]
        paths: Vec<PathBuf>,
    },
    /// Least-privilege findings with stable rule ids (text, JSON, SARIF)
    #[command(after_help = help::LINT)]
    Lint {
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: LintFormat,
        /// Configuration file (default: .verdict.yaml in the current directory, if present)
        #[arg(long)]
        config: Option<PathBuf>,
        /// Turn a rule off (code or name); repeatable
        #[arg(long)]
        disable: Vec<String>,
        /// Turn a rule on (code or name); repeatable
        #[arg(long)]
        enable: Vec<String>,
        /// Change a rule's level: CODE=error|warning|info; repeatable
        #[arg(long = "level")]
        levels: Vec<String>,
        /// Exit 1 when a finding is at or above this level (default: warning, or the config's failOn)
        #[arg(long)]
        fail_on: Option<String>,
        /// Print a rule's documentation and exit
        #[arg(long)]
        explain: Option<String>,
        /// List the rules and exit
        #[arg(long)]
        list: bool,
        /// Print docs/rules.md and exit
        #[arg(long)]
        rules_doc: bool,
        /// Manifests: files, directories (searched recursively), or - for standard input
        paths: Vec<PathBuf>,
    },
    /// The resolved policy of one endpoint, as the agent would program it
    #[command(after_help = help::POLICY)]
    Policy {
        /// ns/pod, ns/kind/name, or a reserved identity such as ingress
        endpoint: String,
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Format,
        /// Manifests: files, directories (searched recursively), or - for standard input
        #[arg(required_unless_present_any = LIVE_ARGS)]
        paths: Vec<PathBuf>,
    },
    /// Run PolicyTest files (expected verdicts and rejections)
    #[command(after_help = help::TEST)]
    Test {
        /// PolicyTest files, or directories (their files holding PolicyTest documents)
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: TestFormat,
        /// Also write the results as JUnit XML to this file (one test case per expectation)
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Benchmark every command on synthetic clusters (see docs/performance.md); for developers
    #[command(hide = true)]
    Bench(bench::BenchArgs),
    /// Replay observed Hubble flows against the policies in PATHS: connections that would break or be newly allowed
    #[command(after_help = help::REPLAY)]
    Replay {
        /// Hubble flows: a file (`hubble observe -o json`, exporter files, gzip too), a directory of them, or - for stdin; repeatable
        #[arg(long = "flows", required = true)]
        flows: Vec<PathBuf>,
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: replay::ReplayFormat,
        /// When to exit 1
        #[arg(long, value_enum, default_value = "break")]
        fail_on: replay::ReplayFail,
        /// Manifests: policies (and optionally pods, namespaces, cilium-config)
        #[arg(required_unless_present_any = LIVE_ARGS)]
        paths: Vec<PathBuf>,
    },
    /// Load manifests and report every problem found in them
    #[command(after_help = help::CHECK)]
    Check {
        /// Output format
        #[arg(long, short = 'o', value_enum, default_value = "text")]
        output: Format,
        /// Manifests: files, directories (searched recursively), or - for standard input
        #[arg(required_unless_present_any = LIVE_ARGS)]
        paths: Vec<PathBuf>,
    },
    /// Write the live cluster state that verdict reads as YAML files, one per kind (to keep, diff or attach to a bug report)
    #[command(after_help = help::SNAPSHOT)]
    Snapshot {
        /// Directory to write (created; must be empty)
        #[arg(long, short = 'o', value_name = "DIR")]
        output: PathBuf,
    },
    #[command(flatten)]
    Tools(tools::Tools),
}

fn main() -> ExitCode {
    // No transparent huge pages for this process: the allocator asks for
    // them (madvise), and the kernel then zeroes a whole 2 MiB page on the
    // first touch of any byte of it — a quarter of all CPU samples on the
    // large clusters, for pages the heap barely uses before they are
    // returned (docs/performance.md, "sixth session"). Failing to set it
    // only costs time.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    let cli = invocation::parse();
    style::init(cli.color);
    wrap::init(cli.width);
    if let Err(e) = load::set_excludes(&cli.exclude) {
        eprintln!("error: {}", verdict_core::text::escape(&e.to_string()));
        return ExitCode::from(2);
    }
    let cluster = match cluster_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", verdict_core::text::escape(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    let live_args = live::LiveArgs {
        kubeconfig: cli.kubeconfig.clone(),
        context: cli.context.clone(),
        in_cluster: cli.in_cluster,
    };
    if let Err(e) = read_live(&cli.command, &live_args) {
        eprintln!("error: {}", verdict_core::text::escape(&e));
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Snapshot { output } => {
            live::fetch(&live_args).and_then(|state| snapshot::write(&state, &output, cli.verbose))
        }
        Command::Report {
            output,
            clients,
            flows,
            paths,
        } if !flows.is_empty() => {
            replay::report_with_flows(&flows, &paths, cluster, &output, clients, cli.verbose)
        }
        Command::Report {
            output,
            clients,
            paths,
            ..
        } => commands::report(&paths, &[], cluster, &output, clients, cli.verbose),
        Command::Diff {
            old,
            new,
            cluster_base,
            git,
            git_paths,
            output,
            fail_on,
        } => commands::diff(
            &old.unwrap_or_default(),
            &new.unwrap_or_default(),
            &cluster_base,
            git,
            &git_paths,
            cluster,
            output,
            &fail_on,
            cli.verbose,
        ),
        Command::Matrix {
            output,
            namespace,
            workload,
            summarise,
            pairs,
            paths,
        } => commands::matrix(
            &paths,
            cluster,
            output,
            (namespace, workload),
            commands::MatrixForm::pick(summarise, pairs),
            cli.verbose,
        ),
        Command::Generate {
            out_dir,
            no_verify,
            from_flows,
            paths,
            ..
        } if !from_flows.is_empty() => {
            let out = out_dir.map(|d| d.join("verdict-flows.yaml"));
            if let Some(d) = out.as_ref().and_then(|f| f.parent()) {
                if let Err(e) = std::fs::create_dir_all(d) {
                    eprintln!(
                        "error: {}",
                        verdict_core::text::escape(&format!("{}: {e}", d.display()))
                    );
                    return ExitCode::from(2);
                }
            }
            replay::generate_from_flows(
                &from_flows,
                &paths,
                cluster,
                out.as_deref(),
                no_verify,
                cli.verbose,
            )
        }
        Command::Generate {
            clients,
            controllers,
            namespace,
            route,
            prefer_ccnp,
            no_default_deny,
            only_missing,
            merge,
            out_dir,
            no_verify,
            from_flows: _,
            paths,
        } => commands::generate(
            &paths,
            cluster,
            commands::GenerateArgs {
                clients,
                controllers,
                namespace,
                route,
                prefer_ccnp,
                no_default_deny,
                only_missing,
                merge,
                out_dir,
                no_verify,
            },
            cli.verbose,
        ),
        Command::Lint {
            output,
            config,
            disable,
            enable,
            levels,
            fail_on,
            explain,
            list,
            rules_doc,
            paths,
        } => commands::lint(
            &paths,
            cluster,
            commands::LintArgs {
                output,
                config,
                disable,
                enable,
                levels,
                fail_on,
                explain,
                list,
                rules_doc,
            },
            cli.verbose,
        ),
        Command::Paths {
            output,
            clients,
            in_cluster_clients,
            controllers,
            namespace,
            route,
            backend,
            report_only,
            envoy_hop1_port,
            paths,
        } => commands::paths(
            &paths,
            cluster,
            commands::PathsArgs {
                output,
                clients,
                in_cluster_clients,
                controllers,
                namespace,
                route,
                backend,
                report_only,
                hop1_port: match envoy_hop1_port {
                    Hop1PortArg::Listener => verdict_core::paths::Hop1Port::Listener,
                    Hop1PortArg::Backend => verdict_core::paths::Hop1Port::Backend,
                },
            },
            cli.verbose,
        ),
        Command::Trace {
            from,
            to,
            port,
            protocol,
            output,
            paths,
        } => commands::trace(
            &paths,
            cluster,
            &from,
            &to,
            &protocol,
            port,
            output,
            cli.verbose,
        ),
        Command::Policy {
            endpoint,
            output,
            paths,
        } => commands::policy(&paths, cluster, &endpoint, output, cli.verbose),
        Command::Test {
            files,
            output,
            junit,
        } => commands::test(&files, output, junit.as_deref(), cli.verbose),
        Command::Bench(args) => bench::main(args),
        Command::Replay {
            flows,
            output,
            fail_on,
            paths,
        } => replay::replay(&flows, &paths, cluster, output, fail_on, cli.verbose),
        Command::Check { output, paths } => commands::check(&paths, cluster, output),
        Command::Tools(t) => tools::run(t),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", verdict_core::text::escape(&e.to_string()));
            ExitCode::from(2)
        }
    }
}

/// Reads the live cluster when asked to, for the commands that read
/// manifests (`snapshot` reads it itself).
fn read_live(command: &Command, args: &live::LiveArgs) -> Result<(), String> {
    let reads_manifests = match command {
        Command::Snapshot { .. } => {
            return if args.given() {
                Ok(())
            } else {
                Err(
                    "snapshot reads a live cluster: give --context, --kubeconfig or --in-cluster"
                        .to_string(),
                )
            };
        }
        Command::Diff { cluster_base, .. } => {
            if !cluster_base.is_empty() && !args.given() {
                return Err("--cluster-base compares with a live cluster: give --context, --kubeconfig or --in-cluster".to_string());
            }
            !cluster_base.is_empty()
        }
        Command::Test { .. } | Command::Bench { .. } | Command::Tools(_) => false,
        _ => true,
    };
    if !args.given() {
        return Ok(());
    }
    if !reads_manifests {
        return Err(
            "--context, --kubeconfig and --in-cluster apply to commands that read manifests (and to diff with --cluster-base)".to_string(),
        );
    }
    load::set_live(live::fetch(args)?);
    Ok(())
}

/// The cluster settings given on the command line (marked explicit, so
/// that settings found in the input do not override them).
fn cluster_config(cli: &Cli) -> Result<verdict_core::ingest::ClusterConfig, String> {
    use verdict_core::settings::{AllowLocalhost, PolicyEnforcement};
    let mut c = verdict_core::ingest::ClusterConfig::default();
    if let Some(n) = &cli.cluster_name {
        c.name = n.clone();
        c.explicit.name = true;
    }
    if cli.dual_stack {
        c.dual_stack = true;
        c.explicit.dual_stack = true;
    }
    if let Some(v) = &cli.cilium_version {
        c.set_version(v)
            .map_err(|e| format!("--cilium-version: {e}"))?;
        c.explicit.version = true;
    }
    if let Some(v) = &cli.policy_enforcement {
        c.policy_enforcement =
            PolicyEnforcement::parse(v).map_err(|e| format!("--policy-enforcement: {e}"))?;
        c.explicit.policy_enforcement = true;
    }
    if let Some(v) = &cli.allow_localhost {
        c.allow_localhost =
            AllowLocalhost::parse(v).map_err(|e| format!("--allow-localhost: {e}"))?;
        c.explicit.allow_localhost = true;
    }
    if let Some(v) = cli.policy_default_local_cluster {
        c.policy_default_local_cluster = Some(v);
        c.explicit.policy_default_local_cluster = true;
    }
    if let Some(v) = cli.enable_k8s_cluster_network_policy {
        c.enable_k8s_cluster_network_policy = v;
        c.explicit.enable_k8s_cluster_network_policy = true;
    }
    Ok(c)
}
