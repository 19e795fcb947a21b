//! The delivery history in SQLite: one row an event; see [`crate::history`].

use rusqlite::{Connection, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::history::{HistoryEvent, HistoryKind, HistoryQuery, HistoryStore, bare_message_id};

#[async_trait::async_trait]
impl HistoryStore for SqliteStore {
    fn record_history(&self, events: Vec<HistoryEvent>) {
        if events.is_empty() {
            return;
        }
        self.write_detached(move |c| insert(c, &events));
    }

    async fn history(&self, query: HistoryQuery, limit: usize) -> Result<Vec<HistoryEvent>> {
        self.read(move |c| find(c, &query, limit)).await
    }

    async fn expire_history(&self, before: i64) -> Result<usize> {
        self.write(move |c| {
            c.execute("DELETE FROM history WHERE at < ?1", params![before])
                .map_err(sql)
        })
        .await
    }
}

fn insert(c: &Connection, events: &[HistoryEvent]) -> Result<()> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO history(at, kind, message, queue_id, message_id, sender, recipient, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(sql)?;
    for e in events {
        stmt.execute(params![
            e.at,
            e.kind.as_str(),
            e.message,
            e.queue_id,
            e.message_id.as_deref().map(bare_message_id),
            e.sender.as_deref().map(str::to_lowercase),
            e.recipient.as_deref().map(str::to_lowercase),
            e.detail
        ])
        .map_err(sql)?;
    }
    Ok(())
}

/// The messages matching (their SMTP ids and queue ids), then all their events.
fn find(c: &Connection, query: &HistoryQuery, limit: usize) -> Result<Vec<HistoryEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (condition, value): (&str, rusqlite::types::Value) = match query {
        HistoryQuery::Address(a) => ("sender = ?1 OR recipient = ?1", a.to_lowercase().into()),
        HistoryQuery::MessageId(id) => ("message_id = ?1", bare_message_id(id).into()),
        HistoryQuery::Message(m) => ("message = ?1", m.clone().into()),
        HistoryQuery::Queue(q) => ("queue_id = ?1", (*q).into()),
    };
    // A message is known by its SMTP id, its queue id, or both; group by
    // whichever its rows carry, newest messages first.
    let keys_sql = format!(
        "SELECT message, queue_id, max(at) AS last FROM history WHERE {condition}
         GROUP BY message, queue_id ORDER BY last DESC LIMIT ?2"
    );
    let mut messages: Vec<String> = Vec::new();
    let mut queues: Vec<i64> = Vec::new();
    {
        let mut stmt = c.prepare(&keys_sql).map_err(sql)?;
        let rows = stmt
            .query_map(params![value, limit], |r| {
                Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .map_err(sql)?;
        for row in rows {
            let (m, q) = row.map_err(sql)?;
            messages.extend(m);
            queues.extend(q);
        }
    }
    // The SMTP rows name the queue ids the message got, and the reverse.
    let linked = linked_keys(c, &messages, &queues)?;
    messages.extend(linked.0);
    queues.extend(linked.1);
    messages.sort();
    messages.dedup();
    queues.sort();
    queues.dedup();
    if messages.is_empty() && queues.is_empty() {
        return Ok(Vec::new());
    }
    let list = |n: usize, from: usize| {
        (0..n)
            .map(|i| format!("?{}", from + i + 1))
            .collect::<Vec<_>>()
            .join(",")
    };
    let events_sql = format!(
        "SELECT at, kind, message, queue_id, message_id, sender, recipient, detail FROM history
         WHERE message IN ({}) OR queue_id IN ({}) ORDER BY at, id",
        list(messages.len(), 0),
        list(queues.len(), messages.len())
    );
    let mut values: Vec<rusqlite::types::Value> = messages.into_iter().map(Into::into).collect();
    values.extend(queues.into_iter().map(rusqlite::types::Value::from));
    let mut stmt = c.prepare(&events_sql).map_err(sql)?;
    let rows: Vec<HistoryEvent> = stmt
        .query_map(rusqlite::params_from_iter(values), |r| {
            let kind: String = r.get(1)?;
            Ok(HistoryEvent {
                at: r.get(0)?,
                kind: HistoryKind::parse(&kind).unwrap_or(HistoryKind::Attempt),
                message: r.get(2)?,
                queue_id: r.get(3)?,
                message_id: r.get(4)?,
                sender: r.get(5)?,
                recipient: r.get(6)?,
                detail: r.get(7)?,
            })
        })
        .map_err(sql)?
        .collect::<std::result::Result<_, _>>()
        .map_err(sql)?;
    let mut rows = rows;
    // Stable: events of one second keep their order within a stage.
    rows.sort_by_key(|e| (e.at, e.stage()));
    Ok(rows)
}

/// The queue ids recorded with these SMTP ids, and the SMTP ids recorded
/// with these queue ids.
fn linked_keys(
    c: &Connection,
    messages: &[String],
    queues: &[i64],
) -> Result<(Vec<String>, Vec<i64>)> {
    let mut more_queues = Vec::new();
    let mut more_messages = Vec::new();
    let mut by_message = c
        .prepare_cached(
            "SELECT DISTINCT queue_id FROM history WHERE message = ?1 AND queue_id IS NOT NULL",
        )
        .map_err(sql)?;
    for m in messages {
        let rows = by_message
            .query_map(params![m], |r| r.get::<_, i64>(0))
            .map_err(sql)?;
        for q in rows {
            more_queues.push(q.map_err(sql)?);
        }
    }
    let mut by_queue = c
        .prepare_cached(
            "SELECT DISTINCT message FROM history WHERE queue_id = ?1 AND message IS NOT NULL",
        )
        .map_err(sql)?;
    for q in queues {
        let rows = by_queue
            .query_map(params![q], |r| r.get::<_, String>(0))
            .map_err(sql)?;
        for m in rows {
            more_messages.push(m.map_err(sql)?);
        }
    }
    Ok((more_messages, more_queues))
}
