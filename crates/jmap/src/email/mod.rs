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
mod streamed;
mod structure;

use message::mime::{Decoder, Source};
use serde_json::Value;
use store::{DataType, MailboxId, Store, object_id};

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
    let Some((view, levels)) = locate(view, blob_id) else {
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
        found.name = body::name(&raw[..], part);
        raw = body::decoded(&raw, part);
    }
    found.data = raw;
    Ok(Some(found))
}

/// A message larger than this is downloaded from the store a piece at a
/// time (hardening.md C-FT9), never read whole.
pub const STREAM_OVER: u64 = 256 * 1024;

/// Where a download's octets come from.
pub enum Octets {
    /// Made in memory: an upload, a small message or its part, a part of
    /// a message attached with a transfer encoding.
    Held(Vec<u8>),
    /// A large message's octets `range` in the store, decoded on the way.
    Stored {
        mailbox: MailboxId,
        uid: u32,
        range: std::ops::Range<u64>,
        decoder: Decoder,
    },
}

/// A blob as a download sends it.
pub struct BlobSource {
    pub octets: Octets,
    /// The part's media type; None for a whole message (message/rfc822).
    pub media_type: Option<String>,
    pub name: Option<String>,
}

impl From<Blob> for BlobSource {
    fn from(b: Blob) -> BlobSource {
        BlobSource {
            octets: Octets::Held(b.data),
            media_type: b.media_type,
            name: b.name,
        }
    }
}

/// Like [`blob`], but a large message, or a part of one, is named by its
/// place in the store instead of read (its structure read as a stream),
/// and so is a part of a message attached inside it, at any depth: an
/// attached message is sent as it is (RFC 2046 §5.2.1: no transfer
/// encoding but 7bit, 8bit or binary), so it is a range of the stored
/// octets with an outline of its own. One attached with a transfer
/// encoding all the same is decoded in memory, as [`blob`] does.
pub async fn blob_source(
    store: &dyn Store,
    view: &AccountView,
    blob_id: &str,
) -> Result<Option<BlobSource>, MethodError> {
    let Some((email, levels)) = locate(view, blob_id) else {
        return Ok(None);
    };
    let Some(&(mailbox, uid)) = email.entries.first() else {
        return Ok(None);
    };
    if email.size <= STREAM_OVER {
        return Ok(blob(store, view, blob_id).await?.map(BlobSource::from));
    }
    let mut found = BlobSource {
        octets: Octets::Stored {
            mailbox,
            uid,
            range: 0..email.size,
            decoder: Decoder::Identity,
        },
        media_type: None,
        name: None,
    };
    for section in &levels {
        let Octets::Stored {
            range: within,
            decoder: Decoder::Identity,
            ..
        } = &found.octets
        else {
            return Ok(blob(store, view, blob_id).await?.map(BlobSource::from));
        };
        let start = within.start;
        let Some(outline) =
            store::stream::outline_within(store, mailbox, uid, within.clone()).await?
        else {
            return Ok(None);
        };
        let Some(part) = body::find(&outline.root, section) else {
            return Ok(None);
        };
        let encoding = outline.field(part, "Content-Transfer-Encoding");
        found = BlobSource {
            octets: Octets::Stored {
                mailbox,
                uid,
                range: start + part.body.start as u64..start + part.body.end as u64,
                // An unknown encoding is sent as it is, as `blob` does.
                decoder: Decoder::new(encoding.as_deref()).unwrap_or(Decoder::Identity),
            },
            media_type: Some(body::media_type(part)),
            name: body::name(&outline, part),
        };
    }
    Ok(Some(found))
}

/// The email a blob id names, if this account holds it, and the sections
/// into it.
fn locate<'a>(view: &'a AccountView, blob_id: &str) -> Option<(&'a EmailView, Vec<Vec<u32>>)> {
    let (email, levels) = parse_blob_id(blob_id)?;
    Some((view.emails.get(&email)?, levels))
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
