//! A synthetic cluster generator for benchmarks and property tests:
//! namespaces with teams, applications with several replicas (pods with
//! realistic generated labels, each application's pods owned by one
//! ReplicaSet), and a mix of CiliumNetworkPolicy,
//! CiliumClusterwideNetworkPolicy, NetworkPolicy and (one in a hundred)
//! ClusterNetworkPolicy objects that reuse the same label vocabulary.
//! Services for every application, and a Cilium Gateway per namespace with
//! about one HTTPRoute per 30 pods (by named targetPort).
//! Deterministic for a given seed.
//!
//! [`Shape::Dense`] keeps the objects but gives the policies selectors whose
//! reach grows with the cluster: `In` sets over a fifth of the namespaces,
//! namespace-label peers (`team In [...]`), and cluster-wide peers
//! (`k8s:io.kubernetes.pod.namespace Exists`), so the resolved maps grow
//! with subjects x peers instead of staying per-namespace.

use std::fmt::Write;

pub struct SynthSpec {
    pub pods: usize,
    pub policies: usize,
    pub seed: u64,
}

/// The kind of selectors the generated policies use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// Mostly per-application selectors inside one namespace (reach stays
    /// constant as the cluster grows), a few clusterwide ones.
    #[default]
    Standard,
    /// Selectors whose reach grows with the cluster (see the module docs).
    Dense,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }
}

const TIERS: &[&str] = &["web", "api", "db", "cache", "worker"];
const PORTS: &[u16] = &[80, 443, 5432, 6379, 8080, 9090];

/// Generates the cluster as one multi-document YAML text.
pub fn generate(spec: &SynthSpec) -> String {
    generate_shaped(spec, Shape::Standard)
}

/// Generates the cluster with policies of the given shape.
pub fn generate_shaped(spec: &SynthSpec, shape: Shape) -> String {
    generate_with(spec, shape, true)
}

/// The cluster of [`generate_shaped`] loaded as the benchmarks and the
/// equivalence tests read it: ClusterNetworkPolicies enforced, the
/// namespaces completed.
pub fn load_shaped(spec: &SynthSpec, shape: Shape) -> crate::ingest::Inventory {
    let text = generate_shaped(spec, shape);
    let mut inv = crate::ingest::Inventory::new(crate::ingest::ClusterConfig {
        enable_k8s_cluster_network_policy: true,
        ..crate::ingest::ClusterConfig::default()
    });
    inv.load_text("synthetic.yaml", &text);
    inv.complete_namespaces();
    inv
}

/// [`generate`] with bare pods: no `ownerReferences`, so each pod stands
/// for itself (as pods created without a controller do), and the
/// `pod-template-hash` is drawn per pod.
pub fn generate_bare(spec: &SynthSpec) -> String {
    generate_with(spec, Shape::Standard, false)
}

