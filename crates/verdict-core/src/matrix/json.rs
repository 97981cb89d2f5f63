//! `verdict matrix -o json`, streamed: the cells are written to the output
//! as they are serialised, never held as a `serde_json::Value` tree (which
//! took several times the size of the text). Keys are written in sorted
//! order, as a `Value` object writes them, and the characters
//! [`crate::text::json_safe`] escapes are escaped inside strings, so the
//! output is the same bytes as serialising through a `Value`.

use crate::matrix::{Cell, Matrix, Node, PortRange};
use crate::matrix_summary::Summary;
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};
use serde_json::ser::{Formatter, PrettyFormatter};
use std::io::{self, Write};

/// Writes `m` with a top-level `diagnostics` field, pretty-printed, and a
/// final newline.
pub fn write_json<W: Write>(m: &Matrix, diagnostics: &serde_json::Value, out: W) -> io::Result<()> {
    write_top(
        &Top {
            cells: Cells(&m.cells),
            open_ingress: &m.open_ingress,
            open_egress: &m.open_egress,
            identities: m.identities,
            diagnostics,
        },
        out,
    )
}

/// The same bytes as [`write_json`] of `s.expand()`, written from the
/// rows: the cells are never held in memory.
pub fn write_json_pairs<W: Write>(
    s: &Summary,
    diagnostics: &serde_json::Value,
    out: W,
) -> io::Result<()> {
    write_top(
        &Top {
            cells: Expanded(s),
            open_ingress: &s.open_ingress,
            open_egress: &s.open_egress,
            identities: s.identities,
            diagnostics,
        },
        out,
    )
}

fn write_top<C: Serialize, W: Write>(top: &Top<'_, C>, out: W) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, Safe(PrettyFormatter::new()));
    top.serialize(&mut ser).map_err(io::Error::other)?;
    let mut out = ser.into_inner();
    out.write_all(b"\n")?;
    out.flush()
}

struct Top<'a, C> {
    cells: C,
    open_ingress: &'a [String],
    open_egress: &'a [String],
    identities: usize,
    diagnostics: &'a serde_json::Value,
}

impl<C: Serialize> Serialize for Top<'_, C> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Matrix", 5)?;
        st.serialize_field("cells", &self.cells)?;
        st.serialize_field("diagnostics", self.diagnostics)?;
        st.serialize_field("identities", &self.identities)?;
        st.serialize_field("open_egress", self.open_egress)?;
        st.serialize_field("open_ingress", self.open_ingress)?;
        st.end()
    }
}

struct Expanded<'a>(&'a Summary);

impl Serialize for Expanded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.connections))?;
        self.0.try_each_cell(|from, to, r| {
            seq.serialize_element(&CellFields {
                from,
                to,
                ports: &r.ports,
                proxied: r.proxied,
                deny_decided: r.deny_decided,
                rules: &r.rules,
            })
        })?;
        seq.end()
    }
}

struct Cells<'a>(&'a [Cell]);

impl Serialize for Cells<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for c in self.0 {
            seq.serialize_element(&CellJson(c))?;
        }
        seq.end()
    }
}

struct CellJson<'a>(&'a Cell);

impl Serialize for CellJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        CellFields {
            from: &c.from,
            to: &c.to,
            ports: &c.ports,
            proxied: c.proxied,
            deny_decided: c.deny_decided,
            rules: &c.rules,
        }
        .serialize(s)
    }
}

struct CellFields<'a> {
    from: &'a Node,
    to: &'a Node,
    ports: &'a [PortRange],
    proxied: bool,
    deny_decided: bool,
    rules: &'a [String],
}

impl Serialize for CellFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Cell", 6)?;
        st.serialize_field("deny_decided", &self.deny_decided)?;
        st.serialize_field("from", &NodeJson(self.from))?;
        st.serialize_field("ports", &Ports(self.ports))?;
        st.serialize_field("proxied", &self.proxied)?;
        st.serialize_field("rules", self.rules)?;
        st.serialize_field("to", &NodeJson(self.to))?;
        st.end()
    }
}

struct NodeJson<'a>(&'a Node);

impl Serialize for NodeJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Node", 3)?;
        st.serialize_field("identity", &self.0.identity)?;
        st.serialize_field("name", &self.0.name)?;
        st.serialize_field("namespace", &self.0.namespace)?;
        st.end()
    }
}

struct Ports<'a>(&'a [PortRange]);

impl Serialize for Ports<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&PortJson(p))?;
        }
        seq.end()
    }
}

struct PortJson<'a>(&'a PortRange);

impl Serialize for PortJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("PortRange", 3)?;
        st.serialize_field("from", &self.0.from)?;
        st.serialize_field("protocol", &self.0.protocol)?;
        st.serialize_field("to", &self.0.to)?;
        st.end()
    }
}

/// serde_json's pretty printer, writing the characters that are unsafe on
/// a terminal as `\uXXXX` inside strings.
struct Safe(PrettyFormatter<'static>);

impl Formatter for Safe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((i, c)) = rest
            .char_indices()
            .find(|(_, c)| crate::text::json_unsafe(*c))
        {
            w.write_all(rest.get(..i).unwrap_or_default().as_bytes())?;
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                write!(w, "\\u{u:04x}")?;
            }
            rest = rest.get(i + c.len_utf8()..).unwrap_or_default();
        }
        w.write_all(rest.as_bytes())
    }
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_json_equals_value_json() {
        let node = |name: &str, id: Option<u32>| Node {
            name: name.to_string(),
            namespace: id.map(|_| "shop".to_string()),
            identity: id,
        };
        let m = Matrix {
            cells: vec![Cell {
                from: node("shop/deployment/a\u{202e}b\u{7f}", Some(1000)),
                to: node("cidr 10.0.0.0/8", None),
                ports: vec![PortRange {
                    protocol: crate::policy::Protocol::Tcp,
                    from: 80,
                    to: 81,
                }],
                proxied: true,
                deny_decided: false,
                rules: vec!["CNP shop/x spec.egress[0] (a.yaml:3)".to_string()],
            }],
            open_ingress: vec!["x\u{2028}".to_string()],
            open_egress: vec![],
            identities: 2,
        };
        let diagnostics = serde_json::json!([{"line": 1, "message": "m\u{85}"}]);
        let mut value = serde_json::to_value(&m).unwrap();
        if let serde_json::Value::Object(o) = &mut value {
            o.insert("diagnostics".to_string(), diagnostics.clone());
        }
        let expected = crate::text::json_safe(&serde_json::to_string_pretty(&value).unwrap())
            .into_owned()
            + "\n";
        let mut out = Vec::new();
        write_json(&m, &diagnostics, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert!(expected.contains("\\u202e") && expected.contains("\\u2028"));
    }
}
