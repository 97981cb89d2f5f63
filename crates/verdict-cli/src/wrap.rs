//! Long lines of text output wrapped to the terminal width, with a hanging
//! indent: a continuation starts four columns right of its line's own
//! indentation, so the tree of hops and checks stays readable.
//!
//! On a terminal the width is the terminal's (`terminal_size`); into a pipe
//! or a file nothing is wrapped unless `--width N` is given (`--width 0`
//! never wraps). Lines are wrapped before colour is added, so the width is
//! computed on the text a person reads, and only at spaces: a file path,
//! a rule name or a URL longer than the width is kept whole, never split.

use std::io::IsTerminal;
use std::sync::OnceLock;

static WIDTH: OnceLock<Option<usize>> = OnceLock::new();

/// Narrower widths are taken as this one: a continuation needs room.
const MIN_WIDTH: usize = 30;

/// Decides once the width text output is wrapped to, if any.
pub fn init(width: Option<usize>) {
    let w = match width {
        Some(0) => None,
        Some(n) => Some(n),
        None if std::io::stdout().is_terminal() => {
            // A pseudo-terminal that was never sized reports 0 columns.
            terminal_size::terminal_size_of(std::io::stdout())
                .map(|(w, _)| usize::from(w.0))
                .filter(|w| *w > 0)
        }
        None => None,
    };
    let _ = WIDTH.set(w.map(|w| w.max(MIN_WIDTH)));
}

/// `text` with every line longer than the width wrapped (unchanged when
/// not wrapping).
pub fn wrap(text: &str) -> std::borrow::Cow<'_, str> {
    match WIDTH.get().copied().flatten() {
        Some(w) => std::borrow::Cow::Owned(wrap_to(text, w)),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// Wraps every line of `text` longer than `width` columns at spaces, each
/// continuation indented four columns more than its line.
pub fn wrap_to(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if textwrap::core::display_width(body) <= width {
            out.push_str(line);
            continue;
        }
        let rest = body.trim_start_matches(' ');
        let indent = &body[..body.len() - rest.len()];
        let hanging = format!("{indent}    ");
        let opts = textwrap::Options::new(width)
            .initial_indent(indent)
            .subsequent_indent(&hanging)
            .break_words(false)
            .word_splitter(textwrap::WordSplitter::NoHyphenation);
        out.push_str(&textwrap::wrap(rest, opts).join("\n"));
        out.push_str(newline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::wrap_to;

    #[test]
    fn long_lines_wrap_with_a_hanging_indent() {
        let text =
            "short\n  at the backend (ingress): ingress -> shop/deployment/api TCP/8080: denied\n";
        let got = wrap_to(text, 40);
        assert_eq!(
            got,
            "short\n  at the backend (ingress): ingress ->\n      shop/deployment/api TCP/8080:\n      denied\n"
        );
    }

    #[test]
    fn long_words_are_never_split() {
        let got = wrap_to("x examples/a/very/long/path/to/policies.yaml:12 y", 30);
        assert_eq!(
            got,
            "x\n    examples/a/very/long/path/to/policies.yaml:12\n    y"
        );
    }
}
