#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! No false green: every class of bad input gives a located error and exit
//! code 2 from every command, after printing what could be analysed; exit
//! codes of every command for ok / finding / input error.

mod common;
use common::{root, stderr, stdout, tmp, verdict};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn verdict_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .current_dir(root())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const SHOP: &str = "examples/shop-gateway/";
const MANIFESTS: [&str; 4] = [
    "namespaces.yaml",
    "workloads.yaml",
    "gateway.yaml",
    "policies.yaml",
];

fn copy_shop(dir: &Path, files: &[&str]) {
    for f in files {
        std::fs::copy(root().join(SHOP).join(f), dir.join(f)).unwrap();
    }
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nspec: {containers: []}\n";

/// One class of bad input: the text, the line and words of the error.
struct Case {
    name: &'static str,
    text: String,
    line: u32,
    needle: &'static str,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "duplicate key",
            text: "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: x}\nspec: {containers: []}\nmetadata: {name: a, namespace: x, labels: {app: a}}\n".into(),
            line: 5,
            needle: "duplicate key `metadata` (first at line 3)",
        },
        Case {
            name: "namespace not a string",
            text: format!("{POD}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: [x]\nspec: {{selector: {{app: a}}, ports: [{{port: 80}}]}}\n"),
            line: 10,
            needle: "`metadata.namespace` must be a string, found list",
        },
        Case {
            name: "name not a string",
            text: format!("{POD}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: 12\n  namespace: x\n"),
            line: 9,
            needle: "`metadata.name` must be a string, found integer",
        },
        Case {
            name: "name not DNS-1123",
            text: format!("{POD}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: My_Pod\n  namespace: x\n"),
            line: 9,
            needle: "`metadata.name` `My_Pod` is not a DNS-1123 subdomain",
        },
        Case {
            name: "namespace not DNS-1123",
            text: format!("{POD}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: Shop\n"),
            line: 10,
            needle: "`metadata.namespace` `Shop` is not a DNS-1123 label",
        },
        Case {
            name: "label key syntax",
            text: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: x\n  labels:\n    app: a\n    bad key: v\n".into(),
            line: 8,
            needle: "invalid label key `bad key`",
        },
        Case {
            name: "label value syntax",
            text: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: x\n  labels:\n    app: a\n    tier: -web\n".into(),
            line: 8,
            needle: "invalid label value `-web`",
        },
        Case {
            name: "template label syntax",
            text: format!("{POD}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, namespace: x}}\nspec:\n  template:\n    metadata:\n      labels: {{\"example.com/\": v}}\n"),
            line: 12,
            needle: "invalid label key `example.com/`",
        },
        Case {
            name: "recursive alias",
            text: format!("{POD}---\napiVersion: v1\nkind: Pod\nmetadata: &m\n  name: b\n  namespace: x\n  self: *m\n"),
            line: 11,
            needle: "recursive alias",
        },
        Case {
            name: "merge of a scalar",
            text: format!("{POD}---\napiVersion: v1\nkind: Pod\nmetadata:\n  <<: x\n  name: b\n  namespace: x\n"),
            line: 9,
            needle: "the value of a merge key `<<` must be a mapping",
        },
        Case {
            name: "route matches not a list",
            text: format!("{POD}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: x}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules:\n  - matches: x\n    backendRefs: [{{name: a, port: 80}}]\n"),
            line: 12,
            needle: "`spec.rules[0].matches` must be a list, found string",
        },
        Case {
            name: "backend port not a number",
            text: format!("{POD}---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: x}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules:\n  - backendRefs:\n    - name: a\n      port: eighty\n"),
            line: 14,
            needle: "`spec.rules[0].backendRefs[0].port` must be an integer, found string",
        },
        Case {
            name: "ingress path without pathType",
            text: format!("{POD}---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: i, namespace: x}}\nspec:\n  rules:\n  - http:\n      paths:\n      - path: /\n        backend: {{service: {{name: a, port: {{number: 80}}}}}}\n"),
            line: 13,
            needle: "`spec.rules[0].http.paths[0].pathType`: Required value",
        },
        Case {
            name: "listener port out of range",
            text: format!("{POD}---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: x}}\nspec:\n  gatewayClassName: cilium\n  listeners:\n  - {{name: http, protocol: HTTP, port: 70000}}\n"),
            line: 12,
            needle: "`spec.listeners[0].port`: Invalid value: 70000: should be less than or equal to 65535",
        },
        Case {
            name: "broken policy",
            text: format!("{POD}---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: p, namespace: x}}\nspec:\n  endpointSelector: {{}}\n  ingress: {{fromEntities: [world]}}\n"),
            line: 11,
            needle: "`spec.ingress` must be a list, found mapping",
        },
    ]
}

