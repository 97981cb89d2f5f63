//! Renderings of a [`Matrix`]: text table, CSV, DOT, Mermaid (JSON is its
//! serde form).

use crate::matrix::{Cell, Matrix};

fn ports(c: &Cell) -> String {
    c.ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A DOT / Mermaid node id.
fn node_id(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    id.insert(0, 'n');
    id
}

impl Matrix {
    pub fn to_text(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .cells
            .iter()
            .map(|c| [c.from.name.clone(), c.to.name.clone(), ports(c), flags(c)])
            .collect();
        let head = ["FROM", "TO", "PORTS", "FLAGS"];
        let mut w = head.map(str::len);
        for r in &rows {
            for (i, v) in r.iter().enumerate() {
                if let Some(x) = w.get_mut(i) {
                    *x = (*x).max(v.len());
                }
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
        for r in &rows {
            out.push_str(&line([&r[0], &r[1], &r[2], &r[3]]));
        }
        out.push_str(&format!(
            "\n{} allowed connections between {} identities (flags: L7 = through the L7 proxy, deny = a deny rule removes ports)\n",
            self.cells.len(),
            self.identities
        ));
        if !self.open_ingress.is_empty() {
            out.push_str(&format!(
                "no ingress policy (any source may connect, subject to its egress policy): {}\n",
                self.open_ingress.join("; ")
            ));
        }
        if !self.open_egress.is_empty() {
            out.push_str(&format!(
                "no egress policy (may connect to any destination that admits it): {}\n",
                self.open_egress.join("; ")
            ));
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
                    c.from.namespace.as_deref().unwrap_or(""),
                    csv_field(&c.to.name),
                    c.to.namespace.as_deref().unwrap_or(""),
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
        let mut nodes = std::collections::BTreeSet::new();
        for c in &self.cells {
            nodes.insert(&c.from.name);
            nodes.insert(&c.to.name);
        }
        for n in nodes {
            let style = if n.starts_with("reserved:world") || n.starts_with("cidr ") {
                ", style=filled, fillcolor=\"#fde2e2\""
            } else if n == "reserved:ingress" {
                ", style=filled, fillcolor=\"#e2ecfd\""
            } else {
                ""
            };
            out.push_str(&format!("  {} [label={:?}{style}];\n", node_id(n), n));
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
                "  {} -> {} [label={:?}, color={color}];\n",
                node_id(&c.from.name),
                node_id(&c.to.name),
                ports(c)
            ));
        }
        out.push_str("}\n");
        out
    }

    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        let mut nodes = std::collections::BTreeSet::new();
        for c in &self.cells {
            nodes.insert(&c.from.name);
            nodes.insert(&c.to.name);
        }
        for n in nodes {
            out.push_str(&format!("  {}[\"{}\"]\n", node_id(n), n.replace('"', "'")));
        }
        for c in &self.cells {
            let label =
                format!("{}{}", ports(c), if c.proxied { " (L7)" } else { "" }).replace('"', "'");
            out.push_str(&format!(
                "  {} -->|\"{label}\"| {}\n",
                node_id(&c.from.name),
                node_id(&c.to.name)
            ));
        }
        out
    }
}
