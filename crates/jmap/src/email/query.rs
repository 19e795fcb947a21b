//! Email/query (RFC 8621 §4.4): the account's emails filtered, sorted,
//! optionally one per thread, and paged. Text conditions run on the
//! store's search index, the same one IMAP SEARCH uses.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use serde_json::Value;
use store::{MailboxId, TextField, object_id};

use crate::Context;
use crate::account::{AccountView, EmailView};
use crate::args::{self, Args};
use crate::error::MethodError;

/// A filter, compiled: text conditions already answered by the index.
#[derive(Debug)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    None(Vec<Node>),
    InMailbox(Option<MailboxId>),
    NotIn(Vec<MailboxId>),
    Before(i64),
    After(i64),
    MinSize(u64),
    MaxSize(u64),
    HasKeyword(String),
    NotKeyword(String),
    AllInThread(String),
    SomeInThread(String),
    NoneInThread(String),
    /// The emails a text condition matched.
    Matches(HashSet<i64>),
}

fn text_field(name: &str) -> Option<TextField> {
    Some(match name {
        "text" => TextField::Text,
        "from" => TextField::From,
        "to" => TextField::To,
        "cc" => TextField::Cc,
        "bcc" => TextField::Bcc,
        "subject" => TextField::Subject,
        "body" => TextField::Body,
        _ => return None,
    })
}

/// Every text condition of a filter, so they can be looked up first.
fn text_conditions(filter: &Value, out: &mut Vec<(TextField, String)>) {
    let Some(object) = filter.as_object() else {
        return;
    };
    if let Some(conditions) = object.get("conditions").and_then(Value::as_array) {
        conditions.iter().for_each(|c| text_conditions(c, out));
        return;
    }
    for (k, v) in object {
        if let (Some(field), Some(needle)) = (text_field(k), v.as_str()) {
            out.push((field, needle.to_string()));
        }
    }
}

fn invalid(why: &str) -> MethodError {
    MethodError::InvalidArguments(format!("filter: {why}"))
}

fn date_of(v: &Value) -> Result<i64, MethodError> {
    v.as_str()
        .and_then(message::date::rfc3339)
        .ok_or_else(|| invalid("not a UTCDate"))
}

fn keyword_of(v: &Value) -> Result<String, MethodError> {
    v.as_str()
        .filter(|k| crate::account::valid_keyword(k))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| invalid("not a keyword"))
}

fn compile(
    view: &AccountView,
    filter: &Value,
    text: &HashMap<(TextField, String), HashSet<i64>>,
) -> Result<Node, MethodError> {
    let object = filter.as_object().ok_or_else(|| invalid("not an object"))?;
    if let Some(operator) = object.get("operator") {
        let conditions = object
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("an operator needs conditions"))?;
        let nodes = conditions
            .iter()
            .map(|c| compile(view, c, text))
            .collect::<Result<Vec<_>, _>>()?;
        return match operator.as_str() {
            Some("AND") => Ok(Node::All(nodes)),
            Some("OR") => Ok(Node::Any(nodes)),
            Some("NOT") => Ok(Node::None(nodes)),
            _ => Err(MethodError::UnsupportedFilter("operator".into())),
        };
    }
    let mut all = Vec::new();
    for (k, v) in object {
        let mailbox = |v: &Value| {
            v.as_str()
                .and_then(|id| view.mailbox_by_jmap_id(id))
                .map(|m| m.id)
        };
        let node = match k.as_str() {
            "inMailbox" => Node::InMailbox(mailbox(v)),
            "inMailboxOtherThan" => Node::NotIn(
                v.as_array()
                    .ok_or_else(|| invalid("inMailboxOtherThan is not a list"))?
                    .iter()
                    .filter_map(mailbox)
                    .collect(),
            ),
            "before" => Node::Before(date_of(v)?),
            "after" => Node::After(date_of(v)?),
            "minSize" => Node::MinSize(v.as_u64().ok_or_else(|| invalid("minSize"))?),
            "maxSize" => Node::MaxSize(v.as_u64().ok_or_else(|| invalid("maxSize"))?),
            "hasKeyword" => Node::HasKeyword(keyword_of(v)?),
            "notKeyword" => Node::NotKeyword(keyword_of(v)?),
            "allInThreadHaveKeyword" => Node::AllInThread(keyword_of(v)?),
            "someInThreadHaveKeyword" => Node::SomeInThread(keyword_of(v)?),
            "noneInThreadHaveKeyword" => Node::NoneInThread(keyword_of(v)?),
            name => match (text_field(name), v.as_str()) {
                (Some(field), Some(needle)) => Node::Matches(
                    text.get(&(field, needle.to_string()))
                        .cloned()
                        .unwrap_or_default(),
                ),
                (Some(_), None) => return Err(invalid("a text condition needs a string")),
                (None, _) => {
                    return Err(MethodError::UnsupportedFilter(format!(
                        "cannot filter on {name}"
                    )));
                }
            },
        };
        all.push(node);
    }
    Ok(Node::All(all))
}

fn thread_keyword(view: &AccountView, e: &EmailView, keyword: &str) -> (bool, bool) {
    let members = view
        .threads
        .get(&e.thread)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let has = |id: &i64| view.emails.get(id).is_some_and(|m| m.has_keyword(keyword));
    (members.iter().all(has), members.iter().any(has))
}

