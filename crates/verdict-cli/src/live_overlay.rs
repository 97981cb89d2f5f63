//! "The cluster as it is, plus the files": an object in the files replaces
//! the live object with the same kind, namespace and name (as `kubectl
//! apply` of those files would), without the duplicate-object error two
//! files naming the same object get. Live objects that no file names are
//! read as they are.

use crate::live::LiveState;
use crate::live_objects::object_ref;
use std::collections::BTreeMap;
use std::sync::Arc;
use verdict_core::ingest::Inventory;
use verdict_core::source::{Diagnostic, Location, ObjectRef, Severity};

/// A source name and its text (or why it could not be read).
pub type Text = (String, Result<String, String>);

/// The objects the files define, with where (when ingest keeps it).
fn file_objects(
    files: &[(String, Result<String, String>)],
) -> BTreeMap<ObjectRef, Option<Location>> {
    let mut inv = Inventory::default();
    for (name, text) in files {
        if let Ok(text) = text {
            inv.load_text(name, text);
        }
    }
    let mut out: BTreeMap<ObjectRef, Option<Location>> = BTreeMap::new();
    let located = inv
        .workloads
        .iter()
        .map(|w| (&w.object, &w.location))
        .chain(inv.services.iter().map(|s| (&s.object, &s.location)))
        .chain(inv.policies.iter().map(|p| (&p.object, &p.location)))
        .chain(inv.routing.iter().map(|r| (&r.object, &r.location)));
    for (o, l) in located {
        out.insert(o.clone(), Some(l.clone()));
    }
    for (name, ns) in &inv.namespaces {
        out.insert(
            ObjectRef::new("Namespace", None, name),
            Some(ns.location.clone()),
        );
    }
    for o in &inv.skipped_objects {
        out.entry(o.clone()).or_insert(None);
    }
    out
}

/// The live state's texts, leaving out every object the files define, and
/// the diagnostics of reading the cluster plus one (informational) per
/// object replaced.
pub fn overlay(live: &LiveState, files: &[Text]) -> (Vec<Text>, Vec<Diagnostic>) {
    let defined = if files.is_empty() {
        BTreeMap::new()
    } else {
        file_objects(files)
    };
    let mut diagnostics = live.diagnostics.clone();
    let mut texts = Vec::new();
    for k in &live.kinds {
        let text = k.text(|o| {
            let r = object_ref(o);
            match defined.get(&r) {
                Some(at) => {
                    diagnostics.push(Diagnostic {
                        location: at.clone().unwrap_or_else(|| Location {
                            file: Arc::from(k.source.as_str()),
                            line: 0,
                            col: 0,
                        }),
                        severity: Severity::Info,
                        object: Some(r),
                        message: "replaces the cluster's object of this kind, namespace and name (files overlay the live state)".to_string(),
                    });
                    true
                }
                None => false,
            }
        });
        texts.push((k.source.clone(), Ok(text)));
    }
    (texts, diagnostics)
}
