//! YAML (and JSON) documents into a located node tree.
//!
//! Manifests are read into [`Node`]s that remember their line and column, so
//! every later error or verdict can point at `file:line`. A syntax error ends
//! only the document it occurs in: parsing resumes at the next `---`.
//! Aliases are expanded with a node budget so that alias bombs cannot
//! exhaust memory; an alias to a node that is not finished (a recursive
//! alias) or to an unknown anchor is a syntax error of its document.
//!
//! Mappings are read as kubectl reads them: a duplicate key is reported (the
//! last value is kept, as the API server keeps it), and merge keys
//! (`<<: *anchor`, `<<: [*a, *b]`) copy the keys of the merged mappings that
//! the mapping does not write itself, earlier merges winning over later ones.

mod pieces;

use granit_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// A position in a source file (1-based line, 1-based column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A scalar with its text and whether it was written plain (unquoted):
    /// plain scalars may be numbers or booleans, quoted ones are strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A problem in a document that does not stop it from being read (a
/// duplicate key, a merge key whose value is not a mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub pos: Pos,
    pub message: String,
}

/// A document's root node, or the syntax error that ended it.
#[derive(Debug, Clone)]
pub enum Document {
    Ok(Node),
    Err { pos: Pos, message: String },
}

const NODE_BUDGET: usize = 2_000_000;

/// A position from the parser's 1-based line (plus the lines of the text
/// before the piece being parsed) and 0-based column.
fn pos_at(line: usize, col: usize, line_offset: usize) -> Pos {
    Pos {
        line: u32::try_from(line.saturating_add(line_offset)).unwrap_or(u32::MAX),
        col: u32::try_from(col + 1).unwrap_or(u32::MAX),
    }
}

enum Frame {
    Seq(Pos, Vec<Node>, usize),
    Map(Pos, Vec<(Node, Node)>, Option<Node>, usize),
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    issues: Vec<Issue>,
}

/// Whether `k` is the merge key `<<` (plain, untagged).
fn is_merge_key(k: &Node) -> bool {
    matches!(&k.value, Value::Scalar { text, plain: true } if text == "<<")
}

/// The text that identifies a scalar key, for duplicate detection (`null`
/// keys included; collection keys are never compared).
fn key_text(k: &Node) -> Option<&str> {
    match &k.value {
        Value::Scalar { text, .. } => Some(text),
        Value::Null => Some("null"),
        _ => None,
    }
}

impl Builder {
    fn new() -> Self {
        Builder {
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            issues: Vec::new(),
        }
    }

    /// Resolves a finished mapping: duplicate keys (reported, the last value
    /// kept) and merge keys (explicit keys win, earlier merges win).
    fn finish_map(&mut self, items: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
        if Self::plain_map(&items) {
            let mut items = items;
            items.shrink_to_fit();
            return items;
        }
        let mut explicit: Vec<(Node, Node)> = Vec::with_capacity(items.len());
        let mut first_line: HashMap<String, u32> = HashMap::new();
        let mut merges: Vec<Node> = Vec::new();
        let mut merge_line: Option<u32> = None;
        for (k, v) in items {
            if is_merge_key(&k) {
                if let Some(line) = merge_line {
                    self.issues.push(Issue {
                        pos: k.pos,
                        message: format!(
                            "duplicate merge key `<<` (first at line {line}); kubectl refuses a mapping with a duplicate key"
                        ),
                    });
                } else {
                    merge_line = Some(k.pos.line);
                }
                match v.value {
                    Value::Map(_) => merges.push(v),
                    Value::Seq(list) => {
                        for m in list {
                            if matches!(m.value, Value::Map(_)) {
                                merges.push(m);
                            } else {
                                self.issues.push(Issue {
                                    pos: m.pos,
                                    message: format!(
                                        "a merge key `<<` list may only hold mappings, found {}; it is ignored",
                                        m.type_name()
                                    ),
                                });
                            }
                        }
                    }
                    _ => self.issues.push(Issue {
                        pos: v.pos,
                        message: format!(
                            "the value of a merge key `<<` must be a mapping or a list of mappings, found {}; it is ignored",
                            v.type_name()
                        ),
                    }),
                }
                continue;
            }
            if let Some(text) = key_text(&k) {
                if let Some(line) = first_line.get(text) {
                    self.issues.push(Issue {
                        pos: k.pos,
                        message: format!(
                            "duplicate key `{text}` (first at line {line}); kubectl refuses a mapping with a duplicate key; the last value is read, as the API server would"
                        ),
                    });
                    explicit.retain(|(e, _)| key_text(e) != Some(text));
                } else {
                    first_line.insert(text.to_string(), k.pos.line);
                }
            }
            explicit.push((k, v));
        }
        for m in merges {
            if let Value::Map(entries) = m.value {
                for (k, v) in entries {
                    let taken = key_text(&k)
                        .is_some_and(|t| explicit.iter().any(|(e, _)| key_text(e) == Some(t)));
                    if !taken {
                        explicit.push((k, v));
                    }
                }
            }
        }
        explicit
    }

