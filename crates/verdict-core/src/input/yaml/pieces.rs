//! Where a large YAML text is cut so that its pieces can be parsed on
//! separate threads ([`super::parse_with_issues`]).

/// Texts shorter than this are parsed in one piece: below it, starting a
/// thread costs more than it saves.
const PIECE_MIN_BYTES: usize = 1 << 20;

/// Where to cut `text` for `threads` threads: (start, end, lines before
/// start) of each piece, every piece but the first starting at a line `---`
/// (optionally followed by blanks or a comment). One piece when the text is
/// small, holds a directive line, or has no separator to cut at.
pub(super) fn pieces(text: &str, threads: usize) -> Vec<(usize, usize, usize)> {
    let want = threads.min(text.len() / PIECE_MIN_BYTES).max(1);
    if want < 2 || text.starts_with('%') || text.contains("\n%") {
        return vec![(0, text.len(), 0)];
    }
    let mut cuts: Vec<usize> = Vec::with_capacity(want);
    for k in 1..want {
        let mut from = (text.len() / want * k).max(cuts.last().copied().unwrap_or(0));
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let Some(cut) = next_separator(text, from) else {
            break;
        };
        if cuts.last() != Some(&cut) {
            cuts.push(cut);
        }
    }
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let (mut start, mut lines) = (0usize, 0usize);
    for cut in cuts {
        out.push((start, cut, lines));
        lines += text.as_bytes()[start..cut]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        start = cut;
    }
    out.push((start, text.len(), lines));
    out
}

/// The start of the first line at or after `from` (`from` excluded when it
/// is not a line start) that is a document separator.
fn next_separator(text: &str, from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(i) = text.get(at..)?.find("\n---") {
        let line = at + i + 1;
        let rest = text.get(line + 3..).unwrap_or("");
        if rest.is_empty() || rest.starts_with(['\n', '\r', ' ', '\t']) {
            return Some(line);
        }
        at = line;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::{parse_piece, parse_sequential, parse_with_issues};
    use super::*;

    /// `n` small objects, each its own document; `odd(i)` may replace one.
    fn stream(n: usize, odd: impl Fn(usize) -> Option<String>) -> String {
        (0..n)
            .map(|i| {
                odd(i).unwrap_or_else(|| {
                    format!(
                        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\n  labels: {{app: a{i}}}\nspec:\n  containers:\n  - name: c\n    image: x\n"
                    )
                })
            })
            .collect()
    }

    fn same_as_sequential(text: &str) {
        let a = parse_with_issues(text);
        let b = parse_sequential(text);
        assert_eq!(format!("{:?}", a.0), format!("{:?}", b.0));
        assert_eq!(a.1, b.1);
    }

    #[test]
    fn cuts_fall_on_separator_lines_and_count_the_lines_before() {
        let text = stream(40_000, |_| None);
        let cuts = pieces(&text, 4);
        assert_eq!(
            cuts.len(),
            4,
            "a text of {} bytes is cut for 4 threads",
            text.len()
        );
        for w in cuts.windows(2) {
            assert_eq!(w[0].1, w[1].0, "pieces are contiguous");
        }
        for &(start, _, lines) in &cuts {
            assert!(text[start..].starts_with("---\n"));
            assert_eq!(lines, text[..start].matches('\n').count());
        }
        // `----` and `---x` are not separators; `--- # c` is.
        assert_eq!(next_separator("a\n----\nb\n---x\n--- # c\n", 0), Some(14));
        assert_eq!(next_separator("a: 1\n---", 0), Some(5));
        assert_eq!(next_separator("a: 1\n", 0), None);
    }

    #[test]
    fn small_texts_and_directives_are_one_piece() {
        assert_eq!(pieces("a: 1\n---\nb: 2\n", 8).len(), 1);
        let text = stream(40_000, |i| {
            (i == 20_000).then(|| "%YAML 1.2\n---\nd: 1\n".into())
        });
        assert_eq!(pieces(&text, 4).len(), 1);
    }

    #[test]
    fn pieces_read_as_one_stream() {
        // Duplicate keys (issues, with their lines) and syntax errors in
        // documents of every piece.
        let text = stream(40_000, |i| match i % 9_999 {
            7 => Some(format!("---\nkind: Pod\nkind: Service\nn: {i}\n")),
            11 => Some("---\na: [1, 2\nb: 3\n".into()),
            _ => None,
        });
        assert!(pieces(&text, 2).len() == 2);
        let (docs, issues) = parse_with_issues(&text);
        assert_eq!(docs.len(), 40_000);
        assert_eq!(issues.len(), 4);
        same_as_sequential(&text);
        // The line of the last document is counted across every cut.
        let last = text.matches('\n').count() - 8;
        assert!(
            matches!(docs.last(), Some(super::super::Document::Ok(n)) if n.pos.line as usize == last)
        );
    }

    #[test]
    fn a_piece_ending_in_a_syntax_error_falls_back_to_one_stream() {
        // An unterminated quoted string just before the cut: read alone,
        // the first piece ends in an error, so the text is read in one.
        let probe = stream(40_000, |_| None);
        let cut = pieces(&probe, 2)[1].0;
        let at = probe[..cut].matches("---\n").count() - 1;
        let len = stream(at + 1, |_| None).len() - stream(at, |_| None).len();
        let text = stream(40_000, |i| {
            (i == at).then(|| format!("---\na: \"open{}\n", " ".repeat(len - 13)))
        });
        assert_eq!(text.len(), probe.len());
        let first = pieces(&text, 2)[0];
        let (docs, _) = parse_piece(&text[first.0..first.1], 0);
        assert!(matches!(
            docs.last(),
            Some(super::super::Document::Err { .. })
        ));
        same_as_sequential(&text);
    }
}