#[test]
fn every_bad_input_class_is_located_and_exits_2_from_every_command() {
    let dir = tmp("classes");
    for c in cases() {
        let file = dir.join(format!("{}.yaml", c.name.replace(' ', "-")));
        std::fs::write(&file, &c.text).unwrap();
        let f = file.to_str().unwrap();
        let located = format!("{f}:{}: error: ", c.line);
        let test_file = dir.join(format!("{}.test.yaml", c.name.replace(' ', "-")));
        std::fs::write(
            &test_file,
            format!(
                "apiVersion: verdict.dev/v1\nkind: PolicyTest\nmetadata: {{name: t}}\nspec:\n  files: [{}]\n  flows:\n    - {{from: world, to: x/a, port: 80, expect: allowed}}\n",
                file.file_name().unwrap().to_str().unwrap()
            ),
        )
        .unwrap();
        let runs: Vec<Vec<&str>> = vec![
            vec!["check", f],
            vec!["trace", "--from", "world", "--to", "x/a", "--port", "80", f],
            vec!["policy", "x/a", f],
            vec!["matrix", f],
            vec!["paths", f],
            vec!["lint", f],
            vec!["generate", "--no-verify", f],
            vec!["test", test_file.to_str().unwrap()],
        ];
        for args in runs {
            let o = verdict(&args);
            let all = format!("{}{}", stdout(&o), stderr(&o));
            assert_eq!(o.status.code(), Some(2), "{}: {args:?}:\n{all}", c.name);
            assert!(
                all.lines()
                    .any(|l| l.starts_with(&located) && l.contains(c.needle)),
                "{}: {args:?}: no `{located}...{}` in:\n{all}",
                c.name,
                c.needle
            );
        }
        // What could be analysed is still printed: the trace answers.
        let o = verdict(&["trace", "--from", "world", "--to", "x/a", "--port", "80", f]);
        assert!(
            stdout(&o).contains("world -> x/pod/a TCP/80"),
            "{}: {}",
            c.name,
            stdout(&o)
        );
        // `test` still runs the flows and ends with its tally.
        let o = verdict(&["test", test_file.to_str().unwrap()]);
        let last = stdout(&o).lines().last().unwrap_or_default().to_string();
        assert!(last.starts_with("1 passed, "), "{}: {last}", c.name);
        // JSON outputs carry the diagnostics.
        let o = verdict(&[
            "trace", "--from", "world", "--to", "x/a", "--port", "80", "-o", "json", f,
        ]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let diags = v["diagnostics"].as_array().unwrap();
        assert!(
            diags.iter().any(|d| d["file"] == f
                && d["line"] == c.line
                && d["severity"] == "error"
                && d["message"].as_str().unwrap().contains(c.needle)),
            "{}: {diags:?}",
            c.name
        );
    }
}

#[test]
fn glued_documents_are_duplicate_keys() {
    // `cat examples/shop-gateway/*.yaml | verdict paths -`
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(SHOP))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut glued = String::new();
    for f in &files {
        glued.push_str(&std::fs::read_to_string(f).unwrap());
    }
    // Each file after the first starts without `---`: its keys repeat the
    // keys of the previous file's last document.
    let o = verdict_stdin(&["paths", "-"], &glued);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.lines().any(|l| l.starts_with("<stdin>:")
            && l.contains(": error: ")
            && l.contains("duplicate key `apiVersion` (first at line ")),
        "{err}"
    );
    let o = verdict_stdin(&["paths", "-o", "json", "-"], &glued);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["file"] == "<stdin>"
            && d["severity"] == "error"
            && d["message"]
                .as_str()
                .unwrap()
                .starts_with("duplicate key `apiVersion`")));
}

