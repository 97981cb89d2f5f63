//! CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy into [`Rule`]s.
//!
//! Follows `ParseToCiliumRule` (pkg/k8s/apis/cilium.io/utils/utils.go):
//! namespaced policies scope their subject and, unless a peer selector names
//! the namespace or a reserved label itself, their peers to the policy's
//! namespace; clusterwide peers without a namespace key only match pods.
//! Validation follows `Rule.Sanitize` (pkg/policy/api/rule_validation.go);
//! see docs/semantics.md.

use crate::cidr::Cidr;
use crate::decode::{Ctx, Fields};
use crate::entity::{entity_selectors, ENTITIES};
use crate::labels::{
    split_source, NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, SOURCE_ANY, SOURCE_K8S,
    SOURCE_RESERVED,
};
use crate::policy::{
    Direction, Entry, Origin, Peer, PeerKind, PortRule, PortSel, Protocol, Rule, Subject,
};
use crate::selector::{Op, Requirement, Selector};
use crate::settings::CiliumVersion;
use crate::source::ObjectRef;
use crate::yaml::Node;

pub use crate::settings::ClusterConfig;

/// Decodes a label selector (`matchLabels`, `matchExpressions`); keys
/// without a source get `default_source`.
pub fn label_selector(
    ctx: &mut Ctx,
    n: &Node,
    path: &str,
    default_source: &str,
) -> Option<Selector> {
    label_selector_with(ctx, n, path, &|k| {
        let (src, key) = split_source(k, default_source);
        (src.to_string(), key.to_string())
    })
}

/// Decodes a label selector, mapping each written key to `(source, key)`.
pub fn label_selector_with(
    ctx: &mut Ctx,
    n: &Node,
    path: &str,
    key_of: &dyn Fn(&str) -> (String, String),
) -> Option<Selector> {
    let f = ctx.fields(n, path, &["matchLabels", "matchExpressions"])?;
    let mut reqs = Vec::new();
    let mut ok = true;
    if let Some(ml) = f.get("matchLabels") {
        for (k, v) in ctx.string_map(ml, &format!("{path}.matchLabels")) {
            let (src, key) = key_of(&k);
            reqs.push(Requirement::equals(&src, &key, &v));
        }
    }
    if let Some(me) = f.get("matchExpressions") {
        let items = ctx
            .seq(me, &format!("{path}.matchExpressions"))
            .unwrap_or(&[]);
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}.matchExpressions[{i}]");
            let Some(ef) = ctx.fields(item, &p, &["key", "operator", "values"]) else {
                ok = false;
                continue;
            };
            let key = ef
                .get("key")
                .and_then(|k| ctx.string(k, &format!("{p}.key")));
            let op_text = ef
                .get("operator")
                .and_then(|k| ctx.string(k, &format!("{p}.operator")));
            let values = ef
                .get("values")
                .map(|v| ctx.strings(v, &format!("{p}.values")))
                .unwrap_or_default();
            let (Some(key), Some(op_text)) = (key, op_text) else {
                ctx.error(item, format!("`{p}` needs `key` and `operator`"));
                ok = false;
                continue;
            };
            let Some(op) = Op::parse(&op_text) else {
                ctx.error(
                    item,
                    format!(
                        "`{p}.operator` `{op_text}` is not one of In, NotIn, Exists, DoesNotExist"
                    ),
                );
                ok = false;
                continue;
            };
            match op {
                Op::In | Op::NotIn if values.is_empty() => {
                    ctx.error(
                        item,
                        format!("`{p}`: values must be non-empty for operator {op_text}"),
                    );
                    ok = false;
                    continue;
                }
                Op::Exists | Op::DoesNotExist if !values.is_empty() => {
                    ctx.error(
                        item,
                        format!("`{p}`: values must be empty for operator {op_text}"),
                    );
                    ok = false;
                    continue;
                }
                _ => {}
            }
            let (src, key) = key_of(&key);
            reqs.push(Requirement::new(&src, &key, op, values));
        }
    }
    ok.then(|| Selector::new(reqs))
}

/// Whether `CIDRRule.Validate` accepts `except` (written as `text`) under
/// `cidr`. 1.20 (cilium/cilium PR 44637, fixing issue 44614) requires the
/// except prefix to be no shorter than the allowed one and its address to
/// lie inside it; 1.18 and 1.19 check only the address as written
/// (`prefix.Contains(except.Addr())`, host bits kept), so `10.0.0.0/24`
/// except `10.0.0.0/16` passes there.
fn except_inside(version: CiliumVersion, cidr: &Cidr, except: &Cidr, text: &str) -> bool {
    if version >= CiliumVersion::V1_20 {
        return cidr.contains(except);
    }
    let written = text.split('/').next().unwrap_or(text).trim();
    match written.parse::<std::net::IpAddr>() {
        Ok(addr) => cidr.contains(&Cidr::host(addr)),
        Err(_) => cidr.contains(except),
    }
}

