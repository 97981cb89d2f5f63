//! The Go validation of networking.k8s.io/v1 Ingress and IngressClass
//! (kubernetes/kubernetes `pkg/apis/networking/validation/validation.go`).

use super::{has, items, text};
use crate::decode::{dns1123_label_error, dns1123_subdomain_error, Ctx};
use crate::ingest::schema::json_str;
use crate::yaml::{Node, Value};

fn invalid(ctx: &mut Ctx, n: &Node, path: &str, value: &str, why: &str) {
    ctx.error(n, format!("`{path}`: Invalid value: {value:?}: {why}"));
}

pub(super) fn ingress(ctx: &mut Ctx, _root: &Node, spec: &Node) {
    let rules = items(spec.get("rules"));
    if rules.is_empty() && !has(spec, "defaultBackend") {
        ctx.error(
            spec,
            "`spec`: Invalid value: \"null\": either `defaultBackend` or `rules` must be specified"
                .to_string(),
        );
    }
    if let Some(b) = spec.get("defaultBackend") {
        ingress_backend(ctx, b, "spec.defaultBackend");
    }
    for (i, rule) in rules.iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        if let Some(h) = rule.get("host") {
            if let Some(host) = json_str(h).filter(|s| !s.is_empty()) {
                dns_host(ctx, h, &format!("{p}.host"), host, true);
            }
        }
        let Some(http) = rule
            .get("http")
            .filter(|x| matches!(x.value, Value::Map(_)))
        else {
            continue;
        };
        let paths = items(http.get("paths"));
        if paths.is_empty()
            && http
                .get("paths")
                .is_some_and(|x| matches!(x.value, Value::Seq(_)))
        {
            ctx.error(http, format!("`{p}.http.paths`: Required value"));
        }
        for (j, pth) in paths.iter().enumerate() {
            let pp = format!("{p}.http.paths[{j}]");
            ingress_path(ctx, pth, &pp);
        }
    }
    for (i, t) in items(spec.get("tls")).iter().enumerate() {
        for (j, h) in items(t.get("hosts")).iter().enumerate() {
            if let Some(host) = json_str(h) {
                dns_host(ctx, h, &format!("spec.tls[{i}].hosts[{j}]"), host, false);
            }
        }
        if let Some(s) = t.get("secretName") {
            if let Some(name) = json_str(s).filter(|x| !x.is_empty()) {
                if let Some(why) = dns1123_subdomain_error(name) {
                    invalid(ctx, s, &format!("spec.tls[{i}].secretName"), name, &why);
                }
            }
        }
    }
    if let Some(c) = spec.get("ingressClassName") {
        if let Some(name) = json_str(c) {
            if let Some(why) = dns1123_subdomain_error(name) {
                invalid(ctx, c, "spec.ingressClassName", name, &why);
            }
        }
    }
}

/// An Ingress host: a DNS-1123 subdomain, or a wildcard one (`*.x`), and
/// (for rules) not an IP address.
fn dns_host(ctx: &mut Ctx, n: &Node, path: &str, host: &str, no_ip: bool) {
    if no_ip && host.parse::<std::net::IpAddr>().is_ok() {
        invalid(ctx, n, path, host, "must be a DNS name, not an IP address");
        return;
    }
    let why = if host.contains('*') {
        match host.strip_prefix("*.") {
            Some(rest) => dns1123_subdomain_error(rest)
                .map(|w| format!("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain: {w}")),
            None => Some("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character".to_string()),
        }
    } else {
        dns1123_subdomain_error(host)
    };
    if let Some(why) = why {
        invalid(ctx, n, path, host, &why);
    }
}

