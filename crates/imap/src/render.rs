//! FETCH data from a message (RFC 9051 §7.5.2): ENVELOPE, BODY and
//! BODYSTRUCTURE, BODY[section] contents, BINARY. Pure functions of the MIME
//! tree and a [`Source`] of header sections and line counts: the message's
//! octets, or the outline of a large one read as a stream, whose sections
//! are then copied from the store by their ranges.

use std::ops::Range;

use message::envelope::{Envelope, EnvelopeAddress, envelope};
use message::mime::{Decoder, Entity, Source};

use crate::parse::{Section, SectionText};
use crate::response::{nstring, string};

pub fn write_envelope(out: &mut Vec<u8>, head: &[u8], utf8: bool) {
    let e: Envelope = envelope(head);
    out.push(b'(');
    nstring(out, e.date.as_deref().map(str::as_bytes), utf8);
    out.push(b' ');
    nstring(out, e.subject.as_deref().map(str::as_bytes), utf8);
    for list in [&e.from, &e.sender, &e.reply_to, &e.to, &e.cc, &e.bcc] {
        out.push(b' ');
        addresses(out, list, utf8);
    }
    out.push(b' ');
    nstring(out, e.in_reply_to.as_deref().map(str::as_bytes), utf8);
    out.push(b' ');
    nstring(out, e.message_id.as_deref().map(str::as_bytes), utf8);
    out.push(b')');
}

