//! Email/query (RFC 8621 §4.4): the account's emails filtered, sorted,
//! optionally one per thread, and paged. Text conditions run on the
//! store's search index, the same one IMAP SEARCH uses.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use message::outline::Outline;
use serde_json::Value;
use store::{DataType, MailboxId, Store, TextField, object_id};

use crate::account::{AccountView, EmailView};
use crate::args::{self, Args};
use crate::error::MethodError;
use crate::{Context, changes as change_log};

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

/// A condition answered before the filter runs: by the search index
/// (text), or by reading the messages (`header`, `hasAttachment`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Lookup {
    Text(TextField, String),
    /// A header field by name (lower case) and, if given, text its value
    /// contains (RFC 8621 §4.4.1 `header`).
    Header(String, Option<String>),
    HasAttachment,
}

impl Lookup {
    /// The lookup a condition needs, if it is one; Err if its value is wrong.
    fn of(name: &str, value: &Value) -> Result<Option<Lookup>, MethodError> {
        if let Some(field) = text_field(name) {
            let needle = value
                .as_str()
                .ok_or_else(|| invalid("a text condition needs a string"))?;
            return Ok(Some(Lookup::Text(field, needle.to_string())));
        }
        Ok(match name {
            "hasAttachment" => Some(Lookup::HasAttachment),
            "header" => {
                let parts: Vec<&str> = value
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match parts.as_slice() {
                    [name] => Some(Lookup::Header(name.to_ascii_lowercase(), None)),
                    [name, text] => Some(Lookup::Header(
                        name.to_ascii_lowercase(),
                        Some(text.to_lowercase()),
                    )),
                    _ => return Err(invalid("header is a name and at most a value")),
                }
            }
            _ => None,
        })
    }

    /// Whether what was read of a message meets it (not for text lookups).
    fn meets(&self, read: &Read) -> bool {
        match self {
            Lookup::HasAttachment => match read {
                Read::Whole(raw) => super::body::has_attachment(raw),
                Read::Large { outline, .. } => outline
                    .as_deref()
                    .is_some_and(|o| super::body::display(o, &o.root).has_attachment(o)),
            },
            Lookup::Header(name, text) => message::header::fields(read.head()).iter().any(|f| {
                f.name.eq_ignore_ascii_case(name)
                    && text.as_ref().is_none_or(|t| {
                        message::header::decoded(f.value).to_lowercase().contains(t)
                    })
            }),
            Lookup::Text(..) => false,
        }
    }
}

/// What the lookups read of one message: a small one whole; a large one's
/// header section, and its outline when `hasAttachment` is asked
/// (hardening.md C-FT9: never the large message whole).
enum Read {
    Whole(Vec<u8>),
    Large {
        head: Vec<u8>,
        outline: Option<Box<Outline>>,
    },
}

impl Read {
    fn head(&self) -> &[u8] {
        match self {
            Read::Whole(raw) => raw,
            Read::Large { head, .. } => head,
        }
    }

    /// Read `e` for these lookups; None if it is gone.
    async fn of(
        store: &dyn Store,
        e: &EmailView,
        structure: bool,
    ) -> Result<Option<Read>, MethodError> {
        let Some(&(mailbox, uid)) = e.entries.first() else {
            return Ok(None);
        };
        if e.size <= super::STREAM_OVER {
            return Ok(super::content(store, e).await?.map(Read::Whole));
        }
        let max = message::outline::HEAD_KEEP;
        let Some(head) = store::stream::header_section(store, mailbox, uid, e.size, max).await?
        else {
            return Ok(None);
        };
        let outline = match structure {
            true => store::stream::outline(store, mailbox, uid, e.size)
                .await?
                .map(Box::new),
            false => None,
        };
        Ok(Some(Read::Large { head, outline }))
    }
}

