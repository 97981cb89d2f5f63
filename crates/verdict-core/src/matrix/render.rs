//! Renderings of a [`Matrix`]: text table, CSV, DOT, Mermaid (JSON is its
//! serde form). Names are escaped for each format (see [`crate::text`]);
//! DOT and Mermaid node ids are `n0`, `n1`, ... in the sorted order of the
//! names, so distinct names never share a node.

use crate::matrix::{Cell, Matrix, Node};
use crate::text::{csv_field, dot_string, escape, mermaid_label, push_line};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

fn ports(c: &Cell) -> String {
    c.ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

use crate::names::node_text as party;

fn flags(c: &Cell) -> String {
    let mut f = Vec::new();
    if c.proxied {
        f.push("L7");
    }
    if c.deny_decided {
        f.push("deny");
    }
    f.join(",")
}

/// DOT / Mermaid node ids: `n0`, `n1`, ... for the distinct names of the
/// cells, in sorted order (one id per name, one name per id).
fn node_ids(m: &Matrix) -> BTreeMap<&str, String> {
    let mut names: Vec<&str> = m
        .cells
        .iter()
        .flat_map(|c| [c.from.name.as_str(), c.to.name.as_str()])
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, format!("n{i}")))
        .collect()
}

fn id<'a>(ids: &'a BTreeMap<&str, String>, name: &str) -> &'a str {
    ids.get(name).map_or("n_unknown", String::as_str)
}

impl Matrix {
    pub fn to_text(&self) -> String {
        let mut rows: Vec<[String; 4]> = self
            .cells
            .iter()
            .map(|c| {
                [
                    escape(&party(&c.from.name)).into_owned(),
                    escape(&party(&c.to.name)).into_owned(),
                    ports(c),
                    flags(c),
                ]
            })
            .collect();
        rows.sort();
        let mut out = table(&rows);
        out.push_str(&format!(
            "\n{} between {} (flags: L7 = through the L7 proxy, deny = a deny rule removes ports)\n",
            crate::text::plural(self.cells.len(), "allowed connection", "allowed connections"),
            crate::text::plural(self.identities, "identity", "identities")
        ));
        if !self.open_ingress.is_empty() {
            push_line(
                &mut out,
                &format!(
                    "no ingress policy (any source may connect, subject to its egress policy): {}",
                    self.open_ingress
                        .iter()
                        .map(|n| party(n))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
        }
        if !self.open_egress.is_empty() {
            push_line(
                &mut out,
                &format!(
                    "no egress policy (may connect to any destination that admits it): {}",
                    self.open_egress
                        .iter()
                        .map(|n| party(n))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
        }
        out
    }

    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "from,from_namespace,to,to_namespace,protocol,from_port,to_port,proxied,deny_decided\n",
        );
        for c in &self.cells {
            for p in &c.ports {
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},{}\n",
                    csv_field(&c.from.name),
                    csv_field(c.from.namespace.as_deref().unwrap_or("")),
                    csv_field(&c.to.name),
                    csv_field(c.to.namespace.as_deref().unwrap_or("")),
                    p.protocol,
                    p.from,
                    p.to,
                    c.proxied,
                    c.deny_decided
                ));
            }
        }
        out
    }

    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph verdict {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
        );
        let ids = node_ids(self);
        for (n, nid) in &ids {
            let style = if n.starts_with("reserved:world") || n.starts_with("cidr ") {
                ", style=filled, fillcolor=\"#fde2e2\""
            } else if *n == "reserved:ingress" {
                ", style=filled, fillcolor=\"#e2ecfd\""
            } else {
                ""
            };
            out.push_str(&format!("  {nid} [label={}{style}];\n", dot_string(n)));
        }
        for c in &self.cells {
            let color = if c.proxied {
                "blue"
            } else if c.deny_decided {
                "orange"
            } else {
                "black"
            };
            out.push_str(&format!(
                "  {} -> {} [label={}, color={color}];\n",
                id(&ids, &c.from.name),
                id(&ids, &c.to.name),
                dot_string(&ports(c))
            ));
        }
        out.push_str("}\n");
        out
    }

    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let ids = node_ids(self);
        for (n, nid) in &ids {
            out.push_str(&format!("  {nid}[\"{}\"]\n", mermaid_label(n)));
        }
        for c in &self.cells {
            let label = mermaid_label(&format!(
                "{}{}",
                ports(c),
                if c.proxied { " (L7)" } else { "" }
            ));
            out.push_str(&format!(
                "  {} -->|\"{label}\"| {}\n",
                id(&ids, &c.from.name),
                id(&ids, &c.to.name)
            ));
        }
        out
    }
}

