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
//! Its selectors (subject, peers: namespaces, pods) are read in
//! `selectors.rs`.

mod selectors;

use super::cnp::is_svc_name;
use crate::cidr::Cidr;
use crate::decode::{Ctx, Fields};
use crate::labels::SOURCE_K8S;
use crate::policy::{
    Direction, Entry, Origin, Peer, PeerKind, PortRule, PortSel, Protocol, Rule, Subject, Tier,
};
use crate::selector::Selector;
use crate::settings::ClusterConfig;
use crate::source::ObjectRef;
use crate::yaml::Node;
use selectors::{namespaces, pods};
use std::sync::Arc;

/// At most this many rules per direction, peers and protocols per rule
/// (the CRD's `maxItems`).
const MAX_ITEMS: usize = 25;

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
