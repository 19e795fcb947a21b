//! The messages a script's actions send: vacation responses (RFC 5230
//! §5) and `mailto` notifications (RFC 5436 §2). Both are automatic mail
//! (RFC 3834 §5: `Auto-Submitted`), go out from the null reverse-path, and
//! thread with the original where they answer it.

use message::header::one_line;

use crate::action::{Notification, VacationReply};

/// The headers every generated message has.
fn head(out: &mut String, from: &str, to: &str, subject: &str, now: i64, id: &str) {
    out.push_str(&format!("From: {}\r\n", one_line(from)));
    out.push_str(&format!("To: {}\r\n", one_line(to)));
    out.push_str(&format!(
        "Subject: {}\r\n",
        encode_subject(&one_line(subject))
    ));
    out.push_str(&format!("Date: {}\r\n", message::date::rfc5322(now)));
    out.push_str(&format!("Message-ID: <{id}>\r\n"));
}

/// A vacation response; `id` is its Message-ID (without brackets).
pub fn vacation(r: &VacationReply, now: i64, id: &str) -> Vec<u8> {
    let mut m = String::new();
    head(&mut m, &r.from, &format!("<{}>", r.to), &r.subject, now, id);
    if let Some(irt) = &r.in_reply_to {
        m.push_str(&format!("In-Reply-To: {}\r\n", one_line(irt)));
    }
    if let Some(refs) = &r.references {
        m.push_str(&format!("References: {}\r\n", one_line(refs)));
    }
    m.push_str("Auto-Submitted: auto-replied (vacation)\r\n");
    m.push_str("Precedence: bulk\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    if r.mime {
        // RFC 5230 §4.7: with :mime the reason is a MIME entity as is.
        m.push_str(&crlf(r.reason.trim_start_matches(['\r', '\n'])));
    } else {
        m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
        m.push_str(&crlf(&r.reason));
    }
    if !m.ends_with("\r\n") {
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// A notification by mail.
pub fn notification(n: &Notification, now: i64, id: &str) -> Vec<u8> {
    let mut m = String::new();
    let to =
        n.to.iter()
            .map(|a| format!("<{a}>"))
            .collect::<Vec<_>>()
            .join(", ");
    head(&mut m, &n.from, &to, &n.subject, now, id);
    for (name, value) in &n.headers {
        let mut title = name.clone();
        if let Some(first) = title.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        m.push_str(&format!("{title}: {}\r\n", one_line(value)));
    }
    m.push_str("Auto-Submitted: auto-notified\r\n");
    // RFC 5435 §3.6 importance as the common header field.
    m.push_str(&format!(
        "Importance: {}\r\n",
        match n.importance {
            1 => "high",
            3 => "low",
            _ => "normal",
        }
    ));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    m.push_str(&crlf(&n.body));
    if !m.ends_with("\r\n") {
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// Bare LF to CRLF, and dot-safe (a line of one dot stays text).
fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n")
        .split('\n')
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// RFC 2047 for a subject that is not ASCII.
fn encode_subject(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    use base64::Engine;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vacation_message() {
        let r = VacationReply {
            to: "bob@b.test".into(),
            from: "alice@a.test".into(),
            subject: "Auto: caf\u{e9}".into(),
            reason: "Away\nback Monday".into(),
            mime: false,
            period: 86_400,
            tracking: "k".into(),
            in_reply_to: Some("<o@b.test>".into()),
            references: Some("<o@b.test>".into()),
        };
        let text = String::from_utf8(vacation(&r, 0, "v.1@mx.a.test")).unwrap();
        assert!(text.starts_with("From: alice@a.test\r\nTo: <bob@b.test>\r\nSubject: =?UTF-8?B?"));
        assert!(text.contains("In-Reply-To: <o@b.test>\r\n"));
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(text.ends_with("\r\n\r\nAway\r\nback Monday\r\n"));
    }
}
