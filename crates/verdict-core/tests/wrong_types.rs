#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Types in every field of every kind: a valid example of each kind verdict
//! reads, and for every field path in it the value replaced by a value of
//! each other type. Nothing panics, every analysis still runs, and the
//! input error names the field path at its line — unless Kubernetes really
//! accepts that type there (listed in `ACCEPTED`, with the reason).

use serde_json::{json, Value};
use std::collections::BTreeMap;
use verdict_core::engine::Engine;
use verdict_core::ingest::{ClusterConfig, Inventory};
use verdict_core::paths::{paths, PathOptions};
use verdict_core::routes::Routing;
use verdict_core::source::Severity;

fn examples() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "shop", "labels": {"team": "a"}}}),
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"serviceAccountName": "web", "hostNetwork": false,
                "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"template": {"metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 9000}]}]}}}}),
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "job", "namespace": "shop"},
            "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"app": "job"}},
                "spec": {"containers": [{"name": "c"}]}}}}}}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "type": "ClusterIP",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "np", "namespace": "shop"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}}],
                    "ports": [{"protocol": "TCP", "port": 8080, "endPort": 8090}]}]}}),
        json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": "cnp", "namespace": "shop"},
            "spec": {"endpointSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"fromEntities": ["world"], "toPorts": [{"ports": [{"port": "8080", "protocol": "TCP"}]}]}],
                "egress": [{"toCIDR": ["10.0.0.0/8"]}]}}),
        json!({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
            "metadata": {"name": "ccnp"},
            "spec": {"endpointSelector": {}, "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"app": "x"}}]}]}}),
        json!({"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": "cnp-admin"},
            "spec": {"tier": "Admin", "priority": 10,
                "subject": {"namespaces": {"matchLabels": {"team": "a"}}},
                "ingress": [{"name": "deny", "action": "Deny",
                    "from": [{"namespaces": {"matchLabels": {"team": "b"}}}],
                    "protocols": [{"tcp": {"destinationPort": {"number": 80}}}]}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "cilium"},
            "spec": {"controllerName": "io.cilium/gateway-controller", "description": "d"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "shop"},
            "spec": {"gatewayClassName": "cilium", "listeners": [
                {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "shop.example.com",
                 "allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"team": "a"}}},
                    "kinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]}},
                {"name": "https", "port": 443, "protocol": "HTTPS",
                 "tls": {"mode": "Terminate", "certificateRefs": [{"name": "cert"}]}}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"parentRefs": [{"name": "gw", "sectionName": "http", "port": 80}],
                "hostnames": ["shop.example.com"],
                "rules": [{"name": "main",
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"},
                        "headers": [{"type": "Exact", "name": "x-v", "value": "1"}],
                        "queryParams": [{"name": "q", "value": "1"}], "method": "GET"}],
                    "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-a", "value": "b"}], "remove": ["x-c"]}}],
                    "backendRefs": [{"name": "web", "port": 80, "weight": 1}],
                    "timeouts": {"request": "10s"}}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
            "metadata": {"name": "grpc", "namespace": "shop"},
            "spec": {"parentRefs": [{"name": "gw"}],
                "rules": [{"matches": [{"method": {"service": "shop.Cart", "method": "Get"}}],
                    "backendRefs": [{"name": "web", "port": 80}]}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TLSRoute",
            "metadata": {"name": "tls", "namespace": "shop"},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["a.example.com"],
                "rules": [{"backendRefs": [{"name": "web", "port": 443}]}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TCPRoute",
            "metadata": {"name": "tcp", "namespace": "shop"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "web", "port": 5432}]}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
            "metadata": {"name": "rg", "namespace": "shop"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "other"}],
                "to": [{"group": "", "kind": "Service", "name": "web"}]}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "cilium"},
            "spec": {"controller": "cilium.io/ingress-controller",
                "parameters": {"apiGroup": "cilium.io", "kind": "Config", "name": "c", "scope": "Cluster"}}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"ingressClassName": "cilium",
                "tls": [{"hosts": ["shop.example.com"], "secretName": "cert"}],
                "rules": [{"host": "shop.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
                    {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}}),
    ]
}

