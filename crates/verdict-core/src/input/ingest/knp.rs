//! Kubernetes NetworkPolicy into [`Rule`]s, as Cilium translates it
//! (`ParseNetworkPolicy`, pkg/k8s/network_policy.go).
//!
//! * subject: `podSelector` (keys of source `k8s`) in the policy's namespace;
//! * a peer with `namespaceSelector` matches namespace labels
//!   (`io.cilium.k8s.namespace.labels.*`; `{}` means "any namespace"), ANDed
//!   with its `podSelector`; a peer with only `podSelector` is scoped to the
//!   policy's namespace; `ipBlock` becomes a CIDR peer with exceptions;
//! * absent or empty `from`/`to` selects every identity, world included;
//! * absent `ports` means every port; a port without `port` means every
//!   port of its protocol (TCP by default);
//! * `policyTypes` turns on default deny for a direction without rules.

use super::cnp::{is_svc_name, label_selector_with};
use crate::cidr::Cidr;
use crate::decode::{Ctx, Fields};
use crate::labels::{NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, SOURCE_K8S};
use crate::policy::{
    Direction, Entry, Origin, Peer, PeerKind, PortRule, PortSel, Protocol, Rule, Subject,
};
use crate::selector::{Op, Requirement, Selector};
use crate::source::ObjectRef;
use crate::yaml::Node;

/// A KNP label selector: every key gets source `k8s` and is taken whole
/// (`NewESFromK8sLabelSelector("k8s.", ...)`), after `key_prefix`.
fn k8s_selector(ctx: &mut Ctx, n: &Node, path: &str, key_prefix: &str) -> Option<Selector> {
    label_selector_with(ctx, n, path, &|k| {
        (SOURCE_K8S.to_string(), format!("{key_prefix}{k}"))
    })
}

