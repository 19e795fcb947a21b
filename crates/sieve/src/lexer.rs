//! Sieve's lexical structure (RFC 5228 §2.2–§2.4, §8.1): identifiers, tags,
//! numbers with K/M/G, quoted strings, `text:` multi-line strings,
//! comments, and the punctuation. Every token carries its line and column.

use crate::error::{Position, SyntaxError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Identifier(String),
    /// `:name` (the colon not kept).
    Tag(String),
    Number(u64),
    /// A quoted or multi-line string, escapes and dot-stuffing removed.
    String(String),
    LeftBracket,
    RightBracket,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Semicolon,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned {
    pub token: Token,
    pub at: Position,
}

/// The most tokens one script may have (a bound on parse work and memory).
pub const MAX_TOKENS: usize = 100_000;

pub fn tokens(text: &str) -> Result<Vec<Spanned>, SyntaxError> {
    // RFC 5228 §8.1: no production holds NUL, not even a comment's.
    if let Some(at) = text.find('\0') {
        return Err(SyntaxError::new(
            end_of(&text[..at]),
            "a NUL character (RFC 5228 §8.1: a script holds none)",
        ));
    }
    Lexer {
        src: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
        col: 1,
    }
    .run()
}

/// The position just past the last character of `text`.
pub fn end_of(text: &str) -> Position {
    let line = text.matches('\n').count() as u32 + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    Position {
        line,
        column: last.chars().count() as u32 + 1,
    }
}

struct Lexer<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: u32,
    col: u32,
}

