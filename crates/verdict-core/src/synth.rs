//! A synthetic cluster generator for benchmarks and property tests:
//! namespaces with teams, applications with several replicas (pods with
//! realistic generated labels), and a mix of CiliumNetworkPolicy,
//! CiliumClusterwideNetworkPolicy, NetworkPolicy and (one in a hundred)
//! ClusterNetworkPolicy objects that reuse the same label vocabulary.
//! Services for every application, and a Cilium Gateway per namespace with
//! about one HTTPRoute per 30 pods (by named targetPort).
//! Deterministic for a given seed.

use std::fmt::Write;

pub struct SynthSpec {
    pub pods: usize,
    pub policies: usize,
    pub seed: u64,
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
            for r in 0..replicas {
                if made >= spec.pods {
                    break 'outer;
                }
                made += 1;
                let tier = TIERS[a % TIERS.len()];
                let port = PORTS[a % PORTS.len()];
                let _ = write!(
                    out,
                    "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{a}-{r}\n  namespace: ns-{n}\n  labels:\n    app: app-{a}\n    tier: {tier}\n    version: v{}\n    pod-template-hash: h{:x}\nspec:\n  serviceAccountName: app-{a}\n  containers:\n    - name: main\n      image: registry.example/app-{a}:1.{}\n      ports:\n        - name: http\n          containerPort: {port}\n          protocol: TCP\n        - name: metrics\n          containerPort: 9100\n",
                    a % 3,
                    rng.next() & 0xffff_ffff,
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
