//! METADATA (RFC 5464): annotations a client keeps on a mailbox, or on the
//! server (mailbox ""), under `/private/...` and `/shared/...` names.
//!
//! Tern keeps both kinds per account: nobody else sees a mailbox, so
//! "shared" annotations are seen by the same user alone, and server
//! annotations are each account's own. Bounds (hardening.md C-IM12): a
//! value of at most [`MAX_VALUE`] octets (`[METADATA MAXSIZE n]`), at most
//! [`MAX_ENTRIES`] per account (`[METADATA TOOMANY]`).

use store::StoreError;

use super::{ImapSession, Outcome};
use crate::error::ImapError;
use crate::parse::MetadataDepth;
use crate::response;

pub const MAX_VALUE: usize = 64 * 1024;
pub const MAX_ENTRIES: usize = 1000;

/// Whether `name` is what GETMETADATA asked for `asked` at this depth
/// (RFC 5464 §4.2.2).
fn wanted(name: &str, asked: &str, depth: MetadataDepth) -> bool {
    if name == asked {
        return true;
    }
    let Some(rest) = name.strip_prefix(asked).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    match depth {
        MetadataDepth::Zero => false,
        MetadataDepth::One => !rest.contains('/'),
        MetadataDepth::Infinity => true,
    }
}

impl ImapSession {
    /// The mailbox the command names, or None for "" (the server).
    async fn metadata_target(&self, raw: &str) -> Result<Option<store::MailboxId>, ImapError> {
        if raw.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.find_mailbox(raw).await?.id))
    }

    pub(super) async fn get_metadata(
        &mut self,
        raw: &str,
        asked: &[String],
        max_size: Option<u64>,
        depth: MetadataDepth,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let target = self.metadata_target(raw).await?;
        let stored = self.store().metadata(self.account_id()?, target).await?;
        let mut parts: Vec<u8> = Vec::new();
        let mut longest_skipped = 0usize;
        for a in asked {
            let mut found = false;
            for (name, value) in stored.iter().filter(|(n, _)| wanted(n, a, depth)) {
                found = true;
                if max_size.is_some_and(|m| value.len() as u64 > m) {
                    longest_skipped = longest_skipped.max(value.len());
                    continue;
                }
                push_entry(&mut parts, name, Some(value));
            }
            if !found {
                // §4.2: an entry that does not exist is answered with NIL.
                push_entry(&mut parts, a, None);
            }
        }
        let mut line = b"* METADATA ".to_vec();
        response::astring(&mut line, &self.metadata_name(raw), self.utf8_names());
        line.extend_from_slice(b" (");
        line.extend_from_slice(&parts);
        line.extend_from_slice(b")\r\n");
        out.extend_from_slice(&line);
        Ok(if longest_skipped > 0 {
            // §4.2.1: the size of the largest entry left out.
            format!("[METADATA LONGENTRIES {longest_skipped}] GETMETADATA completed")
        } else {
            "GETMETADATA completed".into()
        })
    }

    pub(super) async fn set_metadata(
        &mut self,
        raw: &str,
        entries: Vec<(String, Option<Vec<u8>>)>,
    ) -> Outcome {
        if entries
            .iter()
            .any(|(_, v)| v.as_ref().is_some_and(|v| v.len() > MAX_VALUE))
        {
            return Err(ImapError::Metadata(format!("MAXSIZE {MAX_VALUE}")));
        }
        let target = self.metadata_target(raw).await?;
        let account = self.account_id()?;
        let names: Vec<String> = entries.iter().map(|(n, _)| n.clone()).collect();
        match self
            .store()
            .set_metadata(account, target, entries, MAX_ENTRIES)
            .await
        {
            Err(StoreError::Full) => return Err(ImapError::Metadata("TOOMANY".into())),
            other => other?,
        }
        let mailbox = match target {
            Some(_) => Some(self.mailbox_name(raw)?),
            None => None,
        };
        self.announce(super::notify::EventKind::Metadata {
            mailbox,
            entries: names,
        });
        Ok("SETMETADATA completed".into())
    }

    fn metadata_name(&self, raw: &str) -> String {
        if raw.is_empty() {
            return String::new();
        }
        match self.mailbox_name(raw) {
            Ok(name) => self.display_name(&name),
            Err(_) => raw.to_string(),
        }
    }
}

/// ` name value` (a space between entries), the value as a string, a
/// literal8 when it holds NUL (RFC 5464 §5.4), or NIL.
fn push_entry(parts: &mut Vec<u8>, name: &str, value: Option<&Vec<u8>>) {
    if !parts.is_empty() {
        parts.push(b' ');
    }
    response::astring(parts, name, true);
    parts.push(b' ');
    match value {
        None => parts.extend_from_slice(b"NIL"),
        Some(v) if v.contains(&0) => {
            parts.push(b'~');
            response::literal(parts, v);
        }
        Some(v) => response::string(parts, v, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_picks_descendants() {
        use MetadataDepth::*;
        assert!(wanted("/private/comment", "/private/comment", Zero));
        assert!(!wanted("/private/comment/x", "/private/comment", Zero));
        assert!(wanted("/private/comment/x", "/private/comment", One));
        assert!(!wanted("/private/comment/x/y", "/private/comment", One));
        assert!(wanted("/private/comment/x/y", "/private/comment", Infinity));
        assert!(!wanted("/private/commentary", "/private/comment", Infinity));
    }
}
