//! The envelope of a message as IMAP reports it (RFC 9051 §7.5.2, ENVELOPE):
//! the raw header values, with address lists split into their parts. Values
//! stay as written (encoded words undecoded): clients decode them.

use crate::header;

/// One element of an address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeAddress {
    Mailbox {
        name: Option<String>,
        route: Option<String>,
        local: String,
        host: String,
    },
    /// `name:` starts a group (RFC 5322 §3.4)...
    GroupStart(String),
    /// ...and `;` ends it.
    GroupEnd,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Vec<EnvelopeAddress>,
    pub sender: Vec<EnvelopeAddress>,
    pub reply_to: Vec<EnvelopeAddress>,
    pub to: Vec<EnvelopeAddress>,
    pub cc: Vec<EnvelopeAddress>,
    pub bcc: Vec<EnvelopeAddress>,
    pub in_reply_to: Option<String>,
    pub message_id: Option<String>,
}

/// The envelope of the message (or of the encapsulated message) whose header
/// section is `head`.
pub fn envelope(head: &[u8]) -> Envelope {
    let fields = header::fields(head);
    let get = |name: &str| {
        fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.unfolded())
    };
    let list = |name: &str| {
        get(name)
            .map(|v| parse_address_list(&v))
            .unwrap_or_default()
    };
    let from = list("From");
    let or_from = |v: Vec<EnvelopeAddress>| if v.is_empty() { from.clone() } else { v };
    Envelope {
        date: get("Date"),
        subject: get("Subject"),
        sender: or_from(list("Sender")),
        reply_to: or_from(list("Reply-To")),
        from: from.clone(),
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        in_reply_to: get("In-Reply-To"),
        message_id: get("Message-ID"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An atom, a dot-atom piece, or a quoted string (unquoted, `quoted` = true).
    Word(String, bool),
    Special(char),
}

/// At most this many tokens of one header are looked at (C-MM3).
const MAX_TOKENS: usize = 10_000;

fn tokenize(s: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() >= MAX_TOKENS {
            break;
        }
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
            '(' => {
                let mut depth = 1;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '"' => {
                let mut w = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                w.push(n);
                            }
                        }
                        '"' => break,
                        _ => w.push(c),
                    }
                }
                out.push(Token::Word(w, true));
            }
            '<' | '>' | ':' | ';' | ',' | '@' | '.' => out.push(Token::Special(c)),
            _ => {
                let mut w = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "()<>:;,@.\"".contains(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                out.push(Token::Word(w, false));
            }
        }
    }
    out
}

/// RFC 5322 §3.4 address-list, leniently: what does not parse as an address is dropped.
pub fn parse_address_list(value: &str) -> Vec<EnvelopeAddress> {
    let tokens = tokenize(value);
    let mut out = Vec::new();
    let mut pending: Vec<Token> = Vec::new();
    let mut in_group = false;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Special(':') if !in_group => {
                out.push(EnvelopeAddress::GroupStart(phrase(&pending)));
                pending.clear();
                in_group = true;
            }
            Token::Special(';') if in_group => {
                flush_addr_spec(&mut pending, &mut out);
                out.push(EnvelopeAddress::GroupEnd);
                in_group = false;
            }
            Token::Special('<') => {
                let end = tokens[i..]
                    .iter()
                    .position(|t| *t == Token::Special('>'))
                    .map(|p| i + p)
                    .unwrap_or(tokens.len());
                let inner = &tokens[i + 1..end];
                // obs-route: "@a,@b:" before the addr-spec.
                let (route, spec) = match inner.iter().position(|t| *t == Token::Special(':')) {
                    Some(colon) if inner.first() == Some(&Token::Special('@')) => {
                        (Some(join(&inner[..colon])), &inner[colon + 1..])
                    }
                    _ => (None, inner),
                };
                let name = Some(phrase(&pending)).filter(|n| !n.is_empty());
                if let Some((local, host)) = addr_spec(spec) {
                    out.push(EnvelopeAddress::Mailbox {
                        name,
                        route,
                        local,
                        host,
                    });
                }
                pending.clear();
                i = end;
            }
            Token::Special(',') => flush_addr_spec(&mut pending, &mut out),
            t => pending.push(t.clone()),
        }
        i += 1;
    }
    flush_addr_spec(&mut pending, &mut out);
    if in_group {
        out.push(EnvelopeAddress::GroupEnd);
    }
    out
}

