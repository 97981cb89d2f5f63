//! One measured command. The benchmark starts `verdict bench --measure OUT
//! -- ARGS`, an intermediate process that limits its own address space
//! (inherited by its child), runs `verdict ARGS` with standard output to OUT,
//! stops it at the timeout, and reads the peak RSS of its only child from
//! `getrusage(RUSAGE_CHILDREN)`: so each command's peak memory is its own,
//! without `unsafe` (no `pre_exec`, no `wait4`). It prints one JSON line.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one measured command did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// Wall-clock seconds from start to exit (or to the timeout).
    pub secs: f64,
    /// Peak resident set, KiB (Linux `ru_maxrss`).
    pub max_rss_kib: u64,
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// Stopped at the timeout.
    pub timeout: bool,
    /// Ran out of address space under the limit (an allocation failed).
    pub out_of_memory: bool,
    /// Bytes written to standard output.
    pub output_bytes: u64,
    /// The last line of its standard error, when it failed.
    pub error: Option<String>,
}

impl Outcome {
    /// Exit 0 or 1 (1: findings, such as denied paths or lint warnings).
    pub fn ok(&self) -> bool {
        !self.timeout && !self.out_of_memory && matches!(self.code, Some(0 | 1))
    }
}

/// The measuring process: runs `verdict CHILD...`, prints its [`Outcome`].
pub fn run_child(
    out: &Path,
    child: &[String],
    timeout: u64,
    mem_limit_mib: u64,
) -> Result<u8, String> {
    limit_memory(mem_limit_mib)?;
    let exe = std::env::current_exe().map_err(|e| format!("the verdict binary: {e}"))?;
    let stdout = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err_path = PathBuf::from(format!("{}.stderr", out.display()));
    let stderr =
        std::fs::File::create(&err_path).map_err(|e| format!("{}: {e}", err_path.display()))?;
    let start = Instant::now();
    let mut proc = Command::new(exe)
        .args(child)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting verdict {}: {e}", child.join(" ")))?;
    let limit = Duration::from_secs(timeout.max(1));
    let mut timed_out = false;
    let status = loop {
        match proc.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= limit => {
                timed_out = true;
                let _ = proc.kill();
                break proc.wait().map_err(|e| e.to_string())?;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let err_text = std::fs::read_to_string(&err_path).unwrap_or_default();
    let out_of_memory = err_text.contains("memory allocation of")
        || err_text.contains("Cannot allocate memory")
        || err_text.contains("failed to spawn thread");
    let o = Outcome {
        secs,
        max_rss_kib: children_max_rss_kib(),
        code: status.code(),
        timeout: timed_out,
        out_of_memory,
        output_bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
        error: (!status.success() && status.code() != Some(1))
            .then(|| err_text.lines().last().unwrap_or("").to_string()),
    };
    println!("{}", serde_json::to_string(&o).map_err(|e| e.to_string())?);
    Ok(0)
}

#[cfg(unix)]
fn limit_memory(mib: u64) -> Result<(), String> {
    use nix::sys::resource::{setrlimit, Resource};
    if mib == 0 {
        return Ok(());
    }
    let bytes = mib.saturating_mul(1024 * 1024);
    setrlimit(Resource::RLIMIT_AS, bytes, bytes).map_err(|e| format!("setrlimit: {e}"))
}

#[cfg(not(unix))]
fn limit_memory(_mib: u64) -> Result<(), String> {
    Ok(())
}

#[cfg(unix)]
fn children_max_rss_kib() -> u64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| u64::try_from(u.max_rss()).unwrap_or(0))
        .unwrap_or(0)
}

#[cfg(not(unix))]
fn children_max_rss_kib() -> u64 {
    0
}

/// The baseline: read each file and parse it as users' input is parsed
/// (YAML documents; `.jsonl` files as Hubble flow lines), nothing more, on
/// one thread: the yardstick is the parser's own cost, whatever the
/// commands do with the machine's other cores.
pub fn parse_only(files: &[PathBuf]) -> Result<u8, String> {
    use std::io::BufReader;
    use verdict_core::flows::{parse_line, Lines};
    for f in files {
        if f.extension().is_some_and(|e| e == "jsonl") {
            let file = std::fs::File::open(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let mut n = 0usize;
            for (_, l) in Lines::new(BufReader::new(file)) {
                if let Ok(Ok(r)) = l.map(|t| parse_line(&t)) {
                    std::hint::black_box(&r);
                    n += 1;
                }
            }
            std::hint::black_box(n);
        } else {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            std::hint::black_box(verdict_core::yaml::parse_sequential(&text));
        }
    }
    Ok(0)
}

/// Runs `verdict ARGS` through the measuring process, in `dir`.
pub fn measure(
    dir: &Path,
    name: &str,
    args: &[String],
    timeout: u64,
    mem_limit_mib: u64,
) -> Result<Outcome, String> {
    let exe = std::env::current_exe().map_err(|e| format!("the verdict binary: {e}"))?;
    let out = dir.join(format!("{name}.out"));
    let result = Command::new(exe)
        .current_dir(dir)
        .arg("bench")
        .arg("--timeout")
        .arg(timeout.to_string())
        .arg("--mem-limit-mib")
        .arg(mem_limit_mib.to_string())
        .arg("--measure")
        .arg(&out)
        .arg("--")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("starting the measuring process: {e}"))?;
    let line = String::from_utf8_lossy(&result.stdout);
    serde_json::from_str(line.trim()).map_err(|e| {
        format!(
            "measuring `verdict {}`: {e} (exit {:?})",
            args.join(" "),
            result.status.code()
        )
    })
}
