//! Routes into the cluster: Ingress, IngressClass, Gateway API (GatewayClass,
//! Gateway, HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute,
//! ReferenceGrant), decoded from the inventory's routing objects.

use crate::decode::{Ctx, Fields};
use crate::ingest::{Inventory, RawObject};
use crate::selector::Selector;
use crate::source::{Diagnostic, Location, ObjectRef};
use crate::yaml::Node;
use serde::Serialize;
use std::collections::BTreeMap;

/// The controller names of Cilium's own implementations.
pub const CILIUM_GATEWAY_CONTROLLER: &str = "io.cilium/gateway-controller";
pub const CILIUM_INGRESS_CONTROLLER: &str = "cilium.io/ingress-controller";

#[derive(Debug, Clone, Serialize)]
pub struct Class {
    pub name: String,
    pub controller: String,
    pub is_default: bool,
    pub location: Location,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "from", rename_all = "camelCase")]
pub enum AllowedNamespaces {
    Same,
    All,
    Selector { selector: Selector },
}

#[derive(Debug, Clone, Serialize)]
pub struct Listener {
    pub name: String,
    pub port: u16,
    pub protocol: String,
    pub hostname: Option<String>,
    pub allowed: AllowedNamespaces,
    /// Route kinds allowed explicitly; empty means the protocol's defaults.
    pub kinds: Vec<String>,
    pub location: Location,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gateway {
    pub object: ObjectRef,
    pub class: String,
    pub listeners: Vec<Listener>,
    pub location: Location,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParentRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub section: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub port: Option<u16>,
    pub weight: i64,
    pub location: Location,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteRule {
    /// Readable summaries of the rule's matches (path, method, headers).
    pub matches: Vec<String>,
    pub backends: Vec<BackendRef>,
    pub location: Location,
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub object: ObjectRef,
    pub parents: Vec<ParentRef>,
    pub hostnames: Vec<String>,
    pub rules: Vec<RouteRule>,
    pub location: Location,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferenceGrant {
    pub object: ObjectRef,
    /// (group, kind, namespace) allowed to refer.
    pub from: Vec<(String, String, String)>,
    /// (group, kind, name) that may be referred to; no name means any.
    pub to: Vec<(String, String, Option<String>)>,
}

/// A service port named by an Ingress backend: a number or a port name.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ServicePortRef {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct IngressPath {
    pub host: Option<String>,
    pub path: String,
    pub service: String,
    pub port: ServicePortRef,
    pub location: Location,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    pub object: ObjectRef,
    pub class: Option<String>,
    pub paths: Vec<IngressPath>,
    pub tls: bool,
    pub location: Location,
}

#[derive(Debug, Default, Serialize)]
pub struct Routing {
    pub gateway_classes: BTreeMap<String, Class>,
    pub ingress_classes: BTreeMap<String, Class>,
    pub gateways: Vec<Gateway>,
    pub routes: Vec<Route>,
    pub grants: Vec<ReferenceGrant>,
    pub ingresses: Vec<Ingress>,
    #[serde(skip)]
    pub diagnostics: Vec<Diagnostic>,
}

fn str_of(ctx: &mut Ctx, f: &Fields, key: &str, path: &str) -> Option<String> {
    f.get(key)
        .and_then(|n| ctx.string(n, &format!("{path}.{key}")))
}

fn port_of(ctx: &mut Ctx, f: &Fields, key: &str, path: &str) -> Option<u16> {
    let n = f.get(key)?;
    let v = ctx.int(n, &format!("{path}.{key}"))?;
    match u16::try_from(v) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            ctx.error(n, format!("`{path}.{key}` {v} is not a port (1..65535)"));
            None
        }
    }
}

impl Routing {
    pub fn from_inventory(inv: &Inventory) -> Routing {
        let mut r = Routing::default();
        let mut diags = Vec::new();
        for raw in &inv.routing {
            let mut ctx = Ctx::new(&raw.file, &mut diags);
            ctx.object = Some(raw.object.clone());
            r.decode(&mut ctx, raw);
        }
        r.diagnostics = diags;
        r
    }

