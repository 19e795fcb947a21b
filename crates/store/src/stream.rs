//! Reading a stored message a piece at a time (hardening.md C-FT9): its
//! octets in [`PIECE`]-sized reads, its MIME structure as an
//! [`Outline`], a part decoded as it is read. For the readers that must not
//! hold a large message whole (IMAP FETCH, JMAP downloads).

use message::mime::Decoder;
use message::outline::{Outline, OutlineBuilder};

use crate::{MailboxId, Result, Store};

/// What one read takes from the store for a client.
pub const PIECE: usize = 64 * 1024;

/// What one read takes when a pass reads a message through (its outline,
/// its parts measured): more, because the cost of a read into a large
/// SQLite content grows with its offset (the overflow pages are walked
/// from the start), so a pass of few reads costs far less (a 40 MB
/// message's outline in 64 KiB reads took seconds).
pub const SCAN: usize = 1024 * 1024;

/// The next piece of a message's octets `next..end`; None if it is gone.
pub async fn piece(
    store: &dyn Store,
    mailbox: MailboxId,
    uid: u32,
    next: u64,
    end: u64,
) -> Result<Option<Vec<u8>>> {
    read_up_to(store, mailbox, uid, next, end, PIECE).await
}

/// The same, in a pass over the message ([`SCAN`] octets at most).
pub async fn scan_piece(
    store: &dyn Store,
    mailbox: MailboxId,
    uid: u32,
    next: u64,
    end: u64,
) -> Result<Option<Vec<u8>>> {
    read_up_to(store, mailbox, uid, next, end, SCAN).await
}

async fn read_up_to(
    store: &dyn Store,
    mailbox: MailboxId,
    uid: u32,
    next: u64,
    end: u64,
    most: usize,
) -> Result<Option<Vec<u8>>> {
    let want = (end.saturating_sub(next)).min(most as u64) as usize;
    Ok(store
        .content_range(mailbox, uid, next, want)
        .await?
        .filter(|got| got.len() == want))
}

/// The outline of a message of `size` octets, read once; None if it is gone.
pub async fn outline(
    store: &dyn Store,
    mailbox: MailboxId,
    uid: u32,
    size: u64,
) -> Result<Option<Outline>> {
    outline_within(store, mailbox, uid, 0..size).await
}

/// The outline of the message that is the octets `range` of a stored one
/// (a message attached there, RFC 2046 §5.2.1), its offsets counted from
/// `range.start`; read once, None if it is gone.
pub async fn outline_within(
    store: &dyn Store,
    mailbox: MailboxId,
    uid: u32,
    range: std::ops::Range<u64>,
) -> Result<Option<Outline>> {
    let mut builder = OutlineBuilder::new();
    let mut next = range.start;
    while next < range.end {
        let Some(got) = scan_piece(store, mailbox, uid, next, range.end).await? else {
            return Ok(None);
        };
        builder.feed(&got);
        next += got.len() as u64;
    }
    Ok(Some(builder.finish()))
}

/// The header section of a message of `size` octets, through the empty
/// line that ends it, read a piece at a time: at most `max` octets (a
/// longer one is cut there). None if the message is gone.
pub async fn header_section(
    store: &dyn Store,
    mailbox: MailboxId,
    uid: u32,
    size: u64,
    max: usize,
) -> Result<Option<Vec<u8>>> {
    let limit = size.min(max as u64);
    let mut head = Vec::new();
    while (head.len() as u64) < limit {
        let Some(got) = piece(store, mailbox, uid, head.len() as u64, limit).await? else {
            return Ok(None);
        };
        head.extend_from_slice(&got);
        let end = message::header::header_end(&head);
        if end < head.len() || head.ends_with(b"\r\n\r\n") {
            head.truncate(end);
            break;
        }
    }
    Ok(Some(head))
}

/// The decoded octets of the next piece of a part (`last`: the part ends).
pub fn decode_piece(decoder: &mut Decoder, got: &[u8], last: bool) -> Vec<u8> {
    let mut plain = Vec::with_capacity(got.len());
    decoder.feed(got, &mut plain);
    if last {
        decoder.finish(&mut plain);
    }
    plain
}
