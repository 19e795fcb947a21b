//! FETCH and UID FETCH (RFC 9051 §6.4.5), with CHANGEDSINCE and VANISHED
//! (RFC 7162 §3.1.4, §3.2.6) and BINARY (RFC 3516).
//!
//! Flags and sizes come from the store's entries; message bytes are read only
//! when an item needs them, a batch of messages at a time.
//!
//! Backpressure (hardening.md C-SL2): the answer is made a piece at a time
//! ([`Fetching`]); the driver writes each piece before asking for the next,
//! so a client that does not read holds about one batch of memory, however
//! many messages it asked for. A large message is not read whole either
//! (hardening.md C-FT9): what it is asked for whole (`BODY[]`, `RFC822`) is
//! copied from the store [`store::stream::PIECE`] octets at a time; what needs its
//! structure (BODYSTRUCTURE, ENVELOPE, `BODY[2.1]`, `BINARY[2]`) is answered
//! from its [`Outline`], made by reading it once as a stream, and the parts
//! are then copied (or decoded, for BINARY) from the store the same way.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use message::mime::{Decoder, Entity, Source};
use message::outline::{HEAD_KEEP, Outline};
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

/// An item answered without the message's structure: the whole message,
/// a range of it, or no content at all.
fn without_structure(item: &FetchItem) -> bool {
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
    /// Octets `next..end` of a message's content, still in the store;
    /// decoded and cut on the way for BINARY.
    Content {
        uid: u32,
        next: u64,
        end: u64,
        decoding: Option<Box<Decoding>>,
    },
}

/// A BINARY literal being decoded from the store: the decoded octets
/// `skip..skip + left` are sent (its partial range).
struct Decoding {
    decoder: Decoder,
    skip: u64,
    left: u64,
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

    /// A literal filled from the store later.
    fn hole(&mut self, uid: u32, hole: Hole) {
        let (range, decoding) = match hole {
            Hole::Octets(range) => (range, None),
            Hole::Decoded {
                range,
                decoder,
                send,
            } => {
                let decoding = Decoding {
                    decoder,
                    skip: send.start,
                    left: send.end - send.start,
                };
                (range, Some(Box::new(decoding)))
            }
        };
        let size = match &decoding {
            Some(d) => d.left,
            None => range.end - range.start,
        };
        let _ =
            std::fmt::Write::write_fmt(&mut Cursor(self.bytes()), format_args!("{{{size}}}\r\n"));
        if size > 0 {
            self.0.push_back(Piece::Content {
                uid,
                next: range.start,
                end: range.end,
                decoding,
            });
        }
    }
}

/// What follows an item's bytes as its literal, copied from the store.
enum Hole {
    /// These octets of the message.
    Octets(Range<u64>),
    /// These octets decoded, of which the octets `send`.
    Decoded {
        range: Range<u64>,
        decoder: Decoder,
        send: Range<u64>,
    },
}

/// A message's content for its response.
enum Content {
    /// No item needs it.
    Unneeded,
    /// Read whole (small).
    Read(Vec<u8>),
    /// Large: its parts are copied from the store as they are written.
    Streamed(Box<Streamed>),
}

/// What was learnt of a large message by reading it as a stream.
struct Streamed {
    /// Its structure, when an item needs it ([`Outline::unread`] if not).
    outline: Outline,
    /// For each BINARY item (by its index in the FETCH): the decoded size
    /// and whether the octets it sends hold a NUL (RFC 3516 §4.3).
    decoded: HashMap<usize, (u64, bool)>,
}

/// How the items see a message: held whole, or as its outline.
enum View<'a> {
    Whole(&'a [u8], Entity),
    Outline(&'a Outline),
}

impl View<'_> {
    fn root(&self) -> &Entity {
        match self {
            View::Whole(_, root) => root,
            View::Outline(o) => &o.root,
        }
    }

    fn len(&self) -> usize {
        match self {
            View::Whole(raw, _) => raw.len(),
            View::Outline(o) => o.len,
        }
    }

    /// Octets of the message as a literal: at once, or a hole.
    fn literal(&self, p: &mut Vec<u8>, range: Range<usize>) -> Option<Hole> {
        match self {
            View::Whole(raw, _) => {
                response::literal(p, &raw[range]);
                None
            }
            View::Outline(..) => Some(Hole::Octets(range.start as u64..range.end as u64)),
        }
    }
}