/// Above this many connections, `verdict matrix` text (and the report)
/// show rows between groups unless asked for pairs.
pub const SUMMARISE_ABOVE: usize = 1000;

impl crate::matrix_summary::Summary {
    /// How a group is named in rows: a group of one by its member's name,
    /// others `G1`, `G2`, ... in group order.
    pub fn group_labels(&self) -> Vec<String> {
        let mut k = 0;
        self.groups
            .iter()
            .map(|g| match g.members.as_slice() {
                [one] => party(&one.name),
                _ => {
                    k += 1;
                    format!("G{k}")
                }
            })
            .collect()
    }

    /// The text table of rows between groups, then the groups' members.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut out);
        out
    }

    /// [`Summary::to_text`](crate::matrix_summary::Summary::to_text),
    /// written to `out` line by line (the groups of a dense cluster are
    /// hundreds of MiB of text: the caller can stream them).
    pub fn write_text(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        let labels = self.group_labels();
        let label = |g: usize| {
            let l = labels.get(g).map_or("", String::as_str);
            match self.groups.get(g).map_or(0, |x| x.members.len()) {
                1 => escape(l).into_owned(),
                n => format!("{l} ({n})"),
            }
        };
        let mut rows: Vec<[String; 4]> = Vec::new();
        for r in &self.rows {
            let mut f = Vec::new();
            if r.proxied {
                f.push("L7");
            }
            if r.deny_decided {
                f.push("deny");
            }
            let ports: Vec<String> = r.ports.iter().map(ToString::to_string).collect();
            rows.push([label(r.from), label(r.to), ports.join(" "), f.join(",")]);
        }
        out.write_str(&table(&rows))?;
        drop(rows);
        writeln!(
            out,
            "\n{} between {}, as {} between groups: every member of FROM reaches every member of TO (flags: L7 = through the L7 proxy, deny = a deny rule removes ports; `--pairs` lists every pair)",
            crate::text::plural(self.connections, "allowed connection", "allowed connections"),
            crate::text::plural(self.identities, "identity", "identities"),
            crate::text::plural(self.rows.len(), "row", "rows"),
        )?;
        let multi: Vec<usize> = (0..self.groups.len())
            .filter(|&g| self.groups.get(g).is_some_and(|x| x.members.len() > 1))
            .collect();
        if !multi.is_empty() {
            out.write_str("\nGroups (the identities a row names together):\n")?;
            // A member's text once per node (it is named in many groups).
            let mut texts: FxHashMap<*const Node, String> = FxHashMap::default();
            for g in multi {
                let Some(grp) = self.groups.get(g) else {
                    continue;
                };
                let head = format!(
                    "  {} ({}): ",
                    labels.get(g).map_or("", String::as_str),
                    grp.members.len()
                );
                out.write_str(&escape(&head))?;
                for (i, m) in grp.members.iter().enumerate() {
                    if i > 0 {
                        out.write_str("; ")?;
                    }
                    let t = texts
                        .entry(Arc::as_ptr(m))
                        .or_insert_with(|| escape(&party(&m.name)).into_owned());
                    out.write_str(t)?;
                }
                out.write_char('\n')?;
            }
        }
        let open = |title: &str, list: &[String], out: &mut String| {
            if !list.is_empty() {
                push_line(
                    out,
                    &format!(
                        "{title}: {}",
                        list.iter().map(|n| party(n)).collect::<Vec<_>>().join("; ")
                    ),
                );
            }
        };
        let mut tail = String::new();
        if !self.open_ingress.is_empty() || !self.open_egress.is_empty() {
            tail.push('\n');
        }
        open(
            "no ingress policy (any source may connect, subject to its egress policy)",
            &self.open_ingress,
            &mut tail,
        );
        open(
            "no egress policy (may connect to any destination that admits it)",
            &self.open_egress,
            &mut tail,
        );
        out.write_str(&tail)
    }
}

/// The FROM / TO / PORTS / FLAGS table of the text matrix, columns padded
/// to their widest cell.
fn table(rows: &[[String; 4]]) -> String {
    let head = ["FROM", "TO", "PORTS", "FLAGS"];
    let mut w = head.map(|h| h.chars().count());
    for r in rows {
        for (x, v) in w.iter_mut().zip(r) {
            *x = (*x).max(v.chars().count());
        }
    }
    let line = |r: [&str; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2]
        )
    };
    let mut out = line(head);
    for r in rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3]]));
    }
    out
}
