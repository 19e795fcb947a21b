//! `tern history ADDRESS|ID [--json] [--limit N]`: what happened to the
//! messages from or to an address, or to one message (by Message-ID, SMTP
//! id as in "queued as ...", or queue id): accepted or refused, the checks'
//! verdicts, the mailbox each copy was filed into, each outbound attempt
//! with its MX, IP, TLS and reply, delivered, deferred, failed, bounced.
//! Kept for `[history] keep`.

use std::sync::Arc;

use serde_json::json;
use store::{HistoryEvent, HistoryQuery, Store};

use crate::admin::AdminError;

type Result<T> = std::result::Result<T, AdminError>;

/// The ways `what` can be read, the most likely first: `<id@host>` is a
/// Message-ID, digits (or `Q` and digits) a queue id, an address an
/// address or else a Message-ID without its brackets, anything else an
/// SMTP id.
fn queries(what: &str) -> Vec<HistoryQuery> {
    let what = what.trim();
    if what.starts_with('<') && what.ends_with('>') {
        return vec![HistoryQuery::MessageId(what.to_string())];
    }
    let digits = what.strip_prefix(['Q', 'q']).unwrap_or(what);
    if let Ok(id) = digits.parse::<i64>() {
        return vec![
            HistoryQuery::Queue(id),
            HistoryQuery::Message(what.to_string()),
        ];
    }
    if what.contains('@') {
        return vec![
            HistoryQuery::Address(what.to_string()),
            HistoryQuery::MessageId(what.to_string()),
        ];
    }
    vec![HistoryQuery::Message(what.to_string())]
}

pub async fn history(store: Arc<dyn Store>, what: &str, json: bool, limit: usize) -> Result<()> {
    let events = find(&store, what, limit).await?;
    if json {
        let list: Vec<_> = events.iter().map(event_json).collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for e in &events {
            println!("{}", line(e));
        }
    }
    Ok(())
}

/// The events of `what` (read as [`queries`] says), at most `limit`.
pub async fn find(store: &Arc<dyn Store>, what: &str, limit: usize) -> Result<Vec<HistoryEvent>> {
    for query in queries(what) {
        let events = store.history(query, limit).await?;
        if !events.is_empty() {
            return Ok(events);
        }
    }
    Err(AdminError(format!(
        "no history for {what} (kept for [history] keep; older events are gone)"
    )))
}

/// Which message an event is about: its SMTP id, else its queue id.
fn message_ref(e: &HistoryEvent) -> String {
    match (&e.message, e.queue_id) {
        (Some(m), Some(q)) => format!("{m}/Q{q}"),
        (Some(m), None) => m.clone(),
        (None, Some(q)) => format!("Q{q}"),
        (None, None) => "-".into(),
    }
}

/// `TIME  KIND  MESSAGE  [<sender> ->] RECIPIENT  DETAIL [Message-ID]`
pub(crate) fn line(e: &HistoryEvent) -> String {
    let mut who = String::new();
    if let Some(s) = &e.sender {
        who += &format!("<{s}> -> ");
    }
    who += e.recipient.as_deref().unwrap_or("-");
    let mut out = format!(
        "{}  {:<9}  {}  {}  {}",
        message::date::rfc3339_text(e.at),
        e.kind.as_str(),
        message_ref(e),
        who,
        e.detail
    );
    if let Some(id) = &e.message_id {
        out += &format!("  Message-ID <{id}>");
    }
    out
}

pub(crate) fn event_json(e: &HistoryEvent) -> serde_json::Value {
    json!({
        "at": e.at,
        "time": message::date::rfc3339_text(e.at),
        "event": e.kind.as_str(),
        "message": e.message,
        "queue_id": e.queue_id,
        "message_id": e.message_id,
        "sender": e.sender,
        "recipient": e.recipient,
        "detail": e.detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_read_as() {
        assert_eq!(
            queries("<a@b>"),
            vec![HistoryQuery::MessageId("<a@b>".into())]
        );
        assert_eq!(
            queries("Q12"),
            vec![HistoryQuery::Queue(12), HistoryQuery::Message("Q12".into())]
        );
        assert_eq!(
            queries("bob@a.test"),
            vec![
                HistoryQuery::Address("bob@a.test".into()),
                HistoryQuery::MessageId("bob@a.test".into())
            ]
        );
        assert_eq!(queries("x7Kq"), vec![HistoryQuery::Message("x7Kq".into())]);
    }
}
