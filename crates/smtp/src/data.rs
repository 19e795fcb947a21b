//! The message content of DATA (RFC 5321 §4.1.1.4, §4.5.2) and BDAT (RFC 3030).
//!
//! A byte-level state machine that never looks further back than one byte, so
//! input can arrive split anywhere:
//! - DATA ends only at CRLF "." CRLF. Any other ending (`\n.\n`, `\r.\r`,
//!   `\n.\r\n`...) is content (hardening.md C-SM1, C-SM2).
//! - A CR not followed by LF, or an LF not preceded by CR, marks the message as
//!   refused (C-SM3): it is read to its end and answered with one 554, never stored.
//! - Dot-stuffing is undone: a line starting with "." loses that dot (§4.5.2).
//! - Limits: message size (C-SM18: bytes past the limit are not kept), text line
//!   length when configured (C-SM7: off by default, long lines are accepted),
//!   header section size (C-MM3, C-MM4).
//! - The content goes to a [`SpoolWriter`]: past 64 KiB it is in a spool
//!   file, so a session's memory does not grow with the message (C-FT9). A
//!   spool that cannot be written (a full disk) refuses the message with a
//!   temporary reply (C-FT5).

use message::spool::{Spool, SpoolWriter, Spooled};

use crate::error::SmtpError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// DATA: a "." at the start of a line (already dropped).
    Dot,
    /// DATA: "." CR at the start of a line: the end, if LF follows.
    DotCr,
    /// Inside a line.
    Mid,
    /// Inside a line, after a CR.
    MidCr,
}

#[derive(Debug, Clone, Copy)]
pub struct DataLimits {
    pub max_size: u64,
    /// RFC 5321 §4.5.3.1.6: 1000 octets including CRLF, when enforced.
    pub max_line: Option<usize>,
    pub max_header: usize,
}

#[derive(Debug)]
pub struct DataReader {
    limits: DataLimits,
    /// DATA (dot-terminated, dot-stuffed) or BDAT (counted, raw).
    dot_mode: bool,
    state: State,
    /// None once the message is refused: the rest is only counted.
    body: Option<SpoolWriter>,
    size: u64,
    line_len: usize,
    in_header: bool,
    header_len: usize,
    problem: Option<SmtpError>,
}

impl DataReader {
    pub fn new(limits: DataLimits, dot_mode: bool, spool: &Spool) -> DataReader {
        DataReader {
            limits,
            dot_mode,
            state: State::LineStart,
            body: Some(spool.writer()),
            size: 0,
            line_len: 0,
            in_header: true,
            header_len: 0,
            problem: None,
        }
    }

    /// Take content from `data`. In DATA mode, returns `Some(n)` when the end marker
    /// was found after `n` bytes (the rest belongs to the next command).
    pub fn feed(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.state {
                State::LineStart if self.dot_mode && b == b'.' => {
                    self.state = State::Dot;
                    i += 1;
                }
                State::LineStart => self.state = State::Mid,
                State::Dot if b == b'\r' => {
                    self.state = State::DotCr;
                    i += 1;
                }
                // A stuffed dot: it is gone, the line goes on.
                State::Dot => self.state = State::Mid,
                State::DotCr if b == b'\n' => {
                    self.state = State::LineStart;
                    return Some(i + 1);
                }
                State::DotCr => {
                    self.mark(SmtpError::BareLineEnding);
                    self.emit(b"\r");
                    self.state = State::Mid;
                }
                State::Mid => {
                    let rest = &data[i..];
                    match rest.iter().position(|&c| c == b'\r' || c == b'\n') {
                        None => {
                            self.emit(rest);
                            i = data.len();
                        }
                        Some(j) => {
                            self.emit(&rest[..j]);
                            i += j + 1;
                            if rest[j] == b'\r' {
                                self.state = State::MidCr;
                            } else {
                                // A bare LF is not a line end: "\n.\n" and "\n.\r\n" stay content.
                                self.mark(SmtpError::BareLineEnding);
                                self.emit(b"\n");
                            }
                        }
                    }
                }
                State::MidCr if b == b'\n' => {
                    self.emit(b"\r\n");
                    self.end_line();
                    self.state = State::LineStart;
                    i += 1;
                }
                State::MidCr => {
                    self.mark(SmtpError::BareLineEnding);
                    self.emit(b"\r");
                    self.state = State::Mid;
                }
            }
        }
        None
    }

    /// The message, or the first problem found in it. BDAT content may end anywhere
    /// but inside a CR LF pair.
    pub fn finish(mut self) -> Result<Spooled, SmtpError> {
        if self.state == State::MidCr {
            self.mark(SmtpError::BareLineEnding);
        }
        if let Some(p) = self.problem {
            return Err(p);
        }
        match self.body {
            Some(body) if !body.is_empty() => body.finish().map_err(spool_error),
            _ => Err(SmtpError::EmptyMessage),
        }
    }

    /// Bytes of content taken so far (after unstuffing).
    pub fn size(&self) -> u64 {
        self.size
    }

    fn emit(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.mark_first_limit_crossed(bytes.len());
        self.size += bytes.len() as u64;
        self.line_len += bytes.len();
        if self.in_header {
            self.header_len += bytes.len();
        }
        if self.problem.is_none()
            && let Some(body) = &mut self.body
            && let Err(e) = body.write(bytes)
        {
            self.mark(spool_error(e));
        }
    }

    /// Marks the limit that `n` more octets cross first (at the same octet:
    /// header, then size, then line), so the reply does not depend on the
    /// pieces the content arrived in (C-FZ5).
    fn mark_first_limit_crossed(&mut self, n: usize) {
        let room = |used: usize, max: usize| max.saturating_sub(used);
        let header = if self.in_header {
            room(self.header_len, self.limits.max_header)
        } else {
            usize::MAX
        };
        let size =
            usize::try_from(self.limits.max_size.saturating_sub(self.size)).unwrap_or(usize::MAX);
        let line = self
            .limits
            .max_line
            .map_or(usize::MAX, |max| room(self.line_len, max));
        let first = [
            (header, SmtpError::HeaderTooBig),
            (size, SmtpError::MessageTooBig),
            (line, SmtpError::TextLineTooLong),
        ]
        .into_iter()
        .filter(|(room, _)| *room < n)
        .min_by_key(|(room, _)| *room);
        if let Some((_, problem)) = first {
            self.mark(problem);
        }
    }

    fn end_line(&mut self) {
        // The empty line ends the header section (RFC 5322 §2.1).
        if self.in_header && self.line_len == 2 {
            self.in_header = false;
        }
        self.line_len = 0;
    }

    /// Remember the first problem; stop keeping content (the message will be refused).
    fn mark(&mut self, problem: SmtpError) {
        if self.problem.is_none() {
            self.problem = Some(problem);
            self.body = None;
        }
    }
}