pub fn decode_knp(
    ctx: &mut Ctx,
    root: &Fields,
    object: &ObjectRef,
    namespace: &str,
    cluster: &crate::settings::ClusterConfig,
) -> Vec<Rule> {
    let Some(spec_node) = root.get("spec") else {
        // No (or a null) spec: the API server defaults it to an empty
        // podSelector with policyTypes [Ingress]: every pod of the
        // namespace is isolated for ingress.
        let Some(at) = root.get("kind").or_else(|| root.get("metadata")) else {
            return Vec::new();
        };
        return vec![Rule {
            tier: crate::policy::Tier::Normal,
            priority: None,
            subject: Subject::Endpoints(Selector::new(vec![Requirement::equals(
                SOURCE_K8S,
                POD_NAMESPACE_LABEL,
                namespace,
            )])),
            entries: Vec::new(),
            default_deny: [true, false],
            origin: std::sync::Arc::new(Origin {
                policy: object.clone(),
                path: "spec (absent: podSelector {}, policyTypes [Ingress])".to_string(),
                location: ctx.loc(at),
            }),
        }];
    };
    let Some(spec) = ctx.fields(
        spec_node,
        "spec",
        &["podSelector", "policyTypes", "ingress", "egress"],
    ) else {
        return Vec::new();
    };
    let origin = |ctx: &Ctx, n: &Node, path: &str| Origin {
        policy: object.clone(),
        path: path.to_string(),
        location: ctx.loc(n),
    };
    let subject = match spec.get("podSelector") {
        Some(ps) => k8s_selector(ctx, ps, "spec.podSelector", ""),
        None => Some(Selector::default()),
    };
    let Some(subject) = subject else {
        return Vec::new();
    };
    let subject = subject.with(Requirement::equals(
        SOURCE_K8S,
        POD_NAMESPACE_LABEL,
        namespace,
    ));
    let types: Vec<String> = spec
        .get("policyTypes")
        .map(|t| ctx.strings(t, "spec.policyTypes"))
        .unwrap_or_default();
    for t in &types {
        if t != "Ingress" && t != "Egress" {
            if let Some(n) = spec.get("policyTypes") {
                ctx.error(
                    n,
                    format!("`spec.policyTypes` value `{t}` is not Ingress or Egress"),
                );
            }
        }
    }
    let mut entries = Vec::new();
    let mut has = [false, false];
    for (section, dir, peer_key) in [
        ("ingress", Direction::Ingress, "from"),
        ("egress", Direction::Egress, "to"),
    ] {
        let Some(list) = spec.get(section) else {
            continue;
        };
        let items = ctx.seq(list, &format!("spec.{section}")).unwrap_or(&[]);
        for (i, item) in items.iter().enumerate() {
            let path = format!("spec.{section}[{i}]");
            let Some(f) = ctx.fields(item, &path, &[peer_key, "ports"]) else {
                continue;
            };
            has[dir.index()] = true;
            let mut peers = Vec::new();
            let plist = f
                .get(peer_key)
                .and_then(|p| ctx.seq(p, &format!("{path}.{peer_key}")))
                .unwrap_or(&[]);
            if plist.is_empty() {
                peers.push(Peer {
                    from_endpoints: false,
                    text: format!("{peer_key}: any (empty)"),
                    kind: PeerKind::Selectors {
                        selectors: vec![Selector::default()],
                    },
                });
            }
            for (j, pn) in plist.iter().enumerate() {
                let pp = format!("{path}.{peer_key}[{j}]");
                let Some(pf) =
                    ctx.fields(pn, &pp, &["podSelector", "namespaceSelector", "ipBlock"])
                else {
                    continue;
                };
                if let Some(ib) = pf.get("ipBlock") {
                    if let Some(p) = ip_block(ctx, ib, &format!("{pp}.ipBlock")) {
                        peers.push(p);
                    }
                    continue;
                }
                let pod = match pf.get("podSelector") {
                    Some(ps) => k8s_selector(ctx, ps, &format!("{pp}.podSelector"), ""),
                    None => Some(Selector::default()),
                };
                let Some(pod) = pod else { continue };
                let sel = match pf.get("namespaceSelector") {
                    Some(nsn) => {
                        let Some(ns) = k8s_selector(
                            ctx,
                            nsn,
                            &format!("{pp}.namespaceSelector"),
                            NAMESPACE_LABELS_PREFIX,
                        ) else {
                            continue;
                        };
                        let ns = if ns.is_empty() {
                            Selector::new(vec![Requirement::new(
                                SOURCE_K8S,
                                POD_NAMESPACE_LABEL,
                                Op::Exists,
                                vec![],
                            )])
                        } else {
                            ns
                        };
                        let mut reqs = ns.reqs;
                        reqs.extend(pod.reqs);
                        Selector::new(reqs)
                    }
                    None => {
                        if pf.get("podSelector").is_none() {
                            ctx.error(
                                pn,
                                format!(
                                    "`{pp}` has none of podSelector, namespaceSelector, ipBlock"
                                ),
                            );
                            continue;
                        }
                        pod.with(Requirement::equals(
                            SOURCE_K8S,
                            POD_NAMESPACE_LABEL,
                            namespace,
                        ))
                    }
                };
                let text = format!("{peer_key}: {sel}");
                // `policy-default-local-cluster`: pod and namespace peers
                // match the local cluster only, unless the podSelector
                // names a cluster (parseNetworkPolicyPeer).
                let sel = cluster.scope_to_local_cluster(sel, &[SOURCE_K8S]);
                peers.push(Peer {
                    from_endpoints: false,
                    text,
                    kind: PeerKind::Selectors {
                        selectors: vec![sel],
                    },
                });
            }
            let ports = f
                .get("ports")
                .map(|p| knp_ports(ctx, p, &format!("{path}.ports")));
            entries.push(Entry {
                direction: dir,
                deny: false,
                pass: false,
                tier: crate::policy::Tier::Normal,
                level: 0,
                peers,
                requires: Vec::new(),
                ports,
                l7: Vec::new(),
                unevaluable: Vec::new(),
                origin: std::sync::Arc::new(origin(ctx, item, &path)),
            });
        }
    }
    let has_type = |t: &str| types.iter().any(|x| x == t);
    let default_deny = [
        has[0] || has_type("Ingress") || !has_type("Egress"),
        has[1] || has_type("Egress"),
    ];
    vec![Rule {
        tier: crate::policy::Tier::Normal,
        priority: None,
        subject: Subject::Endpoints(subject),
        entries,
        default_deny,
        origin: std::sync::Arc::new(origin(ctx, spec_node, "spec")),
    }]
}

