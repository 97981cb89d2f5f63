use crate::{Context, Finding, Level, Meta, Rule};
use std::collections::BTreeSet;
use verdict_core::labels::{NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, SOURCE_RESERVED};
use verdict_core::policy::{PeerKind, Subject};
use verdict_core::selector::{Op, Selector};

/// ## What it does
/// Flags an `endpointSelector`, or a `fromEndpoints`/`toEndpoints` selector,
/// that selects no workload in the analysed manifests: a typo in a label,
/// a label that Cilium filters out of identities (`pod-template-hash`), or
/// the wrong namespace (a namespaced policy's peers are scoped to its own
/// namespace unless they name another).
///
/// The rule only speaks when the input holds workloads of the namespace the
/// selector is about, so partial input (a single app's folder) does not
/// produce noise.
///
/// ## Why is this bad
/// A subject selector that selects nothing means the policy protects
/// nothing; a peer selector that selects nothing means the traffic it was
/// written for stays denied.
///
/// ## Example
/// ```yaml
/// metadata: {name: web, namespace: shop}
/// spec:
///   endpointSelector: {matchLabels: {app: frontend}}
///   ingress:
///     - fromEndpoints:
///         - matchLabels: {app: ingress-nginx}   # lives in namespace ingress-nginx
/// ```
///
/// ## How to fix
/// Correct the labels (the finding lists what the namespace's workloads
/// carry), or name the peer's namespace:
/// `matchLabels: {k8s:io.kubernetes.pod.namespace: ingress-nginx, app: ingress-nginx}`.
pub struct SelectorSelectsNothing;

/// The namespace a selector is about, if it names one.
fn named_namespace(sel: &Selector) -> Option<&str> {
    sel.reqs
        .iter()
        .find_map(|r| match (r.key.as_str(), r.op, r.values.as_slice()) {
            (POD_NAMESPACE_LABEL, Op::In, [ns]) => Some(ns.as_str()),
            _ => None,
        })
}

impl SelectorSelectsNothing {
    fn hint(cx: &Context, sel: &Selector, ns: Option<&str>) -> String {
        let keys: BTreeSet<&str> = sel
            .reqs
            .iter()
            .filter(|r| r.key != POD_NAMESPACE_LABEL && !r.key.starts_with(NAMESPACE_LABELS_PREFIX))
            .map(|r| r.key.as_str())
            .collect();
        let mut seen = BTreeSet::new();
        for w in cx
            .inv
            .workloads
            .iter()
            .filter(|w| ns.is_none_or(|n| w.namespace == n))
        {
            for k in &keys {
                if let Some(v) = w.labels.get(*k) {
                    seen.insert(format!("{k}={v}"));
                }
            }
        }
        let place = ns
            .map(|n| format!("namespace `{n}`"))
            .unwrap_or_else(|| "the input".into());
        if seen.is_empty() {
            format!(
                "no workload of {place} has the label keys {}",
                keys.into_iter().collect::<Vec<_>>().join(", ")
            )
        } else {
            format!(
                "workloads of {place} carry {}",
                seen.into_iter().take(8).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

impl Rule for SelectorSelectsNothing {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD004",
            name: "selector-selects-nothing",
            level: Level::Warning,
            summary: "a policy or peer selector selects no workload in the analysed manifests",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        let with_workloads = cx.namespaces_with_workloads();
        if with_workloads.is_empty() {
            return;
        }
        // Only speak about namespaces the input describes.
        let relevant = |sel: &Selector| match named_namespace(sel) {
            Some(ns) => with_workloads.contains(ns),
            None => true,
        };
        for (p, r) in cx.rules() {
            let Subject::Endpoints(sel) = &r.subject else {
                continue;
            };
            if sel.has_source(SOURCE_RESERVED) {
                continue;
            }
            if relevant(sel) && cx.matching(sel).is_empty() {
                let ns = named_namespace(sel);
                out.push(self.meta().finding(
                    r.origin.location.clone(),
                    Some(p.object.clone()),
                    Some(format!("{}.endpointSelector", r.origin.path)),
                    format!("endpointSelector {sel} selects no workload in the analysed manifests"),
                    format!("check the labels: {}", Self::hint(cx, sel, ns)),
                ));
            }
            for e in &r.entries {
                for peer in e.peers.iter().filter(|p| p.from_endpoints) {
                    let PeerKind::Selectors { selectors } = &peer.kind else {
                        continue;
                    };
                    for s in selectors {
                        if s.has_source(SOURCE_RESERVED)
                            || !relevant(s)
                            || !cx.matching(s).is_empty()
                        {
                            continue;
                        }
                        let ns = named_namespace(s);
                        let scoped = match (ns, &p.object.namespace) {
                            (Some(n), Some(pn))
                                if n == pn && !peer.text.contains(POD_NAMESPACE_LABEL) =>
                            {
                                format!(" (scoped to the policy's namespace `{pn}`; name the peer's namespace with k8s:io.kubernetes.pod.namespace if it lives elsewhere)")
                            }
                            _ => String::new(),
                        };
                        out.push(self.meta().finding(
                            e.origin.location.clone(),
                            Some(p.object.clone()),
                            Some(e.origin.path.clone()),
                            format!(
                                "`{}` selects no workload in the analysed manifests{scoped}",
                                peer.text
                            ),
                            format!("check the labels and namespace: {}", Self::hint(cx, s, ns)),
                        ));
                    }
                }
            }
        }
    }
}
