//! Shared mailboxes (RFC 4314 ACL, RFC 2342 NAMESPACE): an owner grants
//! rights on a mailbox with SETACL; the grantee finds it in the other
//! users' namespace as `Shared/<owner>/<name>`, and every command checks
//! the right it needs (§4): `l` to see it, `r` to SELECT, STATUS and
//! FETCH, `s` `w` `t` to change \Seen, other flags and \Deleted, `i` to
//! APPEND and COPY into it, `e` to EXPUNGE, `a` to read and change the
//! ACL. Mailboxes in the namespace are created, renamed and deleted by
//! their owner alone.

use store::{ANYONE, AddressKind, MailboxRecord};

use super::{ImapSession, Outcome};
use crate::error::ImapError;
use crate::response;
use crate::rights::{ALL, Rights};

/// The other users' namespace (RFC 2342 §5).
pub const SHARED_PREFIX: &str = "Shared";

/// `Shared/owner/name` → (owner, name), INBOX in capitals.
pub fn shared_path(name: &str) -> Option<(&str, String)> {
    let rest = name.strip_prefix(SHARED_PREFIX)?.strip_prefix('/')?;
    let (owner, mailbox) = rest.split_once('/')?;
    let mailbox = match mailbox.split_once('/') {
        Some((first, tail)) if first.eq_ignore_ascii_case("INBOX") => format!("INBOX/{tail}"),
        _ if mailbox.eq_ignore_ascii_case("INBOX") => "INBOX".into(),
        _ => mailbox.to_string(),
    };
    Some((owner, mailbox))
}

/// Whether a name lies in the shared namespace (or is its root).
pub fn in_shared_namespace(name: &str) -> bool {
    name == SHARED_PREFIX || name.starts_with("Shared/")
}

impl ImapSession {
    fn my_address(&self) -> Result<&str, ImapError> {
        Ok(&self.state.account().ok_or(ImapError::WrongState)?.address)
    }

    /// A mailbox by the client's name, with this user's rights on it: all
    /// of them on their own; on another's, what was granted (no `l` and
    /// no `r`: it does not exist, RFC 4314 §6).
    pub(super) async fn find_mailbox_rights(
        &self,
        raw: &str,
    ) -> Result<(MailboxRecord, Rights), ImapError> {
        let account = self.state.account().ok_or(ImapError::WrongState)?.id;
        let name = self.mailbox_name(raw)?;
        let Some((owner, rest)) = shared_path(&name) else {
            let m = self
                .store()
                .mailbox(account, &name)
                .await?
                .ok_or(ImapError::NoSuchMailbox)?;
            return Ok((m, Rights::all()));
        };
        let owner_key = message::Mailbox::parse(owner)
            .map(|m| m.key())
            .map_err(|_| ImapError::NoSuchMailbox)?;
        let AddressKind::Account(owner) = self.store().lookup_address(&owner_key).await? else {
            return Err(ImapError::NoSuchMailbox);
        };
        if owner.id == account {
            return Err(ImapError::NoSuchMailbox);
        }
        let mut m = self
            .store()
            .mailbox(owner.id, &rest)
            .await?
            .ok_or(ImapError::NoSuchMailbox)?;
        let rights = self.rights_on(&m).await?;
        if !rights.has('l') && !rights.has('r') {
            return Err(ImapError::NoSuchMailbox);
        }
        m.name = format!("{SHARED_PREFIX}/{}/{}", owner.address, m.name);
        Ok((m, rights))
    }

    /// This user's rights on a mailbox.
    pub(super) async fn rights_on(&self, m: &MailboxRecord) -> Result<Rights, ImapError> {
        if m.account == self.account_id()? {
            return Ok(Rights::all());
        }
        let granted = self.store().rights_of(m.id, self.my_address()?).await?;
        Ok(Rights::parse(&granted).unwrap_or_default())
    }

    /// A mailbox on which this user holds `right`.
    pub(super) async fn mailbox_with(
        &self,
        raw: &str,
        right: char,
    ) -> Result<MailboxRecord, ImapError> {
        let (m, rights) = self.find_mailbox_rights(raw).await?;
        require(&rights, right)?;
        Ok(m)
    }

    /// The mailboxes others shared with this user, named as this user sees
    /// them, subscribed (they appear in LSUB without asking).
    pub(super) async fn shared_mailboxes(&self) -> Result<Vec<(MailboxRecord, Rights)>, ImapError> {
        let shared = self.store().shared_with(self.my_address()?).await?;
        Ok(shared
            .into_iter()
            .filter_map(|s| {
                let rights = Rights::parse(&s.rights)?;
                (rights.has('l') || rights.has('r')).then(|| {
                    let mut m = s.mailbox;
                    m.name = format!("{SHARED_PREFIX}/{}/{}", s.owner, m.name);
                    m.subscribed = true;
                    (m, rights)
                })
            })
            .collect())
    }

    /// The grantee a client named: an account of this server, or anyone.
    async fn grantee(&self, identifier: &str) -> Result<String, ImapError> {
        if identifier.eq_ignore_ascii_case(ANYONE) {
            return Ok(ANYONE.into());
        }
        if identifier.starts_with('-') {
            return Err(ImapError::Cannot("negative rights are not supported"));
        }
        let key = message::Mailbox::parse(identifier)
            .map(|m| m.key())
            .map_err(|_| ImapError::Cannot("no such user"))?;
        match self.store().lookup_address(&key).await? {
            AddressKind::Account(a) => Ok(a.address),
            _ => Err(ImapError::Cannot("no such user")),
        }
    }

