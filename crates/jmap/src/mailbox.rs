//! Mailbox/get, /changes, /query, /set (RFC 8621 §2) over the store's
//! mailboxes. Names in the store are full paths with `/` between levels
//! (IMAP's hierarchy); JMAP shows the last level as `name` and the
//! mailbox one level up as `parentId` (RFC 8621 §2: a tree).

use serde_json::{Map, Value, json};
use store::{DataType, MailboxRecord, object_id};

use crate::account::{AccountView, Counts};
use crate::args::{self, Args};
use crate::error::{MethodError, SetError};
use crate::set::{SetRequest, SetResponse, get_arguments};
use crate::{Context, changes as change_log};

/// The hierarchy separator of stored names (IMAP LIST's delimiter).
pub const SEPARATOR: char = '/';
/// The longest name of one level, in octets (session `maxSizeMailboxName`).
pub const MAX_NAME: usize = 255;

const PROPERTIES: [&str; 11] = [
    "id",
    "name",
    "parentId",
    "role",
    "sortOrder",
    "totalEmails",
    "unreadEmails",
    "totalThreads",
    "unreadThreads",
    "myRights",
    "isSubscribed",
];

/// The role of a mailbox (RFC 8621 §2, the IANA "IMAP Mailbox Name
/// Attributes" registry): INBOX, or its special use lowercased.
pub fn role(m: &MailboxRecord) -> Option<String> {
    if m.name.eq_ignore_ascii_case("INBOX") {
        return Some("inbox".into());
    }
    m.special_use
        .as_deref()
        .map(|s| s.trim_start_matches('\\').to_ascii_lowercase())
}

/// Where a role sorts among its siblings: the usual order of mail clients.
fn sort_order(role: Option<&str>) -> u32 {
    match role {
        Some("inbox") => 1,
        Some("drafts") => 2,
        Some("sent") => 3,
        Some("archive") => 4,
        Some("junk") => 5,
        Some("trash") => 6,
        Some(_) => 7,
        None => 10,
    }
}

/// The parent of a stored name, if it is a mailbox of the account.
fn parent<'a>(view: &'a AccountView, m: &MailboxRecord) -> Option<&'a MailboxRecord> {
    let mut path = m.name.as_str();
    while let Some(i) = path.rfind(SEPARATOR) {
        path = &path[..i];
        if let Some(p) = view.mailboxes.iter().find(|x| x.name == path) {
            return Some(p);
        }
    }
    None
}

/// The `name` JMAP shows: the path below the parent.
fn leaf_name(view: &AccountView, m: &MailboxRecord) -> String {
    match parent(view, m) {
        Some(p) => m.name[p.name.len() + 1..].to_string(),
        None => m.name.clone(),
    }
}

fn to_json(view: &AccountView, m: &MailboxRecord, counts: Counts, properties: &[String]) -> Value {
    let role = role(m);
    let is_inbox = role.as_deref() == Some("inbox");
    let mut out = Map::new();
    for p in properties {
        let v = match p.as_str() {
            "id" => json!(object_id::mailbox(m.uid_validity)),
            "name" => json!(leaf_name(view, m)),
            "parentId" => json!(parent(view, m).map(|p| object_id::mailbox(p.uid_validity))),
            "role" => json!(role),
            "sortOrder" => json!(sort_order(role.as_deref())),
            "totalEmails" => json!(counts.total_emails),
            "unreadEmails" => json!(counts.unread_emails),
            "totalThreads" => json!(counts.total_threads),
            "unreadThreads" => json!(counts.unread_threads),
            "myRights" => json!({
                "mayReadItems": true, "mayAddItems": true, "mayRemoveItems": true,
                "maySetSeen": true, "maySetKeywords": true, "mayCreateChild": true,
                "mayRename": !is_inbox, "mayDelete": !is_inbox, "maySubmit": true,
            }),
            "isSubscribed" => json!(m.subscribed),
            _ => continue,
        };
        out.insert(p.clone(), v);
    }
    Value::Object(out)
}

fn properties(asked: Option<Vec<String>>) -> Result<Vec<String>, MethodError> {
    let mut list = match asked {
        None => return Ok(PROPERTIES.iter().map(|s| s.to_string()).collect()),
        Some(list) => list,
    };
    if let Some(bad) = list.iter().find(|p| !PROPERTIES.contains(&p.as_str())) {
        return Err(MethodError::InvalidArguments(format!(
            "unknown property {bad}"
        )));
    }
    if !list.iter().any(|p| p == "id") {
        list.insert(0, "id".into());
    }
    Ok(list)
}

