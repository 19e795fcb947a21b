//! The `mailto` notification method (RFC 5436) and its URIs (RFC 6068).

use crate::action::Notification;
use crate::mail::{self, Mail};

/// Recipients one notification may have.
pub const MAX_RECIPIENTS: usize = 10;

/// URI header fields a script may set (RFC 5436 §2.2 forbids the rest:
/// From, Auto-Submitted, Received, Message-ID, Date, ...).
const ALLOWED: &[&str] = &[
    "subject",
    "in-reply-to",
    "references",
    "keywords",
    "comments",
];

/// A parsed `mailto:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub to: Vec<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub headers: Vec<(String, String)>,
}

pub fn parse(uri: &str) -> Result<Target, String> {
    let bad = |why: &str| Err(format!("notify: {uri:?}: {why}"));
    let Some(rest) = uri
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("mailto:"))
        .map(|_| &uri[7..])
    else {
        return bad("only mailto is supported");
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut target = Target {
        to: Vec::new(),
        subject: None,
        body: None,
        headers: Vec::new(),
    };
    let add = |list: &str, to: &mut Vec<String>| -> Result<(), String> {
        for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match message::Mailbox::parse(a) {
                Ok(m) => to.push(m.to_string()),
                Err(_) => return Err(format!("notify: {a:?} is not an address")),
            }
        }
        Ok(())
    };
    add(&decode(path)?, &mut target.to)?;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name)?.to_ascii_lowercase();
        let value = decode(value)?;
        match name.as_str() {
            "to" | "cc" | "bcc" => add(&value, &mut target.to)?,
            "body" => target.body = Some(value),
            "subject" => target.subject = Some(value.replace(['\r', '\n'], " ")),
            n if ALLOWED.contains(&n) => target
                .headers
                .push((name.clone(), value.replace(['\r', '\n'], " "))),
            _ => {}
        }
    }
    if target.to.is_empty() {
        return bad("no recipient");
    }
    if target.to.len() > MAX_RECIPIENTS {
        return bad("too many recipients");
    }
    Ok(target)
}

/// RFC 6068 §2: percent-encoded UTF-8.
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => return Err(format!("notify: bad escape in {s:?}")),
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("notify: {s:?} is not UTF-8"))
}

/// RFC 5436 §2.7: the notification for a message: the URI's subject, or
/// the `:message`, or one naming the message's sender and subject.
pub fn notification(
    t: Target,
    from: String,
    importance: u8,
    message: Option<String>,
    m: &Mail,
) -> Notification {
    let subject_of = m
        .raw_values("Subject")
        .first()
        .map(|s| mail::decoded(s))
        .unwrap_or_default();
    let from_of = m
        .raw_values("From")
        .first()
        .map(|s| mail::decoded(s))
        .unwrap_or_default();
    let summary = format!("New message from {from_of}: {subject_of}");
    let subject = t
        .subject
        .clone()
        .or_else(|| message.clone())
        .unwrap_or_else(|| summary.clone());
    let body = t.body.clone().or(message).unwrap_or(summary);
    Notification {
        to: t.to,
        from,
        subject: subject.chars().take(200).collect(),
        body,
        importance,
        headers: t.headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let t = parse(
            "mailto:alice@a.test,bob@b.test?subject=Hi%20there&body=x&from=evil@x.test&cc=c@c.test",
        )
        .unwrap();
        assert_eq!(t.to, ["alice@a.test", "bob@b.test", "c@c.test"]);
        assert_eq!(t.subject.as_deref(), Some("Hi there"));
        assert!(t.headers.is_empty());
        assert!(parse("xmpp:a@b").is_err());
        assert!(parse("mailto:?subject=x").is_err());
        assert!(parse("mailto:not an address").is_err());
        assert!(parse("mailto:a@b.test?subject=%zz").is_err());
    }
}
