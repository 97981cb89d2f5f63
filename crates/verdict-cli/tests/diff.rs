#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict diff`: path changes (breaking, exposure) next to connectivity,
//! and `--git` reading every changed file whatever its name.

mod common;
use common::{root, stderr, stdout, tmp};

use std::path::Path;
use std::process::{Command, Output};

fn run(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_verdict"));
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.args(args).output().unwrap()
}

const SHOP_FILES: [&str; 4] = [
    "namespaces.yaml",
    "workloads.yaml",
    "gateway.yaml",
    "policies.yaml",
];

fn copy_shop(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in SHOP_FILES {
        std::fs::copy(root().join("examples/shop-gateway").join(f), to.join(f)).unwrap();
    }
}

/// The api backend's policy admits the Service port (80) instead of the
/// target port (8080).
fn api_policy_on_service_port(dir: &Path) {
    let p = dir.join("policies.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let (head, tail) = text.split_once("name: api-from-gateway").unwrap();
    assert!(tail.contains("port: \"8080\""));
    let tail = tail.replace("port: \"8080\"", "port: \"80\"");
    std::fs::write(&p, format!("{head}name: api-from-gateway{tail}")).unwrap();
}

const API_PATH: &str = "Gateway shop/shop listener http :80 -> HTTPRoute shop/shop -> Service shop/api:80 -> shop/deployment/api";

#[test]
fn backend_policy_moved_to_the_service_port_is_a_breaking_change() {
    let d = tmp("breaking");
    let (old, new) = (d.join("old"), d.join("new"));
    copy_shop(&old);
    copy_shop(&new);
    api_policy_on_service_port(&new);
    let (o_s, n_s) = (old.to_str().unwrap(), new.to_str().unwrap());

    let o = run(None, &["diff", o_s, n_s]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}{}", stderr(&o));
    assert!(
        text.contains(&format!("BREAKING {API_PATH}: allowed -> denied")),
        "{text}"
    );
    assert!(
        text.contains("failing hop: ingress -> backend: at the backend (ingress): ingress (Cilium's Envoy) -> shop/deployment/api TCP/8080: denied"),
        "{text}"
    );
    assert!(text.contains("api-from-gateway"), "{text}");
    assert!(
        text.contains("paths: 1 breaking, 0 newly exposed"),
        "{text}"
    );
    // The frontend path did not change.
    assert!(
        !text.contains("shop/deployment/frontend: allowed"),
        "{text}"
    );

    // JSON and Markdown carry the same change.
    let o = run(None, &["diff", o_s, n_s, "-o", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let paths = v["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 1, "{v}");
    assert_eq!(paths[0]["change"], "breaking");
    assert_eq!(paths[0]["backend"], "shop/deployment/api");
    assert_eq!(paths[0]["service"], "shop/api:80");
    assert_eq!(paths[0]["old"]["decision"], "allowed");
    assert_eq!(paths[0]["new"]["decision"], "denied");
    assert!(paths[0]["new"]["failing"]
        .as_str()
        .unwrap()
        .starts_with("ingress -> backend: at the backend (ingress): ingress (Cilium's Envoy) -> shop/deployment/api"));
    let o = run(None, &["diff", o_s, n_s, "-o", "markdown"]);
    assert_eq!(o.status.code(), Some(1));
    let md = stdout(&o);
    assert!(md.contains(":x: paths broken."), "{md}");
    assert!(!md.contains(":white_check_mark:"), "{md}");
    assert!(
        md.contains(&format!("| :x: breaking | {API_PATH} | allowed -> denied | ingress -> backend: at the backend (ingress)")),
        "{md}"
    );

    // Only connectivity: the old gate (green); explicitly off: green.
    let o = run(None, &["diff", o_s, n_s, "--fail-on", "world-exposure"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = run(None, &["diff", o_s, n_s, "--fail-on", "none"]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(None, &["diff", o_s, n_s, "--fail-on", "none,breaking"]);
    assert_eq!(o.status.code(), Some(1));

    // The repair is newly exposed path, listed but not failing by default.
    let o = run(None, &["diff", n_s, o_s]);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("EXPOSURE {API_PATH}: denied -> allowed")),
        "{text}"
    );
    let o = run(None, &["diff", n_s, o_s, "--fail-on", "path-exposure"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(None, &["diff", n_s, o_s, "--fail-on", "any"]);
    assert_eq!(o.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_service_left_without_pods_breaks_its_paths() {
    let d = tmp("nopods");
    let (old, new) = (d.join("old"), d.join("new"));
    copy_shop(&old);
    copy_shop(&new);
    // The api Service now selects nothing.
    let p = new.join("workloads.yaml");
    let text = std::fs::read_to_string(&p).unwrap();
    let (head, tail) = text
        .split_once("name: api\n  namespace: shop\nspec:\n  selector: {app: api}")
        .unwrap();
    std::fs::write(
        &p,
        format!("{head}name: api\n  namespace: shop\nspec:\n  selector: {{app: api-v2}}{tail}"),
    )
    .unwrap();
    let o = run(
        None,
        &["diff", old.to_str().unwrap(), new.to_str().unwrap()],
    );
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}{}", stderr(&o));
    assert!(
        text.contains(&format!("BREAKING {API_PATH}: allowed -> absent")),
        "{text}"
    );
    assert!(text.contains("added Gateway shop/shop listener http :80 -> HTTPRoute shop/shop -> Service shop/api:80 -> (no backend pod): absent -> denied"), "{text}");
    assert!(text.contains("selects no pods"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.email=t@t", "-c", "user.name=t"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
}

#[test]
fn git_reads_files_whose_names_git_quotes() {
    let d = tmp("git-names");
    copy_shop(&d.join("k8s"));
    git(&d, &["init", "-q"]);
    git(&d, &["add", "."]);
    git(&d, &["commit", "-qm", "base"]);
    // A world-open policy for the api, in a file whose name git quotes
    // (tab, quotes, non-ASCII); another change behind a newline and a
    // backslash in a directory name.
    let open = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: api-open, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: api}}\n  ingress:\n    - fromEntities: [world]\n";
    std::fs::write(d.join("k8s/pol\ticy \"ü\".yaml"), open).unwrap();
    let odd = d.join("k8s/sub\\dir\nx");
    std::fs::create_dir_all(&odd).unwrap();
    std::fs::write(
        odd.join("front.yml"),
        open.replace("api-open", "front-open")
            .replace("app: api", "app: frontend"),
    )
    .unwrap();
    git(&d, &["add", "."]);
    git(&d, &["commit", "-qm", "open"]);

    let o = run(
        Some(&d),
        &["diff", "--git", "HEAD~1", "HEAD", "--path", "k8s"],
    );
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}{}", stderr(&o));
    assert!(
        text.contains("added CiliumNetworkPolicy shop/api-open (HEAD:k8s/pol\\ticy \"ü\".yaml:1)"),
        "{text}"
    );
    assert!(
        text.contains(
            "added CiliumNetworkPolicy shop/front-open (HEAD:k8s/sub\\\\dir\\nx/front.yml:1)"
        ),
        "{text}"
    );
    assert!(
        text.contains("+ world -> shop/deployment/api TCP/* UDP/* SCTP/*  [WORLD EXPOSURE]"),
        "{text}"
    );
    // From a subdirectory: paths are relative to it, read from the root.
    let o = run(
        Some(&d.join("k8s")),
        &["diff", "--git", "HEAD~1", "HEAD", "--path", "."],
    );
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("shop/api-open"), "{}", stdout(&o));
    let _ = std::fs::remove_dir_all(&d);
}