/// Mailbox/get (RFC 8620 §5.1).
pub async fn get(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let (ids, asked) = get_arguments(args, context.jmap.limits.max_objects_in_get)?;
    let properties = properties(asked)?;
    let view = context.view().await?;
    let counts = view.counts();
    let mut list = Vec::new();
    let mut not_found = Vec::new();
    let of = |m: &MailboxRecord| {
        to_json(
            &view,
            m,
            counts.get(&m.id).copied().unwrap_or_default(),
            &properties,
        )
    };
    match ids {
        None => list.extend(view.mailboxes.iter().map(of)),
        Some(ids) => {
            for id in ids {
                let found = context
                    .resolve_id(&id)
                    .and_then(|real| view.mailbox_by_jmap_id(&real));
                match found {
                    Some(m) => list.push(of(m)),
                    None => not_found.push(id),
                }
            }
        }
    }
    Ok(json!({
        "accountId": context.account_id,
        "state": view.mailbox_state.to_string(),
        "list": list,
        "notFound": not_found,
    }))
}

/// Mailbox/changes (RFC 8621 §2.2).
pub async fn changes(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    change_log::method(context, args, DataType::Mailbox, |v| {
        object_id::mailbox(v as u32)
    })
    .await
}

/// Mailbox/query (RFC 8621 §2.3): filter on parentId, name, role,
/// hasAnyRole, isSubscribed; sort by name or sortOrder (or as a tree).
pub async fn query(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let view = context.view().await?;
    let ids = results(&view, args)?;
    crate::set::query_page(context, args, ids, &view.mailbox_state.to_string(), true)
}

/// Mailbox/queryChanges (RFC 8620 §5.6): a mailbox's place in the
/// results depends on nothing but itself, and not on its counts, so what
/// may have moved is what changed otherwise.
pub async fn query_changes(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let view = context.view().await?;
    let state = view.mailbox_state;
    let since = change_log::since_query_state(context, args, state).await?;
    let changed = change_log::changed_objects(context, DataType::Mailbox, (since, state), |r| {
        r.change != store::Change::Counts
    })
    .await?;
    let may = changed
        .into_iter()
        .map(|m| object_id::mailbox(m as u32))
        .collect();
    change_log::query_changes(context, args, (since, state), &results(&view, args)?, may)
}

/// Every mailbox the query finds, in order.
fn results(view: &AccountView, args: &Args) -> Result<Vec<String>, MethodError> {
    let filter = args::object(args, "filter")?.cloned().unwrap_or_default();
    let mut found: Vec<&MailboxRecord> = Vec::new();
    for m in &view.mailboxes {
        if matches_filter(view, m, &filter)? {
            found.push(m);
        }
    }
    let sort_as_tree = args::boolean(args, "sortAsTree", false)?;
    let sorts = match args.get("sort") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(MethodError::InvalidArguments("sort is not a list".into())),
    };
    let mut keys: Vec<(String, bool)> = Vec::new();
    for s in &sorts {
        let property = s
            .get("property")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !["name", "sortOrder"].contains(&property) {
            return Err(MethodError::UnsupportedSort(format!(
                "cannot sort by {property}"
            )));
        }
        let ascending = s
            .get("isAscending")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        keys.push((property.to_string(), ascending));
    }
    found.sort_by(|a, b| {
        if sort_as_tree {
            return a.name.cmp(&b.name);
        }
        for (property, ascending) in &keys {
            let ord = match property.as_str() {
                "name" => leaf_name(view, a)
                    .to_lowercase()
                    .cmp(&leaf_name(view, b).to_lowercase()),
                _ => sort_order(role(a).as_deref()).cmp(&sort_order(role(b).as_deref())),
            };
            let ord = if *ascending { ord } else { ord.reverse() };
            if ord.is_ne() {
                return ord;
            }
        }
        a.name.cmp(&b.name)
    });
    Ok(found
        .iter()
        .map(|m| object_id::mailbox(m.uid_validity))
        .collect())
}

