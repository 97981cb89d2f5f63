//! Text views written to standard output while they are formed: the
//! matrix of a dense cluster is hundreds of MiB of text, which need not be
//! held whole. Complete lines are passed on in chunks, each through the
//! same steps as a whole text (`escape_lines`, wrapping, colour), which
//! all work line by line, so the output is the same as printing the text
//! at once.

use std::fmt;
use std::io::Write;
use verdict_core::text::{escape_lines, IoText};

/// Chunks of about this many bytes are passed on.
const CHUNK: usize = 1 << 20;

/// A `fmt::Write` to standard output (or any writer), line-buffered in
/// chunks; finish it with [`Lines::finish`]. Write errors are kept by the
/// sink ([`IoText`]).
pub struct Lines<W: Write = std::io::BufWriter<std::io::StdoutLock<'static>>> {
    buf: String,
    /// The end of the last complete line in `buf` (0: none).
    lines_end: usize,
    out: IoText<W>,
}

impl Lines {
    /// To standard output.
    pub fn new() -> Lines {
        Lines::to(std::io::BufWriter::new(std::io::stdout().lock()))
    }
}

impl<W: Write> Lines<W> {
    pub fn to(out: W) -> Lines<W> {
        Lines {
            buf: String::new(),
            lines_end: 0,
            out: IoText::new(out),
        }
    }

    /// Passes on `text` (whole lines) as `print_wrapped` prints a text.
    fn pass(&mut self, upto: usize) -> fmt::Result {
        let text = self.buf.get(..upto).unwrap_or_default();
        let escaped = escape_lines(text);
        let wrapped = crate::wrap::wrap(&escaped);
        let written = fmt::Write::write_str(&mut self.out, &crate::style::paint(&wrapped));
        self.buf.drain(..upto);
        self.lines_end = self.lines_end.saturating_sub(upto);
        written
    }

    /// Writes what is left and flushes; a closed pipe is not an error.
    pub fn finish(self) -> Result<(), String> {
        match self.finish_into() {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(format!("writing standard output: {e}"))
            }
            _ => Ok(()),
        }
    }

    /// Writes what is left and flushes, giving the writer back.
    fn finish_into(mut self) -> std::io::Result<W> {
        if !self.out.failed() {
            let _ = self.pass(self.buf.len());
        }
        self.out.finish()
    }
}

impl<W: Write> fmt::Write for Lines<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.failed() {
            return Err(fmt::Error);
        }
        // Only the new text is searched for a line end: a line can be
        // longer than a chunk (a group of thousands of members).
        if let Some(end) = s.rfind('\n') {
            self.lines_end = self.buf.len() + end + 1;
        }
        self.buf.push_str(s);
        if self.lines_end >= CHUNK {
            return self.pass(self.lines_end);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// Pieces of any size, lines longer than a chunk and a last line
    /// without its newline come out as written (no colour, no terminal:
    /// the steps leave plain text as it is), once each.
    #[test]
    fn every_piece_comes_out_once_in_order() {
        let mut want = String::new();
        let mut lines = Lines::to(Vec::new());
        for i in 0..40_000 {
            let piece = match i % 3 {
                0 => format!("row {i}: a -> b on TCP/{i}\n"),
                1 => format!("part {i}; "),
                _ => "x".repeat(i % 97),
            };
            want.push_str(&piece);
            lines.write_str(&piece).unwrap();
        }
        // One line of 3 MiB, in pieces.
        for _ in 0..3 * 1024 {
            let piece = "y".repeat(1024);
            want.push_str(&piece);
            lines.write_str(&piece).unwrap();
        }
        want.push_str("\nlast line");
        lines.write_str("\nlast line").unwrap();
        let got = lines.finish_into().unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }

    /// Control characters are escaped as a whole text's are, even where a
    /// chunk ends.
    #[test]
    fn controls_are_escaped_in_every_chunk() {
        let mut lines = Lines::to(Vec::new());
        let line = format!("{}\u{1b}[31m\n", "z".repeat(1000));
        for _ in 0..3000 {
            lines.write_str(&line).unwrap();
        }
        let got = String::from_utf8(lines.finish_into().unwrap()).unwrap();
        assert_eq!(got, escape_lines(&line.repeat(3000)));
        assert!(!got.contains('\u{1b}'));
    }

    /// A reader that went away (`| head`) stops the writing without an error.
    #[test]
    fn a_closed_pipe_is_not_an_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut lines = Lines::to(Closed);
        let mut stopped = false;
        for _ in 0..100_000 {
            if lines.write_str("a line of text\n").is_err() {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        assert!(lines.finish().is_ok());
    }
}
