//! COPY and MOVE, and their UID forms (RFC 9051 §6.4.7, RFC 6851 MOVE, RFC 4315
//! COPYUID).

use super::{ImapSession, Outcome};
use crate::error::ImapError;
use crate::parse::{SequenceSet, format_set};
use crate::response;

impl ImapSession {
    pub(super) async fn copy(
        &mut self,
        uid_mode: bool,
        set: &SequenceSet,
        raw: &str,
        remove: bool,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let targets = self.resolve_set(uid_mode, set)?;
        let (source, read_only) = {
            let sel = self.selected()?;
            (sel.mailbox.id, sel.read_only)
        };
        if remove && read_only {
            return Err(ImapError::ReadOnly);
        }
        if remove {
            // MOVE takes the messages away: t and e on the source (RFC 6851 §4.4).
            let rights = &self.selected()?.rights;
            super::acl::require(rights, 't')?;
            super::acl::require(rights, 'e')?;
        }
        let dest = match self.mailbox_with(raw, 'i').await {
            Err(ImapError::NoSuchMailbox) => return Err(ImapError::TryCreate),
            other => other?,
        };
        let uids: Vec<u32> = targets.iter().map(|t| t.1).collect();
        if !remove {
            // A copy takes room; a move does not (RFC 9208 §4.3).
            let entries = self.store().entries(source, uids.clone()).await?;
            let octets = entries.iter().map(|e| e.size).sum();
            self.check_quota(dest.account, octets, entries.len() as u64)
                .await?;
        }
        let pairs = self
            .store()
            .copy_messages(source, uids, dest.id, remove)
            .await?;
        let word = if remove { "MOVE" } else { "COPY" };
        if pairs.is_empty() {
            self.sync(out, uid_mode).await?;
            return Ok(format!("{word} completed"));
        }
        let src: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let dst: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        if let Some(spam) = antispam::learn::lesson_of_move(&self.selected()?.mailbox, &dest) {
            self.learn(dest.id, &dst, spam);
        }
        let code = format!(
            "[COPYUID {} {} {}]",
            dest.uid_validity,
            format_set(&src),
            format_set(&dst)
        );
        if !remove {
            self.sync(out, uid_mode).await?;
            return Ok(format!("{code} COPY completed"));
        }
        // RFC 6851 §4.3: COPYUID in an untagged OK, then the expunges.
        response::untagged(out, &format!("OK {code} Moved"));
        self.report_expunged(&src, out)?;
        self.sync(out, true).await?;
        Ok("MOVE completed".into())
    }
}
