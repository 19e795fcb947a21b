//! Email/set (RFC 8621 §4.6): keywords and mailboxes changed, emails
//! destroyed. A keyword change is written to every mailbox entry of the
//! email (IMAP sees it as a flag change in each); a mailbox added is a
//! copy of an entry, one removed is that entry removed. Moving into or
//! out of Junk, and the `$junk`/`$notjunk` keywords, teach the user's
//! spam filter, as they do over IMAP (`antispam::learn`).
//!
//! `create` makes a message from its properties (`create.rs`).

use std::collections::BTreeSet;

use serde_json::Value;
use store::{DataType, FlagOp, MailboxId};

use crate::Context;
use crate::account::{AccountView, EmailView, flag_of, valid_keyword};
use crate::args::Args;
use crate::error::{MethodError, SetError};
use crate::set::{SetRequest, SetResponse};

/// Email/set.
pub async fn set(context: &mut Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let store = context.jmap.store().clone();
    let old_state = store
        .change_state(context.account.id, DataType::Email)
        .await?;
    let request = SetRequest::parse(
        args,
        context.jmap.limits.max_objects_in_set,
        &old_state.to_string(),
    )?;
    let mut response = SetResponse::default();
    for (creation, object) in request.create {
        match super::create::create(context, &object).await {
            Ok(created) => {
                if let Some(id) = created["id"].as_str() {
                    context.created.insert(creation.clone(), id.to_string());
                }
                response.created(creation, created);
            }
            Err(e) => response.not_created(creation, e),
        }
    }

    for (id, patch) in request.update {
        let view = context.view().await?;
        let result = match context
            .resolve_id(&id)
            .and_then(|real| view.email_by_jmap_id(&real))
        {
            Some(email) => update(context, &view, email, &patch).await,
            None => Err(SetError::NotFound),
        };
        match result {
            Ok(()) => response.updated(id),
            Err(e) => response.not_updated(id, e),
        }
    }
    for id in request.destroy {
        let view = context.view().await?;
        let result = match context
            .resolve_id(&id)
            .and_then(|real| view.email_by_jmap_id(&real))
        {
            Some(email) => destroy(context, email).await,
            None => Err(SetError::NotFound),
        };
        match result {
            Ok(()) => response.destroyed.push(id),
            Err(e) => response.not_destroyed(id, e),
        }
    }
    let new_state = store
        .change_state(context.account.id, DataType::Email)
        .await?;
    Ok(response.into_value(
        &context.account_id,
        &old_state.to_string(),
        &new_state.to_string(),
    ))
}

/// A set of strings patched (§5.3 PatchObject): the whole set
/// (`property`) or one member (`property/member`: true adds, null removes).
fn patched(
    current: BTreeSet<String>,
    patch: &Args,
    property: &str,
    member: impl Fn(&str) -> Option<String>,
) -> Result<BTreeSet<String>, SetError> {
    let mut out = current;
    if let Some(whole) = patch.get(property) {
        let Value::Object(map) = whole else {
            return Err(SetError::invalid(property, "not an object"));
        };
        out = BTreeSet::new();
        for (k, v) in map {
            if v != &Value::Bool(true) {
                return Err(SetError::invalid(property, "values must be true"));
            }
            out.insert(member(k).ok_or_else(|| SetError::invalid(property, "bad member"))?);
        }
    }
    let prefix = format!("{property}/");
    for (k, v) in patch {
        let Some(key) = k.strip_prefix(&prefix) else {
            continue;
        };
        if patch.contains_key(property) {
            return Err(SetError::InvalidPatch(format!("{property} patched twice")));
        }
        let key = member(key).ok_or_else(|| SetError::invalid(property, "bad member"))?;
        match v {
            Value::Bool(true) => {
                out.insert(key);
            }
            Value::Null | Value::Bool(false) => {
                out.remove(&key);
            }
            _ => return Err(SetError::invalid(property, "values must be true or null")),
        }
    }
    Ok(out)
}

