//! The value rules of the routing kinds beyond their structural schema:
//! the CEL rules (`x-kubernetes-validations`) of the Gateway API CRDs and
//! the Go validation of networking.k8s.io/v1 Ingress and IngressClass
//! (kubernetes/kubernetes `pkg/apis/networking/validation/validation.go`).
//! They run after the schema check and only look at well-typed values (a
//! wrong type is already reported there). Messages are the API server's.

use super::schema::json_str;
use crate::decode::{dns1123_label_error, dns1123_subdomain_error, Ctx};
use crate::yaml::{Node, Value};
use std::collections::BTreeMap;

fn items(n: Option<&Node>) -> &[Node] {
    n.and_then(Node::as_seq).unwrap_or(&[])
}

fn text<'n>(n: &'n Node, key: &str) -> Option<&'n str> {
    n.get(key).and_then(json_str)
}

fn has(n: &Node, key: &str) -> bool {
    n.get(key).is_some_and(|v| !v.is_null())
}

fn cel(ctx: &mut Ctx, n: &Node, path: &str, message: &str) {
    ctx.error(n, format!("`{path}`: Invalid value: \"object\": {message}"));
}

/// The checks of `kind` (its schema already checked).
pub fn check(ctx: &mut Ctx, kind: &str, root: &Node) {
    let Some(spec) = root
        .get("spec")
        .filter(|s| matches!(s.value, Value::Map(_)))
    else {
        return;
    };
    match kind {
        "Gateway" => gateway(ctx, spec),
        "HTTPRoute" | "GRPCRoute" | "TLSRoute" | "TCPRoute" | "UDPRoute" => route(ctx, kind, spec),
        "Ingress" => ingress(ctx, root, spec),
        "IngressClass" => ingress_class(ctx, spec),
        _ => {}
    }
}

fn gateway(ctx: &mut Ctx, spec: &Node) {
    let listeners = items(spec.get("listeners"));
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut combos: BTreeMap<(String, &str, &str), usize> = BTreeMap::new();
    for (i, l) in listeners.iter().enumerate() {
        let p = format!("spec.listeners[{i}]");
        let protocol = text(l, "protocol").unwrap_or_default();
        if matches!(protocol, "HTTP" | "TCP" | "UDP") && has(l, "tls") {
            cel(
                ctx,
                l,
                &p,
                "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
            );
        }
        if let Some(tls) = l.get("tls").filter(|t| matches!(t.value, Value::Map(_))) {
            let mode = text(tls, "mode").unwrap_or("Terminate");
            if protocol == "HTTPS" && mode != "Terminate" {
                cel(ctx, l, &p, "tls mode must be Terminate for protocol HTTPS");
            }
            let refs = items(tls.get("certificateRefs")).len();
            let options = match tls.get("options").map(|o| &o.value) {
                Some(Value::Map(m)) => m.len(),
                _ => 0,
            };
            if mode == "Terminate" && refs == 0 && options == 0 {
                cel(
                    ctx,
                    tls,
                    &format!("{p}.tls"),
                    "certificateRefs or options must be specified when mode is Terminate",
                );
            }
        }
        let hostname = text(l, "hostname").unwrap_or_default();
        if matches!(protocol, "TCP" | "UDP") && !hostname.is_empty() {
            cel(
                ctx,
                l,
                &p,
                "hostname must not be specified for protocols ['TCP', 'UDP']",
            );
        }
        if let Some(name) = text(l, "name") {
            if let Some(first) = names.insert(name, i) {
                ctx.error(
                    l,
                    format!("`{p}.name`: Duplicate value: {name:?} (also spec.listeners[{first}]); Listener name must be unique within the Gateway"),
                );
            }
        }
        if let Some(port) = l.get("port").and_then(Node::as_str) {
            if let Some(first) = combos.insert((port.to_string(), protocol, hostname), i) {
                cel(
                    ctx,
                    l,
                    &p,
                    &format!("Combination of port, protocol and hostname must be unique for each listener (also spec.listeners[{first}])"),
                );
            }
        }
    }
}

