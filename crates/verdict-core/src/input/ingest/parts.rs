//! A text read in pieces: each piece's documents loaded into a part of the
//! inventory on the thread that parsed them, the parts then joined in text
//! order into exactly what one sequential read gives (same objects, same
//! diagnostics in the same order). On a 100k-pod input this takes the
//! loading of objects (a fifth of the load) off the one thread that
//! followed the two-thread parse.

use super::{object_of, Inventory};
use crate::source::{Diagnostic, Location, ObjectRef, Severity};
use crate::yaml::{parse_pieces_then, parse_sequential, Document, Issue};
use std::sync::Arc;

/// The objects of one piece of a text, with what joining them needs.
pub(super) struct Part {
    inv: Inventory,
    /// Problems that did not stop a document from being read, each with
    /// whether a document of this piece starts at or before it (else it
    /// belongs to the last document of an earlier piece).
    issues: Vec<(Diagnostic, bool)>,
    /// The object of the last document read of this piece, if it read one.
    last_object: Option<Option<ObjectRef>>,
}

impl Inventory {
    /// Loads every document of `text`, read from `file`: on several threads
    /// when the text is large (see [`parse_pieces_then`]).
    pub fn load_text(&mut self, file: &str, text: &str) {
        self.load_text_on(file, text, crate::threads());
    }

    /// [`Inventory::load_text`] with at most `threads` pieces.
    pub(crate) fn load_text_on(&mut self, file: &str, text: &str, threads: usize) {
        let file: Arc<str> = Arc::from(file);
        self.bytes += text.len();
        let cluster = &self.cluster;
        let read = |docs, issues| Part::read(cluster, &file, docs, issues);
        let parts = parse_pieces_then(text, threads, read).unwrap_or_else(|| {
            let (docs, issues) = parse_sequential(text);
            vec![Part::read(cluster, &file, docs, issues)]
        });
        self.join(parts);
    }

    /// Adds the parts of one text, in text order: its issues first, then
    /// every object (namespaces inserted where a sequential read inserts
    /// them, a duplicate's report at its place among the diagnostics).
    fn join(&mut self, mut parts: Vec<Part>) {
        let mut last: Option<ObjectRef> = None;
        for p in &mut parts {
            for (mut d, within) in p.issues.drain(..) {
                if !within {
                    d.object.clone_from(&last);
                }
                self.diagnostics.push(d);
            }
            if let Some(o) = p.last_object.take() {
                last = o;
            }
        }
        for p in parts {
            let Inventory {
                workloads,
                services,
                policies,
                routing,
                skipped,
                skipped_objects,
                diagnostics,
                deferred,
                ..
            } = p.inv;
            self.workloads.extend(workloads);
            self.services.extend(services);
            self.policies.extend(policies);
            self.routing.extend(routing);
            for (kind, at) in skipped {
                self.skipped.entry(kind).or_default().extend(at);
            }
            self.skipped_objects.extend(skipped_objects);
            let mut deferred = deferred.unwrap_or_default().into_iter().peekable();
            let mut reports = Vec::new();
            for (i, d) in diagnostics.into_iter().enumerate() {
                while let Some((ns, _)) = deferred.next_if(|(_, at)| *at <= i) {
                    self.insert_namespace(ns, &mut reports);
                    self.diagnostics.append(&mut reports);
                }
                self.diagnostics.push(d);
            }
            for (ns, _) in deferred {
                self.insert_namespace(ns, &mut reports);
                self.diagnostics.append(&mut reports);
            }
        }
    }
}

