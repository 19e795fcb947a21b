//! FETCH and UID FETCH (RFC 9051 §6.4.5), with CHANGEDSINCE and VANISHED
//! (RFC 7162 §3.1.4, §3.2.6) and BINARY (RFC 3516).
//!
//! Flags and sizes come from the store's entries; message bytes are read only
//! when an item needs them, a batch of messages at a time.
//!
//! Backpressure (hardening.md C-SL2): the answer is made a piece at a time
//! ([`Fetching`]); the driver writes each piece before asking for the next,
//! so a client that does not read holds about one batch of memory, however
//! many messages it asked for. A large message asked for whole (`BODY[]`,
//! `RFC822`, with or without a partial range) is not read whole either: its
//! literal is copied from the store [`STREAM_PIECE`] octets at a time.

use std::collections::{HashMap, VecDeque};

use net::Flow;
use store::{FlagOp, MailboxId, MessageEntry, flags};

use super::{ImapSession, OUT_PIECE};
use crate::error::ImapError;
use crate::parse::{FetchItem, Section, SequenceSet, format_set};
use crate::render;
use crate::response::{self, Cursor};

/// Message contents read from the store at once, at most (one message
/// larger than this is read alone).
const CONTENT_BUDGET: u64 = 1 << 20;
/// A message larger than this, asked for whole, is streamed from the store.
const STREAM_OVER: u64 = 256 * 1024;
/// What one read of a streamed message takes from the store.
const STREAM_PIECE: usize = 64 * 1024;

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

/// An item that a streamed message can answer without being read whole:
/// the whole message, or a range of it.
fn streamable(item: &FetchItem) -> bool {
    match item {
        FetchItem::Rfc822 => true,
        FetchItem::BodySection { section, .. } => *section == Section::default(),
        other => !needs_content(other),
    }
}

/// Per-UID data some FETCH items need.
#[derive(Default)]
struct Extras {
    threads: HashMap<u32, i64>,
    previews: HashMap<u32, String>,
}

/// A FETCH being answered, a piece at a time.
pub(super) struct Fetching {
    tag: String,
    mailbox: MailboxId,
    uid_mode: bool,
    items: Vec<FetchItem>,
    /// (sequence number, UID) not answered yet.
    targets: VecDeque<(u32, u32)>,
    entries: HashMap<u32, MessageEntry>,
    extras: Extras,
    show_flags: bool,
    want_modseq: bool,
    want_content: bool,
    /// Large messages may be streamed (not for NOTIFY's responses, which
    /// are written whole).
    stream: bool,
    /// What is made and not handed over yet.
    pending: VecDeque<Piece>,
}

enum Piece {
    Bytes(Vec<u8>),
    /// Octets `next..end` of a message's content, still in the store.
    Content {
        uid: u32,
        next: u64,
        end: u64,
    },
}

/// The FETCH responses being made: bytes, and holes where a large
/// message's content will be copied from the store.
struct Responses<'a>(&'a mut VecDeque<Piece>);

impl Responses<'_> {
    fn bytes(&mut self) -> &mut Vec<u8> {
        if !matches!(self.0.back(), Some(Piece::Bytes(_))) {
            self.0.push_back(Piece::Bytes(Vec::new()));
        }
        match self.0.back_mut() {
            Some(Piece::Bytes(b)) => b,
            _ => unreachable!("a bytes piece was just pushed"),
        }
    }

    /// A literal of octets `start..end` of the message, read later.
    fn content(&mut self, uid: u32, start: u64, end: u64) {
        let _ = std::fmt::Write::write_fmt(
            &mut Cursor(self.bytes()),
            format_args!("{{{}}}\r\n", end - start),
        );
        if end > start {
            self.0.push_back(Piece::Content {
                uid,
                next: start,
                end,
            });
        }
    }
}

/// The octets of a streamed message that follow an item's bytes as its
/// literal, if any.
type Streamed = Option<(u64, u64)>;

/// A message's content for its response.
enum Content {
    /// No item needs it.
    Unneeded,
    /// Read whole (small, or an item needs its structure).
    Read(Vec<u8>),
    /// Large and asked for whole: copied from the store as it is written.
    Streamed,
}

