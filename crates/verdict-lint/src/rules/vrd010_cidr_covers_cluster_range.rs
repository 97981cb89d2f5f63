use crate::{Context, Finding, Level, Meta, Rule};
use verdict_core::policy::PeerKind;

/// ## What it does
/// Flags CIDR rules (`fromCIDR`, `fromCIDRSet`, `toCIDR`, `toCIDRSet`,
/// `ipBlock`) whose prefix covers the whole pod or node range of the
/// cluster (`lint.clusterCIDRs` in the configuration; by default Cilium's
/// default cluster-pool range `10.0.0.0/8`) without excepting it. The
/// whole-internet prefix `0.0.0.0/0` is not flagged, nor are narrower
/// prefixes (a LAN subnet or a host inside a private range), nor CIDR sets
/// whose `except` carves out ranges (their author knows the cluster ranges).
///
/// ## Why is this bad
/// Cilium matches pods and nodes by identity, never by address: a CIDR rule
/// that covers pod addresses does not allow or deny those pods, although it
/// reads as if it did. People write `fromCIDR: 10.0.0.0/8` meaning "the
/// cluster" and are surprised when pod traffic is denied.
///
/// ## Example
/// ```yaml
/// ingress:
///   - fromCIDR: [10.0.0.0/8]   # meant: every pod
/// ```
///
/// ## How to fix
/// Use identities: `fromEndpoints` with labels, or `fromEntities: [cluster]`
/// (pods and nodes) or `[remote-node, host]`. If the prefix really is an
/// external network that overlaps, set `lint.clusterCIDRs` to the cluster's
/// real ranges.
pub struct CidrCoversClusterRange;

impl Rule for CidrCoversClusterRange {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD010",
            name: "cidr-covers-cluster-range",
            level: Level::Info,
            summary: "a CIDR rule covers the pod/node range, where identities decide",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        for (p, r) in cx.rules() {
            for e in &r.entries {
                for peer in &e.peers {
                    let PeerKind::Cidr { cidr, except } = &peer.kind else {
                        continue;
                    };
                    if cidr.is_default_route() || !except.is_empty() {
                        continue;
                    }
                    let Some(range) = cx.config.cluster_cidrs.iter().find(|c| cidr.contains(c))
                    else {
                        continue;
                    };
                    out.push(self.meta().finding(
                        e.origin.location.clone(),
                        Some(p.object.clone()),
                        Some(e.origin.path.clone()),
                        format!("`{}` covers the cluster range {range}: CIDR rules never match pods or nodes, which Cilium matches by identity", peer.text),
                        "use fromEndpoints/toEndpoints or entities (cluster, host, remote-node) for in-cluster peers; if this is an external network, set lint.clusterCIDRs to the cluster's real ranges".to_string(),
                    ));
                }
            }
        }
    }
}
