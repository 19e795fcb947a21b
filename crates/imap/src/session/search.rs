//! SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH results (RFC 4731, and
//! always for IMAP4rev2), MODSEQ (RFC 7162 §3.1.5).
//!
//! Keys about flags, sizes and dates use the store's entries; SUBJECT,
//! FROM, TO, CC, BCC, BODY and TEXT ask the store's search index (decoded
//! text, compared without case), and SENT* its dates: one query a key,
//! whatever the mailbox's size. Only HEADER on other fields reads the
//! messages' header sections, a batch at a time, and compares their
//! decoded values.

use std::collections::{HashMap, HashSet};

use mail_parser::{HeaderValue, Message, MessageParser};
use message::outline::HEAD_KEEP;
use store::{MessageEntry, TextField, flags};

use super::{ImapSession, Outcome};
use crate::parse::{SearchKey, SequenceSet, format_set};
use crate::response;

const CONTENT_BATCH: usize = 64;

/// What the store's index answered, for the keys it can answer.
#[derive(Default)]
pub(super) struct IndexHits {
    /// By the address of the key in the search program.
    text: HashMap<usize, HashSet<u32>>,
    /// Each message's sent day (its Date: in its own zone).
    sent_days: HashMap<u32, Option<i64>>,
    /// Each message's thread (RFC 8474 THREADID).
    threads: HashMap<u32, i64>,
}

fn key_id(k: &SearchKey) -> usize {
    k as *const SearchKey as usize
}

/// The index field a header or text key searches, if the index has it.
fn indexed_field(key: &SearchKey) -> Option<(TextField, &str)> {
    match key {
        SearchKey::Header(name, text) => {
            let field = match name.to_ascii_uppercase().as_str() {
                "SUBJECT" => TextField::Subject,
                "FROM" => TextField::From,
                "TO" => TextField::To,
                "CC" => TextField::Cc,
                "BCC" => TextField::Bcc,
                _ => return None,
            };
            Some((field, text))
        }
        SearchKey::Body(text) => Some((TextField::Body, text)),
        SearchKey::Text(text) => Some((TextField::Text, text)),
        _ => None,
    }
}

fn walk<'k>(key: &'k SearchKey, visit: &mut impl FnMut(&'k SearchKey)) {
    visit(key);
    match key {
        SearchKey::And(keys) => keys.iter().for_each(|k| walk(k, visit)),
        SearchKey::Or(a, b) => {
            walk(a, visit);
            walk(b, visit);
        }
        SearchKey::Not(k) => walk(k, visit),
        _ => {}
    }
}

/// Whether some key needs the messages themselves (HEADER on a field the
/// index does not keep).
fn needs_scan(key: &SearchKey) -> bool {
    let mut scan = false;
    walk(key, &mut |k| {
        if matches!(k, SearchKey::Header(..)) && indexed_field(k).is_none() {
            scan = true;
        }
    });
    scan
}

/// Whether some key needs the index rows (sent dates, threads).
fn uses_index_rows(key: &SearchKey) -> bool {
    let mut uses = false;
    walk(key, &mut |k| {
        if matches!(
            k,
            SearchKey::SentBefore(_)
                | SearchKey::SentOn(_)
                | SearchKey::SentSince(_)
                | SearchKey::ThreadId(_)
        ) {
            uses = true;
        }
    });
    uses
}

/// `key` with every `$` replaced by the UIDs the last SEARCH saved (RFC
/// 5182 §2.1: the same messages whether named by UID or sequence number);
/// None when it has none.
fn with_saved(key: &SearchKey, saved: &[u32]) -> Option<SearchKey> {
    use SearchKey::*;
    let mut has = false;
    walk(key, &mut |k| {
        if let Uid(set) | Seq(set) = k {
            has |= set.is_saved();
        }
    });
    if !has {
        return None;
    }
    fn replace(key: &SearchKey, saved: &[u32]) -> SearchKey {
        match key {
            Uid(set) | Seq(set) if set.is_saved() => Uid(SequenceSet::of(saved)),
            And(keys) => And(keys.iter().map(|k| replace(k, saved)).collect()),
            Or(a, b) => Or(Box::new(replace(a, saved)), Box::new(replace(b, saved))),
            Not(k) => Not(Box::new(replace(k, saved))),
            other => other.clone(),
        }
    }
    Some(replace(key, saved))
}

