//! A structural schema checker: the OpenAPI v3 rules the API server applies
//! to an object before storing it (type, required, enum, minimum/maximum,
//! minItems/maxItems, minLength/maxLength, pattern, unknown fields), with a
//! located diagnostic for each violation, worded like the API server's.
//!
//! The schemas of the kinds checked this way are written as data in
//! `routing_schema/`; the rules that the CRDs state in CEL or that
//! Kubernetes checks in Go live in `routing_rules/`.

pub use crate::decode::json_type;
use crate::decode::Ctx;
use crate::yaml::{Node, Value};
use regex::Regex;
use std::sync::OnceLock;

/// A regular expression of a schema (`pattern`), compiled once.
pub struct Pattern {
    pub source: &'static str,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    pub const fn new(source: &'static str) -> Pattern {
        Pattern {
            source,
            compiled: OnceLock::new(),
        }
    }

    /// Whether `s` matches; `None` if the pattern does not compile (a bug
    /// that a unit test rules out).
    pub fn is_match(&self, s: &str) -> Option<bool> {
        self.compiled
            .get_or_init(|| Regex::new(self.source).ok())
            .as_ref()
            .map(|r| r.is_match(s))
    }
}

/// What a string must be besides its length.
#[derive(Clone, Copy)]
pub enum Check {
    None,
    Enum(&'static [&'static str]),
    Pattern(&'static Pattern),
}

/// The type of a value.
pub enum Ty {
    Str {
        min: usize,
        max: usize,
        check: Check,
    },
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    List {
        item: Box<Ty>,
        min: usize,
        max: usize,
    },
    Obj(Vec<Field>),
    /// `map[string]string` with at most `max` entries.
    StrMap {
        max: usize,
    },
    /// A mapping whose content is not checked (fields that take no part in
    /// the analysis and whose schema is open, such as `status`).
    AnyMap,
}

pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

/// An optional field.
pub fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

/// A required field.
pub fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

pub fn string(min: usize, max: usize) -> Ty {
    Ty::Str {
        min,
        max,
        check: Check::None,
    }
}

pub fn pattern(min: usize, max: usize, p: &'static Pattern) -> Ty {
    Ty::Str {
        min,
        max,
        check: Check::Pattern(p),
    }
}

pub fn one_of(values: &'static [&'static str]) -> Ty {
    Ty::Str {
        min: 0,
        max: usize::MAX,
        check: Check::Enum(values),
    }
}

pub fn int(min: i64, max: i64) -> Ty {
    Ty::Int { min, max }
}

pub fn list(item: Ty, min: usize, max: usize) -> Ty {
    Ty::List {
        item: Box::new(item),
        min,
        max,
    }
}

pub fn obj(fields: Vec<Field>) -> Ty {
    Ty::Obj(fields)
}

/// The text of a node that is a JSON string, `None` otherwise.
pub fn json_str(n: &Node) -> Option<&str> {
    match &n.value {
        Value::Scalar { text, .. } if json_type(n) == "string" => Some(text),
        _ => None,
    }
}

