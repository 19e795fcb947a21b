//! The SMTP command grammar (RFC 5321 §4.1.1, §4.1.2 and the extension RFCs),
//! pure: a line in, a typed command or an [`SmtpError`] out.

use crate::error::SmtpError;

/// The most ESMTP parameters one MAIL or RCPT may carry (hardening.md C-SM10).
pub const MAX_PARAMS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Helo(&'a str),
    Ehlo(&'a str),
    Mail {
        path: &'a str,
        params: Vec<Param<'a>>,
    },
    Rcpt {
        path: &'a str,
        params: Vec<Param<'a>>,
    },
    Data,
    /// RFC 3030 §2: `BDAT chunk-size [LAST]`.
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    /// RFC 4954 §4: `AUTH mechanism [initial-response]`.
    Auth {
        mechanism: &'a str,
        initial: Option<&'a str>,
    },
    /// The Postfix XCLIENT extension: `ATTR=VALUE` pairs.
    Xclient(Vec<Param<'a>>),
    /// A command this server knows of but does not implement (TURN, ETRN, ...).
    NotImplemented,
    /// An HTTP request line sent to the SMTP port (hardening.md C-SM13).
    Http,
}

/// An ESMTP parameter `keyword[=value]` (RFC 5321 §4.1.2), keyword uppercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    pub keyword: String,
    pub value: Option<&'a str>,
}

/// Parse one command line, without its CRLF.
pub fn parse(line: &[u8]) -> Result<Command<'_>, SmtpError> {
    // RFC 5321 §2.4: commands are ASCII, except the UTF-8 an SMTPUTF8 path may hold.
    let line = std::str::from_utf8(line).map_err(|_| SmtpError::Syntax("invalid UTF-8"))?;
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(SmtpError::Syntax("control character in command"));
    }
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, ""),
    };
    let upper = verb.to_ascii_uppercase();
    let no_args = |c: Command<'static>| {
        if rest.trim().is_empty() {
            Ok(c)
        } else {
            Err(SmtpError::Syntax("no arguments allowed"))
        }
    };
    match upper.as_str() {
        "HELO" => Ok(Command::Helo(helo_argument(rest)?)),
        "EHLO" => Ok(Command::Ehlo(helo_argument(rest)?)),
        "MAIL" => {
            let (path, params) = path_and_params(rest, "FROM:")?;
            Ok(Command::Mail { path, params })
        }
        "RCPT" => {
            let (path, params) = path_and_params(rest, "TO:")?;
            Ok(Command::Rcpt { path, params })
        }
        "DATA" => no_args(Command::Data),
        "BDAT" => bdat(rest),
        "RSET" => no_args(Command::Rset),
        // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        "EXPN" => Ok(Command::Expn),
        "HELP" => Ok(Command::Help),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => {
            let mut words = rest.split(' ');
            let mechanism = words
                .next()
                .filter(|m| !m.is_empty())
                .ok_or(SmtpError::Syntax("AUTH needs a mechanism"))?;
            let initial = words.next();
            if words.next().is_some() {
                return Err(SmtpError::Syntax("too many AUTH arguments"));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        "XCLIENT" => Ok(Command::Xclient(params(rest)?)),
        "TURN" | "ETRN" | "ATRN" | "SEND" | "SOML" | "SAML" | "VERB" | "BURL" => {
            Ok(Command::NotImplemented)
        }
        "GET" | "POST" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "CONNECT" | "PATCH" | "TRACE"
            if !rest.is_empty() =>
        {
            Ok(Command::Http)
        }
        _ => Err(SmtpError::UnknownCommand),
    }
}

/// RFC 5321 §4.1.1.1: `EHLO domain / address-literal`. Clients in the wild send all
/// kinds of names; Tern takes any single printable token and records it as given.
fn helo_argument(rest: &str) -> Result<&str, SmtpError> {
    let arg = rest.trim_end();
    if arg.is_empty() {
        return Err(SmtpError::Syntax("HELO/EHLO needs a domain"));
    }
    if arg.contains(' ') || arg.len() > message::address::MAX_DOMAIN + 2 {
        return Err(SmtpError::Syntax("bad HELO/EHLO domain"));
    }
    Ok(arg)
}

/// `FROM:<path> params` / `TO:<path> params`. Spaces after the colon are tolerated
/// (as most servers do); the angle brackets are required.
fn path_and_params<'a>(
    rest: &'a str,
    prefix: &str,
) -> Result<(&'a str, Vec<Param<'a>>), SmtpError> {
    let head = rest
        .get(..prefix.len())
        .ok_or(SmtpError::Syntax("expected FROM:<address> or TO:<address>"))?;
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(SmtpError::Syntax("expected FROM:<address> or TO:<address>"));
    }
    let rest = rest[prefix.len()..].trim_start_matches(' ');
    if !rest.starts_with('<') {
        return Err(SmtpError::Syntax("address must be in angle brackets"));
    }
    let end = closing_bracket(rest).ok_or(SmtpError::Syntax("unterminated address"))?;
    let path = &rest[..=end];
    let after = &rest[end + 1..];
    if !after.is_empty() && !after.starts_with(' ') {
        return Err(SmtpError::Syntax("garbage after address"));
    }
    Ok((path, params(after)?))
}

