//! JSON Schemas for editors: PolicyTest files and `.verdict.yaml`.
//!
//! Both formats are read by hand-written decoders (located diagnostics for
//! every unknown field and wrong type; `verdict_core::policytest`,
//! `verdict_lint::config`), so the schemas come from the mirror types below.
//! The test `schema.rs` in `tests/` validates every PolicyTest file of the
//! repository against the generated schema; when a decoder learns a field,
//! add it here.

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;
use std::collections::BTreeMap;

/// A PolicyTest document: expected verdicts of flows and expected rejected
/// policies, checked by `verdict test`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(title = "verdict PolicyTest")]
struct PolicyTest {
    /// `verdict.dev/v1` (the conformance corpus writes `verdict.conformance/v1`)
    #[serde(rename = "apiVersion")]
    #[schemars(extend("examples" = ["verdict.dev/v1"]))]
    api_version: Option<String>,
    #[schemars(schema_with = "kind_policytest")]
    kind: String,
    metadata: Option<Metadata>,
    spec: Spec,
}

fn kind_policytest(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"const": "PolicyTest"})
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct Metadata {
    /// The test's name, shown in failures
    name: Option<String>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Spec {
    /// The Cilium release and agent settings the expectations hold for
    cluster: Option<Cluster>,
    /// Manifests (files or directories) relative to this file
    files: Option<Vec<String>>,
    /// Kubernetes objects given inline
    objects: Option<Vec<serde_json::Map<String, Value>>>,
    /// Policies Cilium is expected to refuse
    rejected: Option<Vec<Rejected>>,
    /// Flows and their expected verdicts
    flows: Option<Vec<Flow>>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Cluster {
    /// Cilium's cluster-name (the `cluster` entity) [default: default]
    name: Option<String>,
    /// IPv4 and IPv6 (world-ipv4 / world-ipv6 identities)
    dual_stack: Option<bool>,
    /// The Cilium release: 1.18, 1.19 or 1.20 (quote it: unquoted 1.20 is a number)
    #[schemars(schema_with = "cilium_version")]
    #[serde(default)]
    cilium_version: Option<String>,
    /// The agent's enable-policy
    #[schemars(schema_with = "policy_enforcement")]
    #[serde(default)]
    policy_enforcement: Option<String>,
    /// The agent's allow-localhost (auto means always in Kubernetes)
    #[schemars(schema_with = "allow_localhost")]
    #[serde(default)]
    allow_localhost: Option<String>,
    /// Peer selectors match only the local cluster [default: the release's]
    policy_default_local_cluster: Option<bool>,
    /// Enforce ClusterNetworkPolicy (Cilium 1.20+)
    #[serde(rename = "enableK8sClusterNetworkPolicy")]
    enable_k8s_cluster_network_policy: Option<bool>,
}

fn cilium_version(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "The Cilium release: 1.18, 1.19 or 1.20 (a patch release or a leading v is accepted)",
        "type": "string",
        "pattern": "^\\s*v?1\\.(18|19|20)(\\.[0-9A-Za-z.+-]*)?\\s*$",
        "examples": ["1.18", "1.19", "1.20"]
    })
}

fn policy_enforcement(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"description": "The agent's enable-policy", "enum": ["default", "always", "never"]})
}

fn allow_localhost(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"description": "The agent's allow-localhost", "enum": ["always", "policy", "auto"]})
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Rejected {
    /// CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy, ...
    kind: String,
    /// The namespace (default: `default` for namespaced kinds)
    namespace: Option<String>,
    name: String,
    /// Why Cilium refuses it (documentation; not compared)
    reason: Option<String>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Flow {
    /// Source: ns/pod, ns/kind/name, world, ingress, reserved:NAME, cidr:A.B.C.D/N or an IP
    from: String,
    /// Destination, named like `from`
    to: String,
    /// TCP (default), UDP, SCTP, ICMP or ICMPv6
    #[schemars(schema_with = "protocol")]
    #[serde(default)]
    protocol: Option<String>,
    /// Destination port (or ICMP type)
    #[schemars(range(min = 0, max = 65535))]
    port: u16,
    expect: Expect,
}

fn protocol(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": "^([Tt][Cc][Pp]|[Uu][Dd][Pp]|[Ss][Cc][Tt][Pp]|[Ii][Cc][Mm][Pp]([Vv]6)?)$",
        "examples": ["TCP", "UDP", "SCTP", "ICMP", "ICMPv6"]
    })
}

/// The expected verdict: overall (`allowed`, `denied`), or per side
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Expect {
    Overall(Decision),
    Sides(Sides),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Sides {
    /// The verdict at the source
    egress: Option<Decision>,
    /// The verdict at the destination
    ingress: Option<Decision>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Decision {
    Allowed,
    Denied,
    Allow,
    Deny,
}

/// verdict's configuration file (`.verdict.yaml`)
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
#[schemars(title = "verdict configuration (.verdict.yaml)")]
struct Config {
    /// `verdict lint` settings (the command line overrides them)
    lint: Option<Lint>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct Lint {
    /// Exit 1 when a finding is at or above this level [default: warning]
    fail_on: Option<Level>,
    /// Pod and node address ranges [default: 10.0.0.0/8, Cilium's cluster-pool default]
    #[serde(rename = "clusterCIDRs")]
    cluster_cidrs: Option<Vec<String>>,
    /// Per rule (code such as VRD004, or name): off, on, or a level
    #[schemars(schema_with = "rules")]
    #[serde(default)]
    rules: Option<BTreeMap<String, String>>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Level {
    Error,
    Warning,
    Info,
}

fn rules(_: &mut SchemaGenerator) -> Schema {
    let mut keys: Vec<Value> = Vec::new();
    for r in verdict_lint::registry() {
        let m = r.meta();
        keys.push(m.code.into());
        keys.push(m.name.into());
    }
    json_schema!({
        "type": "object",
        "propertyNames": {"enum": keys},
        "additionalProperties": {
            "enum": ["off", "on", "error", "warning", "info", "false", "true", "disabled", "enabled", false, true]
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// PolicyTest files (`verdict test`)
    Policytest,
    /// The configuration file `.verdict.yaml`
    Config,
}

/// The schema as a JSON value (draft 2020-12).
pub fn schema(which: Which) -> Value {
    match which {
        Which::Policytest => schemars::schema_for!(PolicyTest),
        Which::Config => schemars::schema_for!(Config),
    }
    .to_value()
}