struct RuleCtx<'a> {
    namespace: Option<&'a str>,
    matches_init: bool,
    node_selector_in_cnp: bool,
    cluster: &'a ClusterConfig,
    object: &'a ObjectRef,
    /// Validation failures: Cilium refuses the whole policy.
    invalid: Vec<String>,
}

impl RuleCtx<'_> {
    fn origin(&self, ctx: &Ctx, n: &Node, path: String) -> Origin {
        Origin {
            policy: self.object.clone(),
            path,
            location: ctx.loc(n),
        }
    }

    /// Scopes a peer endpoint selector as `getEndpointSelector` does; with
    /// `policy-default-local-cluster` (on by default from 1.19) a selector
    /// that names no cluster also gets the local cluster's label.
    fn scope_peer(&self, sel: Selector) -> Selector {
        if sel.reqs.iter().any(|r| r.source == SOURCE_RESERVED) {
            return sel;
        }
        let sel = self
            .cluster
            .scope_to_local_cluster(sel, &[SOURCE_K8S, SOURCE_ANY]);
        if sel.has_key(&[SOURCE_K8S, SOURCE_ANY], POD_NAMESPACE_LABEL) {
            return sel;
        }
        match self.namespace {
            Some(ns) => {
                let on_ns_labels = sel.reqs.iter().any(|r| {
                    (r.source == SOURCE_K8S || r.source == SOURCE_ANY)
                        && r.key.starts_with(NAMESPACE_LABELS_PREFIX)
                });
                if on_ns_labels {
                    sel
                } else {
                    sel.with(Requirement::equals(SOURCE_K8S, POD_NAMESPACE_LABEL, ns))
                }
            }
            None if self.matches_init => sel,
            None => sel.with(Requirement::new(
                SOURCE_K8S,
                POD_NAMESPACE_LABEL,
                Op::Exists,
                vec![],
            )),
        }
    }
}

/// Decodes one `spec` (or `specs[i]`) item.
fn decode_rule(ctx: &mut Ctx, rc: &mut RuleCtx, n: &Node, path: &str) -> Option<Rule> {
    const KNOWN: &[&str] = &[
        "endpointSelector",
        "nodeSelector",
        "ingress",
        "ingressDeny",
        "egress",
        "egressDeny",
        "labels",
        "description",
        "enableDefaultDeny",
        "log",
    ];
    let f = ctx.fields(n, path, KNOWN)?;
    let first_invalid = rc.invalid.len();
    let es = f.get("endpointSelector");
    let host_policy = f.get("nodeSelector").is_some();
    let ns_sel = f.get("nodeSelector");
    let subject = match (es, ns_sel) {
        (Some(_), Some(_)) => {
            rc.invalid
                .push("rule cannot have both EndpointSelector and NodeSelector".to_string());
            return None;
        }
        (None, None) => {
            rc.invalid
                .push("rule must have one of EndpointSelector or NodeSelector".to_string());
            return None;
        }
        (Some(es), None) => {
            let sel = match label_selector(ctx, es, &format!("{path}.endpointSelector"), SOURCE_ANY)
            {
                Some(sel) => sel,
                None => {
                    rc.invalid
                        .push(format!("invalid label selector in {path}.endpointSelector"));
                    Selector::default()
                }
            };
            rc.matches_init = sel.has_key(&[SOURCE_RESERVED], "init");
            let sel = match rc.namespace {
                Some(ns) if !rc.matches_init => {
                    // `ParseToCiliumRule`: a `matchLabels` entry
                    // `k8s:io.kubernetes.pod.namespace` is replaced by the
                    // policy's namespace (`delete` + `AddMatch` on the
                    // matchLabels map); a namespace in `matchExpressions`,
                    // or under another source, stays and is ANDed.
                    let written = es
                        .get("matchLabels")
                        .and_then(|m| m.get(&format!("{SOURCE_K8S}:{POD_NAMESPACE_LABEL}")))
                        .and_then(Node::as_str)
                        .map(|v| Requirement::equals(SOURCE_K8S, POD_NAMESPACE_LABEL, v));
                    let mut reqs = sel.reqs;
                    if let Some(w) = written {
                        if let Some(i) = reqs.iter().position(|r| *r == w) {
                            reqs.remove(i);
                        }
                    }
                    reqs.push(Requirement::equals(SOURCE_K8S, POD_NAMESPACE_LABEL, ns));
                    Selector::new(reqs)
                }
                _ => sel,
            };
            Subject::Endpoints(sel)
        }
        (None, Some(nsn)) => {
            let Some(sel) = label_selector(ctx, nsn, &format!("{path}.nodeSelector"), SOURCE_ANY)
            else {
                rc.invalid
                    .push(format!("invalid label selector in {path}.nodeSelector"));
                return None;
            };
            Subject::Nodes(sel)
        }
    };
    let mut default_deny = [true, true];
    let mut explicit_dd = [false, false];
    if let Some(dd) = f.get("enableDefaultDeny") {
        if let Some(ddf) = ctx.fields(
            dd,
            &format!("{path}.enableDefaultDeny"),
            &["ingress", "egress"],
        ) {
            for d in Direction::BOTH {
                if let Some(v) = ddf.get(&d.to_string()) {
                    if let Some(b) = ctx.boolean(v, &format!("{path}.enableDefaultDeny.{d}")) {
                        default_deny[d.index()] = b;
                        explicit_dd[d.index()] = true;
                    }
                }
            }
        }
    }
    // Sanitize(): with non-default-deny policies enabled (the default), a
    // direction without an explicit setting is default-deny exactly when the
    // rule has allow or deny items for it.
    let mut has_items = [false, false];
    let mut entries = Vec::new();
    for (section, dir, deny) in [
        ("ingress", Direction::Ingress, false),
        ("ingressDeny", Direction::Ingress, true),
        ("egress", Direction::Egress, false),
        ("egressDeny", Direction::Egress, true),
    ] {
        let Some(list) = f.get(section) else { continue };
        let sp = format!("{path}.{section}");
        let Some(items) = ctx.seq(list, &sp) else {
            continue;
        };
        has_items[dir.index()] |= !items.is_empty();
        for (i, item) in items.iter().enumerate() {
            if let Some(e) =
                decode_entry(ctx, rc, item, &format!("{sp}[{i}]"), dir, deny, host_policy)
            {
                entries.push(e);
            }
        }
    }
    if !has_items[0] && !has_items[1] {
        rc.invalid.insert(
            first_invalid,
            "rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny".to_string(),
        );
    }
    if host_policy && rc.namespace.is_some() {
        rc.node_selector_in_cnp = true;
    }
    for d in Direction::BOTH {
        // A rule without items for a direction does not enforce it at all.
        default_deny[d.index()] =
            has_items[d.index()] && (default_deny[d.index()] || !explicit_dd[d.index()]);
    }
    Some(Rule {
        tier: crate::policy::Tier::Normal,
        priority: None,
        subject,
        entries,
        default_deny,
        origin: std::sync::Arc::new(rc.origin(ctx, n, path.to_string())),
    })
}

