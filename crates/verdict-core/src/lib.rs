#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
//! verdict-core: Cilium's policy control plane, offline.
//!
//! ```text
//! text ──yaml──▶ nodes ──ingest──▶ Inventory ──engine──▶ identities, rules
//!                                                    └──▶ verdicts with reasons
//! ```
//!
//! No file system access and no printing here: the binary does I/O.

pub mod agent_config;
pub mod cidr;
pub mod connectivity;
pub mod connectivity_delta;
pub mod decode;
pub mod diff;
pub mod engine;
pub mod entity;
pub mod flowgen;
pub mod flows;
pub mod generate;
pub mod identity;
pub mod ingest;
pub mod labels;
pub mod matrix;
pub mod matrix_delta;
pub mod matrix_json;
pub mod matrix_render;
pub mod matrix_summary;
pub mod names;
pub mod near_miss;
pub mod paths;
pub mod paths_render;
pub mod peerset;
pub mod policy;
pub mod policytest;
pub mod replay;
pub mod report;
pub mod resolved;
pub mod resolved_rows;
pub mod routes;
pub mod selector;
mod selector_memo;
pub mod settings;
pub mod side;
pub mod source;
pub mod synth;
pub mod text;
pub mod trace;
pub mod yaml;
