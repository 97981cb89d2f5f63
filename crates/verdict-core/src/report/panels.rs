//! The report's policy panels as page data: one panel per identity and
//! container ports, each endpoint's body formed ahead of the page from the
//! maps the matrix is computed from ([`matrix_and_panels`]), and endpoints
//! with the same rules and ports sharing one body.

use super::policy;
use crate::engine::Engine;
use crate::matrix::{matrix_plan, MatrixOptions};
use crate::matrix_summary::{summarise_maps_without_rules, Summary};
use crate::resolved::{resolve_plan, shares_maps, Plan, ResolvedPolicy};
use std::collections::BTreeMap;

pub(super) type Panel<'p> = (&'p str, Option<crate::engine::Party>);

/// The key of a name's panel: the names standing for one identity with
/// the same container ports (which name ports) share one panel.
pub(super) fn panel_key(p: &crate::engine::Party) -> (u32, String) {
    (p.identity.id, format!("{:?}", p.ports))
}

/// The panel bodies of the endpoints, formed ahead of the page from the
/// maps the matrix is computed from (`verdict report` resolves every
/// identity once for both: [`matrix_and_panels`]), so the page only
/// numbers their texts. One body per identity's representative endpoint
/// and its container ports ([`panel_key`]), formed once for the endpoints
/// with the same rules and ports: an endpoint's resolved policy follows
/// from those alone but for the name and identity the panel's title and
/// identity line show (see `resolved::map_key`; 100k synthetic pods:
/// 10,000 identities, 4,664 maps built). Other panels (reserved
/// identities, workloads of an identity with other container ports) are
/// resolved when the page asks for them, with the same resolver.
pub struct PanelBodies<'e, 'a> {
    plan: Plan<'e, 'a>,
    bodies: Bodies<'a>,
    /// The maps the bodies were formed from (the matrix's nodes are named
    /// from them), kept with them: freeing them between the matrix and the
    /// page held the page up (dense 50k: 0.07 s of the page's 0.3 s), and
    /// the page's caller decides when the whole goes (`verdict report`
    /// leaves it to the process's exit).
    maps: Vec<ResolvedPolicy<'a>>,
}

/// What the page reads of [`PanelBodies`], borrowed (also while the
/// matrix is being computed from the same maps).
#[derive(Clone, Copy)]
pub struct PanelView<'x, 'e, 'a> {
    plan: &'x Plan<'e, 'a>,
    bodies: &'x Bodies<'a>,
    maps: &'x [ResolvedPolicy<'a>],
}

/// Panel bodies by [`panel_key`].
type Bodies<'a> = rustc_hash::FxHashMap<(u32, String), std::sync::Arc<policy::RawBody<'a>>>;

