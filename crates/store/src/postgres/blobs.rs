//! Message contents in PostgreSQL: one `blobs` row per content, its octets
//! in `blob_pieces` rows of [`PIECE`] octets, so a large message goes in
//! from its spool and comes out for a client a piece at a time, never whole
//! in memory (hardening.md C-FT9). A blob goes when nothing points to it.

use deadpool_postgres::GenericClient;
use message::spool::Spooled;

use super::{Prepared, pg};
use crate::error::{Result, StoreError};

/// Octets per piece row.
pub(super) const PIECE: usize = 256 * 1024;

/// Keep a content; its id (never one used before: an identity column).
pub(super) async fn insert(c: &impl GenericClient, content: &Spooled) -> Result<i64> {
    let size = content.len() as i64;
    let id: i64 = c
        .query_one_p("INSERT INTO blobs(size) VALUES ($1) RETURNING id", &[&size])
        .await
        .map_err(pg)?
        .get(0);
    insert_pieces(c, id, content).await?;
    Ok(id)
}

/// Keep a content under the id it had elsewhere (a store being copied in).
pub(super) async fn insert_with_id(
    c: &impl GenericClient,
    id: i64,
    content: &Spooled,
) -> Result<()> {
    c.execute_p(
        "INSERT INTO blobs(id, size) OVERRIDING SYSTEM VALUE VALUES ($1, $2)",
        &[&id, &(content.len() as i64)],
    )
    .await
    .map_err(pg)?;
    insert_pieces(c, id, content).await
}

/// The content's octets, a piece row at a time, read from its spool.
async fn insert_pieces(c: &impl GenericClient, id: i64, content: &Spooled) -> Result<()> {
    let insert = c
        .prepare_cached("INSERT INTO blob_pieces(blob_id, seq, data) VALUES ($1, $2, $3)")
        .await
        .map_err(pg)?;
    let mut piece = vec![0; PIECE];
    let mut at = 0u64;
    let mut seq = 0i32;
    while at < content.len() {
        let n = read_exactly(content, at, &mut piece)?;
        c.execute(&insert, &[&id, &seq, &&piece[..n]])
            .await
            .map_err(pg)?;
        at += n as u64;
        seq += 1;
    }
    Ok(())
}

/// Fill `piece` from `offset` (less at the end of the content).
fn read_exactly(content: &Spooled, offset: u64, piece: &mut [u8]) -> Result<usize> {
    let want = piece.len().min((content.len() - offset) as usize);
    let mut got = 0;
    while got < want {
        let n = content.read_at(offset + got as u64, &mut piece[got..want])?;
        if n == 0 {
            return Err(StoreError::Io("the spool ended early".into()));
        }
        got += n;
    }
    Ok(want)
}

/// A content whole (small messages; what a caller asked whole).
pub(super) async fn read(c: &impl GenericClient, blob: i64) -> Result<Vec<u8>> {
    let rows = c
        .query_p(
            "SELECT data FROM blob_pieces WHERE blob_id = $1 ORDER BY seq",
            &[&blob],
        )
        .await
        .map_err(pg)?;
    let mut out = Vec::new();
    for r in &rows {
        out.extend_from_slice(r.get::<_, &[u8]>(0));
    }
    Ok(out)
}

/// At most `len` octets of a content from `start`: only the pieces that
/// hold them are read.
pub(super) async fn read_range(
    c: &impl GenericClient,
    blob: i64,
    start: u64,
    len: usize,
) -> Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let first = (start / PIECE as u64) as i64;
    let last = ((start + len as u64 - 1) / PIECE as u64) as i64;
    let rows = c
        .query_p(
            "SELECT seq, data FROM blob_pieces WHERE blob_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq",
            &[&blob, &(first as i32), &(last.min(i32::MAX as i64) as i32)],
        )
        .await
        .map_err(pg)?;
    let mut out = Vec::with_capacity(len.min(4 * PIECE));
    for r in &rows {
        let seq: i32 = r.get(0);
        let data: &[u8] = r.get(1);
        let begins = seq as u64 * PIECE as u64;
        let from = start.saturating_sub(begins) as usize;
        let wanted = len - out.len();
        if from < data.len() {
            out.extend_from_slice(&data[from..data.len().min(from + wanted)]);
        }
    }
    Ok(out)
}

/// Delete those of `blobs` nothing points to any more.
pub(super) async fn collect(c: &impl GenericClient, blobs: &[i64]) -> Result<()> {
    if blobs.is_empty() {
        return Ok(());
    }
    c.execute_p(
        "DELETE FROM blobs b WHERE b.id = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM mailbox_messages m WHERE m.blob_id = b.id)
           AND NOT EXISTS (SELECT 1 FROM queue_messages q WHERE q.blob_id = b.id)",
        &[&blobs],
    )
    .await
    .map_err(pg)?;
    Ok(())
}
