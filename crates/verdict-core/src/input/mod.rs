//! Input: YAML/JSON text to located node trees, typed reading, the
//! inventory of every kind, the agent settings found in the input, PolicyTest
//! documents, and the source locations every diagnostic carries.

pub mod agent_config;
pub mod decode;
pub mod ingest;
pub mod policytest;
pub mod source;
pub mod yaml;
