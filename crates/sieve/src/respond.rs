//! The messages a script's actions send: vacation responses (RFC 5230
//! §5) and `mailto` notifications (RFC 5436 §2). Both are automatic mail
//! (RFC 3834 §5: `Auto-Submitted`), go out from the null reverse-path, and
//! thread with the original where they answer it.

use message::compose::{crlf_lines, encoded_words, field, text_plain};
use message::header::one_line;

use crate::action::{Notification, VacationReply};

/// The headers every generated message has, folded within RFC 5322's
/// line limits (`message::compose`).
fn head(out: &mut String, from: &str, to: &str, subject: &str, now: i64, id: &str) {
    out.push_str(&field("From", from));
    out.push_str(&field("To", to));
    out.push_str(&field("Subject", &encoded_words(one_line(subject).trim())));
    out.push_str(&format!("Date: {}\r\n", message::date::rfc5322(now)));
    out.push_str(&format!("Message-ID: <{id}>\r\n"));
}

/// A vacation response; `id` is its Message-ID (without brackets).
pub fn vacation(r: &VacationReply, now: i64, id: &str) -> Vec<u8> {
    let mut m = String::new();
    head(&mut m, &r.from, &format!("<{}>", r.to), &r.subject, now, id);
    if let Some(irt) = &r.in_reply_to {
        m.push_str(&field("In-Reply-To", irt));
    }
    if let Some(refs) = &r.references {
        m.push_str(&field("References", refs));
    }
    m.push_str("Auto-Submitted: auto-replied (vacation)\r\n");
    m.push_str("Precedence: bulk\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    if r.mime {
        // RFC 5230 §4.7: with :mime the reason is a MIME entity as is.
        m.push_str(&crlf_lines(r.reason.trim_start_matches(['\r', '\n'])));
    } else {
        m.push_str(&text_plain(&r.reason));
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
        m.push_str(&field(&title, value));
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
    m.push_str(&text_plain(&n.body));
    m.into_bytes()
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

    /// RFC 5322 §2.1.1 and RFC 2047 §2 (C-FZ11): the References of a long
    /// thread, a long subject and a long line of the reason each went on
    /// one line (the subject as one encoded word of any length); now every
    /// line fits in 998 octets, every encoded word in 75, and a reader
    /// gets the same subject, references and text back.
    #[test]
    fn long_threads_subjects_and_reasons_fit_the_line_limits() {
        let refs = (0..60)
            .map(|i| format!("<thread.{i}.0123456789@lists.example.test>"))
            .collect::<Vec<_>>()
            .join(" ");
        let subject = format!("Auto: {}", "Grüße ".repeat(300));
        let reason = format!("Away.\n{}", "ü".repeat(600));
        let r = VacationReply {
            to: "bob@b.test".into(),
            from: "alice@a.test".into(),
            subject: subject.clone(),
            reason: reason.clone(),
            mime: false,
            period: 86_400,
            tracking: "k".into(),
            in_reply_to: Some("<o@b.test>".into()),
            references: Some(refs.clone()),
        };
        let out = vacation(&r, 0, "v.2@mx.a.test");
        assert!(message::compose::longest_line(&out) <= message::compose::MAX_LINE);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.split(['\r', '\n', ' '])
                .filter(|w| w.starts_with("=?"))
                .all(|w| w.len() <= 75),
            "{text}"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(&out[..])
            .unwrap();
        assert_eq!(parsed.subject().unwrap(), subject.trim_end());
        assert_eq!(parsed.references().as_text_list().unwrap().len(), 60);
        assert_eq!(
            parsed.body_text(0).unwrap().trim_end(),
            reason.replace('\n', "\r\n")
        );
    }
}
