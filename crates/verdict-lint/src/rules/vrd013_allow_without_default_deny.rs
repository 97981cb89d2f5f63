use crate::context::{capped, SHOWN};
use crate::{Context, Finding, Level, Meta, Rule};
use std::collections::{HashMap, HashSet};
use verdict_core::policy::Direction;

/// ## What it does
/// Flags a policy with `enableDefaultDeny.ingress: false` (or `egress`)
/// whose allow rules for that direction apply to workloads that no other
/// policy puts into default deny.
///
/// ## Why is this bad
/// Without default deny, everything not denied is allowed: the allow rules
/// change nothing. They read as "only this is allowed", which is not what
/// Cilium enforces.
///
/// ## Example
/// ```yaml
/// spec:
///   endpointSelector: {matchLabels: {app: web}}
///   enableDefaultDeny: {ingress: false}
///   ingress:
///     - fromEntities: [ingress]
/// ```
///
/// ## How to fix
/// Remove `enableDefaultDeny: false` if the rules are meant to be the only
/// traffic allowed, or add the policy that puts these workloads into
/// default deny.
pub struct AllowWithoutDefaultDeny;

impl Rule for AllowWithoutDefaultDeny {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD013",
            name: "allow-without-default-deny",
            level: Level::Warning,
            summary: "enableDefaultDeny: false with allow rules that assume default deny",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let all: Vec<_> = cx.rules().map(|(p, r)| (p, r, cx.selected(r))).collect();
        // Per direction, the identities some rule puts into default deny.
        let mut denied: [HashSet<usize>; 2] = [HashSet::new(), HashSet::new()];
        for (_, r, sel) in &all {
            for dir in Direction::BOTH {
                if r.default_deny[dir.index()] {
                    if let Some(set) = denied.get_mut(dir.index()) {
                        set.extend(sel.iter().copied());
                    }
                }
            }
        }
        let mut open_of: HashMap<(usize, usize, usize), (usize, Vec<String>)> = HashMap::new();
        for (p, r, sel) in &all {
            for dir in Direction::BOTH {
                // ClusterNetworkPolicy rules never turn on default deny by
                // design: their Accepts are overrides, not allow-lists.
                if r.tier != verdict_core::policy::Tier::Normal {
                    continue;
                }
                let has_allow = r.entries.iter().any(|e| e.direction == dir && e.is_allow());
                if !has_allow || r.default_deny[dir.index()] {
                    continue;
                }
                // The workloads left open: how many, and the first names
                // (once per distinct selected set and direction).
                let (count, shown) = open_of
                    .entry((sel.as_ptr() as usize, sel.len(), dir.index()))
                    .or_insert_with(|| {
                        let open = sel
                            .iter()
                            .filter(|i| denied.get(dir.index()).is_some_and(|d| !d.contains(i)));
                        let count: usize = open.clone().map(|&i| cx.workloads_of(i).len()).sum();
                        let shown: Vec<String> = open
                            .flat_map(|&i| cx.workloads_of(i))
                            .take(SHOWN)
                            .map(|w| w.display_name())
                            .collect();
                        (count, shown)
                    });
                if *count == 0 {
                    continue;
                }
                out.push(self.meta().finding(
                    r.origin.location.clone(),
                    Some(p.object.clone()),
                    Some(r.origin.path.clone()),
                    format!(
                        "`enableDefaultDeny.{dir}: false` and no other policy puts {} into {dir} default deny: its {dir} allow rules change nothing",
                        capped(shown, *count)
                    ),
                    format!("remove `enableDefaultDeny.{dir}: false`, or add the policy that makes these workloads default-deny for {dir}"),
                ));
            }
        }
    }
}
