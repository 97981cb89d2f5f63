//! From cells between classes to rows between groups, and back to one
//! cell per identity pair.
//!
//! ```text
//!  rows: class pairs with equal cells merged, over sources per destination
//!        class, then over destinations per source group
//!  groups: the distinct member sets of the classes in some row, in the order of their members
//!  expand: per source (by name), its rows' destinations, sorted as the pair form sorts
//! ```

use super::classes::Classes;
use super::{Group, Row, Summary, NONE};
use crate::matrix::{Cell, Ctx, Matrix, MatrixOptions, Node};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The summary of the cells `(source class, destination class, cell)`.
pub(super) fn summary(
    ctx: &Ctx,
    opts: &MatrixOptions,
    cells: Vec<(u32, u32, usize)>,
    mut cell_data: Vec<super::Cell>,
    texts: Option<&[String]>,
    src: &Classes,
    dst: &Classes,
) -> Summary {
    // Display order: names, then identity numbers (as the pair form sorts).
    let (name_rank, id_rank) = ranks(ctx);
    let key_of = |q: usize| {
        (
            name_rank.get(q).copied().unwrap_or(NONE),
            id_rank.get(q).copied().unwrap_or(NONE),
        )
    };
    // Groups: the distinct member sets of the classes in some row.
    let mut group_of: FxHashMap<Vec<usize>, usize> = FxHashMap::default();
    let mut group_members: Vec<Vec<usize>> = Vec::new();
    let mut intern = |mut m: Vec<usize>| -> usize {
        m.sort_by_key(|&q| key_of(q));
        let next = group_members.len();
        *group_of.entry(m.clone()).or_insert_with(|| {
            group_members.push(m);
            next
        })
    };
    // Rows: class pairs with the same cell merged, first over sources (per
    // destination class), then over destinations (per source group), so a
    // row is "every member of these -> every member of those".
    let mut by_dst: BTreeMap<(u32, usize), Vec<u32>> = BTreeMap::new();
    for (s, d, id) in cells {
        by_dst.entry((d, id)).or_default().push(s);
    }
    let union = |classes: &[u32], members: &[Vec<usize>]| -> Vec<usize> {
        classes
            .iter()
            .flat_map(|&c| members.get(c as usize).into_iter().flatten().copied())
            .collect()
    };
    let mut by_src: BTreeMap<(usize, usize), Vec<u32>> = BTreeMap::new();
    let mut src_group: FxHashMap<Vec<u32>, usize> = FxHashMap::default();
    for ((d, id), srcs) in by_dst {
        let g = match src_group.get(&srcs) {
            Some(&g) => g,
            None => {
                let g = intern(union(&srcs, &src.members));
                src_group.insert(srcs, g);
                g
            }
        };
        by_src.entry((g, id)).or_default().push(d);
    }
    let mut rows_raw: Vec<(usize, usize, usize)> = Vec::new();
    for ((g, id), dsts) in by_src {
        rows_raw.push((g, intern(union(&dsts, &dst.members)), id));
    }
    // Groups in the order of their members' keys.
    let mut order: Vec<usize> = (0..group_members.len()).collect();
    let gkeys: Vec<Vec<(u32, u32)>> = group_members
        .iter()
        .map(|m| m.iter().map(|&q| key_of(q)).collect())
        .collect();
    order.sort_by(|&a, &b| gkeys.get(a).cmp(&gkeys.get(b)));
    let mut pos = vec![0usize; order.len()];
    for (i, &g) in order.iter().enumerate() {
        if let Some(p) = pos.get_mut(g) {
            *p = i;
        }
    }
    let shared: Vec<Option<Arc<Node>>> = ctx
        .nodes
        .iter()
        .map(|nd| nd.clone().map(Arc::new))
        .collect();
    let groups: Vec<Group> = order
        .iter()
        .map(|&g| Group {
            members: group_members
                .get(g)
                .into_iter()
                .flatten()
                .filter_map(|&q| shared.get(q).cloned().flatten())
                .collect(),
        })
        .collect();
    drop(shared);
    let keys: Vec<Vec<(u32, u32)>> = order
        .iter()
        .map(|&g| gkeys.get(g).cloned().unwrap_or_default())
        .collect();
    let size = |g: usize| groups.get(g).map_or(0, |x| x.members.len());
    // A cell's ports are moved into its last row, cloned for the others;
    // its rules are named from the texts (none when `texts` is not given).
    let mut uses = vec![0usize; cell_data.len()];
    for &(_, _, id) in &rows_raw {
        if let Some(u) = uses.get_mut(id) {
            *u += 1;
        }
    }
    let mut rows: Vec<Row> = rows_raw
        .into_iter()
        .filter_map(|(a, b, id)| {
            let u = uses.get_mut(id)?;
            *u -= 1;
            let c = cell_data.get_mut(id)?;
            let ports = if *u == 0 {
                std::mem::take(&mut c.ports)
            } else {
                c.ports.clone()
            };
            let rules = texts.map_or_else(Vec::new, |t| {
                c.rules
                    .iter()
                    .filter_map(|&i| t.get(i as usize).cloned())
                    .collect()
            });
            let (from, to) = (
                pos.get(a).copied().unwrap_or(0),
                pos.get(b).copied().unwrap_or(0),
            );
            Some(Row {
                from,
                to,
                ports,
                proxied: c.proxied,
                deny_decided: c.deny_decided,
                rules,
                connections: size(from) * size(to),
            })
        })
        .collect();
    drop(cell_data);
    rows.sort_by_key(|r| (r.from, r.to));
    let (open_ingress, open_egress) = ctx.open_lists(opts);
    Summary {
        connections: rows.iter().map(|r| r.connections).sum(),
        groups,
        rows,
        open_ingress,
        open_egress,
        identities: ctx.policies.len(),
        keys,
    }
}