fn route(ctx: &mut Ctx, kind: &str, spec: &Node) {
    parent_refs(ctx, spec);
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, rule) in items(spec.get("rules")).iter().enumerate() {
        let p = format!("spec.rules[{i}]");
        if let Some(name) = text(rule, "name") {
            if let Some(first) = names.insert(name, i) {
                ctx.error(
                    rule,
                    format!("`{p}.name`: Duplicate value: {name:?} (also spec.rules[{first}]); Rule name must be unique within the route"),
                );
            }
        }
        let backends = items(rule.get("backendRefs"));
        for (j, b) in backends.iter().enumerate() {
            let bp = format!("{p}.backendRefs[{j}]");
            backend_port(ctx, b, &bp);
            filters(ctx, rule, b.get("filters"), &format!("{bp}.filters"));
        }
        filters(ctx, rule, rule.get("filters"), &format!("{p}.filters"));
        if kind == "HTTPRoute" {
            let redirect = items(rule.get("filters"))
                .iter()
                .any(|f| has(f, "requestRedirect"));
            if redirect && !backends.is_empty() {
                cel(
                    ctx,
                    rule,
                    &p,
                    "RequestRedirect filter must not be used together with backendRefs",
                );
            }
        }
        for (j, m) in items(rule.get("matches")).iter().enumerate() {
            let mp = format!("{p}.matches[{j}]");
            if let Some(path) = m.get("path").filter(|x| matches!(x.value, Value::Map(_))) {
                path_match(ctx, path, &format!("{mp}.path"));
            }
            if kind == "GRPCRoute" {
                if let Some(method) = m.get("method").filter(|x| matches!(x.value, Value::Map(_))) {
                    grpc_method(ctx, method, &format!("{mp}.method"));
                }
            }
            for key in ["headers", "queryParams"] {
                unique_names(ctx, m.get(key), &format!("{mp}.{key}"), true);
            }
        }
    }
}

/// `sectionName or port must be specified / unique when parentRefs
/// includes 2 or more references to the same parent`.
fn parent_refs(ctx: &mut Ctx, spec: &Node) {
    let refs = items(spec.get("parentRefs"));
    let key = |r: &Node| {
        (
            text(r, "group")
                .unwrap_or("gateway.networking.k8s.io")
                .to_string(),
            text(r, "kind").unwrap_or("Gateway").to_string(),
            text(r, "namespace").unwrap_or_default().to_string(),
            text(r, "name").unwrap_or_default().to_string(),
        )
    };
    let mut seen: BTreeMap<_, Vec<(usize, &Node)>> = BTreeMap::new();
    for (i, r) in refs.iter().enumerate() {
        seen.entry(key(r)).or_default().push((i, r));
    }
    for same in seen.values().filter(|v| v.len() > 1) {
        let mut sections = BTreeMap::new();
        for (i, r) in same {
            let p = format!("spec.parentRefs[{i}]");
            let section = text(r, "sectionName").unwrap_or_default();
            let port = r.get("port").and_then(Node::as_str).unwrap_or_default();
            if section.is_empty() && port.is_empty() {
                cel(ctx, r, &p, "sectionName or port must be specified when parentRefs includes 2 or more references to the same parent");
            } else if sections.insert((section, port), *i).is_some() {
                cel(ctx, r, &p, "sectionName or port must be unique when parentRefs includes 2 or more references to the same parent");
            }
        }
    }
}

/// `Must have port for Service reference`: group and kind are defaulted
/// ("" and Service) before the rule runs.
fn backend_port(ctx: &mut Ctx, b: &Node, path: &str) {
    if !matches!(b.value, Value::Map(_)) {
        return;
    }
    let group = text(b, "group").unwrap_or_default();
    let kind = text(b, "kind").unwrap_or("Service");
    if group.is_empty() && kind == "Service" && !has(b, "port") {
        cel(ctx, b, path, "Must have port for Service reference");
    }
}

fn filters(ctx: &mut Ctx, rule: &Node, list: Option<&Node>, path: &str) {
    let list = items(list);
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, f) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(ty) = text(f, "type") else { continue };
        *count.entry(ty).or_default() += 1;
        for (t, field) in [
            ("RequestHeaderModifier", "requestHeaderModifier"),
            ("ResponseHeaderModifier", "responseHeaderModifier"),
            ("RequestMirror", "requestMirror"),
            ("RequestRedirect", "requestRedirect"),
            ("URLRewrite", "urlRewrite"),
            ("ExtensionRef", "extensionRef"),
            ("CORS", "cors"),
            ("ExternalAuth", "externalAuth"),
        ] {
            if ty == t && !has(f, field) {
                cel(
                    ctx,
                    f,
                    &p,
                    &format!("filter.{field} must be specified for {t} filter.type"),
                );
            }
            if ty != t && has(f, field) {
                cel(
                    ctx,
                    f,
                    &p,
                    &format!("filter.{field} must be nil if the filter.type is not {t}"),
                );
            }
        }
        for field in ["requestHeaderModifier", "responseHeaderModifier"] {
            if let Some(m) = f.get(field) {
                for key in ["set", "add"] {
                    unique_names(ctx, m.get(key), &format!("{p}.{field}.{key}"), false);
                }
            }
        }
        if let Some(m) = f.get("requestMirror") {
            if let Some(b) = m.get("backendRef") {
                backend_port(ctx, b, &format!("{p}.requestMirror.backendRef"));
            }
        }
        for field in ["requestRedirect", "urlRewrite"] {
            let Some(x) = f.get(field) else { continue };
            if let Some(code) = x.get("statusCode").and_then(Node::as_str) {
                if !matches!(code, "301" | "302" | "303" | "307" | "308") {
                    ctx.error(
                        x,
                        format!("`{p}.{field}.statusCode`: Unsupported value: {code}: supported values: \"301\", \"302\", \"303\", \"307\", \"308\""),
                    );
                }
            }
            let Some(pm) = x.get("path") else { continue };
            let pp = format!("{p}.{field}.path");
            let ty = text(pm, "type").unwrap_or_default();
            for (t, k) in [
                ("ReplaceFullPath", "replaceFullPath"),
                ("ReplacePrefixMatch", "replacePrefixMatch"),
            ] {
                if ty == t && !has(pm, k) {
                    cel(
                        ctx,
                        pm,
                        &pp,
                        &format!("{k} must be specified when type is set to '{t}'"),
                    );
                }
                if ty != t && has(pm, k) {
                    cel(ctx, pm, &pp, &format!("type must be '{t}' when {k} is set"));
                }
            }
            if ty == "ReplacePrefixMatch" && !single_prefix_match(rule) {
                cel(
                    ctx,
                    f,
                    &p,
                    "When using a filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified",
                );
            }
        }
    }
    if count.contains_key("RequestRedirect") && count.contains_key("URLRewrite") {
        if let Some(n) = list.first() {
            cel(ctx, n, path, "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both");
        }
    }
    for (ty, n) in count {
        if n > 1 && ty != "RequestMirror" && ty != "ExtensionRef" {
            if let Some(first) = list.first() {
                cel(ctx, first, path, &format!("{ty} filter cannot be repeated"));
            }
        }
    }
}

