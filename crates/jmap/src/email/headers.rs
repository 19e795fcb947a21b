//! Header fields in the parsed forms of RFC 8621 §4.1.2: Raw, Text,
//! Addresses, GroupedAddresses, MessageIds, Date, URLs; and the
//! `header:{name}[:as{Form}][:all]` properties that ask for them (§4.1.3).
//!
//! Field splitting is the strict reader of `message::header`; values are
//! parsed with mail-parser's decoders, as the rest of Tern does.

use message::header::{self, Field};
use serde_json::{Value, json};

/// The parsed forms (RFC 8621 §4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Raw,
    Text,
    Addresses,
    GroupedAddresses,
    MessageIds,
    Date,
    Urls,
}

/// A `header:` property, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProperty {
    pub name: String,
    pub form: Form,
    pub all: bool,
}

impl HeaderProperty {
    /// `header:List-Id:asText:all` and the like; None if it is not one or
    /// asks for a form the field cannot have (§4.1.2.1–7).
    pub fn parse(property: &str) -> Option<HeaderProperty> {
        let rest = property.strip_prefix("header:")?;
        let mut parts = rest.split(':');
        let name = parts.next().filter(|n| !n.is_empty())?;
        if !name.bytes().all(|b| (33..=126).contains(&b)) {
            return None;
        }
        let mut form = Form::Raw;
        let mut all = false;
        for (i, p) in parts.enumerate() {
            match p {
                "all" => all = true,
                _ if i == 0 => form = form_named(p)?,
                _ => return None,
            }
        }
        allowed(name, form).then(|| HeaderProperty {
            name: name.to_string(),
            form,
            all,
        })
    }

    /// The value of this property for a header section.
    pub fn value(&self, head: &[u8]) -> Value {
        let fields = header::fields_named(head, &self.name);
        if self.all {
            json!(
                fields
                    .iter()
                    .map(|f| parse(f, self.form))
                    .collect::<Vec<_>>()
            )
        } else {
            fields
                .last()
                .map(|f| parse(f, self.form))
                .unwrap_or(Value::Null)
        }
    }
}

fn form_named(name: &str) -> Option<Form> {
    Some(match name {
        "asRaw" => Form::Raw,
        "asText" => Form::Text,
        "asAddresses" => Form::Addresses,
        "asGroupedAddresses" => Form::GroupedAddresses,
        "asMessageIds" => Form::MessageIds,
        "asDate" => Form::Date,
        "asURLs" => Form::Urls,
        _ => return None,
    })
}

/// Which forms a known field may be asked in (RFC 8621 §4.1.2); any form
/// for fields this table does not know.
fn allowed(name: &str, form: Form) -> bool {
    let lower = name.to_ascii_lowercase();
    let known: &[Form] = match lower.as_str() {
        "subject" | "comments" | "keywords" | "list-id" => &[Form::Text],
        "from" | "sender" | "reply-to" | "to" | "cc" | "bcc" | "resent-from" | "resent-sender"
        | "resent-reply-to" | "resent-to" | "resent-cc" | "resent-bcc" => {
            &[Form::Addresses, Form::GroupedAddresses]
        }
        "message-id" | "in-reply-to" | "references" | "resent-message-id" => &[Form::MessageIds],
        "date" | "resent-date" => &[Form::Date],
        "list-help" | "list-unsubscribe" | "list-subscribe" | "list-post" | "list-owner"
        | "list-archive" => &[Form::Urls],
        _ => return true,
    };
    form == Form::Raw || known.contains(&form)
}

/// One field in one form.
pub fn parse(field: &Field<'_>, form: Form) -> Value {
    match form {
        Form::Raw => json!(String::from_utf8_lossy(field.value)),
        Form::Text => json!(header::decoded(field.value)),
        Form::Addresses => json!(
            groups(field.value)
                .into_iter()
                .flat_map(|(_, list)| list)
                .collect::<Vec<_>>()
        ),
        Form::GroupedAddresses => json!(
            groups(field.value)
                .into_iter()
                .map(|(name, list)| json!({"name": name, "addresses": list}))
                .collect::<Vec<_>>()
        ),
        Form::MessageIds => {
            let ids = header::message_ids(field.value);
            if ids.is_empty() {
                Value::Null
            } else {
                json!(ids)
            }
        }
        Form::Date => date(field.value).map(Value::String).unwrap_or(Value::Null),
        Form::Urls => {
            let urls = urls(field.value);
            if urls.is_empty() {
                Value::Null
            } else {
                json!(urls)
            }
        }
    }
}