    fn acl_name(&self, m: &MailboxRecord) -> Vec<u8> {
        let mut line = Vec::new();
        response::astring(&mut line, &self.display_name(&m.name), self.utf8_names());
        line
    }

    async fn owner_of(&self, m: &MailboxRecord) -> Result<String, ImapError> {
        if m.account == self.account_id()? {
            return Ok(self.my_address()?.to_string());
        }
        Ok(shared_path(&m.name)
            .map(|(owner, _)| owner.to_string())
            .unwrap_or_default())
    }

    /// `* ACL mailbox owner lrswipkxtea grantee rights ...` (§3.6).
    pub(super) async fn get_acl(&mut self, raw: &str, out: &mut Vec<u8>) -> Outcome {
        let m = self.mailbox_with(raw, 'a').await?;
        let mut line = b"* ACL ".to_vec();
        line.extend_from_slice(&self.acl_name(&m));
        let owner = self.owner_of(&m).await?;
        line.push(b' ');
        response::astring(&mut line, &owner, true);
        line.extend_from_slice(format!(" {ALL}").as_bytes());
        for (grantee, rights) in self.store().acl(m.id).await? {
            line.push(b' ');
            response::astring(&mut line, &grantee, true);
            line.push(b' ');
            response::astring(&mut line, &rights, false);
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        Ok("GETACL completed".into())
    }

    pub(super) async fn set_acl(&mut self, raw: &str, identifier: &str, change: &str) -> Outcome {
        let m = self.mailbox_with(raw, 'a').await?;
        let grantee = self.grantee(identifier).await?;
        if grantee == self.owner_of(&m).await? {
            return Err(ImapError::Cannot("the owner's rights cannot change"));
        }
        let current = self
            .store()
            .acl(m.id)
            .await?
            .into_iter()
            .find(|(g, _)| *g == grantee)
            .and_then(|(_, r)| Rights::parse(&r))
            .unwrap_or_default();
        let rights = current
            .modified(change)
            .ok_or_else(|| ImapError::Syntax(format!("unknown right in {change:?}")))?;
        self.store()
            .set_rights(m.id, &grantee, rights.as_str())
            .await?;
        Ok("SETACL completed".into())
    }

    pub(super) async fn delete_acl(&mut self, raw: &str, identifier: &str) -> Outcome {
        let m = self.mailbox_with(raw, 'a').await?;
        let grantee = self.grantee(identifier).await?;
        self.store().set_rights(m.id, &grantee, "").await?;
        Ok("DELETEACL completed".into())
    }

    /// `* LISTRIGHTS mailbox id required optional...` (§3.7): the owner
    /// always has every right; others none for sure, each one grantable.
    pub(super) async fn list_rights(
        &mut self,
        raw: &str,
        identifier: &str,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let m = self.mailbox_with(raw, 'a').await?;
        let grantee = self.grantee(identifier).await?;
        let mut line = b"* LISTRIGHTS ".to_vec();
        line.extend_from_slice(&self.acl_name(&m));
        line.push(b' ');
        response::astring(&mut line, identifier, true);
        if grantee == self.owner_of(&m).await? {
            line.extend_from_slice(format!(" {ALL}").as_bytes());
        } else {
            line.extend_from_slice(b" \"\"");
            for c in ALL.chars() {
                line.extend_from_slice(format!(" {c}").as_bytes());
            }
        }
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
        Ok("LISTRIGHTS completed".into())
    }

    /// `* MYRIGHTS mailbox rights` (§3.8).
    pub(super) async fn my_rights(&mut self, raw: &str, out: &mut Vec<u8>) -> Outcome {
        let (m, rights) = self.find_mailbox_rights(raw).await?;
        self.my_rights_line(&m, &rights, out);
        Ok("MYRIGHTS completed".into())
    }

    pub(super) fn my_rights_line(&self, m: &MailboxRecord, rights: &Rights, out: &mut Vec<u8>) {
        let mut line = b"* MYRIGHTS ".to_vec();
        line.extend_from_slice(&self.acl_name(m));
        line.push(b' ');
        response::astring(&mut line, rights.as_str(), false);
        line.extend_from_slice(b"\r\n");
        out.extend_from_slice(&line);
    }
}

/// `NO [NOPERM]` unless `rights` has `right`.
pub(super) fn require(rights: &Rights, right: char) -> Result<(), ImapError> {
    if rights.has(right) {
        Ok(())
    } else {
        Err(ImapError::NoRight(right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_paths() {
        assert_eq!(
            shared_path("Shared/bob@a.test/Projects/2026"),
            Some(("bob@a.test", "Projects/2026".to_string()))
        );
        assert_eq!(
            shared_path("Shared/bob@a.test/inbox"),
            Some(("bob@a.test", "INBOX".to_string()))
        );
        assert_eq!(shared_path("Shared/bob@a.test"), None);
        assert_eq!(shared_path("Sharedx/a/b"), None);
        assert!(in_shared_namespace("Shared"));
        assert!(in_shared_namespace("Shared/x"));
        assert!(!in_shared_namespace("Shares"));
    }
}
