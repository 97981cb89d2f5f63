//! Colour on terminals: verdicts `allowed` green, `denied` red, rule
//! locations (`[file:line]`, `(file:line)`) dim.
//!
//! `--color auto` (the default) colours only when standard output is a
//! terminal and neither `NO_COLOR` is set nor `TERM=dumb` (anstream's
//! rules; `CLICOLOR_FORCE` forces colour); `always` and `never` decide alone.
//! Colour is added to text that was already escaped: names from the input
//! cannot carry escape sequences (see `verdict_core::text`), so every escape
//! sequence in the output is one of ours.

use anstyle::{AnsiColor, Style};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// Colour when standard output is a terminal and NO_COLOR is not set
    Auto,
    /// Always colour (even into a pipe or a file)
    Always,
    /// Never colour
    Never,
}

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Decides once, for standard output, whether text output is coloured.
pub fn init(when: ColorWhen) {
    let on = match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => {
            anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
        }
    };
    let _ = ENABLED.set(on);
}

pub fn enabled() -> bool {
    ENABLED.get().copied().unwrap_or(false)
}

const ALLOWED: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
const DENIED: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
const LOCATION: Style = Style::new().dimmed();

/// `text` coloured when colour is on, else unchanged.
pub fn paint(text: &str) -> std::borrow::Cow<'_, str> {
    if enabled() {
        std::borrow::Cow::Owned(colorize(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Characters that continue a word or a name: `allowed` inside
/// `not-allowed-app` or `shop/denied` is part of a name, not a verdict.
fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '/' | '.' | ':' | '=')
}

/// Adds the styles to every line of `text`.
pub fn colorize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut rest = text;
    while !rest.is_empty() {
        let c = rest.chars().next().unwrap_or(' ');
        let prev_is_name = out.chars().next_back().is_some_and(name_char);
        if !prev_is_name {
            if let Some((word, style)) = verdict_word(rest) {
                out.push_str(&format!("{style}{word}{style:#}"));
                rest = &rest[word.len()..];
                continue;
            }
        }
        if c == '[' || c == '(' {
            if let Some(len) = location_len(rest) {
                let loc = &rest[..len];
                out.push_str(&format!("{LOCATION}{loc}{LOCATION:#}"));
                rest = &rest[len..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A verdict word at the start of `s`, ending at a word boundary.
fn verdict_word(s: &str) -> Option<(&str, Style)> {
    const WORDS: &[(&str, bool)] = &[
        ("allowed", true),
        ("ALLOWED", true),
        ("delivered", true),
        ("denied", false),
        ("DENIED", false),
    ];
    WORDS.iter().find_map(|(w, ok)| {
        let after = s.strip_prefix(w)?;
        if after.chars().next().is_some_and(name_char) && !after.starts_with(':') {
            return None;
        }
        Some((&s[..w.len()], if *ok { ALLOWED } else { DENIED }))
    })
}

/// The length of a location `[file:line]` or `(file:line[:col])` at the start
/// of `s`: a bracketed run without spaces that ends in `:` and digits.
fn location_len(s: &str) -> Option<usize> {
    let close = if s.starts_with('[') { ']' } else { ')' };
    let end = s.find(close)?;
    let inner = &s[1..end];
    if inner.is_empty() || inner.contains(char::is_whitespace) || inner.contains(['[', '(']) {
        return None;
    }
    let (file, line) = inner.rsplit_once(':')?;
    let (file, line) = match file.rsplit_once(':') {
        // file:line:col
        Some((f, l)) if l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty() => (f, l),
        _ => (file, line),
    };
    if file.is_empty() || line.is_empty() || !line.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_locations() {
        let s = colorize("ingress: denied\n  x -> y: allowed - by p [a/b.yaml:25]");
        assert!(s.contains("\u{1b}[31mdenied\u{1b}[0m"), "{s:?}");
        assert!(s.contains("\u{1b}[32mallowed\u{1b}[0m"), "{s:?}");
        assert!(s.contains("\u{1b}[2m[a/b.yaml:25]\u{1b}[0m"), "{s:?}");
    }

    #[test]
    fn names_are_not_verdicts() {
        for t in [
            "not-allowed-app",
            "shop/denied",
            "allowedx",
            "(no location)",
            "[x]",
        ] {
            assert_eq!(colorize(t), t);
        }
    }

    #[test]
    fn verdict_before_colon_is_coloured() {
        assert!(colorize("DENIED: x").starts_with("\u{1b}[31mDENIED"));
    }
}
