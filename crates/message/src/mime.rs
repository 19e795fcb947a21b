//! The MIME structure of a message (RFC 2045, RFC 2046): a tree of entities with
//! byte ranges into the raw message, for IMAP BODYSTRUCTURE and BODY[section].
//!
//! Bounded (hardening.md C-MM1, C-MM2, C-MM6): nesting deeper than
//! [`MAX_DEPTH`] or more than [`MAX_PARTS`] parts in total leaves the rest
//! as opaque content; boundaries longer than [`MAX_BOUNDARY`] are ignored.
//! The search for a boundary is linear in the size of the part.

use std::ops::Range;

use crate::header::{self, find};

pub const MAX_DEPTH: usize = 50;
pub const MAX_PARTS: usize = 1000;
pub const MAX_BOUNDARY: usize = 200;
/// Raw parameters read from one header field (RFC 2231 continuations count
/// one each).
pub const MAX_PARAMS: usize = 256;

/// A Content-Type value: `type/subtype; name=value; ...` (RFC 2045 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    /// Lowercase.
    pub kind: String,
    /// Lowercase.
    pub subtype: String,
    /// Names lowercase, values unquoted, in order.
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn default_for(parent_is_digest: bool) -> ContentType {
        if parent_is_digest {
            ContentType {
                kind: "message".into(),
                subtype: "rfc822".into(),
                params: vec![],
            }
        } else {
            ContentType {
                kind: "text".into(),
                subtype: "plain".into(),
                params: vec![("charset".into(), "us-ascii".into())],
            }
        }
    }
}

/// One MIME entity: its header and body ranges and what is inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// The header section, including the blank line that ends it.
    pub header: Range<usize>,
    pub body: Range<usize>,
    pub content_type: ContentType,
    pub children: Vec<Entity>,
    /// For message/rfc822 (and message/global): the encapsulated message.
    pub message: Option<Box<Entity>>,
}

impl Entity {
    pub fn is_multipart(&self) -> bool {
        self.content_type.kind == "multipart" && !self.children.is_empty()
    }

    /// The value of a header field of this entity (unfolded), the first one.
    pub fn field(&self, raw: &[u8], name: &str) -> Option<String> {
        raw.field(self, name)
    }

    /// RFC 9051 §6.4.5 section numbers: `[]` is this entity; `[n, ...]` walks parts.
    /// A non-multipart entity is its own part 1; a message/rfc822 part's parts are
    /// those of the message inside it.
    pub fn part(&self, path: &[u32]) -> Option<&Entity> {
        let Some((&first, rest)) = path.split_first() else {
            return Some(self);
        };
        let container = match &self.message {
            Some(inner) => inner.as_ref(),
            None => self,
        };
        let child = if container.is_multipart() {
            container.children.get((first as usize).checked_sub(1)?)?
        } else if first == 1 {
            container
        } else {
            return None;
        };
        child.part(rest)
    }
}

/// What a reader of the tree needs besides the ranges: each entity's header
/// section and its body's line count. The message itself (`[u8]`) answers
/// from its octets; an [`crate::outline::Outline`] from what it kept of a
/// message read as a stream.
pub trait Source {
    fn head(&self, e: &Entity) -> &[u8];
    /// Lines in the body (for text/* and message/rfc822 in BODYSTRUCTURE).
    fn lines(&self, e: &Entity) -> usize;

    /// The value of a header field of an entity (unfolded), the first one.
    fn field(&self, e: &Entity, name: &str) -> Option<String> {
        header::fields(self.head(e))
            .into_iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.unfolded())
    }
}

impl Source for [u8] {
    fn head(&self, e: &Entity) -> &[u8] {
        &self[e.header.clone()]
    }

    fn lines(&self, e: &Entity) -> usize {
        count_lines(&self[e.body.clone()])
    }
}

/// Parse the structure of a whole message.
pub fn parse(raw: &[u8]) -> Entity {
    let mut budget = MAX_PARTS;
    entity(raw, 0..raw.len(), 0, false, &mut budget)
}