/// The report's matrix (without rules: the page names none) and its
/// panel bodies, both from one resolution of every identity's map (with
/// rules, which the panels show and the matrix ignores), and `beside`
/// (the paths and the lint) meanwhile: a second thread resolves the maps
/// and then computes the matrix, while this thread runs `beside`, forms
/// the bodies from the maps and then runs `then` with `beside`'s result
/// and the bodies (the page's parts that do not need the matrix: the
/// matrix thread is the longer one).
pub fn matrix_and_panels<'e, 'a, T, U>(
    engine: &'e Engine<'a>,
    opts: &MatrixOptions,
    beside: impl FnOnce() -> T,
    then: impl FnOnce(T, PanelView<'_, 'e, 'a>) -> U,
) -> (U, Summary, PanelBodies<'e, 'a>) {
    let ready: std::sync::OnceLock<(Plan<'e, 'a>, Vec<ResolvedPolicy<'a>>)> =
        std::sync::OnceLock::new();
    // Closed (its sender dropped) once the maps are ready, or the thread
    // resolving them has failed.
    let (resolved, wait) = std::sync::mpsc::channel::<()>();
    let (u, summary, bodies) = std::thread::scope(|s| {
        let ready = &ready;
        let matrix = s.spawn(move || {
            let plan = matrix_plan(engine);
            let maps = resolve_plan(&plan, crate::threads());
            let (_, maps) = ready.get_or_init(|| (plan, maps));
            drop(resolved);
            summarise_maps_without_rules(engine, maps, opts)
        });
        let t = beside();
        let _ = wait.recv();
        // No maps: the matrix thread failed before they were ready; its
        // panic is raised here (there is no page to form).
        let Some((plan, maps)) = ready.get() else {
            let failed = matrix.join().err();
            std::panic::resume_unwind(
                failed.unwrap_or_else(|| Box::new("the matrix thread ended without its maps")),
            );
        };
        let bodies = bodies_of(engine, plan, maps);
        let u = then(t, PanelView::new(plan, &bodies, maps));
        let summary = matrix
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (u, summary, bodies)
    });
    let (plan, maps) = match ready.into_inner() {
        Some(ready) => ready,
        None => (matrix_plan(engine), Vec::new()),
    };
    (u, summary, PanelBodies { plan, bodies, maps })
}

/// The panel bodies alone (see [`PanelBodies`]).
pub fn panel_bodies<'e, 'a>(engine: &'e Engine<'a>) -> PanelBodies<'e, 'a> {
    let plan = matrix_plan(engine);
    let maps = resolve_plan(&plan, crate::threads());
    let bodies = bodies_of(engine, &plan, &maps);
    PanelBodies { plan, bodies, maps }
}

/// The bodies of `maps`, the maps of `plan` in its order: one body formed
/// per group of maps [`Plan::same_maps`] finds alike.
fn bodies_of<'a>(
    engine: &Engine<'a>,
    plan: &Plan<'_, 'a>,
    maps: &[ResolvedPolicy<'a>],
) -> Bodies<'a> {
    let names = crate::names::identity_names(engine);
    let like = plan.same_maps();
    let mut formed: Vec<Option<std::sync::Arc<policy::RawBody<'a>>>> = vec![None; maps.len()];
    let mut bodies = Bodies::default();
    // Maps out of step with the plan's subjects are not read (every panel
    // is then resolved by the page).
    let aligned = maps.len() == plan.len();
    for pi in (0..maps.len()).filter(|_| aligned) {
        // Reserved identities and other parties: resolved by the page.
        let Some((p, _)) = plan.subject(pi).filter(|(p, _)| shares_maps(p)) else {
            continue;
        };
        let first = like.get(pi).copied().flatten().unwrap_or(pi);
        let body = match formed.get(first).cloned().flatten() {
            Some(b) => b,
            None => {
                let Some(map) = maps.get(first) else {
                    continue;
                };
                let b = std::sync::Arc::new(policy::raw_body(map, &names));
                if let Some(slot) = formed.get_mut(first) {
                    *slot = Some(b.clone());
                }
                b
            }
        };
        bodies.entry(panel_key(p)).or_insert(body);
    }
    bodies
}

impl<'e, 'a> PanelBodies<'e, 'a> {
    /// The bodies as the page reads them.
    pub fn view(&self) -> PanelView<'_, 'e, 'a> {
        PanelView::new(&self.plan, &self.bodies, &self.maps)
    }
}

impl<'x, 'e, 'a> PanelView<'x, 'e, 'a> {
    fn new(plan: &'x Plan<'e, 'a>, bodies: &'x Bodies<'a>, maps: &'x [ResolvedPolicy<'a>]) -> Self {
        PanelView { plan, bodies, maps }
    }

    /// The name of every node the matrix of these maps can show (its
    /// groups' members are among them), in peer order, and whether it is
    /// an identity (else a CIDR selection: not an endpoint).
    pub(super) fn node_names(&self, engine: &Engine) -> Vec<(String, bool)> {
        let names = self.maps.first().map(ResolvedPolicy::names);
        crate::matrix::Ctx::nodes(engine, names)
            .0
            .into_iter()
            .flatten()
            .map(|n| (n.name, n.identity.is_some()))
            .collect()
    }

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
        // The bodies live in `self.bodies` for the whole loop.
        let mut seen = rustc_hash::FxHashMap::default();
        for (title, party) in panels {
            let Some(p) = party else {
                data.add(title, None, names);
                continue;
            };
            match self.bodies.get(&panel_key(p)) {
                Some(raw) => data.add_shared(title, &p.identity, raw, &mut seen),
                None => data.add(title, Some(&self.plan.resolver().resolve(p)), names),
            };
        }
        data
    }
}
