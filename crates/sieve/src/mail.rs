//! The message a script looks at and edits: its top-level header fields
//! (which `addheader` and `deleteheader` change, RFC 5293, and which later
//! tests then see), its MIME parts (RFC 5703) and its body texts (RFC 5173).

use std::sync::OnceLock;

use message::mime::Entity;

/// Header fields a script may neither add nor delete (RFC 5293 §4.1, §9):
/// the trace of the message and the loop guards.
pub const PROTECTED_FIELDS: &[&str] =
    &["received", "auto-submitted", "delivered-to", "return-path"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// As written after the colon, folding included, no final CRLF.
    pub value: Vec<u8>,
}

pub struct Mail {
    original: Vec<u8>,
    /// The top-level header fields, edited.
    fields: Vec<Field>,
    /// Where the body starts in `original`.
    body_start: usize,
    edited: bool,
    tree: OnceLock<Entity>,
}

impl Mail {
    pub fn new(raw: Vec<u8>) -> Mail {
        let body_start = message::header::header_end(&raw);
        let fields = message::header::fields(&raw)
            .into_iter()
            .map(|f| Field {
                name: f.name.to_string(),
                value: f.value.to_vec(),
            })
            .collect();
        Mail {
            original: raw,
            fields,
            body_start,
            edited: false,
            tree: OnceLock::new(),
        }
    }

