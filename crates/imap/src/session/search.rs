//! SEARCH and UID SEARCH (RFC 9051 §6.4.4), ESEARCH results (RFC 4731, and
//! always for IMAP4rev2), MODSEQ (RFC 7162 §3.1.5).
//!
//! Keys about flags, sizes and dates use the store's entries only; keys about
//! headers and text read the messages a batch at a time and compare decoded
//! text (RFC 2047 words, transfer encodings and charsets decoded by
//! mail-parser), case-insensitively.

use std::collections::HashMap;

use mail_parser::{HeaderValue, Message, MessageParser};
use store::{MessageEntry, flags};

use super::{ImapSession, Outcome};
use crate::parse::{SearchKey, SequenceSet, format_set};
use crate::response;

const CONTENT_BATCH: usize = 64;

/// What a key is evaluated against.
/// The message is parsed (decoded) only when a key needs it: header keys first
/// look at the raw header text.
struct Candidate<'a> {
    seq: u32,
    entry: &'a MessageEntry,
    recent: bool,
    raw: Option<&'a [u8]>,
    headers_only: bool,
    parsed: std::cell::OnceCell<Option<Message<'a>>>,
}

impl<'a> Candidate<'a> {
    fn parsed(&self) -> Option<&Message<'a>> {
        self.parsed
            .get_or_init(|| {
                let raw = self.raw?;
                if self.headers_only {
                    MessageParser::default().parse_headers(raw)
                } else {
                    MessageParser::default().parse(raw)
                }
            })
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

fn header_matches(c: &Candidate<'_>, name: &str, text: &str) -> bool {
    let name = match name.to_ascii_uppercase().as_str() {
        "FROM" => "From".to_string(),
        "TO" => "To".to_string(),
        "CC" => "Cc".to_string(),
        "BCC" => "Bcc".to_string(),
        "SUBJECT" => "Subject".to_string(),
        _ => name.to_string(),
    };
    let Some(raw) = c.raw else { return false };
    let fields = message::header::fields_named(raw, &name);
    if fields.is_empty() {
        return false;
    }
    if fields.iter().any(|f| contains_ci(&f.unfolded(), text)) {
        return true;
    }
    // Only encoded words (RFC 2047) or 8-bit text can hide a match from the raw text.
    let encoded = fields
        .iter()
        .any(|f| f.value.windows(2).any(|w| w == b"=?") || !f.value.is_ascii());
    encoded
        && c.parsed().is_some_and(|m| {
            m.header_values(name.as_str())
                .any(|v| contains_ci(&header_text(v), text))
        })
}

fn body_matches(c: &Candidate<'_>, text: &str) -> bool {
    let Some(m) = c.parsed() else { return false };
    (0..m.text_body_count()).any(|i| m.body_text(i).is_some_and(|t| contains_ci(&t, text)))
        || (0..m.html_body_count()).any(|i| m.body_html(i).is_some_and(|t| contains_ci(&t, text)))
}

fn sent_day(c: &Candidate<'_>) -> Option<i64> {
    c.parsed()
        .and_then(|m| m.date())
        .map(|d| day_of(d.to_timestamp()))
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
        Header(name, text) => header_matches(c, name, text),
        Body(text) => body_matches(c, text),
        Text(text) => {
            body_matches(c, text)
                || c.raw.is_some_and(|r| {
                    contains_ci(
                        &String::from_utf8_lossy(&r[..message::header::header_end(r)]),
                        text,
                    )
                })
        }
        Before(d) => day_of(e.internal_date) < *d,
        On(d) => day_of(e.internal_date) == *d,
        Since(d) => day_of(e.internal_date) >= *d,
        SentBefore(d) => sent_day(c).is_some_and(|s| s < *d),
        SentOn(d) => sent_day(c) == Some(*d),
        SentSince(d) => sent_day(c).is_some_and(|s| s >= *d),
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
    pub(super) async fn search(
        &mut self,
        uid_mode: bool,
        returns: Option<Vec<String>>,
        key: &SearchKey,
        tag: &str,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if uses_modseq(key) {
            self.condstore = true;
        }
        let (mailbox, known, first_recent) = {
            let sel = self.selected()?;
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
        let needs_content = key.needs_content();
        let needs_body = key.needs_body();
        let mut hits: Vec<(u32, u32, u64)> = Vec::new();
        for chunk in known.chunks(CONTENT_BATCH) {
            let contents: HashMap<u32, Vec<u8>> = if needs_content {
                self.store()
                    .contents(mailbox, chunk.iter().map(|k| k.uid).collect())
                    .await?
                    .into_iter()
                    .collect()
            } else {
                HashMap::new()
            };
            for k in chunk {
                let Some(entry) = entries.get(&k.uid) else {
                    continue;
                };
                let raw = contents.get(&k.uid).map(Vec::as_slice);
                // Header keys parse the header section only.

                let position = known
                    .binary_search_by_key(&k.uid, |x| x.uid)
                    .map(|p| p as u32 + 1)
                    .unwrap_or(0);
                let c = Candidate {
                    seq: position,
                    entry,
                    recent: !self.rev2 && k.uid >= first_recent,
                    raw,
                    headers_only: !needs_body,
                    parsed: Default::default(),
                };
                if matches(key, &c, &bounds) {
                    hits.push((position, k.uid, entry.modseq));
                }
            }
        }
        let numbers: Vec<u32> = hits
            .iter()
            .map(|h| if uid_mode { h.1 } else { h.0 })
            .collect();
        let max_modseq = hits.iter().map(|h| h.2).max();
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

    /// RFC 4731 §3.1: `* ESEARCH (TAG "t") UID MIN 1 MAX 9 COUNT 3 ALL 1,4,9`.
    fn esearch(
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