/// Index of the '>' that closes a path starting with '<', skipping quoted strings.
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `esmtp-param *(SP esmtp-param)`; esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"),
/// esmtp-value = 1*(%d33-60 / %d62-126) plus UTF-8 (RFC 6531 §3.3).
fn params(s: &str) -> Result<Vec<Param<'_>>, SmtpError> {
    let mut out: Vec<Param<'_>> = Vec::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if out.len() >= MAX_PARAMS {
            return Err(SmtpError::BadParameter("(too many parameters)".into()));
        }
        let (keyword, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let keyword_ok = keyword
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && keyword
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        let value_ok = value.is_none_or(|v| {
            !v.is_empty()
                && v.chars()
                    .all(|c| (c > ' ' && c != '=' && c != '\x7f') || !c.is_ascii())
        });
        if !keyword_ok || !value_ok {
            return Err(SmtpError::BadParameter(truncate(word)));
        }
        let keyword = keyword.to_ascii_uppercase();
        if out.iter().any(|p| p.keyword == keyword) {
            return Err(SmtpError::BadParameter(format!("{keyword} (given twice)")));
        }
        out.push(Param { keyword, value });
    }
    Ok(out)
}

/// RFC 3030 §2: `BDAT SP chunk-size [SP end-marker]`, chunk-size = 1*DIGIT.
fn bdat(rest: &str) -> Result<Command<'static>, SmtpError> {
    let mut words = rest.split(' ');
    let size = words.next().unwrap_or_default();
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SmtpError::Syntax("BDAT needs a chunk size"));
    }
    // A size that does not fit 64 bits is larger than any limit.
    let size = size.parse::<u64>().unwrap_or(u64::MAX);
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(SmtpError::Syntax("BDAT end marker must be LAST")),
    };
    if words.next().is_some() {
        return Err(SmtpError::Syntax("too many BDAT arguments"));
    }
    Ok(Command::Bdat { size, last })
}

/// Client text quoted back in a reply: bounded.
pub fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_and_rcpt() {
        assert_eq!(
            parse(b"MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME").unwrap(),
            Command::Mail {
                path: "<a@b.test>",
                params: vec![
                    Param {
                        keyword: "SIZE".into(),
                        value: Some("100")
                    },
                    Param {
                        keyword: "BODY".into(),
                        value: Some("8BITMIME")
                    }
                ]
            }
        );
        assert_eq!(
            parse(b"mail from: <>").unwrap(),
            Command::Mail {
                path: "<>",
                params: vec![]
            }
        );
        assert_eq!(
            parse(b"RCPT TO:<\"a>b\"@c.test>").unwrap(),
            Command::Rcpt {
                path: "<\"a>b\"@c.test>",
                params: vec![]
            }
        );
        assert_eq!(
            parse(b"MAIL FROM:a@b.test"),
            Err(SmtpError::Syntax("address must be in angle brackets"))
        );
        assert_eq!(
            parse(b"MAIL TO:<a@b.test>"),
            Err(SmtpError::Syntax("expected FROM:<address> or TO:<address>"))
        );
        assert!(matches!(
            parse(b"MAIL FROM:<a@b.test> BODY=8BITMIME BODY=7BIT"),
            Err(SmtpError::BadParameter(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b.test> =x"),
            Err(SmtpError::BadParameter(_))
        ));
        let many = format!("MAIL FROM:<a@b.test>{}", " X=1".repeat(10_000));
        assert!(matches!(
            parse(many.as_bytes()),
            Err(SmtpError::BadParameter(_))
        ));
    }

    #[test]
    fn bdat_forms() {
        assert_eq!(
            parse(b"BDAT 100").unwrap(),
            Command::Bdat {
                size: 100,
                last: false
            }
        );
        assert_eq!(
            parse(b"BDAT 0 LAST").unwrap(),
            Command::Bdat {
                size: 0,
                last: true
            }
        );
        assert_eq!(
            parse(b"BDAT 18446744073709551616 LAST").unwrap(),
            Command::Bdat {
                size: u64::MAX,
                last: true
            }
        );
        assert!(parse(b"BDAT -1").is_err());
        assert!(parse(b"BDAT 1 FIRST").is_err());
    }

    #[test]
    fn odd_input() {
        assert_eq!(
            parse(b"EHLO a\x00b"),
            Err(SmtpError::Syntax("control character in command"))
        );
        assert_eq!(
            parse(b"EHLO"),
            Err(SmtpError::Syntax("HELO/EHLO needs a domain"))
        );
        assert_eq!(parse(b"GET / HTTP/1.1").unwrap(), Command::Http);
        assert_eq!(parse(b"FOO"), Err(SmtpError::UnknownCommand));
        assert_eq!(parse(b"ETRN x").unwrap(), Command::NotImplemented);
        assert_eq!(
            parse(b"DATA x"),
            Err(SmtpError::Syntax("no arguments allowed"))
        );
        assert_eq!(parse(b"NOOP anything").unwrap(), Command::Noop);
        assert_eq!(
            parse(b"AUTH PLAIN AGFAYgBj").unwrap(),
            Command::Auth {
                mechanism: "PLAIN",
                initial: Some("AGFAYgBj")
            }
        );
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}
