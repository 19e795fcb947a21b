//! Assembling one command from the input: a line, and for each literal
//! (`{n}`, `{n+}`, `~{n}`) its n bytes and the rest of the line, with limits
//! (hardening.md C-IM1, C-IM2, C-IM3): literals before login are small, the
//! literals of one command add up to a bound (APPEND: the message size limit),
//! and a line without CRLF cannot grow past the line limit.
//!
//! The message of an APPEND is not held in memory when it is large
//! (hardening.md C-FT9): a literal over [`SPOOL_OVER`] octets goes to a
//! spool file as it arrives, its place in the command is left empty
//! (`{0}`), and the session takes it with [`CommandReader::take_spooled`].

use bytes::{Buf, BytesMut};
use message::spool::{Spool, SpoolWriter, Spooled};
use net::line::{self, Line, LineReader};

/// An APPEND literal larger than this is spooled.
const SPOOL_OVER: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One line, CRLF included (Dovecot: 64 KiB).
    pub max_line: usize,
    /// All literals of a command before authentication.
    pub max_literal_before_auth: usize,
    /// All literals of a command after authentication, except APPEND.
    pub max_literals: usize,
    /// The literal of an APPEND: the largest message accepted.
    pub max_append: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The line passed the limit; the rest of it is being skipped.
    LineTooLong { tag: Option<String> },
    /// A synchronizing literal too large: refuse it, the client sends nothing more.
    LiteralTooLarge { tag: Option<String> },
    /// A non-synchronizing literal too large: its bytes are on their way and must
    /// not be read as commands, so the connection ends (C-IM3).
    NonSyncTooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A whole command, CRLF included.
    Command(Vec<u8>),
    Error(ReadError),
}

#[derive(Debug, Default)]
pub struct CommandReader {
    buf: Vec<u8>,
    literal_left: usize,
    literal_total: usize,
    /// The command's lines, and the rest of a long one still to skip.
    lines: LineReader,
    spool: Spool,
    /// The literal being spooled, and the one spooled for this command.
    spooling: Option<Spooling>,
    spooled: Option<std::io::Result<Spooled>>,
}

/// A literal on its way to the spool; after a write error its bytes are
/// still read (they are on their way), and dropped.
#[derive(Debug)]
enum Spooling {
    Writing(SpoolWriter),
    Failed(std::io::Error),
}

impl CommandReader {
    /// A reader whose large APPEND literals go to `spool`.
    pub fn with_spool(spool: Spool) -> CommandReader {
        CommandReader {
            spool,
            ..CommandReader::default()
        }
    }

    /// The message the last command's APPEND literal held, if it was
    /// spooled (an error if the spool could not be written).
    pub fn take_spooled(&mut self) -> Option<std::io::Result<Spooled>> {
        self.spooled.take()
    }

    /// Take what is there of the next command. `continuation` collects the
    /// "+ Ready" lines to send before a synchronizing literal.
    pub fn next(
        &mut self,
        input: &mut BytesMut,
        authenticated: bool,
        limits: &Limits,
        continuation: &mut Vec<u8>,
    ) -> Option<Read> {
        loop {
            if self.literal_left > 0 {
                let take = self.literal_left.min(input.len());
                match self.spooling.take() {
                    None => self.buf.extend_from_slice(&input[..take]),
                    Some(Spooling::Writing(mut w)) => {
                        self.spooling = Some(match w.write(&input[..take]) {
                            Ok(()) => Spooling::Writing(w),
                            Err(e) => Spooling::Failed(e),
                        });
                    }
                    failed @ Some(Spooling::Failed(_)) => self.spooling = failed,
                }
                input.advance(take);
                self.literal_left -= take;
                if self.literal_left > 0 {
                    return None;
                }
                self.spooled = match self.spooling.take() {
                    Some(Spooling::Writing(w)) => Some(w.finish()),
                    Some(Spooling::Failed(e)) => Some(Err(e)),
                    None => self.spooled.take(),
                };
            }
            let line_start = self.buf.len();
            if line_start == 0 {
                // A new command: what the last one spooled is not for it.
                self.spooled = None;
            }
            match self.lines.next(input, limits.max_line)? {
                Line::TooLong => return Some(self.fail(ReadError::LineTooLong { tag: None })),
                Line::Complete(line) => self.buf.extend_from_slice(&line),
            }
            let line = &self.buf[line_start..];
            let Some((n, sync)) = literal_marker(line) else {
                self.literal_total = 0;
                return Some(Read::Command(std::mem::take(&mut self.buf)));
            };
            let limit = if !authenticated {
                limits.max_literal_before_auth
            } else if is_append(&self.buf) {
                limits.max_append
            } else {
                limits.max_literals
            };
            self.literal_total = self.literal_total.saturating_add(n);
            if self.literal_total > limit {
                let tag = tag_of(&self.buf);
                return Some(if sync {
                    self.fail(ReadError::LiteralTooLarge { tag })
                } else {
                    self.fail(ReadError::NonSyncTooLarge)
                });
            }
            if sync {
                continuation.extend_from_slice(b"+ Ready for literal data\r\n");
            }
            if n > SPOOL_OVER && authenticated && self.spooled.is_none() && is_append(&self.buf) {
                leave_literal_empty(&mut self.buf);
                self.spooling = Some(Spooling::Writing(self.spool.writer()));
            }
            self.literal_left = n;
            if n == 0 {
                continue;
            }
        }
    }

