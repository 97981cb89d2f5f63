//! The report's policy panels as page data: one panel per identity and
//! container ports, each panel's map resolved (on two workers) or its body
//! formed ahead of the page ([`panel_bodies`], beside the matrix), and
//! endpoints with the same rules and ports sharing one body.

use super::policy;
use crate::engine::Engine;
use crate::resolved::Resolver;
use std::collections::BTreeMap;

/// Panels whose maps are built together, then added to the page data in
/// order and dropped.
pub(super) const PANEL_BLOCK: usize = 256;

pub(super) type Panel<'p> = (&'p str, Option<crate::engine::Party>);

/// The panel data of the page: the maps of a block of panels built on a
/// worker thread (two workers, alternate blocks), each block added to the
/// data on this thread in order while the workers build the next ones
/// (adding is about a quarter of the work at 100k and more than half on
/// the dense clusters, so this thread no longer waits for the maps nor
/// the workers for it). A worker holds one finished block until this
/// thread takes it (a rendezvous channel).
pub(super) fn panel_data(
    resolver: &Resolver<'_, '_>,
    panels: &[Panel<'_>],
    names: &BTreeMap<u32, String>,
) -> policy::Panels {
    panel_data_in(resolver, panels, names, PANEL_BLOCK)
}

/// [`panel_data`] with blocks of `block` panels (the tests use small ones).
pub(super) fn panel_data_in(
    resolver: &Resolver<'_, '_>,
    panels: &[Panel<'_>],
    names: &BTreeMap<u32, String>,
    block: usize,
) -> policy::Panels {
    let like = shared_bodies(resolver.engine(), panels);
    let build = |(start, part): &(usize, &[Panel<'_>])| {
        part.iter()
            .enumerate()
            .map(|(j, (_, party))| {
                let first = like.get(start + j).is_some_and(Option::is_none);
                party
                    .as_ref()
                    .filter(|_| first)
                    .map(|p| resolver.resolve(p))
            })
            .collect::<Vec<_>>()
    };
    let mut data = policy::Panels::default();
    let mut bodies: Vec<Option<u32>> = vec![None; panels.len()];
    let mut add =
        |data: &mut policy::Panels, i: usize, resolved: Option<crate::resolved::ResolvedPolicy>| {
            let Some((title, party)) = panels.get(i) else {
                return;
            };
            let shared = like.get(i).copied().flatten();
            let body = match (shared.and_then(|f| bodies.get(f).copied().flatten()), party) {
                (Some(b), Some(p)) => data.add_like(title, &p.identity, b),
                _ => data.add(title, resolved.as_ref(), names),
            };
            if let Some(slot) = bodies.get_mut(i) {
                *slot = body;
            }
        };
    let blocks: Vec<(usize, &[Panel<'_>])> = panels
        .chunks(block.max(1))
        .enumerate()
        .map(|(k, part)| (k * block.max(1), part))
        .collect();
    if blocks.len() < 2 {
        for b in &blocks {
            for (j, resolved) in build(b).into_iter().enumerate() {
                add(&mut data, b.0 + j, resolved);
            }
        }
        return data;
    }
    std::thread::scope(|s| {
        let mut rxs = Vec::new();
        for w in 0..2 {
            let (tx, rx) = std::sync::mpsc::sync_channel(0);
            rxs.push(rx);
            let (blocks, build) = (&blocks, &build);
            s.spawn(move || {
                for block in blocks.iter().skip(w).step_by(2) {
                    if tx.send(build(block)).is_err() {
                        break;
                    }
                }
            });
        }
        for (i, (start, _)) in blocks.iter().enumerate() {
            // A worker that stopped (it panicked) ends the loop; the scope
            // then resumes its panic.
            let Some(Ok(maps)) = rxs.get(i % 2).map(std::sync::mpsc::Receiver::recv) else {
                break;
            };
            for (j, resolved) in maps.into_iter().enumerate() {
                add(&mut data, start + j, resolved);
            }
        }
    });
    data
}

/// The panel bodies of every endpoint of the input, formed ahead of the
/// page: `verdict report` forms them beside the matrix, on the thread that
/// computed the paths and the lint (which finishes first), so the page
/// only numbers their texts. One body per identity and container ports,
/// formed once for the endpoints that share rules and ports (see
/// [`shared_bodies`]).
pub struct PanelBodies<'e, 'a> {
    resolver: Resolver<'e, 'a>,
    bodies: rustc_hash::FxHashMap<(u32, String), std::sync::Arc<policy::RawBody<'a>>>,
}

/// Forms [`PanelBodies`] for every workload's endpoint: the distinct
/// (rules, ports) found first, then their bodies formed on two threads.
pub fn panel_bodies<'e, 'a>(engine: &'e Engine<'a>) -> PanelBodies<'e, 'a> {
    let resolver = Resolver::for_all(engine);
    let names = crate::names::identity_names(engine);
    let mut keys: rustc_hash::FxHashMap<(u32, String), usize> = Default::default();
    let mut group_of: rustc_hash::FxHashMap<(Vec<usize>, String), usize> = Default::default();
    let mut firsts: Vec<crate::engine::Party> = Vec::new();
    for w in &engine.inv.workloads {
        let Ok(p) = engine.party(&w.display_name()) else {
            continue;
        };
        let key = (p.identity.id, format!("{:?}", p.ports));
        if keys.contains_key(&key) {
            continue;
        }
        let Some(body) = body_key(engine, &p) else {
            continue;
        };
        let group = *group_of.entry(body).or_insert_with(|| {
            firsts.push(p);
            firsts.len() - 1
        });
        keys.insert(key, group);
    }
    let form = |p: &crate::engine::Party| {
        std::sync::Arc::new(policy::raw_body(&resolver.resolve(p), &names))
    };
    let formed: Vec<std::sync::Arc<policy::RawBody<'a>>> = if firsts.len() < 64 {
        firsts.iter().map(form).collect()
    } else {
        let half = firsts.len() / 2;
        let (a, b) = firsts.split_at(half);
        std::thread::scope(|s| {
            let other = s.spawn(|| b.iter().map(form).collect::<Vec<_>>());
            let mut out: Vec<_> = a.iter().map(form).collect();
            match other.join() {
                Ok(rest) => out.extend(rest),
                Err(e) => std::panic::resume_unwind(e),
            }
            out
        })
    };
    let bodies = keys
        .into_iter()
        .filter_map(|(k, g)| Some((k, formed.get(g)?.clone())))
        .collect();
    PanelBodies { resolver, bodies }
}

impl PanelBodies<'_, '_> {
    /// The page's panel data: prepared bodies where there are, else
    /// resolved now.
    pub(super) fn panel_data(
        &self,
        panels: &[Panel<'_>],
        names: &BTreeMap<u32, String>,
    ) -> policy::Panels {
        let mut data = policy::Panels::default();
        for (title, party) in panels {
            let Some(p) = party else {
                data.add(title, None, names);
                continue;
            };
            match self.bodies.get(&(p.identity.id, format!("{:?}", p.ports))) {
                Some(raw) => data.add_raw(title, &p.identity, raw),
                None => data.add(title, Some(&self.resolver.resolve(p)), names),
            };
        }
        data
    }
}

/// What an endpoint's panel body follows from (see [`shared_bodies`]): the
/// rules selecting it and its container ports. `None` for other parties.
fn body_key(engine: &Engine, p: &crate::engine::Party) -> Option<(Vec<usize>, String)> {
    if !p.identity.is_endpoint() || p.identity.reserved_name().is_some() {
        return None;
    }
    let rules = engine
        .selecting_rules(&p.identity)
        .map(|r| std::ptr::from_ref(r) as usize)
        .collect();
    Some((rules, format!("{:?}", p.ports)))
}

/// For each panel, the earlier panel whose body it shows, if any. An
/// endpoint's resolved policy follows from the rules selecting it and its
/// container ports (ingress named ports), under the agent settings every
/// endpoint shares (`Resolver::build_where` reads nothing else of the
/// subject but its name and identity, which the panel's title and identity
/// line show): endpoints with the same rules and ports have the same body,
/// so only the first is resolved (100k synthetic pods: 10,004 panels, 950
/// bodies). Reserved identities and names without a party are resolved
/// each. `panel_data_on_workers_equals_panel_by_panel` checks the bodies
/// against each panel's own map.
pub(super) fn shared_bodies(engine: &Engine, panels: &[Panel<'_>]) -> Vec<Option<usize>> {
    let mut first: rustc_hash::FxHashMap<(Vec<usize>, String), usize> = Default::default();
    panels
        .iter()
        .enumerate()
        .map(|(i, (_, party))| {
            let key = body_key(engine, party.as_ref()?)?;
            match first.get(&key) {
                Some(&f) => Some(f),
                None => {
                    first.insert(key, i);
                    None
                }
            }
        })
        .collect()
}
