//! Email/get (RFC 8621 §4.2): metadata from the account view, header
//! and body properties from the stored message, read only when asked
//! for (and only its header section when that is all that is asked).

use message::header;
use serde_json::{Map, Value, json};
use store::object_id;

use super::body::{self, DEFAULT_BODY_PROPERTIES};
use super::headers::{Form, HeaderProperty};
use crate::Context;
use crate::account::{AccountView, EmailView};
use crate::args::{self, Args};
use crate::error::MethodError;
use crate::set::get_arguments;

/// The properties given when the client names none (§4.2).
pub(super) const DEFAULT_PROPERTIES: [&str; 24] = [
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "messageId",
    "inReplyTo",
    "references",
    "sender",
    "from",
    "to",
    "cc",
    "bcc",
    "replyTo",
    "subject",
    "sentAt",
    "hasAttachment",
    "preview",
    "bodyValues",
    "textBody",
    "htmlBody",
    "attachments",
];

/// Properties answered without reading the message.
pub(super) const METADATA: [&str; 8] = [
    "id",
    "blobId",
    "threadId",
    "mailboxIds",
    "keywords",
    "size",
    "receivedAt",
    "preview",
];

/// Properties that need only the header section.
fn convenience_header(property: &str) -> Option<HeaderProperty> {
    let (name, form) = match property {
        "messageId" => ("Message-ID", Form::MessageIds),
        "inReplyTo" => ("In-Reply-To", Form::MessageIds),
        "references" => ("References", Form::MessageIds),
        "sender" => ("Sender", Form::Addresses),
        "from" => ("From", Form::Addresses),
        "to" => ("To", Form::Addresses),
        "cc" => ("Cc", Form::Addresses),
        "bcc" => ("Bcc", Form::Addresses),
        "replyTo" => ("Reply-To", Form::Addresses),
        "subject" => ("Subject", Form::Text),
        "sentAt" => ("Date", Form::Date),
        _ => return None,
    };
    Some(HeaderProperty {
        name: name.to_string(),
        form,
        all: false,
    })
}

/// What to read of the message for these properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Nothing,
    Header,
    Whole,
}

fn need_of(property: &str) -> Need {
    if METADATA.contains(&property) {
        Need::Nothing
    } else if property == "headers"
        || convenience_header(property).is_some()
        || HeaderProperty::parse(property).is_some()
    {
        Need::Header
    } else {
        Need::Whole
    }
}

fn is_known(property: &str) -> bool {
    DEFAULT_PROPERTIES.contains(&property)
        || property == "headers"
        || property == "bodyStructure"
        || HeaderProperty::parse(property).is_some()
}

/// How body values are asked for (§4.2).
pub(super) struct BodyOptions {
    properties: Vec<String>,
    text_values: bool,
    html_values: bool,
    all_values: bool,
    max_bytes: usize,
}

