//! `metadata.ownerReferences`: read and checked as the API server checks
//! them, and the pods, ReplicaSets and Jobs of the input represented by the
//! workload that controls them (`kubectl get pods,rs,deploy -o yaml` shows
//! one application as a Deployment, a ReplicaSet and its pods; users name
//! it `shop/deployment/api`).

use super::{Inventory, Workload};
use crate::decode::{Ctx, Fields};
use crate::source::{Diagnostic, ObjectRef, Severity};
use std::collections::BTreeMap;

/// The fields of an `OwnerReference` (k8s.io/apimachinery meta/v1).
const FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
];

/// The controller of an object: its `ownerReferences` entry with
/// `controller: true`, as (kind, name). Every entry is checked as
/// `ValidateOwnerReferences` (apimachinery `api/validation/objectmeta.go`)
/// does: typed fields, `apiVersion` with a version, non-empty `kind`, `name`
/// and `uid`, no `v1` Event as owner, at most one controller. The API
/// server refuses an object that fails; such an object is not represented
/// by an owner (the error makes the command exit 2).
pub fn controller(ctx: &mut Ctx, meta: &Fields) -> Option<(String, String)> {
    let refs = meta.get("ownerReferences")?;
    let base = "metadata.ownerReferences";
    let items = ctx.seq(refs, base)?;
    let mut failed = false;
    let mut controllers: Vec<(String, String)> = Vec::new();
    for (i, r) in items.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let before = ctx.diags.len();
        let Some(f) = ctx.fields(r, &path, FIELDS) else {
            failed = true;
            continue;
        };
        let text = |ctx: &mut Ctx, key: &str| match f.get(key) {
            Some(n) => ctx.string(n, &format!("{path}.{key}")),
            None => Some(String::new()),
        };
        let api_version = text(ctx, "apiVersion");
        let kind = text(ctx, "kind");
        let name = text(ctx, "name");
        let uid = text(ctx, "uid");
        let mut flag = |key: &str| {
            f.get(key)
                .and_then(|n| ctx.boolean(n, &format!("{path}.{key}")))
        };
        let is_controller = flag("controller") == Some(true);
        flag("blockOwnerDeletion");
        if let (Some(api_version), Some(kind), Some(name), Some(uid)) =
            (api_version, kind, name, uid)
        {
            let (group, version) = group_version(&api_version);
            let empty = [
                (
                    "apiVersion",
                    version.is_empty(),
                    &api_version,
                    "version must not be empty",
                ),
                ("kind", kind.is_empty(), &kind, "must not be empty"),
                ("name", name.is_empty(), &name, "must not be empty"),
                ("uid", uid.is_empty(), &uid, "must not be empty"),
            ];
            for (key, bad, value, why) in empty {
                if bad {
                    ctx.error(
                        f.get(key).unwrap_or(r),
                        format!("`{path}.{key}`: Invalid value: {value:?}: {why}; the API server refuses this object"),
                    );
                }
            }
            if group.is_empty() && version == "v1" && kind == "Event" {
                ctx.error(
                    r,
                    format!("`{path}`: /v1, Kind=Event is disallowed from being an owner; the API server refuses this object"),
                );
            }
            if is_controller {
                controllers.push((kind, name));
            }
        }
        failed |= ctx.diags[before..]
            .iter()
            .any(|d| d.severity == Severity::Error);
    }
    if controllers.len() > 1 {
        let names: Vec<String> = controllers
            .iter()
            .map(|(k, n)| format!("{k}/{n}"))
            .collect();
        ctx.error(
            refs,
            format!(
                "`{base}`: Only one reference can have Controller set to true. Found \"true\" in references for {}; the API server refuses this object",
                names.join(" and ")
            ),
        );
        return None;
    }
    if failed {
        return None;
    }
    controllers.pop()
}

/// `group/version`, `version` (the core group) or neither, as
/// `schema.ParseGroupVersion` reads it: more than one `/` is no version.
fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        None => ("", api_version),
        Some((_, v)) if v.contains('/') => ("", ""),
        Some((g, v)) => (g, v),
    }
}

