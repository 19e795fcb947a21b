//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 2034, RFC 3463).

use std::borrow::Cow;
use std::fmt::Write as _;

/// An enhanced status code `class.subject.detail` (RFC 3463 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enhanced(pub u8, pub u16, pub u16);

/// One reply: a code, an enhanced code (absent only where RFC 2034 §3 says so:
/// greeting, HELO/EHLO, 3xx), and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub enhanced: Option<Enhanced>,
    pub lines: Vec<Cow<'static, str>>,
}

impl Reply {
    pub fn new(code: u16, enhanced: Enhanced, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced code (greeting, EHLO, 334, 354).
    pub fn bare(code: u16, text: impl Into<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines: vec![text.into()],
        }
    }

    pub fn multi(code: u16, lines: Vec<Cow<'static, str>>) -> Reply {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// The reply on one line (`550 5.1.1 text; more text`), for logs and
    /// the delivery history.
    pub fn one_line(&self) -> String {
        let mut wire = Vec::new();
        self.write_to(&mut wire);
        let text = String::from_utf8_lossy(&wire);
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.get(4..).map(str::trim).unwrap_or(""))
            .collect();
        format!("{} {}", self.code, lines.join("; "))
    }

    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Append the wire form: `code-text` lines, the last with `code text`, CRLF each.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let _ = write!(s, "{}{}", self.code, sep);
            if let Some(Enhanced(a, b, c)) = self.enhanced {
                let _ = write!(s, "{a}.{b}.{c} ");
            }
            // Text never carries CR or LF: a reply cannot be split by what it quotes.
            s.extend(
                line.chars()
                    .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
            );
            s.push_str("\r\n");
        }
        if self.lines.is_empty() {
            let _ = write!(s, "{}\r\n", self.code);
        }
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let mut out = Vec::new();
        Reply::new(250, Enhanced(2, 1, 0), "Ok").write_to(&mut out);
        Reply::multi(
            250,
            vec!["mx.test".into(), "PIPELINING".into(), "SIZE 10".into()],
        )
        .write_to(&mut out);
        Reply::new(550, Enhanced(5, 1, 1), "a\r\nb").write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "250 2.1.0 Ok\r\n250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n550 5.1.1 a  b\r\n"
        );
    }
}