/// (kind, field path, type written) that Kubernetes accepts, and why.
const ACCEPTED: &[(&str, &str, &str, &str)] = &[
    (
        "Service",
        "spec.ports[0].targetPort",
        "string",
        "int-or-string: a port name",
    ),
    (
        "NetworkPolicy",
        "spec.ingress[0].ports[0].port",
        "string",
        "int-or-string: a named port",
    ),
    (
        "CiliumNetworkPolicy",
        "spec.ingress[0].toPorts[0].ports[0].port",
        "integer",
        "read as its decimal text, with a warning (the CRD schema wants a string)",
    ),
];

/// Pretty JSON (which is YAML), recording the line each field path's value
/// starts on.
fn render(
    v: &Value,
    path: &str,
    indent: usize,
    out: &mut String,
    lines: &mut BTreeMap<String, u32>,
) {
    let line = out.matches('\n').count() as u32 + 1;
    if !path.is_empty() {
        lines.insert(path.to_string(), line);
    }
    let pad = "  ".repeat(indent + 1);
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push_str("{\n");
            for (i, (k, x)) in m.iter().enumerate() {
                out.push_str(&format!("{pad}{}: ", serde_json::to_string(k).unwrap()));
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                render(x, &p, indent + 1, out, lines);
                out.push_str(if i + 1 < m.len() { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{}}}", "  ".repeat(indent)));
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad);
                render(x, &format!("{path}[{i}]"), indent + 1, out, lines);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{}]", "  ".repeat(indent)));
        }
        _ => out.push_str(&serde_json::to_string(v).unwrap()),
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

fn set(v: &mut Value, path: &str, new: Value) {
    let mut cur = v;
    for part in path.split('.') {
        let (key, idx) = match part.split_once('[') {
            Some((k, rest)) => (
                k,
                rest.trim_end_matches(']')
                    .split("][")
                    .map(|i| i.parse::<usize>().unwrap())
                    .collect::<Vec<usize>>(),
            ),
            None => (part, Vec::new()),
        };
        cur = &mut cur[key];
        for i in idx {
            if let Value::Array(a) = cur {
                if a.len() == i {
                    a.push(Value::Null);
                }
            }
            cur = &mut cur[i];
        }
    }
    *cur = new;
}

struct Loaded {
    inv: Inventory,
    routing: Routing,
}

fn load(text: &str) -> Loaded {
    let mut inv = Inventory::new(ClusterConfig::default());
    inv.load_text("t.yaml", text);
    inv.complete_namespaces();
    let routing = Routing::from_inventory(&inv);
    let engine = Engine::new(&inv);
    let report = paths(&engine, &routing, &PathOptions::default());
    let _ = report.to_text();
    serde_json::to_string(&report).unwrap();
    Loaded { inv, routing }
}

fn errors(l: &Loaded) -> Vec<String> {
    l.inv
        .diagnostics
        .iter()
        .chain(&l.routing.diagnostics)
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}: {}", d.location, d.message))
        .collect()
}

#[test]
fn valid_examples_load_without_errors() {
    for ex in examples() {
        let mut text = String::new();
        render(&ex, "", 0, &mut text, &mut BTreeMap::new());
        let l = load(&text);
        assert_eq!(errors(&l), Vec::<String>::new(), "{}", ex["kind"]);
        let kind = ex["kind"].as_str().unwrap();
        let read = l
            .inv
            .policies
            .iter()
            .any(|p| p.object.kind == kind && p.rejected.is_none())
            || l.inv.routing.iter().any(|r| r.object.kind == kind)
            || l.inv.workloads.iter().any(|w| w.object.kind == kind)
            || l.inv.services.iter().any(|s| s.object.kind == kind)
            || (kind == "Namespace" && l.inv.namespaces.contains_key("shop"));
        assert!(read, "{kind} was not read");
    }
}