/// What a step of a FETCH ended with.
enum Step {
    /// A piece is ready; more to come.
    More,
    Done,
    /// A streamed message vanished in the middle of its literal: the
    /// promised octets cannot be sent, so the connection is closed.
    Cut,
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

    /// Start answering a FETCH: what is checked and changed up front
    /// (the set, \Seen, VANISHED), then the responses by [`Self::fetch_more`].
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fetch_start(
        &mut self,
        tag: &str,
        uid_mode: bool,
        set: &SequenceSet,
        items: Vec<FetchItem>,
        changed_since: Option<u64>,
        vanished: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
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
        let extras = self.extras(mailbox, &items, &targets).await?;
        let want_content = items.iter().any(needs_content);
        let want_modseq = self.condstore
            && (changed_since.is_some() || items.contains(&FetchItem::ModSeq) || show_flags);
        self.fetching = Some(Box::new(Fetching {
            tag: tag.to_string(),
            mailbox,
            uid_mode,
            items,
            targets: targets.into(),
            entries,
            extras,
            show_flags,
            want_modseq,
            want_content,
            stream: true,
            pending: VecDeque::new(),
        }));
        Ok(())
    }

    /// FETCH responses for NOTIFY (RFC 5465 §5.2): untagged, made at once.
    pub(super) async fn fetch_now(
        &mut self,
        set: &SequenceSet,
        items: Vec<FetchItem>,
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        self.fetch_start("*", true, set, items, None, false, out)
            .await?;
        let Some(mut f) = self.fetching.take() else {
            return Ok(());
        };
        f.stream = false;
        while let Step::More = self.fetch_step(&mut f, out).await? {}
        Ok(())
    }

    /// Append the next piece of the FETCH answer to `out`; after the last
    /// one, the tagged response.
    pub(super) async fn fetch_more(&mut self, out: &mut Vec<u8>) -> Flow {
        let Some(mut f) = self.fetching.take() else {
            return Flow::Continue;
        };
        match self.fetch_step(&mut f, out).await {
            Ok(Step::More) => {
                self.fetching = Some(f);
                Flow::Continue
            }
            Ok(Step::Done) => match self.sync(out, f.uid_mode).await {
                Ok(()) => {
                    response::tagged(out, &f.tag, "OK", "FETCH completed");
                    Flow::Continue
                }
                Err(e) => self.fail(&f.tag, e, out),
            },
            Ok(Step::Cut) => {
                tracing::info!("a message vanished while its literal was being sent; closing");
                Flow::Close
            }
            Err(e) if f.pending.is_empty() => self.fail(&f.tag, e, out),
            Err(e) => {
                // Between the octets of a literal nothing else can be said.
                tracing::warn!(error = %e, "reading a message for FETCH failed; closing");
                Flow::Close
            }
        }
    }

    /// Make responses until a piece is ready or the answer is complete.
    async fn fetch_step(&self, f: &mut Fetching, out: &mut Vec<u8>) -> Result<Step, ImapError> {
        loop {
            while let Some(piece) = f.pending.pop_front() {
                match piece {
                    Piece::Bytes(b) => out.extend_from_slice(&b),
                    Piece::Content { uid, next, end } => {
                        let want = (end - next).min(STREAM_PIECE as u64) as usize;
                        let read = self.store().content_range(f.mailbox, uid, next, want).await;
                        let got = match read {
                            Ok(Some(got)) if got.len() == want => got,
                            Ok(_) => return Ok(Step::Cut),
                            Err(e) => {
                                f.pending.push_front(Piece::Content { uid, next, end });
                                return Err(e.into());
                            }
                        };
                        out.extend_from_slice(&got);
                        let next = next + want as u64;
                        if next < end {
                            f.pending.push_front(Piece::Content { uid, next, end });
                        }
                    }
                }
                if out.len() >= OUT_PIECE {
                    return Ok(Step::More);
                }
            }
            if f.targets.is_empty() {
                return Ok(Step::Done);
            }
            self.fetch_batch(f).await?;
        }
    }

