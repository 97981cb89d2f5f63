//! Typed reading of located YAML nodes, collecting diagnostics.
//!
//! Every accessor reports what is wrong (wrong type, unknown field) with the
//! object and `file:line`, and returns `None` so that decoding goes on with
//! the rest of the object. A `null` value reads as absent, as Go's JSON
//! decoder treats it.

use crate::source::{Diagnostic, Location, ObjectRef, Severity};
use crate::yaml::{Node, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Ctx<'d> {
    pub file: Arc<str>,
    pub object: Option<ObjectRef>,
    pub diags: &'d mut Vec<Diagnostic>,
}

/// The fields of a mapping node, checked against a list of known names.
pub struct Fields<'n> {
    items: &'n [(Node, Node)],
}

impl<'n> Fields<'n> {
    /// The value of `key`, `None` when absent or `null`.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.items
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// Whether `key` is written at all (even as `null`).
    pub fn present(&self, key: &str) -> bool {
        self.items.iter().any(|(k, _)| k.as_str() == Some(key))
    }
}

impl<'d> Ctx<'d> {
    pub fn new(file: &Arc<str>, diags: &'d mut Vec<Diagnostic>) -> Ctx<'d> {
        Ctx {
            file: Arc::clone(file),
            object: None,
            diags,
        }
    }

    pub fn loc(&self, n: &Node) -> Location {
        Location::new(&self.file, n.pos)
    }

    pub fn report(&mut self, severity: Severity, n: &Node, message: String) {
        let d = Diagnostic {
            location: self.loc(n),
            severity,
            object: self.object.clone(),
            message,
        };
        self.diags.push(d);
    }

    pub fn error(&mut self, n: &Node, message: String) {
        self.report(Severity::Error, n, message);
    }

    pub fn warn(&mut self, n: &Node, message: String) {
        self.report(Severity::Warning, n, message);
    }

    /// The fields of a mapping; unknown keys are reported as errors (the API
    /// server refuses them under strict field validation, or prunes them).
    pub fn fields<'n>(&mut self, n: &'n Node, path: &str, known: &[&str]) -> Option<Fields<'n>> {
        match &n.value {
            Value::Map(items) => {
                for (k, _) in items {
                    match k.as_str() {
                        Some(name) if known.contains(&name) => {}
                        Some(name) => self.error(
                            k,
                            format!(
                                "unknown field `{path}.{name}` (the API server rejects it, or prunes it and the rule then means something else); known fields: {}",
                                known.join(", ")
                            ),
                        ),
                        None => self.error(k, format!("`{path}` has a non-string key")),
                    }
                }
                Some(Fields { items })
            }
            _ => {
                self.error(
                    n,
                    format!("`{path}` must be a mapping, found {}", n.type_name()),
                );
                None
            }
        }
    }

    /// The fields of a mapping without checking names (objects whose other
    /// fields are irrelevant to policy, such as a pod's containers).
    pub fn fields_loose<'n>(&mut self, n: &'n Node, path: &str) -> Option<Fields<'n>> {
        match &n.value {
            Value::Map(items) => Some(Fields { items }),
            _ => {
                self.error(
                    n,
                    format!("`{path}` must be a mapping, found {}", n.type_name()),
                );
                None
            }
        }
    }

    pub fn string(&mut self, n: &Node, path: &str) -> Option<String> {
        match &n.value {
            Value::Scalar { text, .. } => Some(text.clone()),
            _ => {
                self.error(
                    n,
                    format!("`{path}` must be a string, found {}", n.type_name()),
                );
                None
            }
        }
    }

    /// A string field that the schema types as string but people often write
    /// as a number (`port: 80`): accepted, with a warning.
    pub fn stringish(&mut self, n: &Node, path: &str) -> Option<String> {
        if let Value::Scalar { text, plain: true } = &n.value {
            if text.parse::<i64>().is_ok() {
                self.warn(
                    n,
                    format!(
                        "`{path}` is a number; the CRD schema wants a string (write \"{text}\")"
                    ),
                );
            }
        }
        self.string(n, path)
    }

    pub fn int(&mut self, n: &Node, path: &str) -> Option<i64> {
        match &n.value {
            Value::Scalar { text, plain: true } => match text.parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => {
                    self.error(n, format!("`{path}` must be an integer, found `{text}`"));
                    None
                }
            },
            _ => {
                self.error(
                    n,
                    format!("`{path}` must be an integer, found {}", n.type_name()),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, n: &Node, path: &str) -> Option<bool> {
        match &n.value {
            Value::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => {
                    self.error(n, format!("`{path}` must be true or false, found `{text}`"));
                    None
                }
            },
            _ => {
                self.error(
                    n,
                    format!("`{path}` must be a boolean, found {}", n.type_name()),
                );
                None
            }
        }
    }

    pub fn seq<'n>(&mut self, n: &'n Node, path: &str) -> Option<&'n [Node]> {
        match &n.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.error(
                    n,
                    format!("`{path}` must be a list, found {}", n.type_name()),
                );
                None
            }
        }
    }

    pub fn strings(&mut self, n: &Node, path: &str) -> Vec<String> {
        let Some(items) = self.seq(n, path) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, x)| self.string(x, &format!("{path}[{i}]")))
            .collect()
    }

    /// A `map[string]string` such as labels.
    pub fn string_map(&mut self, n: &Node, path: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match &n.value {
            Value::Map(items) => {
                for (k, v) in items {
                    let Some(key) = k.as_str() else {
                        self.error(k, format!("`{path}` has a non-string key"));
                        continue;
                    };
                    let value = match &v.value {
                        Value::Null => String::new(),
                        Value::Scalar { text, .. } => text.clone(),
                        _ => {
                            self.error(
                                v,
                                format!("`{path}.{key}` must be a string, found {}", v.type_name()),
                            );
                            continue;
                        }
                    };
                    out.insert(key.to_string(), value);
                }
            }
            Value::Null => {}
            _ => self.error(
                n,
                format!("`{path}` must be a mapping, found {}", n.type_name()),
            ),
        }
        out
    }
}
