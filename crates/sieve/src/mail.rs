//! The message a script looks at and edits: its top-level header fields
//! (which `addheader` and `deleteheader` change, RFC 5293, and which later
//! tests then see), its MIME parts (RFC 5703) and its body texts (RFC 5173).

use std::borrow::Cow;
use std::ops::Range;
use std::sync::OnceLock;

use message::mime::{Entity, Source};
use message::outline::{Outline, OutlineBuilder};
use message::spool::Spooled;

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

/// The message a script is given: held whole when small; a large one
/// stays in its spool (hardening.md C-FT9), its structure read as a stream
/// into an [`Outline`] when a test needs it, and what a body test compares
/// read from the spool, at most [`BODY_READ`] octets of each part.
pub struct Mail {
    content: Held,
    /// The top-level header fields, edited.
    fields: Vec<Field>,
    /// Where the body starts in the message.
    body_start: usize,
    edited: bool,
    tree: OnceLock<Entity>,
    outline: OnceLock<Outline>,
}

/// How much of the message is held.
enum Held {
    Whole(Vec<u8>),
    /// `prefix` (the fields the deliverer adds on top), then `data`.
    Spooled {
        prefix: Vec<u8>,
        data: Spooled,
    },
}

/// A message up to this size is read whole for a script.
pub const WHOLE_UNDER: u64 = 256 * 1024;
/// What a body test reads of one part of a large message, at most.
pub const BODY_READ: usize = 1024 * 1024;

/// A message as an action delivers it when it is not the one received:
/// `head`, then, when `body_from` says so, the message as it came from that
/// octet on (of the message without the fields the deliverer put on top).
/// A script's header edits (RFC 5293) are the new header section over the
/// body as it came; a message sealed for storage is all `head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub head: Vec<u8>,
    pub body_from: Option<usize>,
}

impl Edited {
    /// A message made whole.
    pub fn whole(bytes: Vec<u8>) -> Edited {
        Edited {
            head: bytes,
            body_from: None,
        }
    }

    /// The message, given the one that came.
    pub fn bytes(&self, original: &[u8]) -> Vec<u8> {
        let body = self
            .body_from
            .and_then(|n| original.get(n..))
            .unwrap_or_default();
        [self.head.as_slice(), body].concat()
    }
}

impl From<Vec<u8>> for Mail {
    fn from(raw: Vec<u8>) -> Mail {
        Mail::new(raw)
    }
}

impl Mail {
    pub fn new(raw: Vec<u8>) -> Mail {
        let body_start = message::header::header_end(&raw);
        Mail::with(Held::Whole(raw), body_start)
    }

    /// The message `data` with the fields `prefix` on top, from its spool:
    /// read whole when small.
    pub fn spooled(prefix: Vec<u8>, data: Spooled) -> Mail {
        let body_start = prefix.len() + data.header().len();
        if data.len() <= WHOLE_UNDER
            && let Ok(whole) = data.read_all()
        {
            let raw = [prefix.as_slice(), &whole].concat();
            return Mail::with(Held::Whole(raw), body_start);
        }
        Mail::streamed(prefix, data)
    }

    /// The message `data` with the fields `prefix` on top, left in its
    /// spool whatever its size.
    pub fn streamed(prefix: Vec<u8>, data: Spooled) -> Mail {
        let body_start = prefix.len() + data.header().len();
        Mail::with(Held::Spooled { prefix, data }, body_start)
    }

    fn with(content: Held, body_start: usize) -> Mail {
        let head = match &content {
            Held::Whole(raw) => raw[..body_start].to_vec(),
            Held::Spooled { prefix, data } => [prefix.as_slice(), data.header()].concat(),
        };
        let fields = message::header::fields(&head)
            .into_iter()
            .map(|f| Field {
                name: f.name.to_string(),
                value: f.value.to_vec(),
            })
            .collect();
        Mail {
            content,
            fields,
            body_start,
            edited: false,
            tree: OnceLock::new(),
            outline: OnceLock::new(),
        }
    }

    /// Octets in the message as it came (the deliverer's fields included).
    fn len(&self) -> usize {
        match &self.content {
            Held::Whole(raw) => raw.len(),
            Held::Spooled { prefix, data } => prefix.len() + data.len() as usize,
        }
    }