fn peer_fields(dir: Direction) -> [&'static str; 8] {
    match dir {
        Direction::Ingress => [
            "fromEndpoints",
            "fromRequires",
            "fromEntities",
            "fromCIDR",
            "fromCIDRSet",
            "fromNodes",
            "fromGroups",
            "fromServices",
        ],
        Direction::Egress => [
            "toEndpoints",
            "toRequires",
            "toEntities",
            "toCIDR",
            "toCIDRSet",
            "toNodes",
            "toGroups",
            "toServices",
        ],
    }
}

fn decode_entry(
    ctx: &mut Ctx,
    rc: &mut RuleCtx,
    n: &Node,
    path: &str,
    dir: Direction,
    deny: bool,
    host_policy: bool,
) -> Option<Entry> {
    let pf = peer_fields(dir);
    let mut known: Vec<&str> = pf.to_vec();
    known.extend(["toPorts", "icmps"]);
    if !deny {
        known.push("authentication");
        if dir == Direction::Egress {
            known.push("toFQDNs");
        }
    }
    let f = ctx.fields(n, path, &known)?;
    let [endpoints, requires, entities, cidr, cidr_set, nodes, groups, services] = pf;
    // IngressCommonRule.Validate: at most one kind of L3 peer per item.
    let l3: Vec<&str> = [
        endpoints, cidr, cidr_set, entities, nodes, groups, services, "toFQDNs",
    ]
    .into_iter()
    .filter(|k| {
        f.get(k)
            .and_then(|v| v.as_seq())
            .is_some_and(|l| !l.is_empty())
    })
    .collect();
    if let [a, b, ..] = l3.as_slice() {
        rc.invalid.push(format!(
            "combining {} and {} is not supported yet",
            go_name(a),
            go_name(b)
        ));
    }
    let mut peers: Option<Vec<Peer>> = None;
    let mut unevaluable = Vec::new();
    fn add(peers: &mut Option<Vec<Peer>>, p: Option<Peer>) {
        let v = peers.get_or_insert_with(Vec::new);
        if let Some(p) = p {
            v.push(p);
        }
    }
    if let Some(list) = f.get(endpoints) {
        let items = ctx.seq(list, &format!("{path}.{endpoints}")).unwrap_or(&[]);
        add(&mut peers, None);
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}.{endpoints}[{i}]");
            match label_selector(ctx, item, &p, SOURCE_ANY) {
                Some(sel) => {
                    let text = format!("{endpoints}: {sel}");
                    let sel = rc.scope_peer(sel);
                    add(
                        &mut peers,
                        Some(Peer {
                            from_endpoints: true,
                            text,
                            kind: PeerKind::Selectors {
                                selectors: vec![sel],
                            },
                        }),
                    );
                }
                None => rc.invalid.push(format!("invalid label selector in {p}")),
            }
        }
    }
    let mut reqs_out = Vec::new();
    if let Some(list) = f.get(requires) {
        let items = ctx.seq(list, &format!("{path}.{requires}")).unwrap_or(&[]);
        if rc.cluster.version >= CiliumVersion::V1_19 {
            // 1.19+: the field is a deprecated list of strings with no items
            // (cilium/cilium PR 42615, 43167).
            if let Some((i, item)) = items.iter().enumerate().next() {
                let go_path = format!("{path}.{requires}.{i}")
                    .replace('[', ".")
                    .replace(']', "");
                let what = match &item.value {
                    crate::yaml::Value::Map(_) => "object",
                    crate::yaml::Value::Seq(_) => "array",
                    _ => "",
                };
                let why = if what.is_empty() {
                    format!(
                        "{path}.{requires}: Too many: {}: must have at most 0 items",
                        items.len()
                    )
                } else {
                    format!(
                        "json: cannot unmarshal {what} into {}.{go_path} of type string",
                        rc.object.kind
                    )
                };
                ctx.error(list, format!("`{path}.{requires}` is refused from Cilium 1.19 (it was removed; use fromEndpoints/toEndpoints with the required labels)"));
                rc.invalid.push(why);
            }
        } else if !items.is_empty() {
            ctx.warn(list, format!("`{path}.{requires}` is deprecated (removed in Cilium 1.19); the CRD schema allows no items (maxItems: 0)"));
        }
        for (i, item) in items.iter().enumerate() {
            if let Some(sel) =
                label_selector(ctx, item, &format!("{path}.{requires}[{i}]"), SOURCE_ANY)
            {
                reqs_out.push(rc.scope_peer(sel));
            }
        }
    }
    if let Some(list) = f.get(cidr) {
        let p = format!("{path}.{cidr}");
        let items = ctx.strings(list, &p);
        add(&mut peers, None);
        for text in items {
            if text.is_empty() {
                rc.invalid.push("IP must be specified".to_string());
                continue;
            }
            match Cidr::parse(&text) {
                Ok(c) => add(
                    &mut peers,
                    Some(Peer {
                        from_endpoints: false,
                        text: format!("{cidr}: {text}"),
                        kind: PeerKind::Cidr {
                            cidr: c,
                            except: vec![],
                        },
                    }),
                ),
                Err(e) => {
                    ctx.error(list, format!("`{p}`: {e}"));
                    rc.invalid.push(format!("unable to parse CIDR: {e}"));
                }
            }
        }
    }
    if let Some(list) = f.get(cidr_set) {
        let p = format!("{path}.{cidr_set}");
        let items = ctx.seq(list, &p).unwrap_or(&[]);
        add(&mut peers, None);
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{p}[{i}]");
            let Some(cf) = ctx.fields(
                item,
                &ip,
                &["cidr", "except", "cidrGroupRef", "cidrGroupSelector"],
            ) else {
                continue;
            };
            let set = ["cidr", "cidrGroupRef", "cidrGroupSelector"]
                .iter()
                .filter(|k| cf.get(k).is_some())
                .count();
            if set == 0 {
                rc.invalid.push(
                    "one of cidr, cidrGroupRef, or cidrGroupSelector is required".to_string(),
                );
                continue;
            }
            if set > 1 {
                rc.invalid.push(
                    "more than one of cidr, cidrGroupRef, or cidrGroupSelector may not be set"
                        .to_string(),
                );
                continue;
            }
            let Some(c) = cf
                .get("cidr")
                .and_then(|c| ctx.string(c, &format!("{ip}.cidr")))
            else {
                let why = format!("{cidr_set}: CiliumCIDRGroup references are resolved by the agent and are not evaluable offline");
                unevaluable.push(why.clone());
                add(
                    &mut peers,
                    Some(Peer {
                        from_endpoints: false,
                        text: format!("{cidr_set}: cidrGroup"),
                        kind: PeerKind::Unevaluable { reason: why },
                    }),
                );
                continue;
            };
            if !c.contains('/') {
                rc.invalid.push(format!(
                    "unable to parse CIDRRule {c:?}: netip.ParsePrefix({c:?}): no '/'"
                ));
                continue;
            }
            let parsed = match Cidr::parse(&c) {
                Ok(x) => x,
                Err(e) => {
                    ctx.error(item, format!("`{ip}.cidr`: {e}"));
                    rc.invalid
                        .push(format!("unable to parse CIDRRule {c:?}: {e}"));
                    continue;
                }
            };
            let mut except = Vec::new();
            if let Some(ex) = cf.get("except") {
                for e in ctx.strings(ex, &format!("{ip}.except")) {
                    match Cidr::parse(&e) {
                        Ok(x) if e.contains('/') => {
                            if !except_inside(rc.cluster.version, &parsed, &x, &e) {
                                rc.invalid.push(format!("allow CIDR prefix {c} does not contain exclude CIDR prefix {e}"));
                            }
                            except.push(x);
                        }
                        Ok(_) => rc.invalid.push(format!("netip.ParsePrefix({e:?}): no '/'")),
                        Err(err) => {
                            ctx.error(ex, format!("`{ip}.except`: {err}"));
                            rc.invalid.push(err);
                        }
                    }
                }
            }
            let text = if except.is_empty() {
                format!("{cidr_set}: {c}")
            } else {
                let ex: Vec<String> = except.iter().map(ToString::to_string).collect();
                format!("{cidr_set}: {c} except {}", ex.join(","))
            };
            add(
                &mut peers,
                Some(Peer {
                    from_endpoints: false,
                    text,
                    kind: PeerKind::Cidr {
                        cidr: parsed,
                        except,
                    },
                }),
            );
        }
    }
    if let Some(list) = f.get(entities) {
        let p = format!("{path}.{entities}");
        let names = ctx.strings(list, &p);
        add(&mut peers, None);
        for name in names {
            match entity_selectors(&name, &rc.cluster.name, rc.cluster.dual_stack) {
                Some(selectors) => {
                    if name == "world-ipv4" || name == "world-ipv6" {
                        ctx.warn(list, format!("`{p}`: entity `{name}` passes Cilium's validation but is not in the CRD's enum; the API server may refuse it"));
                    }
                    add(
                        &mut peers,
                        Some(Peer {
                            from_endpoints: false,
                            text: format!("{entities}: {name}"),
                            kind: PeerKind::Selectors { selectors },
                        }),
                    );
                }
                None => {
                    ctx.error(
                        list,
                        format!(
                            "`{p}`: unknown entity `{name}`; known: {}",
                            ENTITIES.join(", ")
                        ),
                    );
                    rc.invalid.push(format!("unsupported entity: {name}"));
                }
            }
        }
    }
    for (field, what) in [
        (nodes, "node selectors need node objects and are not evaluable offline"),
        (groups, "cloud-provider groups are not evaluable offline"),
        (services, "service selectors are resolved to endpoints by the agent and are not evaluable offline"),
        ("toFQDNs", "DNS names are resolved at run time and are not evaluable offline"),
    ] {
        if f.get(field).is_some() && (dir == Direction::Egress || field != "toFQDNs") {
            let why = format!("{field}: {what}");
            unevaluable.push(why.clone());
            add(&mut peers, Some(Peer { from_endpoints: false, text: field.to_string(), kind: PeerKind::Unevaluable { reason: why } }));
        }
    }
    if f.get("icmps").is_some() && f.get("toPorts").is_some() {
        rc.invalid.push("the ICMPs block may only be present without ToPorts. Define a separate rule to use ToPorts".to_string());
    }
    let (ports, l7) = decode_ports(ctx, rc, &f, path, dir, deny, host_policy);
    if f.get("authentication").is_some() {
        unevaluable.push("authentication (mutual auth) is not modelled offline".to_string());
    }
    let peers = match peers {
        Some(p) => p,
        None if ports.is_some() => vec![Peer {
            from_endpoints: false,
            text: "any peer (no peer field)".to_string(),
            kind: PeerKind::Selectors {
                selectors: vec![Selector::default()],
            },
        }],
        None => Vec::new(),
    };
    Some(Entry {
        direction: dir,
        deny,
        pass: false,
        tier: crate::policy::Tier::Normal,
        level: 0,
        peers,
        requires: reqs_out,
        ports,
        l7,
        unevaluable,
        origin: std::sync::Arc::new(rc.origin(ctx, n, path.to_string())),
    })
}

