//! IMAP commands (RFC 9051 §6 and the extensions Tern offers).

use store::FlagOp;

use super::{
    FetchItem, NotifyGroup, PResult, Parser, SearchKey, SequenceSet, SortKey, ThreadAlgorithm,
    parse_fetch, parse_notify, parse_search, parse_sort, parse_thread,
};

/// RFC 7162 §3.2.5: `QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uid_validity: u32,
    pub modseq: u64,
    pub known_uids: Option<SequenceSet>,
}

/// LIST return options (RFC 5258 §3, RFC 5819, RFC 6154).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<String>>,
    /// RFC 8440.
    pub myrights: bool,
}

/// LIST selection options (RFC 5258 §3.1, RFC 6154 §5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSelect {
    pub subscribed: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    Id,
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Login {
        user: String,
        password: String,
    },
    Enable(Vec<String>),
    Select {
        mailbox: String,
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    },
    Create(String),
    Delete(String),
    Rename(String, String),
    Subscribe(String),
    Unsubscribe(String),
    List {
        select: ListSelect,
        reference: String,
        patterns: Vec<String>,
        returns: ListReturn,
        lsub: bool,
    },
    Namespace,
    Status {
        mailbox: String,
        items: Vec<String>,
    },
    Append {
        mailbox: String,
        flags: Vec<String>,
        date: Option<i64>,
        data: Vec<u8>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SequenceSet>,
    },
    Search {
        uid: bool,
        returns: Option<Vec<String>>,
        key: SearchKey,
    },
    Sort {
        uid: bool,
        returns: Option<Vec<String>>,
        criteria: Vec<SortKey>,
        key: SearchKey,
    },
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        items: Vec<FetchItem>,
        changed_since: Option<u64>,
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        unchanged_since: Option<u64>,
        op: FlagOp,
        silent: bool,
        flags: Vec<String>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
        remove: bool,
    },
    /// RFC 5465: None for NOTIFY NONE; whether STATUS is asked, the groups.
    Notify(Option<(bool, Vec<NotifyGroup>)>),
    /// RFC 4314 §3.
    GetAcl(String),
    SetAcl {
        mailbox: String,
        identifier: String,
        rights: String,
    },
    DeleteAcl {
        mailbox: String,
        identifier: String,
    },
    ListRights {
        mailbox: String,
        identifier: String,
    },
    MyRights(String),
    /// RFC 9208 §4.1.
    GetQuota(String),
    GetQuotaRoot(String),
    SetQuota(String),
    /// RFC 4978: the algorithm's name.
    Compress(String),
    /// RFC 5464 §4.2; the mailbox is "" for server entries.
    GetMetadata {
        mailbox: String,
        entries: Vec<String>,
        max_size: Option<u64>,
        depth: MetadataDepth,
    },
    /// RFC 5464 §4.3: entries with a value, or NIL to remove them.
    SetMetadata {
        mailbox: String,
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
}

/// GETMETADATA's DEPTH option (RFC 5464 §4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetadataDepth {
    #[default]
    Zero,
    One,
    Infinity,
}

/// A command that did not parse: the tag if one was read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

/// Parse one complete command (with its literals inline).
pub fn parse_command(input: &[u8]) -> Result<(String, Command), ParseError> {
    let mut p = Parser::new(input);
    let tag = p
        .tag()
        .map_err(|message| ParseError { tag: None, message })?;
    let cmd = (|| {
        p.sp()?;
        let name = p.atom()?.to_ascii_uppercase();
        let cmd = command(&mut p, &name)?;
        p.end()?;
        Ok(cmd)
    })();
    cmd.map(|c| (tag.clone(), c)).map_err(|message| ParseError {
        tag: Some(tag),
        message,
    })
}

fn mailbox(p: &mut Parser<'_>) -> PResult<String> {
    p.astring_utf8()
}

