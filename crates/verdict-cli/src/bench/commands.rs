//! The whole-command table: every user command run the way users run it
//! (the `verdict` binary on files), each as its own child process
//! (`measure.rs`), compared with parsing the same input in the same run.

use super::measure::{measure, Outcome};
use crate::bench_replay::{flow_lines, parties};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::policy::Protocol;
use verdict_core::synth::Shape;
use verdict_core::trace::trace;

/// Every user command, in the order of the table.
pub const COMMANDS: &[&str] = &[
    "check", "paths", "trace", "policy", "matrix", "lint", "diff", "generate", "report", "test",
    "replay",
];

/// The commands named in a comma-separated list; an unknown name is an error.
pub fn select(list: &str) -> Result<Vec<&'static str>, String> {
    list.split(',')
        .map(|n| {
            COMMANDS
                .iter()
                .find(|c| **c == n.trim())
                .copied()
                .ok_or_else(|| format!("--commands: `{n}` is not one of {}", COMMANDS.join(", ")))
        })
        .collect()
}

pub struct Plan {
    pub sizes: Vec<(usize, usize)>,
    pub shape: Shape,
    pub only: Option<Vec<&'static str>>,
    pub timeout: u64,
    pub mem_limit_mib: u64,
    pub keep: Option<PathBuf>,
    /// Runs of each measurement; the table shows the median (`--repeat`).
    pub repeat: usize,
}

/// The endpoint `trace` and `policy` ask about (present at every size).
const ENDPOINT: &str = "ns-1/app-3-0";
const CLUSTER: &str = "cluster.yaml";
const CHANGED: &str = "changed.yaml";
const FLOWS: &str = "flows.jsonl";
const TEST: &str = "policytest.yaml";

