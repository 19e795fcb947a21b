//! DKIM and ARC body hashes over a message streamed from the spool (RFC 6376
//! §3.4.3, §3.4.4, §3.7), so a message of any size is verified without being
//! held in memory (hardening.md C-FT9).
//!
//! The canonicalizer is a byte-level state machine: input may be split
//! anywhere, and it keeps no more than the count of the empty lines it has
//! not written yet (trailing empty lines are ignored; any that turn out not
//! to be trailing are written when the next line with content comes).
//! Only CR LF ends a line: a lone CR or LF is content (SMTP refuses them
//! anyway).
//!
//! - simple: the body as it is, trailing empty lines ignored, and a CR LF
//!   added when the body is empty or does not end with one.
//! - relaxed: whitespace at the end of each line ignored, every run of
//!   whitespace inside a line reduced to one space, then trailing empty
//!   lines (whitespace-only lines are empty by then) ignored; a CR LF added
//!   when the body does not end with one; an empty body stays empty.

use mail_auth::common::crypto::HashAlgorithm;
use mail_auth::common::headers::{Writable, Writer};
use mail_auth::dkim::Canonicalization;
use message::spool::Spooled;

/// The body hash (`bh=`) of `content`'s body: `cb` canonicalization, `ha`
/// hash, the first `limit` canonical octets (`l=`; 0: all of them).
pub fn body_hash(
    content: &Spooled,
    cb: Canonicalization,
    ha: HashAlgorithm,
    limit: u64,
) -> std::io::Result<Vec<u8>> {
    let mut failed = None;
    let hash = ha.hash(Stream {
        content,
        cb,
        limit,
        failed: &mut failed,
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(hash.as_ref().to_vec()),
    }
}

/// The canonical body of a spooled message, written into a hasher.
struct Stream<'a> {
    content: &'a Spooled,
    cb: Canonicalization,
    limit: u64,
    failed: &'a mut Option<std::io::Error>,
}

impl Writable for Stream<'_> {
    fn write(self, writer: &mut impl Writer) {
        let skip = self.content.header().len();
        let mut seen = 0usize;
        let mut canon = Canonicalizer::new(self.cb == Canonicalization::Relaxed, self.limit);
        let read = self.content.chunks(|chunk| {
            let from = skip.saturating_sub(seen).min(chunk.len());
            seen += chunk.len();
            canon.feed(&chunk[from..], &mut |b| writer.write(b));
        });
        canon.finish(&mut |b| writer.write(b));
        if let Err(e) = read {
            *self.failed = Some(e);
        }
    }
}

/// The canonicalization state between two pieces of input.
#[derive(Debug)]
pub struct Canonicalizer {
    relaxed: bool,
    /// 0: no limit.
    limit: u64,
    written: u64,
    /// Empty lines seen and not written yet.
    pending_empty: u64,
    /// A CR waiting to see whether an LF follows.
    pending_cr: bool,
    /// relaxed: whitespace seen since the last content of the line.
    pending_wsp: bool,
    /// The current line has content (simple: any octet; relaxed: other
    /// than whitespace).
    line_has_content: bool,
    out: Vec<u8>,
}

const FLUSH_AT: usize = 8192;

impl Canonicalizer {
    pub fn new(relaxed: bool, limit: u64) -> Canonicalizer {
        Canonicalizer {
            relaxed,
            limit,
            written: 0,
            pending_empty: 0,
            pending_cr: false,
            pending_wsp: false,
            line_has_content: false,
            out: Vec::with_capacity(FLUSH_AT + 2),
        }
    }

