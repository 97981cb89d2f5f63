#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Where users run verdict: the version, the kubectl plugin, shell
//! completions and the manual page, colour, YAML output, JUnit XML and
//! GitHub annotations, JSON Schemas.

mod common;
use common::{root, stdout, tmp};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_verdict"));
    c.current_dir(root()).args(args).env_remove("NO_COLOR");
    c.env_remove("CLICOLOR_FORCE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn verdict(args: &[&str]) -> Output {
    run(args, &[])
}

const SHOP: &str = "examples/shop-gateway/";
const BROKEN: &str = "examples/broken/gateway-wrong-port/";
const BROKEN_SET: [&str; 4] = [
    "examples/shop-gateway/namespaces.yaml",
    "examples/shop-gateway/workloads.yaml",
    "examples/shop-gateway/gateway.yaml",
    BROKEN,
];

/// The subcommands shown in `--help` (bench is hidden).
const SUBCOMMANDS: &[&str] = &[
    "trace",
    "paths",
    "matrix",
    "diff",
    "report",
    "generate",
    "lint",
    "policy",
    "test",
    "check",
    "completions",
    "man",
    "schema",
];

#[test]
fn version_has_the_git_revision() {
    let o = verdict(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    let re =
        regex::Regex::new(r"^verdict \d+\.\d+\.\d+ \(git ([0-9a-f]{4,}|unknown)\)\n$").unwrap();
    assert!(re.is_match(&stdout(&o)), "{:?}", stdout(&o));
    // In this checkout the revision is known.
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output();
    if let Some(h) = head.ok().filter(|h| h.status.success()) {
        let rev = String::from_utf8_lossy(&h.stdout).trim().to_string();
        // The binary may have been built one commit earlier than HEAD;
        // it names a revision of this repository.
        let shown = stdout(&o);
        let shown = shown.split("(git ").nth(1).unwrap().trim_end_matches(")\n");
        let known = Command::new("git")
            .args(["cat-file", "-e", &format!("{shown}^{{commit}}")])
            .current_dir(root())
            .status()
            .unwrap();
        assert!(known.success(), "{shown} is not a commit (HEAD {rev})");
    }
}

/// Runs `exe ARGS`; a just-copied executable can be "busy" for a moment
/// (another test thread forking while the copy's descriptor was open).
fn exec(exe: &Path, args: &[&str]) -> Output {
    for _ in 0..50 {
        match Command::new(exe).args(args).current_dir(root()).output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => return r.unwrap(),
        }
    }
    panic!("{}: executable file busy", exe.display())
}

