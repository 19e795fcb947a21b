//! FETCH data items (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ).

use super::{PResult, Parser};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// `[1.2.HEADER.FIELDS (Subject)]`: a part path and what of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    BodyStructure,
    /// BODY without a section: the non-extensible BODYSTRUCTURE.
    Body,
    Uid,
    ModSeq,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    BinarySize(Vec<u32>),
    /// RFC 8514 §3.
    SaveDate,
    /// RFC 8474 §5.
    EmailId,
    ThreadId,
    /// RFC 8970 §3 (LAZY is accepted: the preview is always at hand).
    Preview,
}

/// A list of items in parentheses, one item, or a macro (ALL, FAST, FULL).
pub fn parse_fetch(p: &mut Parser<'_>) -> PResult<Vec<FetchItem>> {
    use FetchItem::*;
    if p.eat_word("ALL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope]);
    }
    if p.eat_word("FAST") {
        return Ok(vec![Flags, InternalDate, Rfc822Size]);
    }
    if p.eat_word("FULL") {
        return Ok(vec![Flags, InternalDate, Rfc822Size, Envelope, Body]);
    }
    if p.peek() == Some(b'(') {
        return p.list(false, item);
    }
    Ok(vec![item(p)?])
}

fn item(p: &mut Parser<'_>) -> PResult<FetchItem> {
    use FetchItem::*;
    // Longest names first: BODY.PEEK before BODY, RFC822.SIZE before RFC822.
    if p.eat_word("BODYSTRUCTURE") {
        return Ok(BodyStructure);
    }
    if p.eat_word("BODY.PEEK") {
        return body_section(p, true);
    }
    if p.eat_word("BODY") {
        if p.peek() == Some(b'[') {
            return body_section(p, false);
        }
        return Ok(Body);
    }
    if p.eat_word("BINARY.PEEK") {
        return binary(p, true);
    }
    if p.eat_word("BINARY.SIZE") {
        return Ok(BinarySize(part_only(p)?));
    }
    if p.eat_word("BINARY") {
        return binary(p, false);
    }
    if p.eat_word("PREVIEW") {
        if p.peek() == Some(b' ') && p.rest().starts_with(b" (") {
            p.sp()?;
            p.list(false, |p| match p.atom()?.to_ascii_uppercase().as_str() {
                "LAZY" => Ok(()),
                _ => Err("unknown PREVIEW modifier".into()),
            })?;
        }
        return Ok(Preview);
    }
    for (word, it) in [
        ("FLAGS", Flags),
        ("INTERNALDATE", InternalDate),
        ("RFC822.SIZE", Rfc822Size),
        ("RFC822.HEADER", Rfc822Header),
        ("RFC822.TEXT", Rfc822Text),
        ("RFC822", Rfc822),
        ("ENVELOPE", Envelope),
        ("UID", Uid),
        ("MODSEQ", ModSeq),
        ("SAVEDATE", SaveDate),
        ("EMAILID", EmailId),
        ("THREADID", ThreadId),
    ] {
        if p.eat_word(word) {
            return Ok(it);
        }
    }
    Err("unknown FETCH item".into())
}

fn body_section(p: &mut Parser<'_>, peek: bool) -> PResult<FetchItem> {
    p.expect(b'[')?;
    let section = section(p)?;
    p.expect(b']')?;
    Ok(FetchItem::BodySection {
        peek,
        section,
        partial: partial(p)?,
    })
}

fn binary(p: &mut Parser<'_>, peek: bool) -> PResult<FetchItem> {
    let part = part_only(p)?;
    Ok(FetchItem::Binary {
        peek,
        part,
        partial: partial(p)?,
    })
}

/// `[1.2]` for BINARY: part numbers only.
fn part_only(p: &mut Parser<'_>) -> PResult<Vec<u32>> {
    p.expect(b'[')?;
    let mut part = Vec::new();
    if p.peek() != Some(b']') {
        loop {
            part.push(p.nz_number()?);
            if !p.eat(b'.') {
                break;
            }
        }
    }
    p.expect(b']')?;
    Ok(part)
}

fn section(p: &mut Parser<'_>) -> PResult<Section> {
    let mut s = Section::default();
    loop {
        if p.peek().is_some_and(|b| b.is_ascii_digit()) {
            s.part.push(p.nz_number()?);
            if p.eat(b'.') {
                continue;
            }
            return Ok(s);
        }
        break;
    }
    if p.peek() == Some(b']') {
        return Ok(s);
    }
    s.text = Some(if p.eat_word("HEADER.FIELDS.NOT") {
        p.sp()?;
        SectionText::HeaderFieldsNot(header_list(p)?)
    } else if p.eat_word("HEADER.FIELDS") {
        p.sp()?;
        SectionText::HeaderFields(header_list(p)?)
    } else if p.eat_word("HEADER") {
        SectionText::Header
    } else if p.eat_word("TEXT") {
        SectionText::Text
    } else if !s.part.is_empty() && p.eat_word("MIME") {
        SectionText::Mime
    } else {
        return Err("bad section".into());
    });
    Ok(s)
}

fn header_list(p: &mut Parser<'_>) -> PResult<Vec<String>> {
    p.list(false, |p| p.astring_utf8())
}

/// `<start.count>`.
fn partial(p: &mut Parser<'_>) -> PResult<Option<(u32, u32)>> {
    if !p.eat(b'<') {
        return Ok(None);
    }
    let start = u32::try_from(p.number()?).map_err(|_| "partial start too large")?;
    p.expect(b'.')?;
    let count = p.nz_number()?;
    p.expect(b'>')?;
    Ok(Some((start, count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &str) -> Vec<FetchItem> {
        parse_fetch(&mut Parser::new(s.as_bytes())).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn items_and_sections() {
        use FetchItem::*;
        assert_eq!(items("FAST"), vec![Flags, InternalDate, Rfc822Size]);
        assert_eq!(
            items("(UID RFC822.SIZE RFC822 MODSEQ)"),
            vec![Uid, Rfc822Size, Rfc822, ModSeq]
        );
        assert_eq!(
            items("BODY[]"),
            vec![BodySection {
                peek: false,
                section: Section::default(),
                partial: None
            }]
        );
        assert_eq!(
            items("BODY.PEEK[HEADER.FIELDS (From Subject)]<0.100>"),
            vec![BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(vec![
                        "From".into(),
                        "Subject".into()
                    ]))
                },
                partial: Some((0, 100))
            }]
        );
        assert_eq!(
            items("BODY[1.2.MIME]"),
            vec![BodySection {
                peek: false,
                section: Section {
                    part: vec![1, 2],
                    text: Some(SectionText::Mime)
                },
                partial: None
            }]
        );
        assert_eq!(items("(BODY BODYSTRUCTURE)"), vec![Body, BodyStructure]);
        assert_eq!(
            items("(BINARY.PEEK[1] BINARY.SIZE[2])"),
            vec![
                Binary {
                    peek: true,
                    part: vec![1],
                    partial: None
                },
                BinarySize(vec![2])
            ]
        );
        assert!(parse_fetch(&mut Parser::new(b"BODY[MIME]")).is_err());
        assert!(parse_fetch(&mut Parser::new(b"NONSENSE")).is_err());
    }
}
