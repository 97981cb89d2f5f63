//! Following every entry point's paths, on several threads when the
//! input is large: Gateways and Ingresses are cut into runs of about equal
//! weight, each run followed with its own memos, and the parts joined in
//! input order with their rule lists renumbered into one list.

use super::entry_points::{gateway, ingress};
use super::*;

/// Below this many route backends (summed over entry points), one thread
/// follows every path: the threads' separate memos repeat the shared
/// sides (the controller's egress), which only pays off on large inputs.
pub const PARALLEL_BACKENDS: usize = 1_000;

/// Every path from every entry point (Gateway listeners, Ingresses) to
/// the pods behind it, each hop judged by the engine. Large inputs are
/// followed on the machine's threads ([`paths_on`]).
pub fn paths(engine: &Engine, routing: &Routing, opts: &PathOptions) -> PathsReport {
    paths_with(engine, routing, opts, None, true)
}

/// [`paths`] without near misses (every check's `near_miss` empty): the
/// same paths and decisions, without the search for what almost matched
/// (`verdict diff` reads only decisions until a path changes).
pub fn paths_decisions(engine: &Engine, routing: &Routing, opts: &PathOptions) -> PathsReport {
    paths_with(engine, routing, opts, None, false)
}

/// [`paths`] on at most `threads` threads; the report is the same
/// whatever the number (entry points in input order, rule lists numbered
/// in order of first use).
pub fn paths_on(
    engine: &Engine,
    routing: &Routing,
    opts: &PathOptions,
    threads: usize,
) -> PathsReport {
    paths_with(engine, routing, opts, Some(threads), true)
}