/// Whether the rule has exactly one match and it is a PathPrefix match
/// (after defaulting: no matches means one `PathPrefix /`).
fn single_prefix_match(rule: &Node) -> bool {
    match rule.get("matches").and_then(Node::as_seq) {
        None => true,
        Some([m]) => match m.get("path") {
            None => false,
            Some(p) => text(p, "type").unwrap_or("PathPrefix") == "PathPrefix",
        },
        Some(_) => false,
    }
}

/// HTTPPathMatch's CEL rules (type and value defaulted to PathPrefix, "/").
fn path_match(ctx: &mut Ctx, n: &Node, path: &str) {
    let ty = text(n, "type").unwrap_or("PathPrefix");
    if !matches!(ty, "Exact" | "PathPrefix") {
        return;
    }
    let Some(value) = n.get("value").map_or(Some("/"), json_str) else {
        return;
    };
    const WHEN: &str = "when type one of ['Exact', 'PathPrefix']";
    if !value.starts_with('/') {
        cel(
            ctx,
            n,
            path,
            &format!("value must be an absolute path and start with '/' {WHEN}"),
        );
    }
    for bad in ["//", "/./", "/../", "%2f", "%2F", "#"] {
        if value.contains(bad) {
            cel(ctx, n, path, &format!("must not contain '{bad}' {WHEN}"));
        }
    }
    for bad in ["/..", "/."] {
        if value.ends_with(bad) {
            cel(ctx, n, path, &format!("must not end with '{bad}' {WHEN}"));
        }
    }
    if !path_chars_ok(value) {
        cel(ctx, n, path, "must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) for types ['Exact', 'PathPrefix']");
    }
}

fn path_chars_ok(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = |k: usize| b.get(k).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if c.is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@".contains(&c) {
            i += 1;
        } else {
            return false;
        }
    }
    !b.is_empty()
}

fn grpc_method(ctx: &mut Ctx, n: &Node, path: &str) {
    let service = text(n, "service").unwrap_or_default();
    let method = text(n, "method").unwrap_or_default();
    if service.is_empty() && method.is_empty() {
        cel(
            ctx,
            n,
            path,
            "One or both of 'service' or 'method' must be specified",
        );
    }
    if text(n, "type").unwrap_or("Exact") != "Exact" {
        return;
    }
    let ident = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if !service.is_empty()
        && !service
            .strip_prefix('.')
            .unwrap_or(service)
            .split('.')
            .all(ident)
    {
        cel(
            ctx,
            n,
            path,
            r"service must only contain valid characters (matching ^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$)",
        );
    }
    if !method.is_empty() && !ident(method) {
        cel(
            ctx,
            n,
            path,
            "method must only contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$)",
        );
    }
}

/// Lists keyed by `name` (`listType=map`): a repeated name is refused.
/// Header names compare case-insensitively when `fold` is set.
fn unique_names(ctx: &mut Ctx, list: Option<&Node>, path: &str, fold: bool) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, x) in items(list).iter().enumerate() {
        let Some(name) = text(x, "name") else {
            continue;
        };
        let key = if fold {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        };
        if let Some(first) = seen.insert(key, i) {
            ctx.error(
                x,
                format!("`{path}[{i}].name`: Duplicate value: {name:?} (also {path}[{first}])"),
            );
        }
    }
}

fn invalid(ctx: &mut Ctx, n: &Node, path: &str, value: &str, why: &str) {
    ctx.error(n, format!("`{path}`: Invalid value: {value:?}: {why}"));
}

fn ingress(ctx: &mut Ctx, _root: &Node, spec: &Node) {
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

fn ingress_class(ctx: &mut Ctx, spec: &Node) {
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
