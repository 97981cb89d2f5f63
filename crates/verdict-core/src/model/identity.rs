//! Security identities: label sets as the Cilium agent derives them.
//!
//! * pods: their labels (source `k8s`), the namespace's labels under
//!   `io.cilium.k8s.namespace.labels.`, `io.kubernetes.pod.namespace`, the
//!   service account and the cluster name, passed through the default
//!   identity label filter (pkg/labelsfilter);
//! * from Cilium 1.20, the pod's named container ports as generated
//!   `gen:io.cilium.k8s.named-ports` labels ([`named_ports_labels`]);
//! * reserved identities with fixed numbers (pkg/identity/numericidentity.go);
//! * CIDR identities for addresses outside the cluster.

use crate::cidr::Cidr;
use crate::labels::{
    Label, LabelSet, CLUSTER_LABEL, NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL,
    SERVICE_ACCOUNT_LABEL, SOURCE_CIDR, SOURCE_GENERATED, SOURCE_K8S,
};
use crate::policy::Protocol;
use crate::settings::ClusterConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Numeric ids of reserved identities.
pub const RESERVED: &[(&str, u32)] = &[
    ("host", 1),
    ("world", 2),
    ("unmanaged", 3),
    ("health", 4),
    ("init", 5),
    ("remote-node", 6),
    ("kube-apiserver", 7),
    ("ingress", 8),
    ("world-ipv4", 9),
    ("world-ipv6", 10),
];

/// First numeric id for cluster-local identities.
pub const FIRST_LOCAL_ID: u32 = 256;
/// Numeric ids for CIDR identities (Cilium's local-scope range).
pub const FIRST_CIDR_ID: u32 = 16_777_217;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "lowercase")]
pub enum IdentityKind {
    Reserved(String),
    Endpoint,
    Cidr(Cidr),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Identity {
    pub id: u32,
    pub kind: IdentityKind,
    pub labels: LabelSet,
}

impl Identity {
    pub fn reserved(name: &str) -> Option<Identity> {
        let id = RESERVED.iter().find(|(n, _)| *n == name)?.1;
        let mut labels = vec![Label::reserved(name)];
        if name == "kube-apiserver" {
            labels.push(Label::reserved("remote-node"));
        }
        Some(Identity {
            id,
            kind: IdentityKind::Reserved(name.to_string()),
            labels: LabelSet::new(labels),
        })
    }

    /// The identity of an address outside the cluster.
    pub fn cidr(cidr: Cidr, dual_stack: bool) -> Identity {
        let world = match (dual_stack, cidr.is_ipv4()) {
            (false, _) => "world",
            (true, true) => "world-ipv4",
            (true, false) => "world-ipv6",
        };
        if cidr.is_default_route() {
            return Identity::reserved(world).unwrap_or(Identity {
                id: 2,
                kind: IdentityKind::Reserved(world.to_string()),
                labels: LabelSet::new(vec![Label::reserved(world)]),
            });
        }
        Identity {
            id: FIRST_CIDR_ID,
            kind: IdentityKind::Cidr(cidr),
            labels: LabelSet::new(vec![
                Label::new(SOURCE_CIDR, &cidr.to_string(), ""),
                Label::reserved(world),
            ]),
        }
    }

    pub fn is_endpoint(&self) -> bool {
        self.kind == IdentityKind::Endpoint
    }

    pub fn reserved_name(&self) -> Option<&str> {
        match &self.kind {
            IdentityKind::Reserved(n) => Some(n),
            _ => None,
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            IdentityKind::Reserved(n) => write!(f, "reserved:{n} ({})", self.id),
            IdentityKind::Cidr(c) => write!(f, "cidr:{c}"),
            IdentityKind::Endpoint => write!(f, "{} ({})", self.labels, self.id),
        }
    }
}

/// The default identity label filter of one release (pkg/labelsfilter,
/// `defaultLabelPrefixCfg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelFilter {
    /// `!topology.kubernetes.io` is among the defaults: 1.19.0-rc.1 and
    /// later, 1.18.7 and later (cilium/cilium PR 43725).
    pub ignore_topology: bool,
}