    /// The header section as it is now (edits applied).
    pub fn header_section(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in &self.fields {
            out.extend_from_slice(f.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(&f.value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// What an action delivers once the header is edited.
    pub fn edited(&self) -> Edited {
        let prefix = match &self.content {
            Held::Whole(_) => 0,
            Held::Spooled { prefix, .. } => prefix.len(),
        };
        Edited {
            head: self.header_section(),
            body_from: Some(self.body_start - prefix),
        }
    }

    pub fn is_edited(&self) -> bool {
        self.edited
    }

    /// RFC 5228 §5.9: the size in octets.
    pub fn size(&self) -> u64 {
        if !self.edited {
            return self.len() as u64;
        }
        let head: usize = self
            .fields
            .iter()
            .map(|f| f.name.len() + f.value.len() + 3)
            .sum();
        (head + 2 + self.len() - self.body_start) as u64
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
            // RFC 5293 §4: a value that is not ASCII goes in encoded words.
            value: format!(
                " {}",
                message::compose::fold(&message::compose::encoded_words(value), name.len() + 2)
            )
            .into_bytes(),
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
        match &self.content {
            Held::Whole(raw) => self.tree.get_or_init(|| message::mime::parse(raw)),
            Held::Spooled { .. } => &self.outline().root,
        }
    }

    /// A large message's outline, read from the spool once.
    fn outline(&self) -> &Outline {
        self.outline.get_or_init(|| {
            let mut b = OutlineBuilder::new();
            if let Held::Spooled { prefix, data } = &self.content {
                b.feed(prefix);
                if let Err(e) = data.chunks(|c| b.feed(c)) {
                    tracing::warn!(error = %e, "spool: cannot read the message for a Sieve test");
                }
            }
            b.finish()
        })
    }

    /// The header section of a part as received.
    pub fn part_head(&self, e: &Entity) -> &[u8] {
        match &self.content {
            Held::Whole(raw) => raw.head(e),
            Held::Spooled { .. } => self.outline().head(e),
        }
    }

    /// Octets of the message as received; of a large one, at most
    /// [`BODY_READ`] of them.
    pub fn octets(&self, range: Range<usize>) -> Cow<'_, [u8]> {
        match &self.content {
            Held::Whole(raw) => Cow::Borrowed(raw.get(range).unwrap_or_default()),
            Held::Spooled { prefix, data } => {
                let end = range.end.min(range.start.saturating_add(BODY_READ));
                let mut out = Vec::with_capacity(end.saturating_sub(range.start));
                let mut at = range.start;
                if at < prefix.len() {
                    out.extend_from_slice(&prefix[at..end.min(prefix.len())]);
                    at = prefix.len().min(end);
                }
                let mut block = vec![0; 64 * 1024];
                while at < end {
                    let want = (end - at).min(block.len());
                    match data.read_at((at - prefix.len()) as u64, &mut block[..want]) {
                        Ok(n) if n > 0 => {
                            out.extend_from_slice(&block[..n]);
                            at += n;
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "spool: cannot read the message for a Sieve test");
                            break;
                        }
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// The body after the header, undecoded (RFC 5173 `:raw`).
    pub fn raw_body(&self) -> Cow<'_, [u8]> {
        self.octets(self.body_start..self.len())
    }

    /// The decoded content of a leaf part as text (transfer encoding and
    /// charset; HTML reduced to its text when `html_as_text`).
    pub fn part_text(&self, e: &Entity, html_as_text: bool) -> String {
        let encoding = message::header::fields(self.part_head(e))
            .into_iter()
            .find(|f| f.name.eq_ignore_ascii_case("Content-Transfer-Encoding"))
            .map(|f| f.unfolded());
        let body = self.octets(e.body.clone());
        let bytes =
            message::mime::decode_body(encoding.as_deref(), &body).unwrap_or_else(|| body.to_vec());
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
}

/// A header value for comparison: unfolded, trimmed, RFC 2047 words decoded
/// (RFC 5228 §2.7.2).
pub fn decoded(value: &[u8]) -> String {
    message::header::decoded(value)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_round_trip() {
        let raw = b"Subject: hi\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody\r\n";
        let mut m = Mail::new(raw.to_vec());
        assert_eq!(m.edited().bytes(raw), raw);
        m.add_field("X-New", "v", false);
        assert_eq!(m.delete_fields("x-a", &[false, true]), 1);
        assert_eq!(
            m.edited().bytes(raw),
            b"X-New: v\r\nSubject: hi\r\nX-A: 1\r\n\r\nbody\r\n"
        );
        assert_eq!(m.size(), m.edited().bytes(raw).len() as u64);
        m.add_field("X-U", "caf\u{e9}", true);
        assert!(String::from_utf8_lossy(&m.header_section()).contains("X-U: =?UTF-8?B?Y2Fmw6k=?="));
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
