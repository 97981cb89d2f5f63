//! Escaping for every output format: names, labels and file paths come from
//! the input and may hold anything (a newline, an escape sequence, `|`,
//! `</script>`), so no renderer writes them raw.
//!
//! * terminal text: [`escape`] (one field or one line) and [`escape_lines`]
//!   (a whole text whose newlines are structure);
//! * Markdown: [`markdown`]; CSV: [`csv_field`]; DOT: [`dot_string`];
//!   Mermaid: [`mermaid_label`]; HTML: [`html`]; JSON: [`json_safe`], and
//!   [`json_in_script`] for JSON inside an HTML `<script>` element.

use std::borrow::Cow;
use std::fmt::Write;

/// Characters that must not reach a terminal raw: C0 and C1 controls and
/// DEL (`char::is_control`), the Unicode line and paragraph separators, and
/// the bidirectional formatting characters that reorder what is displayed
/// ("Trojan Source").
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{061C}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Whether `s` is printable ASCII only (and newlines, when `newlines`):
/// nothing to escape. A byte test the compiler vectorises, the common case
/// of texts of hundreds of MiB (the matrix of a dense cluster), before the
/// character-by-character test.
fn plain_ascii(s: &str, newlines: bool) -> bool {
    // Blocks without an early exit inside (vectorised), one exit per block.
    s.as_bytes().chunks(4096).all(|block| {
        block.iter().fold(true, |ok, &b| {
            ok & ((0x20..0x7f).contains(&b) | (newlines & (b == b'\n')))
        })
    })
}

/// One field or one line for a terminal: every unsafe character (newlines
/// included) written as `\n`, `\r`, `\t` or `\u{1b}`. Backslashes are kept
/// as they are.
pub fn escape(s: &str) -> Cow<'_, str> {
    if plain_ascii(s, false) || !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A whole text whose `\n` are structure (one record per line): every other
/// unsafe character escaped as [`escape`] does. The last resort before a
/// text reaches the terminal; renderers escape each line's content first, so
/// that a newline inside a name cannot start a line of its own.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    if plain_ascii(s, true) || !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c != '\n' && is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Appends `line` (escaped: a newline inside it is written `\n`) and a
/// newline to `out`.
pub fn push_line(out: &mut String, line: &str) {
    out.push_str(&escape(line));
    out.push('\n');
}

/// Text for Markdown (a table cell, a list item, a heading): unsafe
/// characters escaped as [`escape`] does, then every ASCII punctuation
/// character that Markdown or GitHub's HTML subset could read (`|` ends a
/// cell, `` ` `` opens code, `<!--` hides the rest of a comment, `*`, `_`,
/// `[`, ...) backslash-escaped, which CommonMark renders as the character.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in escape(s).chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '['
                | ']'
                | '<'
                | '>'
                | '|'
                | '~'
                | '&'
                | '#'
                | '!'
                | '{'
                | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote, a line
/// break or any other control character, quotes doubled. The value is kept
/// as it is (CSV is for programs).
pub fn csv_field(s: &str) -> Cow<'_, str> {
    if s.chars().any(|c| c == ',' || c == '"' || is_unsafe(c)) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// A DOT double-quoted string (with its quotes): unsafe characters escaped
