//! STORE and UID STORE (RFC 9051 §6.4.6), with UNCHANGEDSINCE (RFC 7162 §3.1.3).

use store::{FlagOp, flags::SYSTEM_FLAGS};

use super::{ImapSession, Outcome};
use crate::error::ImapError;
use crate::parse::{SequenceSet, format_set};
use crate::response;

impl ImapSession {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn store_flags(
        &mut self,
        uid_mode: bool,
        set: &SequenceSet,
        unchanged_since: Option<u64>,
        op: FlagOp,
        silent: bool,
        flag_list: Vec<String>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let targets = self.resolve_set(uid_mode, set)?;
        let (mailbox, read_only) = {
            let sel = self.selected()?;
            (sel.mailbox.id, sel.read_only)
        };
        if read_only {
            return Err(ImapError::ReadOnly);
        }
        // RFC 4314 §4: \Seen needs s, \Deleted t, other flags w.
        let rights = &self.selected()?.rights;
        for f in &flag_list {
            let right = if f.eq_ignore_ascii_case("\\Seen") {
                's'
            } else if f.eq_ignore_ascii_case("\\Deleted") {
                't'
            } else {
                'w'
            };
            super::acl::require(rights, right)?;
        }
        if unchanged_since.is_some() {
            self.condstore = true;
        }
        // \Recent is not a client's to set; unknown system flags are not kept.
        let flag_list: Vec<String> = flag_list
            .into_iter()
            .filter(|f| {
                !f.starts_with('\\') || SYSTEM_FLAGS.iter().any(|s| s.eq_ignore_ascii_case(f))
            })
            .collect();
        let uids: Vec<u32> = targets.iter().map(|t| t.1).collect();
        let lesson = match op {
            FlagOp::Add | FlagOp::Replace => antispam::learn::lesson_of_keywords(&flag_list),
            FlagOp::Remove => None,
        };
        let update = self
            .store()
            .set_flags(mailbox, uids, op, flag_list, unchanged_since)
            .await?;
        self.note_updates(&update.updated)?;
        if let Some(spam) = lesson {
            let changed: Vec<u32> = update.updated.iter().map(|e| e.uid).collect();
            self.learn(mailbox, &changed, spam);
        }
        let condstore = self.condstore;
        let sel = self.selected()?;
        for e in &update.updated {
            let Some(seq) = sel.seq_of(e.uid) else {
                continue;
            };
            let mut line = format!("* {seq} FETCH (").into_bytes();
            if uid_mode {
                line.extend_from_slice(format!("UID {} ", e.uid).as_bytes());
            }
            if !silent {
                line.extend_from_slice(b"FLAGS ");
                response::flags(&mut line, &self.flags_for(sel, e.uid, &e.flags));
                line.push(b' ');
            }
            if condstore {
                line.extend_from_slice(format!("MODSEQ ({})", e.modseq).as_bytes());
            }
            while line.last() == Some(&b' ') {
                line.pop();
            }
            line.extend_from_slice(b")\r\n");
            // .SILENT without CONDSTORE says nothing at all.
            if !silent || condstore {
                out.extend_from_slice(&line);
            }
        }
        let conflicts: Vec<u32> = if uid_mode {
            update.conflicts.clone()
        } else {
            update
                .conflicts
                .iter()
                .filter_map(|u| sel.seq_of(*u).map(|s| s as u32))
                .collect()
        };
        self.sync(out, uid_mode).await?;
        if conflicts.is_empty() {
            Ok("STORE completed".into())
        } else {
            Ok(format!(
                "[MODIFIED {}] Conditional STORE failed",
                format_set(&conflicts)
            ))
        }
    }
}