#[test]
fn typed_lists_from_the_api_server_are_read() {
    let text = "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: a, namespace: x, labels: {app: a}}\n  spec: {containers: [{name: c, ports: [{containerPort: 8080}]}]}\n---\napiVersion: v1\nkind: ServiceList\nitems:\n- metadata: {name: s, namespace: x}\n  spec: {selector: {app: a}, ports: [{port: 80, targetPort: 8080}]}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicyList\nitems:\n- metadata: {name: only-world, namespace: x}\n  spec:\n    endpointSelector: {matchLabels: {app: a}}\n    ingress: [{fromEntities: [world], toPorts: [{ports: [{port: \"8080\"}]}]}]\n";
    let o = verdict_stdin(&["check", "-o", "json", "-"], text);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["counts"]["workloads"], 1, "{v}");
    assert_eq!(v["counts"]["services"], 1, "{v}");
    assert_eq!(v["counts"]["policies"], 1, "{v}");
    // The policy is in force: 8080 from world allowed, 9090 denied.
    let o = verdict_stdin(
        &[
            "trace", "--from", "world", "--to", "x/a", "--port", "9090", "-",
        ],
        text,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("x/only-world"), "{}", stdout(&o));
}

#[test]
fn merge_keys_are_read_as_kubectl_reads_them() {
    // The selector comes from the anchor; the explicit `ingress` wins over
    // the merged one; of two merges, the first wins.
    let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nspec: {containers: []}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p, namespace: x}\nspec:\n  <<: [&first {endpointSelector: {matchLabels: {app: a}}}, {endpointSelector: {matchLabels: {app: nothing}}, ingress: [{fromEntities: [all]}]}]\n  ingress: [{fromEntities: [cluster]}]\n";
    let o = verdict_stdin(
        &[
            "trace", "--from", "world", "--to", "x/a", "--port", "80", "-",
        ],
        text,
    );
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("selected by x/p"), "{}", stdout(&o));
}

#[test]
fn duplicate_objects_name_both_places_and_do_not_depend_on_order() {
    let dir = tmp("dups");
    let pod = |app: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: a, namespace: x, labels: {{app: {app}}}}}\nspec: {{containers: []}}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: p, namespace: x}}\nspec:\n  endpointSelector: {{matchLabels: {{app: one}}}}\n  ingress: [{{fromEntities: [cluster]}}]\n")
    };
    std::fs::write(dir.join("1.yaml"), pod("one")).unwrap();
    std::fs::write(dir.join("2.yaml"), pod("two")).unwrap();
    let (one, two) = (dir.join("1.yaml"), dir.join("2.yaml"));
    let (one, two) = (one.to_str().unwrap(), two.to_str().unwrap());
    let trace = |files: [&str; 2]| {
        let mut args = vec!["trace", "--from", "world", "--to", "x/a", "--port", "80"];
        args.extend(files);
        verdict(&args)
    };
    let a = trace([one, two]);
    let b = trace([two, one]);
    assert_eq!(a.status.code(), Some(2));
    assert_eq!(stdout(&a), stdout(&b));
    assert_eq!(stderr(&a), stderr(&b));
    // The pod of 2.yaml (app=two) is kept: the policy does not select it.
    assert!(
        stdout(&a).contains("no policy selects x/a for ingress"),
        "{}",
        stdout(&a)
    );
    let err = stderr(&a);
    for kind in ["Pod x/a", "CiliumNetworkPolicy x/p"] {
        assert!(
            err.contains(&format!(
                "{one}:1: error: {kind}: {kind} is defined twice, here and at {two}:1"
            )) || err.contains(&format!(
                "{one}:6: error: {kind}: {kind} is defined twice, here and at {two}:6"
            )),
            "{kind}: {err}"
        );
    }
    assert!(err.contains(&format!(
        "the one at {two}:1 (last in sorted file:line order) is used"
    )));
    // A namespace given twice, likewise.
    let ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: t}}\n";
    let o = verdict_stdin(&["check", "-"], ns);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains(
            "<stdin>:1: error: Namespace x: Namespace x is defined twice, here and at <stdin>:5"
        ),
        "{}",
        stdout(&o)
    );
}

