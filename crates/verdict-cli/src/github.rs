//! `-o github`: GitHub Actions workflow commands, which the runner turns into
//! annotations on the pull request's files:
//! `::error file=F,line=L,title=T::MESSAGE`.
//!
//! Escaping follows the runner's own (actions/toolkit `command.ts`): in the
//! message `%`, `\r`, `\n` become `%25`, `%0D`, `%0A`; in property values
//! also `:` and `,` become `%3A` and `%2C`. Other control characters (an
//! escape sequence in a name) are shown escaped, as in text output.

use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

pub struct Annotation<'a> {
    pub level: Level,
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub title: &'a str,
    pub message: &'a str,
}

/// One workflow command line (with its newline).
pub fn annotation(a: &Annotation) -> String {
    let mut props = Vec::new();
    if let Some(f) = a.file {
        props.push(format!("file={}", property(f)));
    }
    if let Some(l) = a.line.filter(|l| *l > 0) {
        props.push(format!("line={l}"));
    }
    if !a.title.is_empty() {
        props.push(format!("title={}", property(a.title)));
    }
    let mut out = format!("::{}", a.level.command());
    if !props.is_empty() {
        let _ = write!(out, " {}", props.join(","));
    }
    let _ = writeln!(out, "::{}", data(a.message));
    out
}

/// Control characters other than the newlines as `\u{..}` (or `\t`): the
/// runner would pass them to the log raw.
fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(c),
            '\t' => out.push_str("\\t"),
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

/// The message (after `::`).
pub fn data(s: &str) -> String {
    visible(s)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value (`file=`, `title=`).
pub fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(property("a:b,c%"), "a%3Ab%2Cc%25");
        assert_eq!(data("\u{1b}[31m"), "\\u{1b}[31m");
        let a = annotation(&Annotation {
            level: Level::Warning,
            file: Some("x,y.yaml"),
            line: Some(3),
            title: "VRD001 t:x",
            message: "m::n",
        });
        assert_eq!(
            a,
            "::warning file=x%2Cy.yaml,line=3,title=VRD001 t%3Ax::m::n\n"
        );
    }
}
