#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict replay` and `verdict generate --from-flows` end to end: exit
//! codes, input errors with file:line, gzip, standard input, the JSON
//! contract, and the round trip (generated policies + the same flows ->
//! nothing observed delivered breaks).

mod common;
use common::tmp;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn verdict(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

const WEB_TO_DB: &str = r#"{"flow":{"verdict":"FORWARDED","IP":{"source":"10.0.0.1","destination":"10.0.0.2","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":40000,"destination_port":5432,"flags":{"SYN":true}}},"source":{"ID":10,"identity":300,"namespace":"shop","labels":["k8s:app=web","k8s:io.kubernetes.pod.namespace=shop","k8s:io.cilium.k8s.policy.cluster=default"],"pod_name":"web-0"},"destination":{"ID":11,"identity":301,"namespace":"shop","labels":["k8s:app=db","k8s:io.kubernetes.pod.namespace=shop","k8s:io.cilium.k8s.policy.cluster=default"],"pod_name":"db-0"},"Type":"L3_L4","event_type":{"type":4},"trace_observation_point":"TO_ENDPOINT","is_reply":false},"node_name":"n1","time":"2026-01-01T00:00:00Z"}"#;

const DB_DENY: &str = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: db, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n    - fromEndpoints: [{matchLabels: {app: api}}]\n";

fn setup(name: &str) -> (PathBuf, PathBuf) {
    let d = tmp(name);
    let pol = d.join("db.yaml");
    std::fs::write(&pol, DB_DENY).unwrap();
    let flows = d.join("flows.jsonl");
    std::fs::write(&flows, format!("{WEB_TO_DB}\n{{\"node_status\":{{}}}}\n\n")).unwrap();
    (pol, flows)
}

#[test]
fn a_delivered_connection_now_denied_breaks() {
    let (pol, flows) = setup("break");
    let o = verdict(
        &[
            "replay",
            "--flows",
            flows.to_str().unwrap(),
            pol.to_str().unwrap(),
        ],
        None,
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("WOULD BREAK"), "{out}");
    assert!(out.contains("shop/web-0 -> shop/db-0 TCP/5432"), "{out}");
    assert!(
        out.contains("db.yaml:"),
        "the deciding policy with file:line: {out}"
    );
    let o = verdict(
        &[
            "replay",
            "--fail-on",
            "none",
            "--flows",
            flows.to_str().unwrap(),
            pol.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn json_has_one_record_per_line_and_the_groups() {
    let (pol, flows) = setup("json");
    let o = verdict(
        &[
            "replay",
            "-o",
            "json",
            "--flows",
            flows.to_str().unwrap(),
            pol.to_str().unwrap(),
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["line"], 1);
    assert_eq!(recs[0]["verdict"], "denied");
    assert_eq!(recs[0]["change"], "break");
    assert_eq!(recs[1]["verdict"], "skipped");
    assert_eq!(recs[1]["reason"], "not-a-flow");
    assert_eq!(recs[2]["reason"], "empty-line");
    assert!(recs
        .iter()
        .all(|r| r["file"].as_str().unwrap().ends_with("flows.jsonl")));
    assert_eq!(v["summary"]["breaks"], 1);
    assert_eq!(v["groups"][0]["change"], "break");
    assert_eq!(v["groups"][0]["count"], 1);
    // Markdown too.
    let o = verdict(
        &[
            "replay",
            "-o",
            "markdown",
            "--flows",
            flows.to_str().unwrap(),
            pol.to_str().unwrap(),
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("#### Would break"));
}

#[test]
fn malformed_lines_are_reported_and_the_rest_is_read() {
    let (pol, _) = setup("malformed");
    let d = pol.parent().unwrap();
    let flows = d.join("bad.jsonl");
    std::fs::write(&flows, format!("{{\"flow\": [\n{WEB_TO_DB}\n")).unwrap();
    let o = verdict(
        &[
            "replay",
            "--flows",
            flows.to_str().unwrap(),
            pol.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("bad.jsonl:1:"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 would break"));
}

#[test]
fn gzip_stdin_and_directories() {
    let (pol, flows) = setup("gzip");
    let d = pol.parent().unwrap().join("flows");
    std::fs::create_dir_all(&d).unwrap();
    let gz = d.join("events.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(std::fs::read(&flows).unwrap().as_slice())
        .unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let o = verdict(
        &[
            "replay",
            "--flows",
            d.to_str().unwrap(),
            pol.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 would break"));
    let o = verdict(
        &["replay", "--flows", "-", pol.to_str().unwrap()],
        Some(format!("{WEB_TO_DB}\n").as_bytes()),
    );
    assert_eq!(o.status.code(), Some(1));
}

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/flows")
}

fn jsonl(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    v.sort();
    v
}

/// Policies generated from the captures allow everything observed
/// delivered: replaying the same flows with them breaks nothing. One
/// capture (one cluster) at a time.
#[test]
fn generate_from_flows_round_trips() {
    let d = tmp("roundtrip");
    let empty = d.join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let mut files = jsonl(&shared());
    files.extend(jsonl(&shared().join("reference-only")));
    let mut generated_some = 0;
    for f in files {
        let out = d.join("out");
        let _ = std::fs::remove_dir_all(&out);
        let o = verdict(
            &[
                "generate",
                "--from-flows",
                f.to_str().unwrap(),
                "--out-dir",
                out.to_str().unwrap(),
                empty.to_str().unwrap(),
            ],
            None,
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{}: {err}", f.display());
        assert!(err.contains("0 would break"), "{err}");
        let gen = out.join("verdict-flows.yaml");
        if std::fs::read_to_string(&gen).unwrap().is_empty() {
            continue;
        }
        generated_some += 1;
        let o = verdict(
            &[
                "replay",
                "--flows",
                f.to_str().unwrap(),
                gen.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&o.stdout)
        );
    }
    assert!(generated_some >= 8, "{generated_some}");
}

#[test]
fn report_shows_observed_traffic() {
    let (pol, flows) = setup("report");
    let html = pol.parent().unwrap().join("r.html");
    let o = verdict(
        &[
            "report",
            "--flows",
            flows.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
            pol.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Observed traffic"));
    assert!(page.contains("class=\"observed break\""));
    assert!(page.contains("shop/web-0"));
    // The header names the flow files beside the manifests.
    assert!(
        page.contains(&format!(
            "<dd id=\"meta-flows\"><ul><li><code>{}</code></li></ul></dd>",
            flows.display()
        )),
        "{page:.3000}"
    );
}

/// With pods in the manifests, the connectivity diff adds only what was
/// observed (and the DNS allow the generator states).
#[test]
fn generate_from_flows_adds_only_observed_connectivity() {
    let d = tmp("connectivity");
    let m = d.join("m.yaml");
    std::fs::write(
        &m,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web-0, namespace: shop, labels: {{app: web}}}}\nspec: {{containers: [{{name: c, image: x}}]}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: db-0, namespace: shop, labels: {{app: db}}}}\nspec: {{containers: [{{name: c, image: x}}]}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: coredns-0, namespace: kube-system, labels: {{k8s-app: kube-dns}}}}\nspec: {{containers: [{{name: c, image: x}}]}}\n---\n{DB_DENY}"
        ),
    )
    .unwrap();
    let flows = d.join("f.jsonl");
    std::fs::write(&flows, format!("{WEB_TO_DB}\n")).unwrap();
    let o = verdict(
        &[
            "replay",
            "--flows",
            flows.to_str().unwrap(),
            m.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "the flow breaks before");
    let o = verdict(
        &[
            "generate",
            "--from-flows",
            flows.to_str().unwrap(),
            m.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("1 added and observed"), "{err}");
    assert!(err.contains("0 added but never observed"), "{err}");
    let gen = d.join("gen.yaml");
    std::fs::write(&gen, &o.stdout).unwrap();
    let o = verdict(
        &[
            "replay",
            "--flows",
            flows.to_str().unwrap(),
            m.to_str().unwrap(),
            gen.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}