fn ip_block(ctx: &mut Ctx, n: &Node, path: &str) -> Option<Peer> {
    let f = ctx.fields(n, path, &["cidr", "except"])?;
    let text = f
        .get("cidr")
        .and_then(|c| ctx.string(c, &format!("{path}.cidr")))?;
    let cidr = match Cidr::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            ctx.error(n, format!("`{path}.cidr`: {e}"));
            return None;
        }
    };
    let mut except = Vec::new();
    if let Some(ex) = f.get("except") {
        for e in ctx.strings(ex, &format!("{path}.except")) {
            match Cidr::parse(&e) {
                Ok(x) => {
                    if !cidr.contains(&x) {
                        ctx.error(ex, format!("`{path}.except` {e} is not inside {text}"));
                    }
                    except.push(x);
                }
                Err(err) => ctx.error(ex, format!("`{path}.except`: {err}")),
            }
        }
    }
    Some(Peer {
        from_endpoints: false,
        text: format!("ipBlock: {text}"),
        kind: PeerKind::Cidr { cidr, except },
    })
}

fn knp_ports(ctx: &mut Ctx, n: &Node, path: &str) -> Vec<PortRule> {
    let mut out = Vec::new();
    let items = ctx.seq(n, path).unwrap_or(&[]);
    if items.is_empty() {
        out.push(PortRule {
            protocol: Protocol::Any,
            port: PortSel::Range { from: 0, to: 65535 },
        });
    }
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(f) = ctx.fields(item, &p, &["port", "endPort", "protocol"]) else {
            continue;
        };
        let protocol = match f
            .get("protocol")
            .and_then(|x| ctx.string(x, &format!("{p}.protocol")))
        {
            None => Protocol::Tcp,
            Some(t) => match t.as_str() {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                _ => {
                    ctx.error(
                        item,
                        format!("`{p}.protocol` `{t}` is not one of TCP, UDP, SCTP"),
                    );
                    continue;
                }
            },
        };
        let end = f
            .get("endPort")
            .and_then(|x| ctx.int(x, &format!("{p}.endPort")));
        if end.is_some() && f.get("port").is_none() {
            ctx.error(
                item,
                format!("`{p}.endPort` may only be given together with `port` (the API server refuses this policy)"),
            );
            continue;
        }
        let port = match f.get("port") {
            None => PortSel::Range { from: 0, to: 65535 },
            Some(pn) => {
                // int-or-string: a boolean, list or mapping is refused.
                if !matches!(crate::decode::json_type(pn), "integer" | "string") {
                    ctx.error(
                        pn,
                        format!(
                            "`{p}.port` must be a port number or name, found {}",
                            crate::decode::json_type(pn)
                        ),
                    );
                    continue;
                }
                let text = pn.as_str().unwrap_or_default().to_string();
                match text.parse::<u16>() {
                    Ok(v) if v >= 1 && pn.type_name() == "integer" => {
                        let to = match end {
                            Some(e) if e >= i64::from(v) && e <= 65535 => {
                                u16::try_from(e).unwrap_or(v)
                            }
                            Some(e) => {
                                ctx.error(
                                    pn,
                                    format!(
                                        "`{p}.endPort` {e} must be between `port` ({v}) and 65535"
                                    ),
                                );
                                v
                            }
                            None => v,
                        };
                        PortSel::Range { from: v, to }
                    }
                    _ if is_svc_name(&text) => PortSel::Named(text.to_ascii_lowercase()),
                    _ => {
                        ctx.error(pn, format!("`{p}.port` `{text}` is neither a port number 1..65535 nor a port name"));
                        continue;
                    }
                }
            }
        };
        out.push(PortRule { protocol, port });
    }
    out
}
