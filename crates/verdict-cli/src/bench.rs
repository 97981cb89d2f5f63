//! `verdict bench`: on synthetic clusters, every user command run as a
//! child process and compared with the YAML parse of the same input
//! (`bench/commands.rs`), the stages inside one process (`--stages`, this
//! file), and the counters of the CI regression guard (`--counters`,
//! `bench/counters.rs`), and lint's own cost per rule (`--lint-rules`,
//! `bench/lint_rules.rs`).

mod commands;
pub mod counters;
mod generate_stages;
mod lint_rules;
mod measure;

use std::path::PathBuf;
use std::time::Instant;
use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::resolved::{resolve_all, resolve_all_threads};
use verdict_core::synth::{generate_shaped, Shape, SynthSpec};
use verdict_core::trace::trace;
use verdict_core::yaml::parse_documents;

/// The synthetic cluster every benchmark of one size and shape reads (a
/// fixed seed, so that runs compare).
pub(crate) fn cluster(pods: usize, policies: usize, shape: Shape) -> String {
    generate_shaped(
        &SynthSpec {
            pods,
            policies,
            seed: 42,
        },
        shape,
    )
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `verdict bench` arguments.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Sizes as PODS:POLICIES, comma-separated
    #[arg(long, default_value = "1000:100,2000:200")]
    sizes: String,
    /// Policies whose selectors reach a share of the whole cluster (`In` sets over namespaces, cluster-wide peers)
    #[arg(long)]
    dense: bool,
    /// Instead of whole commands: time each stage inside this process
    #[arg(long)]
    stages: bool,
    /// Instead: print the work counters of the first size as JSON (the CI regression guard)
    #[arg(long)]
    counters: bool,
    /// Instead: where `verdict lint` spends its time and output (context, each rule, each format), inside this process
    #[arg(long)]
    lint_rules: bool,
    /// Only these commands (comma-separated), e.g. check,paths,matrix
    #[arg(long)]
    commands: Option<String>,
    /// Seconds each command may take before it is stopped and reported as over the limit
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Address-space limit of each command, MiB (0: none); a command over it is reported as such.
    /// The allocator (mimalloc) reserves about 1 GiB of address space up front: limits below
    /// about 1,500 MiB fail at start
    #[arg(long, default_value_t = 6144)]
    mem_limit_mib: u64,
    /// Run each measurement (each parse baseline, each command) this many times and show the
    /// median time (and the largest peak memory)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=99))]
    repeat: u64,
    /// Also write each generated cluster (and the commands' other inputs) to this directory
    #[arg(long)]
    write: Option<PathBuf>,
    /// Instead: replay this many synthetic flow records over the first size's cluster, compared with only parsing them
    #[arg(long, value_name = "RECORDS")]
    replay: Option<usize>,
    /// Internal: parse these files only (the baseline of the whole-command table)
    #[arg(long, hide = true, num_args = 1..)]
    parse_only: Vec<PathBuf>,
    /// Internal: run the command after `--` as a measured child, its standard output to this file
    #[arg(long, hide = true, requires = "child")]
    measure: Option<PathBuf>,
    /// Internal: the measured command's arguments
    #[arg(last = true, hide = true)]
    child: Vec<String>,
}

pub fn main(args: BenchArgs) -> Result<u8, String> {
    if let Some(out) = &args.measure {
        return measure::run_child(out, &args.child, args.timeout, args.mem_limit_mib);
    }
    if !args.parse_only.is_empty() {
        return measure::parse_only(&args.parse_only);
    }
    let sizes = parse_sizes(&args.sizes)?;
    let shape = if args.dense {
        Shape::Dense
    } else {
        Shape::Standard
    };
    let first = sizes.first().copied().unwrap_or((10_000, 1_000));
    if args.counters {
        let c = counters::measure(first.0, first.1, shape)?;
        println!("{}", counters::to_json(&c));
        return Ok(0);
    }
    if let Some(n) = args.replay {
        let (pods, policies) = sizes
            .iter()
            .find(|(p, _)| *p == 10_000)
            .copied()
            .unwrap_or(first);
        return crate::bench_replay::run(n, pods, policies);
    }
    if args.lint_rules {
        return lint_rules::run(&sizes, shape);
    }
    if args.stages && args.commands.as_deref() == Some("generate") {
        return generate_stages::run(&sizes, shape);
    }
    if args.stages {
        return stages(&sizes, shape, args.write.as_deref());
    }
    let only = match &args.commands {
        None => None,
        Some(list) => Some(commands::select(list)?),
    };
    commands::run(&commands::Plan {
        sizes,
        shape,
        only,
        timeout: args.timeout,
        mem_limit_mib: args.mem_limit_mib,
        keep: args.write,
        repeat: usize::try_from(args.repeat).unwrap_or(1),
    })
}

