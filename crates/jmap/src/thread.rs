//! Thread/get and Thread/changes (RFC 8621 §3): a thread is the emails of
//! one conversation in the account, oldest first; the store decides
//! which conversation an email joins (`store::object_id`: THREADID).

use serde_json::{Value, json};
use store::{DataType, object_id};

use crate::args::Args;
use crate::error::MethodError;
use crate::set::get_arguments;
use crate::{Context, changes as change_log};

/// Thread/get (RFC 8621 §3.1).
pub async fn get(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let (ids, _) = get_arguments(args, context.jmap.limits.max_objects_in_get)?;
    let view = context.view().await?;
    let state = context
        .store()
        .change_state(context.account.id, DataType::Thread)
        .await?;
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let ids = ids.unwrap_or_else(|| view.threads.keys().map(|t| object_id::thread(*t)).collect());
    for id in ids {
        let emails = object_id::parse(&id, 'T').and_then(|t| view.threads.get(&t));
        match emails {
            Some(emails) => list.push(json!({
                "id": id,
                "emailIds": emails.iter().map(|e| object_id::email(*e)).collect::<Vec<_>>(),
            })),
            None => not_found.push(id),
        }
    }
    Ok(json!({
        "accountId": context.account_id,
        "state": state.to_string(),
        "list": list,
        "notFound": not_found,
    }))
}

/// Thread/changes (RFC 8621 §3.2).
pub async fn changes(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    change_log::method(context, args, DataType::Thread, object_id::thread).await
}
