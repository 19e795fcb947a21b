//! Email/import (RFC 8621 §4.8): a message the client uploaded (or one
//! this account already has, by its blob id) put into mailboxes with
//! keywords and a receivedAt, as IMAP APPEND would.

use serde_json::{Value, json};
use store::{DataType, MailboxId, Spooled, object_id};

use crate::Context;
use crate::account::{flag_of, valid_keyword};
use crate::args::{self, Args};
use crate::error::{MethodError, SetError};

/// Email/import.
pub async fn import(context: &mut Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let store = context.jmap.store().clone();
    let old_state = store
        .change_state(context.account.id, DataType::Email)
        .await?;
    if let Some(wanted) = args::string(args, "ifInState")?
        && args::state(&wanted) != Some(old_state)
    {
        return Err(MethodError::StateMismatch);
    }
    let emails = args::object(args, "emails")?
        .ok_or_else(|| MethodError::InvalidArguments("emails is required".into()))?
        .clone();
    if emails.len() as u64 > context.jmap.limits.max_objects_in_set {
        return Err(MethodError::RequestTooLarge);
    }
    let mut created = serde_json::Map::new();
    let mut not_created = serde_json::Map::new();
    for (creation, object) in emails {
        let result = match object.as_object() {
            Some(o) => one(context, o).await,
            None => Err(SetError::invalid("emails", "not an object")),
        };
        match result {
            Ok(email) => {
                if let Some(id) = email["id"].as_str() {
                    context.created.insert(creation.clone(), id.to_string());
                }
                created.insert(creation, email);
            }
            Err(e) => {
                not_created.insert(creation, e.to_value());
            }
        }
    }
    let new_state = store
        .change_state(context.account.id, DataType::Email)
        .await?;
    let or_null = |m: serde_json::Map<String, Value>| {
        if m.is_empty() {
            Value::Null
        } else {
            Value::Object(m)
        }
    };
    Ok(json!({
        "accountId": context.account_id,
        "oldState": old_state.to_string(),
        "newState": new_state.to_string(),
        "created": or_null(created),
        "notCreated": or_null(not_created),
    }))
}

/// Where a new email goes and how it is marked: its mailboxes (at least
/// one), keywords as IMAP flags, and receivedAt (now when not given).
pub(super) struct Placement {
    pub mailboxes: Vec<MailboxId>,
    pub flags: Vec<String>,
    pub received_at: i64,
}

impl Placement {
    /// `mailboxIds`, `keywords` and `receivedAt` of a new email (§4.6, §4.8).
    pub async fn of(context: &Context<'_>, object: &Args) -> Result<Placement, SetError> {
        let view = context
            .view()
            .await
            .map_err(|_| SetError::Forbidden("try again later".into()))?;
        let mailboxes: Vec<MailboxId> = match object.get("mailboxIds").and_then(Value::as_object) {
            Some(ids) if !ids.is_empty() => ids
                .iter()
                .map(|(id, v)| {
                    (v == &Value::Bool(true))
                        .then(|| context.resolve_id(id))
                        .flatten()
                        .and_then(|id| view.mailbox_by_jmap_id(&id))
                        .map(|m| m.id)
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| SetError::invalid("mailboxIds", "no such mailbox"))?,
            _ => {
                return Err(SetError::invalid(
                    "mailboxIds",
                    "at least one mailbox is required",
                ));
            }
        };
        let mut flags = Vec::new();
        if let Some(keywords) = object.get("keywords") {
            let map = keywords
                .as_object()
                .ok_or_else(|| SetError::invalid("keywords", "not an object"))?;
            for (k, v) in map {
                if v != &Value::Bool(true) || !valid_keyword(k) {
                    return Err(SetError::invalid(
                        "keywords",
                        "keywords must be valid and true",
                    ));
                }
                flags.push(flag_of(k));
            }
        }
        let received_at = match object.get("receivedAt") {
            None | Some(Value::Null) => message::date::unix_now(),
            Some(v) => v
                .as_str()
                .and_then(message::date::rfc3339)
                .ok_or_else(|| SetError::invalid("receivedAt", "not a UTCDate"))?,
        };
        Ok(Placement {
            mailboxes,
            flags,
            received_at,
        })
    }

    /// Store `data` there; the new Email's id, blobId, threadId and size
    /// (what a created email is answered with, §4.6).
    pub async fn store(self, context: &Context<'_>, data: Vec<u8>) -> Result<Value, SetError> {
        let store = context.store();
        let (first, rest) = self.mailboxes.split_first().ok_or(SetError::NotFound)?;
        let uid = store
            .append(
                *first,
                Spooled::from_vec(data),
                self.flags,
                self.received_at,
            )
            .await?;
        for other in rest {
            store
                .copy_messages(*first, vec![uid], *other, false)
                .await?;
        }
        let entry = store
            .entries(*first, vec![uid])
            .await?
            .into_iter()
            .next()
            .ok_or(SetError::NotFound)?;
        let thread = store
            .index_rows(*first, uid - 1)
            .await?
            .into_iter()
            .find(|r| r.uid == uid)
            .map(|r| r.thread_id)
            .unwrap_or(entry.email_id);
        Ok(json!({
            "id": object_id::email(entry.email_id),
            "blobId": format!("B{}", entry.email_id),
            "threadId": object_id::thread(thread),
            "size": entry.size,
        }))
    }
}

/// Import one message; the created Email's id, blobId, threadId, size.
async fn one(context: &Context<'_>, object: &Args) -> Result<Value, SetError> {
    let blob_id = object
        .get("blobId")
        .and_then(Value::as_str)
        .and_then(|b| context.resolve_id(b))
        .ok_or_else(|| SetError::invalid("blobId", "required"))?;
    let placement = Placement::of(context, object).await?;
    let data = match context.jmap.download(context.account, &blob_id).await {
        Ok(Some(blob)) => blob.data,
        Ok(None) => return Err(SetError::BlobNotFound(vec![blob_id])),
        Err(_) => return Err(SetError::Forbidden("try again later".into())),
    };
    if message::header::fields(&data).is_empty() {
        return Err(SetError::InvalidEmail(
            "the blob has no header fields".into(),
        ));
    }
    placement.store(context, data).await
}
