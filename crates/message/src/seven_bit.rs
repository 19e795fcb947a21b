//! Converting a message with 8-bit content to 7 bit (RFC 6152 §3: a message
//! declared 8BITMIME going to a server without 8BITMIME "MUST be converted
//! ... to 7 bit, using the content transfer encodings of RFC 2045"). Text
//! parts become quoted-printable, others base64; multipart and message
//! parts keep their structure and are labelled 7bit, and the 8-bit octets
//! outside their parts (preamble, epilogue), which readers ignore (RFC
//! 2046 §5.1.1), become `?` (or another octet when a boundary holds `?`,
//! so that no line becomes a delimiter). No encoded line starts with `--`, so none can
//! be read as a boundary. 8-bit header fields cannot be converted this way
//! (they need SMTPUTF8, RFC 6532), nor a header section that starts with
//! white space (no field added there would be read), nor 8-bit octets
//! outside the parts when the boundaries hold every stand-in: such a
//! message is left alone.

use std::io;
use std::ops::Range;

use crate::header;
use crate::mime::Entity;
use crate::outline::{Outline, OutlineBuilder};
use crate::spool::{Spool, Spooled};

/// Octets read from the spool at once.
const PIECE: usize = 64 * 1024;

/// The 7-bit form of `raw`, or None when it has no 8-bit content or when
/// it has 8-bit header fields.
pub fn convert(raw: &[u8]) -> Option<Vec<u8>> {
    let content = Spooled::from_vec(raw.to_vec());
    let converted = convert_spooled(&content, &Spool::memory()).ok()??;
    converted.read_all().ok().map(|b| b.to_vec())
}

/// [`convert`] for a message in its spool, read and written a piece at a
/// time into `spool` (hardening.md C-FT9): its structure from an outline,
/// the 8-bit parts encoded as they are copied.
pub fn convert_spooled(content: &Spooled, spool: &Spool) -> io::Result<Option<Spooled>> {
    let mut has_8bit = false;
    let mut builder = OutlineBuilder::new();
    content.chunks(|c| {
        has_8bit |= !c.is_ascii();
        builder.feed(c);
    })?;
    if !has_8bit {
        return Ok(None);
    }
    let outline = builder.finish();
    let mut edits: Vec<(Range<usize>, Edit)> = Vec::new();
    if plan(content, &outline, &outline.root, true, &mut edits)?.is_none() {
        return Ok(None);
    }
    let outside_parts = edits.iter().any(|(_, e)| matches!(e, Edit::Ascii));
    let stand_in = match (outside_parts, stand_in(&outline.root)) {
        (_, Some(c)) => c,
        (false, None) => b'?',
        (true, None) => return Ok(None),
    };
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = spool.writer();
    let mut at = 0;
    for (range, edit) in edits {
        pieces(content, at..range.start, |c| out.write(c))?;
        match edit {
            Edit::Bytes(bytes) => out.write(&bytes)?,
            Edit::Encode(mut encoder) => {
                let mut encoded = Vec::new();
                pieces(content, range.clone(), |c| {
                    encoder.feed(c, &mut encoded);
                    out.write(&std::mem::take(&mut encoded))
                })?;
                encoder.finish(&mut encoded);
                out.write(&encoded)?;
            }
            Edit::Ascii => pieces(content, range.clone(), |c| {
                let ascii: Vec<u8> = c
                    .iter()
                    .map(|&b| if b.is_ascii() { b } else { stand_in })
                    .collect();
                out.write(&ascii)
            })?,
        }
        at = range.end;
    }
    pieces(content, at..content.len() as usize, |c| out.write(c))?;
    out.finish().map(Some)
}

/// What may stand for an 8-bit octet outside a multipart's parts, in order
/// of preference: the first that no boundary of the message holds, so that
/// no line it is put in can become a delimiter (RFC 2046 §5.1.1).
pub const GAP_REPLACEMENTS: &[u8] = b"?*#~!$%&;<>@[]^`{|}";