fn entity(
    raw: &[u8],
    range: Range<usize>,
    depth: usize,
    in_digest: bool,
    budget: &mut usize,
) -> Entity {
    let bytes = &raw[range.clone()];
    let head_len = header::header_end(bytes);
    let header = range.start..range.start + head_len;
    let body = range.start + head_len..range.end;
    let fields = header::fields(&bytes[..head_len]);
    let content_type = fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("Content-Type"))
        .and_then(|f| parse_content_type(&f.unfolded()))
        .unwrap_or_else(|| ContentType::default_for(in_digest));
    let mut e = Entity {
        header,
        body: body.clone(),
        content_type,
        children: vec![],
        message: None,
    };
    if depth >= MAX_DEPTH || *budget == 0 {
        return e;
    }
    *budget -= 1;
    let ct = &e.content_type;
    if ct.kind == "multipart" {
        if let Some(boundary) = ct
            .param("boundary")
            .filter(|b| !b.is_empty() && b.len() <= MAX_BOUNDARY)
        {
            let digest = ct.subtype == "digest";
            for part in split_multipart(raw, body, boundary) {
                if *budget == 0 {
                    break;
                }
                e.children
                    .push(entity(raw, part, depth + 1, digest, budget));
            }
        }
    } else if ct.kind == "message" && (ct.subtype == "rfc822" || ct.subtype == "global") {
        e.message = Some(Box::new(entity(raw, body, depth + 1, false, budget)));
    }
    e
}

/// The body ranges of the parts of a multipart body (RFC 2046 §5.1.1): between
/// delimiter lines `--boundary`, up to the close delimiter `--boundary--`. Only a
/// line that is exactly a delimiter (plus transport padding) counts, so a boundary
/// that is a prefix of another does not split the inner parts (C-MM6).
fn split_multipart(raw: &[u8], body: Range<usize>, boundary: &str) -> Vec<Range<usize>> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let bytes = &raw[body.clone()];
    let line_end = |from: usize| {
        find(&bytes[from..], b"\r\n")
            .map(|i| from + i + 2)
            .unwrap_or(bytes.len())
    };
    // (line start, is the close delimiter), in order.
    let mut delimiters = Vec::new();
    let mut line = 0;
    while line < bytes.len() {
        let next = line_end(line);
        if let Some(rest) = bytes[line..next].strip_prefix(d) {
            let close = rest.starts_with(b"--");
            let rest = if close { &rest[2..] } else { rest };
            if rest
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            {
                delimiters.push((line, close));
                if close {
                    break;
                }
            }
        }
        line = next;
    }
    let mut parts = Vec::new();
    for (i, &(start, close)) in delimiters.iter().enumerate() {
        if close {
            break;
        }
        let content = line_end(start);
        // The CRLF before the next delimiter belongs to that delimiter.
        let end = match delimiters.get(i + 1) {
            Some(&(next, _)) => next.saturating_sub(2).max(content),
            None => bytes.len(),
        };
        parts.push(body.start + content..body.start + end);
    }
    parts
}

/// Parse `type/subtype; name=value; name="quoted"` (RFC 2045 §5.1), with
/// the extended parameters of RFC 2231 (`name*=charset'lang'%XX`,
/// continuations `name*0=`, `name*1*=`) decoded and joined into one
/// parameter `name` in UTF-8. At most [`MAX_PARAMS`] raw parameters are
/// read (hardening.md C-MM5).
pub fn parse_content_type(value: &str) -> Option<ContentType> {
    let value = strip_comments(value);
    let mut parts = split_params(&value).into_iter();
    let main = parts.next()?;
    let (kind, subtype) = main.trim().split_once('/')?;
    let (kind, subtype) = (
        kind.trim().to_ascii_lowercase(),
        subtype.trim().to_ascii_lowercase(),
    );
    if kind.is_empty() || subtype.is_empty() {
        return None;
    }
    let params = rfc2231(
        parts
            .take(MAX_PARAMS)
            .filter_map(|p| parse_param(&p))
            .collect(),
    );
    Some(ContentType {
        kind,
        subtype,
        params,
    })
}

