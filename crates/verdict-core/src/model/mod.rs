//! Cilium's vocabulary and the normalised model: labels, selectors, CIDRs,
//! entities, identities, rules, and the release and agent settings verdicts
//! are computed for.

pub mod cidr;
pub mod entity;
pub mod identity;
pub mod labels;
pub mod policy;
pub mod selector;
pub mod settings;