fn flush_addr_spec(pending: &mut Vec<Token>, out: &mut Vec<EnvelopeAddress>) {
    if let Some((local, host)) = addr_spec(pending) {
        out.push(EnvelopeAddress::Mailbox {
            name: None,
            route: None,
            local,
            host,
        });
    }
    pending.clear();
}

/// `local@domain` from tokens; the last `@` separates the two.
fn addr_spec(tokens: &[Token]) -> Option<(String, String)> {
    let at = tokens.iter().rposition(|t| *t == Token::Special('@'))?;
    let local = join(&tokens[..at]);
    let host = join(&tokens[at + 1..]);
    (!local.is_empty() && !host.is_empty()).then_some((local, host))
}

/// Tokens written back without spaces (a dot-atom, a route).
fn join(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            Token::Word(w, _) => w.clone(),
            Token::Special(c) => c.to_string(),
        })
        .collect()
}

/// A display name: words separated by single spaces.
fn phrase(tokens: &[Token]) -> String {
    let mut out = String::new();
    for t in tokens {
        let w = match t {
            Token::Word(w, _) => w.as_str(),
            Token::Special('.') => ".",
            Token::Special(_) => continue,
        };
        if !out.is_empty() && w != "." {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: Option<&str>, local: &str, host: &str) -> EnvelopeAddress {
        EnvelopeAddress::Mailbox {
            name: name.map(String::from),
            route: None,
            local: local.into(),
            host: host.into(),
        }
    }

    #[test]
    fn address_lists() {
        assert_eq!(
            parse_address_list(
                "\"Doe, John\" <john@x.test>, jane@y.test (Jane), =?UTF-8?Q?J=C3=B6rg?= <j@z.test>"
            ),
            vec![
                mb(Some("Doe, John"), "john", "x.test"),
                mb(None, "jane", "y.test"),
                mb(Some("=?UTF-8?Q?J=C3=B6rg?="), "j", "z.test")
            ]
        );
        assert_eq!(
            parse_address_list("Team: a@x.test, B <b@x.test>;, c@y.test"),
            vec![
                EnvelopeAddress::GroupStart("Team".into()),
                mb(None, "a", "x.test"),
                mb(Some("B"), "b", "x.test"),
                EnvelopeAddress::GroupEnd,
                mb(None, "c", "y.test")
            ]
        );
        assert_eq!(
            parse_address_list("undisclosed-recipients:;"),
            vec![
                EnvelopeAddress::GroupStart("undisclosed-recipients".into()),
                EnvelopeAddress::GroupEnd
            ]
        );
        assert_eq!(
            parse_address_list("<@r1.test,@r2.test:x@y.test>"),
            vec![EnvelopeAddress::Mailbox {
                name: None,
                route: Some("@r1.test,@r2.test".into()),
                local: "x".into(),
                host: "y.test".into()
            }]
        );
        assert_eq!(
            parse_address_list("John Q. Public <jqp@x.test>"),
            vec![mb(Some("John Q. Public"), "jqp", "x.test")]
        );
        assert!(parse_address_list("not an address").is_empty());
    }

    #[test]
    fn envelope_defaults_sender_and_reply_to_to_from() {
        let e = envelope(b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: A <a@x.test>\r\nSubject: =?UTF-8?B?SGk=?=\r\n To be continued\r\nMessage-ID: <1@x.test>\r\n\r\n");
        assert_eq!(
            e.subject.as_deref(),
            Some("=?UTF-8?B?SGk=?= To be continued")
        );
        assert_eq!(e.sender, e.from);
        assert_eq!(e.reply_to, e.from);
        assert!(e.to.is_empty());
        assert_eq!(e.message_id.as_deref(), Some("<1@x.test>"));
    }
}
