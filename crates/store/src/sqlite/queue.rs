//! The outbound queue in SQLite: one row per message, one per recipient with its
//! own state, so a message to several domains advances per recipient.

use rusqlite::{Connection, params};

use super::{SqliteStore, sql};
use crate::error::Result;
use crate::types::*;

/// Recipient states.
pub const QUEUED: &str = "queued";

pub(super) fn insert(c: &Connection, blob: i64, q: &QueueInsert, now: i64) -> Result<i64> {
    c.prepare_cached("INSERT INTO queue_messages(blob_id, sender, envid, ret, smtputf8, eight_bit, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .and_then(|mut st| st.execute(params![blob, q.sender, q.envid, q.ret, q.smtputf8, q.eight_bit, now]))
        .map_err(sql)?;
    let id = c.last_insert_rowid();
    let mut st = c
        .prepare_cached("INSERT INTO queue_recipients(queue_id, address, domain, orcpt, notify, state, next_attempt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .map_err(sql)?;
    for r in &q.recipients {
        let domain = r
            .address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or_default();
        st.execute(params![
            id, r.address, domain, r.orcpt, r.notify, QUEUED, now
        ])
        .map_err(sql)?;
    }
    Ok(id)
}

impl SqliteStore {
    pub(crate) async fn sql_queue_list(&self) -> Result<Vec<QueueSummary>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached("SELECT q.id, q.sender, q.created, length(b.data) FROM queue_messages q JOIN blobs b ON b.id = q.blob_id ORDER BY q.id")
                .map_err(sql)?;
            let mut out: Vec<QueueSummary> = st
                .query_map([], |r| Ok(QueueSummary { id: r.get(0)?, sender: r.get(1)?, created: r.get(2)?, size: r.get(3)?, recipients: Vec::new() }))
                .map_err(sql)?
                .collect::<rusqlite::Result<_>>()
                .map_err(sql)?;
            let mut st = c.prepare_cached("SELECT address, state FROM queue_recipients WHERE queue_id = ?1 ORDER BY id").map_err(sql)?;
            for q in &mut out {
                q.recipients = st.query_map([q.id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql)?.collect::<rusqlite::Result<_>>().map_err(sql)?;
            }
            Ok(out)
        })
        .await
    }
}