/// The spool could not be written: 452 4.3.1 for a full disk, else 451 4.3.0.
pub(crate) fn spool_error(e: std::io::Error) -> SmtpError {
    tracing::error!(error = %e, "spool: cannot keep the message being received");
    SmtpError::Store(store::StoreError::from(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DataLimits = DataLimits {
        max_size: 1 << 20,
        max_line: Some(1000),
        max_header: 1 << 16,
    };

    fn data(input: &[u8]) -> (Option<usize>, Result<Vec<u8>, SmtpError>) {
        let mut r = reader(LIMITS, true);
        let end = r.feed(input);
        (end, r.finish().map(|s| s.head().to_vec()))
    }

    fn reader(limits: DataLimits, dot_mode: bool) -> DataReader {
        DataReader::new(limits, dot_mode, &Spool::memory())
    }

    #[test]
    fn unstuffs_and_ends_at_crlf_dot_crlf() {
        let (end, body) = data(b"Subject: x\r\n\r\n..leading dot\r\n.\r\nMAIL FROM:<>\r\n");
        assert_eq!(end, Some(32));
        assert_eq!(body.unwrap(), b"Subject: x\r\n\r\n.leading dot\r\n");
    }

    #[test]
    fn any_split_gives_the_same_result() {
        let input = b"A: b\r\n\r\n..x\r\nline\r\n.\r\n";
        for split in 0..input.len() {
            let mut r = reader(LIMITS, true);
            let first = r.feed(&input[..split]);
            assert_eq!(first, None, "split {split}");
            let second = r.feed(&input[split..]);
            assert_eq!(
                second.map(|n| n + split),
                Some(input.len()),
                "split {split}"
            );
            assert_eq!(r.finish().unwrap().head(), b"A: b\r\n\r\n.x\r\nline\r\n");
        }
    }

    /// C-SM1, C-SM2: none of these endings ends the data; each marks the message refused.
    #[test]
    fn smuggling_endings_are_content() {
        for ending in [
            &b"\n.\n"[..],
            b"\r.\r",
            b"\r.\n",
            b"\n.\r",
            b"\n.\r\n",
            b"\r\n.\n",
            b"\r.\r\n",
            b"\r\n.\r",
        ] {
            let mut input = b"Subject: x\r\n\r\nbody".to_vec();
            input.extend_from_slice(ending);
            input.extend_from_slice(
                b"MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\nSmuggled\r\n",
            );
            let (end, result) = data(&[input.clone(), b".\r\n".to_vec()].concat());
            assert_eq!(end, Some(input.len() + 3), "{ending:?}");
            assert_eq!(result, Err(SmtpError::BareLineEnding), "{ending:?}");
        }
        // A NUL before the dot is content too, but no line-ending crime.
        let (end, _) = data(b"A: b\r\n\r\nx\r\n\x00.\r\nmore\r\n.\r\n");
        assert_eq!(end, Some(24));
    }

    #[test]
    fn limits() {
        let mut r = reader(
            DataLimits {
                max_size: 10,
                ..LIMITS
            },
            true,
        );
        assert_eq!(r.feed(b"0123456789abcdef\r\n.\r\n"), Some(21));
        assert_eq!(r.finish().err(), Some(SmtpError::MessageTooBig));
        let long = [vec![b'x'; 1000], b"\r\n.\r\n".to_vec()].concat();
        assert_eq!(data(&long).1, Err(SmtpError::TextLineTooLong));
        let ok = [vec![b'x'; 998], b"\r\n.\r\n".to_vec()].concat();
        assert!(data(&ok).1.is_ok());
        let mut r = reader(
            DataLimits {
                max_header: 20,
                ..LIMITS
            },
            true,
        );
        r.feed(b"A: 0123456789\r\nB: 0123456789\r\n\r\n.\r\n");
        assert_eq!(r.finish().err(), Some(SmtpError::HeaderTooBig));
        assert_eq!(data(b".\r\n").1, Err(SmtpError::EmptyMessage));
    }

    /// The reply names the limit the content crossed first, however the
    /// content was split (found by fuzzing `smtp_data`, C-FZ5: a 5,000-octet
    /// header line read in one piece was "header too big", in two pieces
    /// "line too long").
    #[test]
    fn the_first_limit_crossed_is_told_however_the_content_is_split() {
        let limits = DataLimits {
            max_header: 4096,
            ..LIMITS
        };
        // 35 header lines of 100 octets: the header limit is crossed 597
        // octets into the long line, before its 1,001st.
        let short_lines = format!("X: {}\r\n", "y".repeat(95)).repeat(35);
        let cases = [
            ("", SmtpError::TextLineTooLong),
            ("A: b\r\n", SmtpError::TextLineTooLong),
            (short_lines.as_str(), SmtpError::HeaderTooBig),
        ];
        for (before, first) in cases {
            let input = [before.as_bytes(), &[b'x'; 5000], b"\r\n\r\nbody\r\n.\r\n"].concat();
            for split in [0, 1, 999, 1001, 3000, 4096, 5000, input.len()] {
                let mut r = reader(limits, true);
                let end = match r.feed(&input[..split]) {
                    Some(n) => Some(n),
                    None => r.feed(&input[split..]).map(|n| n + split),
                };
                assert_eq!(end, Some(input.len()), "split {split}");
                assert_eq!(r.finish().err(), Some(first.clone()), "split {split}");
            }
        }
    }

    /// C-FT5, C-FT6: a spool that cannot be written is a temporary refusal,
    /// "insufficient storage" when the disk is full.
    #[test]
    fn spool_failures_are_temporary() {
        let full = spool_error(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!(
            full.reply().0.one_line(),
            "452 4.3.1 Insufficient system storage"
        );
        let other = spool_error(std::io::Error::other("EIO"));
        assert!(other.reply().0.one_line().starts_with("451 4.3.0"));
    }

    /// A large message is spooled, and read back as it was sent.
    #[test]
    fn large_content_goes_through_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::in_dir(dir.path()).unwrap();
        let mut r = DataReader::new(LIMITS, true, &spool);
        let line = format!("..{}\r\n", "x".repeat(70));
        let mut expected = b"Subject: big\r\n\r\n".to_vec();
        r.feed(b"Subject: big\r\n\r\n");
        for _ in 0..5000 {
            assert_eq!(r.feed(line.as_bytes()), None);
            expected.extend_from_slice(&line.as_bytes()[1..]);
        }
        assert_eq!(r.feed(b".\r\n"), Some(3));
        let s = r.finish().unwrap();
        assert!(s.is_spooled());
        assert_eq!(&s.read_all().unwrap()[..], &expected[..]);
    }

    #[test]
    fn bdat_mode_keeps_dots_and_checks_line_endings() {
        let mut r = reader(LIMITS, false);
        assert_eq!(r.feed(b"A: b\r\n\r\n.\r\n.x\r"), None);
        assert_eq!(r.feed(b"\n"), None);
        assert_eq!(r.finish().unwrap().head(), b"A: b\r\n\r\n.\r\n.x\r\n");
        let mut r = reader(LIMITS, false);
        r.feed(b"A: b\r\n\r\nx\ny\r\n");
        assert_eq!(r.finish().err(), Some(SmtpError::BareLineEnding));
        let mut r = reader(LIMITS, false);
        r.feed(b"A: b\r\n\r\nx\r");
        assert_eq!(r.finish().err(), Some(SmtpError::BareLineEnding));
    }
}
