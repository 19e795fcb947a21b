//! FETCH and UID FETCH (RFC 9051 §6.4.5), with CHANGEDSINCE and VANISHED
//! (RFC 7162 §3.1.4, §3.2.6) and BINARY (RFC 3516).
//!
//! Flags and sizes come from the store's entries; message bytes are read only
//! when an item needs them, a batch of messages at a time.

use std::collections::HashMap;

use store::{FlagOp, MessageEntry, flags};

use super::{ImapSession, Outcome};
use crate::error::ImapError;
use crate::parse::{FetchItem, SequenceSet, format_set};
use crate::render;
use crate::response::{self, Cursor};

/// Messages whose contents are read from the store at once.
const CONTENT_BATCH: usize = 64;

fn needs_content(item: &FetchItem) -> bool {
    !matches!(
        item,
        FetchItem::Flags
            | FetchItem::InternalDate
            | FetchItem::Rfc822Size
            | FetchItem::Uid
            | FetchItem::ModSeq
    )
}

/// Items that set \Seen when fetched (RFC 9051 §6.4.5: not the .PEEK forms).
fn sets_seen(item: &FetchItem) -> bool {
    matches!(
        item,
        FetchItem::Rfc822
            | FetchItem::Rfc822Text
            | FetchItem::BodySection { peek: false, .. }
            | FetchItem::Binary { peek: false, .. }
    )
}

/// Per-UID data some FETCH items need.
#[derive(Default)]
struct Extras {
    threads: HashMap<u32, i64>,
    previews: HashMap<u32, String>,
}

impl ImapSession {
    /// (sequence number, UID) of the messages a set names. By sequence number, a
    /// number past the end is an error; by UID, missing UIDs are skipped.
    pub(super) fn resolve_set(
        &self,
        uid_mode: bool,
        set: &SequenceSet,
    ) -> Result<Vec<(u32, u32)>, ImapError> {
        let sel = self.selected()?;
        // RFC 5182 §2.1: `$` names the messages the last SEARCH saved, in
        // UID and sequence-number commands alike; expunged ones are gone.
        let saved;
        let (uid_mode, set) = if set.is_saved() {
            saved = SequenceSet::of(&sel.saved);
            (true, &saved)
        } else {
            (uid_mode, set)
        };
        if uid_mode {
            let ranges = set.resolve(sel.messages.last().map(|k| k.uid).unwrap_or(0));
            return Ok(sel
                .messages
                .iter()
                .enumerate()
                .filter(|(_, k)| SequenceSet::contains(&ranges, k.uid))
                .map(|(i, k)| (i as u32 + 1, k.uid))
                .collect());
        }
        let total = sel.messages.len() as u32;
        let ranges = set.resolve(total);
        if ranges.iter().any(|&(lo, hi)| hi > total || lo == 0) {
            return Err(ImapError::BadSequence);
        }
        let mut out = Vec::new();
        for (lo, hi) in ranges {
            for seq in lo..=hi {
                out.push((seq, sel.messages[(seq - 1) as usize].uid));
            }
        }
        Ok(out)
    }

    pub(super) async fn fetch(
        &mut self,
        uid_mode: bool,
        set: &SequenceSet,
        items: &[FetchItem],
        changed_since: Option<u64>,
        vanished: bool,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if changed_since.is_some() {
            self.condstore = true;
        }
        let targets = self.resolve_set(uid_mode, set)?;
        let (mailbox, read_only) = {
            let sel = self.selected()?;
            // Without s, reading does not mark as read (RFC 4314 §4).
            (sel.mailbox.id, sel.read_only || !sel.rights.has('s'))
        };
        if vanished && let Some(since) = changed_since {
            // RFC 7162 §3.2.6: the expunged UIDs in the set, since the MODSEQ.
            let ranges = set.resolve(u32::MAX);
            let gone: Vec<u32> = self
                .store()
                .changes_since(mailbox, since)
                .await?
                .expunged
                .into_iter()
                .filter(|u| SequenceSet::contains(&ranges, *u))
                .collect();
            if !gone.is_empty() {
                response::untagged(out, &format!("VANISHED (EARLIER) {}", format_set(&gone)));
            }
        }
        let uids: Vec<u32> = targets.iter().map(|t| t.1).collect();
        let mut entries: HashMap<u32, MessageEntry> = self
            .store()
            .entries(mailbox, uids)
            .await?
            .into_iter()
            .map(|e| (e.uid, e))
            .collect();
        if let Some(since) = changed_since {
            entries.retain(|_, e| e.modseq > since);
        }
        let mut show_flags = items.contains(&FetchItem::Flags);
        if !read_only && items.iter().any(sets_seen) {
            let unseen: Vec<u32> = entries
                .values()
                .filter(|e| !flags::contains(&e.flags, "\\Seen"))
                .map(|e| e.uid)
                .collect();
            if !unseen.is_empty() {
                let update = self
                    .store()
                    .set_flags(mailbox, unseen, FlagOp::Add, vec!["\\Seen".into()], None)
                    .await?;
                self.note_updates(&update.updated)?;
                for e in update.updated {
                    entries.insert(e.uid, e);
                }
                // RFC 9051 §6.4.5: a changed \Seen flag is reported with the data.
                show_flags = true;
            }
        }
        let extras = self.extras(mailbox, items, &targets).await?;
        let want_content = items.iter().any(needs_content);
        let want_modseq = self.condstore
            && (changed_since.is_some() || items.contains(&FetchItem::ModSeq) || show_flags);
        for chunk in targets.chunks(CONTENT_BATCH) {
            let contents: HashMap<u32, Vec<u8>> = if want_content {
                let wanted: Vec<u32> = chunk
                    .iter()
                    .map(|t| t.1)
                    .filter(|u| entries.contains_key(u))
                    .collect();
                self.store()
                    .contents(mailbox, wanted)
                    .await?
                    .into_iter()
                    .collect()
            } else {
                HashMap::new()
            };
            for &(seq, uid) in chunk {
                let Some(entry) = entries.get(&uid) else {
                    continue;
                };
                let raw = contents.get(&uid).map(Vec::as_slice);
                if want_content && raw.is_none() {
                    continue;
                }
                self.fetch_response(
                    out,
                    seq,
                    entry,
                    raw,
                    items,
                    uid_mode,
                    show_flags,
                    want_modseq,
                    &extras,
                )?;
            }
        }
        self.sync(out, uid_mode).await?;
        Ok("FETCH completed".into())
    }