fn parse_sizes(s: &str) -> Result<Vec<(usize, usize)>, String> {
    s.split(',')
        .map(|p| {
            let (a, b) = p
                .split_once(':')
                .ok_or_else(|| format!("`{p}`: expected PODS:POLICIES"))?;
            Ok((
                a.trim()
                    .parse()
                    .map_err(|_| format!("`{a}` is not a number"))?,
                b.trim()
                    .parse()
                    .map_err(|_| format!("`{b}` is not a number"))?,
            ))
        })
        .collect()
}

/// The stage table: each stage timed inside this process.
fn stages(
    sizes: &[(usize, usize)],
    shape: Shape,
    write: Option<&std::path::Path>,
) -> Result<u8, String> {
    let header = "| pods | policies | MiB | parse s | load s | identities s | resolve-all 1 thread s | resolve-all all cores s | trace ms | matrix s | matrix/parse | diff s | diff/parse both | resolve/parse 1 thread | resolve/parse all cores | load/parse | identities | map entries | peak RSS MiB |";
    println!("{header}");
    println!("|{}", "---:|".repeat(header.matches('|').count() - 1));
    let mut base: Option<(f64, f64)> = None;
    for &(pods, policies) in sizes {
        let text = cluster(pods, policies, shape);
        if let Some(dir) = write {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            let f = dir.join(format!("synthetic-{pods}-{policies}.yaml"));
            std::fs::write(&f, &text).map_err(|e| format!("{}: {e}", f.display()))?;
        }
        let t = Instant::now();
        let docs = parse_documents(&text);
        let parse = t.elapsed().as_secs_f64();
        drop(docs);
        let t = Instant::now();
        let mut inv = Inventory::new(ClusterConfig {
            enable_k8s_cluster_network_policy: true,
            ..ClusterConfig::default()
        });
        inv.load_text("synthetic.yaml", &text);
        inv.complete_namespaces();
        let load = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let engine = Engine::new(&inv);
        let ident = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let one = resolve_all_threads(&engine, 1);
        let resolve1 = t.elapsed().as_secs_f64();
        drop(one);
        let t = Instant::now();
        let all = resolve_all(&engine);
        let resolve = t.elapsed().as_secs_f64();
        let entries: usize = all.iter().map(|r| r.entries.len()).sum();
        let t = Instant::now();
        let m =
            verdict_core::matrix::matrix(&engine, &verdict_core::matrix::MatrixOptions::default());
        let mx = t.elapsed().as_secs_f64();
        let cells = m.cells.len();
        // diff: the same cluster plus one policy (both inputs loaded and
        // compared, as `verdict diff` does).
        let changed = format!("{text}---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: bench-change, namespace: ns-1}}\nspec:\n  endpointSelector: {{matchLabels: {{app: app-3}}}}\n  ingress:\n    - fromEntities: [world]\n");
        let t = Instant::now();
        let mut inv2 = Inventory::new(ClusterConfig {
            enable_k8s_cluster_network_policy: true,
            ..ClusterConfig::default()
        });
        inv2.load_text("changed.yaml", &changed);
        inv2.complete_namespaces();
        let engine2 = Engine::new(&inv2);
        let m2 =
            verdict_core::matrix::matrix(&engine2, &verdict_core::matrix::MatrixOptions::default());
        let d = verdict_core::diff::diff(&m, &m2, verdict_core::diff::policy_changes(&inv, &inv2));
        let df = t.elapsed().as_secs_f64() + mx + load;
        let _ = d.world_exposure();
        drop((m, m2, d));
        drop(engine2);
        drop(inv2);
        let from = engine.party("ingress")?;
        let to = engine.party("ns-1/app-3-0")?;
        let t = Instant::now();
        let n = 20;
        for _ in 0..n {
            std::hint::black_box(trace(
                &engine,
                &from,
                &to,
                verdict_core::policy::Protocol::Tcp,
                5432,
            ));
        }
        let tr = t.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
        println!(
            "| {pods} | {policies} | {:.1} | {parse:.3} | {load:.3} | {ident:.3} | {resolve1:.3} | {resolve:.3} | {tr:.2} | {mx:.3} | {:.2} | {df:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {entries} | {:.0} |",
            text.len() as f64 / 1048576.0,
            mx / parse,
            df / (2.0 * parse),
            resolve1 / parse,
            resolve / parse,
            load / parse,
            engine.identities.len(),
            peak_rss_mib()
        );
        let work = (pods * policies) as f64;
        match base {
            None => base = Some((work, resolve)),
            Some((w0, r0)) => println!(
                "|  growth vs first row: pods x policies x{:.0}, resolve-all time x{:.1} ({cells} matrix cells) |",
                work / w0,
                resolve / r0
            ),
        }
    }
    Ok(0)
}