/// `((name adl mailbox host) ...)` or NIL; groups as RFC 9051 §7.5.2 describes.
fn addresses(out: &mut Vec<u8>, list: &[EnvelopeAddress], utf8: bool) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        out.push(b'(');
        match a {
            EnvelopeAddress::Mailbox {
                name,
                route,
                local,
                host,
            } => {
                nstring(out, name.as_deref().map(str::as_bytes), utf8);
                out.push(b' ');
                nstring(out, route.as_deref().map(str::as_bytes), utf8);
                out.push(b' ');
                string(out, local.as_bytes(), utf8);
                out.push(b' ');
                string(out, host.as_bytes(), utf8);
            }
            EnvelopeAddress::GroupStart(name) => {
                out.extend_from_slice(b"NIL NIL ");
                string(out, name.as_bytes(), utf8);
                out.extend_from_slice(b" NIL");
            }
            EnvelopeAddress::GroupEnd => out.extend_from_slice(b"NIL NIL NIL NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}

/// BODYSTRUCTURE (`extended`) or BODY (RFC 9051 §7.5.2).
pub fn write_structure<S: Source + ?Sized>(
    out: &mut Vec<u8>,
    src: &S,
    e: &Entity,
    extended: bool,
    utf8: bool,
) {
    let ct = &e.content_type;
    out.push(b'(');
    if e.is_multipart() {
        for child in &e.children {
            write_structure(out, src, child, extended, utf8);
        }
        out.push(b' ');
        string(out, ct.subtype.to_ascii_uppercase().as_bytes(), utf8);
        if extended {
            out.push(b' ');
            params(out, &ct.params, utf8);
            out.push(b' ');
            extension(out, src, e, utf8);
        }
        out.push(b')');
        return;
    }
    string(out, ct.kind.to_ascii_uppercase().as_bytes(), utf8);
    out.push(b' ');
    string(out, ct.subtype.to_ascii_uppercase().as_bytes(), utf8);
    out.push(b' ');
    params(out, &ct.params, utf8);
    for field in ["Content-ID", "Content-Description"] {
        out.push(b' ');
        nstring(out, src.field(e, field).as_deref().map(str::as_bytes), utf8);
    }
    out.push(b' ');
    let encoding = src
        .field(e, "Content-Transfer-Encoding")
        .map(|v| v.to_ascii_uppercase())
        .unwrap_or_else(|| "7BIT".into());
    string(out, encoding.as_bytes(), utf8);
    out.extend_from_slice(format!(" {}", e.body.len()).as_bytes());
    if let Some(inner) = &e.message {
        out.push(b' ');
        write_envelope(out, src.head(inner), utf8);
        out.push(b' ');
        write_structure(out, src, inner, extended, utf8);
        out.extend_from_slice(format!(" {}", src.lines(e)).as_bytes());
    } else if ct.kind == "text" {
        out.extend_from_slice(format!(" {}", src.lines(e)).as_bytes());
    }
    if extended {
        out.push(b' ');
        nstring(
            out,
            src.field(e, "Content-MD5").as_deref().map(str::as_bytes),
            utf8,
        );
        out.push(b' ');
        extension(out, src, e, utf8);
    }
    out.push(b')');
}

/// `disposition language location`.
fn extension<S: Source + ?Sized>(out: &mut Vec<u8>, src: &S, e: &Entity, utf8: bool) {
    match src.field(e, "Content-Disposition") {
        Some(value) => {
            let (kind, ps) = message::mime::parse_with_params(&value);
            out.push(b'(');
            string(out, kind.to_ascii_uppercase().as_bytes(), utf8);
            out.push(b' ');
            params(out, &ps, utf8);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    for field in ["Content-Language", "Content-Location"] {
        out.push(b' ');
        nstring(out, src.field(e, field).as_deref().map(str::as_bytes), utf8);
    }
}

fn params(out: &mut Vec<u8>, ps: &[(String, String)], utf8: bool) {
    if ps.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in ps.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k.to_ascii_uppercase().as_bytes(), utf8);
        out.push(b' ');
        // Values are decoded (RFC 2231); a client that has not enabled UTF-8
        // gets non-ASCII ones as an RFC 2047 encoded word, as MUAs expect.
        if utf8 || v.is_ascii() {
            string(out, v.as_bytes(), utf8);
        } else {
            string(out, encoded_word(v).as_bytes(), utf8);
        }
    }
    out.push(b')');
}

/// RFC 2047 §4.1: `=?UTF-8?B?...?=`.
fn encoded_word(text: &str) -> String {
    use base64::Engine;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// What BODY[section] holds: octets of the message, or octets made from a
/// header section (HEADER.FIELDS).
#[derive(Debug, PartialEq, Eq)]
pub enum SectionData {
    Range(Range<usize>),
    Made(Vec<u8>),
}

/// BODY[section] of a message of `len` octets; None if the part does not exist.
pub fn section<S: Source + ?Sized>(
    src: &S,
    root: &Entity,
    len: usize,
    s: &Section,
) -> Option<SectionData> {
    let part = root.part(&s.part)?;
    // HEADER, TEXT, HEADER.FIELDS of a part apply to the message inside it.
    let message = if s.part.is_empty() {
        Some(root)
    } else {
        part.message.as_deref()
    };
    Some(match &s.text {
        None if s.part.is_empty() => SectionData::Range(0..len),
        None => SectionData::Range(part.body.clone()),
        Some(SectionText::Mime) => SectionData::Range(part.header.clone()),
        Some(SectionText::Header) => SectionData::Range(message?.header.clone()),
        Some(SectionText::Text) => SectionData::Range(message?.body.clone()),
        Some(SectionText::HeaderFields(names)) => {
            SectionData::Made(header_fields(src.head(message?), names, true))
        }
        Some(SectionText::HeaderFieldsNot(names)) => {
            SectionData::Made(header_fields(src.head(message?), names, false))
        }
    })
}

/// The header lines whose name is (or is not) in `names`, and the blank line.
fn header_fields(head: &[u8], names: &[String], wanted: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for f in message::header::fields(head) {
        if names.iter().any(|n| n.eq_ignore_ascii_case(f.name)) == wanted {
            out.extend_from_slice(f.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(f.value);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The section name as it is echoed in the response: `1.HEADER.FIELDS (From)`.
pub fn section_label(s: &Section) -> String {
    let mut label: Vec<String> = s.part.iter().map(u32::to_string).collect();
    match &s.text {
        None => {}
        Some(SectionText::Header) => label.push("HEADER".into()),
        Some(SectionText::Text) => label.push("TEXT".into()),
        Some(SectionText::Mime) => label.push("MIME".into()),
        Some(SectionText::HeaderFields(n)) => {
            label.push(format!("HEADER.FIELDS ({})", n.join(" ")))
        }
        Some(SectionText::HeaderFieldsNot(n)) => {
            label.push(format!("HEADER.FIELDS.NOT ({})", n.join(" ")))
        }
    }
    label.join(".")
}

/// RFC 3516 BINARY[part] of a message of `len` octets: the octets to decode
/// and the decoder; Err(()) for an unknown encoding, None for no such part.
pub fn binary<S: Source + ?Sized>(
    src: &S,
    root: &Entity,
    len: usize,
    part: &[u32],
) -> Option<Result<(Range<usize>, Decoder), ()>> {
    let e = root.part(part)?;
    if part.is_empty() {
        return Some(Ok((0..len, Decoder::Identity)));
    }
    let encoding = src.field(e, "Content-Transfer-Encoding");
    Some(
        Decoder::new(encoding.as_deref())
            .map(|d| (e.body.clone(), d))
            .ok_or(()),
    )
}

/// `<start.count>` applied to a range of `len` octets (RFC 9051 §6.4.5).
pub fn partial_range(len: u64, range: Option<(u32, u32)>) -> Range<u64> {
    match range {
        None => 0..len,
        Some((start, count)) => {
            let start = u64::from(start).min(len);
            start..(start + u64::from(count)).min(len)
        }
    }
}

/// `<start.count>` applied to section data (RFC 9051 §6.4.5).
pub fn partial(data: &[u8], range: Option<(u32, u32)>) -> &[u8] {
    let r = partial_range(data.len() as u64, range);
    &data[r.start as usize..r.end as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_text_structure() {
        let raw =
            b"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline1\r\nline2\r\n";
        let e = message::mime::parse(raw);
        let mut out = Vec::new();
        write_structure(&mut out, &raw[..], &e, false, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 14 2)"
        );
        let mut out = Vec::new();
        write_structure(&mut out, &raw[..], &e, true, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 14 2 NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn multipart_structure_and_sections() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\r\naGVsbG8=\r\n--b--\r\n";
        let e = message::mime::parse(raw);
        let mut out = Vec::new();
        write_structure(&mut out, &raw[..], &e, true, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 2 1 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" NIL NIL NIL \"BASE64\" 8 NIL (\"ATTACHMENT\" (\"FILENAME\" \"a.pdf\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL)"
        );
        let s = |part: Vec<u32>, text| Section { part, text };
        let bytes = |d: SectionData| match d {
            SectionData::Range(r) => raw[r].to_vec(),
            SectionData::Made(b) => b,
        };
        let sec = |part, text| section(&raw[..], &e, raw.len(), &s(part, text));
        assert_eq!(bytes(sec(vec![1], None).unwrap()), b"hi");
        assert_eq!(bytes(sec(vec![2], Some(SectionText::Mime)).unwrap()), b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n\r\n");
        let (range, decoder) = binary(&raw[..], &e, raw.len(), &[2]).unwrap().unwrap();
        assert_eq!(decoder.all(&raw[range]), b"hello");
        assert!(sec(vec![3], None).is_none());
        assert_eq!(
            bytes(
                sec(
                    vec![],
                    Some(SectionText::HeaderFields(vec!["content-type".into()]))
                )
                .unwrap()
            ),
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        );
        assert_eq!(partial(b"abcdef", Some((2, 3))), b"cde");
        assert_eq!(partial(b"abc", Some((5, 3))), b"");
    }

    #[test]
    fn envelope_rendering() {
        let head = b"Date: Wed, 17 Jul 1996 02:23:25 -0700\r\nFrom: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev2 WG mtg\r\nTo: imap@cac.washington.edu\r\nMessage-Id: <B27397-0100000@cac.washington.edu>\r\n\r\n";
        let mut out = Vec::new();
        write_envelope(&mut out, head, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "(\"Wed, 17 Jul 1996 02:23:25 -0700\" \"IMAP4rev2 WG mtg\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
        );
    }
}