/// as [`escape`] does, then `\` and `"` backslash-escaped, so the label
/// shows the text itself (`\n` in a name is two characters, not a line
/// break).
pub fn dot_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in escape(s).chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Text inside a quoted Mermaid label (`id["..."]`): unsafe characters
/// escaped as [`escape`] does, then the characters Mermaid or its HTML
/// labels read (`"`, `#`, `<`, `>`, `&`, `` ` ``, `|`) as Mermaid entity
/// codes (`#34;`).
pub fn mermaid_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in escape(s).chars() {
        if matches!(c, '"' | '#' | '<' | '>' | '&' | '`' | '|' | '\\') {
            let _ = write!(out, "#{};", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Text for an HTML text node or a double- or single-quoted attribute.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Serialised JSON for a terminal: serde_json escapes the C0 controls but
/// writes DEL, the C1 controls, the line separators and the bidirectional
/// formatting characters raw; they are written `\uXXXX` here. Such
/// characters only occur inside JSON strings, where the escape means the
/// same character, so the value is unchanged.
pub fn json_safe(json: &str) -> Cow<'_, str> {
    json_escape_chars(json, json_unsafe)
}

/// Unsafe characters that serde_json leaves raw: those from DEL on. (It
/// escapes the C0 controls inside strings; outside, they are the
/// whitespace of pretty printing.)
pub fn json_unsafe(c: char) -> bool {
    c >= '\u{7f}' && is_unsafe(c)
}

/// Serialised JSON to embed in an HTML `<script>` element: also `<`, `>`
/// and `&` as `\u003c`..., so that no `</script>` or `<!--` in a name can
/// end or change the element.
pub fn json_in_script(json: &str) -> String {
    json_escape_chars(json, |c| matches!(c, '<' | '>' | '&') || json_unsafe(c)).into_owned()
}

fn json_escape_chars(json: &str, escape: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !json.chars().any(&escape) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if escape(c) {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{u:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A [`std::io::Write`] (a buffered file, standard output) as a
/// `fmt::Write` text sink, so that a view is written as it is formed,
/// never held whole (the report page, the grouped matrix text). The first
/// I/O error is kept and every later write refused; [`IoText::finish`]
/// returns it.
pub struct IoText<W: std::io::Write> {
    w: W,
    err: Option<std::io::Error>,
}

impl<W: std::io::Write> IoText<W> {
    pub fn new(w: W) -> Self {
        IoText { w, err: None }
    }

    /// Whether a write has failed (every later one is refused).
    pub fn failed(&self) -> bool {
        self.err.is_some()
    }

    /// Flushes the writer; the first error of any write.
    pub fn finish(mut self) -> std::io::Result<W> {
        if let Some(e) = self.err.take() {
            return Err(e);
        }
        self.w.flush()?;
        Ok(self.w)
    }
}

impl<W: std::io::Write> Write for IoText<W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.err.is_some() {
            return Err(std::fmt::Error);
        }
        self.w.write_all(s.as_bytes()).map_err(|e| {
            self.err = Some(e);
            std::fmt::Error
        })
    }
}

/// A count with its noun: `1 path`, `2 paths`, `0 paths`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_separators_and_bidi() {
        assert_eq!(escape("a\nb\r\t\u{1b}[31m"), "a\\nb\\r\\t\\u{1b}[31m");
        assert_eq!(
            escape("x\u{2028}\u{202e}\u{85}\u{7f}"),
            "x\\u{2028}\\u{202e}\\u{85}\\u{7f}"
        );
        assert!(matches!(escape("shop/api-0"), Cow::Borrowed(_)));
        assert_eq!(escape_lines("a\u{1b}\nb\n"), "a\\u{1b}\nb\n");
        // The block-wise fast path: an unsafe character in a later block,
        // DEL, and plain text of many blocks left as it is.
        let long = "x".repeat(10_000);
        assert_eq!(escape(&format!("{long}\u{7f}")), format!("{long}\\u{{7f}}"));
        assert_eq!(
            escape_lines(&format!("{long}\n{long}\u{1b}")),
            format!("{long}\n{long}\\u{{1b}}")
        );
        assert!(matches!(
            escape_lines(&format!("{long}\n")),
            Cow::Borrowed(_)
        ));
        assert!(matches!(escape(&format!("{long}\n")), Cow::Owned(_)));
    }

    #[test]
    fn markdown_cells_cannot_split_or_hide() {
        let m = markdown("a|b`c\n<!--");
        assert!(!m.contains('\n'));
        assert_eq!(m, "a\\|b\\`c\\\\n\\<\\!--");
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,\"b\"\nc"), "\"a,\"\"b\"\"\nc\"");
        assert_eq!(csv_field("a\rb"), "\"a\rb\"");
    }

    #[test]
    fn dot_and_mermaid_labels() {
        assert_eq!(dot_string("a\"b\\\n"), "\"a\\\"b\\\\\\\\n\"");
        assert_eq!(mermaid_label("a\"<b>#|"), "a#34;#60;b#62;#35;#124;");
    }

    #[test]
    fn json_escapes_keep_the_value() {
        let raw = serde_json::to_string(&"</script><!--\u{2028}\u{85}&").unwrap();
        let s = json_in_script(&raw);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        assert!(!s.contains('\u{2028}') && !s.contains('\u{85}'));
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "</script><!--\u{2028}\u{85}&");
        let pretty = serde_json::to_string_pretty(&["a\u{7f}\u{202e}\u{1F600}\n"]).unwrap();
        let safe = json_safe(&pretty);
        assert_eq!(safe, "[\n  \"a\\u007f\\u202e\u{1F600}\\n\"\n]");
    }
}