#[test]
fn directories_gitignore_exclude_symlink_cycles_and_unreadable_entries() {
    let dir = tmp("walk");
    std::fs::write(dir.join("a.yaml"), POD).unwrap();
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/ignored.yaml"), "a: [\n").unwrap();
    std::fs::write(dir.join("sub/skip-me.yaml"), "a: [\n").unwrap();
    std::fs::write(dir.join(".gitignore"), "ignored.yaml\n").unwrap();
    // A cycle and a second name for a.yaml: each file is read once.
    std::os::unix::fs::symlink("..", dir.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink("a.yaml", dir.join("b.yaml")).unwrap();
    let d = dir.to_str().unwrap();
    let o = verdict(&["check", "--exclude", "skip-*.yaml", d]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("symbolic link cycle"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("1 workload, 0 services"),
        "{}",
        stdout(&o)
    );
    // Without --exclude the broken file is read.
    let o = verdict(&["check", d]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("skip-me.yaml:1: error: YAML syntax error"),
        "{}",
        stdout(&o)
    );
    // An entry that cannot be read is a located error, not skipped.
    std::fs::remove_file(dir.join("sub/skip-me.yaml")).unwrap();
    std::os::unix::fs::symlink("nowhere", dir.join("sub/dangling")).unwrap();
    let o = verdict(&["check", d]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("{d}/sub/dangling:0: error: cannot read")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn filters_that_match_nothing_are_errors() {
    for args in [
        vec!["paths", "--route", "nope", SHOP],
        vec!["paths", "--namespace", "nope", SHOP],
        vec!["paths", "--backend", "nope", SHOP],
        vec!["matrix", "--namespace", "nope", SHOP],
        vec!["matrix", "--workload", "nope", SHOP],
        vec!["generate", "--namespace", "nope", SHOP],
        vec!["generate", "--route", "nope", SHOP],
    ] {
        let o = verdict(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stdout(&o));
        let flag = args[1];
        assert!(
            stderr(&o).contains(&format!("{flag} `nope` matches nothing")),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    // Filters that match still work.
    let o = verdict(&["paths", "--route", "shop/shop", "--namespace", "shop", SHOP]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A PolicyTest naming a missing file is an input error.
    let dir = tmp("missing");
    let t = dir.join("t.yaml");
    std::fs::write(&t, "apiVersion: verdict.dev/v1\nkind: PolicyTest\nmetadata: {name: t}\nspec:\n  files: [nope.yaml]\n  flows: []\n").unwrap();
    let o = verdict(&["test", t.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`spec.files` names a file that cannot be read"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o).lines().last(), Some("0 passed, 0 failed"));
}

#[test]
fn write_errors_are_errors_but_a_closed_pipe_is_not() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .current_dir(root())
        .args(["lint", "-o", "sarif", SHOP])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("writing standard output"),
        "{}",
        stderr(&o)
    );
    // `| head`: the reader goes away before everything is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .current_dir(root())
        .args(["lint", "--rules-doc"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The exit codes documented in README.md, command by command.
#[test]
fn exit_codes_of_every_command() {
    let bad = tmp("exit-bad");
    copy_shop(&bad, &MANIFESTS);
    std::fs::write(
        bad.join("zz-broken.yaml"),
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: broken, namespace: shop}\nspec:\n  endpointSelector: {}\n  ingress: {fromEntities: [world]}\n",
    )
    .unwrap();
    let open = tmp("exit-open");
    copy_shop(
        &open,
        &["namespaces.yaml", "workloads.yaml", "gateway.yaml"],
    );
    let bad = bad.to_str().unwrap().to_string();
    let open = open.to_str().unwrap().to_string();
    let report = std::env::temp_dir().join(format!("verdict-exit-{}.html", std::process::id()));
    let report = report.to_str().unwrap();
    let wrong_port = [
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
        "examples/broken/gateway-wrong-port/",
    ];
    let mut broken_paths = vec!["paths"];
    broken_paths.extend(wrong_port);
    let mut broken_lint = vec!["lint"];
    broken_lint.extend(wrong_port);
    // PolicyTests: passing, failing, and on an input with an error.
    let tests = tmp("exit-tests");
    let write_test = |name: &str, dir: &str, expect: &str| {
        let p = tests.join(name);
        std::fs::write(
            &p,
            format!("apiVersion: verdict.dev/v1\nkind: PolicyTest\nmetadata: {{name: t}}\nspec:\n  files: [{dir}]\n  flows:\n    - {{from: world, to: shop/deployment/api, port: 8080, expect: {expect}}}\n"),
        )
        .unwrap();
        p.to_str().unwrap().to_string()
    };
    let shop_abs = root().join(SHOP);
    let shop_abs = shop_abs.to_str().unwrap();
    let test_ok = write_test("ok.yaml", shop_abs, "denied");
    let test_fail = write_test("fail.yaml", shop_abs, "allowed");
    let test_bad = write_test("bad.yaml", &bad, "denied");
    let trace = |to: &str, port: &str, dir: &str| {
        vec![
            "trace".to_string(),
            "--from".into(),
            "world".into(),
            "--to".into(),
            to.into(),
            "--port".into(),
            port.into(),
            dir.into(),
        ]
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let table: Vec<(Vec<String>, i32)> = vec![
        (s(&["paths", SHOP]), 0),
        (s(&broken_paths), 1),
        (s(&["paths", &bad]), 2),
        (s(&["matrix", SHOP]), 0),
        (s(&["matrix", &bad]), 2),
        (trace("ingress", "80", SHOP), 0),
        (trace("shop/deployment/api", "8080", SHOP), 1),
        (trace("ingress", "80", &bad), 2),
        (s(&["policy", "shop/deployment/api", SHOP]), 0),
        (s(&["policy", "shop/deployment/api", &bad]), 2),
        (s(&["report", "-o", report, SHOP]), 0),
        (s(&["report", "-o", report, &bad]), 2),
        (s(&["generate", SHOP]), 0),
        (s(&["generate", &bad]), 2),
        (s(&["diff", SHOP, SHOP]), 0),
        (s(&["diff", "--fail-on", "any", SHOP, &open]), 1),
        (s(&["diff", SHOP, &bad]), 2),
        (s(&["test", &test_ok]), 0),
        (s(&["test", &test_fail]), 1),
        (s(&["test", &test_bad]), 2),
        (s(&["check", SHOP]), 0),
        (s(&["check", &bad]), 2),
        (s(&["lint", SHOP]), 0),
        (s(&broken_lint), 1),
        (s(&["lint", &bad]), 2),
    ];
    for (args, code) in table {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = verdict(&refs);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{args:?}:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        if code == 2 {
            assert!(
                stderr(&o).contains("zz-broken.yaml:") || stdout(&o).contains("zz-broken.yaml:"),
                "{args:?}: the error is not located:\n{}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn encodings_and_control_characters_are_read_or_refused_with_a_location() {
    let dir = tmp("encodings");
    let json_diags = |f: &str| -> Vec<serde_json::Value> {
        let o = verdict(&["check", "-o", "json", f]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{f}: not JSON ({e}): {}", stdout(&o)));
        v["diagnostics"].as_array().unwrap().clone()
    };
    // A UTF-8 byte order mark is read (YAML allows it, kubectl reads it).
    let bom = dir.join("bom.yaml");
    std::fs::write(&bom, format!("\u{feff}{POD}")).unwrap();
    let f = bom.to_str().unwrap();
    let o = verdict(&["check", f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = verdict(&["trace", "--from", "world", "--to", "x/a", "--port", "80", f]);
    assert!(
        stdout(&o).contains("world -> x/pod/a TCP/80"),
        "{}",
        stdout(&o)
    );
    // Bytes that are not UTF-8, and UTF-16: refused, naming the file (and
    // the line of the bad byte); the other files are still analysed.
    let latin1 = dir.join("latin1.yaml");
    let mut bytes = POD.as_bytes().to_vec();
    bytes.extend_from_slice(b"# caf\xe9\n");
    std::fs::write(&latin1, bytes).unwrap();
    let utf16 = dir.join("utf16.yaml");
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(POD.encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(&utf16, bytes).unwrap();
    for (file, needle) in [
        (&latin1, "not UTF-8 text (invalid byte at line 5)"),
        (&utf16, "UTF-16 text"),
    ] {
        let f = file.to_str().unwrap();
        let o = verdict(&[
            "trace",
            "--from",
            "world",
            "--to",
            "x/a",
            "--port",
            "80",
            f,
            bom.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{f}");
        assert!(
            stderr(&o)
                .lines()
                .any(|l| l.starts_with(f) && l.contains(needle)),
            "{f}: {}",
            stderr(&o)
        );
        assert!(
            stdout(&o).contains("world -> x/pod/a TCP/80"),
            "{f}: {}",
            stdout(&o)
        );
        let d = json_diags(f);
        assert!(
            d.iter().any(|x| x["file"] == f && x["severity"] == "error"),
            "{d:?}"
        );
    }
    // Control characters in a name: refused at their line, never printed raw.
    let ctl = dir.join("ctl.yaml");
    std::fs::write(
        &ctl,
        format!("{POD}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: \"s\\u0007\\u001b[31m\"\n  namespace: x\nspec: {{selector: {{app: a}}, ports: [{{port: 80}}]}}\n"),
    )
    .unwrap();
    let f = ctl.to_str().unwrap();
    let o = verdict(&["check", f]);
    assert_eq!(o.status.code(), Some(2));
    let err = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("{f}:9: error: "))
                && l.contains("is not a DNS-1123 subdomain")),
        "{err}"
    );
    assert!(!err.contains('\u{7}') && !err.contains('\u{1b}'), "{err:?}");
    let d = json_diags(f);
    assert!(
        d.iter().any(|x| x["line"] == 9 && x["severity"] == "error"),
        "{d:?}"
    );
}
