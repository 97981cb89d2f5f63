use crate::{Context, Finding, Level, Meta, Rule};
use verdict_core::policy::{Entry, PeerKind, PortRule, PortSel};

/// ## What it does
/// Flags an allow rule whose every peer and port is also denied by a deny
/// rule (`ingressDeny`/`egressDeny`) that applies to all the endpoints the
/// allow rule applies to.
///
/// ## Why is this bad
/// Deny rules take precedence over allow rules in Cilium, so the allow rule
/// has no effect: someone reading the policy believes traffic is allowed
/// that never is.
///
/// ## Example
/// ```yaml
/// spec:
///   endpointSelector: {matchLabels: {app: web}}
///   ingress:
///     - fromEntities: [world]
///       toPorts: [{ports: [{port: "80", protocol: TCP}]}]
///   ingressDeny:
///     - fromEntities: [world]
/// ```
///
/// ## How to fix
/// Remove the allow rule, or narrow the deny rule so that it no longer
/// covers the traffic the allow rule is meant for.
pub struct AllowShadowedByDeny;

/// Whether deny port rules cover every allow port rule.
pub(crate) fn ports_cover(deny: Option<&Vec<PortRule>>, allow: Option<&Vec<PortRule>>) -> bool {
    let Some(deny) = deny else { return true };
    let Some(allow) = allow else { return false };
    allow.iter().all(|a| {
        deny.iter().any(|d| {
            let port_ok = match (&d.port, &a.port) {
                (PortSel::Range { from: df, to: dt }, PortSel::Range { from: af, to: at }) => {
                    df <= af && at <= dt
                }
                (PortSel::Named(dn), PortSel::Named(an)) => dn == an,
                (PortSel::Range { from: 0, to: 65535 }, PortSel::Named(_)) => true,
                _ => false,
            };
            d.protocol.covers(a.protocol) && port_ok
        })
    })
}

/// Whether every peer of `allow` is a peer of `deny` (same selector, CIDR
/// inside, or a deny on every identity).
pub(crate) fn peers_cover(deny: &Entry, allow: &Entry) -> bool {
    let deny_all = deny.peers.iter().any(|p| match &p.kind {
        PeerKind::Selectors { selectors } => selectors.iter().any(|s| s.is_empty()),
        _ => false,
    });
    if deny_all {
        return !allow.peers.is_empty();
    }
    !allow.peers.is_empty()
        && allow.peers.iter().all(|a| {
            deny.peers.iter().any(|d| match (&d.kind, &a.kind) {
                (PeerKind::Selectors { selectors: ds }, PeerKind::Selectors { selectors: as_ }) => {
                    as_.iter().all(|s| ds.contains(s))
                }
                (
                    PeerKind::Cidr {
                        cidr: dc,
                        except: de,
                    },
                    PeerKind::Cidr { cidr: ac, .. },
                ) => dc.contains(ac) && !de.iter().any(|e| e.overlaps(ac)),
                _ => false,
            })
        })
}

impl Rule for AllowShadowedByDeny {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD007",
            name: "allow-shadowed-by-deny",
            level: Level::Warning,
            summary: "an allow rule is fully shadowed by a deny rule",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let rules: Vec<_> = cx.rules().map(|(p, r)| (p, r, cx.selected(r))).collect();
        for (p, r, sel) in &rules {
            if sel.is_empty() {
                continue;
            }
            for a in r.entries.iter().filter(|e| !e.deny) {
                let shadow = rules.iter().find_map(|(_, r2, sel2)| {
                    if !sel.iter().all(|i| sel2.contains(i)) {
                        return None;
                    }
                    r2.entries
                        .iter()
                        .filter(|d| d.deny && d.direction == a.direction)
                        .find(|d| {
                            peers_cover(d, a) && ports_cover(d.ports.as_ref(), a.ports.as_ref())
                        })
                });
                if let Some(d) = shadow {
                    out.push(self.meta().finding(
                        a.origin.location.clone(),
                        Some(p.object.clone()),
                        Some(a.origin.path.clone()),
                        format!("this allow rule never takes effect: {} denies the same peers and ports, and deny rules take precedence", d.origin),
                        "remove the allow rule, or narrow the deny rule".to_string(),
                    ));
                }
            }
        }
    }
}
