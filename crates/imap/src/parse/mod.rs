//! The IMAP command grammar (RFC 9051 §9), parsed from one complete command:
//! the line(s) with their literals already read in (`reader.rs` assembles them,
//! with the size limits). A cursor over bytes; nothing allocates more than the
//! input it consumes, and nesting is bounded (hardening.md C-IM5).

mod command;
mod fetch;
mod notify;
mod search;
mod sort;

pub use command::*;
pub use fetch::*;
pub use notify::*;
pub use search::*;
pub use sort::*;

/// Parenthesis nesting deeper than this is refused (C-IM5).
pub const MAX_DEPTH: usize = 32;
/// A sequence set with more ranges than this is refused (C-IM6).
pub const MAX_RANGES: usize = 10_000;

pub type PResult<T> = Result<T, String>;

pub struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
}

fn is_atom_char(b: u8) -> bool {
    // ATOM-CHAR: any CHAR except atom-specials (RFC 9051 §9), plus UTF-8 (8-bit).
    b > b' ' && b != 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

fn is_list_char(b: u8) -> bool {
    is_atom_char(b) || matches!(b, b'%' | b'*' | b']')
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a [u8]) -> Parser<'a> {
        Parser {
            input,
            pos: 0,
            depth: 0,
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// What is left to read.
    pub fn rest(&self) -> &[u8] {
        &self.input[self.pos.min(self.input.len())..]
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.input.len() || self.input[self.pos..] == *b"\r\n"
    }

    /// The command must end here.
    pub fn end(&mut self) -> PResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(format!("unexpected {:?}", self.rest_preview()))
        }
    }

    fn rest_preview(&self) -> String {
        String::from_utf8_lossy(&self.input[self.pos..(self.pos + 20).min(self.input.len())])
            .into_owned()
    }

    pub fn sp(&mut self) -> PResult<()> {
        self.expect(b' ')
    }

    pub fn expect(&mut self, b: u8) -> PResult<()> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {:?}", b as char))
        }
    }

    /// Consume `b` if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consume `word` (case-insensitive) if it is next.
    pub fn eat_word(&mut self, word: &str) -> bool {
        let w = word.as_bytes();
        let end = self.pos + w.len();
        if end <= self.input.len() && self.input[self.pos..end].eq_ignore_ascii_case(w) {
            let next = self.input.get(end).copied();
            // A word ends at a delimiter, not in the middle of an atom.
            if next.is_none_or(|b| !is_atom_char(b) || matches!(b, b'.' | b'[' | b'<')) {
                self.pos = end;
                return true;
            }
        }
        false
    }

    pub fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err("nesting too deep".into())
        } else {
            Ok(())
        }
    }

    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    pub fn atom(&mut self) -> PResult<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err(format!("expected an atom at {:?}", self.rest_preview()));
        }
        String::from_utf8(a.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }

    /// The command tag: ASTRING-CHARs except "+".
    pub fn tag(&mut self) -> PResult<String> {
        let t = self.take_while(|b| is_astring_char(b) && b != b'+');
        if t.is_empty() {
            return Err("missing tag".into());
        }
        Ok(String::from_utf8_lossy(t).into_owned())
    }

    pub fn number(&mut self) -> PResult<u64> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() || d.len() > 19 {
            return Err("expected a number".into());
        }
        std::str::from_utf8(d)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "bad number".into())
    }

    pub fn nz_number(&mut self) -> PResult<u32> {
        let n = self.number()?;
        u32::try_from(n)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| "expected a non-zero 32-bit number".into())
    }

    /// quoted / literal / literal8, as bytes.
    pub fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            Some(b'~') if self.input.get(self.pos + 1) == Some(&b'{') => {
                self.pos += 1;
                self.literal()
            }
            _ => Err("expected a string".into()),
        }
    }

    fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n' | 0) => return Err("bad quoted string".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ (b'"' | b'\\')) => out.push(c),
                        _ => return Err("bad escape in quoted string".into()),
                    }
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}` or `{n+}` CRLF and n bytes (the reader has put them inline).
    fn literal(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'{')?;
        let n = self.number()? as usize;
        self.eat(b'+');
        self.eat(b'-');
        self.expect(b'}')?;
        self.expect(b'\r')?;
        self.expect(b'\n')?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.input.len())
            .ok_or("literal longer than the command")?;
        let data = self.input[self.pos..end].to_vec();
        // C-IM4: a NUL is not allowed in a literal (only in literal8).
        self.pos = end;
        Ok(data)
    }

    pub fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{' | b'~') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    Err(format!("expected a string at {:?}", self.rest_preview()))
                } else {
                    Ok(a.to_vec())
                }
            }
        }
    }

    pub fn astring_utf8(&mut self) -> PResult<String> {
        let raw = self.astring()?;
        if raw.contains(&0) {
            return Err("NUL in a string".into());
        }
        String::from_utf8(raw).map_err(|_| "invalid UTF-8".into())
    }

    /// list-mailbox: list-chars (with wildcards) or a string.
    pub fn list_mailbox(&mut self) -> PResult<String> {
        match self.peek() {
            Some(b'"' | b'{') => self.astring_utf8(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    return Err("expected a mailbox pattern".into());
                }
                String::from_utf8(a.to_vec()).map_err(|_| "invalid UTF-8".into())
            }
        }
    }

    /// `(` item *(SP item) `)`, or an empty list when `allow_empty`.
    pub fn list<T>(
        &mut self,
        allow_empty: bool,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect(b'(')?;
        self.enter()?;
        let mut out = Vec::new();
        if self.eat(b')') {
            self.leave();
            return if allow_empty {
                Ok(out)
            } else {
                Err("empty list".into())
            };
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.leave();
        Ok(out)
    }

    /// A flag: `\Word` or a keyword atom.
    pub fn flag(&mut self) -> PResult<String> {
        if self.eat(b'\\') {
            if self.eat(b'*') {
                return Ok("\\*".into());
            }
            return Ok(format!("\\{}", self.atom()?));
        }
        self.atom()
    }

    pub fn flag_list(&mut self) -> PResult<Vec<String>> {
        self.list(true, |p| p.flag())
    }

    pub fn sequence_set(&mut self) -> PResult<SequenceSet> {
        // RFC 5182 §2.1: `$` is the result the last SEARCH saved.
        if self.eat(b'$') {
            return Ok(SequenceSet(vec![(SeqNum::Saved, SeqNum::Saved)]));
        }
        let mut ranges = Vec::new();
        loop {
            let a = self.seq_number()?;
            let b = if self.eat(b':') {
                self.seq_number()?
            } else {
                a
            };
            ranges.push((a, b));
            if ranges.len() > MAX_RANGES {
                return Err("sequence set too long".into());
            }
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SequenceSet(ranges))
    }

    fn seq_number(&mut self) -> PResult<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Last)
        } else {
            Ok(SeqNum::Number(self.nz_number()?))
        }
    }

    /// date = date-text / DQUOTE date-text DQUOTE; date-text = d-mon-yyyy. Days since 1970.
    pub fn date(&mut self) -> PResult<i64> {
        let quoted = self.eat(b'"');
        let text = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-');
        if quoted {
            self.expect(b'"')?;
        }
        let text = std::str::from_utf8(text).map_err(|_| "bad date")?;
        parse_date_text(text).ok_or_else(|| format!("bad date {text:?}"))
    }

    /// date-time = DQUOTE dd-mon-yyyy SP hh:mm:ss SP zone DQUOTE (RFC 9051 §9). Unix time.
    pub fn date_time(&mut self) -> PResult<i64> {
        let raw = self.quoted()?;
        let text = std::str::from_utf8(&raw).map_err(|_| "bad date-time")?;
        parse_date_time(text).ok_or_else(|| format!("bad date-time {text:?}"))
    }
}

/// `1-Feb-2024` to days since 1970-01-01.
pub fn parse_date_text(s: &str) -> Option<i64> {
    let mut parts = s.trim().split('-');
    let day: u32 = parts.next()?.trim().parse().ok()?;
    let month = message::date::month_number(parts.next()?)?;
    let year: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=31).contains(&day) {
        return None;
    }
    Some(message::date::days_from_civil(year, month, day))
}

/// ` 1-Feb-2024 10:11:12 +0100` to Unix time.
pub fn parse_date_time(s: &str) -> Option<i64> {
    let mut parts = s.split_whitespace();
    let days = parse_date_text(parts.next()?)?;
    let mut hms = parts.next()?.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let zone = message::date::parse_zone(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + sec - zone)
}

/// A sequence number or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNum {
    Number(u32),
    Last,
    /// `$` (RFC 5182): the saved search result.
    Saved,
}

/// RFC 9051 §9 sequence-set: ranges, each possibly reversed (`5:2` is `2:5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSet(pub Vec<(SeqNum, SeqNum)>);

