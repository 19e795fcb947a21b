//! SEARCH keys (RFC 9051 §6.4.4, RFC 7162 MODSEQ).

use super::{PResult, Parser, SequenceSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    Flag(&'static str, bool),
    Keyword(String, bool),
    New,
    Old,
    Recent,
    /// A header contains the text (From, To, Cc, Bcc, Subject, or any by HEADER).
    Header(String, String),
    Body(String),
    Text(String),
    /// Internal date, by day (days since 1970): BEFORE, ON, SINCE.
    Before(i64),
    On(i64),
    Since(i64),
    /// Date: header, by day.
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u64),
    Smaller(u64),
    Uid(SequenceSet),
    Seq(SequenceSet),
    ModSeq(u64),
    /// When the message was put in this mailbox, by day (RFC 8514 §4).
    SavedBefore(i64),
    SavedOn(i64),
    SavedSince(i64),
    SaveDateSupported,
    /// RFC 8474 §6.
    EmailId(String),
    ThreadId(String),
}

/// One or more keys (an implicit AND).
pub fn parse_search(p: &mut Parser<'_>) -> PResult<SearchKey> {
    let mut keys = vec![key(p)?];
    while p.eat(b' ') {
        keys.push(key(p)?);
    }
    Ok(if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    })
}

fn text(p: &mut Parser<'_>) -> PResult<String> {
    p.sp()?;
    p.astring_utf8()
}

fn key(p: &mut Parser<'_>) -> PResult<SearchKey> {
    use SearchKey::*;
    if p.peek() == Some(b'(') {
        let keys = p.list(false, |p| {
            let mut keys = vec![key(p)?];
            while p.peek() == Some(b' ') {
                p.sp()?;
                keys.push(key(p)?);
            }
            Ok(keys)
        })?;
        return Ok(And(keys.into_iter().flatten().collect()));
    }
    if p.peek()
        .is_some_and(|b| b.is_ascii_digit() || b == b'*' || b == b'$')
    {
        return Ok(Seq(p.sequence_set()?));
    }
    let word = p.atom()?.to_ascii_uppercase();
    Ok(match word.as_str() {
        "ALL" => All,
        "ANSWERED" => Flag("\\Answered", true),
        "UNANSWERED" => Flag("\\Answered", false),
        "DELETED" => Flag("\\Deleted", true),
        "UNDELETED" => Flag("\\Deleted", false),
        "DRAFT" => Flag("\\Draft", true),
        "UNDRAFT" => Flag("\\Draft", false),
        "FLAGGED" => Flag("\\Flagged", true),
        "UNFLAGGED" => Flag("\\Flagged", false),
        "SEEN" => Flag("\\Seen", true),
        "UNSEEN" => Flag("\\Seen", false),
        "NEW" => New,
        "OLD" => Old,
        "RECENT" => Recent,
        "KEYWORD" => {
            p.sp()?;
            Keyword(p.atom()?, true)
        }
        "UNKEYWORD" => {
            p.sp()?;
            Keyword(p.atom()?, false)
        }
        "BCC" | "CC" | "FROM" | "SUBJECT" | "TO" => Header(word.clone(), text(p)?),
        "HEADER" => {
            let name = text(p)?;
            Header(name, text(p)?)
        }
        "BODY" => Body(text(p)?),
        "TEXT" => Text(text(p)?),
        "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" | "SAVEDBEFORE"
        | "SAVEDON" | "SAVEDSINCE" => {
            p.sp()?;
            let d = p.date()?;
            match word.as_str() {
                "BEFORE" => Before(d),
                "ON" => On(d),
                "SINCE" => Since(d),
                "SENTBEFORE" => SentBefore(d),
                "SENTON" => SentOn(d),
                "SENTSINCE" => SentSince(d),
                "SAVEDBEFORE" => SavedBefore(d),
                "SAVEDON" => SavedOn(d),
                _ => SavedSince(d),
            }
        }
        "SAVEDATESUPPORTED" => SaveDateSupported,
        "EMAILID" => {
            p.sp()?;
            EmailId(p.atom()?)
        }
        "THREADID" => {
            p.sp()?;
            ThreadId(p.atom()?)
        }
        "LARGER" => {
            p.sp()?;
            Larger(p.number()?)
        }
        "SMALLER" => {
            p.sp()?;
            Smaller(p.number()?)
        }
        "UID" => {
            p.sp()?;
            Uid(p.sequence_set()?)
        }
        "NOT" => {
            p.sp()?;
            p.enter()?;
            let k = key(p)?;
            p.leave();
            Not(Box::new(k))
        }
        "OR" => {
            p.sp()?;
            p.enter()?;
            let a = key(p)?;
            p.sp()?;
            let b = key(p)?;
            p.leave();
            Or(Box::new(a), Box::new(b))
        }
        "MODSEQ" => {
            p.sp()?;
            // RFC 7162 §3.1.5: an optional entry name and type come before the value.
            if p.peek() == Some(b'"') {
                p.astring()?;
                p.sp()?;
                p.atom()?;
                p.sp()?;
            }
            ModSeq(p.number()?)
        }
        _ => return Err(format!("unknown search key {word}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> SearchKey {
        parse_search(&mut Parser::new(s.as_bytes())).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn keys() {
        assert_eq!(k("UNSEEN"), SearchKey::Flag("\\Seen", false));
        assert_eq!(
            k("FROM \"Smith\" SINCE 1-Feb-1994"),
            SearchKey::And(vec![
                SearchKey::Header("FROM".into(), "Smith".into()),
                SearchKey::Since(8797)
            ])
        );
        assert!(matches!(k("OR (SEEN FLAGGED) NOT 1:5"), SearchKey::Or(..)));
        assert!(
            matches!(k("HEADER X-Spam yes"), SearchKey::Header(n, v) if n == "X-Spam" && v == "yes")
        );
        assert_eq!(k("MODSEQ 620162338"), SearchKey::ModSeq(620162338));
        // C-IM5: NOT NOT NOT ... and ((((( are bounded.
        assert!(parse_search(&mut Parser::new("NOT ".repeat(1000).as_bytes())).is_err());
        assert!(parse_search(&mut Parser::new("(".repeat(1000).as_bytes())).is_err());
    }
}
