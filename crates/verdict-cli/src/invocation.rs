//! How the binary was invoked: as `verdict`, or as the kubectl plugin
//! `kubectl-verdict` (kubectl runs `kubectl-verdict ARGS` for
//! `kubectl verdict ARGS`), and the version text with the git revision.

use clap::{CommandFactory, FromArgMatches};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `0.1.0 (git abc1234)`: the crate version and the revision built from
/// (`unknown` outside a git checkout; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("VERDICT_GIT_REVISION"),
    ")"
);

/// The facts of the report header: version, git revision, inputs as given,
/// and the time: now, or `SOURCE_DATE_EPOCH` when set (the
/// reproducible-builds convention), so that a page can be rebuilt
/// byte for byte.
pub fn report_meta(
    paths: &[PathBuf],
    flows: &[PathBuf],
) -> Result<verdict_core::report::ReportMeta, String> {
    let shown = |p: &[PathBuf]| p.iter().map(|p| p.display().to_string()).collect();
    Ok(verdict_core::report::ReportMeta {
        version: env!("CARGO_PKG_VERSION").to_string(),
        revision: env!("VERDICT_GIT_REVISION").to_string(),
        inputs: shown(paths),
        flows: shown(flows),
        generated: generation_time(std::env::var_os("SOURCE_DATE_EPOCH").as_deref())?,
    })
}

/// First second of the year 10000: RFC 3339 has four-digit years.
const YEAR_10000: u64 = 253_402_300_800;

/// RFC 3339 UTC time (`2023-11-14T22:13:20Z`) of `SOURCE_DATE_EPOCH` (whole
/// seconds since 1970-01-01 UTC, as `date +%s` prints them), or of now when
/// it is unset. A malformed value is an error, as the specification asks
/// (reproducible-builds.org/specs/source-date-epoch).
pub fn generation_time(epoch: Option<&OsStr>) -> Result<String, String> {
    let time = match epoch {
        None => SystemTime::now(),
        Some(v) => {
            let text = v.to_string_lossy();
            let bad = || {
                format!(
                    "SOURCE_DATE_EPOCH=`{}`: not a number of seconds since 1970-01-01 UTC (as `date +%s` prints it) before the year 10000",
                    verdict_core::text::escape(&text)
                )
            };
            let secs: u64 = match text.parse() {
                Ok(n) if n < YEAR_10000 && text.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad()),
            };
            UNIX_EPOCH
                .checked_add(Duration::from_secs(secs))
                .ok_or_else(bad)?
        }
    };
    // The clock itself can be before 1970 or after 9999: refused, not a panic.
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX);
    if secs >= YEAR_10000 {
        return Err("the system clock is outside 1970..9999; set SOURCE_DATE_EPOCH".into());
    }
    let mut out = String::new();
    std::fmt::Write::write_fmt(
        &mut out,
        format_args!("{}", humantime::format_rfc3339_seconds(time)),
    )
    .map_err(|_| "the generation time cannot be written".to_string())?;
    Ok(out)
}

/// The program name for help, usage and completions: `kubectl-verdict`
/// when the executable is named so (`kubectl-verdict`, `kubectl-verdict.exe`,
/// or a symbolic link with that name), else `verdict`.
pub fn names(argv0: Option<&OsString>) -> (&'static str, &'static str) {
    let stem = argv0
        .and_then(|a| Path::new(a).file_stem())
        .map(|s| s.to_string_lossy().to_ascii_lowercase());
    match stem.as_deref() {
        Some("kubectl-verdict") => ("kubectl-verdict", "kubectl verdict"),
        _ => ("verdict", "verdict"),
    }
}

/// The command definition under the name it was invoked as.
pub fn command_as(argv0: Option<&OsString>) -> clap::Command {
    let (name, bin_name) = names(argv0);
    crate::Cli::command().name(name).bin_name(bin_name)
}

/// The command definition under the name of this invocation.
pub fn command() -> clap::Command {
    command_as(std::env::args_os().next().as_ref())
}

/// Parses the command line (exits with clap's usage error, code 2, or
/// prints help / version and exits 0).
pub fn parse() -> crate::Cli {
    let args: Vec<OsString> = std::env::args_os().collect();
    let matches = command_as(args.first()).get_matches_from(args);
    match crate::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_name_from_argv0() {
        let n = |s: &str| names(Some(&OsString::from(s)));
        assert_eq!(n("verdict"), ("verdict", "verdict"));
        assert_eq!(n("/usr/local/bin/verdict"), ("verdict", "verdict"));
        assert_eq!(
            n("/x/kubectl-verdict"),
            ("kubectl-verdict", "kubectl verdict")
        );
        assert_eq!(
            n("C:/bin/kubectl-verdict.exe"),
            ("kubectl-verdict", "kubectl verdict")
        );
        assert_eq!(names(None), ("verdict", "verdict"));
    }

    #[test]
    fn source_date_epoch_fixes_the_report_time() {
        let t = |s: &str| generation_time(Some(OsStr::new(s)));
        assert_eq!(t("0").as_deref(), Ok("1970-01-01T00:00:00Z"));
        assert_eq!(t("1700000000").as_deref(), Ok("2023-11-14T22:13:20Z"));
        assert_eq!(t("253402300799").as_deref(), Ok("9999-12-31T23:59:59Z"));
        for bad in [
            "",
            " 1",
            "+1",
            "-1",
            "1.5",
            "1e9",
            "abc",
            "253402300800",
            "99999999999999999999999",
        ] {
            let e = t(bad).expect_err(bad);
            assert!(e.starts_with("SOURCE_DATE_EPOCH="), "{e}");
        }
        // Unset: now, in the same form.
        let now = generation_time(None).unwrap();
        assert!(
            now.len() == 20 && now.ends_with('Z') && now.as_bytes()[10] == b'T',
            "{now}"
        );
    }
}
