//! `-o yaml`: the JSON output as YAML 1.2 block style.
//!
//! A small emitter over `serde_json::Value` rather than a serializer crate:
//! serde_yaml is deprecated and its forks vary in upkeep, and the output is
//! the same data as `-o json`, key for key. Strings are written plain only
//! when YAML reads them back as the same string (not a number, boolean,
//! null, or anything with indicators); otherwise double-quoted with JSON's
//! escapes, which YAML's double-quoted style accepts.

use serde_json::Value;

/// `v` as a YAML document (ending in a newline).
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        _ => {
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, level: usize) {
    for (k, v) in m {
        indent(out, level);
        out.push_str(&string(k));
        out.push(':');
        value_after_key(out, v, level);
    }
}

fn seq(out: &mut String, a: &[Value], level: usize) {
    for v in a {
        indent(out, level);
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                // `- key: value` with the other keys aligned under the first.
                let mut first = true;
                for (k, x) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        indent(out, level + 2);
                    }
                    out.push_str(&string(k));
                    out.push(':');
                    value_after_key(out, x, level + 2);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                seq(out, inner, level + 2);
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(v));
                out.push('\n');
            }
        }
    }
}

fn value_after_key(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            map(out, m, level + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            seq(out, a, level + 2);
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

/// A scalar or an empty collection, on one line.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A string, plain when that reads back as the same string, else quoted.
fn string(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        // JSON string syntax is YAML double-quoted syntax; C1 controls and
        // separators become \uXXXX as in the JSON outputs.
        let quoted = serde_json::Value::String(s.to_string()).to_string();
        verdict_core::text::json_safe(&quoted).into_owned()
    }
}

/// Conservative: letters, digits and a few punctuation marks that are not
/// YAML indicators where they stand, and nothing YAML would read as another
/// type (YAML 1.1 booleans such as `yes`/`on` included, for old readers).
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ' ' | '(' | ')'))
    {
        return false;
    }
    if s.ends_with(' ') || s.contains("  ") {
        return false;
    }
    const RESERVED: &[&str] = &[
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan", "inf",
    ];
    let lower = s.to_ascii_lowercase();
    !RESERVED.contains(&lower.as_str()) && !lower.starts_with(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Reads `text` back with verdict's own YAML reader.
    fn back(text: &str) -> Value {
        let docs = verdict_core::yaml::parse_documents(text);
        assert_eq!(docs.len(), 1, "{text}");
        match &docs[0] {
            verdict_core::yaml::Document::Ok(n) => n.to_json(),
            verdict_core::yaml::Document::Err { message, .. } => panic!("{message}\n{text}"),
        }
    }

    #[test]
    fn round_trips() {
        let v = json!({
            "summary": {"paths": 2, "allowed": 1, "ratio": 0.5},
            "empty": [], "none": {}, "nothing": null, "yes": true,
            "strings": ["plain", "yes", "no", "on", "null", "~", "123", "1.5", "0x1F", "-",
                "- x", "a: b", "a #c", "#x", "", " lead", "trail ", "two  spaces",
                "quote\"s", "back\\slash", "new\nline", "tab\t", "\u{1b}[31m", "\u{85}",
                "é", "*alias", "&anchor", "!tag", "%dir", "@at", "`tick", "{x}", "[y]",
                "a,b", "? q", "|", ">", "'single'", "reserved:ingress", "ns/pod",
                "10.0.0.0/8", "TCP/80", ".hidden", "Yes", "NULL"],
            "nested": [[1, 2], [], [{"a": 1, "b": [true]}], {"k": {"x": "y"}}],
            "key: with colon": 1, "": 2, "123": 3
        });
        assert_eq!(back(&to_yaml(&v)), v, "{}", to_yaml(&v));
    }

    #[test]
    fn top_level_scalars() {
        for v in [json!(1), json!("x"), json!([]), json!({})] {
            assert_eq!(back(&to_yaml(&v)), v);
        }
    }
}