    pub fn feed(&mut self, input: &[u8], sink: &mut dyn FnMut(&[u8])) {
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    self.end_line();
                    continue;
                }
                self.content(b'\r');
            }
            match b {
                b'\r' => self.pending_cr = true,
                _ => self.content(b),
            }
            if self.out.len() >= FLUSH_AT {
                self.flush(sink);
            }
        }
        self.flush(sink);
    }

    pub fn finish(mut self, sink: &mut dyn FnMut(&[u8])) {
        if self.pending_cr {
            self.pending_cr = false;
            self.content(b'\r');
        }
        if self.line_has_content {
            // A last line without its CR LF gets one.
            self.emit(b"\r\n");
        } else if !self.relaxed && self.written == 0 && self.out.is_empty() {
            // simple: an empty body is one CR LF (RFC 6376 §3.4.3).
            self.emit(b"\r\n");
        }
        self.flush(sink);
    }

    fn content(&mut self, b: u8) {
        let wsp = b == b' ' || b == b'\t';
        if self.relaxed && wsp {
            self.pending_wsp = true;
            return;
        }
        if !self.line_has_content {
            self.line_has_content = true;
            for _ in 0..std::mem::take(&mut self.pending_empty) {
                self.emit(b"\r\n");
            }
        }
        if self.relaxed && std::mem::take(&mut self.pending_wsp) {
            self.emit(b" ");
        }
        self.emit(&[b]);
    }

    fn end_line(&mut self) {
        match self.line_has_content {
            true => self.emit(b"\r\n"),
            false => self.pending_empty += 1,
        }
        self.line_has_content = false;
        self.pending_wsp = false;
    }

    fn emit(&mut self, bytes: &[u8]) {
        let room = match self.limit {
            0 => bytes.len(),
            l => (l.saturating_sub(self.written + self.out.len() as u64) as usize).min(bytes.len()),
        };
        self.out.extend_from_slice(&bytes[..room]);
    }

    fn flush(&mut self, sink: &mut dyn FnMut(&[u8])) {
        if !self.out.is_empty() {
            sink(&self.out);
            self.written += self.out.len() as u64;
            self.out.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(relaxed: bool, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut c = Canonicalizer::new(relaxed, 0);
        c.feed(body, &mut |b| out.extend_from_slice(b));
        c.finish(&mut |b| out.extend_from_slice(b));
        out
    }

    /// RFC 6376 §3.4.5, the example.
    #[test]
    fn the_rfc_example() {
        let body = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(canonical(false, body), b" C \r\nD \t E\r\n");
        assert_eq!(canonical(true, body), b" C\r\nD E\r\n");
    }

    #[test]
    fn empty_bodies_and_missing_line_ends() {
        assert_eq!(canonical(false, b""), b"\r\n");
        assert_eq!(canonical(false, b"\r\n\r\n"), b"\r\n");
        assert_eq!(canonical(true, b""), b"");
        assert_eq!(canonical(true, b"\r\n \t\r\n"), b"");
        assert_eq!(canonical(false, b"x"), b"x\r\n");
        assert_eq!(canonical(true, b"x  "), b"x\r\n");
        // Whitespace-only lines in the middle are kept (empty, relaxed).
        assert_eq!(canonical(true, b"a\r\n  \r\nb\r\n \r\n"), b"a\r\n\r\nb\r\n");
        assert_eq!(
            canonical(false, b"a\r\n  \r\nb\r\n\r\n"),
            b"a\r\n  \r\nb\r\n"
        );
        // A lone CR or LF is content.
        assert_eq!(canonical(false, b"a\rb\nc\r\n"), b"a\rb\nc\r\n");
        assert_eq!(canonical(false, b"a\r"), b"a\r\r\n");
    }

    #[test]
    fn any_split_gives_the_same_output() {
        let body = b"Hello  \t there \r\n\r\n  indented\r\n\r\nlast \r\n\r\n \r\n";
        for relaxed in [false, true] {
            let whole = canonical(relaxed, body);
            for split in 0..body.len() {
                let mut out = Vec::new();
                let mut c = Canonicalizer::new(relaxed, 0);
                c.feed(&body[..split], &mut |b| out.extend_from_slice(b));
                c.feed(&body[split..], &mut |b| out.extend_from_slice(b));
                c.finish(&mut |b| out.extend_from_slice(b));
                assert_eq!(out, whole, "relaxed {relaxed} split {split}");
            }
        }
    }

    /// Same output as mail-auth's own canonicalizer where that one follows
    /// the RFC (it keeps trailing whitespace-only lines in relaxed mode).
    #[test]
    fn agrees_with_mail_auth() {
        let bodies: [&[u8]; 5] = [
            b"a b  c\t\r\n\r\nd\r\n",
            b"line\r\n\r\n\r\n",
            b"  lead\r\ntrail \t \r\nx",
            b"\r\n\r\nafter empty\r\n",
            b"one line no end",
        ];
        for body in bodies {
            for (relaxed, cb) in [
                (false, Canonicalization::Simple),
                (true, Canonicalization::Relaxed),
            ] {
                let ours = HashAlgorithm::Sha256.hash(&canonical(relaxed, body)[..]);
                let theirs = HashAlgorithm::Sha256.hash(cb.canonical_body(body, 0));
                assert_eq!(ours.as_ref(), theirs.as_ref(), "{body:?} relaxed {relaxed}");
            }
        }
    }

    #[test]
    fn the_limit_counts_canonical_octets() {
        let mut out = Vec::new();
        let mut c = Canonicalizer::new(true, 5);
        c.feed(b"a   b\r\ncdef\r\n", &mut |b| out.extend_from_slice(b));
        c.finish(&mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"a b\r\n");
    }

    #[test]
    fn hashes_a_spooled_message_like_one_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let spool = message::spool::Spool::in_dir(dir.path()).unwrap();
        let mut w = spool.writer();
        let mut whole = b"From: a@b.test\r\nSubject: big\r\n\r\n".to_vec();
        for i in 0..20_000 {
            whole.extend_from_slice(format!("line {i}  with   spaces \r\n").as_bytes());
        }
        whole.extend_from_slice(b"\r\n\r\n");
        w.write(&whole).unwrap();
        let spooled = w.finish().unwrap();
        assert!(spooled.is_spooled());
        let body = &whole[message::header::header_end(&whole)..];
        for (relaxed, cb) in [
            (false, Canonicalization::Simple),
            (true, Canonicalization::Relaxed),
        ] {
            let expected = HashAlgorithm::Sha256.hash(&canonical(relaxed, body)[..]);
            let got = body_hash(&spooled, cb, HashAlgorithm::Sha256, 0).unwrap();
            assert_eq!(got, expected.as_ref());
        }
    }
}
