//! Messages as JMAP shows them (RFC 8621 §4.1): header fields in every
//! parsed form, the body part tree, textBody/htmlBody/attachments and the
//! decoded body values, over whatever a sender put in a message.
#![no_main]
use jmap::email::body;
use jmap::email::headers::HeaderProperty;

const FORMS: [&str; 7] = [
    "asRaw",
    "asText",
    "asAddresses",
    "asGroupedAddresses",
    "asMessageIds",
    "asDate",
    "asURLs",
];

libfuzzer_sys::fuzz_target!(|raw: &[u8]| {
    let head = &raw[..message::header::header_end(raw)];
    for field in message::header::fields(head).iter().take(20) {
        for form in FORMS {
            if let Some(p) = HeaderProperty::parse(&format!("header:{}:{form}:all", field.name)) {
                let _ = p.value(head);
            }
        }
    }
    let _ = jmap::email::headers::all(head);
    let root = message::mime::parse(raw);
    let properties: Vec<String> = body::BODY_PROPERTIES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let _ = body::part_json(raw, "B1", &root, &body::root_section(&root), &properties);
    let display = body::display(raw, &root);
    for leaf in display
        .text
        .iter()
        .chain(&display.html)
        .chain(&display.attachments)
    {
        assert!(
            body::find(&root, &leaf.section).is_some(),
            "a listed part can be found again"
        );
        let _ = body::body_value(raw, leaf.entity, 64);
    }
    for leaf in body::leaves(&root) {
        let _ = body::decoded(raw, leaf.entity);
    }
});