#[test]
fn runs_as_a_kubectl_plugin() {
    let dir = tmp("kubectl");
    let plugin = dir.join("kubectl-verdict");
    std::fs::copy(env!("CARGO_BIN_EXE_verdict"), &plugin).unwrap();
    let o = exec(&plugin, &["--version"]);
    assert!(stdout(&o).starts_with("kubectl-verdict "), "{}", stdout(&o));
    let o = exec(&plugin, &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("Usage: kubectl verdict [OPTIONS] <COMMAND>"),
        "{}",
        stdout(&o)
    );
    let o = exec(&plugin, &["paths", "--help"]);
    assert!(
        stdout(&o).contains("Usage: kubectl verdict paths"),
        "{}",
        stdout(&o)
    );
    // A symbolic link works the same (krew installs one).
    #[cfg(unix)]
    {
        let link = dir.join("link").join("kubectl-verdict");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_verdict"), &link).unwrap();
        let o = exec(&link, &["paths", SHOP]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
        assert!(stdout(&o).contains("paths: "), "{}", stdout(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let o = verdict(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let text = stdout(&o);
        assert!(text.len() > 1000, "{shell}: {text}");
        for sub in SUBCOMMANDS {
            assert!(text.contains(sub), "{shell} completion lacks `{sub}`");
        }
        assert!(
            !text.contains("bench"),
            "{shell} completion offers the hidden bench"
        );
        // Global options are offered too.
        assert!(text.contains("cilium-version"), "{shell}");
    }
    // bash reads the script without a syntax error.
    let o = verdict(&["completions", "bash"]);
    let dir = tmp("completions");
    let f = dir.join("verdict.bash");
    std::fs::write(&f, &o.stdout).unwrap();
    let check = Command::new("bash").arg("-n").arg(&f).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn manual_page_names_every_subcommand() {
    let o = verdict(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.starts_with(".ie") || text.contains(".TH verdict"),
        "{text}"
    );
    for sub in SUBCOMMANDS {
        assert!(text.contains(sub), "manual lacks `{sub}`");
    }
    let dir = tmp("man");
    let o = verdict(&["man", "--out-dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    for sub in SUBCOMMANDS {
        let page = dir.join(format!("verdict-{sub}.1"));
        let t = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{page:?}: {e}"));
        assert!(t.contains(".TH"), "{page:?}");
    }
    assert!(dir.join("verdict.1").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_is_hidden_and_subcommands_have_examples() {
    let help = stdout(&verdict(&["--help"]));
    assert!(!help.contains("bench"), "{help}");
    for sub in SUBCOMMANDS {
        assert!(
            help.contains(&format!("  {sub} ")),
            "--help lacks {sub}: {help}"
        );
        let h = stdout(&verdict(&[sub, "--help"]));
        assert!(h.contains("Examples:\n  verdict "), "{sub} --help: {h}");
    }
    // Still runnable by developers.
    let o = verdict(&["bench", "--help"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn counts_are_pluralised() {
    let o = verdict(&["paths", "--route", "shop", SHOP]);
    let out = stdout(&o);
    assert!(out.contains("2 paths: 2 allowed"), "{out}");
    let o = verdict(&["paths", "--backend", "frontend", "examples/shop-gateway/"]);
    assert!(stdout(&o).contains("1 path: 1 allowed"), "{}", stdout(&o));
    let o = verdict(&["check", SHOP]);
    assert!(stdout(&o).contains("; 0 errors"), "{}", stdout(&o));
}

fn has_ansi(b: &[u8]) -> bool {
    b.windows(2).any(|w| w == b"\x1b[")
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let args = ["paths", "--color", "always"];
    let o = verdict(&[&args[..], &BROKEN_SET[..]].concat());
    assert!(has_ansi(&o.stdout), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(out.contains("\x1b[31mDENIED\x1b[0m"), "{out:?}");
    assert!(out.contains("\x1b[32mallowed\x1b[0m"), "{out:?}");
    assert!(out.contains("\x1b[2m[examples/"), "{out:?}");
    // A pipe (this test's captured output): no colour by default.
    let o = verdict(&[&["paths"][..], &BROKEN_SET[..]].concat());
    assert!(!has_ansi(&o.stdout));
    // --color never, and NO_COLOR with auto.
    let o = verdict(&[&["paths", "--color", "never"][..], &BROKEN_SET[..]].concat());
    assert!(!has_ansi(&o.stdout));
    let o = run(
        &[&["paths", "--color", "auto"][..], &BROKEN_SET[..]].concat(),
        &[("NO_COLOR", "1")],
    );
    assert!(!has_ansi(&o.stdout));
    // Machine formats are never coloured.
    for f in ["json", "yaml", "github"] {
        let o = verdict(
            &[
                &["paths", "--color", "always", "-o", f][..],
                &BROKEN_SET[..],
            ]
            .concat(),
        );
        assert!(!has_ansi(&o.stdout), "{f}");
    }
}

/// Runs `verdict ARGS` under a pseudo-terminal (util-linux `script`,
/// installed by `.ci/run`; its absence fails the test rather than skipping).
fn under_pty(args: &str, env: &[(&str, &str)]) -> Vec<u8> {
    let exe = env!("CARGO_BIN_EXE_verdict");
    let mut c = Command::new("script");
    c.args(["-qec", &format!("{exe} {args}"), "/dev/null"])
        .current_dir(root())
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color");
    for (k, v) in env {
        c.env(k, v);
    }
    match c.output() {
        Ok(o) => o.stdout,
        Err(e) => panic!(
            "`script` (util-linux, package bsdutils) is needed for the pseudo-terminal check: {e}"
        ),
    }
}

#[test]
fn colour_on_a_terminal_by_default() {
    let args = format!("paths {}", BROKEN_SET.join(" "));
    let out = under_pty(&args, &[]);
    assert!(has_ansi(&out), "{}", String::from_utf8_lossy(&out));
    let out = under_pty(&args, &[("NO_COLOR", "1")]);
    assert!(!has_ansi(&out), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn yaml_output_is_the_json_data() {
    let cases: Vec<Vec<&str>> = vec![
        vec!["paths", SHOP],
        vec![
            "trace", "--from", "world", "--to", "ingress", "--port", "80", SHOP,
        ],
        vec!["policy", "shop/deployment/api", SHOP],
        vec!["matrix", SHOP],
        vec!["check", SHOP],
        vec!["lint", BROKEN],
        vec!["diff", SHOP, SHOP],
    ];
    for args in cases {
        let j = verdict(&[&args[..], &["-o", "json"]].concat());
        let y = verdict(&[&args[..], &["-o", "yaml"]].concat());
        assert_eq!(j.status.code(), y.status.code(), "{args:?}");
        let jv: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
        let docs = verdict_core::yaml::parse_documents(&stdout(&y));
        assert_eq!(docs.len(), 1, "{args:?}");
        let yv = match &docs[0] {
            verdict_core::yaml::Document::Ok(n) => n.to_json(),
            verdict_core::yaml::Document::Err { message, .. } => panic!("{args:?}: {message}"),
        };
        assert_eq!(yv, jv, "{args:?}\n{}", stdout(&y));
    }
}

/// Checks the JUnit structure: testsuites > testsuite > testcase >
/// failure, with the attributes JUnit's schema requires, and counts that
/// add up. Returns (test cases, failures).
fn check_junit(xml: &str) -> (usize, usize) {
    use quick_xml::events::Event;
    use quick_xml::Reader;
    let mut r = Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let (mut cases, mut failures) = (0, 0);
    let mut suite_counts: Vec<(usize, usize, usize, usize)> = Vec::new();
    let attrs = |e: &quick_xml::events::BytesStart| -> std::collections::BTreeMap<String, String> {
        e.attributes()
            .map(|a| {
                let a = a.unwrap();
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    };
    loop {
        let ev = r
            .read_event()
            .unwrap_or_else(|e| panic!("not XML: {e}\n{xml}"));
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            let a = attrs(&e);
            let parent = stack.last().map(String::as_str);
            let need = |keys: &[&str]| {
                for k in keys {
                    assert!(a.contains_key(*k), "<{name}> lacks {k}: {xml}");
                }
            };
            let num = |k: &str| a[k].parse::<usize>().unwrap();
            match name.as_str() {
                "testsuites" => assert_eq!(parent, None),
                "testsuite" => {
                    assert_eq!(parent, Some("testsuites"));
                    need(&["name", "tests", "failures", "errors"]);
                    suite_counts.push((num("tests"), num("failures"), 0, 0));
                }
                "testcase" => {
                    assert_eq!(parent, Some("testsuite"));
                    need(&["name", "classname"]);
                    cases += 1;
                    suite_counts.last_mut().unwrap().2 += 1;
                }
                "failure" => {
                    assert_eq!(parent, Some("testcase"));
                    need(&["message", "type"]);
                    failures += 1;
                    suite_counts.last_mut().unwrap().3 += 1;
                }
                other => panic!("unexpected <{other}>"),
            }
            if !empty {
                stack.push(name);
            }
        }
        match ev {
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    for (tests, failed, seen, seen_failed) in suite_counts {
        assert_eq!((tests, failed), (seen, seen_failed), "{xml}");
    }
    (cases, failures)
}

#[test]
fn lint_junit() {
    let o = verdict(&[&["lint", "-o", "junit"][..], &BROKEN_SET[..]].concat());
    let xml = stdout(&o);
    let text = stdout(&verdict(&[&["lint"][..], &BROKEN_SET[..]].concat()));
    let (cases, failures) = check_junit(&xml);
    assert!(failures > 0, "{xml}");
    assert_eq!(cases, failures);
    assert!(text.contains(&format!("{failures} finding")), "{text}");
    // No finding: one passing case.
    let o = verdict(&["lint", "-o", "junit", SHOP]);
    assert_eq!(check_junit(&stdout(&o)), (1, 0), "{}", stdout(&o));
}

/// A PolicyTest with a wrong expectation, and hostile text in its name.
fn failing_test_file(dir: &Path) -> PathBuf {
    let f = dir.join("shop.test.yaml");
    let base = root().join("examples/shop-gateway");
    let text = format!(
        "apiVersion: verdict.dev/v1\nkind: PolicyTest\nmetadata:\n  name: \"a<b>&c:d,e%\"\nspec:\n  files: [{b}/namespaces.yaml, {b}/workloads.yaml, {b}/policies.yaml, {b}/gateway.yaml]\n  flows:\n    - {{from: world, to: ingress, protocol: TCP, port: 80, expect: allowed}}\n    - {{from: world, to: shop/deployment/api, protocol: TCP, port: 8080, expect: allowed}}\n",
        b = base.display()
    );
    std::fs::write(&f, text).unwrap();
    f
}

#[test]
fn test_junit_file() {
    let dir = tmp("junit");
    let f = failing_test_file(&dir);
    let junit = dir.join("out.xml");
    let o = verdict(&[
        "test",
        "--junit",
        junit.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).ends_with("1 passed, 1 failed\n"),
        "{}",
        stdout(&o)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(check_junit(&xml), (2, 1), "{xml}");
    assert!(xml.contains("a&lt;b&gt;&amp;c"), "{xml}");
    assert!(xml.contains("line=\"9\""), "{xml}");
    // The example's own tests: all pass.
    let o = verdict(&["test", "--junit", junit.to_str().unwrap(), "examples/"]);
    assert_eq!(o.status.code(), Some(0));
    let (cases, failures) = check_junit(&std::fs::read_to_string(&junit).unwrap());
    assert!(cases > 3 && failures == 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `::level file=F,line=L,title=T::MESSAGE` as GitHub documents it, with
/// property values and message escaped (no raw `%`, CR, LF; no raw `:` or
/// `,` in property values).
fn annotation_re() -> regex::Regex {
    let prop = r"[^%:,\r\n]|%25|%0D|%0A|%3A|%2C";
    let data = r"[^%\r\n]|%25|%0D|%0A";
    regex::Regex::new(&format!(
        r"^::(error|warning|notice) file=(?:{prop})+,line=[1-9][0-9]*,title=(?:{prop})+::(?:{data})+$"
    ))
    .unwrap()
}

fn check_annotations(out: &str) -> usize {
    let re = annotation_re();
    let mut n = 0;
    for line in out.lines() {
        if line.starts_with("::") {
            assert!(re.is_match(line), "not a valid annotation: {line:?}");
            n += 1;
        }
    }
    n
}

#[test]
fn github_annotations() {
    let o = verdict(&[&["lint", "-o", "github"][..], &BROKEN_SET[..]].concat());
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(check_annotations(&out) > 0, "{out}");
    assert_eq!(out.lines().count(), check_annotations(&out));
    assert!(out.contains("%0AHow to fix: "), "{out}");

    let o = verdict(&[&["paths", "-o", "github"][..], &BROKEN_SET[..]].concat());
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(check_annotations(&out) > 0, "{out}");
    assert!(out.starts_with("::error file=examples/"), "{out}");
    assert!(out.contains("title=verdict%3A path denied::"), "{out}");

    let dir = tmp("github");
    let f = failing_test_file(&dir);
    let o = verdict(&["test", "-o", "github", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert_eq!(check_annotations(&out), 1, "{out}");
    assert!(
        out.contains(
            ",line=9,title=PolicyTest a<b>&c%3Ad%2Ce%25%3A world -> shop/deployment/api TCP/8080::"
        ),
        "{out}"
    );
    assert!(out.ends_with("1 passed, 1 failed\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn annotation_regex_rejects_bad_escaping() {
    let re = annotation_re();
    assert!(re.is_match("::error file=a.yaml,line=3,title=T::m: x, y %25"));
    for bad in [
        "::error file=a:b,line=3,title=T::m",
        "::error file=a,line=3,title=T,x::m",
        "::error file=a,line=3,title=T::50%",
        "::error file=a,line=0,title=T::m",
        "::fail file=a,line=1,title=T::m",
    ] {
        assert!(!re.is_match(bad), "{bad}");
    }
}

/// build.rs outside a git checkout (a source archive, a crates.io
/// download): the revision is `unknown` and the script succeeds.
#[test]
fn build_script_without_git_says_unknown() {
    let dir = tmp("buildrs");
    let exe = dir.join("build-script");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let o = Command::new(rustc)
        .args(["--edition", "2021", "-o"])
        .arg(&exe)
        .arg(root().join("crates/verdict-cli/build.rs"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A directory that is in no repository (GIT_CEILING_DIRECTORIES stops
    // git from looking above it).
    let outside = dir.join("src");
    std::fs::create_dir_all(&outside).unwrap();
    let o = exec_in(
        &exe,
        &outside,
        &[("GIT_CEILING_DIRECTORIES", dir.to_str().unwrap())],
    );
    assert!(o.status.success());
    assert!(
        stdout(&o).contains("cargo:rustc-env=VERDICT_GIT_REVISION=unknown\n"),
        "{}",
        stdout(&o)
    );
    // Without git at all.
    let o = exec_in(&exe, &outside, &[("PATH", "/nonexistent")]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("VERDICT_GIT_REVISION=unknown\n"));
    // In a git checkout (CI's clone): a hexadecimal revision.
    let in_git = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root())
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        let o = exec_in(&exe, &root(), &[]);
        let re = regex::Regex::new(r"VERDICT_GIT_REVISION=[0-9a-f]{4,}\n").unwrap();
        assert!(re.is_match(&stdout(&o)), "{}", stdout(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn exec_in(exe: &Path, dir: &Path, env: &[(&str, &str)]) -> Output {
    for _ in 0..50 {
        let mut c = Command::new(exe);
        c.current_dir(dir);
        for (k, v) in env {
            c.env(k, v);
        }
        match c.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => return r.unwrap(),
        }
    }
    panic!("{}: executable file busy", exe.display())
}
