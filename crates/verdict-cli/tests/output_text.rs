#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Text output as a person reads it: parties named as the input names them
//! (and accepted back), "at the backend (ingress)" rather than "ingress of
//! X", near misses on denials, "did you mean" on names that match nothing,
//! and long lines wrapped to the terminal width.

mod common;
use common::{root, stderr, stdout};

use std::process::{Command, Output};

fn verdict(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .current_dir(root())
        .env_remove("NO_COLOR")
        .args(args)
        .output()
        .unwrap()
}

const SHOP: &str = "examples/shop-gateway/";

/// The shop behind Cilium's Gateway, with the api backend admitting the
/// ingress on the Service port 80 instead of the targetPort 8080.
const WRONG_PORT: &[&str] = &[
    "examples/shop-gateway/namespaces.yaml",
    "examples/shop-gateway/workloads.yaml",
    "examples/shop-gateway/gateway.yaml",
    "examples/broken/gateway-wrong-port/",
];

const NGINX_WRONG_PORT: &[&str] = &[
    "examples/shop-nginx/namespaces.yaml",
    "examples/shop-nginx/workloads.yaml",
    "examples/shop-nginx/ingress-nginx.yaml",
    "examples/broken/nginx-wrong-port/",
];

fn with(args: &[&str], files: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(files);
    verdict(&all)
}

#[test]
fn paths_say_where_each_check_is_made_and_name_parties_plainly() {
    let o = with(&["paths"], WRONG_PORT);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for needle in [
        "at the ingress (ingress): world -> ingress (Cilium's Envoy) TCP/80: allowed",
        "at the ingress (egress): ingress (Cilium's Envoy) -> shop/deployment/api TCP/8080: allowed",
        "at the backend (ingress): ingress (Cilium's Envoy) -> shop/deployment/api TCP/8080: denied",
    ] {
        assert!(out.contains(needle), "missing `{needle}` in:\n{out}");
    }
    for gone in ["ingress of ", "egress of ", "reserved:world ->", "k8s:app="] {
        assert!(!out.contains(gone), "`{gone}` in:\n{out}");
    }
    // JSON keeps the data: where (role) and which side (direction).
    let o = with(&["paths", "-o", "json"], WRONG_PORT);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let checks: Vec<&serde_json::Value> = v["entry_points"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["routes"].as_array().unwrap())
        .flat_map(|r| r["backends"].as_array().unwrap())
        .flat_map(|b| b["paths"].as_array().unwrap())
        .flat_map(|p| p["hops"].as_array().unwrap())
        .flat_map(|h| h["checks"].as_array().unwrap())
        .collect();
    assert!(checks
        .iter()
        .any(|c| c["role"] == "backend" && c["direction"] == "ingress"));
    assert!(checks
        .iter()
        .any(|c| c["role"] == "ingress" && c["direction"] == "egress"));
}

