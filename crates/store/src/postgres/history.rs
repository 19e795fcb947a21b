//! The delivery history in PostgreSQL: one row an event; see
//! [`crate::history`].

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::{OwnedRow, PostgresStore, Prepared, pg};
use crate::error::Result;
use crate::history::{HistoryEvent, HistoryKind, HistoryQuery, HistoryStore, bare_message_id};

#[async_trait::async_trait]
impl HistoryStore for PostgresStore {
    /// Written by a task of its own: nobody acknowledges on it.
    fn record_history(&self, events: Vec<HistoryEvent>) {
        let rows = events
            .into_iter()
            .map(|e| -> OwnedRow {
                vec![
                    Box::new(e.at),
                    Box::new(e.kind.as_str()),
                    Box::new(e.message),
                    Box::new(e.queue_id),
                    Box::new(e.message_id.as_deref().map(bare_message_id)),
                    Box::new(e.sender.as_deref().map(str::to_lowercase)),
                    Box::new(e.recipient.as_deref().map(str::to_lowercase)),
                    Box::new(e.detail),
                ]
            })
            .collect();
        self.insert_detached(
            "history events",
            "INSERT INTO history(at, kind, message, queue_id, message_id, sender, recipient, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            rows,
        );
    }

    async fn history(&self, query: HistoryQuery, limit: usize) -> Result<Vec<HistoryEvent>> {
        find(&self.client().await?, &query, limit).await
    }

    async fn expire_history(&self, before: i64) -> Result<usize> {
        let n = self
            .run("DELETE FROM history WHERE at < $1", &[&before])
            .await?;
        Ok(n as usize)
    }
}

/// The messages matching (their SMTP ids and queue ids, newest first),
/// the ids their rows link to, then all their events in order.
async fn find(
    c: &impl GenericClient,
    query: &HistoryQuery,
    limit: usize,
) -> Result<Vec<HistoryEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (text, queue);
    let (condition, value): (&str, &(dyn ToSql + Sync)) = match query {
        HistoryQuery::Address(a) => {
            text = a.to_lowercase();
            ("sender = $1 OR recipient = $1", &text)
        }
        HistoryQuery::MessageId(id) => {
            text = bare_message_id(id);
            ("message_id = $1", &text)
        }
        HistoryQuery::Message(m) => ("message = $1", m),
        HistoryQuery::Queue(q) => {
            queue = *q;
            ("queue_id = $1", &queue)
        }
    };
    let keys = c
        .query_p(
            &format!(
                "SELECT message, queue_id, max(at) AS last FROM history WHERE {condition}
                 GROUP BY message, queue_id ORDER BY last DESC LIMIT $2"
            ),
            &[value, &limit],
        )
        .await
        .map_err(pg)?;
    let mut messages: Vec<String> = keys.iter().filter_map(|r| r.get(0)).collect();
    let mut queues: Vec<i64> = keys.iter().filter_map(|r| r.get(1)).collect();
    // The SMTP rows name the queue ids the message got, and the reverse.
    let linked = c
        .query_p(
            "SELECT DISTINCT message, queue_id FROM history
             WHERE (message = ANY($1) OR queue_id = ANY($2)) AND message IS NOT NULL AND queue_id IS NOT NULL",
            &[&messages, &queues],
        )
        .await
        .map_err(pg)?;
    messages.extend(linked.iter().map(|r| r.get::<_, String>(0)));
    queues.extend(linked.iter().map(|r| r.get::<_, i64>(1)));
    messages.sort();
    messages.dedup();
    queues.sort();
    queues.dedup();
    if messages.is_empty() && queues.is_empty() {
        return Ok(Vec::new());
    }
    let rows = c
        .query_p(
            "SELECT at, kind, message, queue_id, message_id, sender, recipient, detail FROM history
             WHERE message = ANY($1) OR queue_id = ANY($2) ORDER BY at, id",
            &[&messages, &queues],
        )
        .await
        .map_err(pg)?;
    let mut events: Vec<HistoryEvent> = rows
        .iter()
        .map(|r| HistoryEvent {
            at: r.get(0),
            kind: HistoryKind::parse(r.get(1)).unwrap_or(HistoryKind::Attempt),
            message: r.get(2),
            queue_id: r.get(3),
            message_id: r.get(4),
            sender: r.get(5),
            recipient: r.get(6),
            detail: r.get(7),
        })
        .collect();
    // Stable: events of one second keep their order within a stage.
    events.sort_by_key(|e| (e.at, e.stage()));
    Ok(events)
}