/// `properties` (or `defaults`), `bodyProperties` and the body value
/// arguments of Email/get and Email/parse (§4.2, §4.9), checked.
pub(super) fn properties_and_options(
    args: &Args,
    asked: Option<Vec<String>>,
    defaults: &[&str],
) -> Result<(Vec<String>, BodyOptions), MethodError> {
    let properties: Vec<String> = match asked {
        Some(p) => p,
        None => defaults.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(bad) = properties.iter().find(|p| !is_known(p)) {
        return Err(MethodError::InvalidArguments(format!(
            "unknown property {bad}"
        )));
    }
    let body_properties = match args::strings(args, "bodyProperties")? {
        Some(list) => {
            if let Some(bad) = list.iter().find(|p| {
                !body::BODY_PROPERTIES.contains(&p.as_str()) && HeaderProperty::parse(p).is_none()
            }) {
                return Err(MethodError::InvalidArguments(format!(
                    "unknown body property {bad}"
                )));
            }
            list
        }
        None => DEFAULT_BODY_PROPERTIES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let options = BodyOptions {
        properties: body_properties,
        text_values: args::boolean(args, "fetchTextBodyValues", false)?,
        html_values: args::boolean(args, "fetchHTMLBodyValues", false)?,
        all_values: args::boolean(args, "fetchAllBodyValues", false)?,
        max_bytes: args::unsigned(args, "maxBodyValueBytes")?.unwrap_or(0) as usize,
    };
    Ok((properties, options))
}

/// Email/get.
pub async fn get(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let (ids, asked) = get_arguments(args, context.jmap.limits.max_objects_in_get)?;
    let (mut properties, options) = properties_and_options(args, asked, &DEFAULT_PROPERTIES)?;
    if !properties.iter().any(|p| p == "id") {
        properties.insert(0, "id".into());
    }
    let view = context.view().await?;
    let ids = match ids {
        Some(ids) => ids,
        None => {
            if view.emails.len() as u64 > context.jmap.limits.max_objects_in_get {
                return Err(MethodError::RequestTooLarge);
            }
            let mut all: Vec<&EmailView> = view.emails.values().collect();
            all.sort_by_key(|e| e.id);
            all.iter().map(|e| object_id::email(e.id)).collect()
        }
    };
    let need = properties
        .iter()
        .map(|p| need_of(p))
        .max()
        .unwrap_or(Need::Nothing);
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    for id in ids {
        let email = context
            .resolve_id(&id)
            .and_then(|real| view.email_by_jmap_id(&real));
        let Some(email) = email else {
            not_found.push(id);
            continue;
        };
        let raw = read(context, email, need).await?;
        match raw {
            Some(raw) => {
                list.push(to_json(context, &view, email, &raw, &properties, &options).await?)
            }
            None => not_found.push(id),
        }
    }
    Ok(json!({
        "accountId": context.account_id,
        "state": view.email_state.to_string(),
        "list": list,
        "notFound": not_found,
    }))
}

async fn read(
    context: &Context<'_>,
    email: &EmailView,
    need: Need,
) -> Result<Option<Vec<u8>>, MethodError> {
    let Some((mailbox, uid)) = email.entries.first().copied() else {
        return Ok(None);
    };
    let store = context.store();
    match need {
        Need::Nothing => Ok(Some(Vec::new())),
        // The header section alone, a piece at a time, whatever the
        // message's size (hardening.md C-FT9).
        Need::Header => Ok(store::stream::header_section(
            store,
            mailbox,
            uid,
            email.size,
            message::outline::HEAD_KEEP,
        )
        .await?),
        Need::Whole => super::content(store, email).await,
    }
}

async fn to_json(
    context: &Context<'_>,
    view: &AccountView,
    email: &EmailView,
    raw: &[u8],
    properties: &[String],
    options: &BodyOptions,
) -> Result<Value, MethodError> {
    let mut out = Map::new();
    for p in properties {
        let v = match p.as_str() {
            "id" => json!(object_id::email(email.id)),
            "blobId" => json!(format!("B{}", email.id)),
            "threadId" => json!(object_id::thread(email.thread)),
            "mailboxIds" => Value::Object(
                email
                    .entries
                    .iter()
                    .filter_map(|(m, _)| view.mailbox(*m))
                    .map(|m| (object_id::mailbox(m.uid_validity), Value::Bool(true)))
                    .collect(),
            ),
            "keywords" => Value::Object(
                email
                    .keywords()
                    .into_iter()
                    .map(|k| (k, Value::Bool(true)))
                    .collect(),
            ),
            "size" => json!(email.size),
            "receivedAt" => json!(message::date::rfc3339_text(email.received_at)),
            "preview" => json!(preview(context, email).await?),
            _ => continue,
        };
        out.insert(p.clone(), v);
    }
    content_json(
        raw,
        &format!("B{}", email.id),
        properties,
        options,
        &mut out,
    );
    Ok(Value::Object(out))
}

/// The properties the message itself answers (its header fields and
/// body), for Email/get and Email/parse; `blob` is the message's blob id
/// (its parts' ids are made from it). Other properties are left alone.
pub(super) fn content_json(
    raw: &[u8],
    blob: &str,
    properties: &[String],
    options: &BodyOptions,
    out: &mut Map<String, Value>,
) {
    let head = &raw[..header::header_end(raw)];
    let needs_tree = properties.iter().any(|p| need_of(p) == Need::Whole);
    let root = needs_tree.then(|| message::mime::parse(raw));
    let display = root.as_ref().map(|r| body::display(raw, r));
    for p in properties {
        let v = match p.as_str() {
            p if METADATA.contains(&p) => continue,
            "headers" => super::headers::all(head),
            "bodyStructure" => match &root {
                Some(r) => body::part_json(
                    raw,
                    blob,
                    r,
                    &body::root_section(r),
                    &with_sub_parts(&options.properties),
                ),
                None => Value::Null,
            },
            "textBody" | "htmlBody" | "attachments" => match &display {
                Some(d) => {
                    let leaves = match p.as_str() {
                        "textBody" => &d.text,
                        "htmlBody" => &d.html,
                        _ => &d.attachments,
                    };
                    json!(
                        leaves
                            .iter()
                            .map(|l| body::part_json(
                                raw,
                                blob,
                                l.entity,
                                &l.section,
                                &options.properties
                            ))
                            .collect::<Vec<_>>()
                    )
                }
                None => Value::Null,
            },
            "hasAttachment" => json!(display.as_ref().is_some_and(|d| d.has_attachment(raw))),
            "bodyValues" => match (&root, &display) {
                (Some(r), Some(d)) => body_values(raw, r, d, options),
                _ => json!({}),
            },
            other => match convenience_header(other).or_else(|| HeaderProperty::parse(other)) {
                Some(h) => h.value(head),
                None => continue,
            },
        };
        out.insert(p.clone(), v);
    }
}

fn with_sub_parts(properties: &[String]) -> Vec<String> {
    let mut p = properties.to_vec();
    if !p.iter().any(|x| x == "subParts") {
        p.push("subParts".into());
    }
    p
}

async fn preview(context: &Context<'_>, email: &EmailView) -> Result<String, MethodError> {
    let Some((mailbox, uid)) = email.entries.first().copied() else {
        return Ok(String::new());
    };
    let previews = context.store().previews(mailbox, vec![uid]).await?;
    Ok(previews
        .into_iter()
        .next()
        .map(|(_, p)| p)
        .unwrap_or_default())
}

/// The decoded text of the parts asked for (§4.2 fetch*BodyValues).
fn body_values(
    raw: &[u8],
    root: &message::mime::Entity,
    display: &body::Display<'_>,
    options: &BodyOptions,
) -> Value {
    let mut out = Map::new();
    let mut add = |leaf: &body::Leaf<'_>| {
        if leaf.entity.content_type.kind.eq_ignore_ascii_case("text") {
            out.entry(leaf.part_id())
                .or_insert_with(|| body::body_value(raw, leaf.entity, options.max_bytes));
        }
    };
    if options.text_values || options.all_values {
        display.text.iter().for_each(&mut add);
    }
    if options.html_values || options.all_values {
        display.html.iter().for_each(&mut add);
    }
    if options.all_values {
        for leaf in body::leaves(root) {
            add(&leaf);
        }
    }
    Value::Object(out)
}
