//! SELECT and EXAMINE (RFC 9051 §6.3.2, RFC 7162 CONDSTORE/QRESYNC), CLOSE,
//! UNSELECT, EXPUNGE, mailbox names, and keeping the client's view of the
//! selected mailbox in step with the store (RFC 9051 §7: unilateral EXISTS,
//! EXPUNGE, FETCH; VANISHED for QRESYNC clients).

use store::{MailboxRecord, flags};

use super::{ImapSession, Known, Outcome, Selected, SessionState};
use crate::error::ImapError;
use crate::mutf7;
use crate::parse::{Qresync, SequenceSet, format_set};
use crate::response;

pub(super) const PERMANENT_FLAGS: &str = "(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)";
const FLAGS: &str = "(\\Answered \\Flagged \\Deleted \\Seen \\Draft)";
/// The longest mailbox name, in characters.
const MAX_NAME: usize = 255;

impl ImapSession {
    /// A mailbox name as the client wrote it, to the stored form: UTF-8 (decoded
    /// from modified UTF-7 for IMAP4rev1 clients), INBOX in capitals, checked
    /// (hardening.md C-IM7: no control characters, no empty or dot segments).
    pub(super) fn mailbox_name(&self, raw: &str) -> Result<String, ImapError> {
        let name = if self.utf8_names() {
            raw.to_string()
        } else {
            mutf7::decode(raw).ok_or(ImapError::BadMailboxName)?
        };
        let name = match name.split_once('/') {
            Some((first, rest)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{rest}"),
            _ if name.eq_ignore_ascii_case("INBOX") => "INBOX".to_string(),
            _ => name,
        };
        let bad_segment = name
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
        if name.chars().count() > MAX_NAME || name.chars().any(|c| c.is_control()) || bad_segment {
            return Err(ImapError::BadMailboxName);
        }
        Ok(name)
    }

    /// A stored name as this client reads names.
    pub(super) fn display_name(&self, name: &str) -> String {
        if self.utf8_names() {
            name.to_string()
        } else {
            mutf7::encode(name)
        }
    }

    /// A mailbox this user can see: their own, or one shared with them.
    pub(super) async fn find_mailbox(&self, raw: &str) -> Result<MailboxRecord, ImapError> {
        Ok(self.find_mailbox_rights(raw).await?.0)
    }

    pub(super) fn selected(&self) -> Result<&Selected, ImapError> {
        match &self.state {
            SessionState::Selected(_, s) => Ok(s),
            _ => Err(ImapError::WrongState),
        }
    }

    pub(super) fn selected_mut(&mut self) -> Result<&mut Selected, ImapError> {
        match &mut self.state {
            SessionState::Selected(_, s) => Ok(s),
            _ => Err(ImapError::WrongState),
        }
    }

    /// Leave the selected state (the account stays logged in).
    fn deselect(&mut self) -> Option<Box<Selected>> {
        let state = std::mem::replace(&mut self.state, SessionState::Logout);
        let (next, old) = match state {
            SessionState::Selected(a, s) => (SessionState::Authenticated(a), Some(s)),
            other => (other, None),
        };
        self.state = next;
        self.changes = None;
        old
    }

    pub(super) async fn select(
        &mut self,
        raw: &str,
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if qresync.is_some() && !self.qresync {
            return Err(ImapError::Syntax(
                "QRESYNC must be enabled first (RFC 7162 §3.2.5)".into(),
            ));
        }
        if self.deselect().is_some() {
            // RFC 9051 §6.3.2, RFC 7162 §3.2.11.
            response::untagged(out, "OK [CLOSED] Previous mailbox closed");
        }
        if condstore {
            self.condstore = true;
        }
        let (mailbox, rights) = self.find_mailbox_rights(raw).await?;
        super::acl::require(&rights, 'r')?;
        // RFC 4314 §4: without a right to change anything, read-only.
        let read_only = read_only
            || !["s", "w", "t", "e", "i"]
                .iter()
                .any(|r| rights.as_str().contains(r));
        let entries = self.store().messages(mailbox.id).await?;
        let first_recent = if read_only {
            u32::MAX
        } else {
            self.store().claim_recent(mailbox.id).await?
        };
        let messages: Vec<Known> = entries
            .iter()
            .map(|e| Known {
                uid: e.uid,
                modseq: e.modseq,
            })
            .collect();
        response::untagged(out, &format!("{} EXISTS", messages.len()));
        if !self.rev2 {
            let recent = messages.iter().filter(|m| m.uid >= first_recent).count();
            response::untagged(out, &format!("{recent} RECENT"));
            if let Some(i) = entries
                .iter()
                .position(|e| !flags::contains(&e.flags, "\\Seen"))
            {
                response::untagged(out, &format!("OK [UNSEEN {}] First unseen", i + 1));
            }
        }
        response::untagged(out, &format!("FLAGS {FLAGS}"));
        let permanent = if read_only { "()" } else { PERMANENT_FLAGS };
        response::untagged(
            out,
            &format!("OK [PERMANENTFLAGS {permanent}] Flags permitted"),
        );
        response::untagged(
            out,
            &format!("OK [UIDVALIDITY {}] UIDs valid", mailbox.uid_validity),
        );
        response::untagged(
            out,
            &format!("OK [UIDNEXT {}] Predicted next UID", mailbox.uid_next),
        );
        if self.condstore {
            response::untagged(
                out,
                &format!("OK [HIGHESTMODSEQ {}] Highest", mailbox.highest_modseq),
            );
        }
        // RFC 8474 §4.2.
        response::untagged(
            out,
            &format!(
                "OK [MAILBOXID ({})] Ok",
                store::object_id::mailbox(mailbox.uid_validity)
            ),
        );
        if self.rev2 {
            let mut line = b"* LIST () \"/\" ".to_vec();
            response::astring(
                &mut line,
                &self.display_name(&mailbox.name),
                self.utf8_names(),
            );
            line.extend_from_slice(b"\r\n");
            out.extend_from_slice(&line);
        }
        let selected = Selected {
            synced_modseq: mailbox.highest_modseq,
            mailbox,
            read_only,
            messages,
            first_recent,
            saved: Vec::new(),
            rights,
        };
        if let Some(q) = qresync.filter(|q| q.uid_validity == selected.mailbox.uid_validity) {
            self.qresync_catch_up(&selected, &q, out).await?;
        }
        self.changes = Some(self.store().watch());
        let account = self.state.account().cloned().ok_or(ImapError::WrongState)?;
        self.state = SessionState::Selected(account, Box::new(selected));
        Ok(if read_only {
            "[READ-ONLY] EXAMINE completed".into()
        } else {
            "[READ-WRITE] SELECT completed".into()
        })
    }

    /// RFC 7162 §3.2.5: what the client missed since its MODSEQ: VANISHED (EARLIER)
    /// and the changed flags.
    async fn qresync_catch_up(
        &self,
        sel: &Selected,
        q: &Qresync,
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        let changes = self.store().changes_since(sel.mailbox.id, q.modseq).await?;
        let known = q.known_uids.as_ref().map(|s| s.resolve(u32::MAX));
        let vanished: Vec<u32> = changes
            .expunged
            .iter()
            .copied()
            .filter(|u| known.as_ref().is_none_or(|k| SequenceSet::contains(k, *u)))
            .collect();
        if !vanished.is_empty() {
            response::untagged(
                out,
                &format!("VANISHED (EARLIER) {}", format_set(&vanished)),
            );
        }
        for e in &changes.changed {
            if let Some(seq) = sel.seq_of(e.uid) {
                let mut line = format!("{seq} FETCH (UID {} FLAGS ", e.uid).into_bytes();
                response::flags(&mut line, &self.flags_for(sel, e.uid, &e.flags));
                line.extend_from_slice(format!(" MODSEQ ({}))", e.modseq).as_bytes());
                response::untagged(out, &String::from_utf8_lossy(&line));
            }
        }
        Ok(())
    }

    /// The flags to show: the stored ones, plus \Recent for IMAP4rev1 clients.
    pub(super) fn flags_for(&self, sel: &Selected, uid: u32, stored: &[String]) -> Vec<String> {
        let mut f = stored.to_vec();
        if !self.rev2 && uid >= sel.first_recent {
            f.push("\\Recent".into());
        }
        f
    }

    pub(super) async fn close(&mut self, expunge: bool) -> Outcome {
        let sel = self.deselect().ok_or(ImapError::WrongState)?;
        // RFC 9051 §6.4.1: CLOSE removes \Deleted messages silently (not in EXAMINE).
        if expunge && !sel.read_only && sel.rights.has('e') {
            self.store().expunge(sel.mailbox.id, None).await?;
        }
        Ok(if expunge {
            "CLOSE completed".into()
        } else {
            "UNSELECT completed".into()
        })
    }

    /// EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1).
    pub(super) async fn expunge(
        &mut self,
        uids: Option<SequenceSet>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let sel = self.selected()?;
        if sel.read_only {
            return Err(ImapError::ReadOnly);
        }
        super::acl::require(&sel.rights, 'e')?;
        let filter = uids.map(|set| {
            let ranges = set.resolve(sel.messages.last().map(|k| k.uid).unwrap_or(0));
            sel.messages
                .iter()
                .map(|k| k.uid)
                .filter(|u| SequenceSet::contains(&ranges, *u))
                .collect::<Vec<u32>>()
        });
        let id = sel.mailbox.id;
        let gone = self.store().expunge(id, filter).await?;
        self.report_expunged(&gone, out)?;
        self.sync(out, true).await?;
        Ok("EXPUNGE completed".into())
    }

    /// Tell the client these UIDs are gone (EXPUNGE, or VANISHED for QRESYNC) and
    /// forget them.
    pub(super) fn report_expunged(
        &mut self,
        uids: &[u32],
        out: &mut Vec<u8>,
    ) -> Result<(), ImapError> {
        let qresync = self.qresync;
        let sel = self.selected_mut()?;
        let mut present: Vec<u32> = uids
            .iter()
            .copied()
            .filter(|u| sel.seq_of(*u).is_some())
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        if qresync {
            response::untagged(out, &format!("VANISHED {}", format_set(&present)));
        }
        // Highest first: each EXPUNGE then names a sequence number not yet shifted.
        present.sort_unstable_by(|a, b| b.cmp(a));
        for uid in present {
            if let Some(seq) = sel.seq_of(uid) {
                if !qresync {
                    response::untagged(out, &format!("{seq} EXPUNGE"));
                }
                sel.messages.remove(seq - 1);
            }
        }
        Ok(())
    }

    /// Bring the client's view up to date: new messages (EXISTS), flag changes
    /// (FETCH) and, where allowed, expunges. RFC 9051 §7.5.1: no EXPUNGE while a
    /// FETCH, STORE or SEARCH by sequence number runs (`allow_expunge` false).
    pub(super) async fn sync(
        &mut self,
        out: &mut Vec<u8>,
        allow_expunge: bool,
    ) -> Result<(), ImapError> {
        let (id, since) = match &self.state {
            SessionState::Selected(_, s) => (s.mailbox.id, s.synced_modseq),
            _ => return Ok(()),
        };
        let changes = self.store().changes_since(id, since).await?;
        if allow_expunge {
            self.report_expunged(&changes.expunged, out)?;
        }
        let (rev2, condstore) = (self.rev2, self.condstore);
        let mut flag_lines: Vec<(u32, u32, Vec<String>, u64)> = Vec::new();
        let mut new = 0;
        let sel = self.selected_mut()?;
        for e in &changes.changed {
            match sel.messages.binary_search_by_key(&e.uid, |k| k.uid) {
                Ok(i) if e.modseq > sel.messages[i].modseq => {
                    sel.messages[i].modseq = e.modseq;
                    flag_lines.push(((i + 1) as u32, e.uid, e.flags.clone(), e.modseq));
                }
                Err(i) if i == sel.messages.len() => {
                    sel.messages.push(Known {
                        uid: e.uid,
                        modseq: e.modseq,
                    });
                    new += 1;
                }
                _ => {}
            }
        }
        if allow_expunge || changes.expunged.iter().all(|u| sel.seq_of(*u).is_none()) {
            sel.synced_modseq = changes.mailbox.highest_modseq;
        }
        let total = sel.messages.len();
        let read_only = sel.read_only;
        if new > 0 {
            response::untagged(out, &format!("{total} EXISTS"));
            if !rev2 {
                // New mail is \Recent for the session that sees it first (RFC 3501 §2.3.2).
                let recent_from = if read_only {
                    u32::MAX
                } else {
                    self.store()
                        .claim_recent(id)
                        .await?
                        .min(self.selected()?.first_recent)
                };
                let sel = self.selected_mut()?;
                sel.first_recent = recent_from;
                let recent = sel.messages.iter().filter(|m| m.uid >= recent_from).count();
                response::untagged(out, &format!("{recent} RECENT"));
            }
        }
        let sel = self.selected()?;
        for (seq, uid, stored, modseq) in flag_lines {
            let mut line = format!("* {seq} FETCH (UID {uid} FLAGS ").into_bytes();
            response::flags(&mut line, &self.flags_for(sel, uid, &stored));
            if condstore {
                line.extend_from_slice(format!(" MODSEQ ({modseq})").as_bytes());
            }
            line.extend_from_slice(b")\r\n");
            out.extend_from_slice(&line);
        }
        Ok(())
    }
}
