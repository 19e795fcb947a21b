//! Message disposition notifications (RFC 8098): the report a Sieve
//! `reject` sends when the SMTP session that brought the message is over
//! (RFC 5429 §2.1.1): `multipart/report; report-type=disposition-notification`,
//! with the reason, the machine-readable disposition and the original's
//! header section. Sent from the null reverse-path, never to it.

use crate::compose::{field, text_plain};

/// A rejection to report.
pub struct Rejection<'a> {
    /// Our host name (Reporting-UA, the MAILER-DAEMON address).
    pub host: &'a str,
    /// The original's envelope sender: who gets the report.
    pub to: &'a str,
    /// The recipient whose filter refused it.
    pub recipient: &'a str,
    pub reason: &'a str,
    pub now: i64,
    pub message_id: String,
    pub original: &'a [u8],
}

impl Rejection<'_> {
    pub fn build(&self) -> Vec<u8> {
        let boundary = format!(
            "tern-mdn-{}",
            self.message_id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        );
        let head = &self.original[..crate::header::header_end(self.original)];
        let original_field = |name: &str| {
            crate::header::fields_named(head, name)
                .first()
                .map(|f| f.unfolded())
        };
        let subject = original_field("Subject").unwrap_or_default();
        let mut m = String::new();
        m.push_str(&format!(
            "From: Mail Delivery System <MAILER-DAEMON@{}>\r\n",
            self.host
        ));
        m.push_str(&format!("To: <{}>\r\n", self.to));
        m.push_str(&field("Subject", &format!("Rejected: {subject}")));
        m.push_str(&format!("Date: {}\r\n", crate::date::rfc5322(self.now)));
        m.push_str(&format!("Message-ID: <{}>\r\n", self.message_id));
        if let Some(id) = original_field("Message-ID") {
            m.push_str(&field("In-Reply-To", &id));
        }
        // RFC 3834 §5: an automatic reply.
        m.push_str("Auto-Submitted: auto-replied (rejected)\r\n");
        m.push_str("MIME-Version: 1.0\r\n");
        m.push_str(&format!(
            "Content-Type: multipart/report; report-type=disposition-notification; boundary=\"{boundary}\"\r\n\r\n"
        ));
        m.push_str(&format!("--{boundary}\r\n"));
        m.push_str(&text_plain(&format!(
            "Your message to <{}> was automatically rejected:\n\n{}",
            self.recipient, self.reason
        )));
        // RFC 8098 §3.2.
        m.push_str(&format!(
            "\r\n--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
        ));
        m.push_str(&format!("Reporting-UA: {}; Tern\r\n", self.host));
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", self.recipient));
        if let Some(id) = original_field("Message-ID") {
            m.push_str(&field("Original-Message-ID", &id));
        }
        m.push_str("Disposition: automatic-action/MDN-sent-automatically; deleted\r\n");
        m.push_str(&format!(
            "\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        ));
        let mut out = m.into_bytes();
        out.extend_from_slice(head);
        if !out.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure() {
        let r = Rejection {
            host: "mx.a.test",
            to: "bob@b.test",
            recipient: "alice@a.test",
            reason: "I do not want\nthis",
            now: 0,
            message_id: "mdn.1@mx.a.test".into(),
            original: b"Subject: offer\r\nMessage-ID: <o@b.test>\r\n\r\nsecret body\r\n",
        };
        let text = String::from_utf8(r.build()).unwrap();
        assert!(text.contains("report-type=disposition-notification"));
        assert!(text.contains("Subject: Rejected: offer\r\n"));
        assert!(text.contains("I do not want\r\nthis"));
        assert!(text.contains("Disposition: automatic-action/MDN-sent-automatically; deleted"));
        assert!(text.contains("Original-Message-ID: <o@b.test>"));
        assert!(!text.contains("secret body"));
        assert!(text.ends_with("--\r\n"));
    }

    /// RFC 5322 §2.1.1 (C-FZ11): the original's subject and message id
    /// (folded there, of any length) and the script's reason went on one
    /// line each; now every line fits in 998 octets.
    #[test]
    fn long_fields_and_reason_lines_fit_the_line_limit() {
        let subject = (0..300)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join("\r\n ");
        let original = format!(
            "Subject: {subject}\r\nMessage-ID: <{}@b.test>\r\n\r\nbody\r\n",
            "i".repeat(990)
        );
        let reason = format!("go away {}", "ü".repeat(700));
        let r = Rejection {
            host: "mx.a.test",
            to: "bob@b.test",
            recipient: "alice@a.test",
            reason: &reason,
            now: 0,
            message_id: "mdn.2@mx.a.test".into(),
            original: original.as_bytes(),
        };
        let out = r.build();
        let end = crate::header::find(&out, b"text/rfc822-headers").unwrap();
        assert!(crate::compose::longest_line(&out[..end]) <= crate::compose::MAX_LINE);
        let parsed = mail_parser::MessageParser::default()
            .parse(&out[..])
            .unwrap();
        assert_eq!(
            parsed.body_text(0).unwrap().trim_end(),
            format!("Your message to <alice@a.test> was automatically rejected:\n\n{reason}")
                .replace('\n', "\r\n")
        );
    }

    /// C-FZ11 (found by `generated_messages`): a bare CR in the script's
    /// reason went out as it was; CR and LF go only together (RFC 5322
    /// §2.3), so it ends a line as a bare LF does.
    #[test]
    fn a_bare_cr_in_the_reason_ends_a_line() {
        let r = Rejection {
            host: "mx.a.test",
            to: "bob@b.test",
            recipient: "alice@a.test",
            reason: "not\rwanted",
            now: 0,
            message_id: "mdn.3@mx.a.test".into(),
            original: b"Subject: offer\r\n\r\nbody\r\n",
        };
        let out = r.build();
        assert!(out.windows(2).all(|w| w[0] != b'\r' || w[1] == b'\n'));
        assert!(crate::header::find(&out, b"not\r\nwanted\r\n").is_some());
    }
}
