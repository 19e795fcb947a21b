//! Writing IMAP responses (RFC 9051 §7): strings as atoms, quoted strings or
//! literals as their content requires, and the tagged/untagged status lines.

use std::fmt::Write as _;

/// Append an IMAP string: a quoted string when it is short and safe, else a
/// literal. 8-bit text is quoted only for UTF-8 clients (IMAP4rev2, UTF8=ACCEPT).
pub fn string(out: &mut Vec<u8>, s: &[u8], utf8: bool) {
    let quotable = s.len() < 1024
        && s.iter()
            .all(|&b| b != b'\r' && b != b'\n' && b != 0 && (b < 0x80 || utf8))
        && (s.is_ascii() || std::str::from_utf8(s).is_ok());
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// `{n}\r\n` and the bytes.
pub fn literal(out: &mut Vec<u8>, bytes: &[u8]) {
    let _ = write!(Cursor(out), "{{{}}}\r\n", bytes.len());
    out.extend_from_slice(bytes);
}

/// NIL or a string.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>, utf8: bool) {
    match s {
        Some(s) => string(out, s, utf8),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name: an atom where possible (INBOX, Sent), else a string.
pub fn astring(out: &mut Vec<u8>, s: &str, utf8: bool) {
    let atom = !s.is_empty()
        && s.bytes()
            .all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b));
    if atom {
        out.extend_from_slice(s.as_bytes());
    } else {
        string(out, s.as_bytes(), utf8);
    }
}

/// A parenthesized list of flags.
pub fn flags(out: &mut Vec<u8>, flags: &[String]) {
    out.push(b'(');
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.as_bytes());
    }
    out.push(b')');
}

/// Lets `write!` append to a `Vec<u8>`.
pub struct Cursor<'a>(pub &'a mut Vec<u8>);

impl std::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `* text\r\n`.
pub fn untagged(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `+ text\r\n`: a continuation request.
pub fn untagged_continuation(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"+ ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `tag OK|NO|BAD text\r\n` (text may start with a `[CODE]`).
pub fn tagged(out: &mut Vec<u8>, tag: &str, status: &str, text: &str) {
    let _ = write!(Cursor(out), "{tag} {status} {text}\r\n");
}

/// An IMAP date-time: `"23-Nov-2026 12:34:56 +0000"`.
pub fn date_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = message::date::civil_from_days(days);
    format!(
        "\"{d:02}-{}-{y:04} {:02}:{:02}:{:02} +0000\"",
        message::date::month_name(m),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\"", false);
        out.push(b' ');
        string(&mut out, "Grüße".as_bytes(), false);
        out.push(b' ');
        string(&mut out, "Grüße".as_bytes(), true);
        out.push(b' ');
        astring(&mut out, "INBOX", false);
        out.push(b' ');
        astring(&mut out, "My Box", false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a \\\"b\\\"\" {7}\r\nGrüße \"Grüße\" INBOX \"My Box\""
        );
        assert_eq!(date_time(0), "\"01-Jan-1970 00:00:00 +0000\"");
    }
}
