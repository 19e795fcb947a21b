//! The body of an Email as JMAP shows it (RFC 8621 §4.1.4): the part tree
//! (`bodyStructure`), the parts to display (`textBody`, `htmlBody`), the
//! `attachments`, and decoded text (`bodyValues`), over the MIME tree of
//! `message::mime` (byte ranges into the stored message).
//!
//! Part ids are the IMAP section numbers of the leaves ("1", "2.1": RFC
//! 9051 §6.4.5); a multipart has none (§4.1.4: null). A part's blob id is
//! the message's followed by the section with `-` between numbers.

use message::header;
use message::mime::{self, Entity, Source};
use serde_json::{Map, Value, json};

/// The body part properties given when the client names none (§4.2).
pub const DEFAULT_BODY_PROPERTIES: [&str; 10] = [
    "partId",
    "blobId",
    "size",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
];

/// Every body part property (§4.1.4).
pub const BODY_PROPERTIES: [&str; 12] = [
    "partId",
    "blobId",
    "size",
    "headers",
    "name",
    "type",
    "charset",
    "disposition",
    "cid",
    "language",
    "location",
    "subParts",
];

/// One leaf part, in tree order, with its section.
#[derive(Debug, Clone)]
pub struct Leaf<'a> {
    pub section: Vec<u32>,
    pub entity: &'a Entity,
}

impl Leaf<'_> {
    pub fn part_id(&self) -> String {
        join(&self.section, ".")
    }
}

fn join(section: &[u32], sep: &str) -> String {
    section
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// A part's blob id: its message's blob id and its section, `-` between
/// numbers. The parts of a message attached inside (Email/parse) add
/// their section after `_`: `B42-2_1-1` is part 1.1 of the message that
/// is part 2 of email 42.
pub fn part_blob_id(message_blob: &str, section: &[u32]) -> String {
    let sep = if message_blob.contains('-') { "_" } else { "-" };
    format!("{message_blob}{sep}{}", join(section, "-"))
}

/// The entity at a section as numbered here (a leaf message is its own part 1).
pub fn find<'a>(root: &'a Entity, section: &[u32]) -> Option<&'a Entity> {
    if !root.is_multipart() {
        return (section == [1]).then_some(root);
    }
    let mut at = root;
    for (i, n) in section.iter().enumerate() {
        at = at.children.get((*n as usize).checked_sub(1)?)?;
        if !at.is_multipart() && i + 1 != section.len() {
            return None;
        }
    }
    (!at.is_multipart()).then_some(at)
}

/// The media type of an entity, lowercased (`text/plain` by default).
pub fn media_type(e: &Entity) -> String {
    format!("{}/{}", e.content_type.kind, e.content_type.subtype).to_ascii_lowercase()
}

fn field<S: Source + ?Sized>(raw: &S, e: &Entity, name: &str) -> Option<String> {
    raw.field(e, name)
}

/// The disposition (`attachment`, `inline`) and its parameters.
fn disposition<S: Source + ?Sized>(raw: &S, e: &Entity) -> Option<(String, Vec<(String, String)>)> {
    let value = field(raw, e, "Content-Disposition")?;
    let (kind, params) = mime::parse_with_params(&value);
    Some((kind.to_ascii_lowercase(), params))
}

/// The file name: Content-Disposition's `filename`, else Content-Type's
/// `name` (RFC 2231 / RFC 2047 decoded by the parameter parser).
pub fn name<S: Source + ?Sized>(raw: &S, e: &Entity) -> Option<String> {
    let from_disposition = disposition(raw, e).and_then(|(_, params)| {
        params
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("filename"))
            .map(|(_, v)| v)
    });
    from_disposition
        .or_else(|| e.content_type.param("name").map(String::from))
        .map(|n| header::decoded(n.as_bytes()))
}

/// The octets of a part's content, its transfer encoding undone.
pub fn decoded(raw: &[u8], e: &Entity) -> Vec<u8> {
    let body = &raw[e.body.clone()];
    mime::decode_body(field(raw, e, "Content-Transfer-Encoding").as_deref(), body)
        .unwrap_or_else(|| body.to_vec())
}