/// Parameters of any structured header (`Content-Disposition`): the value before
/// the first `;` lowercased, and the parameters.
pub fn parse_with_params(value: &str) -> (String, Vec<(String, String)>) {
    let value = strip_comments(value);
    let mut parts = split_params(&value).into_iter();
    let main = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let raw = parts
        .take(MAX_PARAMS)
        .filter_map(|p| parse_param(&p))
        .collect();
    (main, rfc2231(raw))
}

/// RFC 2231 §3, §4: join `name*N` / `name*N*` continuations in the order of
/// N, percent-decode the `*` segments, convert from the charset named in
/// the first one; a plain `name` with no extended form is kept as it is.
/// The result keeps the order of first appearance.
fn rfc2231(raw: Vec<(String, String)>) -> Vec<(String, String)> {
    if !raw.iter().any(|(n, _)| n.contains('*')) {
        return raw;
    }
    // Each name in order of first appearance, its plain value and its
    // extended segments (index, encoded, value).
    type Segments = Vec<(u32, bool, String)>;
    let mut names: Vec<(String, Option<String>, Segments)> = Vec::new();
    for (name, value) in raw {
        let (base, segment) = match name.split_once('*') {
            None => (name, None),
            Some((base, rest)) => {
                let encoded = rest.is_empty() || rest.ends_with('*');
                let digits = rest.trim_end_matches('*');
                let index = match digits {
                    "" => 0,
                    d => match d.parse::<u32>() {
                        Ok(n) => n,
                        Err(_) => continue,
                    },
                };
                (base.to_string(), Some((index, encoded, value.clone())))
            }
        };
        let i = match names.iter().position(|(n, _, _)| *n == base) {
            Some(i) => i,
            None => {
                names.push((base, None, Vec::new()));
                names.len() - 1
            }
        };
        match segment {
            Some(seg) => names[i].2.push(seg),
            None => names[i].1 = Some(value),
        }
    }
    names
        .into_iter()
        .map(|(name, plain, mut segments)| {
            // An extended form wins over a plain one of the same name (§3, §4).
            if segments.is_empty() {
                return (name, plain.unwrap_or_default());
            }
            segments.sort_by_key(|s| s.0);
            segments.dedup_by_key(|s| s.0);
            let value = join_segments(&segments);
            (name, value)
        })
        .collect()
}

/// The value of one RFC 2231 parameter from its segments in order.
fn join_segments(segments: &[(u32, bool, String)]) -> String {
    let mut charset = String::new();
    let mut bytes = Vec::new();
    for (i, (_, encoded, value)) in segments.iter().enumerate() {
        if !encoded {
            bytes.extend_from_slice(value.as_bytes());
            continue;
        }
        let mut text = value.as_str();
        // Only the first segment names charset and language (§4.1).
        if i == 0 {
            let mut fields = text.splitn(3, '\'');
            if let (Some(cs), Some(_lang), Some(rest)) =
                (fields.next(), fields.next(), fields.next())
            {
                charset = cs.to_ascii_lowercase();
                text = rest;
            }
        }
        percent_decode(text.as_bytes(), &mut bytes);
    }
    decode_charset(&charset, &bytes)
}