#[test]
fn a_denied_backend_names_the_service_port_near_miss() {
    let o = with(&["paths"], WRONG_PORT);
    let out = stdout(&o);
    let want = "near miss: rule shop/api-from-gateway spec.ingress[0] (examples/broken/gateway-wrong-port/policies.yaml:54) allows ingress (Cilium's Envoy) on TCP/80, not TCP/8080 (the Service port, not the targetPort?)";
    assert!(out.contains(want), "missing `{want}` in:\n{out}");
    // Only the denied check has one: the allowed frontend path has none.
    assert_eq!(out.matches("near miss:").count(), 1, "{out}");

    let o = with(&["paths", "-o", "json"], WRONG_PORT);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = v.to_string();
    let misses: Vec<serde_json::Value> = v["entry_points"][0]["routes"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["paths"].as_array().unwrap().clone())
        .flat_map(|p| p["hops"].as_array().unwrap().clone())
        .flat_map(|h| h["checks"].as_array().unwrap().clone())
        .flat_map(|c| c["near_miss"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(misses.len(), 1, "{text}");
    let m = &misses[0];
    assert_eq!(m["policy"], "shop/api-from-gateway");
    assert_eq!(m["path"], "spec.ingress[0]");
    assert_eq!(m["misses"], "port");
    assert_eq!(m["ports"], serde_json::json!(["TCP/80"]));
    assert_eq!(m["flow"], "TCP/8080");
    assert_eq!(m["peer"], "reserved:ingress");
    assert_eq!(m["service_port"], true);

    // The same mistake behind ingress-nginx: the controller's pods.
    let o = with(&["paths"], NGINX_WRONG_PORT);
    let out = stdout(&o);
    let want = "allows ingress-nginx/deployment/ingress-nginx-controller on TCP/80, not TCP/8080 (the Service port, not the targetPort?)";
    assert_eq!(out.matches(want).count(), 2, "{out}");
}

#[test]
fn trace_names_near_misses_by_port_and_by_peer() {
    // The ingress towards the Service port: both sides allow 8080 only,
    // and 80 is not a Service port in front of 8080 here.
    let o = verdict(&[
        "trace",
        "--from",
        "ingress",
        "--to",
        "shop/deployment/api",
        "--port",
        "80",
        SHOP,
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.starts_with("ingress (Cilium's Envoy) -> shop/deployment/api TCP/80: DENIED\n"),
        "{out}"
    );
    assert!(
        out.contains("  at the source (egress) ingress (Cilium's Envoy): denied\n"),
        "{out}"
    );
    assert!(
        out.contains("  at the destination (ingress) shop/deployment/api: denied\n"),
        "{out}"
    );
    assert!(
        out.contains("    near miss: rule world-to-gateway spec.egress[0] (examples/shop-gateway/policies.yaml:15) allows shop/deployment/api on TCP/8080, not TCP/80\n"),
        "{out}"
    );
    assert!(
        out.contains("    near miss: rule shop/api-from-gateway spec.ingress[0] (examples/shop-gateway/policies.yaml:52) allows ingress (Cilium's Envoy) on TCP/8080, not TCP/80\n"),
        "{out}"
    );
    assert!(!out.contains("targetPort?"), "{out}");

    // world on the right port: the rule admits another peer.
    let o = verdict(&[
        "trace",
        "--from",
        "world",
        "--to",
        "shop/deployment/api",
        "--port",
        "8080",
        SHOP,
    ]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("near miss: rule shop/api-from-gateway spec.ingress[0] (examples/shop-gateway/policies.yaml:52) allows fromEntities: ingress on TCP/8080, not world\n"),
        "{out}"
    );
    let o = verdict(&[
        "trace",
        "--from",
        "world",
        "--to",
        "shop/deployment/api",
        "--port",
        "8080",
        "-o",
        "json",
        SHOP,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ingress"]["near_miss"][0]["misses"], "peer", "{v}");
    assert_eq!(
        v["ingress"]["near_miss"][0]["peer"], "reserved:world",
        "{v}"
    );
    assert!(v["egress"].get("near_miss").is_none(), "{v}");

    // A delivered flow has none.
    let o = verdict(&[
        "trace", "--from", "world", "--to", "ingress", "--port", "80", SHOP,
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!stdout(&o).contains("near miss"), "{}", stdout(&o));
}

#[test]
fn trace_shows_label_sets_only_with_verbose() {
    let args = [
        "trace",
        "--from",
        "ingress",
        "--to",
        "shop/deployment/api",
        "--port",
        "8080",
        SHOP,
    ];
    let o = verdict(&args);
    let out = stdout(&o);
    // On 1.20 the named-ports label is part of the identity, and frontend's
    // `http.TCP.80` sorts before api's `http.TCP.8080_...`: api is 257.
    assert!(
        out.contains("  identities: ingress (Cilium's Envoy) = 8; shop/deployment/api = 257\n"),
        "{out}"
    );
    assert!(!out.contains("k8s:"), "{out}");
    let mut v = args.to_vec();
    v.push("-v");
    let out = stdout(&verdict(&v));
    assert!(
        out.contains(
            "shop/deployment/api = gen:io.cilium.k8s.named-ports=http.TCP.8080_metrics.TCP.9090,k8s:app=api,"
        ),
        "{out}"
    );
}

#[test]
fn matrix_names_can_be_pasted_back() {
    let o = verdict(&["matrix", SHOP]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("reserved:"), "{out}");
    assert!(out.contains("\nworld    ingress "), "{out}");
    let mut names: Vec<String> = out
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .flat_map(|l| {
            l.split_whitespace()
                .take(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names,
        [
            "host",
            "ingress",
            "shop/deployment/api",
            "shop/deployment/frontend",
            "world"
        ]
    );
    for n in &names {
        let o = verdict(&["policy", n, SHOP]);
        assert_eq!(o.status.code(), Some(0), "policy {n}: {}", stderr(&o));
        let o = verdict(&["trace", "--from", n, "--to", "world", "--port", "1", SHOP]);
        assert_ne!(o.status.code(), Some(2), "trace --from {n}: {}", stderr(&o));
    }
    // A CIDR is printed and accepted bare.
    let o = verdict(&[
        "trace",
        "--from",
        "203.0.113.0/24",
        "--to",
        "ingress",
        "--port",
        "80",
        SHOP,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("203.0.113.0/24 -> ingress (Cilium's Envoy) TCP/80: ALLOWED"));
}

#[test]
fn names_that_match_nothing_suggest_the_closest() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "trace",
                "--from",
                "shop/deployment/apj",
                "--to",
                "world",
                "--port",
                "1",
                SHOP,
            ],
            "did you mean `shop/deployment/api`?",
        ),
        (
            &[
                "trace", "--from", "wrld", "--to", "ingress", "--port", "80", SHOP,
            ],
            "did you mean `world`?",
        ),
        (
            &["policy", "shop/fronted", SHOP],
            "did you mean `shop/deployment/frontend`?",
        ),
        (
            &[
                "trace",
                "--from",
                "reserved:wrld",
                "--to",
                "ingress",
                "--port",
                "80",
                SHOP,
            ],
            "did you mean `world`?",
        ),
        (
            &["matrix", "--workload", "fronted", SHOP],
            "did you mean `shop/deployment/frontend`?",
        ),
        (
            &["matrix", "--namespace", "shp", SHOP],
            "did you mean `shop`?",
        ),
        (
            &["paths", "--route", "shp", SHOP],
            "did you mean `shop`, `shop/shop`?",
        ),
        (
            &["paths", "--namespace", "shp", SHOP],
            "did you mean `shop`?",
        ),
        (
            &["paths", "--backend", "apj", SHOP],
            "did you mean `shop/api`, `shop/deployment/api`?",
        ),
    ];
    for (args, want) in cases {
        let o = verdict(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains(want), "{args:?}: missing `{want}` in {err}");
    }
    // Nothing close: no suggestion.
    let o = verdict(&["paths", "--route", "zzzzzzzz", SHOP]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("did you mean"), "{}", stderr(&o));
}

/// Every line at most `width` columns, unless it is one word (a path) that
/// cannot be split.
fn assert_fits(text: &str, width: usize) {
    for line in text.lines() {
        let words = line.split_whitespace().count();
        assert!(
            line.chars().count() <= width || words == 1,
            "line over {width} columns: `{line}`\n{text}"
        );
    }
}

fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

#[test]
fn width_wraps_long_lines_with_a_hanging_indent() {
    let plain = stdout(&with(&["paths"], WRONG_PORT));
    // Into a pipe nothing is wrapped by default.
    assert!(plain.lines().any(|l| l.chars().count() > 150), "{plain}");
    let wrapped = stdout(&with(&["paths", "--width", "60"], WRONG_PORT));
    assert_fits(&wrapped, 60);
    // Only spaces change: the same words in the same order.
    assert_eq!(words(&plain), words(&wrapped));
    // A continuation is indented four columns more than its line.
    assert!(
        wrapped.contains("\n          at the backend (ingress): ingress (Cilium's Envoy)\n              -> shop/deployment/api TCP/8080: denied -\n"),
        "{wrapped}"
    );
    // --width 0 never wraps.
    assert_eq!(stdout(&with(&["paths", "--width", "0"], WRONG_PORT)), plain);

    let trace = [
        "trace",
        "--from",
        "ingress",
        "--to",
        "shop/deployment/api",
        "--port",
        "80",
        "--width",
        "50",
        SHOP,
    ];
    let t = stdout(&verdict(&trace));
    assert_fits(&t, 50);
    assert!(t.lines().count() > 10, "{t}");
}

/// Runs `stty rows 50 cols COLS; verdict ARGS` under a pseudo-terminal (util-linux
/// `script`, required).
fn under_pty(cols: u16, args: &str) -> String {
    let exe = env!("CARGO_BIN_EXE_verdict");
    let o = Command::new("script")
        .args([
            "-qec",
            &format!("stty rows 50 cols {cols}; {exe} {args}"),
            "/dev/null",
        ])
        .current_dir(root())
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .output()
        .expect("`script` from util-linux runs the pseudo-terminal test");
    String::from_utf8_lossy(&o.stdout).replace("\r\n", "\n")
}

/// `text` without ANSI SGR sequences.
fn strip_ansi(text: &str) -> String {
    let re = regex::Regex::new("\x1b\\[[0-9;]*m").unwrap();
    re.replace_all(text, "").into_owned()
}

#[test]
fn on_a_terminal_lines_wrap_to_its_width_and_colour_does_not_count() {
    let args = format!("paths {}", WRONG_PORT.join(" "));
    let out = under_pty(72, &args);
    assert!(out.contains('\x1b'), "colour expected on a terminal: {out}");
    let text = strip_ansi(&out);
    assert_fits(&text, 72);
    let plain = stdout(&with(&["paths"], WRONG_PORT));
    assert_eq!(words(&plain), words(&text));
    // The same terminal, wider: fewer lines.
    let wide = strip_ansi(&under_pty(200, &args));
    assert_fits(&wide, 200);
    assert!(wide.lines().count() < text.lines().count());
}

#[test]
fn a_service_names_the_workload_behind_it() {
    let o = verdict(&[
        "trace",
        "--from",
        "world",
        "--to",
        "shop/service/api",
        "--port",
        "8080",
        SHOP,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("world -> shop/deployment/api TCP/8080: DENIED\n"),
        "{}",
        stdout(&o)
    );
    let o = verdict(&["policy", "shop/svc/frontend", SHOP]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("shop/deployment/frontend\n"),
        "{}",
        stdout(&o)
    );
    let o = verdict(&["policy", "shop/service/fronted", SHOP]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("names no Service in the input; did you mean `shop/service/frontend`?"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_bare_pod_is_shown_as_ns_pod_name_and_accepted_back() {
    let dir = std::env::temp_dir().join(format!("verdict-bare-pod-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pod.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: api-7d4f9c-abcde\n  namespace: shop\n  labels: {app: api}\nspec:\n  containers: [{name: c, image: x}]\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: api\n  namespace: shop\nspec:\n  endpointSelector: {matchLabels: {app: api}}\n  ingress:\n  - fromEntities: [world]\n    toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = stdout(&verdict(&["matrix", f]));
    assert!(
        out.contains("\nworld  shop/pod/api-7d4f9c-abcde  TCP/80"),
        "{out}"
    );
    for name in ["shop/pod/api-7d4f9c-abcde", "shop/api-7d4f9c-abcde"] {
        let o = verdict(&["trace", "--from", "world", "--to", name, "--port", "80", f]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with("world -> shop/pod/api-7d4f9c-abcde TCP/80: ALLOWED\n"),
            "{}",
            stdout(&o)
        );
        let o = verdict(&["matrix", "--workload", name, f]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One rule entry naming the same port twice decides that port once:
/// `verdict policy` names it once in the row (text and JSON).
#[test]
fn policy_names_a_rule_entry_once_per_row() {
    let dir = common::tmp("policy-once");
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: shop, labels: {app: api}}\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: dns, namespace: kube-system, labels: {k8s-app: kube-dns}}\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: dns, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: api}}\n  egress:\n    - toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]\n      toPorts: [{ports: [{port: \"53\", protocol: UDP}, {port: \"53\", protocol: UDP}]}]\n";
    let file = dir.join("p.yaml");
    std::fs::write(&file, yaml).unwrap();
    let file = file.to_str().unwrap();
    let o = verdict(&["policy", "shop/api", "-o", "json", file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows: Vec<&serde_json::Value> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e[0]["protocol"] == "UDP" && e[0]["from_port"] == 53)
        .collect();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0][1]["origins"].as_array().unwrap().len(), 1, "{v}");
    let o = verdict(&["policy", "shop/api", file]);
    let text = stdout(&o);
    let row = text.lines().find(|l| l.contains("UDP/53")).unwrap();
    assert_eq!(row.matches("p.yaml").count(), 1, "{text}");
}
