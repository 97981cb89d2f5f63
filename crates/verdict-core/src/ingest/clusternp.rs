//! ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`, Cilium 1.20+
//! with `enable-k8s-cluster-network-policy`) into tiered [`Rule`]s.
//!
//! ```text
//!  Admin rules      by priority + index/100, first match decides (Accept, Deny, Pass)
//!  ordinary rules   CiliumNetworkPolicy, CCNP, NetworkPolicy: deny over allow
//!  Baseline rules   by priority + index/100, first match decides
//!  nothing decided: denied if an ordinary rule turned on default deny, else allowed
//! ```
//!
//! Follows Cilium's `pkg/k8s/cluster_network_policy.go` and the tiers of
//! `pkg/policy/types`; facts and sources in docs/semantics.md
//! ("ClusterNetworkPolicy") and docs/research/cilium-cluster-network-policy.md.

use super::cnp::{is_svc_name, label_selector_with};
use crate::cidr::Cidr;
use crate::decode::{Ctx, Fields};
use crate::labels::{NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, SOURCE_K8S};
use crate::policy::{
    Direction, Entry, Origin, Peer, PeerKind, PortRule, PortSel, Protocol, Rule, Subject, Tier,
};
use crate::selector::{Op, Requirement, Selector};
use crate::settings::ClusterConfig;
use crate::source::ObjectRef;
use crate::yaml::{Node, Value};
use std::sync::Arc;

/// At most this many rules per direction, peers and protocols per rule
/// (the CRD's `maxItems`).
const MAX_ITEMS: usize = 25;

/// A selector over pod or namespace labels (keys of source `k8s`, after
/// `prefix`). Cilium 1.20 builds ClusterNetworkPolicy selectors without
/// Kubernetes' validation (pkg/policy/types/requirements.go
/// `LabelSelectorToRequirements`, "assumes that the provided LabelSelector
/// is validated beforehand", PR 43536): a selector Kubernetes cannot build is
/// not refused but read term by term ([`lenient`]); one whose shape the API
/// server would refuse matches nothing.
fn selector(ctx: &mut Ctx, n: &Node, path: &str, prefix: &str) -> Selector {
    let n = &without_presence_values(ctx, n, path);
    let mut scratch = Vec::new();
    let mut inner = Ctx::new(&ctx.file, &mut scratch);
    inner.object = ctx.object.clone();
    let sel = label_selector_with(&mut inner, n, path, &|k| {
        (SOURCE_K8S.to_string(), format!("{prefix}{k}"))
    });
    // Only the checks Cilium skips failed: the shape is one the API server
    // accepts.
    let semantic_only = scratch
        .iter()
        .filter(|d| d.severity == crate::source::Severity::Error)
        .all(|d| {
            d.message
                .contains("is not one of In, NotIn, Exists, DoesNotExist")
                || d.message.contains("values must be non-empty for operator")
        });
    let sel = match sel {
        Some(sel) => Some(sel),
        None if !semantic_only => None,
        None => lenient(n, path, prefix).map(|(sel, notes)| {
            for (at, msg) in notes {
                ctx.warn(&at, msg);
            }
            scratch.retain(|d| d.severity != crate::source::Severity::Error);
            sel
        }),
    };
    for d in scratch {
        // A wrong type or unknown field is refused by the CRD schema before
        // Cilium sees the object: it stays an error.
        let schema = d.message.contains(", found ") || d.message.starts_with("unknown field");
        let bad = d.severity == crate::source::Severity::Error && !schema;
        let msg = if bad {
            format!(
                "{}; Cilium cannot build this selector and it matches nothing",
                d.message
            )
        } else {
            d.message
        };
        ctx.diags.push(crate::source::Diagnostic {
            severity: if bad {
                crate::source::Severity::Warning
            } else {
                d.severity
            },
            message: msg,
            ..d
        });
    }
    sel.unwrap_or_else(|| Selector::new(vec![Requirement::new(SOURCE_K8S, "", Op::In, vec![])]))
}