/// The Go field name Cilium's messages use.
fn go_name(field: &str) -> String {
    let mut c = field.chars();
    match c.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Parses a port string as Cilium does: a number (Go `ParseUint` base 0,
/// so a leading 0 means octal) or an IANA service name (a named port).
/// `Ok(None)` is a named port.
pub fn parse_port(text: &str) -> Result<Option<u16>, String> {
    if text.is_empty() {
        return Err("port must be specified".to_string());
    }
    if is_svc_name(text) {
        return Ok(None);
    }
    let err =
        |why: &str| format!("unable to parse port: strconv.ParseUint: parsing {text:?}: {why}");
    let (digits, radix) = match text.strip_prefix('0') {
        Some(rest) if !rest.is_empty() => (rest, 8),
        _ => (text, 10),
    };
    let digits = digits.replace('_', "");
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(err("invalid syntax"));
    }
    match u64::from_str_radix(&digits, radix) {
        Ok(v) if v <= 65535 => Ok(u16::try_from(v).ok()),
        _ => Err(err("value out of range")),
    }
}

/// IANA service name: 1..15 characters, letters, digits and single
/// hyphens, at least one letter (pkg/iana).
pub fn is_svc_name(s: &str) -> bool {
    s.len() <= 15
        && !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && s.chars().any(|c| c.is_ascii_alphabetic())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
}

fn decode_ports(
    ctx: &mut Ctx,
    rc: &mut RuleCtx,
    f: &Fields,
    path: &str,
    dir: Direction,
    deny: bool,
    host_policy: bool,
) -> (Option<Vec<PortRule>>, Vec<String>) {
    let mut out: Option<Vec<PortRule>> = None;
    let mut l7 = Vec::new();
    if let Some(tp) = f.get("toPorts") {
        let items = ctx.seq(tp, &format!("{path}.toPorts")).unwrap_or(&[]);
        let list = out.get_or_insert_with(Vec::new);
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}.toPorts[{i}]");
            let known: &[&str] = if deny {
                &["ports"]
            } else {
                &[
                    "ports",
                    "rules",
                    "terminatingTLS",
                    "originatingTLS",
                    "serverNames",
                    "listener",
                ]
            };
            let Some(pf) = ctx.fields(item, &ip, known) else {
                continue;
            };
            let kinds: Vec<&str> = match pf.get("rules").filter(|_| !deny) {
                Some(rules) => match ctx.fields(
                    rules,
                    &format!("{ip}.rules"),
                    &["http", "kafka", "dns", "l7proto", "l7"],
                ) {
                    Some(rf) => {
                        let kafka_gone = rc.cluster.version >= CiliumVersion::V1_20;
                        if let (true, Some(k)) = (kafka_gone, rf.get("kafka")) {
                            ctx.warn(k, format!("`{ip}.rules.kafka`: Kafka L7 rules were removed in Cilium 1.20; the rule is read without them, as an L4 rule"));
                        }
                        ["http", "kafka", "dns", "l7proto"]
                            .into_iter()
                            .filter(|k| rf.get(k).is_some() && !(kafka_gone && *k == "kafka"))
                            .collect()
                    }
                    None => Vec::new(),
                },
                None => Vec::new(),
            };
            let has_dns = kinds.contains(&"dns");
            if !kinds.is_empty() {
                if host_policy && (dir == Direction::Ingress || kinds.iter().any(|k| *k != "dns")) {
                    rc.invalid
                        .push(format!("L7 policy is not supported on host {dir} yet"));
                }
                if dir == Direction::Ingress && has_dns {
                    rc.invalid
                        .push("L7 protocol DNS is not supported on ingress yet".to_string());
                }
            }
            let mut port_zero = false;
            let mut these = Vec::new();
            let ports = pf
                .get("ports")
                .and_then(|p| ctx.seq(p, &format!("{ip}.ports")))
                .unwrap_or(&[]);
            if !deny && ports.len() > 40 {
                rc.invalid.push("too many ports, the max is 40".to_string());
            }
            for (j, p) in ports.iter().enumerate() {
                let pp = format!("{ip}.ports[{j}]");
                let Some(ff) = ctx.fields(p, &pp, &["port", "endPort", "protocol"]) else {
                    continue;
                };
                let port_text = ff
                    .get("port")
                    .and_then(|x| ctx.stringish(x, &format!("{pp}.port")))
                    .unwrap_or_default();
                let proto_raw = ff
                    .get("protocol")
                    .and_then(|x| ctx.string(x, &format!("{pp}.protocol")))
                    .unwrap_or_default();
                let end = ff
                    .get("endPort")
                    .and_then(|x| ctx.int(x, &format!("{pp}.endPort")));
                let parsed = parse_port(&port_text);
                if let Err(e) = &parsed {
                    ctx.error(p, format!("`{pp}.port`: {e}"));
                    rc.invalid.push(e.clone());
                }
                if has_dns {
                    if let (Ok(Some(from)), Some(e)) = (&parsed, end) {
                        if e > i64::from(*from) {
                            rc.invalid
                                .push("DNS rules do not support port ranges".to_string());
                        }
                    }
                }
                let protocol = match proto_raw.to_ascii_uppercase().as_str() {
                    "" | "ANY" => Some(Protocol::Any),
                    "TCP" => Some(Protocol::Tcp),
                    "UDP" => Some(Protocol::Udp),
                    "SCTP" => Some(Protocol::Sctp),
                    _ => None,
                };
                let Some(protocol) = protocol else {
                    rc.invalid.push(format!(
                        "invalid protocol {proto_raw:?}, must be {{ tcp | udp | sctp | any }}"
                    ));
                    continue;
                };
                if proto_raw != proto_raw.to_ascii_uppercase() {
                    ctx.warn(p, format!("`{pp}.protocol` `{proto_raw}` is not upper-case; the CRD schema only allows TCP, UDP, SCTP, ANY"));
                }
                if !kinds.is_empty() && !has_dns && proto_raw != "TCP" {
                    rc.invalid.push(format!(
                        "L7 rules can only apply to TCP (not {proto_raw}) except for DNS rules"
                    ));
                }
                if let Some(e) = end {
                    if !(0..=65535).contains(&e) {
                        ctx.error(p, format!("`{pp}.endPort` {e} is out of range 0..65535"));
                    }
                }
                match parsed {
                    Err(_) => {}
                    Ok(None) => {
                        these.push(PortRule {
                            protocol,
                            port: PortSel::Named(port_text.to_ascii_lowercase()),
                        });
                    }
                    Ok(Some(0)) => {
                        port_zero = true;
                        these.push(PortRule {
                            protocol,
                            port: PortSel::Range { from: 0, to: 65535 },
                        });
                    }
                    Ok(Some(from)) => {
                        let to = match end {
                            Some(e) if e > i64::from(from) => {
                                u16::try_from(e.min(65535)).unwrap_or(from)
                            }
                            _ => from,
                        };
                        these.push(PortRule {
                            protocol,
                            port: PortSel::Range { from, to },
                        });
                    }
                }
            }
            if ports.is_empty() {
                port_zero = true;
                these.push(PortRule {
                    protocol: Protocol::Any,
                    port: PortSel::Range { from: 0, to: 65535 },
                });
            }
            if !kinds.is_empty() {
                if port_zero {
                    rc.invalid
                        .push("L7 rules can not be used when a port is 0".to_string());
                }
                if kinds.len() > 1 {
                    rc.invalid.push(
                        "multiple L7 protocol rule types specified in single rule".to_string(),
                    );
                }
                if has_dns && ports.is_empty() {
                    rc.invalid
                        .push("port 53 must be specified for DNS rules".to_string());
                }
            }
            for k in kinds {
                if !l7.iter().any(|x: &String| x == k) {
                    l7.push(k.to_string());
                }
            }
            for k in [
                "terminatingTLS",
                "originatingTLS",
                "serverNames",
                "listener",
            ] {
                if pf.get(k).is_some() {
                    ctx.warn(item, format!("`{ip}.{k}` is read but its effect (TLS inspection, Envoy listener) is not modelled offline"));
                }
            }
            list.extend(these);
        }
    }
    if let Some(ic) = f.get("icmps") {
        let items = ctx.seq(ic, &format!("{path}.icmps")).unwrap_or(&[]);
        let list = out.get_or_insert_with(Vec::new);
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{path}.icmps[{i}]");
            let Some(fi) = ctx.fields(item, &ip, &["fields"]) else {
                continue;
            };
            let fields = fi
                .get("fields")
                .and_then(|x| ctx.seq(x, &format!("{ip}.fields")))
                .unwrap_or(&[]);
            if fields.len() > 40 {
                rc.invalid.push("too many types, the max is 40".to_string());
            }
            for (j, fld) in fields.iter().enumerate() {
                let fp = format!("{ip}.fields[{j}]");
                let Some(ff) = ctx.fields(fld, &fp, &["type", "family"]) else {
                    continue;
                };
                let family = ff
                    .get("family")
                    .and_then(|x| ctx.string(x, &format!("{fp}.family")))
                    .unwrap_or_default();
                let protocol = match family.as_str() {
                    "" | "IPv4" => Protocol::Icmp,
                    "IPv6" => Protocol::Icmpv6,
                    other => {
                        rc.invalid.push(format!("wrong family: {other}"));
                        continue;
                    }
                };
                let Some(t) = ff.get("type") else {
                    ctx.error(fld, format!("`{fp}.type` is required"));
                    continue;
                };
                let ty = match t.as_str().and_then(|s| s.parse::<u16>().ok()) {
                    Some(v) if v <= 255 => Some(v),
                    Some(_) => None,
                    None => t
                        .as_str()
                        .and_then(|name| icmp_type_by_name(name, protocol == Protocol::Icmpv6)),
                };
                match ty {
                    Some(v) => list.push(PortRule { protocol, port: PortSel::Range { from: v, to: v } }),
                    None => ctx.error(t, format!("`{fp}.type` is not an ICMP type (0..255 or a name such as EchoRequest)")),
                }
            }
        }
    }
    (out, l7)
}