impl Source for View<'_> {
    fn head(&self, e: &Entity) -> &[u8] {
        match self {
            View::Whole(raw, _) => raw.head(e),
            View::Outline(o) => o.head(e),
        }
    }

    fn lines(&self, e: &Entity) -> usize {
        match self {
            View::Whole(raw, _) => raw.lines(e),
            View::Outline(o) => o.lines(e),
        }
    }
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
                    Piece::Content {
                        uid,
                        next,
                        end,
                        mut decoding,
                    } => {
                        let got = match store::stream::piece(
                            self.store().as_ref(),
                            f.mailbox,
                            uid,
                            next,
                            end,
                        )
                        .await
                        {
                            Ok(Some(got)) => got,
                            Ok(None) => return Ok(Step::Cut),
                            Err(e) => {
                                f.pending.push_front(Piece::Content {
                                    uid,
                                    next,
                                    end,
                                    decoding,
                                });
                                return Err(e.into());
                            }
                        };
                        let next = next + got.len() as u64;
                        let more = match &mut decoding {
                            None => {
                                out.extend_from_slice(&got);
                                next < end
                            }
                            Some(d) => {
                                let plain =
                                    store::stream::decode_piece(&mut d.decoder, &got, next == end);
                                let skip = d.skip.min(plain.len() as u64);
                                let take = (plain.len() as u64 - skip).min(d.left);
                                out.extend_from_slice(
                                    &plain[skip as usize..(skip + take) as usize],
                                );
                                d.skip -= skip;
                                d.left -= take;
                                if d.left > 0 && next == end {
                                    // Decoding gave less than it did before.
                                    return Ok(Step::Cut);
                                }
                                d.left > 0
                            }
                        };
                        if more {
                            f.pending.push_front(Piece::Content {
                                uid,
                                next,
                                end,
                                decoding,
                            });
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
        let structure = !f.items.iter().all(without_structure);
        let mut batch = Vec::new();
        let mut budget = 0;
        while let Some(&(seq, uid)) = f.targets.front() {
            let Some(entry) = f.entries.get(&uid) else {
                f.targets.pop_front();
                continue;
            };
            let streamed = f.stream && f.want_content && entry.size > self.cfg.stream_over;
            let cost = match (f.want_content, streamed) {
                (false, _) => 0,
                (true, false) => entry.size,
                // What an outline keeps, at most, for one header section.
                (true, true) if structure => HEAD_KEEP as u64,
                (true, true) => 0,
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
            let Some(size) = f.entries.get(&uid).map(|e| e.size) else {
                continue;
            };
            let content = match (f.want_content, streamed) {
                (false, _) => Content::Unneeded,
                (true, true) => match self.read_streamed(f, uid, size, structure).await? {
                    Some(learnt) => Content::Streamed(Box::new(learnt)),
                    None => continue,
                },
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

    /// Read a large message as a stream for what its items need: its
    /// outline, and the decoded sizes of its BINARY parts. None if it is
    /// gone.
    async fn read_streamed(
        &self,
        f: &Fetching,
        uid: u32,
        size: u64,
        structure: bool,
    ) -> Result<Option<Streamed>, ImapError> {
        if !structure {
            return Ok(Some(Streamed {
                outline: Outline::unread(size as usize),
                decoded: HashMap::new(),
            }));
        }
        let Some(outline) =
            store::stream::outline(self.store().as_ref(), f.mailbox, uid, size).await?
        else {
            return Ok(None);
        };
        let mut decoded_sizes = HashMap::new();
        for (index, item) in f.items.iter().enumerate() {
            let (part, window) = match item {
                FetchItem::Binary { part, partial, .. } => (part, *partial),
                FetchItem::BinarySize(part) => (part, None),
                _ => continue,
            };
            let Some(Ok((range, mut decoder))) =
                render::binary(&outline, &outline.root, outline.len, part)
            else {
                continue;
            };
            // Decoded once for the size the literal announces; again as it is sent.
            let (mut decoded, mut nul) = (0u64, false);
            let mut next = range.start as u64;
            let end = range.end as u64;
            while next < end {
                let store = self.store().as_ref();
                let Some(got) = store::stream::scan_piece(store, f.mailbox, uid, next, end).await?
                else {
                    return Ok(None);
                };
                next += got.len() as u64;
                let plain = store::stream::decode_piece(&mut decoder, &got, next == end);
                let sent = render::partial_range(u64::MAX, window);
                let here = decoded..decoded + plain.len() as u64;
                let (from, to) = (sent.start.max(here.start), sent.end.min(here.end));
                if from < to {
                    let slice = &plain[(from - here.start) as usize..(to - here.start) as usize];
                    nul |= slice.contains(&0);
                }
                decoded = here.end;
            }
            decoded_sizes.insert(index, (decoded, nul));
        }
        Ok(Some(Streamed {
            outline,
            decoded: decoded_sizes,
        }))
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
        let structure = !items.iter().all(without_structure);
        let no_decoded = HashMap::new();
        let (view, decoded) = match content {
            Content::Read(raw) => {
                let root = if structure {
                    message::mime::parse(raw)
                } else {
                    message::mime::parse(b"")
                };
                (Some(View::Whole(raw, root)), &no_decoded)
            }
            Content::Streamed(learnt) => (Some(View::Outline(&learnt.outline)), &learnt.decoded),
            Content::Unneeded => (None, &no_decoded),
        };
        let utf8 = self.utf8_names();
        let sel = self.selected()?;
        let mut parts: Vec<(Vec<u8>, Option<Hole>)> = Vec::new();
        if f.uid_mode && !items.contains(&FetchItem::Uid) {
            parts.push((format!("UID {}", e.uid).into_bytes(), None));
        }
        if f.show_flags && !items.contains(&FetchItem::Flags) {
            let mut p = b"FLAGS ".to_vec();
            response::flags(&mut p, &self.flags_for(sel, e.uid, &e.flags));
            parts.push((p, None));
        }
        for (index, item) in items.iter().enumerate() {
            let mut p = Vec::new();
            let hole = match item {
                FetchItem::Flags => {
                    p.extend_from_slice(b"FLAGS ");
                    response::flags(&mut p, &self.flags_for(sel, e.uid, &e.flags));
                    None
                }
                FetchItem::Uid => {
                    p.extend_from_slice(format!("UID {}", e.uid).as_bytes());
                    None
                }
                FetchItem::InternalDate => {
                    p.extend_from_slice(
                        format!("INTERNALDATE {}", response::date_time(e.internal_date)).as_bytes(),
                    );
                    None
                }
                FetchItem::Rfc822Size => {
                    p.extend_from_slice(format!("RFC822.SIZE {}", e.size).as_bytes());
                    None
                }
                FetchItem::ModSeq => continue,
                FetchItem::SaveDate => {
                    p.extend_from_slice(
                        format!("SAVEDATE {}", response::date_time(e.saved_at)).as_bytes(),
                    );
                    None
                }
                FetchItem::EmailId => {
                    p.extend_from_slice(
                        format!("EMAILID ({})", store::object_id::email(e.email_id)).as_bytes(),
                    );
                    None
                }
                FetchItem::ThreadId => {
                    match extras.threads.get(&e.uid) {
                        // RFC 8474 §5.2: a message the index does not know is in no thread.
                        Some(&t) if t != 0 => p.extend_from_slice(
                            format!("THREADID ({})", store::object_id::thread(t)).as_bytes(),
                        ),
                        _ => p.extend_from_slice(b"THREADID NIL"),
                    }
                    None
                }
                FetchItem::Preview => {
                    p.extend_from_slice(b"PREVIEW ");
                    match extras.previews.get(&e.uid) {
                        Some(text) => response::string(&mut p, text.as_bytes(), utf8),
                        None => p.extend_from_slice(b"NIL"),
                    }
                    None
                }
                _ => {
                    let Some(view) = &view else { continue };
                    self.content_item(&mut p, view, item, decoded.get(&index), utf8)?
                }
            };
            parts.push((p, hole));
        }
        if f.want_modseq {
            parts.push((format!("MODSEQ ({})", e.modseq).into_bytes(), None));
        }
        r.bytes()
            .extend_from_slice(format!("* {seq} FETCH (").as_bytes());
        for (i, (p, hole)) in parts.into_iter().enumerate() {
            if i > 0 {
                r.bytes().push(b' ');
            }
            r.bytes().extend_from_slice(&p);
            if let Some(hole) = hole {
                r.hole(e.uid, hole);
            }
        }
        r.bytes().extend_from_slice(b")\r\n");
        Ok(())
    }

    /// An item that reads the message, onto `p`; its literal's octets when
    /// the store is to fill them.
    fn content_item(
        &self,
        p: &mut Vec<u8>,
        view: &View<'_>,
        item: &FetchItem,
        decoded: Option<&(u64, bool)>,
        utf8: bool,
    ) -> Result<Option<Hole>, ImapError> {
        let (root, len) = (view.root(), view.len());
        Ok(match item {
            FetchItem::Envelope => {
                p.extend_from_slice(b"ENVELOPE ");
                render::write_envelope(p, view.head(root), utf8);
                None
            }
            FetchItem::BodyStructure | FetchItem::Body => {
                let extended = *item == FetchItem::BodyStructure;
                p.extend_from_slice(if extended {
                    b"BODYSTRUCTURE "
                } else {
                    b"BODY "
                });
                render::write_structure(p, view, root, extended, utf8);
                None
            }
            FetchItem::Rfc822 => {
                p.extend_from_slice(b"RFC822 ");
                view.literal(p, 0..len)
            }
            FetchItem::Rfc822Header => {
                p.extend_from_slice(b"RFC822.HEADER ");
                view.literal(p, root.header.clone())
            }
            FetchItem::Rfc822Text => {
                p.extend_from_slice(b"RFC822.TEXT ");
                view.literal(p, root.body.clone())
            }
            FetchItem::BodySection {
                section, partial, ..
            } => {
                let data = render::section(view, root, len, section)
                    .unwrap_or(render::SectionData::Made(Vec::new()));
                let _ = std::fmt::Write::write_fmt(
                    &mut Cursor(p),
                    format_args!("BODY[{}]", render::section_label(section)),
                );
                if let Some((start, _)) = partial {
                    p.extend_from_slice(format!("<{start}>").as_bytes());
                }
                p.push(b' ');
                match data {
                    render::SectionData::Range(r) => {
                        let sent = render::partial_range(r.len() as u64, *partial);
                        let at = r.start + sent.start as usize;
                        view.literal(p, at..r.start + sent.end as usize)
                    }
                    render::SectionData::Made(b) => {
                        response::literal(p, render::partial(&b, *partial));
                        None
                    }
                }
            }
            FetchItem::Binary { part, partial, .. } => {
                let (range, decoder) = binary_of(view, part)?;
                let label: Vec<String> = part.iter().map(u32::to_string).collect();
                p.extend_from_slice(format!("BINARY[{}]", label.join(".")).as_bytes());
                if let Some((start, _)) = partial {
                    p.extend_from_slice(format!("<{start}>").as_bytes());
                }
                p.push(b' ');
                match view {
                    View::Whole(raw, _) => {
                        let data = decoder.all(&raw[range]);
                        let slice = render::partial(&data, *partial);
                        // RFC 3516 §4.3: literal8 when the data holds NUL.
                        if slice.contains(&0) {
                            p.push(b'~');
                        }
                        response::literal(p, slice);
                        None
                    }
                    View::Outline(..) => {
                        let &(size, nul) = decoded.unwrap_or(&(0, false));
                        if nul {
                            p.push(b'~');
                        }
                        Some(Hole::Decoded {
                            range: range.start as u64..range.end as u64,
                            decoder,
                            send: render::partial_range(size, *partial),
                        })
                    }
                }
            }
            FetchItem::BinarySize(part) => {
                let (range, decoder) = binary_of(view, part)?;
                let size = match view {
                    View::Whole(raw, _) => decoder.all(&raw[range]).len() as u64,
                    View::Outline(..) => decoded.map_or(0, |d| d.0),
                };
                let label: Vec<String> = part.iter().map(u32::to_string).collect();
                p.extend_from_slice(format!("BINARY.SIZE[{}] {size}", label.join(".")).as_bytes());
                None
            }
            _ => None,
        })
    }
}

/// BINARY[part]: the octets and their decoder (RFC 3516 §4.2: an unknown
/// encoding is UNKNOWN-CTE; a missing part is empty).
fn binary_of(view: &View<'_>, part: &[u32]) -> Result<(Range<usize>, Decoder), ImapError> {
    match render::binary(view, view.root(), view.len(), part) {
        Some(Ok(found)) => Ok(found),
        Some(Err(())) => Err(ImapError::UnknownCte),
        None => Ok((0..0, Decoder::Identity)),
    }
}