impl SequenceSet {
    /// Whether this is `$`, the saved search result (RFC 5182).
    pub fn is_saved(&self) -> bool {
        self.0.first().is_some_and(|r| r.0 == SeqNum::Saved)
    }

    /// The set of exactly these numbers.
    pub fn of(numbers: &[u32]) -> SequenceSet {
        SequenceSet(
            numbers
                .iter()
                .map(|&n| (SeqNum::Number(n), SeqNum::Number(n)))
                .collect(),
        )
    }

    /// The ranges with `*` replaced by `last`, each low..=high, sorted and merged.
    pub fn resolve(&self, last: u32) -> Vec<(u32, u32)> {
        let value = |n: SeqNum| match n {
            SeqNum::Number(n) => n,
            SeqNum::Last => last,
            // Replaced by the session before use; alone it names nothing.
            SeqNum::Saved => 0,
        };
        let mut ranges: Vec<(u32, u32)> = self
            .0
            .iter()
            .map(|&(a, b)| (value(a).min(value(b)), value(a).max(value(b))))
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged
    }

    pub fn contains(ranges: &[(u32, u32)], n: u32) -> bool {
        let i = ranges.partition_point(|&(lo, _)| lo <= n);
        i > 0 && ranges[i - 1].1 >= n
    }
}

