//! Converting a message with 8-bit content to 7 bit (RFC 6152 §3: a message
//! declared 8BITMIME going to a server without 8BITMIME "MUST be converted
//! ... to 7 bit, using the content transfer encodings of RFC 2045"). Text
//! parts become quoted-printable, others base64; multipart and message
//! parts keep their structure and are labelled 7bit. 8-bit header fields
//! cannot be converted this way (they need SMTPUTF8, RFC 6532): such a
//! message is left alone.

use crate::header;
use crate::mime::{self, Entity};

/// The 7-bit form of `raw`, or None when it has no 8-bit content or when
/// it has 8-bit header fields.
pub fn convert(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_ascii() {
        return None;
    }
    let root = mime::parse(raw);
    let mut edits: Vec<(std::ops::Range<usize>, Vec<u8>)> = Vec::new();
    plan(raw, &root, true, &mut edits)?;
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 3);
    let mut at = 0;
    for (range, bytes) in edits {
        out.extend_from_slice(&raw[at..range.start]);
        out.extend_from_slice(&bytes);
        at = range.end;
    }
    out.extend_from_slice(&raw[at..]);
    Some(out)
}

/// The replacements for one entity and those inside it; None if a header
/// section holds 8-bit bytes.
fn plan(
    raw: &[u8],
    e: &Entity,
    top: bool,
    edits: &mut Vec<(std::ops::Range<usize>, Vec<u8>)>,
) -> Option<()> {
    let head = &raw[e.header.clone()];
    if !head.is_ascii() {
        return None;
    }
    let body = &raw[e.body.clone()];
    if body.is_ascii() {
        return Some(());
    }
    let has_type = header::fields(head)
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("Content-Type"));
    if e.is_multipart() || e.message.is_some() {
        for child in &e.children {
            plan(raw, child, false, edits)?;
        }
        if let Some(inner) = &e.message {
            plan(raw, inner, false, edits)?;
        }
        // RFC 2045 §6.4: a composite entity's encoding is 7bit once its parts are.
        edits.push((e.header.clone(), with_encoding(head, "7bit", None)));
        return Some(());
    }
    let text = e.content_type.kind == "text";
    let (encoding, encoded) = if text {
        ("quoted-printable", quoted_printable(body))
    } else {
        ("base64", base64_lines(body))
    };
    // RFC 2045 §5.2: no Content-Type is text/plain; say so, with the charset
    // the bytes are in when they are UTF-8.
    let added_type = (top && !has_type).then(|| {
        let charset = if std::str::from_utf8(body).is_ok() {
            "utf-8"
        } else {
            "unknown-8bit"
        };
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
        with_encoding(head, encoding, Some(&added)),
    ));
    edits.push((e.body.clone(), encoded));
    Some(())
}

/// A header section with its Content-Transfer-Encoding replaced (and more
/// fields added), the blank line kept at the end.
fn with_encoding(head: &[u8], encoding: &str, added: Option<&str>) -> Vec<u8> {
    let kept = header::without_fields(head, |f| {
        f.name.eq_ignore_ascii_case("Content-Transfer-Encoding")
    });
    let (fields, blank) = match kept.strip_suffix(b"\r\n") {
        Some(f) if kept.ends_with(b"\r\n\r\n") || kept.as_ref() == b"\r\n" => (f, &b"\r\n"[..]),
        _ => (kept.as_ref(), &b""[..]),
    };
    let mut out = fields.to_vec();
    if let Some(added) = added {
        out.extend_from_slice(added.as_bytes());
    }
    out.extend_from_slice(format!("Content-Transfer-Encoding: {encoding}\r\n").as_bytes());
    out.extend_from_slice(blank);
    out
}

/// RFC 2045 §6.7: line breaks kept as CRLF, lines at most 76 characters
/// with soft breaks, `=`, controls, 8-bit bytes and trailing white space
/// escaped.
pub fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 3 / 2);
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut width = 0;
        for (j, &b) in line.iter().enumerate() {
            let last = j + 1 == line.len();
            let literal = match b {
                b'=' => false,
                b' ' | b'\t' => !last,
                33..=126 => true,
                _ => false,
            };
            let piece_len = if literal { 1 } else { 3 };
            if width + piece_len > 75 {
                out.extend_from_slice(b"=\r\n");
                width = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(format!("={b:02X}").as_bytes());
            }
            width += piece_len;
        }
        if i + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

/// RFC 2045 §6.8: base64 in lines of 76 characters.
pub fn base64_lines(body: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(body.len() * 4 / 3 + body.len() / 38 + 4);
    for (n, chunk) in body.chunks(3).enumerate() {
        if n > 0 && n % 19 == 0 {
            out.extend_from_slice(b"\r\n");
        }
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
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn left_alone() {
        assert_eq!(convert(b"Subject: x\r\n\r\nascii\r\n"), None);
        assert_eq!(convert("Subject: ü\r\n\r\nbody ü\r\n".as_bytes()), None);
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
