//! Entities and the selectors Cilium maps them to (pkg/policy/api/entity.go).

use crate::labels::{CLUSTER_LABEL, SOURCE_K8S, SOURCE_RESERVED};
use crate::selector::{Op, Requirement, Selector};

pub const ENTITIES: &[&str] = &[
    "all",
    "world",
    "world-ipv4",
    "world-ipv6",
    "cluster",
    "host",
    "remote-node",
    "kube-apiserver",
    "ingress",
    "health",
    "init",
    "unmanaged",
    "none",
];

fn reserved(name: &str) -> Selector {
    Selector::new(vec![Requirement::equals(SOURCE_RESERVED, name, "")])
}

/// The selectors an entity stands for; `None` for an unknown entity.
///
/// `world` covers the world identities of both families (in a single-stack
/// cluster every external address has the plain `reserved:world` label, so
/// `world-ipv4`/`world-ipv6` then select nothing but themselves). `cluster`
/// covers every reserved in-cluster identity and every endpoint of this
/// cluster (label `io.cilium.k8s.policy.cluster=<name>`).
pub fn entity_selectors(
    name: &str,
    cluster_name: &str,
    _dual_stack: bool,
) -> Option<Vec<Selector>> {
    let sels = match name {
        "all" => vec![Selector::default()],
        "world" => vec![
            reserved("world"),
            reserved("world-ipv4"),
            reserved("world-ipv6"),
        ],
        "world-ipv4" => vec![reserved("world-ipv4")],
        "world-ipv6" => vec![reserved("world-ipv6")],
        "host" => vec![reserved("host")],
        "remote-node" => vec![reserved("remote-node")],
        "kube-apiserver" => vec![reserved("kube-apiserver")],
        "ingress" => vec![reserved("ingress")],
        "health" => vec![reserved("health")],
        "init" => vec![reserved("init")],
        "unmanaged" => vec![reserved("unmanaged")],
        "none" => vec![Selector::new(vec![Requirement::new(
            SOURCE_RESERVED,
            "none",
            Op::Exists,
            vec![],
        )])],
        "cluster" => vec![
            reserved("host"),
            reserved("remote-node"),
            reserved("init"),
            reserved("ingress"),
            reserved("health"),
            reserved("unmanaged"),
            reserved("kube-apiserver"),
            Selector::new(vec![Requirement::equals(
                SOURCE_K8S,
                CLUSTER_LABEL,
                cluster_name,
            )]),
        ],
        _ => return None,
    };
    Some(sels)
}