#[test]
fn every_field_of_every_kind_refuses_every_wrong_type() {
    let wrong = [
        json!("x"),
        json!(7),
        json!(true),
        json!(["x"]),
        json!({"x": "y"}),
        Value::Null,
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for ex in examples() {
        let kind = ex["kind"].as_str().unwrap().to_string();
        let mut lines = BTreeMap::new();
        render(&ex, "", 0, &mut String::new(), &mut lines);
        for path in lines.keys() {
            if matches!(path.as_str(), "apiVersion" | "kind") {
                continue;
            }
            for w in &wrong {
                let mut v = ex.clone();
                let old = type_of(&lookup(&ex, path));
                if old == type_of(w) {
                    continue;
                }
                set(&mut v, path, w.clone());
                let mut text = String::new();
                let mut mlines = BTreeMap::new();
                render(&v, "", 0, &mut text, &mut mlines);
                let l = load(&text);
                checked += 1;
                let errs = errors(&l);
                let accepted = ACCEPTED
                    .iter()
                    .any(|(k, p, t, _)| *k == kind && p == path && *t == type_of(w));
                if w.is_null() || accepted {
                    continue;
                }
                // The error names the field (or the list or mapping that
                // holds it) at the line of the value or of a field holding it.
                let mut at: Vec<u32> = Vec::new();
                let mut p = path.as_str();
                loop {
                    if let Some(l) = mlines.get(p) {
                        at.push(*l);
                    }
                    match p.rfind(['.', '[']) {
                        Some(i) => p = &p[..i],
                        None => break,
                    }
                }
                let named = l.inv.diagnostics.iter().any(|d| {
                    d.severity == Severity::Error
                        && d.location.file.as_ref() == "t.yaml"
                        && at.contains(&d.location.line)
                        && d.message.contains(&format!("`{path}"))
                });
                if !named {
                    failures.push(format!("{kind} {path} = {w}: {errs:?}"));
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} mutations");
    assert!(
        failures.is_empty(),
        "{} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn lookup(v: &Value, path: &str) -> Value {
    let mut cur = v;
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        cur = &cur[key];
        for i in rest.split('[').filter(|s| !s.is_empty()) {
            cur = &cur[i.trim_end_matches(']').parse::<usize>().unwrap()];
        }
    }
    cur.clone()
}

/// The example of `kind` with `path` set to `value`, loaded: the error
/// holding `needle` is at the line of the field or of a field holding it,
/// and a routing object is refused (not analysed).
fn assert_refused(kind: &str, path: &str, value: Value, needle: &str) {
    let mut v = examples().into_iter().find(|e| e["kind"] == kind).unwrap();
    set(&mut v, path, value);
    let mut text = String::new();
    let mut lines = BTreeMap::new();
    render(&v, "", 0, &mut text, &mut lines);
    let l = load(&text);
    let mut at = Vec::new();
    let mut p = path;
    loop {
        if let Some(x) = lines.get(p) {
            at.push(*x);
        }
        match p.rfind(['.', '[']) {
            Some(i) => p = &p[..i],
            None => break,
        }
    }
    let found = l.inv.diagnostics.iter().any(|d| {
        d.severity == Severity::Error && at.contains(&d.location.line) && d.message.contains(needle)
    });
    assert!(
        found,
        "{kind} {path}: no `{needle}` at lines {at:?} in {:#?}\n{text}",
        errors(&l)
    );
    // An unknown field is pruned (or refused under strict validation; both
    // reported): the rest of the object is read.
    if verdict_core::ingest::ROUTING_KINDS.contains(&kind) && !needle.starts_with("unknown field") {
        assert!(
            !l.inv.routing.iter().any(|r| r.object.kind == kind),
            "{kind} {path}: refused by the API server but analysed"
        );
    }
}

#[test]
fn bad_values_of_routing_kinds_are_refused_with_the_api_server_words() {
    let hosts: Vec<Value> = (0..17)
        .map(|i| json!(format!("h{i}.example.com")))
        .collect();
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("Gateway", "spec.listeners[0].port", json!(0), "Invalid value: 0: should be greater than or equal to 1"),
        ("Gateway", "spec.listeners[0].port", json!(65536), "Invalid value: 65536: should be less than or equal to 65535"),
        ("Gateway", "spec.listeners[0].protocol", json!("HT TP"), "`spec.listeners[0].protocol`: Invalid value: \"HT TP\": should match"),
        ("Gateway", "spec.listeners[1].name", json!("http"), "`spec.listeners[1].name`: Duplicate value: \"http\""),
        ("Gateway", "spec.listeners[0].tls", json!({"certificateRefs": [{"name": "c"}]}), "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"),
        ("Gateway", "spec.listeners[1].tls", json!({"mode": "Terminate"}), "certificateRefs or options must be specified when mode is Terminate"),
        ("Gateway", "spec.listeners[1].tls.mode", json!("Passthrough"), "tls mode must be Terminate for protocol HTTPS"),
        ("Gateway", "spec.listeners[0].allowedRoutes.namespaces.from", json!("Everyone"), "Unsupported value: \"Everyone\": supported values: \"All\", \"Selector\", \"Same\""),
        ("Gateway", "spec.listeners[0].hostname", json!("*.*.example.com"), "`spec.listeners[0].hostname`: Invalid value"),
        ("Gateway", "spec.listeners", json!([]), "`spec.listeners`: Invalid value: 0: should have at least 1 items"),
        ("Gateway", "spec.gatewayClassName", Value::Null, "`spec.gatewayClassName`: Required value"),
        ("HTTPRoute", "spec.rules[0].matches[0].path.type", json!("Prefix"), "Unsupported value: \"Prefix\": supported values: \"Exact\", \"PathPrefix\", \"RegularExpression\""),
        ("HTTPRoute", "spec.rules[0].matches[0].path.value", json!("api"), "value must be an absolute path and start with '/'"),
        ("HTTPRoute", "spec.rules[0].matches[0].path.value", json!("/a//b"), "must not contain '//'"),
        ("HTTPRoute", "spec.rules[0].matches[0].path.value", json!("/a b"), "must only contain valid characters"),
        ("HTTPRoute", "spec.rules[0].backendRefs[0].port", Value::Null, "Must have port for Service reference"),
        ("HTTPRoute", "spec.rules[0].backendRefs[0].port", json!(0), "should be greater than or equal to 1"),
        ("HTTPRoute", "spec.rules[0].backendRefs[0].weight", json!(-1), "should be greater than or equal to 0"),
        ("HTTPRoute", "spec.hostnames[0]", json!("Shop.example.com"), "`spec.hostnames[0]`: Invalid value: \"Shop.example.com\": should match"),
        ("HTTPRoute", "spec.hostnames", Value::Array(hosts), "`spec.hostnames`: Too many: 17: must have at most 16 items"),
        ("HTTPRoute", "spec.rules[0].matches[0].method", json!("get"), "Unsupported value: \"get\""),
        ("HTTPRoute", "spec.rules[0].filters[0].type", json!("RequestRedirect"), "filter.requestRedirect must be specified for RequestRedirect filter.type"),
        ("HTTPRoute", "spec.rules[0].matches[0].headers[1]", json!({"name": "X-V", "value": "2"}), "Duplicate value: \"X-V\""),
        ("HTTPRoute", "spec.parentRefs[1]", json!({"name": "gw", "sectionName": "http", "port": 80}), "sectionName or port must be unique"),
        ("HTTPRoute", "spec.parentRefs[1]", json!({"name": "gw"}), "sectionName or port must be specified"),
        ("HTTPRoute", "spec.rules[0].timeouts.request", json!("10 s"), "should match"),
        ("HTTPRoute", "spec.rules[0].matches[0].headers[0].name", json!(":authority"), "should match"),
        ("HTTPRoute", "spec.rules[0].bogus", json!(1), "unknown field `spec.rules[0].bogus`"),
        ("GRPCRoute", "spec.rules[0].matches[0].method", json!({}), "One or both of 'service' or 'method' must be specified"),
        ("GRPCRoute", "spec.rules[0].matches[0].method.service", json!("shop/Cart"), "service must only contain valid characters"),
        ("TCPRoute", "spec.rules[0].backendRefs", json!([]), "should have at least 1 items"),
        ("TLSRoute", "spec.rules", Value::Null, "`spec.rules`: Required value"),
        ("ReferenceGrant", "spec.from[0].kind", json!(""), "`spec.from[0].kind`: Invalid value: \"\": should be at least 1 chars long"),
        ("ReferenceGrant", "spec.to", json!([]), "should have at least 1 items"),
        ("GatewayClass", "spec.controllerName", json!("cilium"), "`spec.controllerName`: Invalid value: \"cilium\": should match"),
        ("Ingress", "spec.rules[0].http.paths[0].pathType", json!("Regex"), "Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""),
        ("Ingress", "spec.rules[0].http.paths[0].path", json!("api"), "Invalid value: \"api\": must be an absolute path"),
        ("Ingress", "spec.rules[0].http.paths[0].path", json!("/a/../b"), "must not contain '/../'"),
        ("Ingress", "spec.rules[0].http.paths[0].backend.service.port", json!({"number": 80, "name": "http"}), "cannot set both port name & port number"),
        ("Ingress", "spec.rules[0].http.paths[0].backend.service.port", json!({}), "port name or number is required"),
        ("Ingress", "spec.rules[0].http.paths[0].backend.service.port.number", json!(70000), "must be between 1 and 65535, inclusive"),
        ("Ingress", "spec.rules[0].http.paths[0].backend.service.port.number", json!("80"), "must be an integer, found string"),
        ("Ingress", "spec.rules[0].http.paths[0].backend.resource", json!({"kind": "Bucket", "name": "b"}), "cannot set both resource and service backends"),
        ("Ingress", "spec.rules[0].http.paths[0].backend", json!({}), "resource or service backend is required"),
        ("Ingress", "spec.rules[0].http.paths[0].backend.service.name", json!("9web"), "DNS-1035"),
        ("Ingress", "spec.rules[0].http.paths[1].backend.service.port.name", json!("HTTP"), "must contain only alpha-numeric characters"),
        ("Ingress", "spec.rules[0].host", json!("10.0.0.1"), "must be a DNS name, not an IP address"),
        ("Ingress", "spec.rules[0].host", json!("*.*.example.com"), "wildcard"),
        ("Ingress", "spec.rules[0].http.paths", json!([]), "`spec.rules[0].http.paths`: Required value"),
        ("Ingress", "spec", json!({}), "either `defaultBackend` or `rules` must be specified"),
        ("Ingress", "spec.tls[0].hosts[0]", json!("Shop"), "spec.tls[0].hosts[0]"),
        ("IngressClass", "spec.parameters.scope", json!("Namespace"), "`spec.parameters.namespace`: Required value"),
        ("IngressClass", "spec.parameters.scope", json!("Global"), "Unsupported value: \"Global\""),
        ("IngressClass", "spec.controller", json!("nginx"), "must be a domain-prefixed path"),
        ("Service", "spec.ports[0].targetPort", json!("8080"), "must contain at least one letter"),
        ("Service", "spec.ports[0].protocol", json!("tcp"), "`tcp` is not TCP, UDP or SCTP"),
    ];
    for (kind, path, value, needle) in cases {
        assert_refused(kind, path, value, needle);
    }
}

#[test]
fn schema_patterns_compile() {
    for p in verdict_core::ingest::routing_schema::PATTERNS {
        assert!(p.is_match("").is_some(), "{}", p.source);
    }
}
