//! The cluster the verdicts are computed for: which Cilium release, and the
//! agent settings that change verdicts (`enable-policy`, `allow-localhost`,
//! `policy-default-local-cluster`, `enable-k8s-cluster-network-policy`,
//! `cluster-name`, dual stack). Facts and sources: docs/semantics.md,
//! "Versions and agent settings".

use serde::Serialize;
use std::fmt;

/// A Cilium minor release whose semantics verdict reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CiliumVersion {
    #[serde(rename = "1.18")]
    V1_18,
    #[serde(rename = "1.19")]
    V1_19,
    #[serde(rename = "1.20")]
    V1_20,
}

impl CiliumVersion {
    pub const ALL: [CiliumVersion; 3] = [
        CiliumVersion::V1_18,
        CiliumVersion::V1_19,
        CiliumVersion::V1_20,
    ];
    /// The newest release, the default.
    pub const NEWEST: CiliumVersion = CiliumVersion::V1_20;

    /// Parses `1.18`, `v1.19`, `1.20.3` (patch releases share semantics).
    pub fn parse(s: &str) -> Result<CiliumVersion, String> {
        let t = s.trim().trim_start_matches('v');
        let minor: String = t.split('.').take(2).collect::<Vec<_>>().join(".");
        CiliumVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == minor)
            .ok_or_else(|| {
                format!("`{s}` is not a supported Cilium version (supported: 1.18, 1.19, 1.20)")
            })
    }

    /// The patch release of a version text: `1.18.6` and `v1.18.6-rc.1`
    /// give `Some(6)`, a bare minor (`1.18`) gives `None`.
    pub fn parse_patch(s: &str) -> Option<u32> {
        let t = s.trim().trim_start_matches('v');
        let third = t.split('.').nth(2)?;
        let digits: String = third.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CiliumVersion::V1_18 => "1.18",
            CiliumVersion::V1_19 => "1.19",
            CiliumVersion::V1_20 => "1.20",
        }
    }
}

impl fmt::Display for CiliumVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The agent's `enable-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PolicyEnforcement {
    /// An endpoint enforces a direction once a rule selects it for it.
    #[default]
    Default,
    /// Every endpoint is default-deny in both directions.
    Always,
    /// No policy is enforced anywhere.
    Never,
}

impl PolicyEnforcement {
    pub fn parse(s: &str) -> Result<PolicyEnforcement, String> {
        match s.trim() {
            "default" => Ok(PolicyEnforcement::Default),
            "always" => Ok(PolicyEnforcement::Always),
            "never" => Ok(PolicyEnforcement::Never),
            _ => Err(format!(
                "`{s}` is not a policy enforcement mode (default, always, never)"
            )),
        }
    }
}

impl fmt::Display for PolicyEnforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyEnforcement::Default => "default",
            PolicyEnforcement::Always => "always",
            PolicyEnforcement::Never => "never",
        })
    }
}

/// The agent's `allow-localhost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AllowLocalhost {
    /// The node (`reserved:host`) always reaches its local pods, whatever
    /// their ingress policy (what `auto` becomes in Kubernetes).
    #[default]
    Always,
    /// The node reaches a pod only where policy allows it.
    Policy,
}

impl AllowLocalhost {
    pub fn parse(s: &str) -> Result<AllowLocalhost, String> {
        match s.trim() {
            "always" | "auto" => Ok(AllowLocalhost::Always),
            "policy" => Ok(AllowLocalhost::Policy),
            _ => Err(format!(
                "`{s}` is not an allow-localhost mode (always, policy; auto means always in Kubernetes)"
            )),
        }
    }
}

impl fmt::Display for AllowLocalhost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllowLocalhost::Always => "always",
            AllowLocalhost::Policy => "policy",
        })
    }
}

/// Everything about the cluster and its agents that shapes verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    /// `cluster-name`: the `cluster` entity and the cluster label of pods.
    pub name: String,
    pub dual_stack: bool,
    pub version: CiliumVersion,
    /// The patch release when the input names one (`1.18.6`); `None`
    /// means the newest patch release of `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<u32>,
    pub policy_enforcement: PolicyEnforcement,
    pub allow_localhost: AllowLocalhost,
    /// `policy-default-local-cluster`; `None`: the release's default.
    pub policy_default_local_cluster: Option<bool>,
    /// `enable-k8s-cluster-network-policy` (ClusterNetworkPolicy, 1.20+).
    pub enable_k8s_cluster_network_policy: bool,
    /// The settings the user gave explicitly (command line, test file):
    /// settings found in the input (`cilium-config`) do not override them.
    #[serde(skip)]
    pub explicit: Explicit,
    /// Where settings were taken from the input, for the user to see.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub taken_from: Vec<String>,
}

/// Which settings were given explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Explicit {
    pub name: bool,
    pub dual_stack: bool,
    pub version: bool,
    pub policy_enforcement: bool,
    pub allow_localhost: bool,
    pub policy_default_local_cluster: bool,
    pub enable_k8s_cluster_network_policy: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            name: "default".to_string(),
            dual_stack: false,
            version: CiliumVersion::NEWEST,
            patch: None,
            policy_enforcement: PolicyEnforcement::Default,
            allow_localhost: AllowLocalhost::Always,
            policy_default_local_cluster: None,
            enable_k8s_cluster_network_policy: false,
            explicit: Explicit::default(),
            taken_from: Vec::new(),
        }
    }
}

