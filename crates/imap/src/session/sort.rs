//! SORT and UID SORT (RFC 5256 §3), ESORT results (RFC 5267 §3.2), THREAD
//! and UID THREAD (RFC 5256 §2.2). The messages that match come from the
//! same search as SEARCH; what they are sorted or threaded by comes from
//! the store's search index (decoded once, when stored).

use std::cmp::Ordering;
use std::sync::Arc;

use store::IndexRow;

use super::{ImapSession, Outcome};
use crate::parse::{SearchKey, SortKey, SortKind, ThreadAlgorithm};
use crate::response;
use crate::thread::{self, Item};

/// A matching message with what it sorts by.
struct Row {
    seq: u32,
    index: Arc<IndexRow>,
}

impl Row {
    /// RFC 5256 §2.2: the sent date, or the internal date when the message
    /// has none.
    fn date(&self) -> i64 {
        self.index.sent.unwrap_or(self.index.internal_date)
    }
}

fn compare(a: &Row, b: &Row, key: &SortKey) -> Ordering {
    let o = match key.kind {
        SortKind::Arrival => a.index.internal_date.cmp(&b.index.internal_date),
        SortKind::Cc => a.index.cc_key.cmp(&b.index.cc_key),
        SortKind::Date => a.date().cmp(&b.date()),
        SortKind::From => a.index.from_key.cmp(&b.index.from_key),
        SortKind::Size => a.index.size.cmp(&b.index.size),
        SortKind::Subject => a.index.base_subject.cmp(&b.index.base_subject),
        SortKind::To => a.index.to_key.cmp(&b.index.to_key),
    };
    if key.reverse { o.reverse() } else { o }
}

impl ImapSession {
    /// The index rows of these UIDs of the selected mailbox, in the order
    /// given. Rows come from the shared cache; only UIDs above the highest
    /// kept are read from the store.
    pub(super) async fn index_rows_of(
        &self,
        uids: &[u32],
    ) -> Result<Vec<Arc<IndexRow>>, crate::error::ImapError> {
        let (mailbox, validity) = {
            let sel = self.selected()?;
            (sel.mailbox.id, sel.mailbox.uid_validity)
        };
        let cache = self.services.index.clone();
        let after = cache.highest(mailbox, validity);
        if uids.iter().any(|&u| u > after) {
            let fresh = self.store().index_rows(mailbox, after).await?;
            cache.add(mailbox, validity, fresh);
        }
        Ok(cache.rows(mailbox, validity, uids.iter().copied()))
    }

    /// The matching messages with their index rows, in sequence order.
    async fn rows(&mut self, key: &SearchKey) -> Result<Vec<Row>, crate::error::ImapError> {
        let hits = self.matching(key).await?;
        let uids: Vec<u32> = hits.iter().map(|h| h.1).collect();
        let rows = self.index_rows_of(&uids).await?;
        Ok(hits
            .into_iter()
            .zip(rows)
            .map(|((seq, _, _), index)| Row { seq, index })
            .collect())
    }

    pub(super) async fn sort(
        &mut self,
        uid_mode: bool,
        returns: Option<Vec<String>>,
        criteria: &[SortKey],
        key: &SearchKey,
        tag: &str,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let mut rows = self.rows(key).await?;
        // RFC 5256 §3: ties go by sequence number.
        rows.sort_by(|a, b| {
            criteria
                .iter()
                .map(|k| compare(a, b, k))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
                .then(a.seq.cmp(&b.seq))
        });
        let numbers: Vec<u32> = rows
            .iter()
            .map(|r| if uid_mode { r.index.uid } else { r.seq })
            .collect();
        match returns {
            Some(r) => response::untagged(out, &esort(tag, uid_mode, &r, &numbers)),
            None => {
                let mut line = String::from("SORT");
                for n in &numbers {
                    line.push_str(&format!(" {n}"));
                }
                response::untagged(out, &line);
            }
        }
        self.sync(out, uid_mode).await?;
        Ok("SORT completed".into())
    }

    pub(super) async fn thread(
        &mut self,
        uid_mode: bool,
        algorithm: ThreadAlgorithm,
        key: &SearchKey,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let rows = self.rows(key).await?;
        let items: Vec<Item> = rows
            .iter()
            .map(|r| Item {
                number: if uid_mode { r.index.uid } else { r.seq },
                message_id: r.index.message_id.clone(),
                // RFC 5256 §2.2 (1): References, else In-Reply-To.
                references: match r.index.references.is_empty() {
                    true => r.index.in_reply_to.clone(),
                    false => r.index.references.clone(),
                },
                date: r.date(),
                base_subject: r.index.base_subject.clone(),
                reply: r.index.reply,
            })
            .collect();
        let threads = match algorithm {
            ThreadAlgorithm::OrderedSubject => thread::ordered_subject(&items),
            ThreadAlgorithm::References => thread::references(&items),
        };
        let rendered = thread::render(&threads, &items);
        response::untagged(
            out,
            &match rendered.is_empty() {
                true => "THREAD".to_string(),
                false => format!("THREAD {rendered}"),
            },
        );
        self.sync(out, uid_mode).await?;
        Ok("THREAD completed".into())
    }
}

/// RFC 5267 §3.2: MIN and MAX are the first and last in sort order, ALL
/// the numbers in sort order (runs of consecutive ones as ranges).
fn esort(tag: &str, uid_mode: bool, returns: &[String], numbers: &[u32]) -> String {
    let returns: Vec<&str> = match returns.is_empty() {
        true => vec!["ALL"],
        false => returns.iter().map(String::as_str).collect(),
    };
    let mut line = format!("ESEARCH (TAG \"{tag}\")");
    if uid_mode {
        line.push_str(" UID");
    }
    for r in returns {
        match r {
            "MIN" => {
                if let Some(m) = numbers.first() {
                    line.push_str(&format!(" MIN {m}"));
                }
            }
            "MAX" => {
                if let Some(m) = numbers.last() {
                    line.push_str(&format!(" MAX {m}"));
                }
            }
            "COUNT" => line.push_str(&format!(" COUNT {}", numbers.len())),
            "ALL" if !numbers.is_empty() => {
                line.push_str(&format!(" ALL {}", ordered_set(numbers)))
            }
            _ => {}
        }
    }
    line
}

/// Numbers in the order given, consecutive ascending runs as ranges.
fn ordered_set(numbers: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut j = i;
        while j + 1 < numbers.len() && numbers[j + 1] == numbers[j] + 1 {
            j += 1;
        }
        parts.push(match j > i {
            true => format!("{start}:{}", numbers[j]),
            false => start.to_string(),
        });
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esort_keeps_the_order() {
        assert_eq!(ordered_set(&[5, 6, 7, 2, 9, 10]), "5:7,2,9:10");
        let line = esort(
            "A1",
            true,
            &["MIN".into(), "MAX".into(), "COUNT".into(), "ALL".into()],
            &[9, 3, 4],
        );
        assert_eq!(
            line,
            "ESEARCH (TAG \"A1\") UID MIN 9 MAX 4 COUNT 3 ALL 9,3:4"
        );
    }
}