/// A selector read as Cilium's unvalidated `LabelSelectorToRequirements`
/// reads it: `In` with no values never matches, `NotIn` with no values always
/// does, an operator other than In, NotIn, Exists, DoesNotExist is skipped
/// (the term then constrains nothing). `None` when the shape is not one the
/// API server accepts (a term without a string `key` or `operator`, values
/// that are not strings). Returns the notes to warn about.
fn lenient(n: &Node, path: &str, prefix: &str) -> Option<(Selector, Vec<(Node, String)>)> {
    let mut reqs = Vec::new();
    let mut notes = Vec::new();
    let key = |k: &str| format!("{prefix}{k}");
    if let Some(ml) = n.get("matchLabels") {
        match &ml.value {
            Value::Map(items) => {
                for (k, v) in items {
                    reqs.push(Requirement::equals(
                        SOURCE_K8S,
                        &key(k.as_str()?),
                        v.as_str()?,
                    ));
                }
            }
            Value::Null => {}
            _ => return None,
        }
    }
    if let Some(me) = n.get("matchExpressions") {
        let items = match &me.value {
            Value::Seq(items) => items.as_slice(),
            Value::Null => &[],
            _ => return None,
        };
        for (i, e) in items.iter().enumerate() {
            let p = format!("{path}.matchExpressions[{i}]");
            let k = e.get("key")?.as_str()?;
            let op_text = e.get("operator")?.as_str()?;
            let values: Vec<String> = match e.get("values") {
                None => Vec::new(),
                Some(v) if v.is_null() => Vec::new(),
                Some(v) => v
                    .as_seq()?
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()?,
            };
            let Some(op) = Op::parse(op_text) else {
                notes.push((e.clone(), format!("`{p}.operator` `{op_text}` is not one of In, NotIn, Exists, DoesNotExist (the API server does not check it); Cilium skips this term, so it constrains nothing")));
                continue;
            };
            match op {
                Op::In if values.is_empty() => notes.push((e.clone(), format!("`{p}`: In without values; Cilium does not validate the selector and the term matches no identity, so the selector matches nothing"))),
                Op::NotIn if values.is_empty() => notes.push((e.clone(), format!("`{p}`: NotIn without values; Cilium does not validate the selector and the term holds for every identity"))),
                _ => {}
            }
            reqs.push(Requirement::new(SOURCE_K8S, &key(k), op, values));
        }
    }
    Some((Selector::new(reqs), notes))
}

/// Whether a selector node writes any term: Cilium's namespace processing
/// turns only a selector with no `matchLabels` and no `matchExpressions`
/// into "every namespace".
fn writes_terms(n: &Node) -> bool {
    let count = |field: &str| match n.get(field).map(|f| &f.value) {
        Some(Value::Map(items)) => items.len(),
        Some(Value::Seq(items)) => items.len(),
        _ => 0,
    };
    count("matchLabels") + count("matchExpressions") > 0
}

/// Cilium builds ClusterNetworkPolicy selectors without Kubernetes'
/// validation: `values` given to `Exists`/`DoesNotExist` are ignored
/// (conformance `tiers/`: such a subject still selects). Returns the node
/// with those values dropped, and warns about each.
fn without_presence_values(ctx: &mut Ctx, n: &Node, path: &str) -> Node {
    let mut out = n.clone();
    let Value::Map(items) = &mut out.value else {
        return out;
    };
    for (k, v) in items.iter_mut() {
        if k.as_str() != Some("matchExpressions") {
            continue;
        }
        let Value::Seq(exprs) = &mut v.value else {
            continue;
        };
        for (i, e) in exprs.iter_mut().enumerate() {
            let presence = matches!(
                e.get("operator").and_then(Node::as_str),
                Some("Exists" | "DoesNotExist")
            );
            let Value::Map(fields) = &mut e.value else {
                continue;
            };
            if !presence {
                continue;
            }
            if let Some(at) = fields
                .iter()
                .position(|(fk, fv)| fk.as_str() == Some("values") && !fv.is_null())
            {
                let pos = fields.get(at).map(|(_, fv)| fv.clone());
                fields.remove(at);
                if let Some(pos) = pos {
                    ctx.warn(&pos, format!("`{path}.matchExpressions[{i}].values` is ignored: Exists and DoesNotExist take no values (Kubernetes would refuse this selector; Cilium ignores them)"));
                }
            }
        }
    }
    out
}

fn ns_exists() -> Requirement {
    Requirement::new(SOURCE_K8S, POD_NAMESPACE_LABEL, Op::Exists, vec![])
}

/// `namespaces: <selector>`: the identities whose namespace labels match;
/// `{}` is every pod (`io.kubernetes.pod.namespace` exists). As in Cilium,
/// a selector made only of `NotIn`/`DoesNotExist` terms also matches
/// identities without a namespace (world, CIDRs, reserved identities).
fn namespaces(ctx: &mut Ctx, n: &Node, path: &str) -> Selector {
    let sel = selector(ctx, n, path, NAMESPACE_LABELS_PREFIX);
    if sel.is_empty() && !writes_terms(n) {
        Selector::new(vec![ns_exists()])
    } else {
        sel
    }
}