/// One size's results: the parse baselines by input, then each command.
struct SizeRun {
    pods: usize,
    policies: usize,
    input_bytes: BTreeMap<&'static str, u64>,
    parse: BTreeMap<&'static str, Outcome>,
    /// With `--repeat`: each command's own parse baseline, the median of
    /// the parse runs interleaved with its runs.
    parse_of: BTreeMap<&'static str, f64>,
    commands: Vec<(&'static str, Outcome)>,
}

pub fn run(plan: &Plan) -> Result<u8, String> {
    let root = match &plan.keep {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("verdict-bench-{}", std::process::id())),
    };
    let mut runs = Vec::new();
    for &(pods, policies) in &plan.sizes {
        let dir = root.join(format!(
            "{pods}-{policies}{}",
            if plan.shape == Shape::Dense {
                "-dense"
            } else {
                ""
            }
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        eprintln!("bench: generating {pods} pods, {policies} policies");
        let input_bytes = prepare(&dir, pods, policies, plan.shape)?;
        let mut r = SizeRun {
            pods,
            policies,
            input_bytes,
            parse: BTreeMap::new(),
            parse_of: BTreeMap::new(),
            commands: Vec::new(),
        };
        for cmd in COMMANDS {
            if plan.only.as_ref().is_some_and(|o| !o.contains(cmd)) {
                continue;
            }
            let (args, base) = invocation(cmd);
            let mut parse_args = vec!["bench".to_string(), "--parse-only".to_string()];
            parse_args.extend(base.split('+').map(str::to_string));
            if !r.parse.contains_key(base) {
                let (o, _) = median(&dir, "parse", &parse_args, None, plan)?;
                eprintln!("bench: {pods} pods: parse {base}: {}", cell(&o, None));
                r.parse.insert(base, o);
            }
            let interleave = (plan.repeat > 1).then_some(parse_args.as_slice());
            let (mut o, parse) = median(&dir, cmd, &args, interleave, plan)?;
            if let Some(p) = parse {
                r.parse_of.insert(cmd, p);
            }
            if *cmd == "report" {
                // The page is written to a file, not to standard output.
                o.output_bytes = std::fs::metadata(dir.join("report.html")).map_or(0, |m| m.len());
            }
            eprintln!("bench: {pods} pods: {cmd}: {}", cell(&o, r.baseline(cmd)));
            r.commands.push((cmd, o));
        }
        if plan.keep.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        runs.push(r);
    }
    if plan.keep.is_none() {
        let _ = std::fs::remove_dir(&root);
    }
    print!("{}", render(&runs, plan));
    Ok(0)
}

impl SizeRun {
    /// The parse time `cmd` is compared with: its own interleaved parse
    /// runs (`--repeat`), else its input's baseline.
    fn baseline(&self, cmd: &str) -> Option<f64> {
        self.parse_of
            .get(cmd)
            .copied()
            .or_else(|| self.parse.get(invocation(cmd).1).map(|p| p.secs))
    }
}

/// `plan.repeat` runs of one measurement: the run of median time, with the
/// largest peak memory of all runs; a run that failed (over a limit, an
/// error) is the outcome, and ends the runs. With `parse_args`, each run
/// follows a run of that parse baseline (so a machine whose speed drifts
/// during the benchmark moves both alike), whose median time is returned
/// too.
fn median(
    dir: &Path,
    name: &str,
    args: &[String],
    parse_args: Option<&[String]>,
    plan: &Plan,
) -> Result<(Outcome, Option<f64>), String> {
    let mut runs: Vec<Outcome> = Vec::new();
    let mut parses = Vec::new();
    for _ in 0..plan.repeat.max(1) {
        if let Some(pa) = parse_args {
            let p = measure(dir, "parse", pa, plan.timeout, plan.mem_limit_mib)?;
            if p.ok() {
                parses.push(p);
            }
        }
        let o = measure(dir, name, args, plan.timeout, plan.mem_limit_mib)?;
        if !o.ok() {
            return Ok((o, None));
        }
        runs.push(o);
    }
    let parse = pick_median(parses).map(|p| p.secs);
    let o = pick_median(runs).ok_or_else(|| format!("{name}: no run"))?;
    Ok((o, parse))
}

/// The run of median time (the upper one of an even count), with the
/// largest peak memory of all.
fn pick_median(mut runs: Vec<Outcome>) -> Option<Outcome> {
    let peak = runs.iter().map(|o| o.max_rss_kib).max()?;
    runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let mid = runs.len() / 2;
    let mut m = runs.swap_remove(mid);
    m.max_rss_kib = peak;
    Some(m)
}

/// The command line of `cmd` and the inputs its parse baseline reads.
fn invocation(cmd: &str) -> (Vec<String>, &'static str) {
    let cnp = "--enable-k8s-cluster-network-policy";
    let (args, base): (Vec<&str>, &'static str) = match cmd {
        "trace" => (
            vec![
                cnp, "trace", "--from", "ingress", "--to", ENDPOINT, "--port", "5432", CLUSTER,
            ],
            CLUSTER,
        ),
        "policy" => (vec![cnp, "policy", ENDPOINT, CLUSTER], CLUSTER),
        "diff" => (
            vec![cnp, "diff", CLUSTER, CHANGED],
            "cluster.yaml+changed.yaml",
        ),
        "report" => (vec![cnp, "report", "-o", "report.html", CLUSTER], CLUSTER),
        "test" => (vec!["test", TEST], CLUSTER),
        "replay" => (
            vec![cnp, "replay", "--flows", FLOWS, CLUSTER],
            "cluster.yaml+flows.jsonl",
        ),
        other => (vec![cnp, other, CLUSTER], CLUSTER),
    };
    (args.into_iter().map(str::to_string).collect(), base)
}

/// Writes the inputs of every command into `dir`; returns their sizes.
fn prepare(
    dir: &Path,
    pods: usize,
    policies: usize,
    shape: Shape,
) -> Result<BTreeMap<&'static str, u64>, String> {
    let text = super::cluster(pods, policies, shape);
    let write = |name: &str, body: &str| {
        let f = dir.join(name);
        std::fs::write(&f, body).map_err(|e| format!("{}: {e}", f.display()))
    };
    write(CLUSTER, &text)?;
    // diff: the same cluster plus one policy.
    let extra = "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: bench-change, namespace: ns-1}\nspec:\n  endpointSelector: {matchLabels: {app: app-3}}\n  ingress:\n    - fromEntities: [world]\n";
    write(CHANGED, &format!("{text}{extra}"))?;
    let mut inv = Inventory::new(ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..ClusterConfig::default()
    });
    inv.load_text(CLUSTER, &text);
    inv.complete_namespaces();
    drop(text);
    let engine = Engine::new(&inv);
    let parties = parties(&engine, &inv)?;
    // replay: one flow record per pod, every record a new connection.
    write(FLOWS, &flow_lines(&parties, pods, None))?;
    // test: a few flows, expected as the engine decides them now.
    let mut test = String::from("apiVersion: verdict.dev/v1\nkind: PolicyTest\nmetadata: {name: bench}\nspec:\n  cluster: {enableK8sClusterNetworkPolicy: true}\n  files: [cluster.yaml]\n  flows:\n");
    let flows = [
        ("ingress", ENDPOINT, 5432u16),
        ("world", "ns-0/app-0-0", 80),
        ("ns-0/app-1-0", "ns-1/app-2-0", 5432),
        ("ns-2/app-4-0", "ns-0/app-0-0", 8080),
        ("host", ENDPOINT, 443),
        ("ns-1/app-5-0", "world", 443),
    ];
    for (from, to, port) in flows {
        let v = trace(
            &engine,
            &engine.party(from)?,
            &engine.party(to)?,
            Protocol::Tcp,
            port,
        );
        let _ = writeln!(
            test,
            "    - {{from: {from}, to: {to}, protocol: TCP, port: {port}, expect: {}}}",
            v.decision.to_string().to_lowercase()
        );
    }
    write(TEST, &test)?;
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    Ok(BTreeMap::from([
        (CLUSTER, size(CLUSTER)),
        ("cluster.yaml+changed.yaml", size(CLUSTER) + size(CHANGED)),
        ("cluster.yaml+flows.jsonl", size(CLUSTER) + size(FLOWS)),
    ]))
}

