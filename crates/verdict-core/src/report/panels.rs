//! The report's policy panels as page data: one panel per identity and
//! container ports, each endpoint's body formed ahead of the page
//! ([`panel_bodies`]; `verdict report` forms them beside the matrix), and
//! endpoints with the same rules and ports sharing one body.

use super::policy;
use crate::engine::Engine;
use crate::resolved::Resolver;
use std::collections::BTreeMap;

pub(super) type Panel<'p> = (&'p str, Option<crate::engine::Party>);

/// The key of a name's panel: the names standing for one identity with
/// the same container ports (which name ports) share one panel.
pub(super) fn panel_key(p: &crate::engine::Party) -> (u32, String) {
    (p.identity.id, format!("{:?}", p.ports))
}

/// The panel bodies of every endpoint of the input, formed ahead of the
/// page: `verdict report` forms them beside the matrix, on the thread that
/// computed the paths and the lint (which finishes first), so the page
/// only numbers their texts. One body per identity and container ports
/// ([`panel_key`]), formed once for the endpoints with the same rules and
/// ports: an endpoint's resolved policy follows from those alone but for
/// the name and identity the panel's title and identity line show (see
/// `resolved::map_key`; 100k synthetic pods: 10,004 panels, 4,664 maps
/// built). Other parties (reserved identities) are resolved when the page
/// asks for them.
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
    let mut group_of: rustc_hash::FxHashMap<crate::resolved::SameMapKey, usize> =
        Default::default();
    let mut firsts: Vec<crate::engine::Party> = Vec::new();
    for w in &engine.inv.workloads {
        let Ok(p) = engine.party(&w.display_name()) else {
            continue;
        };
        let key = panel_key(&p);
        if keys.contains_key(&key) {
            continue;
        }
        let Some(body) = crate::resolved::map_key(&p, engine.selecting_rules(&p.identity)) else {
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
    /// How many panel keys show a body formed for another key.
    #[cfg(test)]
    pub(super) fn shared(&self) -> usize {
        let formed: std::collections::BTreeSet<*const policy::RawBody> =
            self.bodies.values().map(std::sync::Arc::as_ptr).collect();
        self.bodies.len() - formed.len()
    }

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
            match self.bodies.get(&panel_key(p)) {
                Some(raw) => data.add_raw(title, &p.identity, raw),
                None => data.add(title, Some(&self.resolver.resolve(p)), names),
            };
        }
        data
    }
}