/// A text part as UTF-8, and whether decoding met a problem (§4.1.4
/// `isEncodingProblem`: an unknown transfer encoding).
pub fn text(raw: &[u8], e: &Entity) -> (String, bool) {
    let body = &raw[e.body.clone()];
    let encoding = field(raw, e, "Content-Transfer-Encoding");
    let (bytes, problem) = match mime::decode_body(encoding.as_deref(), body) {
        Some(b) => (b, false),
        None => (body.to_vec(), true),
    };
    let charset = e
        .content_type
        .param("charset")
        .unwrap_or("us-ascii")
        .to_ascii_lowercase();
    (mime::decode_charset(&charset, &bytes), problem)
}

/// What the body properties read of a message beyond its header
/// sections: each leaf's decoded size and its text. A message held whole
/// answers from its octets; a large one from what one pass over it
/// measured (`super::streamed`).
pub trait Parts: Source {
    /// The octets of a leaf's content once its transfer encoding is undone.
    fn decoded_size(&self, e: &Entity) -> usize;
    /// A text leaf as UTF-8, and whether decoding met a problem (see [`text`]).
    fn text(&self, e: &Entity) -> (String, bool);
}

impl Parts for [u8] {
    fn decoded_size(&self, e: &Entity) -> usize {
        decoded(self, e).len()
    }

    fn text(&self, e: &Entity) -> (String, bool) {
        text(self, e)
    }
}

/// An EmailBodyPart object with the asked properties (§4.1.4).
pub fn part_json<P: Parts + ?Sized>(
    raw: &P,
    message_blob: &str,
    e: &Entity,
    section: &[u32],
    properties: &[String],
) -> Value {
    let multipart = e.is_multipart();
    let mut out = Map::new();
    for p in properties {
        let v = match p.as_str() {
            "partId" if multipart => Value::Null,
            "partId" => json!(join(section, ".")),
            "blobId" if multipart => Value::Null,
            "blobId" => json!(part_blob_id(message_blob, section)),
            "size" if multipart => json!(0),
            "size" => json!(raw.decoded_size(e)),
            "headers" => super::headers::all(raw.head(e)),
            "name" => json!(name(raw, e)),
            "type" => json!(media_type(e)),
            "charset" => match e.content_type.param("charset") {
                Some(c) => json!(c),
                None if e.content_type.kind.eq_ignore_ascii_case("text") => json!("us-ascii"),
                None => Value::Null,
            },
            "disposition" => json!(disposition(raw, e).map(|(k, _)| k)),
            "cid" => json!(field(raw, e, "Content-ID").map(|c| {
                c.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })),
            "language" => json!(field(raw, e, "Content-Language").map(|l| {
                l.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })),
            "location" => json!(field(raw, e, "Content-Location")),
            "subParts" if multipart => json!(
                e.children
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let mut s = section.to_vec();
                        s.push(i as u32 + 1);
                        part_json(raw, message_blob, c, &s, properties)
                    })
                    .collect::<Vec<_>>()
            ),
            "subParts" => Value::Null,
            // §4.1.4: a part's header fields in any of the forms.
            p if p.starts_with("header:") => match super::headers::HeaderProperty::parse(p) {
                Some(h) => h.value(raw.head(e)),
                None => continue,
            },
            _ => continue,
        };
        out.insert(p.clone(), v);
    }
    Value::Object(out)
}

/// Every leaf of the tree, in order, with its section.
pub fn leaves(root: &Entity) -> Vec<Leaf<'_>> {
    fn collect<'a>(e: &'a Entity, section: Vec<u32>, out: &mut Vec<Leaf<'a>>) {
        if !e.is_multipart() {
            out.push(Leaf { section, entity: e });
            return;
        }
        for (i, c) in e.children.iter().enumerate() {
            let mut s = section.clone();
            s.push(i as u32 + 1);
            collect(c, s, out);
        }
    }
    let mut out = Vec::new();
    collect(root, root_section(root), &mut out);
    out
}