/// "1.23 s, 1.4x, 512 MiB", or what stopped it.
fn cell(o: &Outcome, parse: Option<f64>) -> String {
    if o.timeout {
        return format!("> {:.0} s (timeout)", o.secs);
    }
    if o.out_of_memory {
        return format!("> limit (out of memory at {:.1} s)", o.secs);
    }
    if !o.ok() {
        return format!(
            "failed (exit {:?}: {})",
            o.code,
            o.error.as_deref().unwrap_or("")
        );
    }
    let ratio = parse.map_or(String::new(), |p| format!(", {:.2}x", o.secs / p.max(1e-9)));
    format!(
        "{:.2} s{ratio}, {:.0} MiB",
        o.secs,
        o.max_rss_kib as f64 / 1024.0
    )
}

/// Log-log slope of `y` against `x` between two points; None when `x`
/// barely changes (the slope would be noise).
pub fn exponent(x0: f64, y0: f64, x1: f64, y1: f64) -> Option<f64> {
    if x0 <= 0.0 || x1 <= 0.0 || y0 <= 0.0 || y1 <= 0.0 || (x1 / x0 - 1.0).abs() < 0.05 {
        return None;
    }
    Some((y1 / y0).ln() / (x1 / x0).ln())
}

/// Whether an output grows with the input enough (1.5x) for a slope
/// against it to mean something: `trace`'s few hundred bytes moving by a
/// name's length gave slopes of -4.8 and 3.3.
fn grows(from: u64, to: u64) -> bool {
    to as f64 >= 1.5 * from as f64 && from > 0
}

/// Least-squares slope of log `y` against log `x` over every point: one
/// figure for three sizes or more, less moved by one noisy size than the
/// slope between two. None with fewer than three usable points or when
/// `x` barely changes.
pub fn fitted_exponent(points: &[(f64, f64)]) -> Option<f64> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|&&(x, y)| x > 0.0 && y > 0.0)
        .map(|&(x, y)| (x.ln(), y.ln()))
        .collect();
    if logs.len() < 3 {
        return None;
    }
    let n = logs.len() as f64;
    let (mx, my) = logs
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
    let sxx: f64 = logs.iter().map(|&(x, _)| (x - mx) * (x - mx)).sum();
    let sxy: f64 = logs.iter().map(|&(x, y)| (x - mx) * (y - my)).sum();
    (sxx > 0.05 * 0.05).then(|| sxy / sxx)
}