fn matches_filter(
    view: &AccountView,
    m: &MailboxRecord,
    filter: &Args,
) -> Result<bool, MethodError> {
    if let Some(op) = filter.get("operator").and_then(Value::as_str) {
        let conditions = filter
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| MethodError::InvalidArguments("conditions missing".into()))?;
        let mut results = Vec::new();
        for c in conditions {
            let c = c.as_object().ok_or_else(|| {
                MethodError::InvalidArguments("a condition is not an object".into())
            })?;
            results.push(matches_filter(view, m, c)?);
        }
        return match op {
            "AND" => Ok(results.iter().all(|r| *r)),
            "OR" => Ok(results.iter().any(|r| *r)),
            "NOT" => Ok(!results.iter().any(|r| *r)),
            other => Err(MethodError::UnsupportedFilter(format!("operator {other}"))),
        };
    }
    for (key, value) in filter {
        let ok = match key.as_str() {
            "parentId" => {
                let p = parent(view, m).map(|p| object_id::mailbox(p.uid_validity));
                match value {
                    Value::Null => p.is_none(),
                    Value::String(s) => p.as_deref() == Some(s.as_str()),
                    _ => return Err(MethodError::InvalidArguments("parentId".into())),
                }
            }
            "name" => {
                let needle = value.as_str().unwrap_or_default().to_lowercase();
                leaf_name(view, m).to_lowercase().contains(&needle)
            }
            "role" => match value {
                Value::Null => role(m).is_none(),
                Value::String(s) => role(m).as_deref() == Some(s.as_str()),
                _ => return Err(MethodError::InvalidArguments("role".into())),
            },
            "hasAnyRole" => role(m).is_some() == value.as_bool().unwrap_or(false),
            "isSubscribed" => m.subscribed == value.as_bool().unwrap_or(false),
            other => {
                return Err(MethodError::UnsupportedFilter(format!(
                    "cannot filter on {other}"
                )));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Mailbox/set (RFC 8621 §2.5).
pub async fn set(context: &mut Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let store = context.jmap.store().clone();
    let old_state = store
        .change_state(context.account.id, DataType::Mailbox)
        .await?;
    let request = SetRequest::parse(
        args,
        context.jmap.limits.max_objects_in_set,
        &old_state.to_string(),
    )?;
    let remove_emails = args::boolean(args, "onDestroyRemoveEmails", false)?;
    let mut response = SetResponse::default();
    for (creation, object) in request.create {
        match create(context, &object).await {
            Ok(m) => {
                let id = object_id::mailbox(m.uid_validity);
                context.created.insert(creation.clone(), id.clone());
                let view = context.view().await?;
                let mut created =
                    to_json(&view, &m, Counts::default(), &PROPERTIES.map(String::from));
                if let Value::Object(o) = &mut created {
                    o.remove("name");
                    o.remove("parentId");
                    o.remove("isSubscribed");
                }
                response.created(creation, created);
            }
            Err(e) => response.not_created(creation, e),
        }
    }
    for (id, patch) in request.update {
        match update(context, &id, &patch).await {
            Ok(()) => response.updated(id),
            Err(e) => response.not_updated(id, e),
        }
    }
    for id in request.destroy {
        match destroy(context, &id, remove_emails).await {
            Ok(()) => response.destroyed.push(id),
            Err(e) => response.not_destroyed(id, e),
        }
    }
    let new_state = store
        .change_state(context.account.id, DataType::Mailbox)
        .await?;
    Ok(response.into_value(
        &context.account_id,
        &old_state.to_string(),
        &new_state.to_string(),
    ))
}

/// The full stored name of a new or renamed mailbox.
fn full_name(
    context: &Context<'_>,
    view: &AccountView,
    name: &str,
    parent_id: &Value,
) -> Result<String, SetError> {
    if name.is_empty()
        || name.len() > MAX_NAME
        || name.contains(SEPARATOR)
        || name.chars().any(char::is_control)
    {
        return Err(SetError::invalid(
            "name",
            "empty, too long, or holds / or a control character",
        ));
    }
    match parent_id {
        Value::Null => Ok(name.to_string()),
        Value::String(p) => {
            let parent = context
                .resolve_id(p)
                .and_then(|real| view.mailbox_by_jmap_id(&real))
                .ok_or_else(|| SetError::invalid("parentId", "no such mailbox"))?;
            Ok(format!("{}{SEPARATOR}{name}", parent.name))
        }
        _ => Err(SetError::invalid("parentId", "not an id")),
    }
}

async fn create(context: &Context<'_>, object: &Args) -> Result<MailboxRecord, SetError> {
    let view = context
        .view()
        .await
        .map_err(|_| SetError::Forbidden("try again later".into()))?;
    if object.get("role").is_some_and(|r| !r.is_null()) {
        return Err(SetError::invalid("role", "roles are given by the server"));
    }
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| SetError::invalid("name", "required"))?;
    let full = full_name(
        context,
        &view,
        name,
        object.get("parentId").unwrap_or(&Value::Null),
    )?;
    if view
        .mailboxes
        .iter()
        .any(|m| m.name.eq_ignore_ascii_case(&full))
    {
        return Err(SetError::AlreadyExists);
    }
    let store = context.store();
    let created = store.create_mailbox(context.account.id, &full).await?;
    if object.get("isSubscribed").and_then(Value::as_bool) == Some(false) {
        store
            .set_subscribed(context.account.id, &full, false)
            .await?;
    }
    Ok(created)
}

/// The account's view and the mailbox an id (or `#creation`) names.
async fn view_and_mailbox(
    context: &Context<'_>,
    id: &str,
) -> Result<(std::sync::Arc<AccountView>, MailboxRecord), SetError> {
    let view = context
        .view()
        .await
        .map_err(|_| SetError::Forbidden("try again later".into()))?;
    let m = context
        .resolve_id(id)
        .and_then(|real| view.mailbox_by_jmap_id(&real))
        .ok_or(SetError::NotFound)?
        .clone();
    Ok((view, m))
}

async fn update(context: &Context<'_>, id: &str, patch: &Args) -> Result<(), SetError> {
    let (view, m) = view_and_mailbox(context, id).await?;
    for key in patch.keys() {
        if !["name", "parentId", "isSubscribed", "sortOrder", "role"].contains(&key.as_str()) {
            return Err(SetError::invalid(key, "cannot be changed"));
        }
    }
    if let Some(r) = patch.get("role")
        && r.as_str() != role(&m).as_deref()
    {
        return Err(SetError::invalid("role", "roles are given by the server"));
    }
    let store = context.store();
    if patch.contains_key("name") || patch.contains_key("parentId") {
        let name = match patch.get("name") {
            Some(Value::String(n)) => n.clone(),
            Some(_) => return Err(SetError::invalid("name", "not a string")),
            None => leaf_name(&view, &m),
        };
        let parent_id = match patch.get("parentId") {
            Some(p) => p.clone(),
            None => json!(parent(&view, &m).map(|p| object_id::mailbox(p.uid_validity))),
        };
        let full = full_name(context, &view, &name, &parent_id)?;
        if full != m.name {
            if role(&m).as_deref() == Some("inbox") {
                return Err(SetError::Forbidden("INBOX keeps its name".into()));
            }
            if full.starts_with(&format!("{}{SEPARATOR}", m.name)) {
                return Err(SetError::invalid(
                    "parentId",
                    "a mailbox cannot go below itself",
                ));
            }
            if view
                .mailboxes
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(&full))
            {
                return Err(SetError::AlreadyExists);
            }
            store
                .rename_mailbox(context.account.id, &m.name, &full)
                .await?;
        }
        if let Some(Value::Bool(sub)) = patch.get("isSubscribed") {
            store
                .set_subscribed(context.account.id, &full, *sub)
                .await?;
        }
        return Ok(());
    }
    if let Some(sub) = patch.get("isSubscribed") {
        let sub = sub
            .as_bool()
            .ok_or_else(|| SetError::invalid("isSubscribed", "not a boolean"))?;
        store
            .set_subscribed(context.account.id, &m.name, sub)
            .await?;
    }
    Ok(())
}

async fn destroy(context: &Context<'_>, id: &str, remove_emails: bool) -> Result<(), SetError> {
    let (view, m) = view_and_mailbox(context, id).await?;
    let m = &m;
    if role(m).as_deref() == Some("inbox") {
        return Err(SetError::Forbidden("INBOX cannot be destroyed".into()));
    }
    let prefix = format!("{}{SEPARATOR}", m.name);
    if view.mailboxes.iter().any(|x| x.name.starts_with(&prefix)) {
        return Err(SetError::MailboxHasChild);
    }
    if !remove_emails && view.emails.values().any(|e| e.in_mailbox(m.id)) {
        return Err(SetError::MailboxHasEmail);
    }
    context
        .store()
        .delete_mailbox(context.account.id, &m.name)
        .await?;
    Ok(())
}