impl Lexer<'_> {
    fn at(&self) -> Position {
        Position {
            line: self.line,
            column: self.col,
        }
    }

    fn error(&self, what: impl Into<String>) -> SyntaxError {
        SyntaxError {
            at: self.at(),
            message: what.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            self.col += 1;
        }
        Some(c)
    }

    fn run(mut self) -> Result<Vec<Spanned>, SyntaxError> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            if out.len() >= MAX_TOKENS {
                return Err(self.error("script too long"));
            }
            let at = self.at();
            let token = match c {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    self.bump();
                    continue;
                }
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                    continue;
                }
                b'/' if self.src.get(self.pos + 1) == Some(&b'*') => {
                    let opened = self.at();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(SyntaxError::new(opened, "unterminated comment")),
                            Some(b'*') if self.peek() == Some(b'/') => {
                                self.bump();
                                break;
                            }
                            _ => {}
                        }
                    }
                    continue;
                }
                b'[' => self.one(Token::LeftBracket),
                b']' => self.one(Token::RightBracket),
                b'(' => self.one(Token::LeftParen),
                b')' => self.one(Token::RightParen),
                b'{' => self.one(Token::LeftBrace),
                b'}' => self.one(Token::RightBrace),
                b',' => self.one(Token::Comma),
                b';' => self.one(Token::Semicolon),
                b'"' => self.quoted()?,
                b':' => {
                    self.bump();
                    Token::Tag(
                        self.identifier()
                            .ok_or_else(|| self.error("expected a tag name after ':'"))?,
                    )
                }
                b'0'..=b'9' => self.number()?,
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let word = self.identifier().unwrap_or_default();
                    if word.eq_ignore_ascii_case("text") && self.peek() == Some(b':') {
                        self.bump();
                        self.multiline()?
                    } else {
                        Token::Identifier(word)
                    }
                }
                _ => {
                    let ch = self.text[self.pos..].chars().next().unwrap_or('?');
                    return Err(self.error(format!("unexpected character {ch:?}")));
                }
            };
            out.push(Spanned { token, at });
        }
        Ok(out)
    }

    fn one(&mut self, t: Token) -> Token {
        self.bump();
        t
    }

    /// RFC 5228 §8.1: `identifier = (ALPHA / "_") *(ALPHA / DIGIT / "_")`.
    fn identifier(&mut self) -> Option<String> {
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {}
            _ => return None,
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.bump();
        }
        Some(self.text[start..self.pos].to_string())
    }

    /// RFC 5228 §2.4.1: digits with an optional K, M or G.
    fn number(&mut self) -> Result<Token, SyntaxError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let n: u64 = self.text[start..self.pos]
            .parse()
            .map_err(|_| self.error("number too large"))?;
        let factor: u64 = match self.peek() {
            Some(b'K' | b'k') => 1 << 10,
            Some(b'M' | b'm') => 1 << 20,
            Some(b'G' | b'g') => 1 << 30,
            _ => 1,
        };
        if factor > 1 {
            self.bump();
        }
        n.checked_mul(factor)
            .map(Token::Number)
            .ok_or_else(|| self.error("number too large"))
    }

    /// RFC 5228 §2.4.2: `"..."`, where `\x` is `x`.
    fn quoted(&mut self) -> Result<Token, SyntaxError> {
        let opened = self.at();
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => return Err(SyntaxError::new(opened, "unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => match self.bump() {
                    Some(c) => out.push(c),
                    None => return Err(SyntaxError::new(opened, "unterminated string")),
                },
                Some(c) => out.push(c),
            }
        }
        String::from_utf8(out)
            .map(Token::String)
            .map_err(|_| self.error("string is not UTF-8"))
    }

    /// RFC 5228 §2.4.2: `text:` (spaces, an optional comment) CRLF, lines,
    /// then a line with a single dot; a leading dot of a line is doubled.
    fn multiline(&mut self) -> Result<Token, SyntaxError> {
        while self.peek().is_some_and(|c| c == b' ' || c == b'\t') {
            self.bump();
        }
        if self.peek() == Some(b'#') {
            while self.peek().is_some_and(|c| c != b'\n') {
                self.bump();
            }
        }
        match (self.peek(), self.src.get(self.pos + 1)) {
            (Some(b'\n'), _) => {
                self.bump();
            }
            (Some(b'\r'), Some(b'\n')) => {
                self.bump();
                self.bump();
            }
            _ => return Err(self.error("text: must end its line")),
        }
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self.peek().is_some_and(|c| c != b'\n') {
                self.bump();
            }
            if self.peek().is_none() {
                return Err(self.error("unterminated text: string (no line with a single dot)"));
            }
            let line = self.text[start..self.pos].trim_end_matches('\r');
            self.bump();
            if line == "." {
                break;
            }
            out.push_str(
                line.strip_prefix('.')
                    .filter(|_| line.starts_with(".."))
                    .unwrap_or(line),
            );
            out.push_str("\r\n");
        }
        Ok(Token::String(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Token> {
        tokens(s).unwrap().into_iter().map(|t| t.token).collect()
    }

    #[test]
    fn tokens_of_rfc_forms() {
        assert_eq!(
            kinds("if size :over 100K { discard; } # c\n/* block\n */"),
            [
                Token::Identifier("if".into()),
                Token::Identifier("size".into()),
                Token::Tag("over".into()),
                Token::Number(102_400),
                Token::LeftBrace,
                Token::Identifier("discard".into()),
                Token::Semicolon,
                Token::RightBrace,
            ]
        );
        assert_eq!(kinds(r#""a\"b\\c\d""#), [Token::String("a\"b\\cd".into())]);
        assert_eq!(
            kinds("text: # x\r\nline one\r\n..dot\r\n.\r\n"),
            [Token::String("line one\r\n.dot\r\n".into())]
        );
        let e = tokens("keep;\n  \"open").unwrap_err();
        assert_eq!((e.at.line, e.message.as_str()), (2, "unterminated string"));
        assert!(tokens("99999999999999999999G").is_err());
        assert!(tokens("text:\nno end\n").is_err());
        let e = tokens("keep; ü").unwrap_err();
        assert_eq!((e.at.line, e.at.column), (1, 7));
    }

    /// RFC 5228 §8.1: no production of the grammar holds NUL, in a string,
    /// a `text:` or a comment (PostgreSQL's text cannot hold one either).
    #[test]
    fn a_nul_is_refused_where_it_stands() {
        for (script, line, column) in [
            ("keep;\n\"a\0b\";", 2, 3),
            ("keep;\ntext:\r\na\0\r\n.\r\n", 3, 2),
            ("keep;\n# a\0b\n", 2, 4),
            ("keep;\n/* \0 */", 2, 4),
        ] {
            let e = tokens(script).unwrap_err();
            assert_eq!((e.at.line, e.at.column), (line, column), "{script:?}");
            assert!(e.message.contains("NUL"), "{script:?}: {}", e.message);
        }
    }
}
