#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End-to-end tests of the `verdict` binary on the bundled examples and on
//! malformed input.

mod common;
use common::{root, stderr, stdout, verdict};

use std::process::{Command, Output};

const SHOP: &str = "examples/shop-gateway/";

#[test]
fn world_reaches_the_gateway_but_not_the_backend() {
    let o = verdict(&[
        "trace", "--from", "world", "--to", "ingress", "--port", "80", SHOP,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("allowed by world-to-gateway spec.ingress[0]"),
        "{}",
        stdout(&o)
    );

    let o = verdict(&[
        "trace",
        "--from",
        "world",
        "--to",
        "shop/deployment/frontend",
        "--port",
        "8080",
        SHOP,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("DENIED"), "{out}");
    assert!(
        out.contains(
            "default deny: shop/deployment/frontend is selected by shop/frontend-from-gateway"
        ),
        "{out}"
    );
    assert!(out.contains("policies.yaml:"), "{out}");
}

#[test]
fn backend_admits_the_ingress_identity_on_8080_only() {
    let o = verdict(&[
        "trace",
        "--from",
        "ingress",
        "--to",
        "shop/deployment/api",
        "--port",
        "8080",
        SHOP,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = verdict(&[
        "trace",
        "--from",
        "ingress",
        "--to",
        "shop/deployment/api",
        "--port",
        "9090",
        SHOP,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("no rule allows reserved:ingress on TCP/9090"),
        "{out}"
    );
}

#[test]
fn trace_json_has_both_sides_and_origins() {
    let o = verdict(&[
        "trace",
        "--from",
        "ingress",
        "--to",
        "shop/deployment/api",
        "--port",
        "8080",
        "-o",
        "json",
        SHOP,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["decision"], "allowed");
    assert_eq!(v["egress"]["decision"], "allowed");
    assert_eq!(v["ingress"]["reason"], "allowed-by-rule");
    let loc = v["ingress"]["deciding"][0]["location"].as_str().unwrap();
    assert!(
        loc.starts_with("examples/shop-gateway/policies.yaml:"),
        "{loc}"
    );
}

#[test]
fn policy_shows_the_resolved_map() {
    let o = verdict(&["policy", "shop/deployment/api", SHOP]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("ingress: enforced, default deny"), "{out}");
    assert!(out.contains("allowed TCP/8080"), "{out}");
    // Peers named as parties; their identity labels with -v only.
    assert!(out.contains("allowed TCP/8080        ingress  ["), "{out}");
    assert!(!out.contains("reserved:ingress (8)"), "{out}");
    assert!(out.contains("egress: not enforced"), "{out}");
    let o = verdict(&["-v", "policy", "shop/deployment/api", SHOP]);
    assert!(
        stdout(&o).contains("ingress [reserved:ingress (8)]"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bundled_policy_test_passes() {
    let o = verdict(&["test", "examples/shop-gateway/shop.test.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("7 passed, 0 failed"));
}

#[test]
fn failing_policy_test_exits_1_and_names_the_flow() {
    let dir = std::env::temp_dir().join(format!("verdict-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("t.yaml");
    let shop = root().join(SHOP);
    std::fs::write(
        &t,
        format!(
            "apiVersion: verdict.dev/v1\nkind: PolicyTest\nmetadata: {{name: wrong}}\nspec:\n  files: [{}]\n  flows:\n    - {{from: world, to: shop/deployment/api, port: 8080, expect: allowed}}\n",
            shop.display()
        ),
    )
    .unwrap();
    let o = verdict(&["test", t.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL")
            && out.contains("world -> shop/deployment/api TCP/8080: expected allowed, got denied"),
        "{out}"
    );
    assert!(out.contains("0 passed, 1 failed"), "{out}");
}

#[test]
fn malformed_input_is_reported_with_locations_and_the_rest_is_analysed() {
    let f = "crates/verdict-cli/tests/data/broken.yaml";
    let o = verdict(&["check", f]);
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    for needle in [
        "broken.yaml:15: error: YAML syntax error",
        "unknown field `spec.ingress[0].fromEndpoint`",
        "Invalid CiliumNetworkPolicy spec: allow CIDR prefix 10.0.0.0/8 does not contain exclude CIDR prefix 192.168.0.0/16",
        "`spec.endpointSelector.matchExpressions[0].operator` `Maybe` is not one of In, NotIn, Exists, DoesNotExist",
        "`spec.endpointSelector` must be a mapping, found string",
        "`spec.ingress` must be a list, found mapping",
        "Invalid CiliumNetworkPolicy spec: L7 rules can not be used when a port is 0",
        "Invalid CiliumNetworkPolicy spec: rule cannot have NodeSelector",
        "kind `Widget` is not analysed",
        "invalid CIDR `10.0.0.300/8`",
    ] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
    // The valid pod after the broken document is still loaded and traced.
    let o = verdict(&[
        "trace", "--from", "world", "--to", "shop/web", "--port", "8080", f,
    ]);
    assert!(
        stdout(&o).contains("world -> shop/pod/web TCP/8080"),
        "{}",
        stdout(&o)
    );
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn stdin_and_lists_are_read() {
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a, namespace: x, labels: {app: a}}\n  spec: {containers: []}\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args([
            "trace", "--from", "world", "--to", "x/a", "--port", "80", "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("no policy selects x/a for ingress: default allow"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn unknown_party_is_a_clear_error() {
    let o = verdict(&[
        "trace",
        "--from",
        "world",
        "--to",
        "shop/nope",
        "--port",
        "80",
        SHOP,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`shop/nope` names no pod or workload"));
}

#[test]
fn unevaluable_peers_are_named_once_per_rule() {
    let dir = std::env::temp_dir().join(format!("verdict-fqdn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("p.yaml");
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: x, labels: {app: a}}\nspec: {containers: []}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: dns, namespace: x}\nspec:\n  endpointSelector: {}\n  egress:\n    - toFQDNs: [{matchName: example.com}]\n    - toServices: [{k8sService: {serviceName: s, namespace: x}}]\n",
    )
    .unwrap();
    let o = verdict(&[
        "trace",
        "--from",
        "x/a",
        "--to",
        "1.2.3.4",
        "--port",
        "443",
        f.to_str().unwrap(),
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(
        out.matches("toFQDNs: DNS names are resolved at run time")
            .count(),
        1,
        "{out}"
    );
    assert_eq!(
        out.matches("toServices: service selectors").count(),
        1,
        "{out}"
    );
}

#[test]
fn test_on_a_directory_runs_only_policy_test_files() {
    let o = verdict(&["test", "examples/"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("7 passed, 0 failed"), "{}", stdout(&o));
    // A manifest named explicitly is not a test file: that is an input error.
    let o = verdict(&["test", "examples/shop-gateway/workloads.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a `kind: PolicyTest` document"));
}

fn broken(base: &str, files: &[&str], variant: &str) -> Output {
    let mut args: Vec<String> = vec!["paths".into(), "-o".into(), "json".into()];
    for f in files {
        args.push(format!("examples/{base}/{f}.yaml"));
    }
    args.push(format!("examples/broken/{variant}/"));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    verdict(&refs)
}

/// The first denied check of every denied path: (backend, hop, side, rule file).
fn denied_checks(o: &Output) -> Vec<(String, String, String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut out = Vec::new();
    for ep in v["entry_points"].as_array().unwrap() {
        for r in ep["routes"].as_array().unwrap() {
            for b in r["backends"].as_array().unwrap() {
                for p in b["paths"].as_array().unwrap() {
                    if p["decision"] != "denied" {
                        continue;
                    }
                    for h in p["hops"].as_array().unwrap() {
                        if h["decision"] != "denied" {
                            continue;
                        }
                        let c = h["checks"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|c| c["decision"] == "denied")
                            .unwrap();
                        out.push((
                            p["backend"].as_str().unwrap().to_string(),
                            h["name"].as_str().unwrap().to_string(),
                            c["side"].as_str().unwrap().to_string(),
                            c["explanation"].as_str().unwrap().to_string(),
                        ));
                        break;
                    }
                }
            }
        }
    }
    out
}

#[test]
fn bundled_examples_have_every_path_allowed() {
    let o = verdict(&["paths", SHOP]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 paths: 2 allowed, 0 denied"));
    let o = verdict(&["paths", "examples/shop-nginx/"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains(
        "via k8s.io/ingress-nginx: pods ingress-nginx/deployment/ingress-nginx-controller"
    ));
}

#[test]
fn broken_gateway_variants_name_the_failing_hop_and_rule() {
    let gw = ["namespaces", "workloads", "gateway"];
    let o = broken("shop-gateway", &gw, "gateway-wrong-port");
    assert_eq!(o.status.code(), Some(1));
    let d = denied_checks(&o);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].0.as_str(), d[0].1.as_str(), d[0].2.as_str()),
        (
            "shop/deployment/api",
            "ingress -> backend",
            "ingress of shop/deployment/api"
        )
    );
    assert!(
        d[0].3
            .contains("shop/api-from-gateway (examples/broken/gateway-wrong-port/policies.yaml:"),
        "{}",
        d[0].3
    );

    let d = denied_checks(&broken("shop-gateway", &gw, "gateway-forgets-ingress"));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].2, "ingress of shop/deployment/frontend");
    assert!(
        d[0].3
            .contains("no rule allows reserved:ingress on TCP/8080"),
        "{}",
        d[0].3
    );

    let d = denied_checks(&broken("shop-gateway", &gw, "gateway-no-egress"));
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(
        d.iter()
            .all(|x| x.1 == "ingress -> backend" && x.2 == "egress of reserved:ingress"),
        "{d:?}"
    );
    assert!(d[0]
        .3
        .contains("world-to-gateway (examples/broken/gateway-no-egress/policies.yaml:"));
}

#[test]
fn broken_nginx_variants_name_the_failing_hop_and_rule() {
    let files = ["namespaces", "workloads", "ingress-nginx"];
    let ctrl = "ingress-nginx/deployment/ingress-nginx-controller";
    for variant in ["nginx-wrong-port", "nginx-forgets-controller"] {
        let d = denied_checks(&broken("shop-nginx", &files, variant));
        assert_eq!(d.len(), 2, "{variant}: {d:?}");
        for x in &d {
            assert_eq!(x.1, format!("ingress ({ctrl}) -> backend"));
            assert_eq!(x.2, format!("ingress of {}", x.0));
            assert!(
                x.3.contains(&format!("no rule allows {ctrl} on TCP/8080")),
                "{}",
                x.3
            );
        }
    }
    let d = denied_checks(&broken("shop-nginx", &files, "nginx-no-egress"));
    assert!(
        d.iter().all(|x| x.2 == format!("egress of {ctrl}")),
        "{d:?}"
    );
}

#[test]
fn paths_json_contract_and_markdown() {
    let o = verdict(&["paths", "-o", "json", SHOP]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["paths"], 2);
    let ep = &v["entry_points"][0];
    for key in [
        "object",
        "location",
        "listener",
        "port",
        "protocol",
        "controller",
        "routes",
    ] {
        assert!(ep.get(key).is_some(), "entry point lacks `{key}`");
    }
    assert_eq!(ep["controller"]["kind"], "cilium");
    let path = &ep["routes"][0]["backends"][0]["paths"][0];
    for key in ["backend", "target_port", "decision", "hops"] {
        assert!(path.get(key).is_some(), "path lacks `{key}`");
    }
    let check = &path["hops"][0]["checks"][0];
    for key in [
        "side",
        "source",
        "destination",
        "protocol",
        "port",
        "decision",
        "enforced",
        "explanation",
        "rules",
    ] {
        assert!(check.get(key).is_some(), "check lacks `{key}`");
    }
    let o = verdict(&["paths", "-o", "markdown", SHOP]);
    let md = stdout(&o);
    // Text from the input is Markdown-escaped (`[` would start a link).
    assert!(md.contains("| HTTPRoute shop/shop | rules\\[0\\] PathPrefix /api | shop/api:80 | shop/deployment/api | :white_check_mark: allowed |"), "{md}");
}

#[test]
fn paths_filters_and_report_only() {
    let o = verdict(&["paths", "--backend", "frontend", SHOP]);
    assert!(stdout(&o).contains("1 path: 1 allowed"), "{}", stdout(&o));
    let o = verdict(&[
        "paths",
        "--report-only",
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
        "examples/broken/gateway-no-egress/",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("2 paths: 0 allowed, 2 denied"));
}

#[test]
fn lint_exit_codes_formats_and_explain() {
    // clean example: exit 0
    let o = verdict(&["lint", SHOP]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("0 findings"));
    // broken example: findings at or above warning: exit 1, with a source snippet
    let broken = [
        "lint",
        "examples/shop-gateway/namespaces.yaml",
        "examples/shop-gateway/workloads.yaml",
        "examples/shop-gateway/gateway.yaml",
        "examples/broken/gateway-wrong-port/",
    ];
    let o = verdict(&broken);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("error[VRD005] route-backend-not-reachable"),
        "{out}"
    );
    assert!(
        out.contains("warning[VRD006] service-port-not-target-port"),
        "{out}"
    );
    assert!(
        out.contains("   54 |     - fromEntities: [ingress]"),
        "{out}"
    );
    // only errors fail with --fail-on error; VRD005 is an error
    let mut args = broken.to_vec();
    args.extend(["--disable", "VRD005", "--fail-on", "error"]);
    assert_eq!(verdict(&args).status.code(), Some(0));
    // JSON and SARIF
    let mut args = broken.to_vec();
    args.extend(["-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&verdict(&args).stdout).unwrap();
    assert_eq!(v["findings"][0]["code"], "VRD005");
    let mut args = broken.to_vec();
    args.extend(["-o", "sarif"]);
    let v: serde_json::Value = serde_json::from_slice(&verdict(&args).stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    // input errors: exit 2
    let o = verdict(&["lint", "crates/verdict-cli/tests/data/broken.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    // documentation
    let o = verdict(&["lint", "--explain", "VRD006"]);
    assert!(stdout(&o).contains("## How to fix"));
    let o = verdict(&["lint", "--list"]);
    assert_eq!(stdout(&o).lines().count(), 13);
    let o = verdict(&["lint", "--explain", "VRD999"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn generate_writes_verified_policies() {
    let dir = std::env::temp_dir().join(format!("verdict-gen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = verdict(&[
        "generate",
        "--out-dir",
        dir.to_str().unwrap(),
        "examples/shop-nginx/namespaces.yaml",
        "examples/shop-nginx/workloads.yaml",
        "examples/shop-nginx/ingress-nginx.yaml",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 allowed / 0 denied after"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("0 added otherwise"), "{}", stderr(&o));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "cnp-ingress-nginx-verdict-ingress-nginx-controller.yaml",
            "cnp-shop-verdict-api-from-ingress.yaml",
            "cnp-shop-verdict-frontend-from-ingress.yaml"
        ]
    );
    // The written policies, with the input, pass paths and lint.
    let o = verdict(&[
        "paths",
        "examples/shop-nginx/namespaces.yaml",
        "examples/shop-nginx/workloads.yaml",
        "examples/shop-nginx/ingress-nginx.yaml",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = std::fs::read_to_string(dir.join("cnp-shop-verdict-api-from-ingress.yaml")).unwrap();
    assert!(
        text.starts_with("# Generated by verdict generate. Serves:\n#   Ingress shop/shop"),
        "{text}"
    );
}

#[test]
fn matrix_formats() {
    let o = verdict(&["matrix", SHOP]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("ingress  shop/deployment/api       TCP/8080"),
        "{out}"
    );
    assert!(out.contains("no egress policy"), "{out}");
    let o = verdict(&["matrix", "-o", "csv", SHOP]);
    assert!(stdout(&o).starts_with(
        "from,from_namespace,to,to_namespace,protocol,from_port,to_port,proxied,deny_decided\n"
    ));
    assert!(
        stdout(&o).contains("reserved:ingress,,shop/deployment/api,shop,TCP,8080,8080,false,false")
    );
    let o = verdict(&["matrix", "-o", "dot", SHOP]);
    assert!(stdout(&o).starts_with("digraph verdict {"));
    let o = verdict(&["matrix", "-o", "mermaid", SHOP]);
    let mermaid = stdout(&o);
    // Node ids are n0, n1, ... in the sorted order of the names.
    let id = |name: &str| {
        mermaid
            .lines()
            .find_map(|l| l.trim().strip_suffix(&format!("[\"{name}\"]")))
            .unwrap_or_else(|| panic!("no node {name}:\n{mermaid}"))
            .to_string()
    };
    let edge = format!(
        "{} -->|\"TCP/8080\"| {}",
        id("reserved:ingress"),
        id("shop/deployment/api")
    );
    assert!(mermaid.contains(&edge), "{edge}\n{mermaid}");
    // allow-localhost=always (the default): the node reaches the pod too.
    let o = verdict(&["matrix", "-o", "json", "--workload", "frontend", SHOP]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let from: Vec<&str> = v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["from"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(from, ["reserved:host", "reserved:ingress"]);
    let o = verdict(&[
        "matrix",
        "-o",
        "json",
        "--allow-localhost",
        "policy",
        "--workload",
        "frontend",
        SHOP,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cells"].as_array().unwrap().len(), 1);
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let o = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn diff_between_directories_and_git_revisions() {
    let dir = std::env::temp_dir().join(format!("verdict-diff-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("k8s")).unwrap();
    let shop = root().join(SHOP);
    for f in [
        "namespaces.yaml",
        "workloads.yaml",
        "gateway.yaml",
        "policies.yaml",
    ] {
        std::fs::copy(shop.join(f), dir.join("k8s").join(f)).unwrap();
    }
    git(&dir, &["init", "-q"]);
    git(
        &dir,
        &["-c", "user.email=t@t", "-c", "user.name=t", "add", "."],
    );
    git(
        &dir,
        &[
            "-c",
            "user.email=t@t",
            "-c",
            "user.name=t",
            "commit",
            "-qm",
            "good",
        ],
    );
    std::fs::copy(
        root().join("examples/broken/gateway-forgets-ingress/policies.yaml"),
        dir.join("k8s/policies.yaml"),
    )
    .unwrap();
    git(
        &dir,
        &[
            "-c",
            "user.email=t@t",
            "-c",
            "user.name=t",
            "commit",
            "-qam",
            "frontend admits world",
        ],
    );
    let o = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .current_dir(&dir)
        .args(["diff", "--git", "HEAD~1", "HEAD", "--path", "k8s"])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(
        out.contains("+ world -> shop/deployment/frontend TCP/8080  [WORLD EXPOSURE]"),
        "{out}"
    );
    assert!(
        out.contains("because: CiliumNetworkPolicy shop/frontend-from-gateway (modified)"),
        "{out}"
    );
    assert!(
        out.contains("- ingress -> shop/deployment/frontend TCP/8080"),
        "{out}"
    );
    // The reverse change only closes exposure: exit 0.
    let o = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .current_dir(&dir)
        .args([
            "diff", "--git", "HEAD", "HEAD~1", "--path", "k8s", "-o", "markdown",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // The repaired frontend path is newly reachable from outside: shown,
    // not failing by default.
    assert!(
        stdout(&o).contains(":warning: paths newly reachable from outside."),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("| :warning: exposure | Gateway shop/shop listener http :80 -> HTTPRoute shop/shop -> Service shop/frontend:80 -> shop/deployment/frontend | denied -> allowed |"), "{}", stdout(&o));
    // Directories, JSON, any-change gate.
    let o = verdict(&["diff", SHOP, SHOP, "-o", "json", "--fail-on", "any"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["added"].as_array().unwrap().is_empty());
}

const NGINX: &str = "examples/shop-nginx/";
const LOCKDOWN: &str = "crates/verdict-cli/tests/data/tiers/";

/// An Admin Deny in front of the controller pods is the failing hop, named
/// with its tier; without the agent flag it is reported as not enforced.
#[test]
fn paths_honour_cluster_network_policy_tiers() {
    let o = verdict(&["paths", NGINX, LOCKDOWN]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("not enforced") && err.contains("enable-k8s-cluster-network-policy"),
        "{err}"
    );
    let o = verdict(&[
        "paths",
        "--enable-k8s-cluster-network-policy",
        NGINX,
        LOCKDOWN,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("denied by lockdown spec.ingress[0]")
            && out.contains("(Admin tier, priority 10)"),
        "{out}"
    );
    // ClusterNetworkPolicy exists only from 1.20.
    let o = verdict(&[
        "paths",
        "--enable-k8s-cluster-network-policy",
        "--cilium-version",
        "1.19",
        NGINX,
        LOCKDOWN,
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs 1.20"));
}

/// The same policy is refused by 1.19+ and enforced by 1.18; trace says
/// which, and settings from a cilium-config ConfigMap apply unless given.
#[test]
fn trace_honours_version_and_agent_settings() {
    let dir = tempfile_dir("versions");
    std::fs::write(
        dir.join("p.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: db, namespace: shop, labels: {app: db}}\nspec: {containers: []}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nspec: {containers: []}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: req, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n  - fromEndpoints: [{matchLabels: {app: web}}]\n    fromRequires: [{matchLabels: {team: a}}]\n",
    )
    .unwrap();
    let p = dir.join("p.yaml");
    let p = p.to_str().unwrap();
    let args = |v: &str| {
        vec![
            "trace".to_string(),
            "--cilium-version".into(),
            v.into(),
            "--from".into(),
            "shop/web".into(),
            "--to".into(),
            "shop/db".into(),
            "--port".into(),
            "80".into(),
            p.into(),
        ]
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        verdict(&refs)
    };
    let o = run(args("1.18"));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("DENIED"));
    // 1.20 refuses the policy: an input error (exit 2), the rest analysed.
    let o = run(args("1.20"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("ALLOWED"), "{}", stdout(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("fromRequires"));
    // enable-policy=always from the input's cilium-config.
    std::fs::write(
        dir.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cilium-config, namespace: kube-system}\ndata:\n  enable-policy: always\n",
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let o = verdict(&[
        "trace",
        "--cilium-version",
        "1.18",
        "--from",
        "shop/db",
        "--to",
        "shop/web",
        "--port",
        "80",
        d,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("enable-policy=always"),
        "{}",
        stdout(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains(
            "agent settings taken from the input: enable-policy=always (kube-system/cilium-config"
        ),
        "{err}"
    );
    let o = verdict(&[
        "trace",
        "--cilium-version",
        "1.18",
        "--policy-enforcement",
        "default",
        "--from",
        "shop/db",
        "--to",
        "shop/web",
        "--port",
        "80",
        d,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("verdict-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Lint with ClusterNetworkPolicy tiers: an ordinary allow overridden by an
/// Admin Deny is shadowed; an ordinary deny overridden by an Admin Accept is
/// not reported; without the agent flag nothing of the tier counts.
#[test]
fn lint_honours_cluster_network_policy_tiers() {
    let dir = "crates/verdict-cli/tests/data/tiers-lint/";
    let o = verdict(&[
        "lint",
        "--enable-k8s-cluster-network-policy",
        "-o",
        "json",
        dir,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    let codes: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap(),
                f["path"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(codes, [("VRD007", "spec.ingress[0]")], "{}", stdout(&o));
    assert!(findings[0]["message"]
        .as_str()
        .unwrap()
        .contains("Admin tier"));
    let o = verdict(&["lint", "-o", "json", dir]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{}", stdout(&o));
}

/// generate never writes a policy that an Admin-tier Deny overrides: it
/// reports the conflict, writes nothing for those paths and fails its own
/// verification (the paths stay denied).
#[test]
fn generate_reports_admin_tier_conflicts_instead_of_fixing_them() {
    let o = verdict(&[
        "generate",
        "--enable-k8s-cluster-network-policy",
        "--client",
        "world",
        NGINX,
        LOCKDOWN,
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(
        err.matches(
            "conflict: denied by an Admin-tier ClusterNetworkPolicy (lockdown spec.ingress[0]"
        )
        .count(),
        2,
        "{err}"
    );
    assert!(!stdout(&o).contains("kind:"), "{}", stdout(&o));
    // Without the agent flag the ClusterNetworkPolicy is not enforced and
    // the routes already work: nothing to generate, nothing in conflict.
    let o = verdict(&["generate", "--client", "world", NGINX, LOCKDOWN]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("conflict"));
}

/// The PR gate sees a ClusterNetworkPolicy: adding an Admin-tier Deny in
/// front of the controller breaks both routes (with the flag on).
#[test]
fn diff_honours_cluster_network_policy_tiers() {
    let dir = tempfile_dir("diff-tiers");
    let old = dir.join("old");
    let new = dir.join("new");
    for d in [&old, &new] {
        std::fs::create_dir_all(d).unwrap();
        for f in std::fs::read_dir(root().join(NGINX)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, d.join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(
        root().join(LOCKDOWN).join("admin-deny-world.yaml"),
        new.join("lockdown.yaml"),
    )
    .unwrap();
    let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());
    let v = verdict(&[
        "diff",
        "--enable-k8s-cluster-network-policy",
        "-o",
        "json",
        o,
        n,
    ]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    let j: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    let breaking = j["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["change"] == "breaking")
        .count();
    assert_eq!(breaking, 2, "{}", stdout(&v));
    // Not enforced without the flag: nothing breaks.
    let v = verdict(&["diff", o, n]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
}

/// `policy -o json` carries the tier, level and Pass of map entries.
#[test]
fn policy_shows_cluster_network_policy_tiers() {
    let o = verdict(&[
        "policy",
        "--enable-k8s-cluster-network-policy",
        "-o",
        "json",
        "shop/db",
        "crates/verdict-cli/tests/data/tiers-lint/",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tiers: Vec<(String, u64, String)> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[1]["tier"].as_str().unwrap_or("normal").to_string(),
                e[1]["level"].as_u64().unwrap_or(0),
                e[1]["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        tiers.contains(&("admin".into(), 100, "denied".into())),
        "{tiers:?}"
    );
    assert!(
        tiers.contains(&("admin".into(), 101, "allowed".into())),
        "{tiers:?}"
    );
    assert!(
        tiers.contains(&("normal".into(), 0, "allowed".into())),
        "{tiers:?}"
    );
}

/// NetworkPolicy read as the API server reads it: no (or a null) spec is an
/// empty podSelector isolating every pod of the namespace for ingress;
/// `endPort` without `port` is refused.
#[test]
fn network_policy_without_spec_and_endport_without_port() {
    let dir = tempfile_dir("knp-spec");
    std::fs::write(
        dir.join("p.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nspec: {containers: []}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: null-spec, namespace: shop}\nspec:\n",
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    let o = verdict(&[
        "trace", "--from", "world", "--to", "shop/web", "--port", "80", d,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("selected by shop/null-spec"),
        "{}",
        stdout(&o)
    );
    std::fs::write(
        dir.join("p.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: web}}\nspec: {containers: []}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: endport, namespace: shop}\nspec:\n  podSelector: {}\n  ingress:\n  - ports: [{endPort: 90}]\n",
    )
    .unwrap();
    let o = verdict(&[
        "trace", "--from", "world", "--to", "shop/web", "--port", "80", d,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        err.contains("may only be given together with `port`"),
        "{err}"
    );
    // The refused policy takes no part: the flow is allowed.
    assert!(stdout(&o).contains("ALLOWED"), "{}", stdout(&o));
}