/// RFC 3986 §2.1 percent-decoding (RFC 2231 values, `mailto:` URIs); a
/// `%` not followed by two hex digits stays as it is.
pub(crate) fn percent_decode(input: &[u8], out: &mut Vec<u8>) {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut i = 0;
    while i < input.len() {
        match (
            input[i],
            input.get(i + 1).and_then(|&c| hex(c)),
            input.get(i + 2).and_then(|&c| hex(c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Text in a named charset as UTF-8; unknown charsets and bytes that are
/// not valid in them are replaced, never a failure.
pub fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(bytes)
        && (charset.is_empty() || matches!(charset, "utf-8" | "utf8" | "us-ascii"))
    {
        return text.to_string();
    }
    match mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes()) {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn parse_param(p: &str) -> Option<(String, String)> {
    let (name, value) = p.split_once('=')?;
    let name = name.trim().to_ascii_lowercase();
    let value = value.trim();
    let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(q) => unquote(q),
        None => value.to_string(),
    };
    (!name.is_empty()).then_some((name, value))
}

fn unquote(q: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in q.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Split on `;` outside quoted strings.
fn split_params(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// Remove RFC 5322 comments `( ... )` outside quoted strings.
fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Lines in a range (for text/* and message/rfc822 in BODYSTRUCTURE).
pub fn count_lines(bytes: &[u8]) -> usize {
    let n = bytes.iter().filter(|&&b| b == b'\n').count();
    if bytes.last().is_some_and(|&b| b != b'\n') {
        n + 1
    } else {
        n
    }
}

/// Decode a body by its Content-Transfer-Encoding (for IMAP BINARY and searches).
/// Unknown encodings give None (RFC 3516 §4.2: UNKNOWN-CTE).
pub fn decode_body(encoding: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
    Some(Decoder::new(encoding)?.all(body))
}

/// Tolerant base64: whitespace and junk skipped, missing padding accepted (C-MM8).
pub fn decode_base64(input: &[u8]) -> Vec<u8> {
    Decoder::Base64 {
        acc: 0,
        bits: 0,
        ended: false,
    }
    .all(input)
}

/// Quoted-printable (RFC 2045 §6.7), tolerant of bad escapes and a final "=".
pub fn decode_qp(input: &[u8]) -> Vec<u8> {
    Decoder::QuotedPrintable { carry: Vec::new() }.all(input)
}

/// A Content-Transfer-Encoding decoder fed a piece at a time, so a large
/// part is decoded as it is read (IMAP BINARY of a large message); the
/// result is the same however the input is cut.
#[derive(Debug, Clone)]
pub enum Decoder {
    /// 7bit, 8bit, binary: the octets as they are.
    Identity,
    Base64 {
        acc: u32,
        bits: u32,
        /// `=` was seen: padding, the end of the data.
        ended: bool,
    },
    QuotedPrintable {
        /// An `=` and what followed it at the end of the last piece.
        carry: Vec<u8>,
    },
}

impl Decoder {
    /// The decoder for an encoding; None for one not known (UNKNOWN-CTE).
    pub fn new(encoding: Option<&str>) -> Option<Decoder> {
        match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
            None | Some("7bit" | "8bit" | "binary" | "") => Some(Decoder::Identity),
            Some("base64") => Some(Decoder::Base64 {
                acc: 0,
                bits: 0,
                ended: false,
            }),
            Some("quoted-printable") => Some(Decoder::QuotedPrintable { carry: Vec::new() }),
            Some(_) => None,
        }
    }

    /// Decode one whole input.
    pub fn all(mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        self.feed(input, &mut out);
        self.finish(&mut out);
        out
    }

    /// Decode the next octets onto `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Decoder::Identity => out.extend_from_slice(input),
            Decoder::Base64 { acc, bits, ended } => {
                for &c in input {
                    if *ended || c == b'=' {
                        *ended = true;
                        return;
                    }
                    let Some(v) = base64_value(c) else { continue };
                    *acc = (*acc << 6) | v;
                    *bits += 6;
                    if *bits >= 8 {
                        *bits -= 8;
                        out.push((*acc >> *bits) as u8);
                        *acc &= (1 << *bits) - 1;
                    }
                }
            }
            Decoder::QuotedPrintable { carry } => {
                if carry.is_empty() {
                    *carry = qp(input, false, out).to_vec();
                } else {
                    let mut joined = std::mem::take(carry);
                    joined.extend_from_slice(input);
                    *carry = qp(&joined, false, out).to_vec();
                }
            }
        }
    }

    /// The input has ended.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Decoder::QuotedPrintable { carry } = self {
            qp(&std::mem::take(carry), true, out);
        }
    }
}

fn base64_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Quoted-printable onto `out`; what is left undecided at the end (an `=`
/// whose next two octets are not there yet) unless this is the `last` piece.
fn qp<'a>(input: &'a [u8], last: bool, out: &mut Vec<u8>) -> &'a [u8] {
    let hex = |c: u8| (c as char).to_digit(16);
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c != b'=' {
            out.push(c);
            i += 1;
            continue;
        }
        match (input.get(i + 1), input.get(i + 2)) {
            (Some(b'\n'), _) => i += 2,
            (_, None) if !last => return &input[i..],
            (Some(b'\r'), Some(b'\n')) => i += 3,
            (Some(&a), Some(&b)) if hex(a).is_some() && hex(b).is_some() => {
                out.push((hex(a).unwrap_or(0) * 16 + hex(b).unwrap_or(0)) as u8);
                i += 3;
            }
            (None, _) => i += 1,
            _ => {
                out.push(b'=');
                i += 1;
            }
        }
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &[u8] = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\npreamble\r\n--outer\r\nContent-Type: text/plain\r\n\r\nhello\r\n--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--inner--\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inside\r\n\r\nbody\r\n--outer--\r\nepilogue\r\n";

    fn text<'a>(raw: &'a [u8], r: &Range<usize>) -> &'a str {
        std::str::from_utf8(&raw[r.clone()]).unwrap()
    }

    #[test]
    fn nested_structure_and_sections() {
        let e = parse(NESTED);
        assert!(e.is_multipart());
        assert_eq!(e.children.len(), 3);
        let p1 = e.part(&[1]).unwrap();
        assert_eq!(text(NESTED, &p1.body), "hello");
        let p21 = e.part(&[2, 1]).unwrap();
        assert_eq!(p21.content_type.subtype, "plain");
        assert_eq!(text(NESTED, &p21.body), "plain");
        assert_eq!(text(NESTED, &e.part(&[2, 2]).unwrap().body), "<b>x</b>");
        let msg = e.part(&[3]).unwrap();
        assert_eq!(msg.content_type.subtype, "rfc822");
        let inner = msg.message.as_ref().unwrap();
        assert_eq!(text(NESTED, &inner.header), "Subject: inside\r\n\r\n");
        assert_eq!(text(NESTED, &e.part(&[3, 1]).unwrap().body), "body");
        assert!(e.part(&[4]).is_none());
        let single = parse(b"Subject: x\r\n\r\nbody");
        assert_eq!(
            text(b"Subject: x\r\n\r\nbody", &single.part(&[1]).unwrap().body),
            "body"
        );
        assert!(single.part(&[2]).is_none());
    }

    /// C-MM1: 10,000 nested multiparts neither overflow the stack nor take long.
    #[test]
    fn deep_nesting_is_bounded() {
        let mut raw = Vec::new();
        for i in 0..10_000 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        let start = std::time::Instant::now();
        let e = parse(&raw);
        let mut depth = 0;
        let mut cur = &e;
        while let Some(c) = cur.children.first() {
            depth += 1;
            cur = c;
        }
        assert!(depth <= MAX_DEPTH);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    /// C-MM2: many parts are cut at the budget.
    #[test]
    fn many_parts_are_bounded() {
        let mut raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n".to_vec();
        for _ in 0..100_000 {
            raw.extend_from_slice(b"--x\r\n\r\n\r\n");
        }
        let e = parse(&raw);
        assert!(e.children.len() < MAX_PARTS);
    }

    /// C-MM6: an outer boundary that is a prefix of the inner one.
    #[test]
    fn boundary_prefixes() {
        let raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=ab\r\n\r\n--ab\r\n\r\none\r\n--ab\r\n\r\ntwo\r\n--ab--\r\n--a--\r\n";
        let e = parse(raw);
        assert_eq!(e.children.len(), 1);
        assert_eq!(e.children[0].children.len(), 2);
    }

    /// RFC 2231 §3 and §4 examples, and a signed message whose boundary is
    /// given in the extended form.
    #[test]
    fn rfc2231_parameters() {
        let ct = parse_content_type(
            "message/external-body; access-type=URL;\r\n URL*0=\"ftp://\";\r\n URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar\"",
        )
        .unwrap();
        assert_eq!(
            ct.param("url"),
            Some("ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar")
        );
        let ct = parse_content_type(
            "application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
        )
        .unwrap();
        assert_eq!(ct.param("title"), Some("This is ***fun***"));
        let ct = parse_content_type(
            "application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
        )
        .unwrap();
        assert_eq!(
            ct.param("title"),
            Some("This is even more ***fun*** isn't it!")
        );
        let (kind, ps) = parse_with_params("attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf");
        assert_eq!(kind, "attachment");
        assert_eq!(ps, [("filename".to_string(), "€ rates.pdf".to_string())]);
        let (_, ps) = parse_with_params(
            "attachment; filename*=iso-8859-1'de'M%FCller.txt; filename=\"fallback\"",
        );
        assert_eq!(ps, [("filename".to_string(), "Müller.txt".to_string())]);
        let raw = b"Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary*0=\"sig\"; boundary*1=\"ned\"\r\n\r\n--signed\r\n\r\nbody\r\n--signed\r\nContent-Type: application/pgp-signature\r\n\r\nsig\r\n--signed--\r\n";
        let e = parse(raw);
        assert_eq!(e.children.len(), 2);
        // C-MM5: 100,000 continuations are read up to the bound, in linear time.
        let many: String = (0..100_000).map(|i| format!("; n*{i}=x")).collect();
        let ct = parse_content_type(&format!("text/plain{many}")).unwrap();
        assert_eq!(ct.param("n").map(str::len), Some(MAX_PARAMS));
    }

    #[test]
    fn content_types() {
        let ct =
            parse_content_type("Text/Plain; charset=\"utf-8\" (comment); format=flowed").unwrap();
        assert_eq!((ct.kind.as_str(), ct.subtype.as_str()), ("text", "plain"));
        assert_eq!(ct.param("charset"), Some("utf-8"));
        assert_eq!(ct.param("format"), Some("flowed"));
        assert!(parse_content_type("garbage").is_none());
        assert_eq!(
            parse_content_type("multipart/mixed; boundary=\"a;b\"")
                .unwrap()
                .param("boundary"),
            Some("a;b")
        );
    }

    /// A decoder fed in pieces gives what it gives for the whole.
    #[test]
    fn decoders_in_pieces() {
        let inputs: [&[u8]; 4] = [
            b"aGVs\r\nbG8gd29y bGQ=junk",
            b"a=3Db=\r\nc=XYd=\ne==4=1=\r=",
            b"=\r\n=0",
            b"=",
        ];
        for input in inputs {
            for encoding in ["base64", "quoted-printable", "8bit"] {
                let whole = decode_body(Some(encoding), input).unwrap();
                for cut in 0..=input.len() {
                    let mut d = Decoder::new(Some(encoding)).unwrap();
                    let mut out = Vec::new();
                    d.feed(&input[..cut], &mut out);
                    for &b in &input[cut..] {
                        d.feed(&[b], &mut out);
                    }
                    d.finish(&mut out);
                    assert_eq!(out, whole, "{encoding} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn decoders() {
        assert_eq!(decode_base64(b"aGVs\r\nbG8"), b"hello");
        assert_eq!(decode_qp(b"a=3Db=\r\nc=XYd="), b"a=bc=XYd");
        assert_eq!(decode_body(Some("x-uuencode"), b"x"), None);
        assert_eq!(count_lines(b"a\r\nb"), 2);
        assert_eq!(count_lines(b"a\r\nb\r\n"), 2);
    }
}
