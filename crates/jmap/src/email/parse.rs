//! Email/parse (RFC 8621 §4.9): a blob that holds a message (an attached
//! `message/rfc822` part, an upload) shown as an Email without storing
//! it: what the message says, with no id, mailboxes, keywords or thread.

use serde_json::{Map, Value, json};

use super::get::{DEFAULT_PROPERTIES, METADATA, octets_json, properties_and_options};
use crate::Context;
use crate::args::{self, Args};
use crate::error::MethodError;

/// The properties given when the client names none (§4.9): Email/get's
/// but those of a stored email (id, blobId, threadId, mailboxIds,
/// keywords, size, receivedAt).
fn default_properties() -> Vec<&'static str> {
    DEFAULT_PROPERTIES
        .iter()
        .copied()
        .filter(|p| !METADATA.contains(p) || *p == "preview")
        .collect()
}

/// Email/parse.
pub async fn parse(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let blob_ids = args::strings(args, "blobIds")?
        .ok_or_else(|| MethodError::InvalidArguments("blobIds is required".into()))?;
    if blob_ids.len() as u64 > context.jmap.limits.max_objects_in_get {
        return Err(MethodError::RequestTooLarge);
    }
    let (properties, options) = properties_and_options(
        args,
        args::strings(args, "properties")?,
        &default_properties(),
    )?;
    let mut parsed = Map::new();
    let mut not_parsable = Vec::new();
    let mut not_found = Vec::new();
    for blob_id in blob_ids {
        let Some(blob) = context.jmap.download(context.account, &blob_id).await? else {
            not_found.push(blob_id);
            continue;
        };
        let raw = blob.data;
        if message::header::fields(&raw).is_empty() {
            not_parsable.push(blob_id);
            continue;
        }
        let mut email = Map::new();
        for p in &properties {
            let v = match p.as_str() {
                "blobId" => json!(blob_id),
                "size" => json!(raw.len()),
                "preview" => json!(message::index::MessageIndex::of(&raw).preview),
                p if METADATA.contains(&p) => Value::Null,
                _ => continue,
            };
            email.insert(p.clone(), v);
        }
        octets_json(&raw, &blob_id, &properties, &options, &mut email);
        parsed.insert(blob_id, Value::Object(email));
    }
    Ok(json!({
        "accountId": context.account_id,
        "parsed": if parsed.is_empty() { Value::Null } else { Value::Object(parsed) },
        "notParsable": not_parsable,
        "notFound": not_found,
    }))
}