/// The root's section: a multipart root has none, a single part is "1".
pub fn root_section(root: &Entity) -> Vec<u32> {
    if root.is_multipart() { vec![] } else { vec![1] }
}

/// textBody, htmlBody and attachments (RFC 8621 §4.1.4, the algorithm
/// given there).
#[derive(Debug, Default)]
pub struct Display<'a> {
    pub text: Vec<Leaf<'a>>,
    pub html: Vec<Leaf<'a>>,
    pub attachments: Vec<Leaf<'a>>,
}

impl Display<'_> {
    /// `hasAttachment` (RFC 8621 §4.1.4): an attachment that is not
    /// `Content-Disposition: inline` (an image shown in the text is not
    /// one a reader thinks of as attached).
    pub fn has_attachment<S: Source + ?Sized>(&self, raw: &S) -> bool {
        self.attachments
            .iter()
            .any(|a| disposition(raw, a.entity).is_none_or(|(k, _)| k != "inline"))
    }
}

/// Whether a message has an attachment (Email/get's `hasAttachment`).
pub fn has_attachment(raw: &[u8]) -> bool {
    let root = message::mime::parse(raw);
    display(raw, &root).has_attachment(raw)
}

fn is_inline_media(t: &str) -> bool {
    t.starts_with("image/") || t.starts_with("audio/") || t.starts_with("video/")
}

pub fn display<'a, S: Source + ?Sized>(raw: &S, root: &'a Entity) -> Display<'a> {
    let mut sorter = Sorter {
        raw,
        text: Some(Vec::new()),
        html: Some(Vec::new()),
        attachments: Vec::new(),
    };
    if root.is_multipart() {
        let subtype = root.content_type.subtype.to_ascii_lowercase();
        let children: Vec<&Entity> = root.children.iter().collect();
        sorter.walk(&children, &[], &subtype, subtype == "alternative");
    } else {
        sorter.walk(&[root], &[], "mixed", false);
    }
    Display {
        text: sorter.text.unwrap_or_default(),
        html: sorter.html.unwrap_or_default(),
        attachments: sorter.attachments,
    }
}

/// The lists being filled while the tree is walked (None: that list was
/// given up for this alternative, as §4.1.4's `textBody = null`).
struct Sorter<'a, 'r, S: Source + ?Sized> {
    raw: &'r S,
    text: Option<Vec<Leaf<'a>>>,
    html: Option<Vec<Leaf<'a>>>,
    attachments: Vec<Leaf<'a>>,
}

