//! The CEL rules (`x-kubernetes-validations`) of the Gateway API CRDs:
//! Gateway listeners, routes' parent references, rules, filters, matches.

use super::{cel, has, items, text};
use crate::decode::Ctx;
use crate::ingest::schema::json_str;
use crate::yaml::{Node, Value};
use std::collections::BTreeMap;

pub(super) fn gateway(ctx: &mut Ctx, spec: &Node) {
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

pub(super) fn route(ctx: &mut Ctx, kind: &str, spec: &Node) {
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
