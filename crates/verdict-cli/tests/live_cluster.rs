#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The live cluster source end to end: `verdict` against a local HTTP server
//! that answers like the Kubernetes API server (list bodies as the API
//! server returns them: typed lists, items of built-in kinds without `kind`,
//! `managedFields`, server-set defaults; pods over two pages with
//! `continue`; a 403 Status for a forbidden kind; `404 page not found` for
//! a CRD that is not installed). The responses are in tests/data/live/; the
//! same application as manifests is examples/shop-gateway/.

mod common;
use common::{root, stderr, stdout, tmp};

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/live")
}

const CONTINUE: &str = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgyMTMsInN0YXJ0Ijoic2hvcC9hcGktNjRiOGY3YzlkLXhrMnBxXHUwMDAwIn0";

/// One request the client made: path with query, and its Authorization.
#[derive(Clone, Debug)]
struct Seen {
    target: String,
    authorization: Option<String>,
}

struct ApiServer {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ApiServer {
    /// Serves tests/data/live; `forbidden` resources (plural) answer 403.
    fn start(forbidden: &'static [&'static str]) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                let mut authorization = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            authorization = Some(v.trim().to_string());
                        }
                    }
                }
                let target = first.split(' ').nth(1).unwrap_or_default().to_string();
                log.lock().unwrap().push(Seen {
                    target: target.clone(),
                    authorization,
                });
                let (status, content_type, body) = respond(&target, forbidden);
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body.as_bytes());
                let _ = stream.flush();
            }
        });
        ApiServer { url, seen }
    }

    fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let file = dir.join("kubeconfig");
        std::fs::write(
            &file,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: kind-shop\n  cluster:\n    server: {}\ncontexts:\n- name: shop-admin\n  context:\n    cluster: kind-shop\n    user: reader\n- name: other\n  context:\n    cluster: kind-shop\n    user: reader\ncurrent-context: other\nusers:\n- name: reader\n  user:\n    token: verdict-test-token\n",
                self.url
            ),
        )
        .unwrap();
        file
    }

    fn targets(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.target.clone())
            .collect()
    }
}

/// The API server's answer to `GET target`.
fn respond(target: &str, forbidden: &[&str]) -> (&'static str, &'static str, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let plural = path.rsplit('/').next().unwrap_or_default();
    if forbidden.contains(&plural) {
        let group = path
            .split('/')
            .nth(2)
            .filter(|_| path.starts_with("/apis/"))
            .unwrap_or("");
        let body = format!(
            r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{plural}.{group} is forbidden: User \"system:serviceaccount:verdict:reader\" cannot list resource \"{plural}\" in API group \"{group}\" at the cluster scope","reason":"Forbidden","details":{{"group":"{group}","kind":"{plural}"}},"code":403}}"#
        );
        return ("403 Forbidden", "application/json", body);
    }
    let mut name = path.trim_start_matches('/').replace('/', "_");
    if name == "api_v1_pods" {
        name = if query.contains(&format!("continue={CONTINUE}")) {
            "api_v1_pods_page2".to_string()
        } else {
            "api_v1_pods_page1".to_string()
        };
    }
    match std::fs::read_to_string(data().join(format!("{name}.json"))) {
        Ok(body) => ("200 OK", "application/json", body),
        Err(_) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "404 page not found\n".to_string(),
        ),
    }
}

fn verdict(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A JSON output without where things were read from (file, line, column,
/// source names) nor load diagnostics: the verdicts only.
fn verdicts(json: &str) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| {
                    !matches!(
                        k.as_str(),
                        "file" | "line" | "column" | "location" | "diagnostics" | "origin"
                        // A route rule's label: the API server defaults an
                        // HTTPRoute rule without `matches` to PathPrefix /
                        // ("rules[1] PathPrefix /" live, "rules[1] any" in
                        // the manifests); the match is the same.
                        | "rule"
                    )
                });
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    // `(FILE:LINE)` inside explanations and rule names.
    let at = regex::Regex::new(r"\([^()\s]+:\d+\)").unwrap();
    let json = at.replace_all(json, "(at)");
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    strip(&mut v);
    v
}

const SHOP: &str = "examples/shop-gateway";

