//! The 7-bit form Tern makes of an 8-bit message for a server without
//! 8BITMIME (RFC 6152 §3), from any message: what it sends is all 7 bit,
//! has the tree of the original, keeps every header field but the
//! transfer encoding (adding only a Content-Type and MIME-Version a
//! message had not), and each part decodes to the octets it held (line
//! breaks as CRLF in text). A message is left alone only when it has
//! nothing 8-bit, an 8-bit header section, which no encoding can carry, a
//! header section starting with white space, where no field can be added,
//! or boundaries that hold every octet that may stand for an 8-bit one.
#![no_main]
use message::header;
use message::mime::{self, Entity, Source};
use message::seven_bit;

libfuzzer_sys::fuzz_target!(|raw: &[u8]| {
    let before = mime::parse(raw);
    let Some(out) = seven_bit::convert(raw) else {
        assert!(
            raw.is_ascii() || any_unwritable_head(raw, &before) || no_stand_in(&before),
            "left alone"
        );
        return;
    };
    assert!(out.is_ascii(), "8-bit octets after converting");
    same_content(raw, &before, &out, &mime::parse(&out), true);
});

fn any_unwritable_head(raw: &[u8], e: &Entity) -> bool {
    let head = raw.head(e);
    !head.is_ascii()
        || head.starts_with(b" ")
        || head.starts_with(b"\t")
        || e.children
            .iter()
            .chain(e.message.as_deref())
            .any(|c| any_unwritable_head(raw, c))
}

/// Whether the boundaries hold every octet that may stand for an 8-bit
/// one outside the parts.
fn no_stand_in(e: &Entity) -> bool {
    let mut held = Vec::new();
    let mut entities = vec![e];
    while let Some(e) = entities.pop() {
        held.extend(
            e.content_type
                .param("boundary")
                .map(|b| b.as_bytes().to_vec()),
        );
        entities.extend(e.children.iter().chain(e.message.as_deref()));
    }
    seven_bit::GAP_REPLACEMENTS
        .iter()
        .all(|c| held.iter().any(|b| b.contains(c)))
}

/// The fields of a header section but the transfer encoding, as written.
fn kept(head: &[u8]) -> Vec<(String, Vec<u8>)> {
    header::fields(head)
        .into_iter()
        .filter(|f| !f.name.eq_ignore_ascii_case("Content-Transfer-Encoding"))
        .map(|f| (f.name.to_ascii_lowercase(), f.value.to_vec()))
        .collect()
}

fn same_content(raw: &[u8], a: &Entity, out: &[u8], b: &Entity, message: bool) {
    let (was, now) = (kept(raw.head(a)), kept(out.head(b)));
    assert_eq!(&now[..was.len().min(now.len())], &was[..], "fields changed");
    for (name, _) in &now[was.len()..] {
        assert!(
            message && (name == "content-type" || name == "mime-version"),
            "{name} added"
        );
    }
    assert_eq!(a.content_type.kind, b.content_type.kind);
    assert_eq!(a.content_type.subtype, b.content_type.subtype);
    assert_eq!(a.children.len(), b.children.len(), "parts lost or made");
    assert_eq!(a.message.is_some(), b.message.is_some());
    for (x, y) in a.children.iter().zip(&b.children) {
        same_content(raw, x, out, y, false);
    }
    if let (Some(x), Some(y)) = (&a.message, &b.message) {
        same_content(raw, x, out, y, true);
    }
    if a.content_type.kind == "multipart" || a.message.is_some() {
        return;
    }
    let held = &raw[a.body.clone()];
    let sent = &out[b.body.clone()];
    if held.is_ascii() {
        assert_eq!(held, sent, "a 7-bit part changed");
        return;
    }
    let encoding = out.field(b, "Content-Transfer-Encoding");
    let decoded = mime::decode_body(encoding.as_deref(), sent).expect("an encoding Tern wrote");
    if a.content_type.kind == "text" {
        assert_eq!(decoded, crlf(held), "text changed");
    } else {
        assert_eq!(decoded, held, "octets changed");
    }
}

/// Every LF not after a CR as CRLF.
fn crlf(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' && (i == 0 || text[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}
