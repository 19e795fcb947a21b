//! Email/set `create` from `bodyStructure` (RFC 8621 §4.6): the client
//! gives the MIME tree itself, each leaf's content a `bodyValues` entry
//! (`partId`, text written as UTF-8) or a blob (`blobId`: an upload or a
//! part of stored mail), each multipart its `subParts`, with the
//! EmailBodyPart properties a part may have (`type`, `charset` of a blob,
//! `disposition`, `name`, `cid`, `language`, `location`, and `headers`
//! other than the Content- ones, which the properties say). Bounded in
//! depth and parts.

use std::collections::HashMap;

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};
use serde_json::Value;

use crate::Context;
use crate::args::Args;
use crate::error::SetError;

/// The deepest tree taken.
const MAX_DEPTH: usize = 10;
/// The most parts in one tree.
const MAX_PARTS: usize = 100;

fn invalid(why: &str) -> SetError {
    SetError::invalid("bodyStructure", why)
}

/// Every blob id the tree names, resolved (`#creation` ids of this request).
fn blob_ids(
    context: &Context<'_>,
    part: &Value,
    depth: usize,
    out: &mut Vec<String>,
) -> Result<(), SetError> {
    if depth > MAX_DEPTH || out.len() > MAX_PARTS {
        return Err(invalid("too deep or too many parts"));
    }
    if let Some(id) = part.get("blobId").and_then(Value::as_str) {
        out.push(
            context
                .resolve_id(id)
                .ok_or_else(|| invalid("an unknown creation id"))?,
        );
    }
    for sub in part
        .get("subParts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        blob_ids(context, sub, depth + 1, out)?;
    }
    Ok(())
}

/// The message body the tree describes.
pub(super) async fn body(
    context: &Context<'_>,
    object: &Args,
) -> Result<MimePart<'static>, SetError> {
    for conflicting in ["textBody", "htmlBody", "attachments"] {
        if object.get(conflicting).is_some_and(|v| !v.is_null()) {
            return Err(SetError::invalid(conflicting, "not with bodyStructure"));
        }
    }
    let root = object
        .get("bodyStructure")
        .filter(|v| v.is_object())
        .ok_or_else(|| invalid("not an object"))?;
    let mut ids = Vec::new();
    blob_ids(context, root, 0, &mut ids)?;
    let mut blobs = HashMap::new();
    for id in ids {
        match context.jmap.download(context.account, &id).await {
            Ok(Some(blob)) => {
                blobs.insert(id, blob.data);
            }
            Ok(None) => return Err(SetError::BlobNotFound(vec![id])),
            Err(_) => return Err(SetError::Forbidden("try again later".into())),
        }
    }
    let mut count = 0;
    part(context, object, root, &blobs, &mut count)
}

/// A value of a part's property, one line (a line break would start
/// another header field).
fn text<'a>(p: &'a Value, name: &str) -> Result<Option<&'a str>, SetError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.contains(['\r', '\n']) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("{name} is not a one-line string"))),
    }
}

/// A media type as `type/subtype`, nothing else.
fn media_type(t: &str) -> Result<String, SetError> {
    let ok = t.split_once('/').is_some_and(|(a, b)| {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&c))
        };
        token(a) && token(b)
    });
    if !ok {
        return Err(invalid("type is not a media type"));
    }
    Ok(t.to_ascii_lowercase())
}

fn part(
    context: &Context<'_>,
    object: &Args,
    p: &Value,
    blobs: &HashMap<String, Vec<u8>>,
    count: &mut usize,
) -> Result<MimePart<'static>, SetError> {
    *count += 1;
    if *count > MAX_PARTS {
        return Err(invalid("too many parts"));
    }
    let kind = media_type(text(p, "type")?.unwrap_or("text/plain"))?;
    let mut out = match p.get("subParts").filter(|v| !v.is_null()) {
        Some(subs) => {
            if !kind.starts_with("multipart/") {
                return Err(invalid("subParts need a multipart type"));
            }
            let subs = subs
                .as_array()
                .ok_or_else(|| invalid("subParts is not a list"))?;
            let children = subs
                .iter()
                .map(|s| part(context, object, s, blobs, count))
                .collect::<Result<Vec<_>, _>>()?;
            MimePart::new(ContentType::new(kind), BodyPart::Multipart(children))
        }
        None if kind.starts_with("multipart/") => {
            return Err(invalid("a multipart needs subParts"));
        }
        None => leaf(context, object, p, kind, blobs)?,
    };
    let name = text(p, "name")?.map(str::to_string);
    match text(p, "disposition")? {
        Some(d) if d.eq_ignore_ascii_case("attachment") => {
            out = out.attachment(name.unwrap_or_else(|| "attachment".into()));
        }
        Some(d) if d.eq_ignore_ascii_case("inline") => out = out.inline(),
        Some(_) => return Err(invalid("disposition is inline or attachment")),
        None => {}
    }
    if let Some(cid) = text(p, "cid")? {
        out = out.cid(cid.trim_matches(['<', '>']).to_string());
    }
    if let Some(location) = text(p, "location")? {
        out = out.location(location.to_string());
    }
    if let Some(languages) = p.get("language").and_then(Value::as_array) {
        let list: Vec<&str> = languages.iter().filter_map(Value::as_str).collect();
        if list
            .iter()
            .any(|l| l.is_empty() || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Err(invalid("language is not a list of language tags"));
        }
        out = out.language(list.join(", "));
    }
    for h in p
        .get("headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(n), Some(v)) = (text(h, "name")?, text(h, "value")?) else {
            return Err(invalid("a header needs a name and a value"));
        };
        let valid_name = !n.is_empty() && n.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !valid_name || n.to_ascii_lowercase().starts_with("content-") {
            return Err(invalid("headers: a field name, not a Content- one"));
        }
        out = out.header(n.to_string(), Raw::new(v.trim_start().to_string()));
    }
    Ok(out)
}

/// A leaf: its text from `bodyValues`, or its blob's octets.
fn leaf(
    context: &Context<'_>,
    object: &Args,
    p: &Value,
    kind: String,
    blobs: &HashMap<String, Vec<u8>>,
) -> Result<MimePart<'static>, SetError> {
    match (text(p, "partId")?, text(p, "blobId")?) {
        (Some(id), None) => {
            if !kind.starts_with("text/") {
                return Err(invalid("a partId is text: give a blobId for other types"));
            }
            if text(p, "charset")?.is_some_and(|c| !c.eq_ignore_ascii_case("utf-8")) {
                return Err(invalid("a partId's text is written as utf-8"));
            }
            let value = super::create::body_value(object, id)?;
            Ok(MimePart::new(ContentType::new(kind), value.to_string()))
        }
        (None, Some(id)) => {
            let id = context
                .resolve_id(id)
                .ok_or_else(|| invalid("an unknown creation id"))?;
            let data = blobs.get(&id).cloned().unwrap_or_default();
            if kind.eq_ignore_ascii_case("message/rfc822") {
                return Ok(super::create::embedded_message(data));
            }
            let mut content_type = ContentType::new(kind);
            if let Some(charset) = text(p, "charset")? {
                content_type = content_type.attribute("charset", charset.to_string());
            }
            Ok(MimePart::new(content_type, BodyPart::Binary(data.into())))
        }
        _ => Err(invalid("a leaf has a partId or a blobId")),
    }
}