fn command(p: &mut Parser<'_>, name: &str) -> PResult<Command> {
    Ok(match name {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "LOGOUT" => Command::Logout,
        "STARTTLS" => Command::StartTls,
        "ID" => {
            // RFC 2971: NIL or a list of field/value pairs; Tern reads and ignores them.
            p.sp()?;
            if !p.eat_word("NIL") {
                p.list(true, |p| {
                    let s = p.astring_or_nil()?;
                    Ok(s)
                })?;
            }
            Command::Id
        }
        "AUTHENTICATE" => {
            p.sp()?;
            let mechanism = p.atom()?;
            let initial = if p.eat(b' ') {
                // RFC 4959 SASL-IR: base64, or "=" for empty.
                let raw = p.atom_or_equals()?;
                Some(raw.into_bytes())
            } else {
                None
            };
            Command::Authenticate { mechanism, initial }
        }
        "LOGIN" => {
            p.sp()?;
            let user = p.astring_utf8()?;
            p.sp()?;
            let password = p.astring_utf8()?;
            Command::Login { user, password }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while p.eat(b' ') {
                caps.push(p.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return Err("ENABLE needs a capability".into());
            }
            Command::Enable(caps)
        }
        "SELECT" | "EXAMINE" => {
            p.sp()?;
            let mailbox = mailbox(p)?;
            let mut condstore = false;
            let mut qresync = None;
            if p.eat(b' ') {
                p.list(false, |p| {
                    if p.eat_word("CONDSTORE") {
                        condstore = true;
                    } else if p.eat_word("QRESYNC") {
                        p.sp()?;
                        qresync = Some(qresync_params(p)?);
                    } else {
                        return Err("unknown SELECT parameter".into());
                    }
                    Ok(())
                })?;
            }
            Command::Select {
                mailbox,
                read_only: name == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" => {
            p.sp()?;
            let m = mailbox(p)?;
            if p.eat(b' ') {
                // RFC 6154 §3: (USE (\Sent)); accepted, the special uses are fixed.
                p.list(false, |p| {
                    p.atom()?;
                    p.sp()?;
                    p.flag_list()
                })?;
            }
            Command::Create(m)
        }
        "DELETE" => Command::Delete(one_mailbox(p)?),
        "SUBSCRIBE" => Command::Subscribe(one_mailbox(p)?),
        "UNSUBSCRIBE" => Command::Unsubscribe(one_mailbox(p)?),
        "RENAME" => {
            p.sp()?;
            let from = mailbox(p)?;
            p.sp()?;
            Command::Rename(from, mailbox(p)?)
        }
        "LIST" | "LSUB" => list(p, name == "LSUB")?,
        "NAMESPACE" => Command::Namespace,
        "STATUS" => {
            p.sp()?;
            let mailbox = mailbox(p)?;
            p.sp()?;
            let items = p.list(false, |p| p.atom().map(|a| a.to_ascii_uppercase()))?;
            Command::Status { mailbox, items }
        }
        "APPEND" => {
            p.sp()?;
            let mailbox = mailbox(p)?;
            p.sp()?;
            let mut flags = Vec::new();
            let mut date = None;
            if p.peek() == Some(b'(') {
                flags = p.flag_list()?;
                p.sp()?;
            }
            if p.peek() == Some(b'"') {
                date = Some(p.date_time()?);
                p.sp()?;
            }
            // RFC 6855 §4: UTF8 (literal8) for a message with UTF-8 headers.
            let data = if p.eat_word("UTF8") {
                p.sp()?;
                p.expect(b'(')?;
                let data = p.string()?;
                p.expect(b')')?;
                data
            } else {
                p.string()?
            };
            Command::Append {
                mailbox,
                flags,
                date,
                data,
            }
        }
        "IDLE" => Command::Idle,
        "GETQUOTA" => {
            p.sp()?;
            Command::GetQuota(p.astring_utf8()?)
        }
        "GETQUOTAROOT" => Command::GetQuotaRoot(one_mailbox(p)?),
        "GETACL" => Command::GetAcl(one_mailbox(p)?),
        "NOTIFY" => Command::Notify(parse_notify(p)?),
        "MYRIGHTS" => Command::MyRights(one_mailbox(p)?),
        "SETACL" => {
            let mailbox = one_mailbox(p)?;
            p.sp()?;
            let identifier = p.astring_utf8()?;
            p.sp()?;
            let rights = p.astring_utf8()?;
            Command::SetAcl {
                mailbox,
                identifier,
                rights,
            }
        }
        "DELETEACL" | "LISTRIGHTS" => {
            let mailbox = one_mailbox(p)?;
            p.sp()?;
            let identifier = p.astring_utf8()?;
            if name == "DELETEACL" {
                Command::DeleteAcl {
                    mailbox,
                    identifier,
                }
            } else {
                Command::ListRights {
                    mailbox,
                    identifier,
                }
            }
        }
        "SETQUOTA" => {
            p.sp()?;
            let root = p.astring_utf8()?;
            p.sp()?;
            p.list(false, |p| {
                p.atom()?;
                p.sp()?;
                p.number()
            })?;
            Command::SetQuota(root)
        }
        "COMPRESS" => {
            p.sp()?;
            Command::Compress(p.atom()?.to_ascii_uppercase())
        }
        "GETMETADATA" => get_metadata(p)?,
        "SETMETADATA" => {
            p.sp()?;
            let mailbox = mailbox(p)?;
            p.sp()?;
            let mut entries = Vec::new();
            p.list(false, |p| {
                let name = metadata_entry(p)?;
                p.sp()?;
                let value = if p.eat_word("NIL") {
                    None
                } else {
                    Some(p.string()?)
                };
                entries.push((name, value));
                Ok(())
            })?;
            Command::SetMetadata { mailbox, entries }
        }
        "CHECK" => Command::Check,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "EXPUNGE" => Command::Expunge { uids: None },
        "SEARCH" => search(p, false)?,
        "SORT" => sort(p, false)?,
        "THREAD" => thread(p, false)?,
        "FETCH" => fetch(p, false)?,
        "STORE" => store(p, false)?,
        "COPY" => copy(p, false, false)?,
        "MOVE" => copy(p, false, true)?,
        "UID" => {
            p.sp()?;
            match p.atom()?.to_ascii_uppercase().as_str() {
                "FETCH" => fetch(p, true)?,
                "STORE" => store(p, true)?,
                "SEARCH" => search(p, true)?,
                "SORT" => sort(p, true)?,
                "THREAD" => thread(p, true)?,
                "COPY" => copy(p, true, false)?,
                "MOVE" => copy(p, true, true)?,
                "EXPUNGE" => {
                    p.sp()?;
                    Command::Expunge {
                        uids: Some(p.sequence_set()?),
                    }
                }
                _ => return Err("unknown UID command".into()),
            }
        }
        _ => return Err("unknown command".into()),
    })
}

/// `GETMETADATA [(MAXSIZE n DEPTH d)] mailbox (entry ...) | entry` (RFC 5464 §4.2).
fn get_metadata(p: &mut Parser<'_>) -> PResult<Command> {
    p.sp()?;
    let mut max_size = None;
    let mut depth = MetadataDepth::Zero;
    if p.peek() == Some(b'(') {
        p.list(false, |p| {
            match p.atom()?.to_ascii_uppercase().as_str() {
                "MAXSIZE" => {
                    p.sp()?;
                    max_size = Some(p.number()?);
                }
                "DEPTH" => {
                    p.sp()?;
                    depth = match p.atom()?.to_ascii_lowercase().as_str() {
                        "0" => MetadataDepth::Zero,
                        "1" => MetadataDepth::One,
                        "infinity" => MetadataDepth::Infinity,
                        _ => return Err("DEPTH is 0, 1 or infinity".into()),
                    };
                }
                _ => return Err("unknown GETMETADATA option".into()),
            }
            Ok(())
        })?;
        p.sp()?;
    }
    let mailbox = mailbox(p)?;
    p.sp()?;
    let entries = if p.peek() == Some(b'(') {
        p.list(false, metadata_entry)?
    } else {
        vec![metadata_entry(p)?]
    };
    Ok(Command::GetMetadata {
        mailbox,
        entries,
        max_size,
        depth,
    })
}

/// An entry name: `/private/...` or `/shared/...`, compared without case
/// (RFC 5464 §3.2).
fn metadata_entry(p: &mut Parser<'_>) -> PResult<String> {
    let name = p.astring_utf8()?.to_ascii_lowercase();
    let valid = (name.starts_with("/private/") || name.starts_with("/shared/"))
        && !name.ends_with('/')
        && !name.contains("//")
        && !name.contains(['*', '%'])
        && name.chars().all(|c| !c.is_control());
    if !valid {
        return Err(format!("bad metadata entry name {name:?}"));
    }
    Ok(name)
}

fn one_mailbox(p: &mut Parser<'_>) -> PResult<String> {
    p.sp()?;
    mailbox(p)
}

fn qresync_params(p: &mut Parser<'_>) -> PResult<Qresync> {
    p.expect(b'(')?;
    p.enter()?;
    let uid_validity = p.nz_number()?;
    p.sp()?;
    let modseq = p.number()?;
    let mut known_uids = None;
    if p.eat(b' ') {
        if p.peek() != Some(b'(') {
            known_uids = Some(p.sequence_set()?);
            p.eat(b' ');
        }
        if p.peek() == Some(b'(') {
            // The sequence-match data is an optimisation; it is read and not needed.
            p.list(false, |p| p.sequence_set())?;
        }
    }
    p.expect(b')')?;
    p.leave();
    Ok(Qresync {
        uid_validity,
        modseq,
        known_uids,
    })
}

fn list(p: &mut Parser<'_>, lsub: bool) -> PResult<Command> {
    p.sp()?;
    let mut select = ListSelect::default();
    if !lsub && p.peek() == Some(b'(') {
        p.list(true, |p| {
            let opt = p.atom()?.to_ascii_uppercase();
            match opt.as_str() {
                "SUBSCRIBED" => select.subscribed = true,
                "RECURSIVEMATCH" => select.recursive_match = true,
                "SPECIAL-USE" => select.special_use = true,
                "REMOTE" => {}
                _ => return Err(format!("unknown LIST selection option {opt}")),
            }
            Ok(())
        })?;
        p.sp()?;
    }
    let reference = mailbox(p)?;
    p.sp()?;
    let patterns = if !lsub && p.peek() == Some(b'(') {
        p.list(false, |p| p.list_mailbox())?
    } else {
        vec![p.list_mailbox()?]
    };
    let mut returns = ListReturn::default();
    if !lsub && p.eat(b' ') {
        if !p.eat_word("RETURN") {
            return Err("expected RETURN".into());
        }
        p.sp()?;
        p.list(true, |p| {
            let opt = p.atom()?.to_ascii_uppercase();
            match opt.as_str() {
                "SUBSCRIBED" => returns.subscribed = true,
                "CHILDREN" => returns.children = true,
                "SPECIAL-USE" => returns.special_use = true,
                "MYRIGHTS" => returns.myrights = true,
                "STATUS" => {
                    p.sp()?;
                    returns.status =
                        Some(p.list(false, |p| p.atom().map(|a| a.to_ascii_uppercase()))?);
                }
                _ => return Err(format!("unknown LIST return option {opt}")),
            }
            Ok(())
        })?;
    }
    if select.recursive_match && !(select.subscribed) {
        return Err("RECURSIVEMATCH needs another selection option".into());
    }
    Ok(Command::List {
        select,
        reference,
        patterns,
        returns,
        lsub,
    })
}

fn search(p: &mut Parser<'_>, uid: bool) -> PResult<Command> {
    p.sp()?;
    let mut returns = None;
    if p.eat_word("RETURN") {
        p.sp()?;
        returns = Some(p.list(true, |p| p.atom().map(|a| a.to_ascii_uppercase()))?);
        p.sp()?;
    }
    if p.eat_word("CHARSET") {
        p.sp()?;
        let charset = p.astring_utf8()?;
        // RFC 9051 §6.4.4: UTF-8 must be supported, US-ASCII is a subset of it.
        if !charset.eq_ignore_ascii_case("UTF-8") && !charset.eq_ignore_ascii_case("US-ASCII") {
            return Err(format!("BADCHARSET:{charset}"));
        }
        p.sp()?;
    }
    let key = parse_search(p)?;
    Ok(Command::Search { uid, returns, key })
}

fn sort(p: &mut Parser<'_>, uid: bool) -> PResult<Command> {
    p.sp()?;
    let (returns, criteria, key) = parse_sort(p)?;
    Ok(Command::Sort {
        uid,
        returns,
        criteria,
        key,
    })
}

fn thread(p: &mut Parser<'_>, uid: bool) -> PResult<Command> {
    p.sp()?;
    let (algorithm, key) = parse_thread(p)?;
    Ok(Command::Thread {
        uid,
        algorithm,
        key,
    })
}

fn fetch(p: &mut Parser<'_>, uid: bool) -> PResult<Command> {
    p.sp()?;
    let set = p.sequence_set()?;
    p.sp()?;
    let items = parse_fetch(p)?;
    let mut changed_since = None;
    let mut vanished = false;
    if p.eat(b' ') {
        p.list(false, |p| {
            if p.eat_word("CHANGEDSINCE") {
                p.sp()?;
                changed_since = Some(p.number()?);
            } else if p.eat_word("VANISHED") {
                vanished = true;
            } else {
                return Err("unknown FETCH modifier".into());
            }
            Ok(())
        })?;
    }
    if vanished && (!uid || changed_since.is_none()) {
        return Err("VANISHED needs UID FETCH with CHANGEDSINCE (RFC 7162 §3.2.6)".into());
    }
    Ok(Command::Fetch {
        uid,
        set,
        items,
        changed_since,
        vanished,
    })
}

fn store(p: &mut Parser<'_>, uid: bool) -> PResult<Command> {
    p.sp()?;
    let set = p.sequence_set()?;
    p.sp()?;
    let mut unchanged_since = None;
    if p.peek() == Some(b'(') {
        p.list(false, |p| {
            if !p.eat_word("UNCHANGEDSINCE") {
                return Err("unknown STORE modifier".into());
            }
            p.sp()?;
            unchanged_since = Some(p.number()?);
            Ok(())
        })?;
        p.sp()?;
    }
    let op = if p.eat(b'+') {
        FlagOp::Add
    } else if p.eat(b'-') {
        FlagOp::Remove
    } else {
        FlagOp::Replace
    };
    let item = p.atom()?.to_ascii_uppercase();
    let silent = match item.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return Err("expected FLAGS or FLAGS.SILENT".into()),
    };
    p.sp()?;
    let flags = if p.peek() == Some(b'(') {
        p.flag_list()?
    } else {
        let mut flags = vec![p.flag()?];
        while p.eat(b' ') {
            flags.push(p.flag()?);
        }
        flags
    };
    Ok(Command::Store {
        uid,
        set,
        unchanged_since,
        op,
        silent,
        flags,
    })
}

fn copy(p: &mut Parser<'_>, uid: bool, remove: bool) -> PResult<Command> {
    p.sp()?;
    let set = p.sequence_set()?;
    p.sp()?;
    Ok(Command::Copy {
        uid,
        set,
        mailbox: mailbox(p)?,
        remove,
    })
}

impl Parser<'_> {
    /// An astring, or NIL (as an empty string).
    pub fn astring_or_nil(&mut self) -> PResult<String> {
        if self.eat_word("NIL") {
            Ok(String::new())
        } else {
            self.astring_utf8()
        }
    }

    /// A SASL initial response: base64 characters, or "=".
    fn atom_or_equals(&mut self) -> PResult<String> {
        if self.eat(b'=') {
            return Ok("=".into());
        }
        self.atom()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Command {
        parse_command(format!("{s}\r\n").as_bytes())
            .map(|(_, c)| c)
            .unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    #[test]
    fn basic_commands() {
        assert_eq!(
            cmd("a1 LOGIN alice \"pass word\""),
            Command::Login {
                user: "alice".into(),
                password: "pass word".into()
            }
        );
        assert_eq!(
            cmd("a LOGIN {5}\r\nalice {2+}\r\npw"),
            Command::Login {
                user: "alice".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            cmd("a select inbox"),
            Command::Select {
                mailbox: "inbox".into(),
                read_only: false,
                condstore: false,
                qresync: None
            }
        );
        assert!(matches!(
            cmd("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
            Command::Select {
                qresync: Some(Qresync {
                    uid_validity: 67890007,
                    ..
                }),
                ..
            }
        ));
        assert_eq!(cmd("a RENAME a b"), Command::Rename("a".into(), "b".into()));
        assert!(matches!(
            cmd("a UID EXPUNGE 1:3"),
            Command::Expunge { uids: Some(_) }
        ));
        assert!(matches!(
            cmd("a ID (\"name\" \"mutt\" \"version\" NIL)"),
            Command::Id
        ));
        assert!(matches!(
            cmd("a AUTHENTICATE PLAIN AGEAYg=="),
            Command::Authenticate {
                initial: Some(_),
                ..
            }
        ));
        assert!(
            matches!(cmd("a ENABLE IMAP4rev2 CONDSTORE"), Command::Enable(c) if c == ["IMAP4REV2", "CONDSTORE"])
        );
    }

    #[test]
    fn list_forms() {
        assert!(
            matches!(cmd("a LIST \"\" *"), Command::List { ref patterns, .. } if patterns == &["*"])
        );
        let c = cmd(
            "a LIST (SUBSCRIBED) \"\" (\"INBOX\" \"Sent/%\") RETURN (CHILDREN STATUS (MESSAGES UNSEEN))",
        );
        let Command::List {
            select,
            patterns,
            returns,
            ..
        } = c
        else {
            panic!()
        };
        assert!(select.subscribed);
        assert_eq!(patterns, ["INBOX", "Sent/%"]);
        assert!(returns.children);
        assert_eq!(returns.status.unwrap(), ["MESSAGES", "UNSEEN"]);
        assert!(matches!(
            cmd("a LSUB \"\" *"),
            Command::List { lsub: true, .. }
        ));
    }

    #[test]
    fn store_append_copy() {
        assert!(
            matches!(cmd("a STORE 1:* +FLAGS.SILENT (\\Seen $Junk)"), Command::Store { op: FlagOp::Add, silent: true, ref flags, .. } if flags == &["\\Seen", "$Junk"])
        );
        assert!(matches!(
            cmd("a UID STORE 5 (UNCHANGEDSINCE 12) -FLAGS \\Deleted"),
            Command::Store {
                uid: true,
                unchanged_since: Some(12),
                op: FlagOp::Remove,
                ..
            }
        ));
        let c = cmd("a APPEND Sent (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nhello");
        assert!(
            matches!(c, Command::Append { ref flags, date: Some(_), ref data, .. } if flags == &["\\Seen"] && data == b"hello")
        );
        assert!(matches!(
            cmd("a UID MOVE 1:5 Trash"),
            Command::Copy {
                uid: true,
                remove: true,
                ..
            }
        ));
    }

    #[test]
    fn errors_keep_the_tag() {
        let e = parse_command(b"x7 FROB\r\n").unwrap_err();
        assert_eq!(e.tag.as_deref(), Some("x7"));
        assert!(parse_command(b"\r\n").unwrap_err().tag.is_none());
        assert!(parse_command(b"a LOGIN\r\n").is_err());
        assert!(parse_command(b"a NOOP extra\r\n").is_err());
        let e = parse_command(b"a SEARCH CHARSET KOI8-R ALL\r\n").unwrap_err();
        assert!(e.message.starts_with("BADCHARSET"));
    }
}