/// Every lookup of a filter, so they can be answered first.
fn lookups(filter: &Value, out: &mut Vec<Lookup>) -> Result<(), MethodError> {
    let Some(object) = filter.as_object() else {
        return Ok(());
    };
    if let Some(conditions) = object.get("conditions").and_then(Value::as_array) {
        return conditions.iter().try_for_each(|c| lookups(c, out));
    }
    for (k, v) in object {
        if let Some(l) = Lookup::of(k, v)?
            && !out.contains(&l)
        {
            out.push(l);
        }
    }
    Ok(())
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
    found: &HashMap<Lookup, HashSet<i64>>,
) -> Result<Node, MethodError> {
    let object = filter.as_object().ok_or_else(|| invalid("not an object"))?;
    if let Some(operator) = object.get("operator") {
        let conditions = object
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("an operator needs conditions"))?;
        let nodes = conditions
            .iter()
            .map(|c| compile(view, c, found))
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
            "hasAttachment" => {
                let wanted = v.as_bool().ok_or_else(|| invalid("hasAttachment"))?;
                let with = found
                    .get(&Lookup::HasAttachment)
                    .cloned()
                    .unwrap_or_default();
                if wanted {
                    Node::Matches(with)
                } else {
                    Node::None(vec![Node::Matches(with)])
                }
            }
            name => match Lookup::of(name, v)? {
                Some(l) => Node::Matches(found.get(&l).cloned().unwrap_or_default()),
                None => {
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

impl Node {
    /// Whether the condition looks at the other emails of the thread.
    fn on_thread(&self) -> bool {
        match self {
            Node::All(n) | Node::Any(n) | Node::None(n) => n.iter().any(Node::on_thread),
            Node::AllInThread(_) | Node::SomeInThread(_) | Node::NoneInThread(_) => true,
            _ => false,
        }
    }
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
    let (ids, _) = results(context, &view, args).await?;
    crate::set::query_page(context, args, ids, &view.email_state.to_string(), true)
}

/// Email/queryChanges (RFC 8620 §5.6, RFC 8621 §4.5). What may have moved:
/// the emails that changed; and when a place depends on the rest of the
/// thread (`collapseThreads`, the thread keyword conditions), every email
/// of a thread one of them is or was in.
pub async fn query_changes(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let view = context.view().await?;
    let state = view.email_state;
    let since = change_log::since_query_state(context, args, state).await?;
    let (ids, by_thread) = results(context, &view, args).await?;
    let mut may =
        change_log::changed_objects(context, DataType::Email, (since, state), |_| true).await?;
    if by_thread {
        let mut threads: HashSet<i64> = may
            .iter()
            .filter_map(|e| view.emails.get(e).map(|e| e.thread))
            .collect();
        // Threads an email left or was destroyed from (the log's rows
        // share one sequence, so the same `since` holds).
        threads.extend(
            change_log::changed_objects(context, DataType::Thread, (since, state), |_| true)
                .await?,
        );
        for t in threads {
            may.extend(view.threads.get(&t).into_iter().flatten());
        }
    }
    let may = may.into_iter().map(object_id::email).collect();
    change_log::query_changes(context, args, (since, state), &ids, may)
}

/// Every email the query finds, in order; and whether an email's place
/// depends on the other emails of its thread.
async fn results(
    context: &Context<'_>,
    view: &AccountView,
    args: &Args,
) -> Result<(Vec<String>, bool), MethodError> {
    let filter = args.get("filter").cloned().unwrap_or(Value::Null);
    let sorts = sorts(args)?;
    let node = if filter.is_null() {
        Node::All(vec![])
    } else {
        let mut wanted = Vec::new();
        lookups(&filter, &mut wanted)?;
        let found = look_up(context, view, wanted).await?;
        compile(view, &filter, &found)?
    };
    let mut found: Vec<&EmailView> = view
        .emails
        .values()
        .filter(|e| matches(view, e, &node))
        .collect();
    // Ties: in the order the emails came (their ids), the way the first
    // criterion goes.
    let newest_first = sorts.first().is_some_and(|s| !s.ascending);
    found.sort_by(|a, b| {
        sorts
            .iter()
            .map(|s| compare(view, a, b, s))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| {
                let by_id = a.id.cmp(&b.id);
                if newest_first { by_id.reverse() } else { by_id }
            })
    });
    let collapse = args::boolean(args, "collapseThreads", false)?;
    if collapse {
        let mut seen = HashSet::new();
        found.retain(|e| seen.insert(e.thread));
    }
    let by_thread =
        collapse || node.on_thread() || sorts.iter().any(|s| s.property.contains("InThread"));
    let ids = found.iter().map(|e| object_id::email(e.id)).collect();
    Ok((ids, by_thread))
}

/// The emails each lookup finds: text on the index of every mailbox of
/// the account; the others by reading each email once (the cost of a
/// scan: rare conditions; `hasAttachment` is remembered per content).
async fn look_up(
    context: &Context<'_>,
    view: &AccountView,
    wanted: Vec<Lookup>,
) -> Result<HashMap<Lookup, HashSet<i64>>, MethodError> {
    let mut out: HashMap<Lookup, HashSet<i64>> = HashMap::new();
    let (text, read): (Vec<Lookup>, Vec<Lookup>) = wanted
        .into_iter()
        .partition(|l| matches!(l, Lookup::Text(..)));
    if !text.is_empty() {
        let by_entry: HashMap<(MailboxId, u32), i64> = view
            .emails
            .values()
            .flat_map(|e| e.entries.iter().map(move |entry| (*entry, e.id)))
            .collect();
        for l in text {
            let Lookup::Text(field, needle) = &l else {
                continue;
            };
            let mut set = HashSet::new();
            for m in &view.mailboxes {
                for uid in context.store().search_text(m.id, *field, needle).await? {
                    if let Some(id) = by_entry.get(&(m.id, uid)) {
                        set.insert(*id);
                    }
                }
            }
            out.insert(l, set);
        }
    }
    if read.is_empty() {
        return Ok(out);
    }
    let attachments = &context.jmap.attachments;
    for e in view.emails.values() {
        let known = attachments.get(e.id);
        let needs_content = read
            .iter()
            .any(|l| !(matches!(l, Lookup::HasAttachment) && known.is_some()));
        let structure = known.is_none() && read.contains(&Lookup::HasAttachment);
        let content = match needs_content {
            true => Read::of(context.store(), e, structure).await?,
            false => None,
        };
        let content = content.unwrap_or(Read::Whole(Vec::new()));
        for l in &read {
            let yes = match (l, known) {
                (Lookup::HasAttachment, Some(k)) => k,
                (Lookup::HasAttachment, None) => {
                    let k = l.meets(&content);
                    attachments.insert(e.id, k);
                    k
                }
                _ => l.meets(&content),
            };
            if yes {
                out.entry(l.clone()).or_default().insert(e.id);
            }
        }
    }
    Ok(out)
}
