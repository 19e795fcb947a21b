//! The MIME structure of a message read as a stream (RFC 2045, RFC 2046):
//! the same tree as [`mime::parse`], byte ranges and all, built from pieces
//! of any size without holding the message (hardening.md C-FT9). IMAP
//! answers BODYSTRUCTURE, ENVELOPE and `BODY[1.2]` of a large message from
//! it and copies the parts from the store by their ranges.
//!
//! What it keeps: each entity's header section (at most [`HEAD_KEEP`]
//! octets each and [`HEADS_KEEP`] in all; a longer one is kept cut, which
//! only matters to its fields past the cut) and each body's line count.
//! Bodies are never kept; a line is looked at through its first
//! [`PREFIX_KEEP`] octets, enough for any boundary. The tree obeys the
//! bounds of [`mime`] (depth, parts, boundary length) in the same way.
//!
//! How: lines (CRLF-terminated) go to the innermost open entity, unless one
//! is a delimiter of an enclosing multipart, outermost first, as
//! [`mime::parse`] splits the outer body before the inner ones. A delimiter
//! ends the parts it encloses at the CRLF before it (RFC 2046 §5.1.1).

use crate::header;
use crate::mime::{self, ContentType, Entity, MAX_BOUNDARY, MAX_DEPTH, MAX_PARTS};
use std::collections::HashMap;

/// Header octets kept per entity.
pub const HEAD_KEEP: usize = 256 * 1024;
/// Header octets kept for the whole message.
pub const HEADS_KEEP: usize = 1024 * 1024;
/// Octets of each line looked at for a delimiter (`--`, the boundary, `--`).
const PREFIX_KEEP: usize = MAX_BOUNDARY + 8;

/// A message's structure, its entities' header sections and line counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    pub root: Entity,
    /// Octets in the message.
    pub len: usize,
    heads: HashMap<(usize, usize), Vec<u8>>,
    lines: HashMap<(usize, usize), usize>,
}

impl Outline {
    /// What is known of a message of `len` octets not read: its size.
    pub fn unread(len: usize) -> Outline {
        let mut root = mime::parse(b"");
        root.body = 0..len;
        Outline {
            root,
            len,
            heads: HashMap::new(),
            lines: HashMap::new(),
        }
    }
}

impl mime::Source for Outline {
    fn head(&self, e: &Entity) -> &[u8] {
        self.heads
            .get(&(e.header.start, e.header.end))
            .map_or(&[], Vec::as_slice)
    }

    fn lines(&self, e: &Entity) -> usize {
        self.lines
            .get(&(e.body.start, e.body.end))
            .copied()
            .unwrap_or(0)
    }
}

/// Builds an [`Outline`] from the message's octets, fed in order.
pub struct OutlineBuilder {
    /// Octets fed so far.
    pos: usize,
    /// LF octets fed so far.
    newlines: usize,
    /// The last three octets fed.
    tail: [u8; 3],
    line: Line,
    /// Open entities, the root first.
    stack: Vec<Open>,
    budget: usize,
    kept: usize,
    heads: HashMap<(usize, usize), Vec<u8>>,
    lines: HashMap<(usize, usize), usize>,
}

/// The line being read.
#[derive(Default)]
struct Line {
    start: usize,
    len: usize,
    /// LF octets before the line.
    newlines_before: usize,
    /// The octet three before the line: the last one before the CRLF that
    /// ended the line above.
    before: u8,
    prefix: Vec<u8>,
    /// Octets past the prefix are all white space (transport padding).
    rest_blank: bool,
    /// Its octets, kept while the innermost entity reads its header.
    head: Option<Vec<u8>>,
    /// Its last octet.
    last: u8,
}

/// An entity not ended yet.
struct Open {
    entity: Entity,
    /// The header section read so far; None once it has ended.
    head: Option<Vec<u8>>,
    depth: usize,
    /// `--boundary`, while this multipart's body is being split.
    delimiter: Option<Vec<u8>>,
    /// Its close delimiter was seen: the rest is epilogue.
    closed: bool,
    /// LF octets before the body.
    body_newlines: usize,
}

impl Open {
    fn new(start: usize, depth: usize, in_digest: bool) -> Open {
        Open {
            entity: Entity {
                header: start..start,
                body: start..start,
                content_type: ContentType::default_for(in_digest),
                children: Vec::new(),
                message: None,
            },
            head: Some(Vec::new()),
            depth,
            delimiter: None,
            closed: false,
            body_newlines: 0,
        }
    }
}

/// Where entities end: the octet offset, the LF octets before it and the
/// octet before it.
struct End {
    at: usize,
    newlines: usize,
    last: u8,
}

