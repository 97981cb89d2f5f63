use crate::context::SHOWN;
use crate::{Context, Finding, Level, Meta, Rule};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, HashMap};
use verdict_core::engine::Decision;
use verdict_core::policy::{Direction, Protocol};
use verdict_core::settings::PolicyEnforcement;

/// ## What it does
/// Flags a policy that puts workloads into egress default deny while
/// nothing lets them reach DNS (UDP/53 to kube-dns in `kube-system`, or to
/// the kube-dns pods in the input).
///
/// ## Why is this bad
/// Every name lookup of the selected pods fails: the application breaks in
/// ways that look unrelated to policy (timeouts, "unknown host"). `toFQDNs`
/// rules also need DNS traffic to pass through Cilium's DNS proxy.
///
/// ## Example
/// ```yaml
/// spec:
///   endpointSelector: {matchLabels: {app: api}}
///   egress:
///     - toEndpoints: [{matchLabels: {app: db}}]
/// ```
///
/// ## How to fix
/// Add an egress rule to kube-dns:
/// `toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]`
/// with `toPorts: [{ports: [{port: "53", protocol: ANY}]}]` (add
/// `rules: {dns: [{matchPattern: "*"}]}` for toFQDNs).
pub struct EgressDefaultDenyWithoutDns;

impl Rule for EgressDefaultDenyWithoutDns {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD011",
            name: "egress-default-deny-without-dns",
            level: Level::Warning,
            summary: "pods selected for egress default deny cannot reach DNS",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let dns = cx
            .inv
            .workloads
            .iter()
            .find(|w| {
                w.namespace == "kube-system"
                    && w.labels.get("k8s-app").is_some_and(|v| v == "kube-dns")
            })
            .and_then(|w| cx.engine.party(&w.display_name()).ok())
            .unwrap_or_else(|| {
                let labels = BTreeMap::from([("k8s-app".to_string(), "kube-dns".to_string())]);
                cx.engine.virtual_pod(
                    "kube-system",
                    &labels,
                    "coredns",
                    "kube-system/kube-dns".to_string(),
                )
            });
        // Per identity, once: the first of its workloads that resolves as a
        // party, if its egress to DNS is denied (every rule selecting an
        // identity sees the same verdict). Only the decision is needed, not
        // its explanation (which names every rule selecting the pod).
        let mut verdicts: HashMap<usize, Option<String>> = HashMap::new();
        let mut decided = FxHashMap::default();
        // Per rule (by address): whether one of its egress entries may
        // match the DNS flow (`Engine::rule_may_match`), and whether its egress
        // entries have `toRequires`.
        let mut reaches_dns: FxHashMap<usize, (bool, bool)> = FxHashMap::default();
        let enforcing = cx.inv.cluster.policy_enforcement != PolicyEnforcement::Never;
        // Rules with the same subject share one selected set (the index
        // memoises selectors): each distinct set is summarised once, as the
        // number of broken identities and the first names.
        let mut by_set: HashMap<(usize, usize), (usize, Vec<String>)> = HashMap::new();
        for (p, r) in cx.rules() {
            if !r.default_deny[Direction::Egress.index()] {
                continue;
            }
            let selected = cx.selected(r);
            let key = (selected.as_ptr() as usize, selected.len());
            let (count, shown) = by_set.entry(key).or_insert_with(|| {
                let mut count = 0;
                let mut shown = Vec::new();
                for &idx in selected.iter() {
                    let denied = verdicts.entry(idx).or_insert_with(|| {
                        for w in cx.workloads_of(idx) {
                            let name = w.display_name();
                            let Ok(pod) = cx.engine.party(&name) else {
                                continue;
                            };
                            // The egress decision to DNS reads, of the rules
                            // selecting the pod for egress: whether one makes
                            // it default deny, the entries that may match the
                            // flow (`Engine::rule_may_match`, each rule tested
                            // once) and the `toRequires` narrowing them; and
                            // whether the pod is enforced, forced into default
                            // deny, an endpoint (egress named ports). Pods
                            // alike in these share one decision; with no
                            // entry that may match, the decision is the
                            // default: denied exactly with default deny.
                            let forced = cx.engine.forced_default_deny(&pod.identity);
                            let mut default_deny = forced.is_some();
                            let mut relevant = Vec::new();
                            let mut may_match = false;
                            for r in cx
                                .engine
                                .selecting_rules(&pod.identity)
                                .filter(|r| r.applies_to(Direction::Egress))
                            {
                                default_deny |= r.default_deny[Direction::Egress.index()];
                                let address = std::ptr::from_ref(r) as usize;
                                let (may, narrows) =
                                    *reaches_dns.entry(address).or_insert_with(|| {
                                        (
                                            cx.engine.rule_may_match(
                                                r,
                                                Direction::Egress,
                                                &dns,
                                                Protocol::Udp,
                                                53,
                                            ),
                                            r.entries.iter().any(|e| {
                                                e.direction == Direction::Egress
                                                    && !e.requires.is_empty()
                                            }),
                                        )
                                    });
                                may_match |= may;
                                if may || narrows {
                                    relevant.push(address);
                                }
                            }
                            if enforcing && !may_match {
                                return default_deny.then_some(name);
                            }
                            let key = (
                                pod.enforced,
                                forced,
                                pod.identity.is_endpoint(),
                                default_deny,
                                relevant,
                            );
                            let denied = *decided.entry(key).or_insert_with_key(|k| {
                                let ctx =
                                    cx.engine
                                        .side_context_keeping(&pod, Direction::Egress, |r| {
                                            k.4.contains(&(std::ptr::from_ref(r) as usize))
                                        });
                                let dns_idx = cx.engine.known_index(&dns.identity);
                                cx.engine
                                    .decide_in(&ctx, &pod, &dns, dns_idx, Protocol::Udp, 53)
                                    .decision
                                    == Decision::Denied
                            });
                            return denied.then_some(name);
                        }
                        None
                    });
                    if let Some(name) = denied {
                        count += 1;
                        if shown.len() < SHOWN {
                            shown.push(name.clone());
                        }
                    }
                }
                (count, shown)
            });
            if *count == 0 {
                continue;
            }
            let more = if *count > SHOWN {
                format!(" and {} more", *count - SHOWN)
            } else {
                String::new()
            };
            let broken = shown;
            out.push(self.meta().finding(
                r.origin.location.clone(),
                Some(p.object.clone()),
                Some(r.origin.path.clone()),
                format!(
                    "selects {}{more} for egress with default deny, and no rule lets them reach DNS (UDP/53 to {})",
                    broken.join(", "),
                    dns.name
                ),
                "add `toEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: kube-system, k8s-app: kube-dns}}]` with `toPorts: [{ports: [{port: \"53\", protocol: ANY}]}]`".to_string(),
            ));
        }
    }
}