    /// The responses of the next messages, as many as [`CONTENT_BUDGET`]
    /// of contents allows (at least one), onto `f.pending`.
    async fn fetch_batch(&self, f: &mut Fetching) -> Result<(), ImapError> {
        let streams_whole = f.items.iter().all(streamable);
        let mut batch = Vec::new();
        let mut budget = 0;
        while let Some(&(seq, uid)) = f.targets.front() {
            let Some(entry) = f.entries.get(&uid) else {
                f.targets.pop_front();
                continue;
            };
            let streamed = f.stream && f.want_content && streams_whole && entry.size > STREAM_OVER;
            let cost = if f.want_content && !streamed {
                entry.size
            } else {
                0
            };
            if !batch.is_empty() && budget + cost > CONTENT_BUDGET {
                break;
            }
            budget += cost;
            batch.push((seq, uid, streamed));
            f.targets.pop_front();
        }
        let wanted: Vec<u32> = batch
            .iter()
            .filter(|(_, _, streamed)| f.want_content && !streamed)
            .map(|&(_, uid, _)| uid)
            .collect();
        let mut contents: HashMap<u32, Vec<u8>> = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.store()
                .contents(f.mailbox, wanted)
                .await?
                .into_iter()
                .collect()
        };
        for (seq, uid, streamed) in batch {
            let content = match (f.want_content, streamed) {
                (false, _) => Content::Unneeded,
                (true, true) => Content::Streamed,
                (true, false) => match contents.remove(&uid) {
                    Some(raw) => Content::Read(raw),
                    // Expunged by another session since: nothing to say.
                    None => continue,
                },
            };
            let Some(entry) = f.entries.get(&uid) else {
                continue;
            };
            let mut pending = std::mem::take(&mut f.pending);
            let made = self.fetch_response(&mut Responses(&mut pending), seq, entry, &content, f);
            f.pending = pending;
            made?;
        }
        Ok(())
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

    fn fetch_response(
        &self,
        r: &mut Responses<'_>,
        seq: u32,
        e: &MessageEntry,
        content: &Content,
        f: &Fetching,
    ) -> Result<(), ImapError> {
        let (items, extras) = (&f.items, &f.extras);
        let raw = match content {
            Content::Read(raw) => Some(raw.as_slice()),
            Content::Unneeded | Content::Streamed => None,
        };
        let utf8 = self.utf8_names();
        let sel = self.selected()?;
        let mut parts: Vec<(Vec<u8>, Streamed)> = Vec::new();
        if f.uid_mode && !items.contains(&FetchItem::Uid) {
            parts.push((format!("UID {}", e.uid).into_bytes(), None));
        }
        if f.show_flags && !items.contains(&FetchItem::Flags) {
            let mut p = b"FLAGS ".to_vec();
            response::flags(&mut p, &self.flags_for(sel, e.uid, &e.flags));
            parts.push((p, None));
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
                    p.extend_from_slice(b"RFC822 ");
                    match (raw, content) {
                        (Some(raw), _) => response::literal(&mut p, raw),
                        (None, Content::Streamed) => {
                            parts.push((p, Some((0, e.size))));
                            continue;
                        }
                        (None, _) => continue,
                    }
                }
                FetchItem::BodySection {
                    section, partial, ..
                } if matches!(content, Content::Streamed) => {
                    // Only the whole message is streamed (`streamable`).
                    let _ = std::fmt::Write::write_fmt(
                        &mut Cursor(&mut p),
                        format_args!("BODY[{}]", render::section_label(section)),
                    );
                    let range = match partial {
                        None => (0, e.size),
                        Some((start, count)) => {
                            p.extend_from_slice(format!("<{start}>").as_bytes());
                            let start = u64::from(*start).min(e.size);
                            (start, (start + u64::from(*count)).min(e.size))
                        }
                    };
                    p.push(b' ');
                    parts.push((p, Some(range)));
                    continue;
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
            parts.push((p, None));
        }
        if f.want_modseq {
            parts.push((format!("MODSEQ ({})", e.modseq).into_bytes(), None));
        }
        r.bytes()
            .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        for (i, (p, streamed)) in parts.iter().enumerate() {
            if i > 0 {
                r.bytes().push(b' ');
            }
            r.bytes().extend_from_slice(p);
            if let Some((start, end)) = *streamed {
                r.content(e.uid, start, end);
            }
        }
        r.bytes().extend_from_slice(b")\r\n");
        Ok(())
    }
}