/// `pods: {namespaceSelector, podSelector}`.
fn pods(ctx: &mut Ctx, n: &Node, path: &str) -> Option<Selector> {
    let f = ctx.fields(n, path, &["namespaceSelector", "podSelector"])?;
    let Some(nsn) = f.get("namespaceSelector") else {
        ctx.error(n, format!("`{path}.namespaceSelector` is required"));
        return None;
    };
    let Some(psn) = f.get("podSelector") else {
        ctx.error(n, format!("`{path}.podSelector` is required"));
        return None;
    };
    let ns = namespaces(ctx, nsn, &format!("{path}.namespaceSelector"));
    let pod = selector(ctx, psn, &format!("{path}.podSelector"), "");
    let mut reqs = ns.reqs;
    reqs.extend(pod.reqs);
    Some(Selector::new(reqs))
}

/// Decodes one ClusterNetworkPolicy. Returns its rules and, when the API
/// server would refuse it, the reason.
pub fn decode(
    ctx: &mut Ctx,
    root: &Fields,
    object: &ObjectRef,
    cluster: &ClusterConfig,
) -> (Vec<Rule>, Option<String>) {
    let mut invalid: Vec<String> = Vec::new();
    let Some(spec_node) = root.get("spec") else {
        return (Vec::new(), Some("spec: Required value".to_string()));
    };
    let Some(spec) = ctx.fields(
        spec_node,
        "spec",
        &["tier", "priority", "subject", "ingress", "egress"],
    ) else {
        return (Vec::new(), Some("spec: must be an object".to_string()));
    };
    let tier = match spec
        .get("tier")
        .and_then(|t| ctx.string(t, "spec.tier"))
        .as_deref()
    {
        Some("Admin") => Tier::Admin,
        Some("Baseline") => Tier::Baseline,
        Some(other) => {
            invalid.push(format!(
                "spec.tier: Unsupported value: \"{other}\": supported values: \"Admin\", \"Baseline\""
            ));
            Tier::Admin
        }
        None => {
            invalid.push("spec.tier: Required value".to_string());
            Tier::Admin
        }
    };
    let priority = match spec
        .get("priority")
        .map(|p| (p, ctx.int(p, "spec.priority")))
    {
        Some((_, Some(p))) if (0..=1000).contains(&p) => u32::try_from(p).unwrap_or(0),
        Some((_, Some(p))) => {
            invalid.push(format!(
                "spec.priority: Invalid value: {p}: spec.priority in body should be between 0 and 1000"
            ));
            0
        }
        _ => {
            invalid.push("spec.priority: Required value".to_string());
            0
        }
    };
    let subject = match spec.get("subject") {
        None => {
            invalid.push("spec.subject: Required value".to_string());
            None
        }
        Some(sn) => subject(ctx, sn, &mut invalid),
    };
    let origin = |ctx: &Ctx, n: &Node, path: &str| Origin {
        policy: object.clone(),
        path: path.to_string(),
        location: ctx.loc(n),
    };
    let mut entries = Vec::new();
    for (section, dir, peer_key) in [
        ("ingress", Direction::Ingress, "from"),
        ("egress", Direction::Egress, "to"),
    ] {
        let Some(list) = spec.get(section) else {
            continue;
        };
        let items = ctx.seq(list, &format!("spec.{section}")).unwrap_or(&[]);
        if items.len() > MAX_ITEMS {
            invalid.push(format!(
                "spec.{section}: Too many: {}: must have at most {MAX_ITEMS} items",
                items.len()
            ));
        }
        for (i, item) in items.iter().enumerate() {
            let path = format!("spec.{section}[{i}]");
            let Some(f) = ctx.fields(item, &path, &["name", "action", peer_key, "protocols"])
            else {
                continue;
            };
            if let Some(nm) = f.get("name") {
                ctx.string(nm, &format!("{path}.name"));
            }
            let action = f
                .get("action")
                .and_then(|a| ctx.string(a, &format!("{path}.action")));
            let (mut deny, mut pass) = match action.as_deref() {
                Some("Accept") => (false, false),
                Some("Deny") => (true, false),
                Some("Pass") => (false, true),
                Some(other) => {
                    invalid.push(format!("{path}.action: Unsupported value: \"{other}\": supported values: \"Accept\", \"Deny\", \"Pass\""));
                    continue;
                }
                None => {
                    invalid.push(format!("{path}.action: Required value"));
                    continue;
                }
            };
            let (peers, unevaluable, wildcard) = match f.get(peer_key) {
                Some(pn) => rule_peers(
                    ctx,
                    pn,
                    &format!("{path}.{peer_key}"),
                    cluster,
                    &mut invalid,
                ),
                None => {
                    invalid.push(format!("{path}.{peer_key}: Required value"));
                    continue;
                }
            };
            // A peer with no field set: an Accept ignores it, a Deny or
            // a Pass turns into a deny of every peer (Cilium's parser).
            let mut peers = peers;
            if wildcard && (deny || pass) {
                deny = true;
                pass = false;
                peers.push(Peer {
                    from_endpoints: false,
                    text: format!("{peer_key}: {{}} (no peer field: every peer)"),
                    kind: PeerKind::Selectors {
                        selectors: vec![Selector::default()],
                    },
                });
            }
            let ports = f
                .get("protocols")
                .map(|p| protocols(ctx, p, &format!("{path}.protocols"), &mut invalid));
            let index = u32::try_from(i).unwrap_or(99).min(99);
            entries.push(Entry {
                direction: dir,
                deny,
                pass,
                tier,
                level: priority * 100 + index,
                peers,
                requires: Vec::new(),
                ports,
                l7: Vec::new(),
                unevaluable,
                origin: Arc::new(origin(ctx, item, &path)),
            });
        }
    }
    let rejected = invalid
        .first()
        .map(|why| format!("the API server refuses this ClusterNetworkPolicy: {why}"));
    let Some(subject) = subject else {
        return (Vec::new(), rejected);
    };
    let rule = Rule {
        tier,
        priority: Some(priority),
        subject: Subject::Endpoints(subject),
        entries,
        default_deny: [false, false],
        origin: Arc::new(origin(ctx, spec_node, "spec")),
    };
    (vec![rule], rejected)
}

