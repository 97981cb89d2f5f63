//! Objects given twice (same kind, namespace and name): the API server holds
//! one, so the input is ambiguous. Both places are reported as an error and
//! the copy that comes last in sorted (file, line) order is kept, so that
//! verdicts never depend on the order in which files were given.

use super::{Inventory, Namespace};
use crate::source::{Diagnostic, Location, ObjectRef, Severity};
use rustc_hash::{FxHashMap, FxHashSet};

fn duplicate(object: &ObjectRef, dropped: &Location, kept: &Location) -> Diagnostic {
    Diagnostic {
        location: dropped.clone(),
        severity: Severity::Error,
        object: Some(object.clone()),
        message: format!(
            "{object} is defined twice, here and at {kept}; the API server holds one object per name: the one at {kept} (last in sorted file:line order) is used, this one is ignored"
        ),
    }
}

/// Keeps, for each object, the item with the greatest location; reports the
/// others. (The same object at the same location twice, a file read twice,
/// is kept once without a report.)
fn dedup<T>(
    items: &mut Vec<T>,
    key: impl Fn(&T) -> (&ObjectRef, &Location),
    diags: &mut Vec<Diagnostic>,
) {
    let keep: Vec<bool> = {
        let mut last: FxHashMap<&ObjectRef, &Location> = FxHashMap::default();
        for it in items.iter() {
            let (o, l) = key(it);
            let e = last.entry(o).or_insert(l);
            if *e < l {
                *e = l;
            }
        }
        if last.len() == items.len() {
            return;
        }
        let mut kept: FxHashSet<&ObjectRef> = FxHashSet::default();
        items
            .iter()
            .map(|it| {
                let (o, l) = key(it);
                match last.get(o) {
                    Some(&max) if max != l => {
                        diags.push(duplicate(o, l, max));
                        false
                    }
                    _ => kept.insert(o),
                }
            })
            .collect()
    };
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(true));
}

impl Inventory {
    /// Removes objects given twice, keeping the last copy in sorted
    /// (file, line) order and reporting each dropped one as an error.
    pub fn remove_duplicates(&mut self) {
        let mut diags = Vec::new();
        dedup(
            &mut self.workloads,
            |w| (&w.object, &w.location),
            &mut diags,
        );
        dedup(&mut self.services, |s| (&s.object, &s.location), &mut diags);
        dedup(&mut self.policies, |p| (&p.object, &p.location), &mut diags);
        dedup(&mut self.routing, |r| (&r.object, &r.location), &mut diags);
        diags.sort();
        self.diagnostics.append(&mut diags);
    }

    /// Adds a namespace; when one of that name is already there, keeps the
    /// one that comes last in sorted (file, line) order and reports the other.
    pub(super) fn insert_namespace(&mut self, ns: Namespace, diags: &mut Vec<Diagnostic>) {
        match self.namespaces.get(&ns.name) {
            Some(old) if old.location == ns.location => {}
            Some(old) => {
                let object = ObjectRef::new("Namespace", None, &ns.name);
                if old.location > ns.location {
                    diags.push(duplicate(&object, &ns.location, &old.location));
                } else {
                    diags.push(duplicate(&object, &old.location, &ns.location));
                    self.namespaces.insert(ns.name.clone(), ns);
                }
            }
            None => {
                self.namespaces.insert(ns.name.clone(), ns);
            }
        }
    }
}