/// Every kind is listed with `limit`, pods over two pages with the
/// server's `continue` token, cilium-config by field selector; the token
/// of the kubeconfig is sent; a CRD that is not served is tried at each
/// known version, and is no error.
#[test]
fn lists_every_kind_with_pagination_and_the_kubeconfig_token() {
    let server = ApiServer::start(&[]);
    let dir = tmp("requests");
    let kc = server.kubeconfig(&dir);
    let o = verdict(&[
        "check",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "shop-admin",
        "-v",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let targets = server.targets();
    let paths: BTreeSet<&str> = targets
        .iter()
        .map(|t| t.split('?').next().unwrap())
        .collect();
    for p in [
        "/api/v1/namespaces",
        "/api/v1/pods",
        "/api/v1/services",
        "/api/v1/configmaps",
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/replicasets",
        "/apis/apps/v1/statefulsets",
        "/apis/apps/v1/daemonsets",
        "/apis/batch/v1/jobs",
        "/apis/batch/v1/cronjobs",
        "/apis/networking.k8s.io/v1/networkpolicies",
        "/apis/networking.k8s.io/v1/ingresses",
        "/apis/networking.k8s.io/v1/ingressclasses",
        "/apis/cilium.io/v2/ciliumnetworkpolicies",
        "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies",
        "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies",
        "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
        "/apis/gateway.networking.k8s.io/v1/gateways",
        "/apis/gateway.networking.k8s.io/v1/httproutes",
        "/apis/gateway.networking.k8s.io/v1/grpcroutes",
        "/apis/gateway.networking.k8s.io/v1alpha2/grpcroutes",
        "/apis/gateway.networking.k8s.io/v1alpha3/tlsroutes",
        "/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes",
        "/apis/gateway.networking.k8s.io/v1alpha2/tcproutes",
        "/apis/gateway.networking.k8s.io/v1alpha2/udproutes",
        "/apis/gateway.networking.k8s.io/v1beta1/referencegrants",
    ] {
        assert!(
            paths.contains(p),
            "{p} not requested; requests: {targets:#?}"
        );
    }
    // Only list requests of the kinds above: nothing else, no watch.
    assert_eq!(paths.len(), 26, "{targets:#?}");
    assert!(
        targets
            .iter()
            .all(|t| t.contains("limit=500") && !t.contains("watch")),
        "{targets:#?}"
    );
    let pods: Vec<&String> = targets
        .iter()
        .filter(|t| t.starts_with("/api/v1/pods?"))
        .collect();
    assert_eq!(pods.len(), 2, "{targets:#?}");
    assert!(!pods[0].contains("continue="));
    assert!(
        pods[1].contains(&format!("continue={CONTINUE}")),
        "{targets:#?}"
    );
    assert!(
        targets.iter().any(|t| t.starts_with("/api/v1/configmaps?")
            && t.contains("fieldSelector=metadata.name%3Dcilium-config")),
        "{targets:#?}"
    );
    let seen = server.seen.lock().unwrap().clone();
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer verdict-test-token")));
    // `check` lists every diagnostic on standard output.
    let e = stdout(&o);
    assert!(e.contains("cluster:shop-admin/core/v1/pods:0: info: read 4 objects of kind Pod from the cluster (2 pages)"), "{e}");
    assert!(e.contains("tlsroutes is not served by this cluster (tried gateway.networking.k8s.io/v1alpha3, gateway.networking.k8s.io/v1alpha2"), "{e}");
    assert!(
        e.contains("pods:0: info: 3 objects are represented by the controller that owns them"),
        "{e}"
    );
    assert!(
        e.contains(
            "replicasets:0: info: 4 objects are represented by the controller that owns them"
        ),
        "{e}"
    );
    assert!(
        e.contains("pods:0: info: 1 terminated pod (phase Succeeded or Failed) has no endpoint"),
        "{e}"
    );
}

/// The live cluster gives the verdicts of the same application given as
/// manifests: paths, matrix and a traced flow (pods and replica sets are
/// represented by their Deployment, as in the manifests).
#[test]
fn live_verdicts_equal_the_manifests_verdicts() {
    let server = ApiServer::start(&[]);
    let dir = tmp("equal");
    let kc = server.kubeconfig(&dir);
    let kc = kc.to_str().unwrap();
    let shop = root().join(SHOP);
    let shop = shop.to_str().unwrap();
    for args in [
        vec!["paths", "-o", "json"],
        vec!["matrix", "-o", "json"],
        vec![
            "trace",
            "--from",
            "ingress",
            "--to",
            "shop/deployment/api",
            "--port",
            "8080",
            "-o",
            "json",
        ],
        vec![
            "trace",
            "--from",
            "world",
            "--to",
            "shop/deployment/frontend",
            "--port",
            "8080",
            "-o",
            "json",
        ],
    ] {
        let live = verdict(
            &[
                args.clone(),
                vec!["--kubeconfig", kc, "--context", "shop-admin"],
            ]
            .concat(),
        );
        let files = verdict(&[args.clone(), vec![shop]].concat());
        assert_eq!(
            live.status.code(),
            files.status.code(),
            "{args:?}: {}",
            stderr(&live)
        );
        assert_eq!(
            verdicts(&stdout(&live)),
            verdicts(&stdout(&files)),
            "{args:?}"
        );
    }
    let live = verdict(&["paths", "--kubeconfig", kc, "--context", "shop-admin"]);
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    assert!(
        stdout(&live).contains("2 paths: 2 allowed, 0 denied"),
        "{}",
        stdout(&live)
    );
}

/// A kind the credentials may not list is an error naming the kind and the
/// RBAC verb and resource; every other kind is still analysed; exit 2.
#[test]
fn a_forbidden_kind_is_an_error_and_the_rest_is_analysed() {
    let server = ApiServer::start(&["ciliumclusterwidenetworkpolicies"]);
    let dir = tmp("forbidden");
    let kc = server.kubeconfig(&dir);
    let o = verdict(&[
        "paths",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "shop-admin",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("cluster:shop-admin/cilium.io/v2/ciliumclusterwidenetworkpolicies:0: error: forbidden: cannot list ciliumclusterwidenetworkpolicies.cilium.io (RBAC: verb `list` on resource `ciliumclusterwidenetworkpolicies` in API group \"cilium.io\")"),
        "{e}"
    );
    assert!(
        e.contains("CiliumClusterwideNetworkPolicy objects are not analysed, the other kinds are"),
        "{e}"
    );
    // Routes, Services, pods and the other policies were read: the paths
    // are computed from them. Without the clusterwide policy nothing
    // selects the ingress, so it looks open: why a forbidden kind exits 2.
    let text = stdout(&o);
    assert!(text.contains("2 paths: 2 allowed, 0 denied"), "{text}");
    assert!(
        text.contains("no policy selects reserved:ingress for ingress: default allow"),
        "{text}"
    );
    assert!(text.contains("allowed by shop/api-from-gateway spec.ingress[0] (cluster:shop-admin/cilium.io/v2/ciliumnetworkpolicies:"), "{text}");
    let json = verdict(&[
        "check",
        "-o",
        "json",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "shop-admin",
    ]);
    assert_eq!(json.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let errors: Vec<&serde_json::Value> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0]["file"],
        "cluster:shop-admin/cilium.io/v2/ciliumclusterwidenetworkpolicies"
    );
}

/// `snapshot` writes one file per kind read; the directory analysed as
/// files gives what the live source gives, with the same lines; a second
/// snapshot is byte for byte the same; a non-empty directory is refused.
#[test]
fn snapshot_round_trips() {
    let server = ApiServer::start(&[]);
    let dir = tmp("snapshot");
    let kc = server.kubeconfig(&dir);
    let kc = kc.to_str().unwrap();
    let snap = dir.join("snap");
    let o = verdict(&["snapshot", "--kubeconfig", kc, "-o", snap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // No --context: the kubeconfig's current-context.
    assert!(stderr(&o).contains("of cluster `other`"), "{}", stderr(&o));
    let mut names: Vec<String> = std::fs::read_dir(&snap)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    // 24 kinds, 5 of them not served (no CRD): no file.
    assert_eq!(names.len(), 19, "{names:#?}");
    assert!(names.contains(&"core_v1_pods.yaml".to_string()));
    assert!(names.contains(&"cilium.io_v2_ciliumnetworkpolicies.yaml".to_string()));
    assert!(names.contains(&"gateway.networking.k8s.io_v1beta1_referencegrants.yaml".to_string()));
    let pods = std::fs::read_to_string(snap.join("core_v1_pods.yaml")).unwrap();
    assert!(
        pods.is_empty(),
        "pods are represented by their Deployment: {pods}"
    );
    let deployments = std::fs::read_to_string(snap.join("apps_v1_deployments.yaml")).unwrap();
    assert!(
        deployments.contains("kind: Deployment") && deployments.contains("apiVersion: apps/v1")
    );
    assert!(!deployments.contains("managedFields"), "{deployments}");
    for args in [
        vec!["paths", "-o", "json"],
        vec!["lint", "-o", "json"],
        vec!["matrix", "-o", "json"],
    ] {
        let live = verdict(&[args.clone(), vec!["--kubeconfig", kc]].concat());
        let files = verdict(&[args.clone(), vec![snap.to_str().unwrap()]].concat());
        assert_eq!(live.status.code(), files.status.code(), "{args:?}");
        // Same text, same lines: only the source names differ.
        let mut expected = stdout(&live);
        for n in &names {
            let stem = n.trim_end_matches(".yaml");
            let parts: Vec<&str> = stem.splitn(3, '_').collect();
            expected = expected.replace(
                &format!("cluster:other/{}/{}/{}", parts[0], parts[1], parts[2]),
                &snap.join(n).display().to_string(),
            );
        }
        assert_eq!(verdicts(&expected), verdicts(&stdout(&files)), "{args:?}");
        assert_eq!(
            expected.replace(&format!("{}/", snap.display()), ""),
            stdout(&files).replace(&format!("{}/", snap.display()), ""),
            "{args:?}"
        );
    }
    let again = dir.join("again");
    let o = verdict(&[
        "snapshot",
        "--kubeconfig",
        kc,
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    for n in &names {
        assert_eq!(
            std::fs::read(snap.join(n)).unwrap(),
            std::fs::read(again.join(n)).unwrap(),
            "{n}"
        );
    }
    let o = verdict(&["snapshot", "--kubeconfig", kc, "-o", snap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
}

/// "The cluster plus this PR": a policy in the files replaces the live one
/// of the same kind, namespace and name without a duplicate error;
/// `diff --cluster-base` compares the live state with it.
#[test]
fn files_overlay_the_cluster_and_diff_cluster_base() {
    let server = ApiServer::start(&[]);
    let dir = tmp("overlay");
    let kc = server.kubeconfig(&dir);
    let kc = kc.to_str().unwrap();
    let pr = dir.join("pr");
    std::fs::create_dir_all(&pr).unwrap();
    // The PR moves the api backend's policy to the Service port: breaks it.
    std::fs::write(
        pr.join("api-policy.yaml"),
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: api-from-gateway\n  namespace: shop\nspec:\n  endpointSelector:\n    matchLabels: {app: api}\n  ingress:\n    - fromEntities: [ingress]\n      toPorts:\n        - ports:\n            - port: \"80\"\n              protocol: TCP\n",
    )
    .unwrap();
    let o = verdict(&["paths", "--kubeconfig", kc, "-v", pr.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let e = stderr(&o);
    assert!(!e.contains("defined twice"), "{e}");
    assert!(e.contains("api-policy.yaml:1: info: CiliumNetworkPolicy shop/api-from-gateway: replaces the cluster's object"), "{e}");
    assert!(
        stdout(&o).contains("api-policy.yaml"),
        "the deciding policy is the PR's: {}",
        stdout(&o)
    );

    let o = verdict(&[
        "diff",
        "--kubeconfig",
        kc,
        "--cluster-base",
        pr.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "breaking: {}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).contains("shop/deployment/api"), "{}", stdout(&o));
    let o = verdict(&[
        "diff",
        "--kubeconfig",
        kc,
        "-o",
        "json",
        "--cluster-base",
        pr.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["paths"].as_array().is_some_and(|p| !p.is_empty()),
        "{v:#}"
    );

    // The same PR against the same state given as files would be a duplicate.
    let o = verdict(&["diff", "--cluster-base", pr.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--cluster-base compares with a live cluster"),
        "{}",
        stderr(&o)
    );
}

/// A cluster that cannot be reached, or a context the kubeconfig does not
/// have, is an error before anything is analysed.
#[test]
fn unreachable_cluster_and_unknown_context_exit_2() {
    let dir = tmp("unreachable");
    // A port nothing listens on: bind, read the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kc = dir.join("kubeconfig");
    std::fs::write(
        &kc,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"),
    )
    .unwrap();
    let o = verdict(&["paths", "--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cluster `c`: listing namespaces")
            && stderr(&o).contains("nothing was analysed"),
        "{}",
        stderr(&o)
    );
    let o = verdict(&[
        "paths",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--context",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("kubeconfig context `nope`"),
        "{}",
        stderr(&o)
    );
    let o = verdict(&["test", "--kubeconfig", kc.to_str().unwrap(), "x.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("apply to commands that read manifests"),
        "{}",
        stderr(&o)
    );
}