    /// The message as it is now (edits applied).
    pub fn bytes(&self) -> Vec<u8> {
        if !self.edited {
            return self.original.clone();
        }
        let body = &self.original[self.body_start..];
        let mut out = Vec::with_capacity(self.original.len() + 64);
        for f in &self.fields {
            out.extend_from_slice(f.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(&f.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }

    pub fn is_edited(&self) -> bool {
        self.edited
    }

    /// RFC 5228 §5.9: the size in octets.
    pub fn size(&self) -> u64 {
        if !self.edited {
            return self.original.len() as u64;
        }
        let head: usize = self
            .fields
            .iter()
            .map(|f| f.name.len() + f.value.len() + 3)
            .sum();
        (head + 2 + self.original.len() - self.body_start) as u64
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The raw values of the top-level fields named `name`, in order.
    pub fn raw_values(&self, name: &str) -> Vec<&[u8]> {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_slice())
            .collect()
    }

    /// RFC 5293 §4: a new field first, or last with `:last`.
    pub fn add_field(&mut self, name: &str, value: &str, last: bool) {
        let field = Field {
            name: name.to_string(),
            value: format!(" {}", fold(&encode_value(value), name.len() + 2)).into_bytes(),
        };
        if last {
            self.fields.push(field);
        } else {
            self.fields.insert(0, field);
        }
        self.edited = true;
    }

    /// RFC 5293 §5: delete the occurrences of `name` that `doomed` marks
    /// (in order from the first); how many went.
    pub fn delete_fields(&mut self, name: &str, doomed: &[bool]) -> usize {
        let mut k = 0;
        let mut gone = 0;
        self.fields.retain(|f| {
            if !f.name.eq_ignore_ascii_case(name) {
                return true;
            }
            let drop = doomed.get(k).copied().unwrap_or(false);
            k += 1;
            gone += drop as usize;
            !drop
        });
        if gone > 0 {
            self.edited = true;
        }
        gone
    }

    /// The MIME structure of the message as received (edits to the top
    /// header do not move its parts).
    pub fn tree(&self) -> &Entity {
        self.tree
            .get_or_init(|| message::mime::parse(&self.original))
    }

    pub fn original(&self) -> &[u8] {
        &self.original
    }

    /// The body after the header, undecoded (RFC 5173 `:raw`).
    pub fn raw_body(&self) -> &[u8] {
        &self.original[self.body_start..]
    }
}

/// A header value for comparison: unfolded, trimmed, RFC 2047 words decoded
/// (RFC 5228 §2.7.2).
pub fn decoded(value: &[u8]) -> String {
    message::header::decoded(value)
}

/// A value that is not ASCII goes in RFC 2047 encoded words (RFC 5293 §4).
fn encode_value(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    use base64::Engine;
    // Words of at most 45 octets of text stay under 75 characters (RFC 2047 §2).
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fold a value at spaces so that lines stay under 78 characters (RFC 5322 §2.2.3).
fn fold(value: &str, first_line_used: usize) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut line = first_line_used;
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 {
            if line + 1 + word.len() > 76 && line > 0 {
                out.push_str("\r\n ");
                line = 1;
            } else {
                out.push(' ');
                line += 1;
            }
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

/// The address-specs of an address-list value, as (local part, domain);
/// a value that holds none is compared whole (RFC 5228 §2.7.4).
pub fn addresses(value: &[u8]) -> Vec<(String, String)> {
    let mut raw = b"To:".to_vec();
    raw.extend_from_slice(value);
    raw.extend_from_slice(b"\r\n\r\n");
    let parsed = mail_parser::MessageParser::default().parse_headers(&raw[..]);
    let mut out = Vec::new();
    if let Some(list) = parsed.as_ref().and_then(|m| m.to()) {
        for a in list.iter() {
            if let Some(addr) = a.address() {
                out.push(split_address(addr));
            }
        }
    }
    if out.is_empty() {
        let whole = decoded(value);
        if !whole.is_empty() {
            out.push(split_address(&whole));
        }
    }
    out
}

/// `local@domain` at its last `@`; no `@`: all local part.
pub fn split_address(a: &str) -> (String, String) {
    match a.rsplit_once('@') {
        Some((l, d)) => (l.to_string(), d.to_string()),
        None => (a.to_string(), String::new()),
    }
}

/// One MIME part, for `foreverypart` and `:mime`.
pub fn children(e: &Entity) -> Vec<&Entity> {
    match &e.message {
        Some(inner) => vec![inner.as_ref()],
        None => e.children.iter().collect(),
    }
}

/// `e` and every part below it, depth first.
pub fn subtree(e: &Entity) -> Vec<&Entity> {
    let mut out = vec![e];
    let mut i = 0;
    while i < out.len() {
        let below = children(out[i]);
        let at = i + 1;
        for (k, c) in below.into_iter().enumerate() {
            out.insert(at + k, c);
        }
        i += 1;
    }
    out
}

/// The decoded content of a leaf part as text (transfer encoding and
/// charset; HTML reduced to its text when `html_as_text`).
pub fn part_text(raw: &[u8], e: &Entity, html_as_text: bool) -> String {
    let encoding = e.field(raw, "Content-Transfer-Encoding");
    let body = &raw[e.body.clone()];
    let bytes =
        message::mime::decode_body(encoding.as_deref(), body).unwrap_or_else(|| body.to_vec());
    let charset = e
        .content_type
        .param("charset")
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = message::mime::decode_charset(&charset, &bytes);
    if html_as_text && e.content_type.kind == "text" && e.content_type.subtype == "html" {
        return mail_parser::decoders::html::html_to_text(&text);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_round_trip() {
        let mut m = Mail::new(b"Subject: hi\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n".to_vec());
        assert_eq!(
            m.bytes(),
            b"Subject: hi\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n"
        );
        m.add_field("X-New", "v", false);
        assert_eq!(m.delete_fields("x-a", &[false, true]), 1);
        assert_eq!(
            m.bytes(),
            b"X-New: v\r\nSubject: hi\r\nX-A: 1\r\n\r\nbody\r\n"
        );
        assert_eq!(m.size(), m.bytes().len() as u64);
        m.add_field("X-U", "caf\u{e9}", true);
        assert!(String::from_utf8_lossy(&m.bytes()).contains("X-U: =?UTF-8?B?Y2Fmw6k=?="));
    }

    #[test]
    fn values() {
        assert_eq!(
            decoded(b" =?ISO-8859-1?Q?Caf=E9?=\r\n  ok "),
            "Caf\u{e9} ok"
        );
        assert_eq!(
            addresses(b" \"A\" <a@x.test>, b@y.test"),
            vec![
                ("a".to_string(), "x.test".to_string()),
                ("b".to_string(), "y.test".to_string())
            ]
        );
        assert_eq!(
            addresses(b" undisclosed"),
            vec![("undisclosed".to_string(), String::new())]
        );
    }
}