/// Follows the paths on `threads` threads, or when `None` on the
/// machine's threads if the routes lead to [`PARALLEL_BACKENDS`] or more
/// backends, else on one.
fn paths_with(
    engine: &Engine,
    routing: &Routing,
    opts: &PathOptions,
    threads: Option<usize>,
    near_misses: bool,
) -> PathsReport {
    let units = units(routing);
    let threads = threads.unwrap_or_else(|| {
        if units.iter().map(|(_, w)| w).sum::<usize>() < PARALLEL_BACKENDS {
            1
        } else {
            crate::threads()
        }
    });
    let shards = shards(&units, threads.clamp(1, 64));
    let parts: Vec<Part> = if shards.len() < 2 {
        vec![part(engine, routing, opts, near_misses, &units)]
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = shards
                .iter()
                .map(|s| scope.spawn(move || part(engine, routing, opts, near_misses, s)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    // Never empty: fewer than two runs give one part of every unit.
    let mut parts = parts.into_iter();
    let mut first = parts
        .next()
        .unwrap_or_else(|| part(engine, routing, opts, near_misses, &[]));
    for mut p in parts {
        let remap: Vec<usize> = p
            .lists
            .lists
            .iter()
            .map(|l| first.lists.id(Arc::clone(l)))
            .collect();
        for ep in &mut p.entry_points {
            renumber_lists(ep, &remap);
        }
        first.entry_points.append(&mut p.entry_points);
        first.findings.append(&mut p.findings);
        for (k, v) in p.attached_somewhere {
            *first.attached_somewhere.entry(k).or_default() |= v;
        }
    }
    let Part {
        entry_points,
        mut findings,
        attached_somewhere,
        lists,
    } = first;

    for r in &routing.routes {
        if attached_somewhere.get(&r.object).copied() != Some(true) && included(opts, &r.object, "")
        {
            let parents: Vec<String> = r
                .parents
                .iter()
                .map(|p| format!("{} {}/{}", p.kind, p.namespace, p.name))
                .collect();
            let exists = r.parents.iter().any(|p| {
                routing.gateways.iter().any(|g| {
                    g.object.name == p.name
                        && g.object.namespace.as_deref() == Some(p.namespace.as_str())
                })
            });
            let why = if r.parents.is_empty() {
                "it has no parentRefs".to_string()
            } else if r.parents.iter().all(|p| p.kind == "Service") {
                // GAMMA: a route on a Service is east-west mesh routing.
                format!(
                    "its parentRefs are Services ({}): mesh (GAMMA) routing inside the cluster, not a way in; not analysed",
                    parents.join(", ")
                )
            } else if exists {
                "see the reasons under its Gateway".to_string()
            } else {
                format!("its parent {} is not in the input", parents.join(", "))
            };
            findings.push(format!(
                "{} ({}) attaches to no listener: {why}",
                r.object, r.location
            ));
        }
    }
    let mut summary = Summary::default();
    for ep in &entry_points {
        for r in &ep.routes {
            for b in &r.backends {
                if b.paths.is_empty() {
                    summary.add(b.decision);
                }
                for p in &b.paths {
                    summary.add(p.decision);
                }
            }
        }
    }
    if entry_points.is_empty() {
        let skipped: Vec<String> = engine
            .inv
            .skipped
            .iter()
            .map(|(k, v)| format!("{k} ({})", v.len()))
            .collect();
        findings.push(format!(
            "no Ingress or Gateway in the input{}",
            if skipped.is_empty() {
                String::new()
            } else {
                format!(
                    "; objects of these kinds were not analysed: {} (render Helm charts and Kustomize overlays first, e.g. `helm template`, `kustomize build`)",
                    skipped.join(", ")
                )
            }
        ));
    }
    findings.sort();
    findings.dedup();
    PathsReport {
        rule_lists: lists.lists,
        entry_points,
        findings,
        summary,
    }
}

/// A unit of the work threads share: a Gateway or an Ingress (index in
/// [`Routing`]), with its weight (the route backends it leads to).
#[derive(Debug, Clone, Copy)]
enum Unit {
    Gateway(usize),
    Ingress(usize),
}

/// Every entry point's unit, Gateways first, in input order.
fn units(routing: &Routing) -> Vec<(Unit, usize)> {
    let mut backends: HashMap<(&str, &str), usize> = HashMap::new();
    for r in &routing.routes {
        let n: usize = r.rules.iter().map(|rule| rule.backends.len()).sum();
        for p in &r.parents {
            *backends
                .entry((p.namespace.as_str(), p.name.as_str()))
                .or_default() += n;
        }
    }
    let gateways = routing.gateways.iter().enumerate().map(|(i, gw)| {
        let key = (
            gw.object.namespace.as_deref().unwrap_or(""),
            gw.object.name.as_str(),
        );
        let n = backends.get(&key).copied().unwrap_or(0);
        (Unit::Gateway(i), n.max(1) * gw.listeners.len().max(1))
    });
    let ingresses = routing.ingresses.iter().enumerate().map(|(i, ing)| {
        (
            Unit::Ingress(i),
            ing.paths.len().max(1) * (1 + usize::from(ing.tls)),
        )
    });
    gateways.chain(ingresses).collect()
}

/// `units` cut into at most `threads` consecutive runs of about equal
/// weight.
fn shards(units: &[(Unit, usize)], threads: usize) -> Vec<Vec<(Unit, usize)>> {
    let total: usize = units.iter().map(|(_, w)| w).sum();
    let share = total.div_ceil(threads.max(1)).max(1);
    let mut out: Vec<Vec<(Unit, usize)>> = Vec::new();
    let mut current = Vec::new();
    let mut weight = 0;
    for &u in units {
        current.push(u);
        weight += u.1;
        if weight >= share && out.len() + 1 < threads {
            out.push(std::mem::take(&mut current));
            weight = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// What one thread's units give: their entry points in order, findings,
/// which routes attached, and the rule lists their checks number.
pub(super) struct Part {
    pub(super) entry_points: Vec<EntryPoint>,
    pub(super) findings: Vec<String>,
    pub(super) attached_somewhere: BTreeMap<ObjectRef, bool>,
    pub(super) lists: Interner,
}

/// Follows the paths of `units` with one context (one set of memos).
fn part(
    engine: &Engine,
    routing: &Routing,
    opts: &PathOptions,
    near_misses: bool,
    units: &[(Unit, usize)],
) -> Part {
    let mut services: FxHashMap<(&str, &str), &Service> = FxHashMap::default();
    for s in &engine.inv.services {
        services
            .entry((s.namespace.as_str(), s.object.name.as_str()))
            .or_insert(s);
    }
    let mut workloads: FxHashMap<&str, Vec<&Workload>> = FxHashMap::default();
    for w in &engine.inv.workloads {
        workloads.entry(w.namespace.as_str()).or_default().push(w);
    }
    let ctx = Ctx {
        engine,
        routing,
        opts,
        proto: std::cell::Cell::new(Protocol::Tcp),
        services,
        workloads,
        decided: RefCell::new(FxHashMap::default()),
        lists: RefCell::new(Interner::new()),
        classes: RefCell::new(FxHashMap::default()),
        near: RefCell::new(FxHashMap::default()),
        subjects: RefCell::new(FxHashMap::default()),
        by_rules: RefCell::new(FxHashMap::default()),
        near_misses,
    };
    let mut out = Part {
        entry_points: Vec::new(),
        findings: Vec::new(),
        attached_somewhere: BTreeMap::new(),
        lists: Interner::default(),
    };
    for &(u, _) in units {
        match u {
            Unit::Gateway(i) => {
                if let Some(gw) = routing.gateways.get(i) {
                    gateway(&ctx, gw, &mut out);
                }
            }
            Unit::Ingress(i) => {
                if let Some(ing) = routing.ingresses.get(i) {
                    ingress(&ctx, ing, &mut out);
                }
            }
        }
    }
    out.lists = ctx.lists.into_inner();
    out
}

/// Rule list numbers of another part's interner, mapped into the report's.
fn renumber_lists(ep: &mut EntryPoint, remap: &[usize]) {
    let checks = ep
        .routes
        .iter_mut()
        .flat_map(|r| &mut r.backends)
        .flat_map(|b| &mut b.paths)
        .flat_map(|p| &mut p.hops)
        .flat_map(|h| &mut h.checks);
    for c in checks {
        c.rules_list = remap.get(c.rules_list).copied().unwrap_or(0);
        c.selected_by = c.selected_by.and_then(|i| remap.get(i).copied());
    }
}