fn matches(view: &AccountView, e: &EmailView, node: &Node) -> bool {
    match node {
        Node::All(n) => n.iter().all(|c| matches(view, e, c)),
        Node::Any(n) => n.iter().any(|c| matches(view, e, c)),
        Node::None(n) => !n.iter().any(|c| matches(view, e, c)),
        Node::InMailbox(m) => m.is_some_and(|m| e.in_mailbox(m)),
        Node::NotIn(ms) => e.entries.iter().any(|(m, _)| !ms.contains(m)),
        Node::Before(t) => e.received_at < *t,
        Node::After(t) => e.received_at >= *t,
        Node::MinSize(s) => e.size >= *s,
        Node::MaxSize(s) => e.size < *s,
        Node::HasKeyword(k) => e.has_keyword(k),
        Node::NotKeyword(k) => !e.has_keyword(k),
        Node::AllInThread(k) => thread_keyword(view, e, k).0,
        Node::SomeInThread(k) => thread_keyword(view, e, k).1,
        Node::NoneInThread(k) => !thread_keyword(view, e, k).1,
        Node::Matches(set) => set.contains(&e.id),
    }
}

/// One sort criterion (§4.4.2).
#[derive(Debug)]
struct Sort {
    property: String,
    keyword: Option<String>,
    ascending: bool,
}

fn sorts(args: &Args) -> Result<Vec<Sort>, MethodError> {
    let list = match args.get("sort") {
        None | Some(Value::Null) => {
            return Ok(vec![Sort {
                property: "receivedAt".into(),
                keyword: None,
                ascending: false,
            }]);
        }
        Some(Value::Array(l)) => l,
        Some(_) => return Err(MethodError::InvalidArguments("sort is not a list".into())),
    };
    list.iter()
        .map(|s| {
            let property = s
                .get("property")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !crate::session::EMAIL_SORT.contains(&property) {
                return Err(MethodError::UnsupportedSort(format!(
                    "cannot sort by {property}"
                )));
            }
            let keyword = match s.get("keyword") {
                Some(k) => Some(keyword_of(k)?),
                None if property.ends_with("eyword") => {
                    return Err(MethodError::InvalidArguments(format!(
                        "{property} needs a keyword"
                    )));
                }
                None => None,
            };
            if let Some(c) = s.get("collation").and_then(Value::as_str)
                && !["i;ascii-casemap", "i;octet", "i;unicode-casemap"].contains(&c)
            {
                return Err(MethodError::UnsupportedSort(format!("collation {c}")));
            }
            Ok(Sort {
                property: property.to_string(),
                keyword,
                ascending: s
                    .get("isAscending")
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            })
        })
        .collect()
}

fn compare(view: &AccountView, a: &EmailView, b: &EmailView, sort: &Sort) -> Ordering {
    let keyword = sort.keyword.as_deref().unwrap_or_default();
    let ord = match sort.property.as_str() {
        "receivedAt" => a.received_at.cmp(&b.received_at),
        "size" => a.size.cmp(&b.size),
        "from" => a.index.from_key.cmp(&b.index.from_key),
        "to" => a.index.to_key.cmp(&b.index.to_key),
        "subject" => a.index.base_subject.cmp(&b.index.base_subject),
        "sentAt" => a.index.sent.cmp(&b.index.sent),
        "hasKeyword" => a.has_keyword(keyword).cmp(&b.has_keyword(keyword)),
        "allInThreadHaveKeyword" => thread_keyword(view, a, keyword)
            .0
            .cmp(&thread_keyword(view, b, keyword).0),
        _ => thread_keyword(view, a, keyword)
            .1
            .cmp(&thread_keyword(view, b, keyword).1),
    };
    if sort.ascending { ord } else { ord.reverse() }
}

/// Email/query.
pub async fn query(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let view = context.view().await?;
    let filter = args.get("filter").cloned().unwrap_or(Value::Null);
    let sorts = sorts(args)?;
    let node = if filter.is_null() {
        Node::All(vec![])
    } else {
        let mut wanted = Vec::new();
        text_conditions(&filter, &mut wanted);
        let text = text_matches(context, &view, wanted).await?;
        compile(&view, &filter, &text)?
    };
    let mut found: Vec<&EmailView> = view
        .emails
        .values()
        .filter(|e| matches(&view, e, &node))
        .collect();
    // Ties: in the order the emails came (their ids), the way the first
    // criterion goes.
    let newest_first = sorts.first().is_some_and(|s| !s.ascending);
    found.sort_by(|a, b| {
        sorts
            .iter()
            .map(|s| compare(&view, a, b, s))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| {
                let by_id = a.id.cmp(&b.id);
                if newest_first { by_id.reverse() } else { by_id }
            })
    });
    if args::boolean(args, "collapseThreads", false)? {
        let mut seen = HashSet::new();
        found.retain(|e| seen.insert(e.thread));
    }
    let ids: Vec<String> = found.iter().map(|e| object_id::email(e.id)).collect();
    crate::set::query_page(context, args, ids, &view.email_state.to_string())
}

/// The emails each text condition matches, from the index of every
/// mailbox of the account.
async fn text_matches(
    context: &Context<'_>,
    view: &AccountView,
    wanted: Vec<(TextField, String)>,
) -> Result<HashMap<(TextField, String), HashSet<i64>>, MethodError> {
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return Ok(out);
    }
    let by_entry: HashMap<(MailboxId, u32), i64> = view
        .emails
        .values()
        .flat_map(|e| e.entries.iter().map(move |entry| (*entry, e.id)))
        .collect();
    for (field, needle) in wanted {
        let mut set = HashSet::new();
        for m in &view.mailboxes {
            for uid in context.store().search_text(m.id, field, &needle).await? {
                if let Some(id) = by_entry.get(&(m.id, uid)) {
                    set.insert(*id);
                }
            }
        }
        out.insert((field, needle), set);
    }
    Ok(out)
}
