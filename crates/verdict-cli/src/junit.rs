//! JUnit XML (`verdict test --junit FILE`, `verdict lint -o junit`), the
//! format CI systems (GitLab, Jenkins, Azure Pipelines, GitHub test
//! reporters) show as test results.
//!
//! Written by hand: the structure is small (testsuites > testsuite >
//! testcase > failure) and every text goes through [`text`] / [`attr`],
//! which escape markup and replace what XML 1.0 cannot carry at all
//! (control characters other than tab and newlines) with a visible escape.

use std::fmt::Write as _;

pub struct Suite {
    pub name: String,
    pub cases: Vec<Case>,
}

pub struct Case {
    pub name: String,
    pub classname: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub failure: Option<Failure>,
}

pub struct Failure {
    /// One line: the failure in short.
    pub message: String,
    /// The kind of failure (`error`, `warning`, `expectation`).
    pub kind: String,
    /// Details (the body of the element).
    pub text: String,
}

/// The document: one `<testsuites>` holding `suites`.
pub fn render(name: &str, suites: &[Suite]) -> String {
    let count = |s: &Suite| s.cases.len();
    let failed = |s: &Suite| s.cases.iter().filter(|c| c.failure.is_some()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"0\">",
        attr(name),
        suites.iter().map(count).sum::<usize>(),
        suites.iter().map(failed).sum::<usize>(),
    );
    for (id, s) in suites.iter().enumerate() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" id=\"{id}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"0\">",
            attr(&s.name),
            count(s),
            failed(s)
        );
        for c in &s.cases {
            let mut head = format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
                attr(&c.name),
                attr(&c.classname)
            );
            if let Some(f) = &c.file {
                let _ = write!(head, " file=\"{}\"", attr(f));
            }
            if let Some(l) = c.line {
                let _ = write!(head, " line=\"{l}\"");
            }
            match &c.failure {
                None => {
                    let _ = writeln!(out, "{head}/>");
                }
                Some(f) => {
                    let _ = writeln!(
                        out,
                        "{head}>\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        attr(&f.message),
                        attr(&f.kind),
                        text(&f.text)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// A character XML 1.0 cannot carry, even as a character reference.
fn forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Element content: `&`, `<`, `>` escaped; forbidden characters shown as
/// `\u{..}`.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if forbidden(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// An attribute value in double quotes: also `"`, `'` and the white space
/// that attribute normalisation would fold (tab, newlines) as references.
pub fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push_str(&text(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(attr("\"x'\n\t\r"), "&quot;x&apos;&#10;&#9;&#13;");
        assert_eq!(text("\u{1b}[31m"), "\\u{1b}[31m");
        assert_eq!(text("é \u{85}"), "é \u{85}");
    }
}
