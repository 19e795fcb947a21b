//! Email/set `create` (RFC 8621 §4.6): a message made from its JMAP
//! properties — addresses, subject, dates, message ids, `header:` fields,
//! `textBody` / `htmlBody` with their `bodyValues`, and `attachments`
//! from blobs (uploads or parts of stored mail) — written as RFC 5322 and
//! MIME (mail-builder: RFC 2047 encoded words, folding, transfer
//! encodings), then stored like an import: a draft a client keeps, or
//! the message it submits next.
//!
//! Or the body is given whole as `bodyStructure` (`structure`). Not
//! taken (refused with `invalidProperties`): the `headers` list of the
//! whole message, and a header form other than asText / asRaw.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;
use serde_json::Value;

use super::headers::{Form, HeaderProperty};
use super::import::Placement;
use crate::Context;
use crate::args::Args;
use crate::error::SetError;

/// Properties the server sets; a client may not give them (§4.6).
const SERVER_SET: [&str; 6] = [
    "id",
    "blobId",
    "threadId",
    "size",
    "hasAttachment",
    "preview",
];

/// Create one email; the created Email's id, blobId, threadId, size.
pub(super) async fn create(context: &Context<'_>, object: &Args) -> Result<Value, SetError> {
    if let Some(p) = SERVER_SET.iter().find(|p| object.contains_key(**p)) {
        return Err(SetError::invalid(p, "set by the server"));
    }
    if object.get("headers").is_some_and(|v| !v.is_null()) {
        return Err(SetError::invalid(
            "headers",
            "give header:Name:asRaw properties instead",
        ));
    }
    let placement = Placement::of(context, object).await?;
    let data = build(context, object).await?;
    placement.store(context, data).await
}

async fn build(context: &Context<'_>, object: &Args) -> Result<Vec<u8>, SetError> {
    let mut b = MessageBuilder::new();
    for (property, field) in [
        ("from", "From"),
        ("sender", "Sender"),
        ("to", "To"),
        ("cc", "Cc"),
        ("bcc", "Bcc"),
        ("replyTo", "Reply-To"),
    ] {
        if let Some(v) = object.get(property).filter(|v| !v.is_null()) {
            b = b.header(field, addresses(property, v)?);
        }
    }
    if let Some(v) = object.get("subject").filter(|v| !v.is_null()) {
        let text = v
            .as_str()
            .ok_or_else(|| SetError::invalid("subject", "not a string"))?;
        b = b.subject(Text::new(single_line("subject", text)?.to_string()));
    }
    let sent = match object.get("sentAt").filter(|v| !v.is_null()) {
        Some(v) => v
            .as_str()
            .and_then(message::date::rfc3339)
            .ok_or_else(|| SetError::invalid("sentAt", "not a Date"))?,
        None => message::date::unix_now(),
    };
    b = b.date(Date::new(sent));
    let message_id = match ids(object, "messageId")? {
        Some(ids) => ids,
        None => vec![format!(
            "{}@{}",
            message::trace::unique_id(),
            context.jmap.hostname
        )],
    };
    b = b.message_id(MessageId::from(message_id));
    if let Some(v) = ids(object, "inReplyTo")? {
        b = b.in_reply_to(MessageId::from(v));
    }
    if let Some(v) = ids(object, "references")? {
        b = b.references(MessageId::from(v));
    }
    for (key, value) in object {
        if !key.starts_with("header:") || value.is_null() {
            continue;
        }
        let h = HeaderProperty::parse(key)
            .filter(|h| !h.all && matches!(h.form, Form::Raw | Form::Text))
            .ok_or_else(|| SetError::invalid(key, "only one asText or asRaw value is taken"))?;
        let text = value
            .as_str()
            .ok_or_else(|| SetError::invalid(key, "not a string"))?;
        let text = single_line(key, text)?.to_string();
        b = match h.form {
            Form::Text => b.header(h.name, Text::new(text)),
            _ => b.header(h.name, Raw::new(text)),
        };
    }
    b = match object.get("bodyStructure").filter(|v| !v.is_null()) {
        Some(_) => b.body(super::structure::body(context, object).await?),
        None => body(context, object, b).await?,
    };
    b.write_to_vec()
        .map_err(|e| SetError::Forbidden(format!("the message could not be made: {e}")))
}

