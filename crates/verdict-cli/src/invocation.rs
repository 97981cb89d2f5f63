//! How the binary was invoked: as `verdict`, or as the kubectl plugin
//! `kubectl-verdict` (kubectl runs `kubectl-verdict ARGS` for
//! `kubectl verdict ARGS`), and the version text with the git revision.

use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::Path;

/// `0.1.0 (git abc1234)`: the crate version and the revision built from
/// (`unknown` outside a git checkout; see build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("VERDICT_GIT_REVISION"),
    ")"
);

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
}