fn generate_with(spec: &SynthSpec, shape: Shape, owned: bool) -> String {
    let mut rng = Rng(spec.seed.max(1));
    let namespaces = (spec.pods / 250).max(3);
    let apps_per_ns = 25;
    let replicas = (spec.pods / (namespaces * apps_per_ns)).max(1);
    let mut out = String::with_capacity(spec.pods * 700 + spec.policies * 600);
    for n in 0..namespaces {
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-{n}\n  labels:\n    team: team-{}\n    env: {}\n",
            n % 7,
            if n % 3 == 0 { "prod" } else { "dev" }
        );
    }
    let mut made = 0;
    'outer: for n in 0..namespaces {
        for a in 0..apps_per_ns {
            // One Deployment's ReplicaSet per application: its pods share
            // the `pod-template-hash` the ReplicaSet's name ends in, and
            // name it as their controller (as `kubectl get pods -o yaml`
            // shows them; the ReplicaSet itself is not in the input).
            // One draw per pod (the first names the ReplicaSet), so the
            // policies drawn after the pods are those of earlier versions.
            let mut hash = 0;
            for r in 0..replicas {
                if made >= spec.pods {
                    break 'outer;
                }
                made += 1;
                let draw = rng.next() & 0xffff_ffff;
                if r == 0 || !owned {
                    hash = draw;
                }
                let tier = TIERS[a % TIERS.len()];
                let port = PORTS[a % PORTS.len()];
                let _ = write!(
                    out,
                    "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{a}-{r}\n  namespace: ns-{n}\n  labels:\n    app: app-{a}\n    tier: {tier}\n    version: v{}\n    pod-template-hash: h{hash:x}\n{}spec:\n  serviceAccountName: app-{a}\n  containers:\n    - name: main\n      image: registry.example/app-{a}:1.{}\n      ports:\n        - name: http\n          containerPort: {port}\n          protocol: TCP\n        - name: metrics\n          containerPort: 9100\n",
                    a % 3,
                    if owned {
                        format!("  ownerReferences:\n    - apiVersion: apps/v1\n      kind: ReplicaSet\n      name: app-{a}-h{hash:x}\n      uid: {hash:08x}-0000-4000-8000-{n:012x}\n      controller: true\n      blockOwnerDeletion: true\n")
                    } else {
                        String::new()
                    },
                    r % 5
                );
            }
        }
    }
    // Services (one per application and namespace, by named targetPort)
    // and Gateway API routes: a Cilium Gateway per namespace, about one
    // HTTPRoute per 30 pods.
    let routes = (spec.pods / 30).max(1);
    let routes_per_ns = routes.div_ceil(namespaces);
    for n in 0..namespaces {
        for a in 0..apps_per_ns {
            let _ = write!(
                out,
                "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app-{a}\n  namespace: ns-{n}\nspec:\n  selector:\n    app: app-{a}\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n"
            );
        }
        let _ = write!(
            out,
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: gw\n  namespace: ns-{n}\nspec:\n  gatewayClassName: cilium\n  listeners:\n    - name: http\n      protocol: HTTP\n      port: 80\n"
        );
        for k in 0..routes_per_ns {
            let _ = write!(
                out,
                "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: route-{k}\n  namespace: ns-{n}\nspec:\n  parentRefs:\n    - name: gw\n  hostnames: [\"r{k}.ns-{n}.example\"]\n  rules:\n    - backendRefs:\n        - name: app-{}\n          port: 80\n",
                k % apps_per_ns
            );
        }
    }
    for p in 0..spec.policies {
        let n = rng.below(namespaces);
        let a = rng.below(apps_per_ns);
        let b = rng.below(apps_per_ns);
        let port = PORTS[rng.below(PORTS.len())];
        if p % 100 == 99 {
            // One policy in a hundred is a ClusterNetworkPolicy (enforced with
            // enable-k8s-cluster-network-policy): Admin and Baseline tiers,
            // Accept, Deny and Pass.
            let (tier, priority) = if p % 200 == 99 {
                ("Admin", rng.below(100))
            } else {
                ("Baseline", rng.below(100))
            };
            let _ = write!(
                out,
                "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata:\n  name: cnp-{p}\nspec:\n  tier: {tier}\n  priority: {priority}\n  subject:\n    namespaces:\n      matchLabels:\n        team: team-{}\n  ingress:\n    - name: from-team\n      action: {}\n      from:\n        - pods:\n            namespaceSelector:\n              matchLabels:\n                env: {}\n            podSelector:\n              matchLabels:\n                tier: {}\n      protocols:\n        - tcp:\n            destinationPort:\n              number: {port}\n    - name: outside\n      action: Deny\n      from:\n        - networks: [\"198.51.{}.0/24\"]\n  egress:\n    - name: pass-dns\n      action: Pass\n      to:\n        - namespaces:\n            matchLabels:\n              kubernetes.io/metadata.name: kube-system\n    - name: to-app\n      action: Accept\n      to:\n        - pods:\n            namespaceSelector: {{}}\n            podSelector:\n              matchLabels:\n                app: app-{a}\n      protocols:\n        - destinationNamedPort: http\n",
                rng.below(7),
                ["Accept", "Deny", "Pass"][rng.below(3)],
                if rng.below(2) == 0 { "prod" } else { "dev" },
                TIERS[rng.below(TIERS.len())],
                rng.below(250)
            );
            continue;
        }
        if shape == Shape::Dense && p % 5 != 4 {
            dense_policy(&mut out, &mut rng, p, namespaces, (n, a, port));
            continue;
        }
        match p % 5 {
            0 | 1 => {
                let _ = write!(
                    out,
                    "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: pol-{p}\n  namespace: ns-{n}\nspec:\n  endpointSelector:\n    matchLabels:\n      app: app-{a}\n  ingress:\n    - fromEndpoints:\n        - matchLabels:\n            app: app-{b}\n      toPorts:\n        - ports:\n            - port: \"{port}\"\n              protocol: TCP\n    - fromEntities: [ingress]\n      toPorts:\n        - ports:\n            - port: \"{port}\"\n  egress:\n    - toEndpoints:\n        - matchLabels:\n            tier: db\n      toPorts:\n        - ports:\n            - port: \"5432\"\n              protocol: TCP\n"
                );
            }
            2 => {
                let _ = write!(
                    out,
                    "---\napiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: ccnp-{p}\nspec:\n  endpointSelector:\n    matchExpressions:\n      - key: tier\n        operator: In\n        values: [{}]\n  ingressDeny:\n    - fromCIDRSet:\n        - cidr: 198.51.{}.0/24\n  egress:\n    - toEntities: [kube-apiserver]\n    - toEndpoints:\n        - matchLabels:\n            k8s:io.kubernetes.pod.namespace: kube-system\n            k8s-app: kube-dns\n      toPorts:\n        - ports:\n            - port: \"53\"\n              protocol: ANY\n",
                    TIERS[rng.below(TIERS.len())],
                    rng.below(250)
                );
            }
            3 => {
                let _ = write!(
                    out,
                    "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: knp-{p}\n  namespace: ns-{n}\nspec:\n  podSelector:\n    matchLabels:\n      app: app-{a}\n  policyTypes: [Ingress]\n  ingress:\n    - from:\n        - namespaceSelector:\n            matchLabels:\n              team: team-{}\n          podSelector:\n            matchLabels:\n              tier: {}\n      ports:\n        - port: {port}\n",
                    rng.below(7),
                    TIERS[rng.below(TIERS.len())]
                );
            }
            _ => {
                let _ = write!(
                    out,
                    "---\napiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: gw-{p}\nspec:\n  endpointSelector:\n    matchExpressions:\n      - key: reserved:ingress\n        operator: Exists\n  ingress:\n    - fromEntities: [world]\n      toPorts:\n        - ports:\n            - port: \"{port}\"\n              protocol: TCP\n  egress:\n    - toEndpoints:\n        - matchLabels:\n            k8s:io.kubernetes.pod.namespace: ns-{n}\n            app: app-{a}\n      toPorts:\n        - ports:\n            - port: http\n              protocol: TCP\n"
                );
            }
        }
    }
    out
}