    /// Whether a mapping has neither merge keys nor duplicate keys (the
    /// common case, left as it is): compared pairwise when small, through a
    /// sorted list of the key texts otherwise.
    fn plain_map(items: &[(Node, Node)]) -> bool {
        if items.iter().any(|(k, _)| is_merge_key(k)) {
            return false;
        }
        if items.len() <= 16 {
            return items.iter().enumerate().all(|(i, (k, _))| {
                key_text(k).is_none_or(|t| items[..i].iter().all(|(e, _)| key_text(e) != Some(t)))
            });
        }
        let mut texts: Vec<&str> = items.iter().filter_map(|(k, _)| key_text(k)).collect();
        texts.sort_unstable();
        texts.windows(2).all(|w| w[0] != w[1])
    }

    fn count(node: &Node) -> usize {
        match &node.value {
            Value::Seq(items) => 1 + items.iter().map(Self::count).sum::<usize>(),
            Value::Map(items) => {
                1 + items
                    .iter()
                    .map(|(k, v)| Self::count(k) + Self::count(v))
                    .sum::<usize>()
            }
            _ => 1,
        }
    }

    /// Pushes a finished node into its parent; returns the root when complete.
    fn push(&mut self, node: Node) -> Option<Node> {
        match self.stack.last_mut() {
            None => Some(node),
            Some(Frame::Seq(_, items, _)) => {
                items.push(node);
                None
            }
            Some(Frame::Map(_, items, key, _)) => {
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => items.push((k, node)),
                }
                None
            }
        }
    }
}

/// Splits `text` into documents and parses each one into a node tree.
///
/// Empty documents (only comments, or nothing between two `---`) are skipped.
pub fn parse_documents(text: &str) -> Vec<Document> {
    parse_with_issues(text).0
}

/// Like [`parse_documents`], with the problems that did not stop a document
/// from being read (duplicate keys, bad merge keys), in text order.
///
/// A large text is cut at document separators (a line that is `---`, as
/// kubectl's YAML reader cuts a stream) and its pieces are parsed on
/// separate threads; the result is that of one sequential parse
/// ([`parse_sequential`]), which is used instead whenever a piece other
/// than the last ends in a syntax error (the parser might have resumed
/// differently across the cut) or the text holds directives (`%YAML`,
/// which belong to the document after them).
pub fn parse_with_issues(text: &str) -> (Vec<Document>, Vec<Issue>) {
    let Some(parsed) = parse_pieces_then(text, crate::threads(), |docs, issues| (docs, issues))
    else {
        return parse_sequential(text);
    };
    let mut docs = Vec::with_capacity(parsed.iter().map(|(d, _)| d.len()).sum());
    let mut issues = Vec::new();
    for (mut d, mut i) in parsed {
        docs.append(&mut d);
        issues.append(&mut i);
    }
    (docs, issues)
}

