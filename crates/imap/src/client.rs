//! The client side of IMAP responses (RFC 9051 §7, §9 `response`), for
//! `tern import` from another server: where a response ends (literals
//! included) and its tokens, and the FETCH and LIST data it carries. Pure:
//! bytes in, values out; the network is the caller's.

/// One token of a response: an atom (or number), a string (quoted or
/// literal), NIL, or a parenthesised list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Atom(String),
    String(Vec<u8>),
    Nil,
    List(Vec<Token>),
}

impl Token {
    pub fn atom(&self) -> Option<&str> {
        match self {
            Token::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// A string, an atom taken as a string (astring), NIL as nothing.
    pub fn text(&self) -> Option<String> {
        match self {
            Token::Atom(a) => Some(a.clone()),
            Token::String(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

/// The length of the first complete response in `buf` (its line, every
/// literal `{N}` it announces and the lines after them), or None when more
/// bytes are needed. `max` bounds a response: past it, an error.
pub fn response_len(buf: &[u8], max: usize) -> Result<Option<usize>, String> {
    let mut at = 0;
    loop {
        let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return match buf.len() > max {
                true => Err(format!("a response longer than {max} octets")),
                false => Ok(None),
            };
        };
        let line = &buf[at..at + eol];
        let end = at + eol + 2;
        match literal_size(line) {
            Some(n) => {
                let next = end.checked_add(n).filter(|&x| x <= max);
                let Some(next) = next else {
                    return Err(format!("a literal of {n} octets is over the limit"));
                };
                if buf.len() < next {
                    return Ok(None);
                }
                at = next;
            }
            None => return Ok(Some(end)),
        }
    }
}

/// `{N}` (or `{N+}`) at the end of a line: the literal that follows.
fn literal_size(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The tokens of one complete response (without its final CRLF).
pub fn tokens(response: &[u8]) -> Result<Vec<Token>, String> {
    let mut p = Parser { s: response, at: 0 };
    let mut out = Vec::new();
    loop {
        p.skip_spaces();
        if p.at >= p.s.len() || p.s[p.at..].starts_with(b"\r\n") {
            return Ok(out);
        }
        out.push(p.token(0)?);
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.s.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
    }

    fn token(&mut self, depth: usize) -> Result<Token, String> {
        if depth > 32 {
            return Err("lists nested too deep".into());
        }
        match self.s.get(self.at) {
            Some(b'(') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.s.get(self.at) {
                        Some(b')') => {
                            self.at += 1;
                            return Ok(Token::List(items));
                        }
                        None => return Err("a list is not closed".into()),
                        _ => items.push(self.token(depth + 1)?),
                    }
                }
            }
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal(),
            // A line end (outside a literal) inside a list: it is not closed.
            Some(b'\r' | b'\n') => Err("a list is cut by a line end".into()),
            Some(_) => self.atom(),
            None => Err("a token is missing".into()),
        }
    }

    fn quoted(&mut self) -> Result<Token, String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Token::String(out));
                }
                Some(b'\\') => {
                    out.push(
                        *self
                            .s
                            .get(self.at + 1)
                            .ok_or("a quoted string ends in \\")?,
                    );
                    self.at += 2;
                }
                Some(b'\r' | b'\n') | None => return Err("a quoted string is not closed".into()),
                Some(&c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Token, String> {
        let close = self.s[self.at..]
            .iter()
            .position(|&b| b == b'}')
            .ok_or("a literal's size is not closed")?;
        let size =
            literal_size(&self.s[self.at..self.at + close + 1]).ok_or("a bad literal size")?;
        let start = self.at + close + 1;
        if !self.s[start..].starts_with(b"\r\n") {
            return Err("a literal's size is not at the end of a line".into());
        }
        let data = self
            .s
            .get(start + 2..start + 2 + size)
            .ok_or("a literal is cut short")?;
        self.at = start + 2 + size;
        Ok(Token::String(data.to_vec()))
    }

    /// An atom, with the brackets of a section (`BODY[]`, `BODY[HEADER]<0>`)
    /// kept inside it.
    fn atom(&mut self) -> Result<Token, String> {
        let start = self.at;
        let mut brackets = 0usize;
        while let Some(&c) = self.s.get(self.at) {
            match c {
                b'[' => brackets += 1,
                b']' => brackets = brackets.saturating_sub(1),
                b' ' | b'(' | b')' | b'\r' | b'\n' if brackets == 0 => break,
                b'\r' | b'\n' => break,
                _ => {}
            }
            self.at += 1;
        }
        if self.at == start {
            // A stray ")": nothing an atom could be.
            return Err(format!("unexpected {:?}", char::from(self.s[start])));
        }
        let text = String::from_utf8_lossy(&self.s[start..self.at]).into_owned();
        Ok(match text.eq_ignore_ascii_case("NIL") {
            true => Token::Nil,
            false => Token::Atom(text),
        })
    }
}

/// One message of a FETCH response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    pub uid: Option<u32>,
    pub flags: Vec<String>,
    /// INTERNALDATE, Unix time.
    pub internal_date: Option<i64>,
    /// BODY[] (or RFC822).
    pub body: Option<Vec<u8>>,
}

/// `* N FETCH (...)`: its data; None for any other response.
pub fn fetched(tokens: &[Token]) -> Option<Fetched> {
    let [star, _, fetch, Token::List(items)] = tokens else {
        return None;
    };
    if star.atom() != Some("*") || !fetch.atom()?.eq_ignore_ascii_case("FETCH") {
        return None;
    }
    let mut out = Fetched::default();
    for pair in items.chunks(2) {
        let [name, value] = pair else { break };
        let Some(name) = name.atom().map(str::to_ascii_uppercase) else {
            continue;
        };
        match (name.as_str(), value) {
            ("UID", v) => out.uid = v.atom().and_then(|a| a.parse().ok()),
            ("FLAGS", Token::List(flags)) => {
                out.flags = flags
                    .iter()
                    .filter_map(|f| f.atom().map(String::from))
                    .collect()
            }
            ("INTERNALDATE", v) => {
                out.internal_date = v.text().and_then(|d| crate::parse::parse_date_time(&d))
            }
            ("BODY[]" | "RFC822", Token::String(b)) => out.body = Some(b.clone()),
            _ => {}
        }
    }
    Some(out)
}

/// One mailbox of a LIST response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub attributes: Vec<String>,
    pub delimiter: Option<char>,
    /// As the server sent it (modified UTF-7 unless UTF8=ACCEPT is on).
    pub name: String,
}

/// `* LIST (attributes) "delimiter" name`; None for any other response.
pub fn listed(tokens: &[Token]) -> Option<Listed> {
    let [star, list, Token::List(attributes), delimiter, name, ..] = tokens else {
        return None;
    };
    if star.atom() != Some("*") || !list.atom()?.eq_ignore_ascii_case("LIST") {
        return None;
    }
    Some(Listed {
        attributes: attributes
            .iter()
            .filter_map(|a| a.atom().map(String::from))
            .collect(),
        delimiter: delimiter.text().and_then(|d| d.chars().next()),
        name: name.text()?,
    })
}

/// A string for a command: quoted when it can be (RFC 9051 §4.3), else a
/// literal (its `{N}` and the bytes; the caller waits for `+` before the
/// bytes unless the server has LITERAL+).
pub fn quote(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("{{{}+}}\r\n{s}", s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_ends_after_its_literals() {
        let r = b"* 1 FETCH (UID 7 BODY[] {5}\r\nab\r\nc FLAGS (\\Seen))\r\n* 2 FETCH";
        let n = response_len(r, 1000).unwrap().unwrap();
        assert_eq!(&r[n..], b"* 2 FETCH");
        assert_eq!(
            response_len(b"* 1 FETCH (BODY[] {10}\r\nabc", 1000),
            Ok(None)
        );
        assert!(response_len(b"* 1 FETCH (BODY[] {10000}\r\n", 100).is_err());
        assert!(response_len(&[b'x'; 200], 100).is_err());
    }

    #[test]
    fn fetch_data() {
        let r = b"* 1 FETCH (UID 7 FLAGS (\\Seen $Work) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 5 BODY[] {5}\r\nab\r\nc)\r\n";
        let t = tokens(r).unwrap();
        let f = fetched(&t).unwrap();
        assert_eq!(f.uid, Some(7));
        assert_eq!(f.flags, ["\\Seen", "$Work"]);
        assert_eq!(f.internal_date, Some(837_596_665));
        assert_eq!(f.body.as_deref(), Some(&b"ab\r\nc"[..]));
        assert_eq!(fetched(&tokens(b"* OK done\r\n").unwrap()), None);
    }

    #[test]
    fn list_data() {
        let t = tokens(b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n").unwrap();
        let l = listed(&t).unwrap();
        assert_eq!(l.attributes, ["\\HasNoChildren", "\\Sent"]);
        assert_eq!(l.delimiter, Some('/'));
        assert_eq!(l.name, "Sent Items");
        let t = tokens(b"* LIST () NIL {4}\r\nA\"b)\r\n").unwrap();
        let l = listed(&t).unwrap();
        assert_eq!((l.delimiter, l.name.as_str()), (None, "A\"b)"));
        let t = tokens(b"* LIST (\\Noselect) \".\" INBOX.Lists\r\n").unwrap();
        assert_eq!(listed(&t).unwrap().name, "INBOX.Lists");
    }

    #[test]
    fn bad_responses_are_errors_not_panics() {
        for bad in [
            &b"* 1 FETCH (UID 1"[..],
            b"\"open",
            b"{3}\r\nab",
            b"{x}\r\n",
            b"\"a\\",
        ] {
            assert!(tokens(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "(".repeat(100);
        assert!(tokens(deep.as_bytes()).is_err());
        // Found by fuzzing (fuzz/fuzz_targets/imap_response.rs): a list cut by
        // a line end looped forever on empty atoms, until memory ran out.
        let cut = b"* SEARCH 2 (MODODSE6* THREAD (1)\r\n (4 5)(2))\r\n";
        assert!(tokens(cut).is_err());
        assert!(tokens(b"* OK )\r\n").is_err());
    }

    #[test]
    fn strings_for_commands() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("é"), "{2+}\r\né");
    }
}
