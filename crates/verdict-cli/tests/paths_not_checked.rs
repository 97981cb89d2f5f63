#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict paths` keeps "not checked" apart from allowed and denied: a
//! path through controller pods, a Service or pods that are not in the
//! input is neither, and it is never a green exit.

mod common;
use common::{stdout, tmp, verdict};

use std::path::Path;

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: api-0, namespace: shop, labels: {app: api}}
spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec:
  selector: {app: nothing-here}
  ports: [{port: 80, targetPort: 8080}]
"#;

/// An ingress-nginx Ingress whose controller pods are not in the input (a
/// Helm release, say), and a Cilium Ingress to a Service that selects no
/// pods and to a Service that is not in the input.
const INGRESSES: &str = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: via-nginx, namespace: shop}
spec:
  ingressClassName: nginx
  rules:
    - http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: via-cilium, namespace: shop}
spec:
  ingressClassName: cilium
  rules:
    - http:
        paths:
          - {path: /empty, pathType: Prefix, backend: {service: {name: empty, port: {number: 80}}}}
          - {path: /ghost, pathType: Prefix, backend: {service: {name: ghost, port: {number: 80}}}}
"#;

/// The api pods admit only the ingress-nginx controller: any path from
/// Cilium's Envoy to them is denied by policy.
const API_POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
    - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: ingress-nginx}}]
"#;

fn write(d: &Path, files: &[(&str, &str)]) -> String {
    for (name, text) in files {
        std::fs::write(d.join(name), text).unwrap();
    }
    d.to_str().unwrap().to_string()
}

#[test]
fn paths_that_cannot_be_evaluated_are_not_checked_and_exit_2() {
    let d = tmp("only");
    let p = write(&d, &[("app.yaml", APP), ("ingresses.yaml", INGRESSES)]);
    let o = verdict(&["paths", &p]);
    let out = stdout(&o);
    assert!(
        out.contains("3 paths: 0 allowed, 0 denied, 3 not checked"),
        "{out}"
    );
    assert!(
        out.contains("shop/pod/api-0 targetPort 8080: NOT CHECKED (the pods of controller `k8s.io/ingress-nginx` are not in the input"),
        "{out}"
    );
    assert!(
        out.contains("-> Service shop/empty:80") && out.contains("NOT CHECKED"),
        "{out}"
    );
    assert!(!out.contains("DENIED"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("3 of 3 paths not checked"), "{err}");
    assert_eq!(o.status.code(), Some(2), "{out}");
    // --report-only accepts denials, not paths that were never checked.
    let o = verdict(&["paths", "--report-only", &p]);
    assert_eq!(o.status.code(), Some(2));

    let o = verdict(&["paths", "-o", "json", &p]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["summary"],
        serde_json::json!({"paths": 3, "allowed": 0, "denied": 0, "not_checked": 3})
    );
    let nginx = &v["entry_points"][0]["routes"][0]["backends"][0];
    assert_eq!(nginx["decision"], "not-checked");
    let path = &nginx["paths"][0];
    assert_eq!(path["decision"], "not-checked");
    assert!(path["not_checked"]
        .as_str()
        .unwrap()
        .contains("are not in the input"));
    let hops: Vec<&str> = path["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["decision"].as_str().unwrap())
        .collect();
    assert_eq!(hops, ["not-checked", "not-checked"]);
    let cilium = &v["entry_points"][1]["routes"][0]["backends"];
    for b in cilium.as_array().unwrap() {
        assert_eq!(b["decision"], "not-checked", "{b}");
        assert!(b["not_checked"].is_string(), "{b}");
    }

    let o = verdict(&["paths", "-o", "markdown", &p]);
    assert!(
        stdout(&o).contains("**3 paths: 0 allowed, 0 denied, 3 not checked**"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_denial_is_counted_apart_from_paths_not_checked() {
    let d = tmp("mixed");
    let cilium_to_api = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: direct, namespace: shop}
spec:
  ingressClassName: cilium
  rules:
    - http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
"#;
    let p = write(
        &d,
        &[
            ("app.yaml", APP),
            ("ingresses.yaml", INGRESSES),
            ("policy.yaml", API_POLICY),
            ("direct.yaml", cilium_to_api),
        ],
    );
    let o = verdict(&["paths", &p]);
    let out = stdout(&o);
    assert!(
        out.contains("4 paths: 0 allowed, 1 denied, 3 not checked"),
        "{out}"
    );
    assert_eq!(o.status.code(), Some(2), "{out}");
    // Without the unchecked paths, the denial alone exits 1.
    std::fs::remove_file(d.join("ingresses.yaml")).unwrap();
    let o = verdict(&["paths", &p]);
    assert!(
        stdout(&o).contains("1 path: 0 allowed, 1 denied, 0 not checked"),
        "{}",
        stdout(&o)
    );
    assert_eq!(o.status.code(), Some(1));
}

/// A backend pod whose name ends in Unicode whitespace (an invalid name,
/// reported) is still resolved by name and checked; it used to vanish and
/// leave its Service "denied" with no explanation.
#[test]
fn a_backend_named_with_trailing_unicode_space_is_checked() {
    let d = tmp("unresolved");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: \"web\\u0085\", namespace: shop, labels: {app: web}}\nspec: {containers: [{name: c, image: x}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: shop}\nspec:\n  ingressClassName: cilium\n  defaultBackend: {service: {name: web, port: {number: 80}}}\n";
    let p = write(
        &d,
        &[
            (
                "ns.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n",
            ),
            ("web.yaml", pod),
        ],
    );
    let o = verdict(&["paths", &p]);
    let out = stdout(&o);
    assert!(
        out.contains("1 path: 1 allowed, 0 denied, 0 not checked"),
        "{out}"
    );
    // The invalid name is an input error: exit 2 after the analysis.
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("web\\u{85}"), "{err}");
    assert_eq!(o.status.code(), Some(2));
}