fn ingress_path(ctx: &mut Ctx, n: &Node, path: &str) {
    if !matches!(n.value, Value::Map(_)) {
        return;
    }
    let value = text(n, "path").unwrap_or_default();
    let vp = format!("{path}.path");
    let vn = n.get("path").unwrap_or(n);
    match n.get("pathType").map(|t| (t, json_str(t))) {
        None => {
            ctx.error(n, format!("`{path}.pathType`: Required value: pathType must be specified"));
            return;
        }
        Some((_, None)) => return,
        Some((_, Some("Exact" | "Prefix"))) => {
            if !value.starts_with('/') {
                invalid(ctx, vn, &vp, value, "must be an absolute path");
            }
            for bad in ["//", "/./", "/../", "%2f", "%2F"] {
                if value.contains(bad) {
                    invalid(ctx, vn, &vp, value, &format!("must not contain '{bad}'"));
                }
            }
            for bad in ["/..", "/."] {
                if value.ends_with(bad) {
                    invalid(ctx, vn, &vp, value, &format!("cannot end with '{bad}'"));
                }
            }
        }
        Some((_, Some("ImplementationSpecific"))) => {
            if !value.is_empty() && !value.starts_with('/') {
                invalid(ctx, vn, &vp, value, "must be an absolute path");
            }
        }
        Some((t, Some(other))) => ctx.error(
            t,
            format!("`{path}.pathType`: Unsupported value: {other:?}: supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""),
        ),
    }
    if let Some(b) = n.get("backend") {
        ingress_backend(ctx, b, &format!("{path}.backend"));
    }
}

fn ingress_backend(ctx: &mut Ctx, n: &Node, path: &str) {
    if !matches!(n.value, Value::Map(_)) {
        return;
    }
    let service = n.get("service").filter(|s| !s.is_null());
    match (service, has(n, "resource")) {
        (Some(_), true) => {
            ctx.error(
                n,
                format!(
                    "`{path}`: Invalid value: \"\": cannot set both resource and service backends"
                ),
            );
        }
        (None, true) => {
            let r = n.get("resource").unwrap_or(n);
            for key in ["kind", "name"] {
                if text(r, key).unwrap_or_default().is_empty() {
                    ctx.error(r, format!("`{path}.resource.{key}`: Required value"));
                }
            }
        }
        (None, false) => {
            ctx.error(
                n,
                format!("`{path}`: Invalid value: \"\": resource or service backend is required"),
            );
        }
        (Some(s), false) => {
            match text(s, "name").unwrap_or_default() {
                "" => ctx.error(s, format!("`{path}.service.name`: Required value")),
                name => {
                    if let Some(why) = dns1035_label_error(name) {
                        let at = s.get("name").unwrap_or(s);
                        invalid(ctx, at, &format!("{path}.service.name"), name, &why);
                    }
                }
            }
            let port = s.get("port");
            let pname = port.and_then(|p| text(p, "name")).unwrap_or_default();
            let number = port
                .and_then(|p| p.get("number"))
                .and_then(Node::as_str)
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(0);
            let at = port.unwrap_or(s);
            if !pname.is_empty() && number != 0 {
                ctx.error(
                    at,
                    format!(
                        "`{path}`: Invalid value: \"\": cannot set both port name & port number"
                    ),
                );
            } else if !pname.is_empty() {
                if let Some(why) = port_name_error(pname) {
                    invalid(ctx, at, &format!("{path}.service.port.name"), pname, &why);
                }
            } else if number != 0 {
                if !(1..=65535).contains(&number) {
                    ctx.error(at, format!("`{path}.service.port.number`: Invalid value: {number}: must be between 1 and 65535, inclusive"));
                }
            } else {
                ctx.error(
                    at,
                    format!("`{path}`: Required value: port name or number is required"),
                );
            }
        }
    }
}

/// A Service name: a DNS-1035 label (starts with a letter).
fn dns1035_label_error(s: &str) -> Option<String> {
    if let Some(why) = dns1123_label_error(s) {
        return Some(why);
    }
    (!s.starts_with(|c: char| c.is_ascii_lowercase())).then(|| {
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character".to_string()
    })
}

/// `IsValidPortName` (an IANA_SVC_NAME).
fn port_name_error(s: &str) -> Option<String> {
    if s.len() > 15 {
        return Some("must be no more than 15 characters".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Some(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
        );
    }
    if s.contains("--") {
        return Some("must not contain consecutive hyphens".into());
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        return Some("must contain at least one letter (a-z)".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("must not begin or end with a hyphen".into());
    }
    None
}

pub(super) fn ingress_class(ctx: &mut Ctx, spec: &Node) {
    match text(spec, "controller").unwrap_or_default() {
        "" => ctx.error(spec, "`spec.controller`: Required value".to_string()),
        c => {
            let at = spec.get("controller").unwrap_or(spec);
            if c.len() > 250 {
                ctx.error(
                    at,
                    "`spec.controller`: Too long: may not be more than 250 bytes".to_string(),
                );
            }
            // IsDomainPrefixedPath: a DNS-1123 subdomain, `/`, a path.
            match c.split_once('/') {
                Some((host, rest)) if !rest.is_empty() => {
                    if let Some(why) = dns1123_subdomain_error(host) {
                        invalid(ctx, at, "spec.controller", c, &why);
                    }
                }
                _ => invalid(
                    ctx,
                    at,
                    "spec.controller",
                    c,
                    "must be a domain-prefixed path (such as \"acme.io/foo\")",
                ),
            }
        }
    }
    let Some(params) = spec
        .get("parameters")
        .filter(|p| matches!(p.value, Value::Map(_)))
    else {
        return;
    };
    let pp = "spec.parameters";
    for key in ["kind", "name"] {
        if text(params, key).unwrap_or_default().is_empty() {
            ctx.error(params, format!("`{pp}.{key}`: Required value"));
        }
    }
    // networking/v1 defaults scope to Cluster.
    let scope = text(params, "scope").unwrap_or("Cluster");
    let namespaced = has(params, "namespace");
    match scope {
        "Namespace" if !namespaced => ctx.error(
            params,
            format!("`{pp}.namespace`: Required value: `parameters.scope` is set to 'Namespace'"),
        ),
        "Cluster" if namespaced => ctx.error(
            params,
            format!("`{pp}.namespace`: Forbidden: `parameters.scope` is set to 'Cluster'"),
        ),
        "Namespace" | "Cluster" => {}
        other => ctx.error(
            params,
            format!("`{pp}.scope`: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespace\""),
        ),
    }
}
