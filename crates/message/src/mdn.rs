//! Message disposition notifications (RFC 8098): the report a Sieve
//! `reject` sends when the SMTP session that brought the message is over
//! (RFC 5429 §2.1.1): `multipart/report; report-type=disposition-notification`,
//! with the reason, the machine-readable disposition and the original's
//! header section. Sent from the null reverse-path, never to it.

use crate::header::one_line;

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
        let field = |name: &str| {
            crate::header::fields_named(head, name)
                .first()
                .map(|f| f.unfolded())
        };
        let subject = field("Subject").unwrap_or_default();
        let reason: String = self
            .reason
            .replace("\r\n", "\n")
            .split('\n')
            .collect::<Vec<_>>()
            .join("\r\n");
        let mut m = String::new();
        m.push_str(&format!(
            "From: Mail Delivery System <MAILER-DAEMON@{}>\r\n",
            self.host
        ));
        m.push_str(&format!("To: <{}>\r\n", self.to));
        m.push_str(&format!("Subject: Rejected: {}\r\n", one_line(&subject)));
        m.push_str(&format!("Date: {}\r\n", crate::date::rfc5322(self.now)));
        m.push_str(&format!("Message-ID: <{}>\r\n", self.message_id));
        if let Some(id) = field("Message-ID") {
            m.push_str(&format!("In-Reply-To: {}\r\n", one_line(&id)));
        }
        // RFC 3834 §5: an automatic reply.
        m.push_str("Auto-Submitted: auto-replied (rejected)\r\n");
        m.push_str("MIME-Version: 1.0\r\n");
        m.push_str(&format!(
            "Content-Type: multipart/report; report-type=disposition-notification; boundary=\"{boundary}\"\r\n\r\n"
        ));
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        ));
        m.push_str(&format!(
            "Your message to <{}> was automatically rejected:\r\n\r\n{reason}\r\n",
            self.recipient
        ));
        // RFC 8098 §3.2.
        m.push_str(&format!(
            "\r\n--{boundary}\r\nContent-Type: message/disposition-notification\r\n\r\n"
        ));
        m.push_str(&format!("Reporting-UA: {}; Tern\r\n", self.host));
        m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", self.recipient));
        if let Some(id) = field("Message-ID") {
            m.push_str(&format!("Original-Message-ID: {}\r\n", one_line(&id)));
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
}