/// Per peer: the rank of its name among all names, and its rank in the
/// order of the pair form (identities by number, then CIDR selections).
fn ranks(ctx: &Ctx) -> (Vec<u32>, Vec<u32>) {
    let total = ctx.nodes.len();
    let mut by_name: Vec<(&str, usize)> = ctx
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(q, nd)| nd.as_ref().map(|nd| (nd.name.as_str(), q)))
        .collect();
    by_name.sort_unstable();
    let mut name_rank = vec![NONE; total];
    let mut r = 0u32;
    for (i, &(name, q)) in by_name.iter().enumerate() {
        if i > 0 && by_name.get(i - 1).is_some_and(|p| p.0 != name) {
            r += 1;
        }
        if let Some(slot) = name_rank.get_mut(q) {
            *slot = r;
        }
    }
    let id_key = |q: usize| -> u64 {
        match ctx
            .nodes
            .get(q)
            .and_then(Option::as_ref)
            .and_then(|nd| nd.identity)
        {
            Some(id) if q < ctx.n => u64::from(id),
            _ => (1 << 32) + u64::try_from(q).unwrap_or(u64::MAX >> 1),
        }
    };
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_unstable_by_key(|&q| id_key(q));
    let mut id_rank = vec![NONE; total];
    for (i, &q) in order.iter().enumerate() {
        if let Some(slot) = id_rank.get_mut(q) {
            *slot = u32::try_from(i).unwrap_or(NONE);
        }
    }
    (name_rank, id_rank)
}

impl Summary {
    /// Calls `f` for every connected identity pair (from, to, its row), in
    /// the order of the pair form: by the names of both ends, then by
    /// identity number. Work and memory: the output, and per source its
    /// own destinations.
    pub fn try_each_cell<E>(
        &self,
        mut f: impl FnMut(&Node, &Node, &Row) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rows_from: Vec<Vec<usize>> = vec![Vec::new(); self.groups.len()];
        for (ri, r) in self.rows.iter().enumerate() {
            if let Some(v) = rows_from.get_mut(r.from) {
                v.push(ri);
            }
        }
        // Every source, once per group it is a source of.
        let mut sources: Vec<((u32, u32), usize, usize)> = Vec::new();
        for (g, rs) in rows_from.iter().enumerate() {
            if rs.is_empty() {
                continue;
            }
            for (m, &k) in self.keys.get(g).into_iter().flatten().enumerate() {
                sources.push((k, g, m));
            }
        }
        sources.sort_unstable();
        let mut items: Vec<(u32, u32, u32, usize, usize, usize, usize)> = Vec::new();
        for run in sources.chunk_by(|a, b| a.0 .0 == b.0 .0) {
            items.clear();
            for &((_, from_rank), g, m) in run {
                for &ri in rows_from.get(g).into_iter().flatten() {
                    let Some(r) = self.rows.get(ri) else {
                        continue;
                    };
                    for (tm, &(tn, tr)) in self.keys.get(r.to).into_iter().flatten().enumerate() {
                        items.push((tn, from_rank, tr, g, m, tm, ri));
                    }
                }
            }
            items.sort_unstable();
            for &(_, _, _, g, m, tm, ri) in &items {
                let Some(r) = self.rows.get(ri) else {
                    continue;
                };
                let (Some(from), Some(to)) = (
                    self.groups.get(g).and_then(|x| x.members.get(m)),
                    self.groups.get(r.to).and_then(|x| x.members.get(tm)),
                ) else {
                    continue;
                };
                f(from, to, r)?;
            }
        }
        Ok(())
    }

    /// One cell per connected identity pair (the pair form).
    pub fn expand(self) -> Matrix {
        let mut cells = Vec::with_capacity(self.connections);
        let _ = self.try_each_cell(|from, to, r| -> Result<(), ()> {
            cells.push(Cell {
                from: from.clone(),
                to: to.clone(),
                ports: r.ports.clone(),
                proxied: r.proxied,
                deny_decided: r.deny_decided,
                rules: r.rules.clone(),
            });
            Ok(())
        });
        Matrix {
            cells,
            open_ingress: self.open_ingress,
            open_egress: self.open_egress,
            identities: self.identities,
        }
    }
}