    fn decode(&mut self, ctx: &mut Ctx, raw: &RawObject) {
        let Some(root) = ctx.fields_loose(&raw.node, "object") else {
            return;
        };
        let spec = root.get("spec");
        let ns = raw.object.namespace.clone().unwrap_or_default();
        let name = raw.object.name.clone();
        let annotations = root
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .map(|a| ctx.string_map(a, "metadata.annotations"))
            .unwrap_or_default();
        let spec_f = spec.and_then(|s| ctx.fields_loose(s, "spec"));
        match raw.object.kind.as_str() {
            "GatewayClass" | "IngressClass" => {
                let key = if raw.object.kind == "GatewayClass" {
                    "controllerName"
                } else {
                    "controller"
                };
                let controller = spec_f
                    .as_ref()
                    .and_then(|f| str_of(ctx, f, key, "spec"))
                    .unwrap_or_default();
                let class = Class {
                    name: name.clone(),
                    controller,
                    is_default: annotations
                        .get("ingressclass.kubernetes.io/is-default-class")
                        .is_some_and(|v| v == "true"),
                    location: raw.location.clone(),
                };
                if raw.object.kind == "GatewayClass" {
                    self.gateway_classes.insert(name, class);
                } else {
                    self.ingress_classes.insert(name, class);
                }
            }
            "Gateway" => {
                let Some(f) = spec_f else {
                    ctx.error(&raw.node, "Gateway has no `spec`".to_string());
                    return;
                };
                let class = str_of(ctx, &f, "gatewayClassName", "spec").unwrap_or_default();
                let mut listeners = Vec::new();
                let list = f
                    .get("listeners")
                    .and_then(|l| ctx.seq(l, "spec.listeners"))
                    .unwrap_or(&[]);
                for (i, l) in list.iter().enumerate() {
                    let p = format!("spec.listeners[{i}]");
                    let Some(lf) = ctx.fields_loose(l, &p) else {
                        continue;
                    };
                    let Some(port) = port_of(ctx, &lf, "port", &p) else {
                        ctx.error(l, format!("`{p}.port` is required"));
                        continue;
                    };
                    let protocol =
                        str_of(ctx, &lf, "protocol", &p).unwrap_or_else(|| "HTTP".into());
                    let mut allowed = AllowedNamespaces::Same;
                    let mut kinds = Vec::new();
                    if let Some(ar) = lf.get("allowedRoutes") {
                        if let Some(af) =
                            ctx.fields(ar, &format!("{p}.allowedRoutes"), &["namespaces", "kinds"])
                        {
                            if let Some(nsn) = af.get("namespaces") {
                                let np = format!("{p}.allowedRoutes.namespaces");
                                if let Some(nf) = ctx.fields(nsn, &np, &["from", "selector"]) {
                                    allowed = match str_of(ctx, &nf, "from", &np).as_deref() {
                                        None | Some("Same") => AllowedNamespaces::Same,
                                        Some("All") => AllowedNamespaces::All,
                                        Some("Selector") => {
                                            let sel = nf.get("selector").and_then(|s| {
                                                crate::ingest::cnp::label_selector(
                                                    ctx,
                                                    s,
                                                    &format!("{np}.selector"),
                                                    crate::labels::SOURCE_K8S,
                                                )
                                            });
                                            AllowedNamespaces::Selector {
                                                selector: sel.unwrap_or_default(),
                                            }
                                        }
                                        Some(other) => {
                                            ctx.error(nsn, format!("`{np}.from` `{other}` is not Same, All or Selector"));
                                            AllowedNamespaces::Same
                                        }
                                    };
                                }
                            }
                            if let Some(kl) = af
                                .get("kinds")
                                .and_then(|k| ctx.seq(k, &format!("{p}.allowedRoutes.kinds")))
                            {
                                for k in kl {
                                    if let Some(kind) = k.get("kind").and_then(Node::as_str) {
                                        kinds.push(kind.to_string());
                                    }
                                }
                            }
                        }
                    }
                    listeners.push(Listener {
                        name: str_of(ctx, &lf, "name", &p)
                            .unwrap_or_else(|| format!("listener-{i}")),
                        port,
                        protocol,
                        hostname: str_of(ctx, &lf, "hostname", &p),
                        allowed,
                        kinds,
                        location: ctx.loc(l),
                    });
                }
                self.gateways.push(Gateway {
                    object: raw.object.clone(),
                    class,
                    listeners,
                    location: raw.location.clone(),
                });
            }
            "HTTPRoute" | "GRPCRoute" | "TLSRoute" | "TCPRoute" | "UDPRoute" => {
                let Some(f) = spec_f else {
                    ctx.error(&raw.node, format!("{} has no `spec`", raw.object.kind));
                    return;
                };
                let mut parents = Vec::new();
                for (i, pr) in f
                    .get("parentRefs")
                    .and_then(|l| ctx.seq(l, "spec.parentRefs"))
                    .unwrap_or(&[])
                    .iter()
                    .enumerate()
                {
                    let p = format!("spec.parentRefs[{i}]");
                    let Some(pf) = ctx.fields_loose(pr, &p) else {
                        continue;
                    };
                    let Some(pname) = str_of(ctx, &pf, "name", &p) else {
                        ctx.error(pr, format!("`{p}.name` is required"));
                        continue;
                    };
                    parents.push(ParentRef {
                        kind: str_of(ctx, &pf, "kind", &p).unwrap_or_else(|| "Gateway".into()),
                        namespace: str_of(ctx, &pf, "namespace", &p).unwrap_or_else(|| ns.clone()),
                        name: pname,
                        section: str_of(ctx, &pf, "sectionName", &p),
                        port: port_of(ctx, &pf, "port", &p),
                    });
                }
                let hostnames = f
                    .get("hostnames")
                    .map(|h| ctx.strings(h, "spec.hostnames"))
                    .unwrap_or_default();
                let mut rules = Vec::new();
                for (i, rule) in f
                    .get("rules")
                    .and_then(|l| ctx.seq(l, "spec.rules"))
                    .unwrap_or(&[])
                    .iter()
                    .enumerate()
                {
                    let p = format!("spec.rules[{i}]");
                    let Some(rf) = ctx.fields_loose(rule, &p) else {
                        continue;
                    };
                    let matches = rf
                        .get("matches")
                        .and_then(Node::as_seq)
                        .map(|ms| ms.iter().map(match_summary).collect())
                        .unwrap_or_default();
                    let mut backends = Vec::new();
                    for (j, b) in rf
                        .get("backendRefs")
                        .and_then(|l| ctx.seq(l, &format!("{p}.backendRefs")))
                        .unwrap_or(&[])
                        .iter()
                        .enumerate()
                    {
                        let bp = format!("{p}.backendRefs[{j}]");
                        let Some(bf) = ctx.fields_loose(b, &bp) else {
                            continue;
                        };
                        let Some(bname) = str_of(ctx, &bf, "name", &bp) else {
                            ctx.error(b, format!("`{bp}.name` is required"));
                            continue;
                        };
                        backends.push(BackendRef {
                            group: str_of(ctx, &bf, "group", &bp).unwrap_or_default(),
                            kind: str_of(ctx, &bf, "kind", &bp).unwrap_or_else(|| "Service".into()),
                            namespace: str_of(ctx, &bf, "namespace", &bp)
                                .unwrap_or_else(|| ns.clone()),
                            name: bname,
                            port: port_of(ctx, &bf, "port", &bp),
                            weight: bf
                                .get("weight")
                                .and_then(|w| ctx.int(w, &format!("{bp}.weight")))
                                .unwrap_or(1),
                            location: ctx.loc(b),
                        });
                    }
                    rules.push(RouteRule {
                        matches,
                        backends,
                        location: ctx.loc(rule),
                    });
                }
                self.routes.push(Route {
                    object: raw.object.clone(),
                    parents,
                    hostnames,
                    rules,
                    location: raw.location.clone(),
                });
            }
            "ReferenceGrant" => {
                let Some(f) = spec_f else { return };
                let mut from = Vec::new();
                for x in f
                    .get("from")
                    .and_then(|l| ctx.seq(l, "spec.from"))
                    .unwrap_or(&[])
                {
                    from.push((
                        x.get("group")
                            .and_then(Node::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        x.get("kind")
                            .and_then(Node::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        x.get("namespace")
                            .and_then(Node::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    ));
                }
                let mut to = Vec::new();
                for x in f
                    .get("to")
                    .and_then(|l| ctx.seq(l, "spec.to"))
                    .unwrap_or(&[])
                {
                    to.push((
                        x.get("group")
                            .and_then(Node::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        x.get("kind")
                            .and_then(Node::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        x.get("name").and_then(Node::as_str).map(str::to_string),
                    ));
                }
                self.grants.push(ReferenceGrant {
                    object: raw.object.clone(),
                    from,
                    to,
                });
            }
            "Ingress" => {
                let Some(f) = spec_f else {
                    ctx.error(&raw.node, "Ingress has no `spec`".to_string());
                    return;
                };
                let class = str_of(ctx, &f, "ingressClassName", "spec")
                    .or_else(|| annotations.get("kubernetes.io/ingress.class").cloned());
                let mut paths = Vec::new();
                if let Some(db) = f.get("defaultBackend") {
                    if let Some(p) =
                        ingress_backend(ctx, db, "spec.defaultBackend", None, "(default backend)")
                    {
                        paths.push(p);
                    }
                }
                for (i, rule) in f
                    .get("rules")
                    .and_then(|l| ctx.seq(l, "spec.rules"))
                    .unwrap_or(&[])
                    .iter()
                    .enumerate()
                {
                    let p = format!("spec.rules[{i}]");
                    let host = rule.get("host").and_then(Node::as_str).map(str::to_string);
                    let list = rule
                        .get("http")
                        .and_then(|h| h.get("paths"))
                        .and_then(|l| ctx.seq(l, &format!("{p}.http.paths")))
                        .unwrap_or(&[]);
                    for (j, pth) in list.iter().enumerate() {
                        let pp = format!("{p}.http.paths[{j}]");
                        let path = pth
                            .get("path")
                            .and_then(Node::as_str)
                            .unwrap_or("/")
                            .to_string();
                        let Some(b) = pth.get("backend") else {
                            ctx.error(pth, format!("`{pp}.backend` is required"));
                            continue;
                        };
                        if let Some(ip) =
                            ingress_backend(ctx, b, &format!("{pp}.backend"), host.clone(), &path)
                        {
                            paths.push(ip);
                        }
                    }
                }
                let tls = f
                    .get("tls")
                    .and_then(Node::as_seq)
                    .is_some_and(|t| !t.is_empty());
                self.ingresses.push(Ingress {
                    object: raw.object.clone(),
                    class,
                    paths,
                    tls,
                    location: raw.location.clone(),
                });
            }
            _ => {}
        }
    }
}

fn ingress_backend(
    ctx: &mut Ctx,
    n: &Node,
    path: &str,
    host: Option<String>,
    url_path: &str,
) -> Option<IngressPath> {
    let Some(svc) = n.get("service") else {
        ctx.error(
            n,
            format!("`{path}` has no `service` (resource backends are not analysed)"),
        );
        return None;
    };
    let name = svc.get("name").and_then(Node::as_str)?.to_string();
    let port = match svc.get("port") {
        Some(p) => match (p.get("number"), p.get("name").and_then(Node::as_str)) {
            (Some(num), _) => ServicePortRef::Number(
                u16::try_from(ctx.int(num, &format!("{path}.service.port.number"))?).ok()?,
            ),
            (None, Some(nm)) => ServicePortRef::Name(nm.to_string()),
            _ => {
                ctx.error(p, format!("`{path}.service.port` needs `number` or `name`"));
                return None;
            }
        },
        None => {
            ctx.error(svc, format!("`{path}.service.port` is required"));
            return None;
        }
    };
    Some(IngressPath {
        host,
        path: url_path.to_string(),
        service: name,
        port,
        location: ctx.loc(n),
    })
}

fn match_summary(m: &Node) -> String {
    let mut parts = Vec::new();
    if let Some(p) = m.get("path") {
        let ty = p.get("type").and_then(Node::as_str).unwrap_or("PathPrefix");
        let v = p.get("value").and_then(Node::as_str).unwrap_or("/");
        parts.push(format!("{ty} {v}"));
    }
    if let Some(meth) = m.get("method") {
        match meth.as_str() {
            Some(s) => parts.push(s.to_string()),
            None => {
                let svc = meth.get("service").and_then(Node::as_str).unwrap_or("*");
                let mm = meth.get("method").and_then(Node::as_str).unwrap_or("*");
                parts.push(format!("gRPC {svc}/{mm}"));
            }
        }
    }
    if let Some(h) = m.get("headers").and_then(Node::as_seq) {
        for x in h {
            parts.push(format!(
                "header {}",
                x.get("name").and_then(Node::as_str).unwrap_or("?")
            ));
        }
    }
    if parts.is_empty() {
        "any".to_string()
    } else {
        parts.join(" ")
    }
}
