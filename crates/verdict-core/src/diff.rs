//! `verdict diff`: the connectivity one set of manifests has and the other
//! has not, explained by the policies that changed.

use crate::ingest::Inventory;
use crate::matrix::{Cell, Matrix};
use crate::policy::Protocol;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub from: String,
    pub to: String,
    /// e.g. `TCP/8080`, `UDP/1000-2000`.
    pub ports: Vec<String>,
    /// The rules that decide it (on the side where it is allowed).
    pub rules: Vec<String>,
    /// The changed policies among those rules.
    pub because: Vec<String>,
    /// From outside the cluster (world or a CIDR) to anything but the
    /// ingress.
    pub world_exposure: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyChange {
    pub object: String,
    /// `added`, `removed` or `modified`.
    pub change: String,
    pub location: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub added: Vec<Change>,
    pub removed: Vec<Change>,
    /// Workloads that lost (or gained) every ingress policy: any source may
    /// now connect (or no longer may).
    pub newly_open_ingress: Vec<String>,
    pub no_longer_open_ingress: Vec<String>,
    pub policies: Vec<PolicyChange>,
}

type Ranges = BTreeMap<Protocol, BTreeSet<(u16, u16)>>;

fn ranges(c: &Cell) -> Ranges {
    let mut out: Ranges = BTreeMap::new();
    for p in &c.ports {
        out.entry(p.protocol).or_default().insert((p.from, p.to));
    }
    out
}

/// Ports of `a` not in `b`, per protocol.
fn minus(a: &Ranges, b: &Ranges) -> Vec<String> {
    let mut out = Vec::new();
    for (proto, rs) in a {
        let other: Vec<(u16, u16)> = b
            .get(proto)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for &(from, to) in rs {
            let mut cursor = u32::from(from);
            let end = u32::from(to);
            for &(x, y) in &other {
                let (x, y) = (u32::from(x), u32::from(y));
                if y < cursor || x > end {
                    continue;
                }
                if x > cursor {
                    out.push(fmt_range(*proto, cursor, x - 1));
                }
                cursor = cursor.max(y + 1);
            }
            if cursor <= end {
                out.push(fmt_range(*proto, cursor, end));
            }
        }
    }
    out
}

fn fmt_range(p: Protocol, a: u32, b: u32) -> String {
    let port = |x: u32| u16::try_from(x).unwrap_or(u16::MAX);
    format!("{p}/{}", crate::policy::port_text(port(a), port(b)))
}

fn is_outside(name: &str) -> bool {
    name.starts_with("reserved:world") || name.starts_with("cidr ")
}

/// Policies added, removed or modified between two inventories.
pub fn policy_changes(old: &Inventory, new: &Inventory) -> Vec<PolicyChange> {
    let key = |inv: &Inventory| -> BTreeMap<String, (String, String)> {
        inv.policies
            .iter()
            .map(|p| {
                let body = serde_json::to_string(&(
                    &p.rules
                        .iter()
                        .map(|r| {
                            (
                                &r.subject,
                                &r.default_deny,
                                r.entries
                                    .iter()
                                    .map(|e| (&e.direction, e.deny, &e.peers, &e.ports, &e.l7))
                                    .collect::<Vec<_>>(),
                            )
                        })
                        .collect::<Vec<_>>(),
                    &p.rejected,
                ))
                .unwrap_or_default();
                (p.object.to_string(), (body, p.location.to_string()))
            })
            .collect()
    };
    let (a, b) = (key(old), key(new));
    let mut out = Vec::new();
    for (obj, (body, loc)) in &b {
        match a.get(obj) {
            None => out.push(PolicyChange {
                object: obj.clone(),
                change: "added".into(),
                location: loc.clone(),
            }),
            Some((old_body, _)) if old_body != body => out.push(PolicyChange {
                object: obj.clone(),
                change: "modified".into(),
                location: loc.clone(),
            }),
            _ => {}
        }
    }
    for (obj, (_, loc)) in &a {
        if !b.contains_key(obj) {
            out.push(PolicyChange {
                object: obj.clone(),
                change: "removed".into(),
                location: loc.clone(),
            });
        }
    }
    out
}

fn index(m: &Matrix) -> BTreeMap<(String, String), &Cell> {
    m.cells
        .iter()
        .map(|c| ((c.from.name.clone(), c.to.name.clone()), c))
        .collect()
}