fn subject(ctx: &mut Ctx, n: &Node, invalid: &mut Vec<String>) -> Option<Selector> {
    let f = ctx.fields(n, "spec.subject", &["namespaces", "pods"])?;
    match (f.get("namespaces"), f.get("pods")) {
        (Some(ns), None) => Some(namespaces(ctx, ns, "spec.subject.namespaces")),
        (None, Some(p)) => pods(ctx, p, "spec.subject.pods"),
        _ => {
            invalid.push(
                "spec.subject: Invalid value: \"object\": exactly one of namespaces or pods must be set"
                    .to_string(),
            );
            None
        }
    }
}

/// The peers of one rule; also whether some peer had no field set.
fn rule_peers(
    ctx: &mut Ctx,
    n: &Node,
    path: &str,
    cluster: &ClusterConfig,
    invalid: &mut Vec<String>,
) -> (Vec<Peer>, Vec<String>, bool) {
    let items = ctx.seq(n, path).unwrap_or(&[]);
    if items.is_empty() {
        invalid.push(format!(
            "{path}: Invalid value: 0: {path} in body should have at least 1 items"
        ));
    }
    if items.len() > MAX_ITEMS {
        invalid.push(format!(
            "{path}: Too many: {}: must have at most {MAX_ITEMS} items",
            items.len()
        ));
    }
    let mut peers = Vec::new();
    let mut unevaluable = Vec::new();
    let mut wildcard = false;
    for (j, pn) in items.iter().enumerate() {
        let pp = format!("{path}[{j}]");
        let Some(pf) = ctx.fields(
            pn,
            &pp,
            &["namespaces", "pods", "networks", "nodes", "domainNames"],
        ) else {
            continue;
        };
        let mut any = false;
        if let Some(ns) = pf.get("namespaces") {
            any = true;
            let sel = namespaces(ctx, ns, &format!("{pp}.namespaces"));
            peers.push(Peer {
                from_endpoints: false,
                text: format!("namespaces: {sel}"),
                kind: PeerKind::Selectors {
                    selectors: vec![sel],
                },
            });
        }
        if let Some(p) = pf.get("pods") {
            any = true;
            if let Some(mut sel) = pods(ctx, p, &format!("{pp}.pods")) {
                let text = format!("pods: {sel}");
                // Unless the pod selector names a cluster (kcnpParseNamespacedPod).
                sel = cluster.scope_to_local_cluster(sel, &[SOURCE_K8S]);
                peers.push(Peer {
                    from_endpoints: false,
                    text,
                    kind: PeerKind::Selectors {
                        selectors: vec![sel],
                    },
                });
            }
        }
        if let Some(nets) = pf.get("networks") {
            any = true;
            for text in ctx.strings(nets, &format!("{pp}.networks")) {
                match Cidr::parse(&text) {
                    Ok(c) if c.to_string() == text || !text.contains('/') => peers.push(Peer {
                        from_endpoints: false,
                        text: format!("networks: {text}"),
                        kind: PeerKind::Cidr {
                            cidr: c,
                            except: vec![],
                        },
                    }),
                    _ => invalid.push(format!(
                        "{pp}.networks: Invalid value: \"{text}\": Invalid CIDR format provided"
                    )),
                }
            }
        }
        for (field, what) in [
            (
                "nodes",
                "nodes peers select remote nodes by their node labels",
            ),
            (
                "domainNames",
                "domainNames peers select addresses by DNS name",
            ),
        ] {
            if let Some(x) = pf.get(field) {
                any = true;
                let _ = x;
                let note = format!("{pp}.{field}: {what}; not evaluable offline");
                peers.push(Peer {
                    from_endpoints: false,
                    text: format!("{field}: ..."),
                    kind: PeerKind::Unevaluable {
                        reason: note.clone(),
                    },
                });
                unevaluable.push(note);
            }
        }
        wildcard |= !any;
    }
    (peers, unevaluable, wildcard)
}