impl LabelFilter {
    /// The filter of the newest releases.
    pub const NEWEST: LabelFilter = LabelFilter {
        ignore_topology: true,
    };

    /// The filter of the release `cluster` describes.
    pub fn of(cluster: &ClusterConfig) -> LabelFilter {
        LabelFilter {
            ignore_topology: cluster.ignores_topology_labels(),
        }
    }

    /// Whether the filter keeps a `k8s` label key.
    pub fn keeps(self, key: &str) -> bool {
        keep_label_with(key, self)
    }
}

/// Whether the newest default identity label filter keeps a `k8s` label key.
pub fn keep_label(key: &str) -> bool {
    LabelFilter::NEWEST.keeps(key)
}

/// pkg/labelsfilter/filter.go: every pattern must match at the start of the
/// key; the longest matching include is compared with the shortest matching
/// ignore, and a label is kept when nothing ignores it or the include is
/// longer. With only the default list, unmatched labels are kept.
fn keep_label_with(key: &str, filter: LabelFilter) -> bool {
    const INCLUDE: &[&str] = &[
        POD_NAMESPACE_LABEL,
        "io.cilium.k8s.namespace.labels",
        "app.kubernetes.io",
        CLUSTER_LABEL,
        SERVICE_ACCOUNT_LABEL,
    ];
    const IGNORE_PREFIX: &[&str] = &[
        "io.kubernetes",
        "kubernetes.io",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
        "batch.kubernetes.io/job-completion-index",
        "batch.kubernetes.io/controller-uid",
        "k8s.io",
        "pod-template-generation",
        "pod-template-hash",
        "controller-revision-hash",
        "controller-uid",
        "etcd_node",
    ];
    let included = INCLUDE
        .iter()
        .filter(|p| key.starts_with(*p))
        .map(|p| p.len())
        .max()
        .unwrap_or(0);
    let mut ignored: Vec<usize> = IGNORE_PREFIX
        .iter()
        .filter(|p| key.starts_with(*p))
        .map(|p| p.len())
        .collect();
    // `.*beta\.kubernetes\.io`: greedy, so the match ends after the last occurrence.
    if let Some(i) = key.rfind("beta.kubernetes.io") {
        ignored.push(i + "beta.kubernetes.io".len());
    }
    if filter.ignore_topology && key.starts_with(TOPOLOGY_PREFIX) {
        ignored.push(TOPOLOGY_PREFIX.len());
    }
    // `annotation.*` matches the whole key.
    if key.starts_with("annotation") {
        ignored.push(key.len());
    }
    match ignored.into_iter().min() {
        None => true,
        Some(ig) => included > ig,
    }
}

/// Node topology labels Kubernetes 1.35 copies onto pods
/// (`topology.kubernetes.io/zone`, `/region`).
const TOPOLOGY_PREFIX: &str = "topology.kubernetes.io";

/// The input to a pod's identity.
pub struct PodLabels<'a> {
    pub namespace: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub namespace_labels: &'a BTreeMap<String, String>,
    pub service_account: &'a str,
    pub cluster: &'a str,
    /// The release's identity label filter.
    pub filter: LabelFilter,
    /// Labels the agent adds after the filter (Cilium 1.20: the pod's
    /// named ports, [`named_ports_labels`]); empty before 1.20.
    pub generated: &'a [Label],
}

/// A pod's identity labels after Cilium's filter.
pub fn pod_identity_labels(p: &PodLabels) -> LabelSet {
    let mut out = Vec::new();
    for (k, v) in p.labels {
        if k.starts_with("io.cilium.k8s.") {
            continue;
        }
        out.push(Label::k8s(k, v));
    }
    for (k, v) in p.namespace_labels {
        out.push(Label::k8s(&format!("{NAMESPACE_LABELS_PREFIX}{k}"), v));
    }
    out.push(Label::k8s(POD_NAMESPACE_LABEL, p.namespace));
    out.push(Label::k8s(SERVICE_ACCOUNT_LABEL, p.service_account));
    out.push(Label::k8s(CLUSTER_LABEL, p.cluster));
    out.retain(|l| l.source != SOURCE_K8S || p.filter.keeps(&l.key));
    out.extend(p.generated.iter().cloned());
    LabelSet::new(out)
}

