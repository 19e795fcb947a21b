//! SORT and THREAD (RFC 5256 §3), with ESORT's RETURN (RFC 5267 §3).

use super::{PResult, Parser, SearchKey, parse_search};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKind {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub reverse: bool,
    pub kind: SortKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
}

/// `[RETURN (...)] (criteria) charset search-key`, after `SORT SP`.
pub fn parse_sort(p: &mut Parser<'_>) -> PResult<(Option<Vec<String>>, Vec<SortKey>, SearchKey)> {
    let mut returns = None;
    if p.eat_word("RETURN") {
        p.sp()?;
        returns = Some(p.list(true, |p| p.atom().map(|a| a.to_ascii_uppercase()))?);
        p.sp()?;
    }
    let words = p.list(false, |p| p.atom().map(|a| a.to_ascii_uppercase()))?;
    let mut criteria = Vec::new();
    let mut reverse = false;
    for w in words {
        let kind = match w.as_str() {
            "REVERSE" if !reverse => {
                reverse = true;
                continue;
            }
            "ARRIVAL" => SortKind::Arrival,
            "CC" => SortKind::Cc,
            "DATE" => SortKind::Date,
            "FROM" => SortKind::From,
            "SIZE" => SortKind::Size,
            "SUBJECT" => SortKind::Subject,
            "TO" => SortKind::To,
            _ => return Err(format!("unknown sort criterion {w}")),
        };
        criteria.push(SortKey { reverse, kind });
        reverse = false;
    }
    if reverse {
        return Err("REVERSE must come before a sort criterion".into());
    }
    p.sp()?;
    charset(p)?;
    p.sp()?;
    Ok((returns, criteria, parse_search(p)?))
}

/// `algorithm charset search-key`, after `THREAD SP`.
pub fn parse_thread(p: &mut Parser<'_>) -> PResult<(ThreadAlgorithm, SearchKey)> {
    let algorithm = match p.atom()?.to_ascii_uppercase().as_str() {
        "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
        "REFERENCES" => ThreadAlgorithm::References,
        other => return Err(format!("unknown threading algorithm {other}")),
    };
    p.sp()?;
    charset(p)?;
    p.sp()?;
    Ok((algorithm, parse_search(p)?))
}

/// RFC 5256 §3: a charset is required; UTF-8 and its subset US-ASCII are
/// the ones Tern reads.
fn charset(p: &mut Parser<'_>) -> PResult<()> {
    let charset = p.astring_utf8()?;
    if !charset.eq_ignore_ascii_case("UTF-8") && !charset.eq_ignore_ascii_case("US-ASCII") {
        return Err(format!("BADCHARSET:{charset}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let (r, c, k) = parse_sort(&mut Parser::new(b"(REVERSE DATE SUBJECT) UTF-8 ALL")).unwrap();
        assert_eq!(r, None);
        assert_eq!(
            c,
            [
                SortKey {
                    reverse: true,
                    kind: SortKind::Date
                },
                SortKey {
                    reverse: false,
                    kind: SortKind::Subject
                }
            ]
        );
        assert_eq!(k, SearchKey::All);
        let (r, _, _) = parse_sort(&mut Parser::new(
            b"RETURN (MIN COUNT) (ARRIVAL) US-ASCII SEEN",
        ))
        .unwrap();
        assert_eq!(r, Some(vec!["MIN".into(), "COUNT".into()]));
        assert!(parse_sort(&mut Parser::new(b"(REVERSE) UTF-8 ALL")).is_err());
        assert!(
            parse_sort(&mut Parser::new(b"(DATE) KOI8-R ALL"))
                .unwrap_err()
                .starts_with("BADCHARSET")
        );
        let (a, _) = parse_thread(&mut Parser::new(b"REFERENCES UTF-8 SINCE 1-Feb-1994")).unwrap();
        assert_eq!(a, ThreadAlgorithm::References);
        assert!(parse_thread(&mut Parser::new(b"X-MAGIC UTF-8 ALL")).is_err());
    }
}
