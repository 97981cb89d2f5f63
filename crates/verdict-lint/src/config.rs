//! Lint configuration: which rules run, at which level, and cluster facts.
//!
//! ```yaml
//! # .verdict.yaml
//! lint:
//!   failOn: warning            # error | warning | info
//!   clusterCIDRs: [10.0.0.0/8] # pod/node ranges (default: Cilium's cluster-pool default)
//!   rules:
//!     VRD004: off              # off | on | error | warning | info
//!     wildcard-subject-admits-world: error
//! ```
//!
//! The command line (`--disable`, `--enable`, `--level CODE=LEVEL`,
//! `--fail-on`) overrides the file.

use crate::{find_rule, Level};
use std::collections::{BTreeMap, BTreeSet};
use verdict_core::cidr::Cidr;
use verdict_core::yaml::{parse_documents, Document, Node, Value};

#[derive(Debug, Clone)]
pub struct LintConfig {
    pub disabled: BTreeSet<String>,
    pub levels: BTreeMap<String, Level>,
    pub fail_on: Level,
    pub cluster_cidrs: Vec<Cidr>,
}

impl Default for LintConfig {
    fn default() -> Self {
        LintConfig {
            disabled: BTreeSet::new(),
            levels: BTreeMap::new(),
            fail_on: Level::Warning,
            cluster_cidrs: Cidr::parse("10.0.0.0/8").into_iter().collect(),
        }
    }
}

impl LintConfig {
    pub fn enabled(&self, code: &str) -> bool {
        !self.disabled.contains(code)
    }

    pub fn level(&self, code: &str) -> Option<Level> {
        self.levels.get(code).copied()
    }

    /// The code of a rule named by code or name.
    pub fn code_of(key: &str) -> Result<&'static str, String> {
        find_rule(key)
            .map(|r| r.meta().code)
            .ok_or_else(|| format!("unknown lint rule `{key}` (see `verdict lint --list`)"))
    }

    /// Applies one setting: `off`, `on`, or a level.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let code = Self::code_of(key)?.to_string();
        match value {
            "off" | "false" | "disabled" => {
                self.disabled.insert(code);
            }
            "on" | "true" | "enabled" => {
                self.disabled.remove(&code);
            }
            v => match Level::parse(v) {
                Some(l) => {
                    self.disabled.remove(&code);
                    self.levels.insert(code, l);
                }
                None => {
                    return Err(format!(
                        "`{key}: {v}`: expected off, on, error, warning or info"
                    ))
                }
            },
        }
        Ok(())
    }

    /// Reads the `lint:` section of a configuration file.
    pub fn from_yaml(file: &str, text: &str) -> Result<LintConfig, String> {
        let mut cfg = LintConfig::default();
        for doc in parse_documents(text) {
            let root = match doc {
                Document::Ok(n) => n,
                Document::Err { pos, message } => {
                    return Err(format!("{file}:{}: YAML syntax error: {message}", pos.line))
                }
            };
            let at = |n: &Node| format!("{file}:{}", n.pos.line);
            let Value::Map(top) = &root.value else {
                return Err(format!(
                    "{}: the configuration must be a mapping",
                    at(&root)
                ));
            };
            for (k, v) in top {
                match k.as_str() {
                    Some("lint") => {}
                    Some(other) => {
                        return Err(format!(
                            "{}: unknown key `{other}` (expected `lint`)",
                            at(k)
                        ))
                    }
                    None => return Err(format!("{}: non-string key", at(k))),
                }
                let Value::Map(items) = &v.value else {
                    return Err(format!("{}: `lint` must be a mapping", at(v)));
                };
                for (k2, v2) in items {
                    match k2.as_str() {
                        Some("failOn") => {
                            cfg.fail_on = v2.as_str().and_then(Level::parse).ok_or_else(|| {
                                format!("{}: `failOn` must be error, warning or info", at(v2))
                            })?;
                        }
                        Some("clusterCIDRs") => {
                            let list = v2.as_seq().ok_or_else(|| {
                                format!("{}: `clusterCIDRs` must be a list", at(v2))
                            })?;
                            cfg.cluster_cidrs = list
                                .iter()
                                .map(|c| {
                                    Cidr::parse(c.as_str().unwrap_or_default())
                                        .map_err(|e| format!("{}: {e}", at(c)))
                                })
                                .collect::<Result<_, _>>()?;
                        }
                        Some("rules") => {
                            let Value::Map(rules) = &v2.value else {
                                return Err(format!("{}: `rules` must be a mapping", at(v2)));
                            };
                            for (rk, rv) in rules {
                                let key = rk.as_str().unwrap_or_default();
                                let value = rv.as_str().ok_or_else(|| {
                                    format!("{}: `{key}` must be off, on or a level", at(rv))
                                })?;
                                cfg.set(key, value)
                                    .map_err(|e| format!("{}: {e}", at(rk)))?;
                            }
                        }
                        Some(other) => {
                            return Err(format!(
                            "{}: unknown key `lint.{other}` (expected failOn, clusterCIDRs, rules)",
                            at(k2)
                        ))
                        }
                        None => return Err(format!("{}: non-string key", at(k2))),
                    }
                }
            }
        }
        Ok(cfg)
    }
}