/// The pieces of a large `text` (see [`parse_with_issues`]) parsed on
/// `threads` threads, each piece's documents and issues then handed to
/// `then` on the thread that parsed them; the results in text order.
/// `None` when the text is read as one stream instead: it is small, holds
/// directives, or a piece other than the last ends in a syntax error
/// (`then` is not called for that piece; the caller parses the text with
/// [`parse_sequential`]).
pub fn parse_pieces_then<R: Send>(
    text: &str,
    threads: usize,
    then: impl Fn(Vec<Document>, Vec<Issue>) -> R + Sync,
) -> Option<Vec<R>> {
    let pieces = pieces::pieces(text, threads);
    if pieces.len() < 2 {
        return None;
    }
    let last = pieces.len() - 1;
    let then = &then;
    std::thread::scope(|scope| {
        let handles: Vec<_> = pieces
            .iter()
            .enumerate()
            .map(|(i, &(start, end, lines_before))| {
                scope.spawn(move || {
                    let (docs, issues) = parse_piece(&text[start..end], lines_before);
                    // The parser might have resumed differently across the cut.
                    let cut_in_error =
                        i != last && matches!(docs.last(), Some(Document::Err { .. }));
                    (!cut_in_error).then(|| then(docs, issues))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    })
}

/// [`parse_with_issues`] on one thread, the whole text as one stream.
pub fn parse_sequential(text: &str) -> (Vec<Document>, Vec<Issue>) {
    parse_piece(text, 0)
}

/// Parses one piece of a text; `lines_before` is added to every line.
fn parse_piece(text: &str, lines_before: usize) -> (Vec<Document>, Vec<Issue>) {
    let pos_of = |span: &Span| pos_at(span.start.line(), span.start.col(), lines_before);
    let mut out = Vec::new();
    let mut issues: Vec<Issue> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    let mut b = Builder::new();
    let mut in_doc = false;
    let mut doc_has_root = false;
    loop {
        let next = parser.next_event();
        let (event, span) = match next {
            None => break,
            Some(Ok(ev)) => ev,
            Some(Err(e)) => {
                let m = e.marker();
                out.push(Document::Err {
                    pos: pos_at(m.line(), m.col(), lines_before),
                    message: e.info().to_string(),
                });
                issues.append(&mut b.issues);
                b = Builder::new();
                in_doc = false;
                doc_has_root = false;
                match parser.proceed_next_document() {
                    Ok(true) => continue,
                    _ => break,
                }
            }
        };
        let pos = pos_of(&span);
        let finished: Option<Node> = match event {
            Event::StreamStart | Event::StreamEnd => None,
            Event::DocumentStart(..) => {
                in_doc = true;
                doc_has_root = false;
                issues.append(&mut b.issues);
                b = Builder::new();
                None
            }
            Event::DocumentEnd => {
                in_doc = false;
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain && tag.is_none();
                let value = if plain && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar {
                        text: text.into_owned(),
                        plain,
                    }
                };
                let node = Node { pos, value };
                if anchor != 0 {
                    b.anchors.insert(anchor, node.clone());
                }
                b.nodes += 1;
                b.push(node)
            }
            Event::Alias(id) => match b.anchors.get(&id).cloned() {
                Some(mut node) => {
                    b.nodes += Builder::count(&node);
                    if b.nodes > NODE_BUDGET {
                        out.push(Document::Err {
                            pos,
                            message: format!(
                                "document expands to more than {NODE_BUDGET} nodes through aliases"
                            ),
                        });
                        issues.append(&mut b.issues);
                        b = Builder::new();
                        in_doc = false;
                        doc_has_root = false;
                        match parser.proceed_next_document() {
                            Ok(true) => continue,
                            _ => break,
                        }
                    }
                    node.pos = pos;
                    b.push(node)
                }
                None => {
                    let recursive = b.stack.iter().any(|f| match f {
                        Frame::Seq(_, _, a) | Frame::Map(_, _, _, a) => *a == id,
                    });
                    out.push(Document::Err {
                        pos,
                        message: if recursive {
                            "recursive alias: it refers to the node that contains it".to_string()
                        } else {
                            "alias to an unknown anchor".to_string()
                        },
                    });
                    issues.append(&mut b.issues);
                    b = Builder::new();
                    in_doc = false;
                    doc_has_root = false;
                    match parser.proceed_next_document() {
                        Ok(true) => continue,
                        _ => break,
                    }
                }
            },
            Event::SequenceStart(_, anchor, _) => {
                b.stack.push(Frame::Seq(pos, Vec::new(), anchor));
                None
            }
            Event::MappingStart(_, anchor, _) => {
                b.stack.push(Frame::Map(pos, Vec::new(), None, anchor));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match b.stack.pop() {
                Some(Frame::Seq(p, items, anchor)) => {
                    let node = Node {
                        pos: p,
                        value: Value::Seq(items),
                    };
                    if anchor != 0 {
                        b.anchors.insert(anchor, node.clone());
                    }
                    b.nodes += 1;
                    b.push(node)
                }
                Some(Frame::Map(p, items, _, anchor)) => {
                    let node = Node {
                        pos: p,
                        value: Value::Map(b.finish_map(items)),
                    };
                    if anchor != 0 {
                        b.anchors.insert(anchor, node.clone());
                    }
                    b.nodes += 1;
                    b.push(node)
                }
                None => None,
            },
            _ => None,
        };
        if let Some(root) = finished {
            if in_doc && !doc_has_root && root.value != Value::Null {
                out.push(Document::Ok(root));
            }
            doc_has_root = true;
        }
    }
    issues.append(&mut b.issues);
    issues.sort_by_key(|i| i.pos);
    (out, issues)
}

impl Node {
    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(items) => items
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a scalar (any style).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        self.value == Value::Null
    }

    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar { text, plain } => {
                if *plain && text.parse::<i64>().is_ok() {
                    "integer"
                } else if *plain && matches!(text.as_str(), "true" | "false" | "True" | "False") {
                    "boolean"
                } else {
                    "string"
                }
            }
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
        }
    }

    /// Converts the node to a JSON value (for echoing objects back to users).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Scalar { text, plain } => {
                if *plain {
                    if let Ok(i) = text.parse::<i64>() {
                        return serde_json::Value::from(i);
                    }
                    match text.as_str() {
                        "true" | "True" | "TRUE" => return serde_json::Value::Bool(true),
                        "false" | "False" | "FALSE" => return serde_json::Value::Bool(false),
                        _ => {}
                    }
                    if let Ok(f) = text.parse::<f64>() {
                        if let Some(n) = serde_json::Number::from_f64(f) {
                            return serde_json::Value::Number(n);
                        }
                    }
                }
                serde_json::Value::String(text.clone())
            }
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(items) => {
                let mut m = serde_json::Map::new();
                for (k, v) in items {
                    let key = k
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| k.to_json().to_string());
                    m.insert(key, v.to_json());
                }
                serde_json::Value::Object(m)
            }
        }
    }

    /// Builds a node tree from a JSON value; every node gets position `pos`.
    pub fn from_json(v: &serde_json::Value, pos: Pos) -> Node {
        let value = match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Scalar {
                text: b.to_string(),
                plain: true,
            },
            serde_json::Value::Number(n) => Value::Scalar {
                text: n.to_string(),
                plain: true,
            },
            serde_json::Value::String(s) => Value::Scalar {
                text: s.clone(),
                plain: false,
            },
            serde_json::Value::Array(a) => {
                Value::Seq(a.iter().map(|x| Node::from_json(x, pos)).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, x)| {
                        (
                            Node {
                                pos,
                                value: Value::Scalar {
                                    text: k.clone(),
                                    plain: false,
                                },
                            },
                            Node::from_json(x, pos),
                        )
                    })
                    .collect(),
            ),
        };
        Node { pos, value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(d: &Document) -> &Node {
        match d {
            Document::Ok(n) => n,
            Document::Err { message, .. } => panic!("unexpected error {message}"),
        }
    }

    #[test]
    fn multi_document_with_lines() {
        let docs =
            parse_documents("a: 1\n---\n# only a comment\n---\nkind: Pod\nmetadata:\n  name: x\n");
        assert_eq!(docs.len(), 2);
        let pod = ok(&docs[1]);
        assert_eq!(pod.pos.line, 5);
        assert_eq!(
            pod.get("metadata")
                .and_then(|m| m.get("name"))
                .map(|n| n.pos.line),
            Some(7)
        );
    }

    #[test]
    fn broken_document_does_not_stop_the_rest() {
        let docs = parse_documents("a: [1, 2\n---\nb: 2\n");
        assert!(matches!(docs[0], Document::Err { .. }));
        assert_eq!(ok(&docs[1]).get("b").and_then(Node::as_str), Some("2"));
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let docs = parse_documents("a: \"80\"\nb: 80\nc: ~\n");
        let n = ok(&docs[0]);
        assert_eq!(n.get("a").map(Node::type_name), Some("string"));
        assert_eq!(n.get("b").map(Node::type_name), Some("integer"));
        assert!(n.get("c").is_some_and(Node::is_null));
    }

    #[test]
    fn aliases_expand() {
        let docs = parse_documents("a: &x {k: v}\nb: *x\n");
        assert_eq!(
            ok(&docs[0])
                .get("b")
                .and_then(|b| b.get("k"))
                .and_then(Node::as_str),
            Some("v")
        );
    }

    fn text_of<'a>(n: &'a Node, key: &str) -> Option<&'a str> {
        n.get(key).and_then(Node::as_str)
    }

    #[test]
    fn duplicate_keys_are_reported_and_the_last_value_wins() {
        let (docs, issues) = parse_with_issues("kind: Pod\nname: a\nx: 1\nname: b\n");
        let n = ok(&docs[0]);
        assert_eq!(text_of(n, "name"), Some("b"));
        assert_eq!(text_of(n, "x"), Some("1"));
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].pos.line, 4);
        assert!(
            issues[0]
                .message
                .contains("duplicate key `name` (first at line 2)"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn merge_keys_explicit_keys_win_and_earlier_merges_win() {
        let text = "a: &a {x: 1, y: 1, z: 1}\nb: &b {x: 2, w: 2, z: 2}\nc:\n  z: 3\n  <<: [*a, *b]\nd:\n  <<: *b\n  x: 4\n";
        let (docs, issues) = parse_with_issues(text);
        assert!(issues.is_empty(), "{issues:?}");
        let root = ok(&docs[0]);
        let c = root.get("c").map(|c| c.to_json());
        assert_eq!(c, Some(serde_json::json!({"z": 3, "x": 1, "y": 1, "w": 2})));
        let d = root.get("d").map(|d| d.to_json());
        assert_eq!(d, Some(serde_json::json!({"x": 4, "w": 2, "z": 2})));
        // `<<` is a merge key only when plain.
        let (docs, _) = parse_with_issues("\"<<\": {x: 1}\n");
        assert!(ok(&docs[0]).get("<<").is_some());
    }

    #[test]
    fn a_merge_of_a_scalar_is_reported() {
        let (docs, issues) = parse_with_issues("a: &s v\nb:\n  <<: *s\n  k: 1\n");
        assert_eq!(
            ok(&docs[0]).get("b").map(|b| b.to_json()),
            Some(serde_json::json!({"k": 1}))
        );
        assert!(
            issues[0].message.contains("must be a mapping"),
            "{issues:?}"
        );
    }

    #[test]
    fn recursive_alias_is_an_error_not_a_key_shift() {
        let docs = parse_documents("a: &x\n  b: *x\n  c: d\n---\nk: v\n");
        match &docs[0] {
            Document::Err { message, pos } => {
                assert!(message.contains("recursive alias"), "{message}");
                assert_eq!(pos.line, 2);
            }
            Document::Ok(n) => panic!("read as {:?}", n.to_json()),
        }
        assert_eq!(text_of(ok(&docs[1]), "k"), Some("v"));
        let docs = parse_documents("a: &x [1, *x]\n");
        assert!(matches!(&docs[0], Document::Err { message, .. } if message.contains("recursive")));
    }

    #[test]
    fn json_is_accepted() {
        let docs = parse_documents("{\"kind\": \"Pod\", \"n\": [1, 2]}");
        assert_eq!(ok(&docs[0]).get("kind").and_then(Node::as_str), Some("Pod"));
    }
}
