//! Email (RFC 8621 §4): get, changes, query, set; and the blobs of
//! messages and their parts (RFC 8620 §6.2 download).

pub mod body;
mod create;
pub mod get;
pub mod headers;
pub mod import;
pub mod parse;
pub mod query;
pub mod set;
mod structure;

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

/// Whether each stored content has an attachment, remembered: a content
/// never changes and its id is never reused (store migration 13), so
/// neither does the answer. Bounded: emptied when it reaches
/// [`AttachmentCache::MAX`] entries (a few MB).
#[derive(Debug, Default)]
pub struct AttachmentCache(std::sync::Mutex<std::collections::HashMap<i64, bool>>);

impl AttachmentCache {
    pub const MAX: usize = 200_000;

    pub fn get(&self, email: i64) -> Option<bool> {
        self.0.lock().ok()?.get(&email).copied()
    }

    pub fn insert(&self, email: i64, has: bool) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= Self::MAX {
                map.clear();
            }
            map.insert(email, has);
        }
    }
}

/// What a download sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub data: Vec<u8>,
    /// The part's media type; None for a whole message (message/rfc822).
    pub media_type: Option<String>,
    pub name: Option<String>,
}

/// The blob `B<email>` (the message), `B<email>-<section>` (a part, its
/// transfer encoding undone) or deeper, `_<section>` into a message
/// attached there, if this account holds that email.
pub async fn blob(
    store: &dyn Store,
    view: &AccountView,
    blob_id: &str,
) -> Result<Option<Blob>, MethodError> {
    let Some((email, levels)) = parse_blob_id(blob_id) else {
        return Ok(None);
    };
    let Some(view) = view.emails.get(&email) else {
        return Ok(None);
    };
    let Some(mut raw) = content(store, view).await? else {
        return Ok(None);
    };
    let mut found = Blob {
        data: Vec::new(),
        media_type: None,
        name: None,
    };
    for section in levels {
        let root = message::mime::parse(&raw);
        let Some(part) = body::find(&root, &section) else {
            return Ok(None);
        };
        found.media_type = Some(body::media_type(part));
        found.name = body::name(&raw, part);
        raw = body::decoded(&raw, part);
    }
    found.data = raw;
    Ok(Some(found))
}

/// `B42-2_1-1` as (42, [[2], [1, 1]]); None if it is not a blob id of ours.
fn parse_blob_id(id: &str) -> Option<(i64, Vec<Vec<u32>>)> {
    let rest = id.strip_prefix('B')?;
    let (email, parts) = match rest.split_once('-') {
        Some((e, p)) => (e, Some(p)),
        None => (rest, None),
    };
    let email = object_id::parse(&format!("E{email}"), 'E')?;
    let levels = match parts {
        None => Vec::new(),
        Some(p) => p
            .split('_')
            .map(|level| {
                level
                    .split('-')
                    .map(|n| n.parse::<u32>().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<_>>>()
            })
            .collect::<Option<Vec<_>>>()?,
    };
    Some((email, levels))
}

#[cfg(test)]
mod tests {
    #[test]
    fn blob_ids_name_parts_at_any_depth() {
        assert_eq!(super::parse_blob_id("B42"), Some((42, vec![])));
        assert_eq!(
            super::parse_blob_id("B42-2_1-1"),
            Some((42, vec![vec![2], vec![1, 1]]))
        );
        assert_eq!(super::parse_blob_id("B42-0"), None);
        assert_eq!(super::parse_blob_id("B42-"), None);
        assert_eq!(super::parse_blob_id("B042"), None);
        assert_eq!(super::parse_blob_id("U1"), None);
    }
}
