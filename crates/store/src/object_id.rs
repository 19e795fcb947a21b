//! The identities IMAP OBJECTID (RFC 8474) and JMAP (RFC 8620 §1.2) show,
//! decided once here: each is a letter and a number the store never hands
//! out twice, so an id never names another object later.
//!
//! - MAILBOXID `M<uidvalidity>`: UIDVALIDITY values are taken from one
//!   server-wide counter that only goes up, and a mailbox keeps its value
//!   when renamed (RFC 8474 §4.1: the id survives RENAME).
//! - EMAILID `E<blob id>`: the stored content, the same in every mailbox
//!   a message is copied or moved to (§5.1); blob ids are never reused
//!   (migration 13).
//! - THREADID `T<thread id>`: the blob id of the first message of the
//!   conversation, found through Message-ID, In-Reply-To and References
//!   (§5.2).

pub fn mailbox(uid_validity: u32) -> String {
    format!("M{uid_validity}")
}

pub fn email(blob: i64) -> String {
    format!("E{blob}")
}

pub fn thread(thread: i64) -> String {
    format!("T{thread}")
}

/// The number in an id of this kind, if it is one.
pub fn parse(id: &str, kind: char) -> Option<i64> {
    let rest = id.strip_prefix(kind)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with('0') {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        assert_eq!(parse(&email(42), 'E'), Some(42));
        assert_eq!(parse(&thread(7), 'T'), Some(7));
        assert_eq!(parse(&mailbox(1_700_000_000), 'M'), Some(1_700_000_000));
        assert_eq!(parse("E042", 'E'), None);
        assert_eq!(parse("T42", 'E'), None);
        assert_eq!(parse("E", 'E'), None);
        assert_eq!(parse("E4x", 'E'), None);
    }
}