/// One policy of the dense shape: its peers (or subjects) are a share of the
/// whole cluster, so their number grows with it.
fn dense_policy(
    out: &mut String,
    rng: &mut Rng,
    p: usize,
    namespaces: usize,
    (n, a, port): (usize, usize, u16),
) {
    // A fifth of the namespaces, starting at a random one.
    let share = (namespaces / 5).max(1);
    let first = rng.below(namespaces);
    let set = (0..share)
        .map(|k| format!("ns-{}", (first + k) % namespaces))
        .collect::<Vec<_>>()
        .join(", ");
    let tier = TIERS[rng.below(TIERS.len())];
    match p % 5 {
        0 => {
            let _ = write!(
                out,
                "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: dense-{p}\n  namespace: ns-{n}\nspec:\n  endpointSelector:\n    matchLabels:\n      app: app-{a}\n  ingress:\n    - fromEndpoints:\n        - matchExpressions:\n            - key: k8s:io.kubernetes.pod.namespace\n              operator: In\n              values: [{set}]\n            - key: tier\n              operator: In\n              values: [{tier}, web]\n      toPorts:\n        - ports:\n            - port: \"{port}\"\n              protocol: TCP\n"
            );
        }
        1 => {
            let _ = write!(
                out,
                "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: dense-knp-{p}\n  namespace: ns-{n}\nspec:\n  podSelector:\n    matchLabels:\n      app: app-{a}\n  policyTypes: [Ingress, Egress]\n  ingress:\n    - from:\n        - namespaceSelector:\n            matchExpressions:\n              - key: team\n                operator: In\n                values: [team-{}, team-{}]\n          podSelector: {{}}\n      ports:\n        - port: {port}\n  egress:\n    - to:\n        - namespaceSelector: {{}}\n          podSelector:\n            matchLabels:\n              tier: {tier}\n",
                rng.below(7),
                rng.below(7)
            );
        }
        2 => {
            let _ = write!(
                out,
                "---\napiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: dense-ccnp-{p}\nspec:\n  endpointSelector:\n    matchExpressions:\n      - key: k8s:io.kubernetes.pod.namespace\n        operator: In\n        values: [{set}]\n  egress:\n    - toEndpoints:\n        - matchExpressions:\n            - key: k8s:io.kubernetes.pod.namespace\n              operator: Exists\n          matchLabels:\n            tier: {tier}\n      toPorts:\n        - ports:\n            - port: \"{port}\"\n              protocol: TCP\n"
            );
        }
        _ => {
            let _ = write!(
                out,
                "---\napiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: dense-deny-{p}\nspec:\n  endpointSelector:\n    matchLabels:\n      tier: {tier}\n  ingressDeny:\n    - fromEndpoints:\n        - matchLabels:\n            k8s:io.cilium.k8s.namespace.labels.env: dev\n            app: app-{a}\n      toPorts:\n        - ports:\n            - port: \"{port}\"\n              protocol: TCP\n"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Engine;
    use crate::ingest::{ClusterConfig, Inventory};

    /// Loads a generated cluster; returns (pods, policies, map entries per
    /// endpoint identity, expanded per peer identity).
    fn load(pods: usize, shape: Shape) -> (usize, usize, f64) {
        let text = generate_shaped(
            &SynthSpec {
                pods,
                policies: pods / 10,
                seed: 3,
            },
            shape,
        );
        let mut inv = Inventory::new(ClusterConfig {
            enable_k8s_cluster_network_policy: true,
            ..ClusterConfig::default()
        });
        inv.load_text("synthetic.yaml", &text);
        inv.complete_namespaces();
        // Only the note that pods are represented by their ReplicaSets.
        let problem = inv.problems().next();
        assert!(problem.is_none(), "{problem:?}");
        let engine = Engine::new(&inv);
        let maps = crate::resolved::resolve_all(&engine);
        let entries: usize = maps.iter().map(|r| r.rows().len()).sum();
        (
            inv.workloads
                .iter()
                .map(|w| w.represents.len().max(1))
                .sum(),
            inv.policies.len(),
            entries as f64 / maps.len().max(1) as f64,
        )
    }

    /// The dense shape loads cleanly, and what each identity's map holds
    /// grows with the cluster (its selectors reach a share of it), while
    /// the standard shape's grows far less.
    #[test]
    fn dense_selectors_reach_grows_with_the_cluster() {
        let (pods, policies, dense_small) = load(1000, Shape::Dense);
        assert_eq!((pods, policies), (1000, 100));
        let (_, _, dense_big) = load(4000, Shape::Dense);
        let (_, _, std_small) = load(1000, Shape::Standard);
        let (_, _, std_big) = load(4000, Shape::Standard);
        assert!(
            dense_big > 3.0 * dense_small,
            "dense: {dense_small:.0} -> {dense_big:.0} entries per identity"
        );
        assert!(
            dense_big / dense_small > std_big / std_small,
            "dense {dense_small:.0} -> {dense_big:.0}, standard {std_small:.0} -> {std_big:.0}"
        );
        assert!(dense_small > std_small);
    }

    #[test]
    fn dense_shape_is_deterministic_and_keeps_routes_by_named_port() {
        let spec = SynthSpec {
            pods: 600,
            policies: 60,
            seed: 9,
        };
        let a = generate_shaped(&spec, Shape::Dense);
        assert_eq!(a, generate_shaped(&spec, Shape::Dense));
        assert_ne!(a, generate(&spec));
        // About one route per 30 pods (rounded up per namespace).
        let routes = a.matches("kind: HTTPRoute").count();
        assert!((600 / 30..=600 / 30 + 3).contains(&routes), "{routes}");
        assert!(a.contains("targetPort: http"));
        assert!(a.contains("operator: In"));
    }
}