/// The address groups of a value (RFC 5322 §3.4): addresses outside any
/// group form a group without a name. EmailAddress objects (§4.1.2.3).
fn groups(value: &[u8]) -> Vec<(Option<String>, Vec<Value>)> {
    let mut raw = b"From:".to_vec();
    raw.extend_from_slice(value);
    raw.extend_from_slice(b"\r\n\r\n");
    let parsed = mail_parser::MessageParser::default().parse_headers(&raw[..]);
    let Some(address) = parsed.as_ref().and_then(|m| m.from()) else {
        return Vec::new();
    };
    let one = |a: &mail_parser::Addr<'_>| json!({"name": a.name.as_deref(), "email": a.address.as_deref().unwrap_or_default()});
    match address {
        mail_parser::Address::List(list) => vec![(None, list.iter().map(one).collect())],
        mail_parser::Address::Group(groups) => groups
            .iter()
            .map(|g| {
                (
                    g.name.as_deref().map(String::from),
                    g.addresses.iter().map(one).collect(),
                )
            })
            .collect(),
    }
}

/// A Date field as RFC 3339 with its own zone offset (§4.1.2.6).
fn date(value: &[u8]) -> Option<String> {
    let (unix, offset) = message::date::parse_rfc5322(&header::decoded(value))?;
    let local = message::date::rfc3339_text(unix + offset);
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.unsigned_abs();
    Some(format!(
        "{}{sign}{:02}:{:02}",
        local.trim_end_matches('Z'),
        o / 3600,
        o % 3600 / 60
    ))
}

/// The URLs of a List-* field: each `<...>`, in order (RFC 2369 §2).
fn urls(value: &[u8]) -> Vec<String> {
    header::bracketed(value)
}

/// Every field of a header section as `{name, value}` (§4.1.3 `headers`).
pub fn all(head: &[u8]) -> Value {
    json!(
        header::fields(head)
            .iter()
            .map(|f| json!({"name": f.name, "value": String::from_utf8_lossy(f.value)}))
            .collect::<Vec<_>>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"From: =?UTF-8?Q?Ren=C3=A9e?= <renee@e.test>, bob@b.test\r\nTo: Team: a@x.test, b@x.test;, c@y.test\r\nSubject: =?UTF-8?Q?caf=C3=A9?= time\r\nDate: Tue, 01 Dec 2026 23:30:00 -0800\r\nMessage-ID: <q1@b.test>\r\nList-Unsubscribe: <mailto:u@l.test>, <https://l.test/u>\r\nX-Two: one\r\nX-Two: two\r\n\r\n";

    fn get(p: &str) -> Value {
        HeaderProperty::parse(p).unwrap().value(HEAD)
    }

    #[test]
    fn forms_of_known_fields() {
        assert_eq!(get("header:Subject:asText"), json!("café time"));
        assert_eq!(
            get("header:From:asAddresses"),
            json!([{"name": "Renée", "email": "renee@e.test"}, {"name": null, "email": "bob@b.test"}])
        );
        let grouped = get("header:To:asGroupedAddresses");
        assert_eq!(grouped[0]["name"], "Team");
        assert_eq!(grouped[0]["addresses"].as_array().unwrap().len(), 2);
        assert_eq!(
            get("header:Date:asDate"),
            json!("2026-12-01T23:30:00-08:00")
        );
        assert_eq!(get("header:Message-ID:asMessageIds"), json!(["q1@b.test"]));
        assert_eq!(
            get("header:List-Unsubscribe:asURLs"),
            json!(["mailto:u@l.test", "https://l.test/u"])
        );
        assert_eq!(get("header:X-Two:all"), json!([" one", " two"]));
        assert_eq!(get("header:X-Two"), json!(" two"));
        assert_eq!(get("header:X-None"), Value::Null);
        assert_eq!(get("header:X-None:all"), json!([]));
    }

    #[test]
    fn forms_a_field_cannot_have_are_refused() {
        assert!(HeaderProperty::parse("header:Subject:asAddresses").is_none());
        assert!(HeaderProperty::parse("header:From:asDate").is_none());
        assert!(HeaderProperty::parse("header:X-Any:asDate").is_some());
        assert!(HeaderProperty::parse("header:X:asNothing").is_none());
        assert!(HeaderProperty::parse("header::asText").is_none());
        assert!(HeaderProperty::parse("subject").is_none());
    }
}
