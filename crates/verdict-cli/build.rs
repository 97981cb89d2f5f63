//! Records the git revision the binary is built from, for `verdict --version`.
//! Outside a git checkout (a crate tarball, `cargo install` from a copy) or
//! without git, the revision is `unknown`: this script never fails the build.

use std::process::Command;

fn main() {
    let rev = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=VERDICT_GIT_REVISION={rev}");
    // Rebuild when HEAD moves (a commit, a checkout); these paths may not
    // exist outside a checkout, which cargo accepts.
    if let Some(dir) = git_dir() {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs");
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The repository's git directory (`.git`, or a worktree's), if any.
fn git_dir() -> Option<String> {
    let o = Command::new("git")
        .args(["rev-parse", "--git-dir", "--git-common-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(o.stdout).ok()?;
    let mut lines = text.lines();
    let dir = lines.next()?.trim().to_string();
    let common = lines.next().map(|s| s.trim().to_string());
    // HEAD lives in the worktree's git dir; refs in the common one.
    let abs = |d: &str| {
        std::fs::canonicalize(d)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| d.to_string())
    };
    match common {
        Some(c) if c != dir => {
            println!("cargo:rerun-if-changed={}/refs", abs(&c));
            println!("cargo:rerun-if-changed={}/packed-refs", abs(&c));
            Some(abs(&dir))
        }
        _ => Some(abs(&dir)),
    }
}