/// Write ranges of numbers as a sequence set: `1:3,5`.
pub fn format_set(numbers: &[u32]) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_sets() {
        let mut p = Parser::new(b"1:3,7,*,10:8");
        let s = p.sequence_set().unwrap();
        assert_eq!(s.resolve(20), vec![(1, 3), (7, 10), (20, 20)]);
        assert!(SequenceSet::contains(&s.resolve(20), 9));
        assert!(!SequenceSet::contains(&s.resolve(20), 5));
        assert!(Parser::new(b"0").sequence_set().is_err());
        assert_eq!(format_set(&[5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
        let huge = "1:4294967295,".repeat(MAX_RANGES + 1);
        assert!(Parser::new(huge.as_bytes()).sequence_set().is_err());
    }

    #[test]
    fn strings() {
        assert_eq!(Parser::new(b"\"a\\\"b\"").astring().unwrap(), b"a\"b");
        assert_eq!(Parser::new(b"{3}\r\nabc").astring().unwrap(), b"abc");
        assert_eq!(Parser::new(b"{3+}\r\nabc").astring().unwrap(), b"abc");
        assert!(Parser::new(b"{9}\r\nabc").astring().is_err());
        assert_eq!(Parser::new(b"INBOX.x").astring().unwrap(), b"INBOX.x");
        assert!(Parser::new(b"\"a\r\nb\"").astring().is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date_text("1-Jan-1970"), Some(0));
        assert_eq!(parse_date_time("01-Jan-1970 01:00:00 +0100"), Some(0));
        // A zone of five octets that are not a sign and four digits (found
        // by fuzzing imap_response, C-FZ6: it panicked, cut inside the '€').
        assert_eq!(parse_date_time("01-Jan-1970 01:00:00 +€0"), None);
        assert_eq!(parse_date_time("01-Jan-1970 01:00:00 +01a0"), None);
        assert_eq!(parse_date_time(" 2-Jan-1970 00:00:00 -0000"), Some(86_400));
        assert!(parse_date_text("32-Jan-2020").is_none());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "(".repeat(100_000);
        let mut p = Parser::new(deep.as_bytes());
        fn nest(p: &mut Parser<'_>) -> PResult<()> {
            p.list(true, nest).map(|_| ())
        }
        assert!(nest(&mut p).is_err());
    }
}