impl Part {
    /// Loads the documents of one piece (`issues`: its problems).
    fn read(
        cluster: &super::ClusterConfig,
        file: &Arc<str>,
        docs: Vec<Document>,
        issues: Vec<Issue>,
    ) -> Part {
        let mut inv = Inventory::new(cluster.clone());
        inv.deferred = Some(Vec::new());
        let issues = issues
            .into_iter()
            .map(|issue| {
                let object = docs.iter().rev().find_map(|d| match d {
                    Document::Ok(root) if root.pos.line <= issue.pos.line => Some(object_of(root)),
                    _ => None,
                });
                let d = Diagnostic {
                    location: Location::new(file, issue.pos),
                    severity: Severity::Error,
                    object: object.clone().flatten(),
                    message: issue.message,
                };
                (d, object.is_some())
            })
            .collect();
        let last_object = docs.iter().rev().find_map(|d| match d {
            Document::Ok(root) => Some(object_of(root)),
            Document::Err { .. } => None,
        });
        for doc in docs {
            match doc {
                Document::Err { pos, message } => inv.diagnostics.push(Diagnostic {
                    location: Location::new(file, pos),
                    severity: Severity::Error,
                    object: None,
                    message: format!("YAML syntax error: {message}; this document is skipped"),
                }),
                Document::Ok(node) => inv.load_node(file, &node),
            }
        }
        Part {
            inv,
            issues,
            last_object,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::ClusterConfig;

    /// `n` documents: pods, services, policies and namespaces (some given
    /// twice, some in both pieces), a kind that is not analysed; `odd(i)`
    /// may replace one.
    fn stream(n: usize, odd: impl Fn(usize) -> Option<String>) -> String {
        (0..n)
            .map(|i| {
                odd(i).unwrap_or_else(|| match i % 7 {
                    0 => format!("---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{}\n  labels: {{team: t{i}}}\n", i % 3_000),
                    1 => format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: ns1}}\nspec:\n  selector: {{app: a{i}}}\n  ports: [{{port: 80, targetPort: http}}]\n"),
                    2 => format!("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np{i}, namespace: ns2}}\nspec:\n  podSelector: {{matchLabels: {{app: a{i}}}}}\n  ingress: [{{from: [{{podSelector: {{}}}}]}}]\n"),
                    3 => format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}, namespace: ns3}}\n"),
                    4 => format!("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  namespace: ns{}\n  labels: {{app: a{i}}}\nspec:\n  containers:\n  - name: c\n    image: x\n", i % 5),
                    5 => format!("---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  namespace: Bad_NS\nspec: {{containers: [{{name: c, image: x}}]}}\n"),
                    _ => format!("---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{}, namespace: ns4}}\nspec: {{containers: [{{name: c, image: x}}]}}\n", i % 4_000),
                })
            })
            .collect()
    }

    /// One sequential read, object by object, namespaces inserted as read:
    /// what the parts must add up to.
    fn sequential(text: &str) -> String {
        let file: Arc<str> = Arc::from("in.yaml");
        let mut inv = Inventory::new(ClusterConfig::default());
        inv.bytes = text.len();
        let (docs, issues) = parse_sequential(text);
        for issue in issues {
            // The last document read at or before the issue, even one
            // that names no object.
            let object = docs.iter().rev().find_map(|d| match d {
                Document::Ok(root) if root.pos.line <= issue.pos.line => Some(object_of(root)),
                _ => None,
            });
            inv.diagnostics.push(Diagnostic {
                location: Location::new(&file, issue.pos),
                severity: Severity::Error,
                object: object.flatten(),
                message: issue.message,
            });
        }
        for doc in docs {
            match doc {
                Document::Err { pos, message } => inv.diagnostics.push(Diagnostic {
                    location: Location::new(&file, pos),
                    severity: Severity::Error,
                    object: None,
                    message: format!("YAML syntax error: {message}; this document is skipped"),
                }),
                Document::Ok(node) => inv.load_node(&file, &node),
            }
        }
        format!("{inv:?}")
    }

    fn loaded(text: &str, threads: usize) -> String {
        let mut inv = Inventory::new(ClusterConfig::default());
        inv.load_text_on("in.yaml", text, threads);
        assert!(inv.deferred.is_none());
        format!("{inv:?}")
    }

    /// How many documents the first piece holds when read on 2 threads.
    fn first_piece_docs(text: &str) -> usize {
        let counts = parse_pieces_then(text, 2, |docs, _| docs.len());
        let counts = counts.expect("the text is read in two pieces");
        assert_eq!(counts.len(), 2);
        counts[0]
    }

    #[test]
    fn pieces_load_as_one_sequential_read() {
        // Duplicate keys (issues) in documents of every piece, syntax
        // errors, namespaces and objects given twice within and across
        // pieces (their reports at their places), invalid names.
        let text = stream(30_000, |i| match i % 9_001 {
            8 => Some(format!(
                "---\nkind: Pod\nkind: Service\nmetadata: {{name: d{i}}}\n"
            )),
            13 => Some("---\na: [1, 2\nb: 3\n".into()),
            // A duplicate key in a document that names no object.
            21 => Some("---\nm: {k: 1, k: 2}\n".into()),
            _ => None,
        });
        let one = sequential(&text);
        assert!(
            one.contains("given twice") || one.contains("duplicate"),
            "the input repeats objects"
        );
        assert_eq!(loaded(&text, 1), one);
        assert_eq!(loaded(&text, 2), one);
        assert_eq!(loaded(&text, 3), one);
    }

    #[test]
    fn an_issue_before_the_first_object_of_a_piece_belongs_to_the_last_object_before() {
        // The second piece starts with a document whose duplicate key is
        // read before its syntax error ends it: the issue names the last
        // object read, which is in the first piece.
        let probe = stream(30_000, |_| None);
        let at = first_piece_docs(&probe);
        let same_len = |s: String, i: usize| {
            let want = stream(i + 1, |_| None).len() - stream(i, |_| None).len();
            assert!(s.len() + 3 <= want);
            format!("{s}#{}\n", " ".repeat(want - s.len() - 2))
        };
        let text = stream(30_000, |i| {
            (i == at).then(|| same_len("---\nm: {k: 1, k: 2}\na: [1, 2\n".into(), i))
        });
        assert_eq!(text.len(), probe.len());
        assert_eq!(first_piece_docs(&text), at);
        let one = sequential(&text);
        assert!(one.contains("duplicate key `k`"), "the issue is reported");
        assert_eq!(loaded(&text, 2), one);
    }
}