/// Which controllers an object of each kind is represented by: a pod by its
/// ReplicaSet, StatefulSet, DaemonSet or Job; a ReplicaSet by its
/// Deployment; a Job by its CronJob. Other owners (an operator's custom
/// resource) leave the object as it is.
fn represented_by(kind: &str, controller: &str) -> bool {
    matches!(
        (kind, controller),
        ("Pod", "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job")
            | ("ReplicaSet", "Deployment")
            | ("Job", "CronJob")
    )
}

/// Where an object's controller is: a workload of the input, or only a name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Parent {
    Given(usize),
    Named(ObjectRef),
}

impl Inventory {
    /// Pods, ReplicaSets and Jobs whose controller is known are represented
    /// by it: by the controller's own workload when it is in the input
    /// (following ReplicaSet -> Deployment and Job -> CronJob to the top),
    /// else by the controller's name (the first such object, in input
    /// order, stands for it as `ns/replicaset/api-7d9c`). The objects left
    /// out are listed in the representative's `represents`, where party
    /// names find them (`shop/pod/api-7d9c-xk2p`). A pod whose absent
    /// ReplicaSet is named `D-H`, H its `pod-template-hash` label, is the
    /// pod of Deployment D when D is in the input (the Deployment
    /// controller names its ReplicaSets so).
    pub(super) fn represent_by_controllers(&mut self) {
        let parents: Vec<Option<Parent>> = {
            let index: BTreeMap<(&str, &str, &str), usize> = self
                .workloads
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let key = (
                        w.namespace.as_str(),
                        w.object.kind.as_str(),
                        w.object.name.as_str(),
                    );
                    (key, i)
                })
                .collect();
            let parent = |w: &Workload| -> Option<Parent> {
                let (ck, cn) = w.controller.as_ref()?;
                if !represented_by(&w.object.kind, ck) {
                    return None;
                }
                let ns = w.namespace.as_str();
                if let Some(&j) = index.get(&(ns, ck.as_str(), cn.as_str())) {
                    return Some(Parent::Given(j));
                }
                let deployment = (w.object.kind == "Pod" && ck == "ReplicaSet")
                    .then(|| w.labels.get("pod-template-hash"))
                    .flatten()
                    .and_then(|h| cn.strip_suffix(h.as_str())?.strip_suffix('-'))
                    .and_then(|d| index.get(&(ns, "Deployment", d)));
                Some(match deployment {
                    Some(&j) => Parent::Given(j),
                    None => Parent::Named(ObjectRef::new(ck, Some(ns), cn)),
                })
            };
            self.workloads.iter().map(parent).collect()
        };
        // The top of each object's chain of controllers (bounded: a cycle
        // of ownerReferences ends where it started).
        let top = |i: usize| -> Option<Parent> {
            let mut at = parents.get(i).cloned().flatten()?;
            for _ in 0..parents.len() {
                match &at {
                    Parent::Given(j) => match parents.get(*j).cloned().flatten() {
                        Some(Parent::Given(k)) if k == i => break,
                        Some(next) => at = next,
                        None => break,
                    },
                    Parent::Named(_) => break,
                }
            }
            Some(at)
        };
        let tops: Vec<Option<Parent>> = (0..self.workloads.len()).map(top).collect();
        // The workload standing for each top: a given one, or the first
        // object (in input order) of a named one.
        let mut standing: BTreeMap<Parent, usize> = BTreeMap::new();
        for (i, t) in tops.iter().enumerate() {
            match t {
                Some(Parent::Given(j)) if tops.get(*j).is_some_and(Option::is_none) => {
                    standing.insert(Parent::Given(*j), *j);
                }
                Some(p @ Parent::Named(_)) => {
                    standing.entry(p.clone()).or_insert(i);
                }
                _ => {}
            }
        }
        let mut represents: BTreeMap<usize, Vec<ObjectRef>> = BTreeMap::new();
        let mut left_out = vec![false; self.workloads.len()];
        for (i, t) in tops.iter().enumerate() {
            let Some(&s) = t.as_ref().and_then(|t| standing.get(t)) else {
                continue;
            };
            let Some(w) = self.workloads.get(i) else {
                continue;
            };
            represents.entry(s).or_default().push(w.object.clone());
            if let Some(out) = left_out.get_mut(i).filter(|_| s != i) {
                *out = true;
            }
        }
        let mut first: Option<crate::source::Location> = None;
        let mut count = 0;
        for (t, &s) in &standing {
            let Some(w) = self.workloads.get_mut(s) else {
                continue;
            };
            if let Parent::Named(o) = t {
                w.object = o.clone();
            }
            let mut r = represents.remove(&s).unwrap_or_default();
            r.sort();
            r.dedup();
            r.retain(|o| *o != w.object);
            if !r.is_empty() && first.as_ref().is_none_or(|f| w.location < *f) {
                first = Some(w.location.clone());
            }
            count += r.len();
            w.represents = r;
        }
        let mut i = 0;
        self.workloads.retain(|_| {
            i += 1;
            !left_out.get(i - 1).copied().unwrap_or(false)
        });
        if let Some(location) = first {
            self.diagnostics.push(Diagnostic {
                location,
                severity: Severity::Info,
                object: None,
                message: format!(
                    "{} represented by the workload that controls them (ownerReferences, controller: true); their names are accepted as parties",
                    crate::text::plural(count, "object is", "objects are")
                ),
            });
        }
    }
}

