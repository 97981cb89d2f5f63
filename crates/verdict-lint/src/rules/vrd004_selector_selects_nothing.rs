use crate::context::{capped, SHOWN};
use crate::{Context, Finding, Level, Meta, Rule};
use std::collections::BTreeSet;
use verdict_core::labels::{NAMESPACE_LABELS_PREFIX, POD_NAMESPACE_LABEL, SOURCE_RESERVED};
use verdict_core::policy::{PeerKind, Subject};
use verdict_core::selector::{Op, Selector};

/// ## What it does
/// Flags an `endpointSelector`, or a `fromEndpoints`/`toEndpoints` selector,
/// that selects no workload in the analysed manifests because of a mistake
/// the manifests themselves show:
///
/// * the wrong namespace: a namespaced policy's peer is scoped to the
///   policy's own namespace, but the labels select workloads of another
///   namespace;
/// * a typo'd value: the namespace's workloads carry the selector's label
///   keys, with other values.
///
/// Selectors about workloads the input does not describe (a Helm release,
/// pods an operator creates, another repository) stay quiet: the rule only
/// speaks when every label key of the selector is used in the namespace and
/// the namespace holds no objects of kinds verdict does not analyse.
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
///         - matchLabels: {app.kubernetes.io/name: ingress-nginx}   # lives in namespace ingress-nginx
/// ```
///
/// ## How to fix
/// Name the peer's namespace
/// (`matchLabels: {k8s:io.kubernetes.pod.namespace: ingress-nginx, app.kubernetes.io/name: ingress-nginx}`),
/// or correct the label value (the finding lists the values in use).
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

/// The selector's own label keys (not namespace ones).
fn label_keys(sel: &Selector) -> BTreeSet<&str> {
    sel.reqs
        .iter()
        .filter(|r| r.key != POD_NAMESPACE_LABEL && !r.key.starts_with(NAMESPACE_LABELS_PREFIX))
        .map(|r| r.key.as_str())
        .collect()
}

impl SelectorSelectsNothing {
    /// Why the selector is a mistake, if the input shows one.
    fn diagnose(cx: &Context, sel: &Selector, auto_scoped_to: Option<&str>) -> Option<String> {
        // Wrong namespace: without the policy's namespace it selects pods.
        if let Some(ns) = auto_scoped_to {
            let unscoped = Selector::new(
                sel.reqs
                    .iter()
                    .filter(|r| r.key != POD_NAMESPACE_LABEL)
                    .cloned()
                    .collect(),
            );
            if !unscoped.is_empty() {
                let elsewhere: BTreeSet<String> = cx
                    .matching(&unscoped)
                    .iter()
                    .flat_map(|&i| cx.workloads_of(i))
                    .filter(|w| w.namespace != ns)
                    .map(|w| w.namespace.clone())
                    .collect();
                if !elsewhere.is_empty() {
                    return Some(format!(
                        "it is scoped to the policy's namespace `{ns}`, but these labels select workloads in {}: name the namespace with `k8s:io.kubernetes.pod.namespace`",
                        capped(
                            &elsewhere.iter().take(SHOWN).map(|n| format!("`{n}`")).collect::<Vec<_>>(),
                            elsewhere.len()
                        )
                    ));
                }
            }
        }
        // Typo: the namespace's workloads use these keys with other values.
        let ns = named_namespace(sel);
        let keys = label_keys(sel);
        if keys.is_empty() {
            return None;
        }
        let incomplete = cx
            .inv
            .skipped_objects
            .iter()
            .any(|o| ns.is_none_or(|n| o.namespace.as_deref() == Some(n)));
        let no_workloads = match ns {
            Some(n) => cx.workloads_in(n).is_empty(),
            None => cx.inv.workloads.is_empty(),
        };
        if incomplete || no_workloads {
            return None;
        }
        let mut values = BTreeSet::new();
        for k in &keys {
            let used = cx.label_values(ns, k)?;
            values.extend(used.iter().map(|v| format!("{k}={v}")));
        }
        let place = ns
            .map(|n| format!("namespace `{n}`"))
            .unwrap_or_else(|| "the input".into());
        Some(format!(
            "workloads of {place} carry {}",
            values.into_iter().take(8).collect::<Vec<_>>().join(", ")
        ))
    }
}

impl Rule for SelectorSelectsNothing {
    fn meta(&self) -> Meta {
        Meta {
            code: "VRD004",
            name: "selector-selects-nothing",
            level: Level::Warning,
            summary:
                "a policy or peer selector selects no workload: wrong namespace or a typo'd label",
        }
    }

    fn check(&self, cx: &Context, out: &mut Vec<Finding>) {
        for (p, r) in cx.rules() {
            let Subject::Endpoints(sel) = &r.subject else {
                continue;
            };
            if !sel.has_source(SOURCE_RESERVED) && cx.matching(sel).is_empty() {
                if let Some(why) = Self::diagnose(cx, sel, None) {
                    out.push(self.meta().finding(
                        r.origin.location.clone(),
                        Some(p.object.clone()),
                        Some(format!("{}.endpointSelector", r.origin.path)),
                        format!(
                            "endpointSelector {sel} selects no workload in the analysed manifests"
                        ),
                        format!("check the labels: {why}"),
                    ));
                }
            }
            for e in &r.entries {
                for peer in e.peers.iter().filter(|p| p.from_endpoints) {
                    let PeerKind::Selectors { selectors } = &peer.kind else {
                        continue;
                    };
                    for s in selectors {
                        if s.has_source(SOURCE_RESERVED) || !cx.matching(s).is_empty() {
                            continue;
                        }
                        // Scoped by Cilium (not written by the user)?
                        let auto = match (&p.object.namespace, p.object.kind.as_str()) {
                            (Some(ns), "CiliumNetworkPolicy")
                                if !peer.text.contains(POD_NAMESPACE_LABEL) =>
                            {
                                Some(ns.as_str())
                            }
                            _ => None,
                        };
                        if let Some(why) = Self::diagnose(cx, s, auto) {
                            out.push(self.meta().finding(
                                e.origin.location.clone(),
                                Some(p.object.clone()),
                                Some(e.origin.path.clone()),
                                format!(
                                    "`{}` selects no workload in the analysed manifests",
                                    peer.text
                                ),
                                format!("check the namespace and labels: {why}"),
                            ));
                        }
                    }
                }
            }
        }
    }
}
