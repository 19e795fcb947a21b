//! Email (RFC 8621 §4): get, changes, query, set; and the blobs of
//! messages and their parts (RFC 8620 §6.2 download).

pub mod body;
pub mod get;
pub mod headers;
pub mod import;
pub mod query;
pub mod set;

use serde_json::Value;
use store::{DataType, Store, object_id};

use crate::account::{AccountView, EmailView};
use crate::args::Args;
use crate::error::MethodError;
use crate::{Context, changes as change_log};

/// Email/changes (RFC 8621 §4.3).
pub async fn changes(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    change_log::method(context, args, DataType::Email, object_id::email).await
}

/// The message as this account has it (its own trace lines first).
pub async fn content(store: &dyn Store, email: &EmailView) -> Result<Option<Vec<u8>>, MethodError> {
    let Some((mailbox, uid)) = email.entries.first() else {
        return Ok(None);
    };
    Ok(store.message_content(*mailbox, *uid).await?)
}

/// What a download sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub data: Vec<u8>,
    /// The part's media type; None for a whole message (message/rfc822).
    pub media_type: Option<String>,
    pub name: Option<String>,
}

/// The blob `B<email>` (the message) or `B<email>-<section>` (a part,
/// its transfer encoding undone), if this account holds that email.
pub async fn blob(
    store: &dyn Store,
    view: &AccountView,
    blob_id: &str,
) -> Result<Option<Blob>, MethodError> {
    let Some(rest) = blob_id.strip_prefix('B') else {
        return Ok(None);
    };
    let mut numbers = rest.split('-');
    let Some(email) = numbers
        .next()
        .and_then(|n| object_id::parse(&format!("E{n}"), 'E'))
    else {
        return Ok(None);
    };
    let section: Option<Vec<u32>> = numbers.map(|n| n.parse().ok().filter(|n| *n > 0)).collect();
    let Some(section) = section else {
        return Ok(None);
    };
    let Some(view) = view.emails.get(&email) else {
        return Ok(None);
    };
    let Some(raw) = content(store, view).await? else {
        return Ok(None);
    };
    if section.is_empty() {
        return Ok(Some(Blob {
            data: raw,
            media_type: None,
            name: None,
        }));
    }
    let root = message::mime::parse(&raw);
    Ok(body::find(&root, &section).map(|part| Blob {
        data: body::decoded(&raw, part),
        media_type: Some(body::media_type(part)),
        name: body::name(&raw, part),
    }))
}