impl Default for OutlineBuilder {
    fn default() -> Self {
        OutlineBuilder {
            pos: 0,
            newlines: 0,
            tail: [0; 3],
            line: Line {
                rest_blank: true,
                head: Some(Vec::new()),
                ..Line::default()
            },
            stack: vec![Open::new(0, 0, false)],
            budget: MAX_PARTS,
            kept: 0,
            heads: HashMap::new(),
            lines: HashMap::new(),
        }
    }
}

impl OutlineBuilder {
    pub fn new() -> OutlineBuilder {
        OutlineBuilder::default()
    }

    /// The next octets of the message.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (segment, rest) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => bytes.split_at(i + 1),
                None => (bytes, &[][..]),
            };
            bytes = rest;
            let crlf = segment.ends_with(b"\n")
                && match segment.len() {
                    1 => self.line.len > 0 && self.line.last == b'\r',
                    n => segment[n - 2] == b'\r',
                };
            self.take(segment);
            if crlf {
                self.end_line();
            }
        }
    }

    /// The outline of everything fed.
    pub fn finish(mut self) -> Outline {
        if self.line.len > 0 {
            self.end_line();
        }
        let end = End {
            at: self.pos,
            newlines: self.newlines,
            last: self.tail[2],
        };
        let root = self.close_above(None, &end);
        Outline {
            root: root.unwrap_or_else(|| mime::parse(b"")),
            len: self.pos,
            heads: self.heads,
            lines: self.lines,
        }
    }

    /// Octets of the current line.
    fn take(&mut self, segment: &[u8]) {
        let line = &mut self.line;
        let room = PREFIX_KEEP.saturating_sub(line.prefix.len());
        let (kept, past) = segment.split_at(room.min(segment.len()));
        line.prefix.extend_from_slice(kept);
        line.rest_blank &= past
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
        if let Some(head) = &mut line.head {
            let room = HEAD_KEEP.saturating_sub(head.len());
            head.extend_from_slice(&segment[..room.min(segment.len())]);
        }
        line.len += segment.len();
        if let Some(&last) = segment.last() {
            line.last = last;
        }
        self.pos += segment.len();
        self.newlines += segment.iter().filter(|&&b| b == b'\n').count();
        for &b in segment.iter().rev().take(3).rev() {
            self.tail = [self.tail[1], self.tail[2], b];
        }
    }

    /// The current line is complete (or the input ended inside it).
    fn end_line(&mut self) {
        let reads_head = self.stack.last().is_some_and(|o| o.head.is_some());
        let next = Line {
            start: self.pos,
            newlines_before: self.newlines,
            before: self.tail[0],
            rest_blank: true,
            ..Line::default()
        };
        let line = std::mem::replace(&mut self.line, next);
        match self.delimiter_of(&line) {
            Some((level, close)) => self.delimiter(level, close, &line),
            None if reads_head => self.header_line(line),
            None => {}
        }
        if self.stack.last().is_some_and(|o| o.head.is_some()) {
            self.line.head = Some(Vec::new());
        }
    }

    /// The open multipart, outermost first, whose delimiter the line is,
    /// and whether it is the close delimiter (RFC 2046 §5.1.1: only the
    /// delimiter and transport padding on the line, C-MM6).
    fn delimiter_of(&self, line: &Line) -> Option<(usize, bool)> {
        if !line.rest_blank {
            return None;
        }
        self.stack.iter().enumerate().find_map(|(level, open)| {
            let d = open.delimiter.as_deref().filter(|_| !open.closed)?;
            let rest = line.prefix.strip_prefix(d)?;
            let close = rest.starts_with(b"--");
            let rest = if close { &rest[2..] } else { rest };
            rest.iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .then_some((level, close))
        })
    }

    /// A delimiter of the multipart at `level`: the part before it ends at
    /// the CRLF before the line; a new part starts after the line.
    fn delimiter(&mut self, level: usize, close: bool, line: &Line) {
        let end = End {
            at: line.start.saturating_sub(2),
            newlines: line.newlines_before.saturating_sub(1),
            last: line.before,
        };
        self.close_above(Some(level), &end);
        let multipart = &mut self.stack[level];
        if close {
            multipart.closed = true;
        } else if self.budget > 0 {
            let in_digest = multipart.entity.content_type.subtype == "digest";
            let depth = multipart.depth + 1;
            let at = self.pos;
            self.stack.push(Open::new(at, depth, in_digest));
        }
    }

    /// A line of the innermost entity's header section; an empty one ends it.
    fn header_line(&mut self, line: Line) {
        let Some(open) = self.stack.last_mut() else {
            return;
        };
        let head = open.head.get_or_insert_with(Vec::new);
        let room = HEAD_KEEP
            .saturating_sub(head.len())
            .min(HEADS_KEEP.saturating_sub(self.kept));
        let bytes = line.head.unwrap_or_default();
        let kept = room.min(bytes.len());
        head.extend_from_slice(&bytes[..kept]);
        self.kept += kept;
        if line.len == 2 {
            let body_newlines = self.newlines;
            let top = self.stack.len() - 1;
            self.begin_body(top, self.pos, body_newlines);
        }
    }

    /// The header of the entity at `index` ended at `at`: read its
    /// Content-Type and, within the bounds (C-MM1, C-MM2), open what it holds.
    fn begin_body(&mut self, index: usize, at: usize, body_newlines: usize) {
        let open = &mut self.stack[index];
        let head = open.head.take().unwrap_or_default();
        open.entity.header.end = at;
        open.entity.body = at..at;
        open.body_newlines = body_newlines;
        if let Some(ct) = header::fields(&head)
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("Content-Type"))
            .and_then(|f| mime::parse_content_type(&f.unfolded()))
        {
            open.entity.content_type = ct;
        }
        self.heads.insert((open.entity.header.start, at), head);
        if open.depth >= MAX_DEPTH || self.budget == 0 {
            return;
        }
        self.budget -= 1;
        let ct = &open.entity.content_type;
        if ct.kind == "multipart" {
            open.delimiter = ct
                .param("boundary")
                .filter(|b| !b.is_empty() && b.len() <= MAX_BOUNDARY)
                .map(|b| format!("--{b}").into_bytes());
        } else if ct.kind == "message" && (ct.subtype == "rfc822" || ct.subtype == "global") {
            let depth = open.depth + 1;
            self.stack.push(Open::new(at, depth, false));
        }
    }

    /// End every entity above `level` (all of them for None) at `end`, or
    /// where the outermost of them starts if that is later: what a part
    /// holds ends where the part does. Gives the root when it ends.
    fn close_above(&mut self, level: Option<usize>, end: &End) -> Option<Entity> {
        let first = level.map_or(0, |l| l + 1);
        let at = end.at.max(self.stack.get(first)?.entity.header.start);
        while self.stack.len() > first {
            let open = self.stack.pop()?;
            let entity = self.close(open, at, end);
            match self.stack.last_mut() {
                Some(parent) if parent.delimiter.is_some() => parent.entity.children.push(entity),
                Some(parent) => parent.entity.message = Some(Box::new(entity)),
                None => return Some(entity),
            }
        }
        None
    }

    /// An entity ends at `at`.
    fn close(&mut self, mut open: Open, at: usize, end: &End) -> Entity {
        let start = open.entity.header.start.min(at);
        open.entity.header.start = start;
        if open.head.is_some() {
            // The header never ended: it is the whole entity (and an
            // encapsulated message in it is empty, read the same way).
            if let Some(head) = &mut open.head {
                head.truncate(at - start);
            }
            self.stack.push(open);
            let index = self.stack.len() - 1;
            self.begin_body(index, at, end.newlines);
            if self.stack.len() > index + 1
                && let Some(inner) = self.stack.pop()
            {
                let inner = self.close(inner, at, end);
                self.stack[index].entity.message = Some(Box::new(inner));
            }
            match self.stack.pop() {
                Some(o) => open = o,
                None => return mime::parse(b""),
            }
        } else if open.entity.body.start > at {
            // The empty line that ended the header was the CRLF of the
            // delimiter: the header is the entity, without that line.
            let old = open.entity.body.start;
            open.entity.header.end = at;
            open.entity.body = at..at;
            if let Some(mut head) = self.heads.remove(&(start, old)) {
                head.truncate(at - start);
                self.heads.insert((start, at), head);
            }
        }
        open.entity.body.end = at;
        let body = open.entity.body.clone();
        let lines = if body.is_empty() {
            0
        } else {
            let n = end.newlines.saturating_sub(open.body_newlines);
            n + usize::from(end.last != b'\n')
        };
        self.lines.insert((body.start, body.end), lines);
        open.entity
    }
}

