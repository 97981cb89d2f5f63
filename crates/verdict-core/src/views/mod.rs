//! What every renderer shares: party names for text views and escaping for
//! each output format.

pub mod names;
pub mod text;
