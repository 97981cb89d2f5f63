use crate::{Context, Finding, Level, Meta, Rule};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::Arc;
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

/// Entry (by address) -> the identities its peers select, sorted, or
/// `None` when a peer is not a selector.
type PeerMemo = FxHashMap<usize, Option<Vec<usize>>>;

/// The identities an entry's peers select, sorted, or `None` when a peer
/// is not a selector (memoised per entry: an entry is compared with many;
/// read in place, not copied per comparison).
fn peer_ids<'m>(cx: &Context, e: &Entry, memo: &'m mut PeerMemo) -> Option<&'m [usize]> {
    memo.entry(std::ptr::from_ref(e) as usize)
        .or_insert_with(|| {
            let mut out = Vec::new();
            for p in &e.peers {
                let PeerKind::Selectors { selectors } = &p.kind else {
                    return None;
                };
                for s in selectors {
                    out.extend(cx.matching(s).iter().copied());
                }
            }
            out.sort_unstable();
            out.dedup();
            Some(out)
        })
        .as_deref()
}

/// Whether, among the identities of the input, every one an allow entry's
/// selectors select is also selected by the deny entry's selectors (rules
/// written differently, e.g. a ClusterNetworkPolicy `pods` peer against a
/// CiliumNetworkPolicy `fromEndpoints`).
fn selects_within(cx: &Context, deny: &Entry, allow: &Entry, memo: &mut PeerMemo) -> bool {
    // Both looked up (allow first), then read without copying them.
    let allow_some = peer_ids(cx, allow, memo).is_some();
    let deny_some = peer_ids(cx, deny, memo).is_some();
    if !(allow_some && deny_some) {
        return false;
    }
    let get = |e: &Entry| {
        memo.get(&(std::ptr::from_ref(e) as usize))
            .and_then(|v| v.as_deref())
    };
    match (get(allow), get(deny)) {
        (Some(a), Some(d)) => !a.is_empty() && sorted_subset(a, d),
        _ => false,
    }
}

fn sorted_subset(a: &[usize], b: &[usize]) -> bool {
    a.len() <= b.len() && a.iter().all(|i| b.binary_search(i).is_ok())
}

/// A selected set's key: rules with equal subjects share one set (the
/// index memoises selectors).
fn set_key(s: &Arc<[usize]>) -> (usize, usize) {
    (s.as_ptr() as usize, s.len())
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
        // The distinct selected sets of the rules with a deny entry (with
        // those rules, in rule order), and the deny sets holding each
        // identity: a rule that shadows another selects its first identity.
        let mut deny_sets: Vec<(Arc<[usize]>, Vec<usize>)> = Vec::new();
        let mut deny_set_of_key: HashMap<(usize, usize), usize> = HashMap::new();
        for (ri, (_, r, sel)) in rules.iter().enumerate() {
            if r.entries.iter().any(|e| e.deny) {
                let di = *deny_set_of_key.entry(set_key(sel)).or_insert_with(|| {
                    deny_sets.push((sel.clone(), Vec::new()));
                    deny_sets.len() - 1
                });
                if let Some((_, rs)) = deny_sets.get_mut(di) {
                    rs.push(ri);
                }
            }
        }
        let mut deny_sets_of: HashMap<usize, Vec<usize>> = HashMap::new();
        for (di, (set, _)) in deny_sets.iter().enumerate() {
            for &i in set.iter() {
                deny_sets_of.entry(i).or_default().push(di);
            }
        }
        // Per distinct subject set: the deny entries of the deny rules
        // applying to every endpoint of it, by direction, in rule and
        // entry order (the rules' other entries are never read: at 100k
        // synthetic pods an allow entry's covering rules held ~1,200
        // entries, ~200 of them denies in its direction).
        let mut covering_of: HashMap<(usize, usize), [Vec<&Entry>; 2]> = HashMap::new();
        let mut memo = PeerMemo::default();
        for (p, r, sel) in &rules {
            let Some(&first) = sel.first() else {
                continue;
            };
            let denies = covering_of.entry(set_key(sel)).or_insert_with(|| {
                let mut covering: Vec<usize> = deny_sets_of
                    .get(&first)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(|&di| deny_sets.get(di))
                    .filter(|(set, _)| sorted_subset(sel, set))
                    .flat_map(|(_, rs)| rs.iter().copied())
                    .collect();
                covering.sort_unstable();
                let mut by_dir: [Vec<&Entry>; 2] = [Vec::new(), Vec::new()];
                for d in covering
                    .iter()
                    .filter_map(|&ri| rules.get(ri))
                    .flat_map(|(_, r2, _)| &r2.entries)
                    .filter(|d| d.deny)
                {
                    if let Some(list) = by_dir.get_mut(d.direction.index()) {
                        list.push(d);
                    }
                }
                by_dir
            });
            if denies.iter().all(Vec::is_empty) {
                continue;
            }
            for a in r.entries.iter().filter(|e| e.is_allow()) {
                // A deny shadows an allow it is evaluated before or
                // beside (ClusterNetworkPolicy tiers: an Admin Accept
                // beats an ordinary deny).
                let shadow = denies
                    .get(a.direction.index())
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .filter(|d| (d.tier, d.level) <= (a.tier, a.level))
                    .find(|d| {
                        ports_cover(d.ports.as_ref(), a.ports.as_ref())
                            && (peers_cover(d, a) || selects_within(cx, d, a, &mut memo))
                    });
                if let Some(d) = shadow {
                    out.push(self.meta().finding(
                        a.origin.location.clone(),
                        Some(p.object.clone()),
                        Some(a.origin.path.clone()),
                        if d.tier == a.tier {
                            format!("this allow rule never takes effect: {} denies the same peers and ports, and deny rules take precedence", d.origin)
                        } else {
                            format!("this allow rule never takes effect: {}{} denies the same peers and ports, and its tier is evaluated first", d.origin, d.tier_note())
                        },
                        "remove the allow rule, or narrow the deny rule".to_string(),
                    ));
                }
            }
        }
    }
}