    /// Remember the MODSEQs of flag changes this session made itself, so that the
    /// next sync does not report them again.
    pub(super) fn note_updates(&mut self, updated: &[MessageEntry]) -> Result<(), ImapError> {
        let sel = self.selected_mut()?;
        for e in updated {
            if let Ok(i) = sel.messages.binary_search_by_key(&e.uid, |k| k.uid) {
                sel.messages[i].modseq = e.modseq;
            }
        }
        Ok(())
    }

    /// What THREADID and PREVIEW need beyond the entries: index rows (from
    /// the shared cache) and previews, read once for the whole FETCH.
    async fn extras(
        &self,
        mailbox: store::MailboxId,
        items: &[FetchItem],
        targets: &[(u32, u32)],
    ) -> Result<Extras, ImapError> {
        let mut extras = Extras::default();
        let uids: Vec<u32> = targets.iter().map(|t| t.1).collect();
        if items.contains(&FetchItem::ThreadId) {
            for row in self.index_rows_of(&uids).await? {
                extras.threads.insert(row.uid, row.thread_id);
            }
        }
        if items.contains(&FetchItem::Preview) {
            extras.previews = self
                .store()
                .previews(mailbox, uids)
                .await?
                .into_iter()
                .collect();
        }
        Ok(extras)
    }