impl ClusterConfig {
    /// Whether selectors match only the local cluster.
    pub fn default_local_cluster(&self) -> bool {
        self.policy_default_local_cluster
            .unwrap_or(self.version >= DEFAULT_LOCAL_CLUSTER_SINCE)
    }

    /// A peer selector as `policy-default-local-cluster` leaves it: with
    /// the setting on, a selector that names no cluster (under one of
    /// `sources`) also requires the local cluster's label.
    pub fn scope_to_local_cluster(
        &self,
        sel: crate::selector::Selector,
        sources: &[&str],
    ) -> crate::selector::Selector {
        use crate::labels::{CLUSTER_LABEL, SOURCE_K8S};
        if self.default_local_cluster() && !sel.has_key(sources, CLUSTER_LABEL) {
            sel.with(crate::selector::Requirement::equals(
                SOURCE_K8S,
                CLUSTER_LABEL,
                &self.name,
            ))
        } else {
            sel
        }
    }

    /// Sets the release from a version text (`1.19`, `v1.18.6`).
    pub fn set_version(&mut self, text: &str) -> Result<(), String> {
        self.version = CiliumVersion::parse(text)?;
        self.patch = CiliumVersion::parse_patch(text);
        Ok(())
    }

    /// The release as the user named it: `1.20`, or `1.18.6` with a patch.
    pub fn version_text(&self) -> String {
        match self.patch {
            Some(p) => format!("{}.{p}", self.version),
            None => self.version.to_string(),
        }
    }

    /// Whether the default identity-label filter ignores
    /// `topology.kubernetes.io/*` pod labels: from 1.19.0-rc.1 and from
    /// 1.18.7 (cilium/cilium PR 43725, backports 43780 and 43777). A bare
    /// `1.18` means its newest patch release, which ignores them.
    pub fn ignores_topology_labels(&self) -> bool {
        match self.version {
            CiliumVersion::V1_18 => self
                .patch
                .is_none_or(|p| p >= TOPOLOGY_FILTER_SINCE_1_18_PATCH),
            CiliumVersion::V1_19 | CiliumVersion::V1_20 => true,
        }
    }

    /// Whether pod identities carry the generated named-ports labels
    /// (`gen:io.cilium.k8s.named-ports`, cilium/cilium PR 45760, in 1.20),
    /// so that pods whose named ports differ have different identities.
    pub fn named_ports_in_identity(&self) -> bool {
        self.version >= CiliumVersion::V1_20
    }

    /// Whether ClusterNetworkPolicy objects are enforced.
    pub fn cluster_network_policy(&self) -> bool {
        self.version >= CiliumVersion::V1_20 && self.enable_k8s_cluster_network_policy
    }

    /// One line for headers: `Cilium 1.20, enable-policy=default, ...`.
    pub fn summary(&self) -> String {
        format!(
            "Cilium {}, enable-policy={}, allow-localhost={}, policy-default-local-cluster={}, enable-k8s-cluster-network-policy={}, cluster-name={}{}",
            self.version_text(),
            self.policy_enforcement,
            self.allow_localhost,
            self.default_local_cluster(),
            self.enable_k8s_cluster_network_policy,
            self.name,
            if self.dual_stack { ", dual-stack" } else { "" }
        )
    }
}

/// The release from which `policy-default-local-cluster` is on by default.
pub const DEFAULT_LOCAL_CLUSTER_SINCE: CiliumVersion = CiliumVersion::V1_19;

/// The first 1.18 patch release whose label filter ignores
/// `topology.kubernetes.io/*` (v1.18.7 release notes: backport PR 43777).
pub const TOPOLOGY_FILTER_SINCE_1_18_PATCH: u32 = 7;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_patch_and_prefix() {
        assert_eq!(CiliumVersion::parse("1.18").unwrap(), CiliumVersion::V1_18);
        assert_eq!(
            CiliumVersion::parse("v1.19.4").unwrap(),
            CiliumVersion::V1_19
        );
        assert!(CiliumVersion::parse("1.17").is_err());
        assert!(CiliumVersion::parse("2").is_err());
        assert_eq!(CiliumVersion::parse_patch("v1.19.4"), Some(4));
        assert_eq!(CiliumVersion::parse_patch("1.18.6-rc.1"), Some(6));
        assert_eq!(CiliumVersion::parse_patch("1.18"), None);
    }

    #[test]
    fn topology_labels_leave_identities_from_1_18_7_and_1_19() {
        let mut c = ClusterConfig::default();
        for (text, ignored) in [
            ("1.18.0", false),
            ("v1.18.6", false),
            ("1.18.7", true),
            ("1.18", true),
            ("1.19.0", true),
            ("1.20", true),
        ] {
            c.set_version(text).unwrap();
            assert_eq!(c.ignores_topology_labels(), ignored, "{text}");
            assert!(c
                .summary()
                .starts_with(&format!("Cilium {}", text.trim_start_matches('v'))));
        }
    }

    #[test]
    fn cluster_network_policy_needs_1_20_and_the_flag() {
        let mut c = ClusterConfig::default();
        assert!(!c.cluster_network_policy());
        c.enable_k8s_cluster_network_policy = true;
        assert!(c.cluster_network_policy());
        c.version = CiliumVersion::V1_19;
        assert!(!c.cluster_network_policy());
    }
}
