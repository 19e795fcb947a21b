//! Command lines of bounded length, read the same however the input
//! arrives (hardening.md C-SM6, C-IM2).
//!
//! A line longer than the limit is never buffered: it is reported once,
//! and its octets are dropped up to and including its LF, whether that LF
//! is already in the input or comes in a later read. What follows the LF
//! is the next line. (Dropping the whole read instead lost the commands a
//! client had sent behind the long line, and then took the next command
//! it sent for the long line's rest: the client waited for a reply that
//! never came.)

use bytes::{Buf, BytesMut};

/// What [`LineReader::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line of at most the limit, its LF included.
    Complete(BytesMut),
    /// A line longer than the limit; the rest of it is being skipped.
    TooLong,
}

/// Takes lines from a session's input, remembering a long line whose end
/// has not arrived yet.
#[derive(Debug, Default)]
pub struct LineReader {
    skipping: bool,
}

impl LineReader {
    /// The next line of `input`, of at most `limit` octets with its LF;
    /// `None` while it is incomplete.
    pub fn next(&mut self, input: &mut BytesMut, limit: usize) -> Option<Line> {
        if self.skipping && !self.skip_rest(input) {
            return None;
        }
        match input.iter().take(limit).position(|&b| b == b'\n') {
            Some(lf) => Some(Line::Complete(input.split_to(lf + 1))),
            None if input.len() >= limit => {
                self.skipping = true;
                self.skip_rest(input);
                Some(Line::TooLong)
            }
            None => None,
        }
    }

    /// Forget a long line being skipped.
    pub fn reset(&mut self) {
        self.skipping = false;
    }

    /// Drops the long line's octets in `input`: true once its LF is gone.
    fn skip_rest(&mut self, input: &mut BytesMut) -> bool {
        match input.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                input.advance(lf + 1);
                self.skipping = false;
                true
            }
            None => {
                input.clear();
                false
            }
        }
    }
}

/// A line's text without its line end (CRLF, or an LF alone where the
/// protocol takes one: POP3, IMAP).
pub fn text(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line and long-line report in `pieces` fed in order.
    fn lines(pieces: &[&[u8]], limit: usize) -> Vec<Option<Vec<u8>>> {
        let mut reader = LineReader::default();
        let mut input = BytesMut::new();
        let mut seen = Vec::new();
        for piece in pieces {
            input.extend_from_slice(piece);
            while let Some(line) = reader.next(&mut input, limit) {
                seen.push(match line {
                    Line::Complete(l) => Some(l.to_vec()),
                    Line::TooLong => None,
                });
            }
            assert!(input.len() < limit, "never more than a line is held");
        }
        seen
    }

    #[test]
    fn a_long_line_is_told_once_and_what_follows_it_is_read() {
        let input = [&b"NOOP\r\n"[..], &[b'x'; 30], b"\r\nQUIT\r\n", &[b'y'; 25]].concat();
        let expected = vec![
            Some(b"NOOP\r\n".to_vec()),
            None,
            Some(b"QUIT\r\n".to_vec()),
            None,
        ];
        assert_eq!(lines(&[&input], 10), expected);
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(lines(&[a, b], 10), expected, "split at {split}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(lines(&bytes, 10), expected, "one octet at a time");
    }

    #[test]
    fn the_limit_counts_the_line_end() {
        assert_eq!(
            lines(&[b"12345678\r\n"], 10),
            vec![Some(b"12345678\r\n".to_vec())]
        );
        assert_eq!(
            lines(&[b"123456789\r\nA\n"], 10),
            vec![None, Some(b"A\n".to_vec())]
        );
    }

    #[test]
    fn a_reset_forgets_the_long_line() {
        let mut reader = LineReader::default();
        let mut input = BytesMut::from(&[b'x'; 20][..]);
        assert_eq!(reader.next(&mut input, 10), Some(Line::TooLong));
        reader.reset();
        input.extend_from_slice(b"A\r\n");
        assert_eq!(
            reader.next(&mut input, 10),
            Some(Line::Complete(BytesMut::from(&b"A\r\n"[..])))
        );
    }
}