impl<'a, S: Source + ?Sized> Sorter<'a, '_, S> {
    fn walk(
        &mut self,
        parts: &[&'a Entity],
        section: &[u32],
        multipart_type: &str,
        in_alternative: bool,
    ) {
        let text_len = self.text.as_ref().map(Vec::len);
        let html_len = self.html.as_ref().map(Vec::len);
        for (i, part) in parts.iter().enumerate() {
            let mut s = section.to_vec();
            s.push(i as u32 + 1);
            if part.is_multipart() {
                let sub = part.content_type.subtype.to_ascii_lowercase();
                let alternative = in_alternative || sub == "alternative";
                let children: Vec<&Entity> = part.children.iter().collect();
                self.walk(&children, &s, &sub, alternative);
                continue;
            }
            let leaf = Leaf {
                section: s,
                entity: part,
            };
            self.place(leaf, i == 0, multipart_type, in_alternative);
        }
        if multipart_type == "alternative"
            && let (Some(tv), Some(hv)) = (self.text.as_mut(), self.html.as_mut())
        {
            // Only an HTML part was found: it is the text body too; and
            // the other way round.
            if text_len == Some(tv.len()) && html_len != Some(hv.len()) {
                tv.extend(hv[html_len.unwrap_or(0)..].iter().cloned());
            }
            if html_len == Some(hv.len()) && text_len != Some(tv.len()) {
                hv.extend(tv[text_len.unwrap_or(0)..].iter().cloned());
            }
        }
    }

    /// Where one leaf goes.
    fn place(&mut self, leaf: Leaf<'a>, first: bool, multipart_type: &str, in_alternative: bool) {
        let t = media_type(leaf.entity);
        let is_attachment =
            disposition(self.raw, leaf.entity).is_some_and(|(k, _)| k == "attachment");
        let is_inline = !is_attachment
            && (t == "text/plain" || t == "text/html" || is_inline_media(&t))
            && (first
                || (multipart_type != "related"
                    && (is_inline_media(&t) || name(self.raw, leaf.entity).is_none())));
        if !is_inline {
            self.attachments.push(leaf);
            return;
        }
        if multipart_type == "alternative" {
            let list = match t.as_str() {
                "text/plain" => self.text.as_mut(),
                "text/html" => self.html.as_mut(),
                _ => Some(&mut self.attachments),
            };
            if let Some(list) = list {
                list.push(leaf);
            }
            return;
        }
        if in_alternative {
            if t == "text/plain" {
                self.html = None;
            }
            if t == "text/html" {
                self.text = None;
            }
        }
        if (self.text.is_none() || self.html.is_none()) && is_inline_media(&t) {
            self.attachments.push(leaf.clone());
        }
        if let Some(v) = self.text.as_mut() {
            v.push(leaf.clone());
        }
        if let Some(v) = self.html.as_mut() {
            v.push(leaf);
        }
    }
}

/// A body value (§4.1.4 EmailBodyValue), cut to `max` octets at a
/// character boundary when `max` is given (0: no limit).
pub fn body_value<P: Parts + ?Sized>(raw: &P, e: &Entity, max: usize) -> Value {
    let (mut value, problem) = raw.text(e);
    let mut truncated = false;
    if max > 0 && value.len() > max {
        let mut cut = max;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
        truncated = true;
    }
    json!({"value": value, "isEncodingProblem": problem, "isTruncated": truncated})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(leaves: &[Leaf<'_>]) -> Vec<String> {
        leaves.iter().map(Leaf::part_id).collect()
    }

    #[test]
    fn alternative_with_attachment() {
        let raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>hello</p>\r\n--b--\r\n--a\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--a--\r\n";
        let root = mime::parse(raw);
        let d = display(&raw[..], &root);
        assert_eq!(sections(&d.text), vec!["1.1"]);
        assert_eq!(sections(&d.html), vec!["1.2"]);
        assert_eq!(sections(&d.attachments), vec!["2"]);
        let pdf = find(&root, &[2]).unwrap();
        assert_eq!(name(&raw[..], pdf).as_deref(), Some("report.pdf"));
        assert_eq!(decoded(raw, pdf), b"%PDF-");
        assert!(find(&root, &[1]).is_none(), "a multipart has no part id");
        assert_eq!(part_blob_id("B42", &[1, 2]), "B42-1-2");
        assert_eq!(part_blob_id("B42-2", &[1, 1]), "B42-2_1-1");
    }

    #[test]
    fn html_only_alternative_serves_both() {
        let raw = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b--\r\n";
        let root = mime::parse(raw);
        let d = display(&raw[..], &root);
        assert_eq!(sections(&d.text), vec!["1"]);
        assert_eq!(sections(&d.html), vec!["1"]);
        assert!(d.attachments.is_empty());
    }

    #[test]
    fn a_single_part_message_and_its_value() {
        let raw = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 au lait\r\n".as_bytes();
        let root = mime::parse(raw);
        let d = display(raw, &root);
        assert_eq!(sections(&d.text), vec!["1"]);
        assert_eq!(
            find(&root, &[1]).map(media_type).as_deref(),
            Some("text/plain")
        );
        let v = body_value(raw, &root, 4);
        assert_eq!(v["value"], "caf");
        assert_eq!(v["isTruncated"], true);
        let whole = body_value(raw, &root, 0);
        assert_eq!(whole["value"], "café au lait\r\n");
    }
}