/// Header values are one line: a CR or LF would start another field.
fn single_line<'a>(property: &str, text: &'a str) -> Result<&'a str, SetError> {
    if text.contains(['\r', '\n']) {
        return Err(SetError::invalid(property, "line breaks are not allowed"));
    }
    Ok(text)
}

/// EmailAddress[] (§4.1.2.3) as an address list.
fn addresses(property: &str, value: &Value) -> Result<Address<'static>, SetError> {
    let list = value
        .as_array()
        .ok_or_else(|| SetError::invalid(property, "not a list of addresses"))?;
    let mut out = Vec::new();
    for a in list {
        let email = a.get("email").and_then(Value::as_str).unwrap_or_default();
        let ok =
            email.contains('@') && !email.contains(['<', '>', ',', ' ', '"', '\r', '\n', '\0']);
        if !ok {
            return Err(SetError::invalid(property, "an address is not valid"));
        }
        let name = match a.get("name") {
            Some(Value::String(n)) => Some(single_line(property, n)?.to_string()),
            _ => None,
        };
        out.push(Address::new_address(name, email.to_string()));
    }
    Ok(Address::new_list(out))
}

/// `messageId`, `inReplyTo`, `references`: lists of ids without brackets.
fn ids(object: &Args, property: &str) -> Result<Option<Vec<String>>, SetError> {
    let Some(v) = object.get(property).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let list = v
        .as_array()
        .ok_or_else(|| SetError::invalid(property, "not a list"))?;
    list.iter()
        .map(|id| {
            id.as_str()
                .filter(|s| {
                    !s.is_empty() && s.contains('@') && !s.contains(['<', '>', ' ', '\r', '\n'])
                })
                .map(String::from)
                .ok_or_else(|| SetError::invalid(property, "not a message id"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// One text part of textBody or htmlBody: its value from bodyValues.
fn text_part(object: &Args, property: &str, media_type: &str) -> Result<Option<String>, SetError> {
    let Some(parts) = object.get(property).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let parts = parts
        .as_array()
        .ok_or_else(|| SetError::invalid(property, "not a list"))?;
    let [part] = parts.as_slice() else {
        return Err(SetError::invalid(property, "exactly one part is taken"));
    };
    let t = part
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(media_type);
    if !t.eq_ignore_ascii_case(media_type) {
        return Err(SetError::invalid(property, "wrong media type"));
    }
    let id = part
        .get("partId")
        .and_then(Value::as_str)
        .ok_or_else(|| SetError::invalid(property, "a partId is needed"))?;
    Ok(Some(body_value(object, id)?.to_string()))
}

/// The text `bodyValues` holds for a `partId` (§4.6 create).
pub(super) fn body_value<'a>(object: &'a Args, part_id: &str) -> Result<&'a str, SetError> {
    object
        .get("bodyValues")
        .and_then(|v| v.get(part_id))
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .ok_or_else(|| SetError::invalid("bodyValues", "no value for that partId"))
}

async fn body(
    context: &Context<'_>,
    object: &Args,
    mut b: MessageBuilder<'static>,
) -> Result<MessageBuilder<'static>, SetError> {
    let text = text_part(object, "textBody", "text/plain")?;
    let html = text_part(object, "htmlBody", "text/html")?;
    if text.is_none() && html.is_none() && !object.contains_key("attachments") {
        return Err(SetError::invalid("textBody", "the email has no body"));
    }
    if let Some(t) = text {
        b = b.text_body(t);
    }
    if let Some(h) = html {
        b = b.html_body(h);
    }
    let attachments = match object.get("attachments").filter(|v| !v.is_null()) {
        Some(a) => a
            .as_array()
            .ok_or_else(|| SetError::invalid("attachments", "not a list"))?
            .clone(),
        None => Vec::new(),
    };
    for a in attachments {
        let blob_id = a
            .get("blobId")
            .and_then(Value::as_str)
            .and_then(|id| context.resolve_id(id))
            .ok_or_else(|| SetError::invalid("attachments", "a blobId is needed"))?;
        let blob = match context.jmap.download(context.account, &blob_id).await {
            Ok(Some(blob)) => blob,
            Ok(None) => return Err(SetError::BlobNotFound(vec![blob_id])),
            Err(_) => return Err(SetError::Forbidden("try again later".into())),
        };
        let media_type = a
            .get("type")
            .and_then(Value::as_str)
            .map(String::from)
            .or(blob.media_type)
            .unwrap_or_else(|| "application/octet-stream".into());
        if !media_type.contains('/') || media_type.contains(['\r', '\n', ';', '"']) {
            return Err(SetError::invalid("attachments", "not a media type"));
        }
        let name = a.get("name").and_then(Value::as_str).map(String::from);
        let inline = a.get("disposition").and_then(Value::as_str) == Some("inline");
        if media_type.eq_ignore_ascii_case("message/rfc822") {
            let mut part = embedded_message(blob.data);
            part = part.attachment(name.unwrap_or_else(|| "message.eml".into()));
            b.attachments.get_or_insert_with(Vec::new).push(part);
            continue;
        }
        b = match (inline, a.get("cid").and_then(Value::as_str)) {
            (true, Some(cid)) => {
                b.inline(media_type, single_line("cid", cid)?.to_string(), blob.data)
            }
            _ => b.attachment(
                media_type,
                name.unwrap_or_else(|| "attachment".into()),
                blob.data,
            ),
        };
    }
    Ok(b)
}

/// A message attached whole (message/rfc822). RFC 2046 §5.2.1: its body
/// is never encoded, only 7bit or 8bit; one that cannot be sent so (lines
/// over 998 octets, NUL, bare CR or LF: RFC 5322 §2.3) goes as
/// application/octet-stream in base64 instead.
pub(super) fn embedded_message(data: Vec<u8>) -> mail_builder::mime::MimePart<'static> {
    use mail_builder::mime::{BodyPart, MimePart};
    let lines_ok = sendable_as_is(&data);
    if !lines_ok {
        return MimePart::new("application/octet-stream", BodyPart::Binary(data.into()));
    }
    let encoding = if data.is_ascii() { "7bit" } else { "8bit" };
    MimePart::new("message/rfc822", BodyPart::Binary(data.into())).transfer_encoding(encoding)
}

/// Lines of CRLF, none over 998 octets, no NUL or bare CR/LF.
fn sendable_as_is(data: &[u8]) -> bool {
    let mut rest = data;
    loop {
        let (line, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let line = match (next, line.strip_suffix(b"\r")) {
            (Some(_), Some(l)) => l,
            (Some(_), None) => return false,
            (None, _) => line,
        };
        if line.len() > 998 || line.contains(&b'\r') || line.contains(&0) {
            return false;
        }
        match next {
            Some(n) => rest = n,
            None => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2046 §5.2.1: an attached message goes as it is, never encoded.
    #[test]
    fn attached_messages_are_not_encoded() {
        let mut out = Vec::new();
        let part = embedded_message(b"From: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n".to_vec());
        part.write_part(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Content-Transfer-Encoding: 7bit"), "{text}");
        assert!(text.contains("Subject: hi\r\n\r\nbody"), "{text}");
        assert!(sendable_as_is("caf\u{e9}\r\n".as_bytes()));
        assert!(!sendable_as_is(b"bare\nnewline"));
        assert!(!sendable_as_is(&[b'x'; 999]));
        let mut out = Vec::new();
        embedded_message(b"a\0b".to_vec()).write_part(&mut out);
        assert!(String::from_utf8_lossy(&out).contains("application/octet-stream"));
    }
}