async fn update(
    context: &Context<'_>,
    view: &AccountView,
    email: &EmailView,
    patch: &Args,
) -> Result<(), SetError> {
    for k in patch.keys() {
        let root = k.split('/').next().unwrap_or_default();
        if root != "keywords" && root != "mailboxIds" {
            return Err(SetError::invalid(root, "cannot be changed"));
        }
    }
    let keywords = patched(
        email.keywords().into_iter().collect(),
        patch,
        "keywords",
        |k| valid_keyword(k).then(|| k.to_ascii_lowercase()),
    )?;
    let current: BTreeSet<String> = email
        .entries
        .iter()
        .filter_map(|(m, _)| view.mailbox(*m))
        .map(|m| store::object_id::mailbox(m.uid_validity))
        .collect();
    // Mailbox ids may be `#creation` ids of this request.
    let mailboxes = patched(current, patch, "mailboxIds", |id| context.resolve_id(id))?;
    let targets: Vec<MailboxId> = mailboxes
        .iter()
        .map(|id| view.mailbox_by_jmap_id(id).map(|m| m.id))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| SetError::invalid("mailboxIds", "no such mailbox"))?;
    if targets.is_empty() {
        return Err(SetError::invalid(
            "mailboxIds",
            "an email must be in a mailbox",
        ));
    }
    let store = context.store();
    // What the change teaches the spam filter.
    let added: Vec<String> = keywords
        .iter()
        .filter(|k| !email.has_keyword(k))
        .map(|k| flag_of(k))
        .collect();
    let spam = lesson(view, email, &targets, &added);
    if keywords != email.keywords().into_iter().collect() {
        for (mailbox, uid) in &email.entries {
            let kept = store
                .entries(*mailbox, vec![*uid])
                .await?
                .into_iter()
                .flat_map(|e| e.flags)
                .filter(|f| f == "\\Deleted");
            let flags: Vec<String> = keywords.iter().map(|k| flag_of(k)).chain(kept).collect();
            store
                .set_flags(*mailbox, vec![*uid], FlagOp::Replace, flags, None)
                .await?;
        }
    }
    let Some((source, uid)) = email.entries.first().copied() else {
        return Err(SetError::NotFound);
    };
    // Where the message is once the update is done (to learn from).
    let mut kept = email
        .entries
        .iter()
        .find(|(mailbox, _)| targets.contains(mailbox))
        .copied();
    for target in &targets {
        if !email.in_mailbox(*target) {
            let copied = store
                .copy_messages(source, vec![uid], *target, false)
                .await?;
            kept = kept.or(copied.first().map(|(_, new)| (*target, *new)));
        }
    }
    for (mailbox, uid) in &email.entries {
        if !targets.contains(mailbox) {
            store.remove_messages(*mailbox, vec![*uid]).await?;
        }
    }
    if let (Some(spam), Some(message)) = (spam, kept) {
        antispam::learn::learn(
            context.jmap.store().clone(),
            context.account.id,
            vec![message],
            spam,
        );
    }
    Ok(())
}

/// What an update says about spam: the keywords added, or a move between
/// one of the email's mailboxes and one it entered.
fn lesson(
    view: &AccountView,
    email: &EmailView,
    targets: &[MailboxId],
    added: &[String],
) -> Option<bool> {
    if let Some(spam) = antispam::learn::lesson_of_keywords(added) {
        return Some(spam);
    }
    let entered: Vec<_> = targets
        .iter()
        .filter(|t| !email.in_mailbox(**t))
        .filter_map(|t| view.mailbox(*t))
        .collect();
    email
        .entries
        .iter()
        .filter_map(|(m, _)| view.mailbox(*m))
        .find_map(|from| {
            entered
                .iter()
                .find_map(|to| antispam::learn::lesson_of_move(from, to))
        })
}

async fn destroy(context: &Context<'_>, email: &EmailView) -> Result<(), SetError> {
    for (mailbox, uid) in &email.entries {
        context
            .store()
            .remove_messages(*mailbox, vec![*uid])
            .await?;
    }
    Ok(())
}