/// `protocols`: each item one port rule; `destinationNamedPort` is a named
/// port of any protocol.
fn protocols(ctx: &mut Ctx, n: &Node, path: &str, invalid: &mut Vec<String>) -> Vec<PortRule> {
    let items = ctx.seq(n, path).unwrap_or(&[]);
    if items.len() > MAX_ITEMS {
        invalid.push(format!(
            "{path}: Too many: {}: must have at most {MAX_ITEMS} items",
            items.len()
        ));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(f) = ctx.fields(item, &p, &["tcp", "udp", "sctp", "destinationNamedPort"]) else {
            continue;
        };
        if let Some(named) = f.get("destinationNamedPort") {
            if let Some(name) = ctx.string(named, &format!("{p}.destinationNamedPort")) {
                if is_svc_name(&name) {
                    out.push(PortRule {
                        protocol: Protocol::Any,
                        port: PortSel::Named(name.to_ascii_lowercase()),
                    });
                } else {
                    ctx.error(
                        named,
                        format!("`{p}.destinationNamedPort` `{name}` is not a port name"),
                    );
                    invalid.push(format!(
                        "{p}.destinationNamedPort: Invalid value: \"{name}\""
                    ));
                }
            }
            continue;
        }
        for (key, protocol) in [
            ("tcp", Protocol::Tcp),
            ("udp", Protocol::Udp),
            ("sctp", Protocol::Sctp),
        ] {
            let Some(pn) = f.get(key) else { continue };
            let pp = format!("{p}.{key}");
            let Some(pf) = ctx.fields(pn, &pp, &["destinationPort"]) else {
                continue;
            };
            let Some(dp) = pf.get("destinationPort") else {
                out.push(PortRule {
                    protocol,
                    port: PortSel::Range { from: 0, to: 65535 },
                });
                continue;
            };
            let dpp = format!("{pp}.destinationPort");
            let Some(df) = ctx.fields(dp, &dpp, &["number", "range"]) else {
                continue;
            };
            if let Some(num) = df.get("number") {
                match ctx.int(num, &format!("{dpp}.number")).map(u16::try_from) {
                    Some(Ok(v)) if v >= 1 => out.push(PortRule {
                        protocol,
                        port: PortSel::Range { from: v, to: v },
                    }),
                    Some(_) => invalid.push(format!(
                        "{dpp}.number: Invalid value: must be between 1 and 65535"
                    )),
                    None => {}
                }
            }
            if let Some(range) = df.get("range") {
                let Some(rf) = ctx.fields(range, &format!("{dpp}.range"), &["start", "end"]) else {
                    continue;
                };
                let start = rf
                    .get("start")
                    .and_then(|x| ctx.int(x, &format!("{dpp}.range.start")))
                    .and_then(|x| u16::try_from(x).ok());
                let end = rf
                    .get("end")
                    .and_then(|x| ctx.int(x, &format!("{dpp}.range.end")))
                    .and_then(|x| u16::try_from(x).ok());
                match (start, end) {
                    (Some(s), Some(e)) if s >= 1 && s < e => out.push(PortRule {
                        protocol,
                        port: PortSel::Range { from: s, to: e },
                    }),
                    (Some(s), Some(e)) if s >= e => invalid.push(format!(
                        "{dpp}.range: Invalid value: \"object\": Start port must be less than End port"
                    )),
                    _ => invalid.push(format!(
                        "{dpp}.range: Invalid value: start and end must be between 1 and 65535"
                    )),
                }
            }
        }
    }
    out
}
