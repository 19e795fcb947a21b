//! The header section of an RFC 5322 message, read strictly.
//!
//! Field names follow RFC 5322 §3.6.8 (`ftext`: printable ASCII except ':'),
//! nothing else: a line such as `Fr om: x` is not a From: field (mail-parser
//! would read it as one, see dependencies.md). Folded lines (RFC 5322 §2.2.3)
//! belong to the field above them.

use crate::address::Mailbox;

/// One header field as it appears in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// The name as written (compare with `eq_ignore_ascii_case`).
    pub name: &'a str,
    /// The raw value after the colon, folding CRLFs included, without the final CRLF.
    pub value: &'a [u8],
}

impl Field<'_> {
    /// The value unfolded (CRLF before WSP removed, RFC 5322 §2.2.3) and trimmed, lossy UTF-8.
    pub fn unfolded(&self) -> String {
        let text = String::from_utf8_lossy(self.value);
        text.replace("\r\n", "")
            .replace('\n', "")
            .trim()
            .to_string()
    }
}

/// Text from elsewhere (another server's reply, a decoded ORCPT, a
/// subject) made fit for one line of a field, a log or a report: each
/// control character (CR, LF, TAB, ESC...) becomes a space, so nothing can
/// start a field or a line of its own, or drive a terminal.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Where the header section ends: the index just past the empty line, or the
/// whole input when a message has no body.
pub fn header_end(message: &[u8]) -> usize {
    if message.starts_with(b"\r\n") {
        return 2;
    }
    match find(message, b"\r\n\r\n") {
        Some(i) => i + 4,
        None => message.len(),
    }
}

/// The fields of the header section, in order. A line that is neither a field nor a
/// continuation ends the header section (RFC 5322 §2.1: the rest is body).
pub fn fields(message: &[u8]) -> Vec<Field<'_>> {
    let head = &message[..header_end(message)];
    let mut out: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    while pos < head.len() {
        let line_end = find(&head[pos..], b"\r\n")
            .map(|i| pos + i)
            .unwrap_or(head.len());
        let line = &head[pos..line_end];
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
            break;
        }
        // The field runs until a line that does not start with WSP.
        let mut end = line_end;
        while end + 2 < head.len() && matches!(head[end + 2], b' ' | b'\t') {
            end = find(&head[end + 2..], b"\r\n")
                .map(|i| end + 2 + i)
                .unwrap_or(head.len());
        }
        let name = std::str::from_utf8(name).unwrap_or_default();
        out.push(Field {
            name,
            value: &head[pos + colon + 1..end],
        });
        pos = end + 2;
    }
    out
}

/// Where a field of [`fields`]`(message)` lies in `message`: from its name
/// to past its final CRLF (its folded lines included).
pub fn span(message: &[u8], f: &Field<'_>) -> std::ops::Range<usize> {
    let base = message.as_ptr() as usize;
    let start = f.name.as_ptr() as usize - base;
    let end = f.value.as_ptr() as usize - base + f.value.len();
    start..(end + 2).min(message.len())
}

/// The message without the header fields `drop` selects (each with its folded
/// lines and final CRLF); borrowed when nothing is dropped.
pub fn without_fields<'a>(
    message: &'a [u8],
    mut drop: impl FnMut(&Field<'_>) -> bool,
) -> std::borrow::Cow<'a, [u8]> {
    let ranges: Vec<std::ops::Range<usize>> = fields(message)
        .iter()
        .filter(|f| drop(f))
        .map(|f| span(message, f))
        .collect();
    if ranges.is_empty() {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len());
    let mut pos = 0;
    for range in ranges {
        out.extend_from_slice(&message[pos..range.start]);
        pos = range.end;
    }
    out.extend_from_slice(&message[pos..]);
    std::borrow::Cow::Owned(out)
}

/// All fields with this name (case-insensitive).
pub fn fields_named<'a>(message: &'a [u8], name: &str) -> Vec<Field<'a>> {
    fields(message)
        .into_iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name))
        .collect()
}

