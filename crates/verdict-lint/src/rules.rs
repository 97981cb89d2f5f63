//! The rule registry: one file per rule, one line per rule here.

mod vrd001_wildcard_subject_admits_world;
mod vrd002_ingress_egress_too_broad;
mod vrd003_backend_admits_broad_entity;
mod vrd004_selector_selects_nothing;
mod vrd005_route_backend_not_reachable;
mod vrd006_service_port_not_target_port;
mod vrd007_allow_shadowed_by_deny;
mod vrd008_duplicate_rule;
mod vrd009_cidr_rule_behind_snat;
mod vrd010_cidr_covers_cluster_range;
mod vrd011_egress_default_deny_without_dns;
mod vrd012_policy_rejected;
mod vrd013_allow_without_default_deny;

use crate::Rule;

pub static ALL: &[&dyn Rule] = &[
    &vrd001_wildcard_subject_admits_world::WildcardSubjectAdmitsWorld,
    &vrd002_ingress_egress_too_broad::IngressEgressTooBroad,
    &vrd003_backend_admits_broad_entity::BackendAdmitsBroadEntity,
    &vrd004_selector_selects_nothing::SelectorSelectsNothing,
    &vrd005_route_backend_not_reachable::RouteBackendNotReachable,
    &vrd006_service_port_not_target_port::ServicePortNotTargetPort,
    &vrd007_allow_shadowed_by_deny::AllowShadowedByDeny,
    &vrd008_duplicate_rule::DuplicateRule,
    &vrd009_cidr_rule_behind_snat::CidrRuleBehindSnat,
    &vrd010_cidr_covers_cluster_range::CidrCoversClusterRange,
    &vrd011_egress_default_deny_without_dns::EgressDefaultDenyWithoutDns,
    &vrd012_policy_rejected::PolicyRejected,
    &vrd013_allow_without_default_deny::AllowWithoutDefaultDeny,
];
