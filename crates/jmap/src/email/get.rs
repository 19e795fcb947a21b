//! Email/get (RFC 8621 §4.2): metadata from the account view, header
//! and body properties from the stored message, read only when asked
//! for (and only its header section when that is all that is asked).

use message::header;
use serde_json::{Map, Value, json};
use store::object_id;

use message::mime::{Entity, Source};
use message::outline::Outline;

use super::body::{self, DEFAULT_BODY_PROPERTIES, Parts};
use super::headers::{Form, HeaderProperty};
use super::streamed::{self, StreamedBody, Wanted};
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
        match read(context, email, need, &properties, &options).await? {
            Some(content) => {
                list.push(to_json(context, &view, email, &content, &properties, &options).await?)
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

/// What was read of a message for the properties asked.
enum Content {
    /// Its octets: nothing, its header section, or all of it.
    Octets(Vec<u8>),
    /// A large message's structure and the measures of its leaves.
    Streamed(Box<StreamedBody>),
}

async fn read(
    context: &Context<'_>,
    email: &EmailView,
    need: Need,
    properties: &[String],
    options: &BodyOptions,
) -> Result<Option<Content>, MethodError> {
    let Some((mailbox, uid)) = email.entries.first().copied() else {
        return Ok(None);
    };
    let store = context.store();
    let octets = match need {
        Need::Nothing => Some(Vec::new()),
        // The header section alone, a piece at a time, whatever the
        // message's size (hardening.md C-FT9).
        Need::Header => {
            let max = message::outline::HEAD_KEEP;
            store::stream::header_section(store, mailbox, uid, email.size, max).await?
        }
        Need::Whole if email.size <= super::STREAM_OVER => super::content(store, email).await?,
        // A large message is never held whole for its body properties.
        Need::Whole => {
            let wanted = |outline: &Outline| wanted(outline, properties, options);
            let streamed = streamed::read(store, mailbox, uid, email.size, wanted).await?;
            return Ok(streamed.map(|s| Content::Streamed(Box::new(s))));
        }
    };
    Ok(octets.map(Content::Octets))
}

/// What the properties ask of a large message's leaves: their sizes when
/// a part list shows sizes, the text of the parts whose values are asked
/// for.
fn wanted(outline: &Outline, properties: &[String], options: &BodyOptions) -> Wanted {
    let lists = ["bodyStructure", "textBody", "htmlBody", "attachments"];
    let sizes = options.properties.iter().any(|p| p == "size")
        && properties.iter().any(|p| lists.contains(&p.as_str()));
    let texts = if properties.iter().any(|p| p == "bodyValues") {
        let display = body::display(outline, &outline.root);
        valued(&outline.root, &display, options)
            .into_iter()
            .map(|leaf| leaf.entity.body.clone())
            .collect()
    } else {
        Vec::new()
    };
    Wanted {
        sizes,
        texts,
        text_cap: options.max_bytes,
    }
}

async fn to_json(
    context: &Context<'_>,
    view: &AccountView,
    email: &EmailView,
    content: &Content,
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
    let blob = format!("B{}", email.id);
    match content {
        Content::Octets(raw) => octets_json(raw, &blob, properties, options, &mut out),
        Content::Streamed(s) => {
            let head = s.outline.head(&s.outline.root);
            let tree = Some((s.as_ref(), &s.outline.root));
            content_json(head, tree, &blob, properties, options, &mut out);
        }
    }
    Ok(Value::Object(out))
}

/// The properties the message itself answers, from its octets (all of
/// them, or its header section when only header properties are asked),
/// for Email/get and Email/parse; `blob` is the message's blob id (its
/// parts' ids are made from it). Other properties are left alone.
pub(super) fn octets_json(
    raw: &[u8],
    blob: &str,
    properties: &[String],
    options: &BodyOptions,
    out: &mut Map<String, Value>,
) {
    let head = &raw[..header::header_end(raw)];
    let needs_tree = properties.iter().any(|p| need_of(p) == Need::Whole);
    let root = needs_tree.then(|| message::mime::parse(raw));
    let tree = root.as_ref().map(|r| (raw, r));
    content_json(head, tree, blob, properties, options, out);
}

/// The header and body properties: from the top header section `head`,
/// and the message's parts and their tree when body properties are asked.
fn content_json<P: Parts + ?Sized>(
    head: &[u8],
    tree: Option<(&P, &Entity)>,
    blob: &str,
    properties: &[String],
    options: &BodyOptions,
    out: &mut Map<String, Value>,
) {
    let display = tree.map(|(parts, root)| body::display(parts, root));
    for p in properties {
        let v = match p.as_str() {
            p if METADATA.contains(&p) => continue,
            "headers" => super::headers::all(head),
            "bodyStructure" => match tree {
                Some((parts, r)) => body::part_json(
                    parts,
                    blob,
                    r,
                    &body::root_section(r),
                    &with_sub_parts(&options.properties),
                ),
                None => Value::Null,
            },
            "textBody" | "htmlBody" | "attachments" => match (tree, &display) {
                (Some((parts, _)), Some(d)) => {
                    let leaves = match p.as_str() {
                        "textBody" => &d.text,
                        "htmlBody" => &d.html,
                        _ => &d.attachments,
                    };
                    json!(
                        leaves
                            .iter()
                            .map(|l| body::part_json(
                                parts,
                                blob,
                                l.entity,
                                &l.section,
                                &options.properties
                            ))
                            .collect::<Vec<_>>()
                    )
                }
                _ => Value::Null,
            },
            "hasAttachment" => match (tree, &display) {
                (Some((parts, _)), Some(d)) => json!(d.has_attachment(parts)),
                _ => json!(false),
            },
            "bodyValues" => match (tree, &display) {
                (Some((parts, r)), Some(d)) => body_values(parts, r, d, options),
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

/// The text leaves whose values are asked for (§4.2 fetch*BodyValues),
/// each once, in the order they are given.
fn valued<'a>(
    root: &'a Entity,
    display: &body::Display<'a>,
    options: &BodyOptions,
) -> Vec<body::Leaf<'a>> {
    let mut out: Vec<body::Leaf<'a>> = Vec::new();
    let mut add = |leaf: &body::Leaf<'a>| {
        let text = leaf.entity.content_type.kind.eq_ignore_ascii_case("text");
        if text && !out.iter().any(|l| l.section == leaf.section) {
            out.push(leaf.clone());
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
    out
}

/// The decoded text of the parts asked for (§4.2 fetch*BodyValues).
fn body_values<P: Parts + ?Sized>(
    parts: &P,
    root: &Entity,
    display: &body::Display<'_>,
    options: &BodyOptions,
) -> Value {
    Value::Object(
        valued(root, display, options)
            .into_iter()
            .map(|leaf| {
                let value = body::body_value(parts, leaf.entity, options.max_bytes);
                (leaf.part_id(), value)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use base64::Engine;
    use store::{Credentials, Spooled};

    /// Messages of every shape the body properties look at, the larger
    /// ones spanning several of the store's pieces.
    fn samples() -> Vec<Vec<u8>> {
        let b64 = |data: &[u8]| {
            let text = base64::engine::general_purpose::STANDARD.encode(data);
            text.as_bytes()
                .chunks(76)
                .map(|l| format!("{}\r\n", String::from_utf8_lossy(l)))
                .collect::<String>()
        };
        let binary: Vec<u8> = (0..200_000u32).map(|i| ((i * 7919) >> 3) as u8).collect();
        let long_text = "Grüße aus Köln, ".repeat(9_000);
        vec![
            format!(
                "Subject: mixed\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\
                 Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
                 Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                 Gr=FC=DFe, caf=E9 =\r\nsoft break\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--b--\r\n\
                 --a\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\nContent-ID: <i1@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\
                 --a\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\n\
                 Content-Language: en, de\r\nContent-Transfer-Encoding: base64\r\n\r\n{}--a\r\n\
                 Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner text\r\n--a--\r\n",
                b64(b"<p>Hello <b>there</b></p>"),
                b64(&binary[..3000]),
                b64(&binary),
            )
            .into_bytes(),
            format!(
                "Subject: long\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
                b64(long_text.as_bytes())
            )
            .into_bytes(),
            b"Subject: odd\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n`\r\nend\r\n"
                .to_vec(),
            b"Subject: cut\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nno end".to_vec(),
            b"Subject: bare\r\n\r\nplain body, no trailing line break".to_vec(),
        ]
    }

    fn options(max_bytes: usize, all: bool, body_properties: &[&str]) -> BodyOptions {
        BodyOptions {
            properties: body_properties.iter().map(|p| p.to_string()).collect(),
            text_values: true,
            html_values: true,
            all_values: all,
            max_bytes,
        }
    }

    /// C-FT9: a message's body properties read as a stream (its outline,
    /// then one pass over its leaves) are the ones read from it whole,
    /// whatever the shape, the encodings and the value limit.
    #[tokio::test]
    async fn body_properties_streamed_are_those_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&store::Backend::Sqlite(dir.path().into())).unwrap();
        store.add_domain("a.test").await.unwrap();
        let credentials = Credentials {
            password_hash: "x".into(),
            scram_sha256: "x".into(),
        };
        let a = store.add_account("u@a.test", credentials).await.unwrap();
        let inbox = store.mailbox(a.id, "INBOX").await.unwrap().unwrap().id;
        let properties: Vec<String> = [
            "subject",
            "bodyStructure",
            "textBody",
            "htmlBody",
            "attachments",
            "hasAttachment",
            "bodyValues",
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        let every: Vec<&str> = body::BODY_PROPERTIES.to_vec();
        for (n, raw) in samples().into_iter().enumerate() {
            let uid = store
                .append(inbox, Spooled::from_vec(raw.clone()), vec![], 1)
                .await
                .unwrap();
            for options in [
                options(0, true, &every),
                options(7, false, &DEFAULT_BODY_PROPERTIES),
                options(100, true, &["partId", "type"]),
            ] {
                let mut whole = Map::new();
                octets_json(&raw, "B1", &properties, &options, &mut whole);
                let wanted = |o: &Outline| wanted(o, &properties, &options);
                let size = raw.len() as u64;
                let s = streamed::read(store.as_ref(), inbox, uid, size, wanted)
                    .await
                    .unwrap()
                    .unwrap();
                let mut streamed = Map::new();
                let head = s.outline.head(&s.outline.root);
                let tree = Some((&s, &s.outline.root));
                content_json(head, tree, "B1", &properties, &options, &mut streamed);
                assert_eq!(whole, streamed, "sample {n}, {:?}", options.properties);
            }
        }
    }
}