/// Checks `n` against `ty`, reporting every violation at `path`.
pub fn check(ctx: &mut Ctx, n: &Node, path: &str, ty: &Ty) {
    if n.is_null() {
        // `null` reads as absent (Go's decoder, and the API server drops
        // nulls of fields that are not nullable); required fields are
        // checked by the parent.
        return;
    }
    match ty {
        Ty::Str { min, max, check } => {
            let Some(s) = json_str(n) else {
                ctx.error(
                    n,
                    format!("`{path}` must be a string, found {}", json_type(n)),
                );
                return;
            };
            let len = s.chars().count();
            if len < *min {
                if s.is_empty() {
                    ctx.error(
                        n,
                        format!(
                            "`{path}`: Invalid value: \"\": should be at least {min} chars long"
                        ),
                    );
                } else {
                    ctx.error(
                        n,
                        format!(
                            "`{path}`: Invalid value: {s:?}: should be at least {min} chars long"
                        ),
                    );
                }
            } else if len > *max {
                ctx.error(
                    n,
                    format!("`{path}`: Too long: may not be more than {max} bytes"),
                );
            }
            match check {
                Check::None => {}
                Check::Enum(values) => {
                    if !values.contains(&s) {
                        let list: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
                        ctx.error(
                            n,
                            format!(
                                "`{path}`: Unsupported value: {s:?}: supported values: {}",
                                list.join(", ")
                            ),
                        );
                    }
                }
                Check::Pattern(p) => {
                    if p.is_match(s) != Some(true) {
                        ctx.error(
                            n,
                            format!(
                                "`{path}`: Invalid value: {s:?}: should match '{}'",
                                p.source
                            ),
                        );
                    }
                }
            }
        }
        Ty::Int { min, max } => {
            let value = match &n.value {
                Value::Scalar { text, plain: true } if json_type(n) == "integer" => {
                    text.parse::<i64>().ok()
                }
                _ => None,
            };
            let Some(v) = value else {
                ctx.error(
                    n,
                    format!("`{path}` must be an integer, found {}", json_type(n)),
                );
                return;
            };
            if v < *min {
                ctx.error(
                    n,
                    format!(
                        "`{path}`: Invalid value: {v}: should be greater than or equal to {min}"
                    ),
                );
            } else if v > *max {
                ctx.error(
                    n,
                    format!("`{path}`: Invalid value: {v}: should be less than or equal to {max}"),
                );
            }
        }
        Ty::Bool => {
            if json_type(n) != "boolean" {
                ctx.error(
                    n,
                    format!("`{path}` must be a boolean, found {}", json_type(n)),
                );
            }
        }
        Ty::List { item, min, max } => {
            let Value::Seq(items) = &n.value else {
                ctx.error(
                    n,
                    format!("`{path}` must be a list, found {}", json_type(n)),
                );
                return;
            };
            if items.len() < *min {
                ctx.error(
                    n,
                    format!(
                        "`{path}`: Invalid value: {}: should have at least {min} items",
                        items.len()
                    ),
                );
            }
            if items.len() > *max {
                ctx.error(
                    n,
                    format!(
                        "`{path}`: Too many: {}: must have at most {max} items",
                        items.len()
                    ),
                );
            }
            for (i, x) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if x.is_null() {
                    ctx.error(x, format!("`{p}` must not be null"));
                } else {
                    check(ctx, x, &p, item);
                }
            }
        }
        Ty::Obj(fields) => {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            let Some(f) = ctx.fields(n, path, &known) else {
                return;
            };
            for field in fields {
                // The root is called `object` in messages about it, and
                // its fields are named without a prefix.
                let p = if path == "object" {
                    field.name.to_string()
                } else {
                    format!("{path}.{}", field.name)
                };
                match f.get(field.name) {
                    Some(v) => check(ctx, v, &p, &field.ty),
                    None if field.required => {
                        ctx.error(n, format!("`{p}`: Required value"));
                    }
                    None => {}
                }
            }
        }
        Ty::StrMap { max } => {
            let Value::Map(items) = &n.value else {
                ctx.error(
                    n,
                    format!("`{path}` must be a mapping, found {}", json_type(n)),
                );
                return;
            };
            if items.len() > *max {
                ctx.error(
                    n,
                    format!(
                        "`{path}`: Too many: {}: must have at most {max} items",
                        items.len()
                    ),
                );
            }
            for (k, v) in items {
                let key = k.as_str().unwrap_or("?");
                if !v.is_null() && json_str(v).is_none() {
                    ctx.error(
                        v,
                        format!("`{path}.{key}` must be a string, found {}", json_type(v)),
                    );
                }
            }
        }
        Ty::AnyMap => {
            if !matches!(n.value, Value::Map(_)) {
                ctx.error(
                    n,
                    format!("`{path}` must be a mapping, found {}", json_type(n)),
                );
            }
        }
    }
}
