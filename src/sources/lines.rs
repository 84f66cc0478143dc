//! Cutting a stream of bytes into lines with bounded memory.
//!
//! Only a `\n` ends a line: the start of a line whose end has not been written yet waits here until the
//! rest arrives, so a line written in two pieces is handed on once, whole. A line longer than the limit
//! is skipped whole: once it outgrows the limit its bytes are counted and dropped, never kept, until its
//! `\n` comes; the lines after it are unaffected.

/// What the splitter found in the bytes it was fed.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A complete line, without its `\n` and without a `\r` before it.
    Line(&'a [u8]),
    /// A line longer than the limit, skipped; its length in bytes (without the `\n`).
    TooLong(u64),
}

pub struct LineSplitter {
    max_line_bytes: usize,
    /// The start of a line whose `\n` has not been read yet; never longer than `max_line_bytes`.
    partial: Vec<u8>,
    /// While skipping a line that outgrew the limit: how many of its bytes were seen so far.
    skipping: Option<u64>,
}

impl LineSplitter {
    pub fn new(max_line_bytes: usize) -> LineSplitter {
        LineSplitter {
            max_line_bytes,
            partial: Vec::new(),
            skipping: None,
        }
    }

    /// Makes the next line a skipped one, of which `seen` bytes were already passed over (used when
    /// reading starts inside a line that is already too long).
    pub fn skip_current_line(&mut self, seen: u64) {
        self.partial.clear();
        self.skipping = Some(seen);
    }

    /// Feeds the next bytes of the stream. `on_piece` gets every line that ends in `chunk`, with the
    /// index in `chunk` just after the line's `\n`.
    pub fn push(&mut self, chunk: &[u8], mut on_piece: impl FnMut(Piece<'_>, usize)) {
        let mut start = 0;
        for newline in memchr::memchr_iter(b'\n', chunk) {
            let body = &chunk[start..newline];
            let end = newline + 1;
            start = end;
            if let Some(seen) = self.skipping.take() {
                on_piece(Piece::TooLong(seen + body.len() as u64), end);
            } else if self.partial.len() + body.len() > self.max_line_bytes {
                let length = (self.partial.len() + body.len()) as u64;
                self.partial.clear();
                on_piece(Piece::TooLong(length), end);
            } else if self.partial.is_empty() {
                // The common case: the whole line is in this chunk, no copy needed.
                on_piece(Piece::Line(strip_carriage_return(body)), end);
            } else {
                self.partial.extend_from_slice(body);
                on_piece(Piece::Line(strip_carriage_return(&self.partial)), end);
                self.partial.clear();
            }
        }
        let rest = &chunk[start..];
        if let Some(seen) = &mut self.skipping {
            *seen += rest.len() as u64;
        } else if self.partial.len() + rest.len() > self.max_line_bytes {
            // Checked before copying, so the buffer never holds more than the limit.
            self.skipping = Some((self.partial.len() + rest.len()) as u64);
            self.partial.clear();
        } else {
            self.partial.extend_from_slice(rest);
        }
    }

    /// Ends the stream (the file was rotated away or truncated, nothing more will follow these bytes):
    /// hands on its unterminated last line, if there is one, and starts afresh.
    pub fn finish(&mut self, mut on_piece: impl FnMut(Piece<'_>)) {
        if let Some(seen) = self.skipping.take() {
            on_piece(Piece::TooLong(seen));
        } else if !self.partial.is_empty() {
            on_piece(Piece::Line(strip_carriage_return(&self.partial)));
            self.partial.clear();
        }
    }
}

fn strip_carriage_return(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` and returns what came out, lines as text, with their end offsets in the stream.
    fn split(max_line_bytes: usize, chunks: &[&[u8]]) -> (Vec<(String, u64)>, Vec<u64>) {
        let mut splitter = LineSplitter::new(max_line_bytes);
        let (mut lines, mut too_long) = (Vec::new(), Vec::new());
        let mut offset = 0;
        for chunk in chunks {
            splitter.push(chunk, |piece, end| match piece {
                Piece::Line(line) => lines.push((
                    String::from_utf8_lossy(line).into_owned(),
                    offset + end as u64,
                )),
                Piece::TooLong(length) => too_long.push(length),
            });
            offset += chunk.len() as u64;
        }
        (lines, too_long)
    }

    #[test]
    fn a_line_split_across_chunks_comes_out_once_whole() {
        let (lines, _) = split(100, &[b"one\ntw", b"o\r\nthr", b"ee"]);
        assert_eq!(lines, vec![("one".to_string(), 4), ("two".to_string(), 9)]);
    }

    #[test]
    fn a_too_long_line_is_skipped_whole_and_the_next_lines_survive() {
        let (lines, too_long) = split(4, &[b"ok\n0123", b"456", b"789\nfine\n", b"12345\n"]);
        assert_eq!(lines, vec![("ok".to_string(), 3), ("fine".to_string(), 19)]);
        assert_eq!(too_long, vec![10, 5]);
    }

    #[test]
    fn the_buffer_never_holds_more_than_the_limit() {
        let mut splitter = LineSplitter::new(8);
        splitter.push(b"1234567", |_, _| panic!("no line yet"));
        splitter.push(b"89abcdef", |_, _| panic!("no line yet"));
        assert!(
            splitter.partial.is_empty(),
            "the overlong start was dropped, not kept"
        );
        assert_eq!(splitter.skipping, Some(15));
    }

    #[test]
    fn finish_hands_on_the_unterminated_fragment_once() {
        let mut splitter = LineSplitter::new(100);
        splitter.push(b"whole\nfragm", |_, _| {});
        let mut pieces = Vec::new();
        splitter.finish(|piece| pieces.push(format!("{piece:?}")));
        splitter.finish(|piece| pieces.push(format!("{piece:?}")));
        assert_eq!(pieces, vec![format!("{:?}", Piece::Line(b"fragm"))]);
    }
}
