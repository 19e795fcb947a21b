//! The generic grammar of RFC 5228 §8.2: commands with arguments, tests
//! and blocks, before anything knows what a command means (`compile`
//! checks that).

use crate::error::{Position, SyntaxError};
use crate::lexer::{Spanned, Token};

/// Blocks and test lists nest at most this deep.
pub const MAX_NESTING: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    /// One string, or a string list `["a", "b"]`.
    Strings(Vec<String>),
    Number(u64),
    Tag(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTest {
    pub name: String,
    pub at: Position,
    pub arguments: Vec<(Argument, Position)>,
    /// `(test, test)` of allof/anyof, or the one test of `not`.
    pub tests: Vec<RawTest>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCommand {
    pub name: String,
    pub at: Position,
    pub arguments: Vec<(Argument, Position)>,
    pub tests: Vec<RawTest>,
    pub block: Option<Vec<RawCommand>>,
}

/// `end`: where the script ends (errors there point at it).
pub fn parse(tokens: &[Spanned], end: Position) -> Result<Vec<RawCommand>, SyntaxError> {
    let mut p = Parser {
        t: tokens,
        i: 0,
        end,
    };
    let commands = p.commands(0)?;
    if let Some(extra) = p.t.get(p.i) {
        return Err(SyntaxError::new(extra.at, "unexpected '}'"));
    }
    Ok(commands)
}

struct Parser<'a> {
    t: &'a [Spanned],
    i: usize,
    end: Position,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i).map(|s| &s.token)
    }

    fn here(&self) -> Position {
        self.t.get(self.i).map(|s| s.at).unwrap_or(self.end)
    }

    fn error<T>(&self, what: &str) -> Result<T, SyntaxError> {
        match self.i < self.t.len() {
            true => Err(SyntaxError::new(self.here(), what)),
            false => Err(SyntaxError::new(
                self.end,
                format!("{what}, found the end of the script"),
            )),
        }
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<RawCommand>, SyntaxError> {
        if depth > MAX_NESTING {
            return self.error("blocks nested too deep");
        }
        let mut out = Vec::new();
        while let Some(t) = self.peek() {
            match t {
                Token::RightBrace => break,
                Token::Identifier(_) => out.push(self.command(depth)?),
                _ => return self.error("expected a command"),
            }
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<RawCommand, SyntaxError> {
        let at = self.here();
        let Some(Token::Identifier(name)) = self.peek().cloned() else {
            return self.error("expected a command");
        };
        self.i += 1;
        let arguments = self.arguments()?;
        let tests = match self.peek() {
            Some(Token::LeftParen) => self.test_list(depth)?,
            Some(Token::Identifier(_)) => vec![self.test(depth)?],
            _ => Vec::new(),
        };
        let block = match self.peek() {
            Some(Token::Semicolon) => {
                self.i += 1;
                None
            }
            Some(Token::LeftBrace) => {
                self.i += 1;
                let inner = self.commands(depth + 1)?;
                if self.peek() != Some(&Token::RightBrace) {
                    return self.error("expected '}'");
                }
                self.i += 1;
                Some(inner)
            }
            _ => return self.error("expected ';' or a block"),
        };
        Ok(RawCommand {
            name: name.to_ascii_lowercase(),
            at,
            arguments,
            tests,
            block,
        })
    }

    fn arguments(&mut self) -> Result<Vec<(Argument, Position)>, SyntaxError> {
        let mut out = Vec::new();
        loop {
            let at = self.here();
            let arg = match self.peek().cloned() {
                Some(Token::String(s)) => {
                    self.i += 1;
                    Argument::Strings(vec![s])
                }
                Some(Token::Number(n)) => {
                    self.i += 1;
                    Argument::Number(n)
                }
                Some(Token::Tag(t)) => {
                    self.i += 1;
                    Argument::Tag(t.to_ascii_lowercase())
                }
                Some(Token::LeftBracket) => {
                    self.i += 1;
                    Argument::Strings(self.string_list()?)
                }
                _ => return Ok(out),
            };
            out.push((arg, at));
        }
    }

    /// `"a", "b" ]` after the `[`.
    fn string_list(&mut self) -> Result<Vec<String>, SyntaxError> {
        let mut list = Vec::new();
        loop {
            match self.peek().cloned() {
                Some(Token::String(s)) => {
                    self.i += 1;
                    list.push(s);
                }
                _ => return self.error("expected a string in the list"),
            }
            match self.peek() {
                Some(Token::Comma) => self.i += 1,
                Some(Token::RightBracket) => {
                    self.i += 1;
                    return Ok(list);
                }
                _ => return self.error("expected ',' or ']'"),
            }
        }
    }

    fn test_list(&mut self, depth: usize) -> Result<Vec<RawTest>, SyntaxError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            out.push(self.test(depth + 1)?);
            match self.peek() {
                Some(Token::Comma) => self.i += 1,
                Some(Token::RightParen) => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => return self.error("expected ',' or ')'"),
            }
        }
    }

    fn test(&mut self, depth: usize) -> Result<RawTest, SyntaxError> {
        if depth > MAX_NESTING {
            return self.error("tests nested too deep");
        }
        let at = self.here();
        let Some(Token::Identifier(name)) = self.peek().cloned() else {
            return self.error("expected a test");
        };
        self.i += 1;
        let arguments = self.arguments()?;
        let tests = match self.peek() {
            Some(Token::LeftParen) => self.test_list(depth)?,
            Some(Token::Identifier(_)) => vec![self.test(depth + 1)?],
            _ => Vec::new(),
        };
        Ok(RawTest {
            name: name.to_ascii_lowercase(),
            at,
            arguments,
            tests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Vec<RawCommand>, SyntaxError> {
        parse(&crate::lexer::tokens(s)?, crate::lexer::end_of(s))
    }

    #[test]
    fn shapes() {
        let c = p("require [\"fileinto\", \"copy\"];\nif anyof (not exists \"x\", true) { fileinto :copy \"A\"; } elsif false { stop; } else { keep; }").unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(c[1].name, "if");
        assert_eq!(c[1].tests[0].name, "anyof");
        assert_eq!(c[1].tests[0].tests[0].tests[0].name, "exists");
        assert_eq!(c[1].block.as_ref().unwrap()[0].arguments.len(), 2);
        assert_eq!(c[2].name, "elsif");
        assert_eq!(c[1].at.line, 2);
        let e = p("keep\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2, column 1: expected ';' or a block, found the end of the script"
        );
        assert!(p("if true { keep; ").is_err());
        assert!(p("keep; }").is_err());
        assert!(p("x [\"a\" \"b\"];").is_err());
        let deep = format!("{}keep;{}", "if true {".repeat(40), "}".repeat(40));
        assert!(p(&deep).unwrap_err().message.contains("too deep"));
        let deep_test = format!("if {}true{} {{ keep; }}", "not ".repeat(40), "");
        assert!(p(&deep_test).is_err());
    }
}