/// Compares two matrices.
pub fn diff(old: &Matrix, new: &Matrix, policies: Vec<PolicyChange>) -> Diff {
    let (a, b) = (index(old), index(new));
    let changed: Vec<&PolicyChange> = policies.iter().collect();
    let because = |rules: &[String]| -> Vec<String> {
        let mut out: Vec<String> = changed
            .iter()
            .filter(|pc| {
                let short = pc.object.split_once(' ').map(|x| x.1).unwrap_or(&pc.object);
                rules.iter().any(|r| r.starts_with(&format!("{short} ")))
            })
            .map(|pc| format!("{} ({})", pc.object, pc.change))
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let empty = Ranges::new();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (k, c) in &b {
        let old_r = a.get(k).map(|o| ranges(o)).unwrap_or_default();
        let ports = minus(&ranges(c), &old_r);
        if !ports.is_empty() {
            added.push(Change {
                from: k.0.clone(),
                to: k.1.clone(),
                ports,
                rules: c.rules.clone(),
                because: because(&c.rules),
                world_exposure: is_outside(&k.0) && k.1 != "reserved:ingress",
            });
        }
    }
    for (k, c) in &a {
        let new_r = b.get(k).map(|n| ranges(n)).unwrap_or_else(|| empty.clone());
        let ports = minus(&ranges(c), &new_r);
        if !ports.is_empty() {
            // Why it closed: the changed policies among the new rules of the
            // destination, or among the old rules that allowed it.
            let mut why = because(&c.rules);
            if why.is_empty() {
                why = changed
                    .iter()
                    .map(|pc| format!("{} ({})", pc.object, pc.change))
                    .collect();
            }
            removed.push(Change {
                from: k.0.clone(),
                to: k.1.clone(),
                ports,
                rules: c.rules.clone(),
                because: why,
                world_exposure: false,
            });
        }
    }
    let set = |v: &Vec<String>| v.iter().cloned().collect::<BTreeSet<String>>();
    let (oi, ni) = (set(&old.open_ingress), set(&new.open_ingress));
    Diff {
        added,
        removed,
        newly_open_ingress: ni.difference(&oi).cloned().collect(),
        no_longer_open_ingress: oi.difference(&ni).cloned().collect(),
        policies,
    }
}

impl Diff {
    /// New exposure to outside the cluster: a connection from world/a CIDR
    /// to something other than the ingress, or a workload that lost every
    /// ingress policy.
    pub fn world_exposure(&self) -> bool {
        self.added.iter().any(|c| c.world_exposure) || !self.newly_open_ingress.is_empty()
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if !self.policies.is_empty() {
            out.push_str("policies changed:\n");
            for p in &self.policies {
                out.push_str(&format!("  {} {} ({})\n", p.change, p.object, p.location));
            }
        }
        for (title, list, sign) in [
            ("connectivity added:", &self.added, '+'),
            ("connectivity removed:", &self.removed, '-'),
        ] {
            if list.is_empty() {
                continue;
            }
            out.push_str(title);
            out.push('\n');
            for c in list {
                let flag = if c.world_exposure {
                    "  [WORLD EXPOSURE]"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "  {sign} {} -> {} {}{flag}\n",
                    c.from,
                    c.to,
                    c.ports.join(" ")
                ));
                if !c.because.is_empty() {
                    out.push_str(&format!("      because: {}\n", c.because.join(", ")));
                }
            }
        }
        for (title, list) in [
            (
                "now without any ingress policy (any source may connect):",
                &self.newly_open_ingress,
            ),
            (
                "no longer without ingress policy:",
                &self.no_longer_open_ingress,
            ),
        ] {
            if !list.is_empty() {
                out.push_str(&format!("{title} {}\n", list.join(", ")));
            }
        }
        out.push_str(&format!(
            "{} connections added ({} world exposure), {} removed, {} policies changed\n",
            self.added.len(),
            self.added.iter().filter(|c| c.world_exposure).count(),
            self.removed.len(),
            self.policies.len()
        ));
        out
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::from("### verdict diff\n\n");
        let exposure = self.world_exposure();
        out.push_str(&format!(
            "{} **{} connections added, {} removed, {} policies changed**\n\n",
            if exposure {
                ":warning: new exposure to outside the cluster."
            } else {
                ":white_check_mark:"
            },
            self.added.len(),
            self.removed.len(),
            self.policies.len()
        ));
        if !self.policies.is_empty() {
            out.push_str("| policy | change |\n|---|---|\n");
            for p in &self.policies {
                out.push_str(&format!("| {} | {} |\n", p.object, p.change));
            }
            out.push('\n');
        }
        for (title, list) in [("Added", &self.added), ("Removed", &self.removed)] {
            if list.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "#### {title}\n\n| from | to | ports | because |\n|---|---|---|---|\n"
            ));
            for c in list {
                let warn = if c.world_exposure { ":warning: " } else { "" };
                out.push_str(&format!(
                    "| {warn}{} | {} | {} | {} |\n",
                    c.from,
                    c.to,
                    c.ports.join(" "),
                    c.because.join(", ")
                ));
            }
            out.push('\n');
        }
        if !self.newly_open_ingress.is_empty() {
            out.push_str(&format!(
                ":warning: now without any ingress policy: {}\n",
                self.newly_open_ingress.join(", ")
            ));
        }
        out
    }
}