    #[allow(clippy::too_many_arguments)]
    fn fetch_response(
        &self,
        out: &mut Vec<u8>,
        seq: u32,
        e: &MessageEntry,
        raw: Option<&[u8]>,
        items: &[FetchItem],
        uid_mode: bool,
        show_flags: bool,
        modseq: bool,
        extras: &Extras,
    ) -> Result<(), ImapError> {
        let utf8 = self.utf8_names();
        let sel = self.selected()?;
        let mut parts: Vec<Vec<u8>> = Vec::new();
        if uid_mode && !items.contains(&FetchItem::Uid) {
            parts.push(format!("UID {}", e.uid).into_bytes());
        }
        if show_flags && !items.contains(&FetchItem::Flags) {
            let mut p = b"FLAGS ".to_vec();
            response::flags(&mut p, &self.flags_for(sel, e.uid, &e.flags));
            parts.push(p);
        }
        let structure = raw
            .filter(|_| {
                items.iter().any(|i| {
                    !matches!(
                        i,
                        FetchItem::Rfc822
                            | FetchItem::Flags
                            | FetchItem::Uid
                            | FetchItem::ModSeq
                            | FetchItem::InternalDate
                            | FetchItem::Rfc822Size
                    )
                })
            })
            .map(message::mime::parse);
        for item in items {
            let mut p = Vec::new();
            match item {
                FetchItem::Flags => {
                    p.extend_from_slice(b"FLAGS ");
                    response::flags(&mut p, &self.flags_for(sel, e.uid, &e.flags));
                }
                FetchItem::Uid => p.extend_from_slice(format!("UID {}", e.uid).as_bytes()),
                FetchItem::InternalDate => p.extend_from_slice(
                    format!("INTERNALDATE {}", response::date_time(e.internal_date)).as_bytes(),
                ),
                FetchItem::Rfc822Size => {
                    p.extend_from_slice(format!("RFC822.SIZE {}", e.size).as_bytes())
                }
                FetchItem::ModSeq => continue,
                FetchItem::SaveDate => p.extend_from_slice(
                    format!("SAVEDATE {}", response::date_time(e.saved_at)).as_bytes(),
                ),
                FetchItem::EmailId => p.extend_from_slice(
                    format!("EMAILID ({})", store::object_id::email(e.email_id)).as_bytes(),
                ),
                FetchItem::ThreadId => match extras.threads.get(&e.uid) {
                    // RFC 8474 §5.2: a message the index does not know is in no thread.
                    Some(&t) if t != 0 => p.extend_from_slice(
                        format!("THREADID ({})", store::object_id::thread(t)).as_bytes(),
                    ),
                    _ => p.extend_from_slice(b"THREADID NIL"),
                },
                FetchItem::Preview => {
                    p.extend_from_slice(b"PREVIEW ");
                    match extras.previews.get(&e.uid) {
                        Some(text) => response::string(&mut p, text.as_bytes(), utf8),
                        None => p.extend_from_slice(b"NIL"),
                    }
                }
                FetchItem::Envelope => {
                    let (Some(raw), Some(s)) = (raw, &structure) else {
                        continue;
                    };
                    p.extend_from_slice(b"ENVELOPE ");
                    render::write_envelope(&mut p, &raw[s.header.clone()], utf8);
                }
                FetchItem::BodyStructure | FetchItem::Body => {
                    let (Some(raw), Some(s)) = (raw, &structure) else {
                        continue;
                    };
                    let extended = *item == FetchItem::BodyStructure;
                    p.extend_from_slice(if extended {
                        b"BODYSTRUCTURE "
                    } else {
                        b"BODY "
                    });
                    render::write_structure(&mut p, raw, s, extended, utf8);
                }
                FetchItem::Rfc822 => {
                    let Some(raw) = raw else { continue };
                    p.extend_from_slice(b"RFC822 ");
                    response::literal(&mut p, raw);
                }
                FetchItem::Rfc822Header | FetchItem::Rfc822Text => {
                    let (Some(raw), Some(s)) = (raw, &structure) else {
                        continue;
                    };
                    let (name, range) = if *item == FetchItem::Rfc822Header {
                        ("RFC822.HEADER ", s.header.clone())
                    } else {
                        ("RFC822.TEXT ", s.body.clone())
                    };
                    p.extend_from_slice(name.as_bytes());
                    response::literal(&mut p, &raw[range]);
                }
                FetchItem::BodySection {
                    section, partial, ..
                } => {
                    let (Some(raw), Some(s)) = (raw, &structure) else {
                        continue;
                    };
                    let data = render::section(raw, s, section).unwrap_or_default();
                    let _ = std::fmt::Write::write_fmt(
                        &mut Cursor(&mut p),
                        format_args!("BODY[{}]", render::section_label(section)),
                    );
                    if let Some((start, _)) = partial {
                        p.extend_from_slice(format!("<{start}>").as_bytes());
                    }
                    p.push(b' ');
                    response::literal(&mut p, render::partial(&data, *partial));
                }
                FetchItem::Binary { part, partial, .. } => {
                    let (Some(raw), Some(s)) = (raw, &structure) else {
                        continue;
                    };
                    let data = match render::binary(raw, s, part) {
                        Some(Ok(d)) => d,
                        Some(Err(())) => {
                            return Err(ImapError::Cannot(
                                "[UNKNOWN-CTE] unknown Content-Transfer-Encoding",
                            ));
                        }
                        None => Vec::new(),
                    };
                    let label: Vec<String> = part.iter().map(u32::to_string).collect();
                    p.extend_from_slice(format!("BINARY[{}]", label.join(".")).as_bytes());
                    if let Some((start, _)) = partial {
                        p.extend_from_slice(format!("<{start}>").as_bytes());
                    }
                    p.push(b' ');
                    let slice = render::partial(&data, *partial);
                    // RFC 3516 §4.3: literal8 when the data holds NUL.
                    if slice.contains(&0) {
                        p.push(b'~');
                    }
                    response::literal(&mut p, slice);
                }
                FetchItem::BinarySize(part) => {
                    let (Some(raw), Some(s)) = (raw, &structure) else {
                        continue;
                    };
                    let size = match render::binary(raw, s, part) {
                        Some(Ok(d)) => d.len(),
                        Some(Err(())) => {
                            return Err(ImapError::Cannot(
                                "[UNKNOWN-CTE] unknown Content-Transfer-Encoding",
                            ));
                        }
                        None => 0,
                    };
                    let label: Vec<String> = part.iter().map(u32::to_string).collect();
                    p.extend_from_slice(
                        format!("BINARY.SIZE[{}] {size}", label.join(".")).as_bytes(),
                    );
                }
            }
            parts.push(p);
        }
        if modseq {
            parts.push(format!("MODSEQ ({})", e.modseq).into_bytes());
        }
        out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(p);
        }
        out.extend_from_slice(b")\r\n");
        Ok(())
    }
}