/// The first of [`GAP_REPLACEMENTS`] that no boundary in the tree holds.
fn stand_in(root: &Entity) -> Option<u8> {
    let mut boundaries = Vec::new();
    let mut entities = vec![root];
    while let Some(e) = entities.pop() {
        boundaries.extend(e.content_type.param("boundary").map(str::to_string));
        entities.extend(e.children.iter().chain(e.message.as_deref()));
    }
    GAP_REPLACEMENTS
        .iter()
        .copied()
        .find(|&c| !boundaries.iter().any(|b| b.as_bytes().contains(&c)))
}

/// A replacement: new octets, the octets there encoded, or the octets
/// there with each 8-bit one as the stand-in no boundary holds.
enum Edit {
    Bytes(Vec<u8>),
    Encode(Encoder),
    Ascii,
}

/// `each` piece of the content's octets `range`, in order.
fn pieces(
    content: &Spooled,
    range: Range<usize>,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut block = vec![0; PIECE.min(range.len())];
    let mut at = range.start as u64;
    while at < range.end as u64 {
        let want = ((range.end as u64 - at) as usize).min(PIECE);
        let n = content.read_at(at, &mut block[..want])?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        each(&block[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Whether the octets `range` are all ASCII, and whether they are UTF-8.
fn ascii_utf8(content: &Spooled, range: Range<usize>) -> io::Result<(bool, bool)> {
    let (mut ascii, mut utf8) = (true, true);
    // A character cut by the end of a piece waits for the next one.
    let mut carry: Vec<u8> = Vec::new();
    pieces(content, range, |c| {
        ascii &= c.is_ascii();
        if utf8 && !ascii {
            carry.extend_from_slice(c);
            match std::str::from_utf8(&carry) {
                Ok(_) => carry.clear(),
                Err(e) if e.error_len().is_none() => {
                    carry.drain(..e.valid_up_to());
                }
                Err(_) => utf8 = false,
            }
        }
        Ok(())
    })?;
    Ok((ascii, utf8 && carry.is_empty()))
}

/// The replacements for one entity and those inside it; None if a header
/// section holds 8-bit bytes.
fn plan(
    content: &Spooled,
    o: &Outline,
    e: &Entity,
    top: bool,
    edits: &mut Vec<(Range<usize>, Edit)>,
) -> io::Result<Option<()>> {
    use crate::mime::Source;
    let head = o.head(e);
    if !head.is_ascii() {
        return Ok(None);
    }
    let (ascii, utf8) = ascii_utf8(content, e.body.clone())?;
    if ascii {
        return Ok(Some(()));
    }
    // A field put before a first line that starts with white space would
    // be continued by it, and none after it is read (RFC 5322 §2.2.3).
    if head.starts_with(b" ") || head.starts_with(b"\t") {
        return Ok(None);
    }
    let has_type = header::fields(head)
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("Content-Type"));
    if e.content_type.kind == "multipart" || e.message.is_some() {
        // An encapsulated message is a message: its text says its charset
        // as the top level's does (RFC 2046 §5.2.1).
        let parts = e.children.iter().map(|c| (c, false));
        for (child, top) in parts.chain(e.message.as_deref().map(|m| (m, true))) {
            if plan(content, o, child, top, edits)?.is_none() {
                return Ok(None);
            }
        }
        for gap in outside_the_parts(e) {
            edits.push((gap, Edit::Ascii));
        }
        // RFC 2045 §6.4: a composite entity's encoding is 7bit once its parts are.
        edits.push((
            e.header.clone(),
            Edit::Bytes(with_encoding(head, "7bit", None)),
        ));
        return Ok(Some(()));
    }
    let text = e.content_type.kind == "text";
    let (encoding, encoder) = if text {
        ("quoted-printable", Encoder::qp())
    } else {
        ("base64", Encoder::base64())
    };
    // RFC 2045 §5.2: no Content-Type is text/plain; say so, with the charset
    // the bytes are in when they are UTF-8.
    let added_type = (top && !has_type).then(|| {
        let charset = if utf8 { "utf-8" } else { "unknown-8bit" };
        format!("Content-Type: text/plain; charset={charset}\r\n")
    });
    let mut added = added_type.unwrap_or_default();
    if top
        && !header::fields(head)
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case("MIME-Version"))
    {
        added.push_str("MIME-Version: 1.0\r\n");
    }
    edits.push((
        e.header.clone(),
        Edit::Bytes(with_encoding(head, encoding, Some(&added))),
    ));
    edits.push((e.body.clone(), Edit::Encode(encoder)));
    Ok(Some(()))
}

/// The octets of a composite entity's body that belong to none of its
/// parts: the preamble, the delimiter lines, the epilogue (all of it when
/// no part was found). RFC 2046 §5.1.1: readers ignore them, so their 8-bit
/// octets may become `?` where they cannot be encoded.
fn outside_the_parts(e: &Entity) -> Vec<Range<usize>> {
    let mut gaps = Vec::new();
    let mut at = e.body.start;
    for part in e.children.iter().chain(e.message.as_deref()) {
        let start = part.header.start.max(at);
        if at < start {
            gaps.push(at..start);
        }
        at = part.body.end.max(at);
    }
    if at < e.body.end {
        gaps.push(at..e.body.end);
    }
    gaps
}

/// A header section with its Content-Transfer-Encoding replaced (and more
/// fields added) after the last field a reader takes: before the blank
/// line, or before a line that is not a field, which ends the header
/// section for readers (RFC 5322 §2.1) as it does for [`header::fields`].
fn with_encoding(head: &[u8], encoding: &str, added: Option<&str>) -> Vec<u8> {
    let kept = header::without_fields(head, |f| {
        f.name.eq_ignore_ascii_case("Content-Transfer-Encoding")
    });
    let at = header::fields(&kept)
        .last()
        .map_or(0, |f| header::span(&kept, f).end);
    let mut out = kept[..at].to_vec();
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    if let Some(added) = added {
        out.extend_from_slice(added.as_bytes());
    }
    out.extend_from_slice(format!("Content-Transfer-Encoding: {encoding}\r\n").as_bytes());
    out.extend_from_slice(&kept[at..]);
    out
}

/// RFC 2045 §6.7: line breaks kept as CRLF, lines at most 76 characters
/// with soft breaks, `=`, controls, 8-bit bytes and trailing white space
/// escaped.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    Encoder::qp().all(body)
}

/// RFC 2045 §6.8: base64 in lines of 76 characters.
pub fn base64_lines(body: &[u8]) -> Vec<u8> {
    Encoder::base64().all(body)
}

/// A content transfer encoder fed a piece at a time; what it makes does
/// not depend on where the input is cut.
pub enum Encoder {
    QuotedPrintable {
        /// Characters on the output line so far.
        width: usize,
        /// A space or tab, then a CR, whose encoding waits for what
        /// follows: white space at the end of a line is escaped; a CR
        /// before the LF is the line break.
        pending: Vec<u8>,
    },
    Base64 {
        /// Up to two octets waiting for a third.
        carry: Vec<u8>,
        /// Groups of four written so far.
        groups: usize,
    },
}

impl Encoder {
    pub fn qp() -> Encoder {
        Encoder::QuotedPrintable {
            width: 0,
            pending: Vec::new(),
        }
    }

    pub fn base64() -> Encoder {
        Encoder::Base64 {
            carry: Vec::new(),
            groups: 0,
        }
    }

    /// Encode one whole input.
    pub fn all(mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() * 3 / 2);
        self.feed(input, &mut out);
        self.finish(&mut out);
        out
    }

    /// Encode the next octets onto `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Encoder::QuotedPrintable { width, pending } => {
                for &b in input {
                    qp_octet(b, width, pending, out);
                }
            }
            Encoder::Base64 { carry, groups } => {
                let mut rest = input;
                if !carry.is_empty() {
                    let need = (3 - carry.len()).min(rest.len());
                    carry.extend_from_slice(&rest[..need]);
                    rest = &rest[need..];
                    if carry.len() < 3 {
                        return;
                    }
                    base64_group(carry, groups, out);
                    carry.clear();
                }
                let whole = rest.len() / 3 * 3;
                for group in rest[..whole].chunks(3) {
                    base64_group(group, groups, out);
                }
                carry.extend_from_slice(&rest[whole..]);
            }
        }
    }

    /// The input has ended.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            // A CR at the very end has no LF after it: it is no line break.
            Encoder::QuotedPrintable { width, pending } if pending.last() == Some(&b'\r') => {
                for p in std::mem::take(pending) {
                    qp_put(p, false, width, out);
                }
            }
            Encoder::QuotedPrintable { width, pending } => qp_line_end(width, pending, out),
            Encoder::Base64 { carry, groups } => {
                if !carry.is_empty() {
                    base64_group(&std::mem::take(carry), groups, out);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// One octet of quoted-printable input.
fn qp_octet(b: u8, width: &mut usize, pending: &mut Vec<u8>, out: &mut Vec<u8>) {
    match b {
        b'\n' => {
            qp_line_end(width, pending, out);
            out.extend_from_slice(b"\r\n");
        }
        b' ' | b'\t' | b'\r' => {
            // What waits is not at the end of its line: the CR was not
            // before an LF; white space before a CR waits with it.
            let keep_space = b == b'\r' && pending.len() == 1 && pending[0] != b'\r';
            if !keep_space {
                for p in std::mem::take(pending) {
                    qp_put(p, false, width, out);
                }
            }
            pending.push(b);
        }
        _ => {
            for p in std::mem::take(pending) {
                qp_put(p, false, width, out);
            }
            qp_put(b, false, width, out);
        }
    }
}

/// The end of a line (an LF, or the end of the input): a CR just before it
/// is the line break, the white space before that the line's last octet.
fn qp_line_end(width: &mut usize, pending: &mut Vec<u8>, out: &mut Vec<u8>) {
    let mut waiting = std::mem::take(pending);
    if waiting.last() == Some(&b'\r') {
        waiting.pop();
    }
    let n = waiting.len();
    for (i, p) in waiting.into_iter().enumerate() {
        qp_put(p, i + 1 == n, width, out);
    }
    *width = 0;
}

/// One octet as quoted-printable, `last` on its line. A `-` that would
/// start a line is escaped: a line starting `--` could be read as a
/// boundary delimiter (RFC 2045 §6.7 note 8).
fn qp_put(b: u8, last: bool, width: &mut usize, out: &mut Vec<u8>) {
    let line_start = *width == 0 || *width + 1 > 75;
    let literal = match b {
        b'=' => false,
        b'-' => !line_start,
        b' ' | b'\t' => !last,
        33..=126 => true,
        _ => false,
    };
    let piece_len = if literal { 1 } else { 3 };
    if *width + piece_len > 75 {
        out.extend_from_slice(b"=\r\n");
        *width = 0;
    }
    if literal {
        out.push(b);
    } else {
        out.extend_from_slice(format!("={b:02X}").as_bytes());
    }
    *width += piece_len;
}

/// One group of up to three octets as base64, after a line break every
/// 19 groups (76 characters).
fn base64_group(chunk: &[u8], groups: &mut usize, out: &mut Vec<u8>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if *groups > 0 && (*groups).is_multiple_of(19) {
        out.extend_from_slice(b"\r\n");
    }
    *groups += 1;
    let b = [
        chunk[0],
        chunk.get(1).copied().unwrap_or(0),
        chunk.get(2).copied().unwrap_or(0),
    ];
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    for i in 0..4 {
        if i <= chunk.len() {
            out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize]);
        } else {
            out.push(b'=');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::{self, Source};

    /// Encoders fed in pieces give what they give for the whole, which
    /// decodes back to the input, in lines of at most 76 characters.
    #[test]
    fn encoders_in_pieces() {
        let inputs: [&[u8]; 6] = [
            b"a \r\nb\t\r\n \r\r\n=\r x \n\ty \r",
            "Grüße = 100% \t".as_bytes(),
            b"\r\n\r\n  \r\r\n\n",
            &[0, 1, 2, 255, 254, 13, 10, 32, 13, 32, 10],
            b"",
            b"  ",
        ];
        let long: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
        for input in inputs.iter().copied().chain([long.as_slice()]) {
            for make in [Encoder::qp, Encoder::base64] {
                let whole = make().all(input);
                assert!(whole.split(|&b| b == b'\n').all(|l| l.len() <= 77));
                for cut in 0..=input.len().min(300) {
                    let mut e = make();
                    let mut out = Vec::new();
                    e.feed(&input[..cut], &mut out);
                    for piece in input[cut..].chunks(7) {
                        e.feed(piece, &mut out);
                    }
                    e.finish(&mut out);
                    assert_eq!(out, whole, "cut at {cut}");
                }
            }
            assert_eq!(mime::decode_base64(&base64_lines(input)), input);
            // Line breaks come back as CRLF; everything else as it was.
            let qp = mime::decode_qp(&quoted_printable(input));
            assert_eq!(
                qp.iter().filter(|&&b| b != b'\r').count(),
                input.iter().filter(|&&b| b != b'\r').count()
            );
        }
        assert_eq!(quoted_printable(b"a \r\nb\t"), b"a=20\r\nb=09");
        assert_eq!(quoted_printable(b"x \ry"), b"x =0Dy");
        // A CR at the very end has no LF after it: it is no line break.
        assert_eq!(mime::decode_qp(&quoted_printable(b"x \r")), b"x \r");
    }

    #[test]
    fn plain_message_becomes_quoted_printable() {
        let raw =
            "From: a@b.test\r\nSubject: x\r\n\r\nGrüße, = 100%\r\nline with trailing space \r\n"
                .as_bytes();
        let out = convert(raw).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(out.is_ascii(), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(text.contains("MIME-Version: 1.0\r\n"));
        assert!(text.contains("Content-Transfer-Encoding: quoted-printable\r\n\r\n"));
        assert!(text.contains("Gr=C3=BC=C3=9Fe, =3D 100%\r\nline with trailing space=20\r\n"));
        let body = &out[header::header_end(&out)..];
        assert_eq!(mime::decode_qp(body), &raw[header::header_end(raw)..]);
    }

    #[test]
    fn multipart_keeps_its_structure() {
        let raw = b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: 8bit\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nM\xfcller\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\xff\xfe\r\n--b--\r\n";
        let out = convert(raw).unwrap();
        assert!(out.is_ascii());
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: 7bit\r\n\r\n--b\r\n"),
            "{text}"
        );
        assert!(text.contains("charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nM=FCller\r\n--b"));
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\nAAH//g==\r\n\r\n--b--"),
            "{text}"
        );
        let e = mime::parse(&out);
        assert_eq!(e.children.len(), 2);
        let second = &e.children[1];
        assert_eq!(
            mime::decode_body(Some("base64"), &out[second.body.clone()]).unwrap(),
            b"\x00\x01\xff\xfe"
        );
    }

    /// RFC 2046 §5.1.1: what lies outside a multipart's parts (the preamble,
    /// the epilogue, all of a multipart whose boundary is never found) is
    /// ignored by readers, but its octets still go to a server that said it
    /// takes 7 bit only; and a multipart may not be base64 (RFC 2045 §6.4).
    #[test]
    fn eight_bit_outside_the_parts_is_not_sent() {
        let raw = b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npre \xfc\r\n--b\r\nContent-Type: text/plain\r\n\r\nM\xfcller\r\n--b--\r\nepi \xfc\r\n";
        let out = convert(raw).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(out.is_ascii(), "{text}");
        assert!(text.contains("\r\n\r\npre ?\r\n--b\r\n"), "{text}");
        assert!(text.contains("M=FCller\r\n--b--\r\nepi ?\r\n"), "{text}");

        let no_parts = b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=zz\r\n\r\n--b\r\n\r\nM\xfcller\r\n--b--\r\n";
        let out = convert(no_parts).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(out.is_ascii(), "{text}");
        assert!(
            text.contains("Content-Transfer-Encoding: 7bit\r\n\r\n--b\r\n\r\nM?ller\r\n"),
            "{text}"
        );
    }

    /// The octet that stands for an 8-bit one outside the parts is none a
    /// boundary holds: `--` and an 8-bit octet would otherwise become a
    /// delimiter line of the boundary `?` (found by the `seven_bit` target).
    #[test]
    fn what_stands_for_eight_bit_ends_no_part() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"?\"\r\n\r\npre\r\n--\xfc\r\nno part\r\n--?\r\n\r\nM\xfcller\r\n--?--\r\n";
        let out = convert(raw).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(mime::parse(&out).children.len(), 1, "{text}");
        assert!(text.contains("pre\r\n--*\r\nno part\r\n"), "{text}");
        // A boundary may hold every octet that could stand in: left alone.
        let all: String = GAP_REPLACEMENTS.iter().map(|&b| b as char).collect();
        let raw = format!(
            "Content-Type: multipart/mixed; boundary=\"{all}\"\r\n\r\npre \u{fc}\r\n--{all}\r\n\r\nx\r\n--{all}--\r\n"
        );
        assert_eq!(convert(raw.as_bytes()), None);
    }

    /// An encapsulated message is a message (RFC 2046 §5.2.1): its text
    /// without a Content-Type says its charset, as the top level's does.
    #[test]
    fn an_encapsulated_message_says_what_its_text_is() {
        let raw = b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nM\xc3\xbcller\r\n";
        let out = convert(raw).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("\r\n\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nM=C3=BCller\r\n"),
            "{text}"
        );
    }

    /// A line of the encoded text that starts `--` could be read as a
    /// boundary delimiter (RFC 2045 §6.7 note 8; RFC 2046 §5.1.1): a bare LF
    /// becoming CRLF, or a soft break, must not make one.
    #[test]
    fn no_encoded_line_starts_with_two_hyphens() {
        let long = format!("{}--b\r\n", "x".repeat(74));
        for text in [&b"line\n--b\r\n"[..], b"--b\r\n", long.as_bytes()] {
            let out = quoted_printable(text);
            assert!(
                out.split(|&b| b == b'\n').all(|l| !l.starts_with(b"-")),
                "{}",
                String::from_utf8_lossy(&out)
            );
            assert_eq!(mime::decode_qp(&out), with_crlf(text));
        }
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nM\xfcller\nline\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n\xfc\r\n--b--\r\n";
        let out = convert(raw).unwrap();
        assert_eq!(
            mime::parse(&out).children.len(),
            mime::parse(raw).children.len()
        );
    }

    /// Bare LFs as CRLF, as quoted-printable gives them back.
    fn with_crlf(text: &[u8]) -> Vec<u8> {
        String::from_utf8_lossy(text)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    /// A line that is not a field ends the header section for readers that
    /// stop there (as Tern's own, RFC 5322 §2.1): the new fields go before
    /// it, where every reader finds them.
    #[test]
    fn new_fields_go_where_readers_read_them() {
        for raw in [
            &b"Subject: x\r\nbroken line\r\nFrom: a@b.test\r\n\r\nM\xfcller\r\n"[..],
            b"From\r\n\r\n=at@:\xff",
        ] {
            let out = convert(raw).unwrap();
            let e = mime::parse(&out);
            let text = String::from_utf8_lossy(&out);
            assert_eq!(
                out[..].field(&e, "Content-Transfer-Encoding").as_deref(),
                Some("quoted-printable"),
                "{text}"
            );
            assert_eq!(
                out[..].field(&e, "MIME-Version").as_deref(),
                Some("1.0"),
                "{text}"
            );
        }
    }

    #[test]
    fn left_alone() {
        assert_eq!(convert(b"Subject: x\r\n\r\nascii\r\n"), None);
        assert_eq!(convert("Subject: ü\r\n\r\nbody ü\r\n".as_bytes()), None);
        // A header section that starts with white space: any field put
        // before it would be continued by that line, and none after it is
        // read (RFC 5322 §2.2.3).
        assert_eq!(convert(b" x: y\r\n\r\nM\xfcller\r\n"), None);
        let part = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\tx: y\r\n\r\n\xfc\r\n--b--\r\n";
        assert_eq!(convert(part), None);
    }

    #[test]
    fn long_lines_get_soft_breaks() {
        let line = "é".repeat(100);
        let out = quoted_printable(line.as_bytes());
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 77));
        assert_eq!(mime::decode_qp(&out), line.as_bytes());
        let data: Vec<u8> = (0..=255).collect();
        let b = base64_lines(&data);
        assert!(b.split(|&c| c == b'\n').all(|l| l.len() <= 77));
        assert_eq!(mime::decode_base64(&b), data);
    }
}