/// The addr-specs of an address-list header value (From:, Sender:, To:...): display
/// names, comments and groups are skipped. Values that do not parse give no address.
pub fn addresses(value: &[u8]) -> Vec<Mailbox> {
    let mut raw = b"From:".to_vec();
    raw.extend_from_slice(value);
    raw.extend_from_slice(b"\r\n\r\n");
    let parsed = mail_parser::MessageParser::default().parse_headers(&raw[..]);
    let mut out = Vec::new();
    let Some(list) = parsed.as_ref().and_then(|m| m.from()) else {
        return out;
    };
    for addr in list.iter() {
        if let Some(m) = addr.address().and_then(|a| Mailbox::parse(a).ok()) {
            out.push(m);
        }
    }
    out
}

/// A field value as text: unfolded, trimmed, RFC 2047 encoded words decoded
/// (mail-parser's decoders; 8-bit UTF-8 taken as is).
pub fn decoded(value: &[u8]) -> String {
    let unfold = |s: &str| s.replace("\r\n", "").replace('\n', "").trim().to_string();
    if value.is_ascii() && !value.windows(2).any(|w| w == b"=?") {
        return unfold(&String::from_utf8_lossy(value));
    }
    let mut raw = b"Subject:".to_vec();
    raw.extend_from_slice(value);
    raw.extend_from_slice(b"\r\n\r\n");
    let parsed = mail_parser::MessageParser::default().parse_headers(&raw[..]);
    match parsed.as_ref().and_then(|m| m.subject()) {
        Some(s) => unfold(s),
        None => unfold(&String::from_utf8_lossy(value)),
    }
}

/// The message ids (`<left@right>`, brackets dropped) in a Message-ID,
/// In-Reply-To or References value, in order (RFC 5322 §3.6.4).
pub fn message_ids(value: &[u8]) -> Vec<String> {
    bracketed(value)
        .into_iter()
        .filter(|id| !id.is_empty() && id.len() <= 998)
        .collect()
}

/// What each `<...>` of a value holds, white space dropped, in order
/// (message ids; the URLs of List-* fields, RFC 2369 §2).
pub fn bracketed(value: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(value);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        out.push(
            after[..close]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
        );
        rest = &after[close + 1..];
    }
    out
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from a\r\n by b; date\r\nFrom: \"Alice A.\" <alice@a.test>\r\nFr om: bob@a.test\r\nSubject: hi\r\n\r\nbody\r\nFrom: no@x\r\n";

    #[test]
    fn fields_are_strict_and_stop_at_body() {
        let names: Vec<_> = fields(MSG).iter().map(|f| f.name).collect();
        // "Fr om" ends the header section: it is not a field.
        assert_eq!(names, ["Received", "From"]);
        assert_eq!(fields(MSG)[0].unfolded(), "from a by b; date");
    }

    #[test]
    fn from_addresses() {
        let from = &fields_named(MSG, "from")[0];
        assert_eq!(
            addresses(from.value),
            vec![Mailbox::parse("alice@a.test").unwrap()]
        );
        let many = addresses(b" a@x.test, \"B\" <b@y.test>, Group: c@z.test;");
        assert_eq!(many.len(), 3);
    }

    #[test]
    fn decoding_and_ids() {
        assert_eq!(
            decoded(b" =?ISO-8859-1?Q?Caf=E9?=\r\n  ok "),
            "Caf\u{e9} ok"
        );
        assert_eq!(decoded(b"  plain\r\n folded"), "plain folded");
        assert_eq!(
            message_ids(b" <a@b> <c@d>\r\n\t<e @f>"),
            ["a@b", "c@d", "e@f"]
        );
        assert!(message_ids(b" no ids").is_empty());
    }

    #[test]
    fn header_end_positions() {
        assert_eq!(header_end(b"\r\nbody"), 2);
        assert_eq!(header_end(b"A: b\r\n\r\nx"), 8);
        assert_eq!(header_end(b"A: b\r\n"), 6);
    }
}