/// The key of Cilium's generated named-ports identity label; further
/// labels of one pod are `<key>-1`, `<key>-2`, ...
/// (pkg/k8s/apis/cilium.io/named_ports.go `NamedPortsIdentityLabelNameForIndex`).
pub const NAMED_PORTS_LABEL: &str = "io.cilium.k8s.named-ports";

/// Kubernetes' limit on a label value (k8s.io/apimachinery
/// `content.LabelValueMaxLength`), where Cilium starts the next label.
const LABEL_VALUE_MAX: usize = 63;

/// Cilium 1.20's named-ports identity labels of a pod (pkg/k8s
/// `GetPodMetadata` and `NamedPortsIdentityLabels`, cilium/cilium PRs 45760
/// and 46520): the container ports that have a name valid as an IANA
/// service name, the name lower-cased (a later port of the same name
/// replaces an earlier one, as in Cilium's map), sorted by name, each
/// written `name.PROTOCOL.port`, joined by `_`; a port that would take a
/// value past 63 characters starts the next label. Source `gen`. A pod
/// without named ports gets none. `ports` are (name, protocol, number) in
/// the pod spec's order.
pub fn named_ports_labels<'p>(
    ports: impl IntoIterator<Item = (&'p str, Protocol, u16)>,
) -> Vec<Label> {
    let mut named: BTreeMap<String, (Protocol, u16)> = BTreeMap::new();
    for (name, protocol, port) in ports {
        // `ValidatePortName` (pkg/types/portmap.go) skips other names,
        // `newPortProto` a zero port.
        if port == 0 || !crate::ingest::cnp::is_svc_name(name) {
            continue;
        }
        named.insert(name.to_ascii_lowercase(), (protocol, port));
    }
    let mut labels = Vec::new();
    let mut value = String::new();
    let push = |labels: &mut Vec<Label>, value: &mut String| {
        let key = match labels.len() {
            0 => NAMED_PORTS_LABEL.to_string(),
            i => format!("{NAMED_PORTS_LABEL}-{i}"),
        };
        labels.push(Label::new(SOURCE_GENERATED, &key, value));
        value.clear();
    };
    for (name, (protocol, port)) in &named {
        let part = format!("{name}.{protocol}.{port}");
        if !value.is_empty() && value.len() + 1 + part.len() > LABEL_VALUE_MAX {
            push(&mut labels, &mut value);
        }
        if !value.is_empty() {
            value.push('_');
        }
        value.push_str(&part);
    }
    if !value.is_empty() {
        push(&mut labels, &mut value);
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_drops_generated_labels() {
        assert!(!keep_label("pod-template-hash"));
        assert!(!keep_label("controller-revision-hash"));
        assert!(!keep_label("statefulset.kubernetes.io/pod-name"));
        assert!(!keep_label("kubernetes.io/hostname"));
        assert!(!keep_label("failure-domain.beta.kubernetes.io/zone"));
        assert!(keep_label("app.kubernetes.io/name"));
        assert!(keep_label(
            "io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name"
        ));
        assert!(keep_label("app"));
        assert!(!keep_label("topology.kubernetes.io/zone"));
        let old = LabelFilter {
            ignore_topology: false,
        };
        assert!(old.keeps("topology.kubernetes.io/zone"));
        assert!(old.keeps("topology.kubernetes.io/region"));
        assert!(!old.keeps("pod-template-hash"));
        // Namespace labels keep their include prefix, which is longer.
        assert!(keep_label(
            "io.cilium.k8s.namespace.labels.topology.kubernetes.io/zone"
        ));
        assert!(!keep_label("annotation.foo"));
        assert!(keep_label("io.kubernetes.pod.namespace"));
    }

    #[test]
    fn pod_labels_carry_namespace_and_service_account() {
        let labels = BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("pod-template-hash".into(), "abc".into()),
        ]);
        let ns = BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            "shop".to_string(),
        )]);
        let set = pod_identity_labels(&PodLabels {
            namespace: "shop",
            labels: &labels,
            namespace_labels: &ns,
            service_account: "default",
            cluster: "default",
            filter: LabelFilter::NEWEST,
            generated: &[],
        });
        assert_eq!(
            set.to_strings(),
            vec![
                "k8s:app=web",
                "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop",
                "k8s:io.cilium.k8s.policy.cluster=default",
                "k8s:io.cilium.k8s.policy.serviceaccount=default",
                "k8s:io.kubernetes.pod.namespace=shop",
            ]
        );
    }

    #[test]
    fn named_ports_labels_follow_cilium() {
        // Cilium's own cases (pkg/k8s TestNamedPortsIdentityLabels).
        let one = named_ports_labels([
            ("https", Protocol::Tcp, 443),
            ("dns", Protocol::Udp, 53),
            ("http", Protocol::Tcp, 80),
        ]);
        assert_eq!(
            LabelSet::new(one).to_strings(),
            vec!["gen:io.cilium.k8s.named-ports=dns.UDP.53_http.TCP.80_https.TCP.443"]
        );
        let five: Vec<(String, u16)> = (0..5u16)
            .map(|i| (format!("port-{}", char::from(b'a' + i as u8)), 8000 + i))
            .collect();
        let split = named_ports_labels(five.iter().map(|(n, p)| (n.as_str(), Protocol::Tcp, *p)));
        assert_eq!(
            split.iter().map(Label::to_string).collect::<Vec<_>>(),
            vec![
                "gen:io.cilium.k8s.named-ports=port-a.TCP.8000_port-b.TCP.8001_port-c.TCP.8002_port-d.TCP.8003",
                "gen:io.cilium.k8s.named-ports-1=port-e.TCP.8004",
            ]
        );
        assert_eq!(split[0].value.len(), 63);
        assert!(named_ports_labels([]).is_empty());
        // The user's CoreDNS pods on 1.20.2 (docs/semantics.md): cut after
        // 49 characters because the next port would make 66.
        let coredns = named_ports_labels([
            ("dns", Protocol::Udp, 53),
            ("dns-tcp", Protocol::Tcp, 53),
            ("metrics", Protocol::Tcp, 9153),
            ("liveness-probe", Protocol::Tcp, 8080),
            ("readiness-probe", Protocol::Tcp, 8181),
        ]);
        assert_eq!(
            coredns.iter().map(Label::to_string).collect::<Vec<_>>(),
            vec![
                "gen:io.cilium.k8s.named-ports=dns.UDP.53_dns-tcp.TCP.53_liveness-probe.TCP.8080",
                "gen:io.cilium.k8s.named-ports-1=metrics.TCP.9153_readiness-probe.TCP.8181",
            ]
        );
        // Names are lower-cased, invalid names and port 0 skipped, a later
        // port of one name replaces an earlier one.
        let odd = named_ports_labels([
            ("HTTP", Protocol::Tcp, 80),
            ("http", Protocol::Tcp, 8080),
            ("not_a_name", Protocol::Tcp, 81),
            ("zero", Protocol::Tcp, 0),
            ("sctp-x", Protocol::Sctp, 9),
        ]);
        assert_eq!(
            odd.iter().map(Label::to_string).collect::<Vec<_>>(),
            vec!["gen:io.cilium.k8s.named-ports=http.TCP.8080_sctp-x.SCTP.9"]
        );
    }

    #[test]
    fn kube_apiserver_is_also_remote_node() {
        let id = Identity::reserved("kube-apiserver").unwrap();
        assert!(id.labels.has_reserved("remote-node"));
        assert_eq!(id.id, 7);
    }
}