impl Inventory {
    /// The workload standing for an object its controller represents,
    /// named `ns/name` (a pod) or `ns/kind/name` (`shop/pod/api-7d9c-xk2p`,
    /// `shop/replicaset/api-7d9c`; the kind in any case).
    pub fn representing(&self, ns: &str, kind: Option<&str>, name: &str) -> Option<usize> {
        self.workloads.iter().position(|w| {
            w.namespace == ns
                && w.represents.iter().any(|o| {
                    o.name == name
                        && kind.map_or(o.kind == "Pod", |k| o.kind.eq_ignore_ascii_case(k))
                })
        })
    }

    /// The names of the objects represented by their controllers, as
    /// parties accept them (`shop/pod/api-7d9c-xk2p`), sorted.
    pub fn represented_names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .workloads
            .iter()
            .flat_map(|w| {
                w.represents
                    .iter()
                    .map(|o| format!("{}/{}/{}", w.namespace, o.kind.to_ascii_lowercase(), o.name))
            })
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::cnp::ClusterConfig;

    fn load(text: &str) -> Inventory {
        let mut inv = Inventory::new(ClusterConfig::default());
        inv.load_text("in.yaml", text);
        inv.complete_namespaces();
        inv
    }

    fn pod(name: &str, labels: &str, owner: &str) -> String {
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: shop\n  labels: {labels}\n{owner}spec:\n  containers: [{{name: c}}]\n"
        )
    }

    fn owned_by(kind: &str, name: &str) -> String {
        format!("  ownerReferences:\n  - {{apiVersion: apps/v1, kind: {kind}, name: {name}, uid: u-{name}, controller: true}}\n")
    }

    fn names(inv: &Inventory) -> Vec<String> {
        inv.workloads.iter().map(Workload::display_name).collect()
    }

    fn errors(inv: &Inventory) -> Vec<String> {
        inv.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| format!("{}: {}", d.location.line, d.message))
            .collect()
    }

    #[test]
    fn pods_of_an_absent_replicaset_belong_to_the_deployment_its_name_and_hash_name() {
        let deploy = "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: c}]}\n";
        let text = [
            pod(
                "api-7d9c-aaaaa",
                "{app: api, pod-template-hash: 7d9c}",
                &owned_by("ReplicaSet", "api-7d9c"),
            ),
            // The hash does not match the ReplicaSet's name: not inferred.
            pod(
                "api-x-bbbbb",
                "{app: api, pod-template-hash: \"1234\"}",
                &owned_by("ReplicaSet", "api-x"),
            ),
            deploy.to_string(),
        ]
        .concat();
        let inv = load(&text);
        assert!(errors(&inv).is_empty(), "{:?}", errors(&inv));
        assert_eq!(
            names(&inv),
            ["shop/replicaset/api-x", "shop/deployment/api"]
        );
        let api = inv.representing("shop", None, "api-7d9c-aaaaa");
        assert_eq!(
            api.map(|i| names(&inv)[i].clone()).as_deref(),
            Some("shop/deployment/api")
        );
        // Without the Deployment, the ReplicaSet names the pod.
        let inv = load(&pod(
            "api-7d9c-aaaaa",
            "{app: api, pod-template-hash: 7d9c}",
            &owned_by("ReplicaSet", "api-7d9c"),
        ));
        assert_eq!(names(&inv), ["shop/replicaset/api-7d9c"]);
        assert_eq!(inv.represented_names(), ["shop/pod/api-7d9c-aaaaa"]);
    }

    #[test]
    fn other_owners_and_cycles_leave_objects_as_they_are() {
        let text = [
            // An operator's resource is not a workload controller.
            pod("pg-1", "{app: pg}", "  ownerReferences:\n  - {apiVersion: postgresql.cnpg.io/v1, kind: Cluster, name: pg, uid: u1, controller: true}\n"),
            // Not the controller: only an owner.
            pod("x-1", "{app: x}", "  ownerReferences:\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: x, uid: u2}\n"),
        ]
        .concat();
        let inv = load(&text);
        assert!(errors(&inv).is_empty(), "{:?}", errors(&inv));
        assert_eq!(names(&inv), ["shop/pg-1", "shop/x-1"]);
        // Two ReplicaSets owning each other (no API server makes this):
        // neither is folded, nothing loops.
        let rs = |name: &str, owner: &str| {
            format!("---\napiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\n  namespace: shop\n{}spec:\n  template:\n    metadata: {{labels: {{app: a}}}}\n    spec: {{containers: [{{name: c}}]}}\n", owned_by("ReplicaSet", owner))
        };
        let inv = load(&[rs("a", "b"), rs("b", "a")].concat());
        assert_eq!(names(&inv), ["shop/replicaset/a", "shop/replicaset/b"]);
    }

    #[test]
    fn owner_references_are_checked_as_the_api_server_does() {
        let cases = [
            ("  ownerReferences:\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: \"\", controller: true}\n", "`metadata.ownerReferences[0].uid`: Invalid value: \"\": must not be empty"),
            ("  ownerReferences:\n  - {apiVersion: a/b/c, kind: ReplicaSet, name: r, uid: u, controller: true}\n", "`metadata.ownerReferences[0].apiVersion`: Invalid value: \"a/b/c\": version must not be empty"),
            ("  ownerReferences:\n  - {apiVersion: v1, kind: Event, name: e, uid: u}\n", "/v1, Kind=Event is disallowed from being an owner"),
            ("  ownerReferences:\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: u, controller: \"true\"}\n", "`metadata.ownerReferences[0].controller` must be a boolean"),
            ("  ownerReferences:\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: 7, uid: u, controller: true}\n", "`metadata.ownerReferences[0].name` must be a string, found integer"),
            ("  ownerReferences:\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: u, controler: true}\n", "unknown field `metadata.ownerReferences[0].controler`"),
            ("  ownerReferences: {kind: ReplicaSet}\n", "`metadata.ownerReferences` must be a list"),
            ("  ownerReferences:\n  - {apiVersion: apps/v1, kind: ReplicaSet, name: r, uid: u1, controller: true}\n  - {apiVersion: apps/v1, kind: StatefulSet, name: s, uid: u2, controller: true}\n", "Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/r and StatefulSet/s"),
        ];
        for (refs, wanted) in cases {
            let inv = load(&pod("p", "{app: p}", refs));
            let errs = errors(&inv);
            assert!(
                errs.iter()
                    .any(|e| e.contains(wanted) && !e.starts_with("0:")),
                "{refs}: {errs:?}"
            );
            // Refused: not represented by an owner; the pod stays itself.
            assert_eq!(names(&inv), ["shop/p"], "{refs}");
        }
    }
}
