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

/// Whether a peer of `deny` is the empty selector (every identity).
fn denies_all(deny: &Entry) -> bool {
    deny.peers.iter().any(|p| match &p.kind {
        PeerKind::Selectors { selectors } => selectors.iter().any(|s| s.is_empty()),
        _ => false,
    })
}

/// Whether every peer of `allow` is a peer of `deny` (same selector, CIDR
/// inside, or a deny on every identity: `deny_all`, [`denies_all`]).
fn peers_cover_with(deny: &Entry, deny_all: bool, allow: &Entry) -> bool {
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

/// The identities an entry's peers select, sorted, or `None` when a peer
/// is not a selector.
fn peer_ids(cx: &Context, e: &Entry) -> Option<Vec<usize>> {
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
}

/// A deny entry as the comparisons read it, formed once per entry (an
/// entry is compared with many allow entries: 4.1M comparisons at 100k
/// synthetic pods): whether it denies every identity, and the identities
/// its peers select.
struct Deny<'r> {
    entry: &'r Entry,
    all: bool,
    ids: Option<Vec<usize>>,
}

/// Whether, among the identities of the input, every one an allow entry's
/// selectors select (`allow`, non-empty) is also selected by the deny
/// entry's selectors (rules written differently, e.g. a
/// ClusterNetworkPolicy `pods` peer against a CiliumNetworkPolicy
/// `fromEndpoints`).
fn selects_within(deny: &Deny, allow: Option<&[usize]>) -> bool {
    match (allow, deny.ids.as_deref()) {
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
        // Each deny rule's deny entries by direction, in entry order, with
        // their comparison facts (formed once per entry; the rules' other
        // entries are never read again).
        let mut denies_of_rule: FxHashMap<usize, [Vec<Deny>; 2]> = FxHashMap::default();
        for (ri, (_, r, sel)) in rules.iter().enumerate() {
            if r.entries.iter().any(|e| e.deny) {
                let by_dir = denies_of_rule.entry(ri).or_default();
                for d in r.entries.iter().filter(|d| d.deny) {
                    if let Some(list) = by_dir.get_mut(d.direction.index()) {
                        list.push(Deny {
                            entry: d,
                            all: denies_all(d),
                            ids: peer_ids(cx, d),
                        });
                    }
                }
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
        let mut covering_of: HashMap<(usize, usize), [Vec<&Deny>; 2]> = HashMap::new();
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
                let mut by_dir: [Vec<&Deny>; 2] = [Vec::new(), Vec::new()];
                for ri in &covering {
                    if let Some(lists) = denies_of_rule.get(ri) {
                        for (into, from) in by_dir.iter_mut().zip(lists) {
                            into.extend(from);
                        }
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
                // The allow entry's identities: formed when first needed.
                let mut allow_ids: Option<Option<Vec<usize>>> = None;
                let shadow = denies
                    .get(a.direction.index())
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .filter(|d| (d.entry.tier, d.entry.level) <= (a.tier, a.level))
                    .find(|d| {
                        ports_cover(d.entry.ports.as_ref(), a.ports.as_ref())
                            && (peers_cover_with(d.entry, d.all, a)
                                || (d.ids.is_some()
                                    && selects_within(
                                        d,
                                        allow_ids.get_or_insert_with(|| peer_ids(cx, a)).as_deref(),
                                    )))
                    })
                    .map(|d| d.entry);
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
