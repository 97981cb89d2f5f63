#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
//! verdict-core: Cilium's policy control plane, offline.
//!
//! ```text
//! text ──yaml──▶ nodes ──ingest──▶ Inventory ──engine──▶ identities, rules
//!                                                    └──▶ verdicts with reasons
//! ```
//!
//! No file system access and no printing here: the binary does I/O.

// Folders by concern (see ARCHITECTURE.md): input, model, engine, paths,
// matrix, flows, views, and the commands' own modules. Each module is also
// reachable at the crate root under its earlier flat name
// (`verdict_core::trace`, `crate::matrix_render`), so callers need not know
// the folder a module lives in.
pub mod diff;
pub mod engine;
pub mod flows;
pub mod generate;
pub mod input;
pub mod matrix;
pub mod model;
pub mod paths;
pub mod report;
pub mod synth;
pub mod views;

pub(crate) use engine::selector_memo;
pub use engine::{
    connectivity, connectivity_delta, near_miss, peerset, resolved, resolved_rows, side, trace,
};
pub use flows::{flowgen, replay};
pub use input::{agent_config, decode, ingest, policytest, source, yaml};
pub use matrix::{
    delta as matrix_delta, json as matrix_json, render as matrix_render, summary as matrix_summary,
};
pub use model::{cidr, entity, identity, labels, policy, selector, settings};
pub use paths::{render as paths_render, routes};
pub use views::{names, text};

/// The threads the machine offers (1 when it cannot tell): the bound of
/// every stage that splits its work (YAML pieces, identity labels, maps,
/// paths, matrix deltas).
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