fn icmp_type_by_name(name: &str, v6: bool) -> Option<u16> {
    let v4: &[(&str, u16)] = &[
        ("EchoReply", 0),
        ("DestinationUnreachable", 3),
        ("Redirect", 5),
        ("Echo", 8),
        ("EchoRequest", 8),
        ("RouterAdvertisement", 9),
        ("RouterSelection", 10),
        ("TimeExceeded", 11),
        ("ParameterProblem", 12),
        ("Timestamp", 13),
        ("TimestampReply", 14),
        ("Photuris", 40),
        ("ExtendedEchoRequest", 42),
        ("ExtendedEchoReply", 43),
    ];
    let v6t: &[(&str, u16)] = &[
        ("DestinationUnreachable", 1),
        ("PacketTooBig", 2),
        ("TimeExceeded", 3),
        ("ParameterProblem", 4),
        ("EchoRequest", 128),
        ("EchoReply", 129),
        ("MulticastListenerQuery", 130),
        ("MulticastListenerReport", 131),
        ("MulticastListenerDone", 132),
        ("RouterSolicitation", 133),
        ("RouterAdvertisement", 134),
        ("NeighborSolicitation", 135),
        ("NeighborAdvertisement", 136),
        ("RedirectMessage", 137),
        ("RouterRenumbering", 138),
        ("ICMPNodeInformationQuery", 139),
        ("ICMPNodeInformationResponse", 140),
        ("InverseNeighborDiscoverySolicitation", 141),
        ("InverseNeighborDiscoveryAdvertisement", 142),
        ("HomeAgentAddressDiscoveryRequest", 144),
        ("HomeAgentAddressDiscoveryReply", 145),
        ("MobilePrefixSolicitation", 146),
        ("MobilePrefixAdvertisement", 147),
        ("DuplicateAddressRequestCodeSuffix", 157),
        ("DuplicateAddressConfirmationCodeSuffix", 158),
        ("ExtendedEchoRequest", 160),
        ("ExtendedEchoReply", 161),
    ];
    let table = if v6 { v6t } else { v4 };
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// Decodes the rules of a CNP (`namespace: Some`) or CCNP (`None`) object.
/// Returns the rules and Cilium's rejection reason, if any.
pub fn decode_policy(
    ctx: &mut Ctx,
    root: &Fields,
    object: &ObjectRef,
    namespace: Option<&str>,
    cluster: &ClusterConfig,
) -> (Vec<Rule>, Option<String>) {
    let mut rc = RuleCtx {
        namespace,
        matches_init: false,
        node_selector_in_cnp: false,
        cluster,
        object,
        invalid: Vec::new(),
    };
    let mut rules = Vec::new();
    let spec = root.get("spec");
    let specs = root.get("specs");
    let kind = &object.kind;
    let mut rejected = None;
    if spec.is_none() && specs.is_none() {
        rejected = Some(format!("Invalid {kind} spec(s): empty policy"));
    }
    if let Some(s) = spec {
        if let Some(r) = decode_rule(ctx, &mut rc, s, "spec") {
            rules.push(r);
        }
        if let Some(why) = rc.invalid.first() {
            rejected = rejected.or_else(|| Some(format!("Invalid {kind} spec: {why}")));
        } else if rc.node_selector_in_cnp {
            rejected = rejected.or_else(|| {
                Some(format!(
                    "Invalid {kind} spec: rule cannot have NodeSelector"
                ))
            });
        }
    }
    if let Some(list) = specs {
        for (i, s) in ctx.seq(list, "specs").unwrap_or(&[]).iter().enumerate() {
            rc.matches_init = false;
            rc.invalid.clear();
            rc.node_selector_in_cnp = false;
            if let Some(r) = decode_rule(ctx, &mut rc, s, &format!("specs[{i}]")) {
                rules.push(r);
            }
            if let Some(why) = rc.invalid.first() {
                rejected = rejected.or_else(|| Some(format!("Invalid {kind} specs: {why}")));
            } else if rc.node_selector_in_cnp {
                rejected = rejected.or_else(|| {
                    Some(format!(
                        "Invalid {kind} spec: rule cannot have NodeSelector"
                    ))
                });
            }
        }
    }
    (rules, rejected)
}

#[cfg(test)]
mod tests {
    use crate::ingest::Inventory;
    use crate::settings::ClusterConfig;

    fn rejection(version: &str, cidr: &str, except: &str) -> Option<String> {
        let mut cluster = ClusterConfig::default();
        cluster.set_version(version).unwrap();
        let mut inv = Inventory::new(cluster);
        let text = format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: p, namespace: shop}}\nspec:\n  endpointSelector: {{}}\n  egress:\n  - toCIDRSet: [{{cidr: \"{cidr}\", except: [\"{except}\"]}}]\n"
        );
        inv.load_text("p.yaml", &text);
        assert_eq!(inv.policies.len(), 1);
        inv.policies[0].rejected.clone()
    }

    #[test]
    fn cidr_except_wider_than_cidr_is_refused_from_1_20() {
        let msg = "Invalid CiliumNetworkPolicy spec: allow CIDR prefix 10.0.0.0/24 does not contain exclude CIDR prefix 10.0.0.0/16";
        assert_eq!(
            rejection("1.20", "10.0.0.0/24", "10.0.0.0/16").as_deref(),
            Some(msg)
        );
        assert_eq!(rejection("1.19", "10.0.0.0/24", "10.0.0.0/16"), None);
        assert_eq!(rejection("1.18", "10.0.0.0/24", "10.0.0.0/16"), None);
        // Before 1.20 the except's address is read as written.
        assert_eq!(rejection("1.19", "10.0.0.0/24", "10.0.0.9/16"), None);
        assert!(rejection("1.19", "10.0.0.0/24", "10.0.1.0/16").is_some());
        // Inside in every release; another family never is.
        for v in ["1.18", "1.19", "1.20"] {
            assert_eq!(rejection(v, "10.0.0.0/16", "10.0.3.0/24"), None, "{v}");
            assert!(rejection(v, "10.0.0.0/16", "fd00::/64").is_some(), "{v}");
        }
    }
}
