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
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/live")
}

const CONTINUE: &str = "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6NDgyMTMsInN0YXJ0Ijoic2hvcC9hcGktNjRiOGY3YzlkLXhrMnBxXHUwMDAwIn0";

/// One request the client made: path with query, its Authorization, and
/// whether the client presented a certificate (TLS servers only).
#[derive(Clone, Debug)]
struct Seen {
    target: String,
    authorization: Option<String>,
    client_certificate: bool,
}

/// How the fake API server behaves beyond serving tests/data/live.
#[derive(Clone, Default)]
struct Behaviour {
    /// Resources (plural) that answer 403.
    forbidden: &'static [&'static str],
    /// HTTPS with this configuration instead of plain HTTP.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// A `continue` token answers 410 Gone (expired) once.
    expire_continue_once: bool,
    /// Resources (plural) that answer 429 the first time they are listed.
    throttle_once: &'static [&'static str],
}

struct ApiServer {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ApiServer {
    /// Serves tests/data/live; `forbidden` resources (plural) answer 403.
    fn start(forbidden: &'static [&'static str]) -> ApiServer {
        ApiServer::start_with(Behaviour {
            forbidden,
            ..Behaviour::default()
        })
    }

    fn start_with(behaviour: Behaviour) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if behaviour.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut expired = false;
            let mut throttled: BTreeSet<String> = BTreeSet::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let served = match &behaviour.tls {
                    None => serve(stream.try_clone().unwrap(), stream, false),
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(Arc::clone(config)) else {
                            continue;
                        };
                        let mut tls = rustls::StreamOwned::new(conn, stream);
                        // The handshake; a client that does not trust the
                        // server (or has no certificate) fails here.
                        while tls.conn.is_handshaking() {
                            if tls.conn.complete_io(&mut tls.sock).is_err() {
                                break;
                            }
                        }
                        if tls.conn.is_handshaking() {
                            continue;
                        }
                        let has_cert = tls.conn.peer_certificates().is_some();
                        serve_tls(tls, has_cert)
                    }
                };
                let Some((request, respond_with)) = served else {
                    continue;
                };
                log.lock().unwrap().push(request.clone());
                let plural = request
                    .target
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                let answer = if behaviour.expire_continue_once
                    && !expired
                    && request.target.contains("continue=")
                {
                    expired = true;
                    (
                        "410 Gone",
                        "application/json",
                        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.","reason":"Expired","code":410}"#.to_string(),
                    )
                } else if behaviour.throttle_once.contains(&plural.as_str())
                    && throttled.insert(plural.clone())
                {
                    (
                        "429 Too Many Requests",
                        "application/json",
                        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}"#.to_string(),
                    )
                } else {
                    respond(&request.target, behaviour.forbidden)
                };
                respond_with(answer);
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
    if name == "api_v1_pods" && !query.contains("limit=") {
        // A list without `limit` is answered in one piece.
        let page = |n: &str| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(data().join(n)).unwrap()).unwrap()
        };
        let mut all = page("api_v1_pods_page1.json");
        let rest = page("api_v1_pods_page2.json")["items"].clone();
        all["items"]
            .as_array_mut()
            .unwrap()
            .extend(rest.as_array().unwrap().iter().cloned());
        all["metadata"] = serde_json::json!({"resourceVersion": "48213"});
        return ("200 OK", "application/json", all.to_string());
    }
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

type Answer = (&'static str, &'static str, String);

/// Writes the answer to one request and closes its connection.
type Reply = Box<dyn FnOnce(Answer)>;

/// Reads one request from a connection; returns what was asked and a
/// function that writes the answer and closes the connection.
fn serve<R: Read, W: Write + 'static>(
    read: R,
    write: W,
    client_certificate: bool,
) -> Option<(Seen, Reply)> {
    let (target, authorization) = read_request(read)?;
    let mut write = write;
    Some((
        Seen {
            target,
            authorization,
            client_certificate,
        },
        Box::new(move |answer: Answer| write_answer(&mut write, answer)),
    ))
}

/// As [`serve`], over one TLS stream (read and written through the same
/// session).
fn serve_tls(
    mut tls: rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>,
    client_certificate: bool,
) -> Option<(Seen, Reply)> {
    let (target, authorization) = read_request(&mut tls)?;
    Some((
        Seen {
            target,
            authorization,
            client_certificate,
        },
        Box::new(move |answer: Answer| {
            write_answer(&mut tls, answer);
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }),
    ))
}

/// The request line's target and the Authorization header.
fn read_request(read: impl Read) -> Option<(String, Option<String>)> {
    let mut reader = BufReader::new(read);
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return None;
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
    Some((
        first.split(' ').nth(1).unwrap_or_default().to_string(),
        authorization,
    ))
}