/// The outline of spooled content, read once a block at a time.
pub fn of_spooled(content: &crate::spool::Spooled) -> std::io::Result<Outline> {
    let mut builder = OutlineBuilder::new();
    content.chunks(|c| builder.feed(c))?;
    Ok(builder.finish())
}

/// Outline of a message held whole (for tests and callers that have it).
pub fn outline(raw: &[u8]) -> Outline {
    let mut b = OutlineBuilder::new();
    b.feed(raw);
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::Source;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    /// The outline, fed in pieces cut at `cuts`, is the tree `mime::parse`
    /// makes of the whole, with the same header sections and line counts.
    fn same_as_whole(raw: &[u8], rng: &mut StdRng) {
        let whole = mime::parse(raw);
        let mut b = OutlineBuilder::new();
        let mut rest = raw;
        while !rest.is_empty() {
            let n = rng.random_range(1..=rest.len().min(9));
            b.feed(&rest[..n]);
            rest = &rest[n..];
        }
        let o = b.finish();
        assert_eq!(o.root, whole, "{}", String::from_utf8_lossy(raw));
        assert_eq!(o.len, raw.len());
        let mut all = vec![&whole];
        while let Some(e) = all.pop() {
            assert_eq!(o.head(e), raw.head(e), "{}", String::from_utf8_lossy(raw));
            assert_eq!(o.lines(e), raw.lines(e), "{}", String::from_utf8_lossy(raw));
            all.extend(e.children.iter());
            all.extend(e.message.as_deref());
        }
    }

    const NESTED: &[u8] = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: text/plain\r\n\r\nhello\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--inner--\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inside\r\n\r\nbody\r\n--outer--\r\nepilogue\r\n";

    #[test]
    fn known_shapes() {
        let mut rng = StdRng::seed_from_u64(1);
        for raw in [
            NESTED,
            b"",
            b"\r\n",
            b"Subject: x",
            b"Subject: x\r\n\r\nbody",
            b"Subject: x\r\n\r\nline1\r\nline2\r\n",
            b"\r\nbody\nbare LF\r\n",
            // The header's empty line is the CRLF of the delimiter.
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n--b--\r\n",
            // A delimiter line right before the outer one.
            b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n--o--\r\n",
            // Digest parts default to message/rfc822.
            b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\nhi\r\n--d\r\n\r\n--d--",
            // No close delimiter, padding, a prefix boundary (C-MM6).
            b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a \t\r\nContent-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\none\r\n--ab\r\n\r\ntwo\r\n--a\r\n\r\nthree",
            b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nSubject: deep\r\n\r\nx",
        ] {
            same_as_whole(raw, &mut rng);
        }
    }

    /// Messages made of the lines that matter (delimiters of a few
    /// boundaries, Content-Type fields, empty lines, text), many times over.
    #[test]
    fn random_messages() {
        let mut rng = StdRng::seed_from_u64(7);
        let lines: &[&[u8]] = &[
            b"--a\r\n",
            b"--a--\r\n",
            b"--b\r\n",
            b"--b--  \r\n",
            b"--ab\r\n",
            b"\r\n",
            b"\r\n",
            b"\r\n",
            b"Content-Type: multipart/mixed; boundary=a\r\n",
            b"Content-Type: multipart/digest; boundary=b\r\n",
            b"Content-Type: multipart/alternative; boundary=ab\r\n",
            b"Content-Type: message/rfc822\r\n",
            b"Content-Type: text/html\r\n",
            b"Subject: x\r\n",
            b"text\r\n",
            b"bare\nLF\r\n",
            b"no end",
            b"\r",
            b"\n",
        ];
        for _ in 0..20_000 {
            let mut raw = Vec::new();
            for _ in 0..rng.random_range(0..30) {
                raw.extend_from_slice(lines[rng.random_range(0..lines.len())]);
            }
            same_as_whole(&raw, &mut rng);
        }
    }

    /// C-MM1, C-MM2: the bounds of `mime::parse`, kept the same way.
    #[test]
    fn bounds_are_the_same() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut deep = Vec::new();
        for i in 0..200 {
            deep.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        same_as_whole(&deep, &mut rng);
        let mut many = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n".to_vec();
        for _ in 0..3000 {
            many.extend_from_slice(b"--x\r\nContent-Type: message/rfc822\r\n\r\n\r\n");
        }
        same_as_whole(&many, &mut rng);
    }

    /// What is kept does not grow with the body: a 20 MB part on one line
    /// and in many lines.
    #[test]
    fn bodies_are_not_kept() {
        let mut b = OutlineBuilder::new();
        b.feed(b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\n");
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            b.feed(&chunk);
        }
        b.feed(b"\r\n");
        for _ in 0..10 {
            b.feed(&chunk[..1000]);
            b.feed(b"\r\n");
        }
        assert!(b.line.prefix.len() <= PREFIX_KEEP);
        b.feed(b"--z--\r\n");
        let o = b.finish();
        let part = o.root.part(&[1]).unwrap();
        assert_eq!(part.body.len(), 10 * (1 << 20) + 2 + 10 * 1002 - 2);
        assert_eq!(o.lines(part), 11);
        assert_eq!(o.head(part), b"Content-Type: text/plain\r\n\r\n");
    }
}