/// What a key is evaluated against.
/// The message is parsed (decoded) only when a key needs it: header keys first
/// look at the raw header text.
struct Candidate<'a> {
    seq: u32,
    entry: &'a MessageEntry,
    recent: bool,
    raw: Option<&'a [u8]>,
    parsed: std::cell::OnceCell<Option<Message<'a>>>,
    hits: &'a IndexHits,
}

impl<'a> Candidate<'a> {
    fn parsed(&self) -> Option<&Message<'a>> {
        self.parsed
            .get_or_init(|| MessageParser::default().parse_headers(self.raw?))
            .as_ref()
    }
}

/// Everything `*` means in sequence and UID sets.
struct Bounds {
    last_seq: u32,
    last_uid: u32,
}

fn day_of(unix: i64) -> i64 {
    unix.div_euclid(86_400)
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.to_lowercase().contains(&needle.to_lowercase())
}

/// A decoded header value as text, for matching.
fn header_text(v: &HeaderValue<'_>) -> String {
    match v {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(" "),
        HeaderValue::Address(a) => a
            .iter()
            .map(|x| format!("{} <{}>", x.name().unwrap_or(""), x.address().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

/// HEADER on a field the index does not keep: the raw values, then, if
/// encoded words or 8-bit text might hide a match, the decoded ones.
fn header_matches(c: &Candidate<'_>, name: &str, text: &str) -> bool {
    let Some(raw) = c.raw else { return false };
    let fields = message::header::fields_named(raw, name);
    if fields.is_empty() {
        return false;
    }
    if fields.iter().any(|f| contains_ci(&f.unfolded(), text)) {
        return true;
    }
    let encoded = fields
        .iter()
        .any(|f| f.value.windows(2).any(|w| w == b"=?") || !f.value.is_ascii());
    encoded
        && c.parsed().is_some_and(|m| {
            m.header_values(name)
                .any(|v| contains_ci(&header_text(v), text))
        })
}

fn sent_day(c: &Candidate<'_>) -> Option<i64> {
    c.hits.sent_days.get(&c.entry.uid).copied().flatten()
}

fn matches(key: &SearchKey, c: &Candidate<'_>, b: &Bounds) -> bool {
    use SearchKey::*;
    let e = c.entry;
    match key {
        All => true,
        And(keys) => keys.iter().all(|k| matches(k, c, b)),
        Or(x, y) => matches(x, c, b) || matches(y, c, b),
        Not(k) => !matches(k, c, b),
        Flag(name, set) => flags::contains(&e.flags, name) == *set,
        Keyword(k, set) => flags::contains(&e.flags, k) == *set,
        Recent => c.recent,
        New => c.recent && !flags::contains(&e.flags, "\\Seen"),
        Old => !c.recent,
        Header(..) | Body(_) | Text(_) => match c.hits.text.get(&key_id(key)) {
            Some(uids) => uids.contains(&e.uid),
            None => match key {
                Header(name, text) => header_matches(c, name, text),
                _ => false,
            },
        },
        Before(d) => day_of(e.internal_date) < *d,
        On(d) => day_of(e.internal_date) == *d,
        Since(d) => day_of(e.internal_date) >= *d,
        SentBefore(d) => sent_day(c).is_some_and(|s| s < *d),
        SentOn(d) => sent_day(c) == Some(*d),
        SentSince(d) => sent_day(c).is_some_and(|s| s >= *d),
        SavedBefore(d) => day_of(e.saved_at) < *d,
        SavedOn(d) => day_of(e.saved_at) == *d,
        SavedSince(d) => day_of(e.saved_at) >= *d,
        SaveDateSupported => true,
        EmailId(id) => store::object_id::parse(id, 'E') == Some(e.email_id),
        ThreadId(id) => {
            store::object_id::parse(id, 'T').is_some()
                && store::object_id::parse(id, 'T') == c.hits.threads.get(&e.uid).copied()
        }
        Larger(n) => e.size > *n,
        Smaller(n) => e.size < *n,
        Uid(set) => SequenceSet::contains(&set.resolve(b.last_uid), e.uid),
        Seq(set) => SequenceSet::contains(&set.resolve(b.last_seq), c.seq),
        ModSeq(m) => e.modseq >= *m,
    }
}

fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::Not(k) => uses_modseq(k),
        _ => false,
    }
}

impl ImapSession {
    /// The messages of the selected mailbox that match `key`, in order:
    /// (sequence number, UID, MODSEQ).
    pub(super) async fn matching(
        &mut self,
        key: &SearchKey,
    ) -> Result<Vec<(u32, u32, u64)>, crate::error::ImapError> {
        if uses_modseq(key) {
            self.condstore = true;
        }
        let replaced = with_saved(key, &self.selected()?.saved);
        let key = replaced.as_ref().unwrap_or(key);
        let (mailbox, known, first_recent) = {
            let sel = self.selected()?;
            if *key == SearchKey::All {
                // Every message the client knows, as it knows them.
                return Ok(sel
                    .messages
                    .iter()
                    .enumerate()
                    .map(|(i, k)| (i as u32 + 1, k.uid, k.modseq))
                    .collect());
            }
            (sel.mailbox.id, sel.messages.clone(), sel.first_recent)
        };
        let entries: HashMap<u32, MessageEntry> = self
            .store()
            .messages(mailbox)
            .await?
            .into_iter()
            .map(|e| (e.uid, e))
            .collect();
        let bounds = Bounds {
            last_seq: known.len() as u32,
            last_uid: known.last().map(|k| k.uid).unwrap_or(0),
        };
        let index = self.index_hits(mailbox, key).await?;
        let scan = needs_scan(key);
        let mut hits = Vec::new();
        for chunk in known.chunks(CONTENT_BATCH) {
            let contents = if scan {
                self.header_sections(mailbox, chunk, &entries).await?
            } else {
                HashMap::new()
            };
            for k in chunk {
                let Some(entry) = entries.get(&k.uid) else {
                    continue;
                };
                let position = known
                    .binary_search_by_key(&k.uid, |x| x.uid)
                    .map(|p| p as u32 + 1)
                    .unwrap_or(0);
                let c = Candidate {
                    seq: position,
                    entry,
                    recent: !self.rev2 && k.uid >= first_recent,
                    raw: contents.get(&k.uid).map(Vec::as_slice),
                    parsed: Default::default(),
                    hits: &index,
                };
                if matches(key, &c, &bounds) {
                    hits.push((position, entry.uid, entry.modseq));
                }
            }
        }
        Ok(hits)
    }

    /// What a HEADER key the index does not keep is matched against: the
    /// messages' header sections. Small messages are read whole, a batch
    /// in one read; a large one's header section alone, a piece at a time
    /// (hardening.md C-FT9).
    async fn header_sections(
        &self,
        mailbox: store::MailboxId,
        chunk: &[super::Known],
        entries: &HashMap<u32, MessageEntry>,
    ) -> Result<HashMap<u32, Vec<u8>>, crate::error::ImapError> {
        let size = |uid: &u32| entries.get(uid).map_or(0, |e| e.size);
        let (small, large): (Vec<u32>, Vec<u32>) = chunk
            .iter()
            .map(|k| k.uid)
            .partition(|uid| size(uid) <= self.cfg.stream_over);
        let mut sections: HashMap<u32, Vec<u8>> = if small.is_empty() {
            HashMap::new()
        } else {
            self.store()
                .contents(mailbox, small)
                .await?
                .into_iter()
                .collect()
        };
        for uid in large {
            let store = self.store().as_ref();
            let head = store::stream::header_section(store, mailbox, uid, size(&uid), HEAD_KEEP);
            if let Some(head) = head.await? {
                sections.insert(uid, head);
            }
        }
        Ok(sections)
    }

    pub(super) async fn search(
        &mut self,
        uid_mode: bool,
        returns: Option<Vec<String>>,
        key: &SearchKey,
        tag: &str,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let hits = self.matching(key).await?;
        let numbers: Vec<u32> = hits
            .iter()
            .map(|h| if uid_mode { h.1 } else { h.0 })
            .collect();
        let max_modseq = hits.iter().map(|h| h.2).max();
        let mut returns = returns;
        if let Some(r) = returns.as_mut()
            && let Some(i) = r.iter().position(|x| x == "SAVE")
        {
            r.remove(i);
            self.selected_mut()?.saved = saved_result(&hits, r);
            if r.is_empty() {
                // RFC 5182 §2.4: SAVE alone asks for no ESEARCH response.
                self.sync(out, uid_mode).await?;
                return Ok("SEARCH completed, result saved".into());
            }
        }
        if returns.is_some() || self.rev2 {
            self.esearch(
                out,
                tag,
                uid_mode,
                returns.unwrap_or_default(),
                &numbers,
                max_modseq.filter(|_| uses_modseq(key)),
            );
        } else {
            let mut line = String::from("SEARCH");
            for n in &numbers {
                line.push_str(&format!(" {n}"));
            }
            if let (true, Some(m)) = (uses_modseq(key), max_modseq) {
                line.push_str(&format!(" (MODSEQ {m})"));
            }
            response::untagged(out, &line);
        }
        self.sync(out, uid_mode).await?;
        Ok("SEARCH completed".into())
    }

    /// Ask the index once for each key it can answer.
    pub(super) async fn index_hits(
        &self,
        mailbox: store::MailboxId,
        key: &SearchKey,
    ) -> Result<IndexHits, crate::error::ImapError> {
        let mut asks: Vec<(usize, TextField, String)> = Vec::new();
        walk(key, &mut |k| {
            if let Some((field, text)) = indexed_field(k) {
                asks.push((key_id(k), field, text.to_string()));
            }
        });
        let mut hits = IndexHits::default();
        for (id, field, text) in asks {
            let uids = self.store().search_text(mailbox, field, &text).await?;
            hits.text.insert(id, uids.into_iter().collect());
        }
        if uses_index_rows(key) {
            for r in self.store().index_rows(mailbox, 0).await? {
                hits.sent_days.insert(r.uid, r.sent_day);
                hits.threads.insert(r.uid, r.thread_id);
            }
        }
        Ok(hits)
    }

    /// RFC 4731 §3.1: `* ESEARCH (TAG "t") UID MIN 1 MAX 9 COUNT 3 ALL 1,4,9`.
    pub(super) fn esearch(
        &self,
        out: &mut Vec<u8>,
        tag: &str,
        uid_mode: bool,
        returns: Vec<String>,
        numbers: &[u32],
        modseq: Option<u64>,
    ) {
        let returns = if returns.is_empty() {
            vec!["ALL".to_string()]
        } else {
            returns
        };
        let mut line = format!("ESEARCH (TAG \"{tag}\")");
        if uid_mode {
            line.push_str(" UID");
        }
        for r in &returns {
            match r.as_str() {
                "MIN" => {
                    if let Some(m) = numbers.iter().min() {
                        line.push_str(&format!(" MIN {m}"));
                    }
                }
                "MAX" => {
                    if let Some(m) = numbers.iter().max() {
                        line.push_str(&format!(" MAX {m}"));
                    }
                }
                "COUNT" => line.push_str(&format!(" COUNT {}", numbers.len())),
                "ALL" if !numbers.is_empty() => {
                    line.push_str(&format!(" ALL {}", format_set(numbers)))
                }
                _ => {}
            }
        }
        if let Some(m) = modseq {
            line.push_str(&format!(" MODSEQ {m}"));
        }
        response::untagged(out, &line);
    }
}

/// What RETURN (SAVE ...) keeps (RFC 5182 §2.4): with MIN and/or MAX and
/// neither ALL nor COUNT, only those messages; otherwise every match. UIDs,
/// so the result survives expunges.
fn saved_result(hits: &[(u32, u32, u64)], others: &[String]) -> Vec<u32> {
    let has = |w: &str| others.iter().any(|o| o == w);
    if (has("MIN") || has("MAX")) && !has("ALL") && !has("COUNT") {
        let mut kept = Vec::new();
        if has("MIN")
            && let Some(h) = hits.first()
        {
            kept.push(h.1);
        }
        if has("MAX")
            && let Some(h) = hits.last()
        {
            kept.push(h.1);
        }
        kept.sort_unstable();
        kept.dedup();
        return kept;
    }
    hits.iter().map(|h| h.1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_unicode() {
        assert!(contains_ci("Grüße aus Köln", "KÖLN"));
        assert!(contains_ci("anything", ""));
        assert!(!contains_ci("abc", "abd"));
    }
}