fn write_answer(stream: &mut impl Write, (status, content_type, body): Answer) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
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
    // 3 running pods and 4 ReplicaSets fold into their Deployments, as
    // files do (the core's owners step).
    assert!(
        e.contains("info: 7 objects are represented by the workload that controls them (ownerReferences, controller: true); their names are accepted as parties"),
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
    // A pod's name as `kubectl get pods` shows it names its workload on
    // live input, as it does for files.
    let by_pod = verdict(&[
        "trace",
        "--from",
        "ingress",
        "--to",
        "shop/api-64b8f7c9d-xk2pq",
        "--port",
        "8080",
        "--kubeconfig",
        kc,
        "--context",
        "shop-admin",
    ]);
    assert_eq!(by_pod.status.code(), Some(0), "{}", stderr(&by_pod));
    assert!(
        stdout(&by_pod).contains("shop/deployment/api"),
        "{}",
        stdout(&by_pod)
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
    // The snapshot keeps pods as listed (their ownerReferences included);
    // loading it folds them into their Deployment again.
    assert!(
        pods.contains("kind: Pod") && pods.contains("ownerReferences"),
        "{pods}"
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

/// A test PKI: a CA, a server certificate for 127.0.0.1 and a client
/// certificate, all signed by the CA.
struct Pki {
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn make_pki(require_client_certificate: bool) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "verdict-test-ca");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    server_params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let server_cert = server_params.signed_by(&server_key, &ca, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "verdict-reader");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_certificate {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let server = builder
        .with_single_cert(
            vec![CertificateDer::from(server_cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        server: Arc::new(server),
    }
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A kubeconfig for `server` whose cluster trusts `ca_pem` and whose user
/// is `user` (YAML, indented under `user:`).
fn tls_kubeconfig(dir: &Path, server: &ApiServer, ca_pem: &str, user: &str) -> PathBuf {
    let file = dir.join("kubeconfig");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: tls\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: tls\n  context:\n    cluster: tls\n    user: u\ncurrent-context: tls\nusers:\n- name: u\n  user:\n{user}",
            server.url,
            b64(ca_pem)
        ),
    )
    .unwrap();
    file
}

/// HTTPS with the cluster CA of the kubeconfig and a client certificate
/// that the server requires: every kind is read, the verdicts are those of
/// the manifests, and every request carried the certificate.
#[test]
fn tls_with_a_client_certificate() {
    let pki = make_pki(true);
    let server = ApiServer::start_with(Behaviour {
        tls: Some(Arc::clone(&pki.server)),
        ..Behaviour::default()
    });
    let dir = tmp("tls-client-cert");
    let user = format!(
        "    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&pki.client_cert_pem),
        b64(&pki.client_key_pem)
    );
    let kc = tls_kubeconfig(&dir, &server, &pki.ca_pem, &user);
    let live = verdict(&["paths", "-o", "json", "--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    let files = verdict(&["paths", "-o", "json", root().join(SHOP).to_str().unwrap()]);
    assert_eq!(verdicts(&stdout(&live)), verdicts(&stdout(&files)));
    let seen = server.seen.lock().unwrap().clone();
    assert!(seen.len() >= 26, "{seen:#?}");
    assert!(seen.iter().all(|s| s.client_certificate), "{seen:#?}");
}

/// A server certificate that the kubeconfig's CA did not sign is refused:
/// nothing is analysed and the command exits 2 (never a green run on a
/// cluster that was not read).
#[test]
fn tls_server_signed_by_another_ca_is_refused() {
    let pki = make_pki(false);
    let other = make_pki(false);
    let server = ApiServer::start_with(Behaviour {
        tls: Some(Arc::clone(&pki.server)),
        ..Behaviour::default()
    });
    let dir = tmp("tls-other-ca");
    let kc = tls_kubeconfig(&dir, &server, &other.ca_pem, "    token: t\n");
    let o = verdict(&["paths", "--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("nothing was analysed"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(server.seen.lock().unwrap().is_empty());
}

/// An exec credential plugin (as `aws eks get-token`, `kubelogin`,
/// `gke-gcloud-auth-plugin` are configured): verdict runs it and sends the
/// token it prints.
#[cfg(unix)]
#[test]
fn exec_plugin_token_is_sent() {
    use std::os::unix::fs::PermissionsExt;
    let pki = make_pki(false);
    let server = ApiServer::start_with(Behaviour {
        tls: Some(Arc::clone(&pki.server)),
        ..Behaviour::default()
    });
    let dir = tmp("exec-plugin");
    let plugin = dir.join("get-token");
    std::fs::write(
        &plugin,
        "#!/bin/sh\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"token-from-exec-plugin\"}}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n",
        plugin.display()
    );
    let kc = tls_kubeconfig(&dir, &server, &pki.ca_pem, &user);
    let o = verdict(&["check", "--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let seen = server.seen.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer token-from-exec-plugin")),
        "{seen:#?}"
    );
}

/// An expired `continue` token (410) restarts the list once as one full
/// list, as client-go's pager does; a throttled list (429) is retried. No
/// pod is lost or read twice: the verdicts equal the manifests'.
#[test]
fn expired_continue_and_throttling_are_recovered() {
    let server = ApiServer::start_with(Behaviour {
        expire_continue_once: true,
        throttle_once: &["services", "httproutes"],
        ..Behaviour::default()
    });
    let dir = tmp("expired");
    let kc = server.kubeconfig(&dir);
    let live = verdict(&["paths", "-o", "json", "--kubeconfig", kc.to_str().unwrap()]);
    assert_eq!(live.status.code(), Some(0), "{}", stderr(&live));
    let files = verdict(&["paths", "-o", "json", root().join(SHOP).to_str().unwrap()]);
    assert_eq!(verdicts(&stdout(&live)), verdicts(&stdout(&files)));
    let targets = server.targets();
    // Page 1, page 2 (410), then one full list without `limit`.
    let pods: Vec<&String> = targets
        .iter()
        .filter(|t| t.starts_with("/api/v1/pods"))
        .collect();
    assert_eq!(pods.len(), 3, "{pods:#?}");
    assert!(pods[1].contains("continue="), "{pods:#?}");
    assert!(
        !pods[2].contains("continue=") && !pods[2].contains("limit="),
        "{pods:#?}"
    );
    let services = targets
        .iter()
        .filter(|t| t.starts_with("/api/v1/services"))
        .count();
    assert_eq!(services, 2, "{targets:#?}");
}