    /// A line that is no command (IDLE's DONE, an AUTHENTICATE response),
    /// without its line end; one past the limit reads as an empty line.
    pub fn other_line(&mut self, input: &mut BytesMut, limits: &Limits) -> Option<Vec<u8>> {
        match self.lines.next(input, limits.max_line)? {
            Line::TooLong => Some(Vec::new()),
            Line::Complete(line) => Some(line::text(&line).to_vec()),
        }
    }

    fn fail(&mut self, e: ReadError) -> Read {
        let e = match e {
            ReadError::LineTooLong { .. } => ReadError::LineTooLong {
                tag: tag_of(&self.buf),
            },
            other => other,
        };
        self.buf.clear();
        self.literal_left = 0;
        self.literal_total = 0;
        self.spooling = None;
        self.spooled = None;
        Read::Error(e)
    }

    /// Forget a command in progress (after an error or a state change).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.literal_left = 0;
        self.literal_total = 0;
        self.lines.reset();
        self.spooling = None;
        self.spooled = None;
    }
}

/// `{n}\r\n`, `{n+}\r\n`, `{n-}\r\n`, `~{n}\r\n` at the end of a line: (n, synchronizing).
fn literal_marker(line: &[u8]) -> Option<(usize, bool)> {
    let line = line.strip_suffix(b"\r\n")?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    let inner = &line[open + 1..];
    let (digits, sync) = match inner.last() {
        Some(b'+' | b'-') => (&inner[..inner.len() - 1], false),
        _ => (inner, true),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((usize::try_from(n).unwrap_or(usize::MAX), sync))
}

/// Rewrite the literal marker ending `buf` (`{n}`, `{n+}`, `~{n}`) to
/// `{0}`: the literal's octets are kept elsewhere.
fn leave_literal_empty(buf: &mut Vec<u8>) {
    if let Some(open) = buf.iter().rposition(|&b| b == b'{') {
        buf.truncate(open);
        buf.extend_from_slice(b"{0}\r\n");
    }
}

fn tag_of(buf: &[u8]) -> Option<String> {
    let end = buf.iter().position(|&b| b == b' ')?;
    let tag = &buf[..end];
    (!tag.is_empty() && tag.len() < 64 && tag.iter().all(|b| b.is_ascii_graphic()))
        .then(|| String::from_utf8_lossy(tag).into_owned())
}

fn is_append(buf: &[u8]) -> bool {
    let mut words = buf.split(|&b| b == b' ');
    words.next();
    words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"APPEND"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_line: 1000,
        max_literal_before_auth: 100,
        max_literals: 1000,
        max_append: 5000,
    };

    fn feed(r: &mut CommandReader, bytes: &[u8], auth: bool) -> (Option<Read>, Vec<u8>) {
        let mut input = BytesMut::from(bytes);
        let mut cont = Vec::new();
        let got = r.next(&mut input, auth, &LIMITS, &mut cont);
        (got, cont)
    }

    #[test]
    fn literals_are_assembled() {
        let mut r = CommandReader::default();
        let (got, cont) = feed(&mut r, b"a LOGIN {5}\r\n", false);
        assert_eq!(got, None);
        assert_eq!(cont, b"+ Ready for literal data\r\n");
        let (got, _) = feed(&mut r, b"alice {2+}\r\npw\r\n", false);
        assert_eq!(
            got,
            Some(Read::Command(
                b"a LOGIN {5}\r\nalice {2+}\r\npw\r\n".to_vec()
            ))
        );
    }

    /// C-IM1: a huge literal before login is refused without reading it.
    #[test]
    fn big_literal_before_auth() {
        let mut r = CommandReader::default();
        let (got, cont) = feed(&mut r, b"a LOGIN {4294967295}\r\n", false);
        assert_eq!(
            got,
            Some(Read::Error(ReadError::LiteralTooLarge {
                tag: Some("a".into())
            }))
        );
        assert!(cont.is_empty());
        // C-IM3: non-synchronizing: the connection must end.
        let (got, _) = feed(&mut CommandReader::default(), b"a LOGIN {101+}\r\n", false);
        assert_eq!(got, Some(Read::Error(ReadError::NonSyncTooLarge)));
        // APPEND after login may be as big as a message.
        let (got, cont) = feed(
            &mut CommandReader::default(),
            b"a APPEND INBOX {4000}\r\n",
            true,
        );
        assert_eq!(got, None);
        assert!(!cont.is_empty());
    }

    /// C-IM2: many literals in one command add up.
    #[test]
    fn literals_add_up() {
        let mut r = CommandReader::default();
        let mut cmd = b"a SEARCH".to_vec();
        for _ in 0..3 {
            cmd.extend_from_slice(b" BODY {400+}\r\n");
            cmd.extend_from_slice(&[b'x'; 400]);
        }
        cmd.extend_from_slice(b"\r\n");
        let (got, _) = feed(&mut r, &cmd, true);
        assert_eq!(got, Some(Read::Error(ReadError::NonSyncTooLarge)));
    }

    /// C-FT9: a large APPEND literal is spooled, in whatever pieces it
    /// comes, and its place in the command left empty.
    #[test]
    fn a_large_append_literal_is_spooled() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::in_dir(dir.path()).unwrap();
        let limits = Limits {
            max_append: 1 << 20,
            ..LIMITS
        };
        let message: Vec<u8> = b"Subject: big\r\n\r\n"
            .iter()
            .copied()
            .chain((0..200_000u32).map(|i| b'a' + (i % 26) as u8))
            .collect();
        let mut r = CommandReader::with_spool(spool);
        let mut wire = format!("a APPEND INBOX (\\Seen) {{{}+}}\r\n", message.len()).into_bytes();
        wire.extend_from_slice(&message);
        wire.extend_from_slice(b"\r\nb NOOP\r\n");
        let mut input = BytesMut::new();
        let (mut got, mut spooled) = (Vec::new(), Vec::new());
        for piece in wire.chunks(7_000) {
            input.extend_from_slice(piece);
            while let Some(read) = r.next(&mut input, true, &limits, &mut Vec::new()) {
                // As the session does: it takes the message with the command.
                spooled.push(r.take_spooled());
                got.push(read);
            }
        }
        assert_eq!(
            got,
            [
                Read::Command(b"a APPEND INBOX (\\Seen) {0}\r\n\r\n".to_vec()),
                Read::Command(b"b NOOP\r\n".to_vec())
            ]
        );
        assert!(spooled[1].is_none(), "NOOP has no message");
        let spooled = spooled.remove(0).unwrap().unwrap();
        assert!(spooled.is_spooled());
        assert_eq!(&spooled.read_all().unwrap()[..], &message[..]);
        // Small literals stay in the command.
        let (got, _) = feed(&mut r, b"c APPEND INBOX {5+}\r\nhello\r\n", true);
        assert_eq!(
            got,
            Some(Read::Command(b"c APPEND INBOX {5+}\r\nhello\r\n".to_vec()))
        );
        assert!(r.take_spooled().is_none());
    }

    #[test]
    fn long_line_is_skipped() {
        let mut r = CommandReader::default();
        let (got, _) = feed(&mut r, &[b'x'; 2000], true);
        assert_eq!(got, Some(Read::Error(ReadError::LineTooLong { tag: None })));
        let (got, _) = feed(&mut r, b"xxxx\r\nb NOOP\r\n", true);
        assert_eq!(got, Some(Read::Command(b"b NOOP\r\n".to_vec())));
    }

    /// C-IM2: a long line with the next command behind it in one read:
    /// one error, then that command (it once went with the long line's
    /// tail, and the command after it was skipped as that line's rest).
    #[test]
    fn a_long_line_and_the_command_behind_it_in_one_read() {
        let mut r = CommandReader::default();
        let mut input = BytesMut::from(&[&[b'x'; 2000][..], b"\r\nb NOOP\r\n"].concat()[..]);
        let mut cont = Vec::new();
        let too_long = Read::Error(ReadError::LineTooLong { tag: None });
        assert_eq!(r.next(&mut input, true, &LIMITS, &mut cont), Some(too_long));
        let noop = Read::Command(b"b NOOP\r\n".to_vec());
        assert_eq!(r.next(&mut input, true, &LIMITS, &mut cont), Some(noop));
    }
}