fn render(runs: &[SizeRun], plan: &Plan) -> String {
    let mut s = String::new();
    let shape = if plan.shape == Shape::Dense {
        " (dense)"
    } else {
        ""
    };
    if plan.repeat > 1 {
        let _ = write!(
            s,
            "\nEach figure: the median of {} runs (peak memory: the largest); each command's ratio is to the median of the parse runs interleaved with its own.\n",
            plan.repeat
        );
    }
    let _ = write!(s, "\n| command |");
    for r in runs {
        let _ = write!(s, " {} pods / {} policies{shape} |", r.pods, r.policies);
    }
    let _ = write!(s, "\n|---|{}\n", "---:|".repeat(runs.len()));
    let _ = write!(s, "| input MiB |");
    for r in runs {
        let _ = write!(
            s,
            " {:.1} |",
            r.input_bytes.get(CLUSTER).copied().unwrap_or(0) as f64 / 1_048_576.0
        );
    }
    s.push('\n');
    let _ = write!(s, "| parse (baseline) |");
    for r in runs {
        let _ = write!(
            s,
            " {} |",
            r.parse
                .get(CLUSTER)
                .map_or("-".to_string(), |o| cell(o, None))
        );
    }
    s.push('\n');
    for cmd in COMMANDS {
        if !runs
            .iter()
            .any(|r| r.commands.iter().any(|(c, _)| c == cmd))
        {
            continue;
        }
        let _ = write!(s, "| {cmd} |");
        for r in runs {
            let o = r.commands.iter().find(|(c, _)| c == cmd).map(|(_, o)| o);
            let text = o.map_or("-".to_string(), |o| cell(o, r.baseline(cmd)));
            let _ = write!(s, " {text} |");
        }
        s.push('\n');
    }
    if runs.len() > 1 {
        s.push_str("\nGrowth exponents (log-log slope of time between consecutive sizes; vs input bytes / vs output bytes; - when a side is over a limit or the output grows less than 1.5x):\n\n| command |");
        for w in runs.windows(2) {
            let _ = write!(s, " {} -> {} pods |", w[0].pods, w[1].pods);
        }
        let fit = runs.len() >= 3;
        if fit {
            let _ = write!(s, " all sizes (least-squares fit) |");
        }
        let cols = runs.len() - 1 + usize::from(fit);
        let _ = write!(s, "\n|---|{}\n", "---:|".repeat(cols));
        let fmt = |e: Option<f64>| e.map_or("-".to_string(), |e| format!("{e:.2}"));
        let _ = write!(s, "| parse |");
        for w in runs.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            let e = match (a.parse.get(CLUSTER), b.parse.get(CLUSTER)) {
                (Some(p), Some(q)) => exponent(
                    a.input_bytes.get(CLUSTER).copied().unwrap_or(0) as f64,
                    p.secs,
                    b.input_bytes.get(CLUSTER).copied().unwrap_or(0) as f64,
                    q.secs,
                ),
                _ => None,
            };
            let _ = write!(s, " {} |", fmt(e));
        }
        if fit {
            let points: Vec<(f64, f64)> = runs
                .iter()
                .filter_map(|r| {
                    let p = r.parse.get(CLUSTER)?;
                    Some((r.input_bytes.get(CLUSTER).copied()? as f64, p.secs))
                })
                .collect();
            let _ = write!(s, " {} |", fmt(fitted_exponent(&points)));
        }
        s.push('\n');
        for cmd in COMMANDS {
            if !runs
                .iter()
                .any(|r| r.commands.iter().any(|(c, _)| c == cmd))
            {
                continue;
            }
            let base = invocation(cmd).1;
            let _ = write!(s, "| {cmd} |");
            for w in runs.windows(2) {
                let get = |r: &SizeRun| {
                    r.commands
                        .iter()
                        .find(|(c, _)| c == cmd)
                        .map(|(_, o)| o.clone())
                        .filter(Outcome::ok)
                };
                let text = match (get(&w[0]), get(&w[1])) {
                    (Some(p), Some(q)) => {
                        let input = |r: &SizeRun| r.input_bytes.get(base).copied().unwrap_or(0);
                        let vs_in =
                            exponent(input(&w[0]) as f64, p.secs, input(&w[1]) as f64, q.secs);
                        let vs_out = grows(p.output_bytes, q.output_bytes)
                            .then(|| {
                                exponent(
                                    p.output_bytes as f64,
                                    p.secs,
                                    q.output_bytes as f64,
                                    q.secs,
                                )
                            })
                            .flatten();
                        format!("{} / {}", fmt(vs_in), fmt(vs_out))
                    }
                    _ => "-".to_string(),
                };
                let _ = write!(s, " {text} |");
            }
            if fit {
                let ok: Vec<(u64, Outcome)> = runs
                    .iter()
                    .filter_map(|r| {
                        let o = r.commands.iter().find(|(c, _)| c == cmd)?.1.clone();
                        o.ok()
                            .then(|| (r.input_bytes.get(base).copied().unwrap_or(0), o))
                    })
                    .collect();
                let vs_in: Vec<(f64, f64)> = ok.iter().map(|(i, o)| (*i as f64, o.secs)).collect();
                let outputs = ok.first().zip(ok.last());
                let vs_out: Vec<(f64, f64)> = ok
                    .iter()
                    .filter(|_| {
                        outputs.is_some_and(|(a, b)| grows(a.1.output_bytes, b.1.output_bytes))
                    })
                    .map(|(_, o)| (o.output_bytes as f64, o.secs))
                    .collect();
                let _ = write!(
                    s,
                    " {} / {} |",
                    fmt(fitted_exponent(&vs_in)),
                    fmt(fitted_exponent(&vs_out))
                );
            }
            s.push('\n');
        }
        s.push_str("\nOutput sizes (bytes written: standard output; the HTML page for report):\n\n| command |");
        for r in runs {
            let _ = write!(s, " {} pods |", r.pods);
        }
        let _ = write!(s, "\n|---|{}\n", "---:|".repeat(runs.len()));
        for cmd in COMMANDS {
            if !runs
                .iter()
                .any(|r| r.commands.iter().any(|(c, _)| c == cmd))
            {
                continue;
            }
            let _ = write!(s, "| {cmd} |");
            for r in runs {
                let o = r.commands.iter().find(|(c, _)| c == cmd).map(|(_, o)| o);
                let _ = write!(
                    s,
                    " {} |",
                    o.filter(|o| o.ok())
                        .map_or("-".to_string(), |o| o.output_bytes.to_string())
                );
            }
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(secs: f64, max_rss_kib: u64) -> Outcome {
        Outcome {
            secs,
            max_rss_kib,
            code: Some(0),
            timeout: false,
            out_of_memory: false,
            output_bytes: 10,
            error: None,
        }
    }

    /// The fit recovers a power law exactly, and one noisy size moves it
    /// less than it moves the slope between two sizes.
    #[test]
    fn fitted_exponent_is_the_least_squares_slope() {
        let law = |x: f64| 3.0 * x.powf(1.25);
        let exact: Vec<(f64, f64)> = [1e4, 3e4, 1e5].iter().map(|&x| (x, law(x))).collect();
        let e = fitted_exponent(&exact).unwrap();
        assert!((e - 1.25).abs() < 1e-9, "{e}");
        // The largest size 20% slow: the last window reads 1.40, the fit less.
        let mut noisy = exact.clone();
        noisy[2].1 *= 1.2;
        let window = exponent(noisy[1].0, noisy[1].1, noisy[2].0, noisy[2].1).unwrap();
        let fit = fitted_exponent(&noisy).unwrap();
        assert!(fit > 1.25 && fit < window, "fit {fit}, window {window}");
        assert!(fitted_exponent(&exact[..2]).is_none());
        assert!(fitted_exponent(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]).is_none());
        // Slopes against output only where the output grows with the input.
        assert!(!grows(835, 1100));
        assert!(grows(72_690, 222_802));
        assert!(!grows(0, 10));
    }

    /// A slow outlier (a loaded machine) does not move the figure; the
    /// peak memory is the largest of any run.
    #[test]
    fn the_median_run_is_shown_with_the_largest_peak() {
        let m = pick_median(vec![run(9.0, 100), run(2.0, 300), run(2.5, 200)]).unwrap();
        assert_eq!((m.secs, m.max_rss_kib), (2.5, 300));
        let one = pick_median(vec![run(3.0, 7)]).unwrap();
        assert_eq!((one.secs, one.max_rss_kib), (3.0, 7));
        assert!(pick_median(Vec::new()).is_none());
    }
}
