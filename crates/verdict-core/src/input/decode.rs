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

    /// A string: a number or boolean is refused, as the API server refuses
    /// it (kubectl sends JSON, where `80` is not `"80"`).
    pub fn string(&mut self, n: &Node, path: &str) -> Option<String> {
        match &n.value {
            Value::Scalar { text, .. } if json_type(n) == "string" => Some(text.clone()),
            _ => {
                self.error(
                    n,
                    format!("`{path}` must be a string, found {}", json_type(n)),
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
                return Some(text.clone());
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
                        Value::Scalar { text, .. } if json_type(v) == "string" => text.clone(),
                        _ => {
                            self.error(
                                v,
                                format!("`{path}.{key}` must be a string, found {}", json_type(v)),
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

/// The JSON type of a node once kubectl has converted the YAML (what Go's
/// decoder and the API server's schema check see): `null`, `boolean`,
/// `integer`, `number`, `string`, `list` or `mapping`.
pub fn json_type(n: &Node) -> &'static str {
    match &n.value {
        Value::Scalar { text, plain: true } if n.type_name() == "string" => {
            if text.parse::<f64>().is_ok() && text.chars().any(|c| c.is_ascii_digit()) {
                "number"
            } else {
                "string"
            }
        }
        _ => n.type_name(),
    }
}

/// Why `s` is not a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at
/// most 63 characters: namespace names), or `None` when it is one.
pub fn dns1123_label_error(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some(format!("longer than 63 characters ({})", s.len()));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = s.chars().next().is_some_and(ok_char)
        && s.chars().last().is_some_and(ok_char)
        && s.chars().all(|c| ok_char(c) || c == '-');
    (!valid).then(|| {
        "not a DNS-1123 label (lower-case letters, digits and `-`, starting and ending with a letter or digit)".to_string()
    })
}

/// Why `s` is not a DNS-1123 subdomain (dot-separated DNS-1123 labels, at
/// most 253 characters: the names of most kinds), or `None`.
pub fn dns1123_subdomain_error(s: &str) -> Option<String> {
    if s.len() > 253 {
        return Some(format!("longer than 253 characters ({})", s.len()));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = s.chars().next().is_some_and(ok_char)
        && s.chars().last().is_some_and(ok_char)
        && s.chars().all(|c| ok_char(c) || c == '-' || c == '.');
    (!valid).then(|| {
        "not a DNS-1123 subdomain (lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit)".to_string()
    })
}

/// A Kubernetes "qualified name" part: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
fn qualified_part_ok(s: &str) -> bool {
    let ends = |c: char| c.is_ascii_alphanumeric();
    s.chars().next().is_some_and(ends)
        && s.chars().last().is_some_and(ends)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Why `key` is not a valid label key (`[prefix/]name`, prefix a DNS-1123
/// subdomain, name at most 63 characters of the qualified-name syntax), or `None`.
pub fn label_key_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("the prefix before `/` is empty".to_string());
        }
        if let Some(why) = dns1123_subdomain_error(p) {
            return Some(format!("prefix `{p}`: {why}"));
        }
    }
    if name.is_empty() {
        return Some("the name part is empty".to_string());
    }
    if name.len() > 63 {
        return Some(format!(
            "the name part is longer than 63 characters ({})",
            name.len()
        ));
    }
    (!qualified_part_ok(name)).then(|| {
        format!("name part `{name}` must be letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit")
    })
}

/// Why `value` is not a valid label value (empty, or at most 63
/// characters of the qualified-name syntax), or `None`.
pub fn label_value_error(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.len() > 63 {
        return Some(format!("longer than 63 characters ({})", value.len()));
    }
    (!qualified_part_ok(value)).then(|| {
        "must be letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit"
            .to_string()
    })
}

impl Ctx<'_> {
    /// Checks the syntax of an object's labels (`metadata.labels`, a pod
    /// template's labels): the API server refuses an object whose label key
    /// or value is not valid. Wrong types are left to whoever reads them.
    pub fn check_label_syntax(&mut self, n: &Node, path: &str) {
        let Value::Map(items) = &n.value else { return };
        for (k, v) in items {
            let Some(key) = k.as_str() else { continue };
            if let Some(why) = label_key_error(key) {
                self.error(
                    k,
                    format!("`{path}`: invalid label key `{key}`: {why}; the API server refuses this object"),
                );
            }
            if let Value::Scalar { text, .. } = &v.value {
                if let Some(why) = label_value_error(text) {
                    self.error(
                        v,
                        format!("`{path}.{key}`: invalid label value `{text}`: {why}; the API server refuses this object"),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_follow_kubernetes_syntax() {
        assert_eq!(dns1123_label_error("shop-1"), None);
        assert!(dns1123_label_error("Shop").is_some());
        assert!(dns1123_label_error("a.b").is_some());
        assert!(dns1123_label_error(&"a".repeat(64)).is_some());
        assert!(dns1123_label_error("").is_some());
        assert_eq!(dns1123_subdomain_error("api.v1-x"), None);
        assert!(dns1123_subdomain_error("-api").is_some());
        assert!(dns1123_subdomain_error("my_pod").is_some());
        assert_eq!(label_key_error("app.kubernetes.io/name"), None);
        assert_eq!(label_key_error("App_Name.x"), None);
        assert!(label_key_error("/x").is_some());
        assert!(label_key_error("Example.com/x").is_some());
        assert!(label_key_error("a/b/c").is_some());
        assert!(label_key_error("bad key").is_some());
        assert!(label_key_error(&"k".repeat(64)).is_some());
        assert_eq!(label_value_error(""), None);
        assert_eq!(label_value_error("v1.2_3-x"), None);
        assert!(label_value_error("-v").is_some());
        assert!(label_value_error("a b").is_some());
        assert!(label_value_error(&"v".repeat(64)).is_some());
    }
}
