//! Delivery status notifications (RFC 3464, RFC 3461 §6): the
//! `multipart/report; report-type=delivery-status` message sent to the
//! envelope sender, from MAILER-DAEMON, with the null reverse-path.
//!
//! Which recipients get reported (RFC 3461 §4.1): failures unless NOTIFY says
//! NEVER or leaves FAILURE out; "delivered" (local final delivery) and
//! "relayed" (the next hop could not carry the request on) only when NOTIFY
//! asked for SUCCESS. A message from the null sender is never reported on
//! (RFC 5321 §6.1): the callers check that.

use crate::compose::field;

/// What happened to a recipient, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    /// Still being retried (a delay warning).
    Delayed,
    Relayed,
    Delivered,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Relayed => "relayed",
            Action::Delivered => "delivered",
        }
    }
}

/// What is said about one recipient.
#[derive(Debug, Clone, Default)]
pub struct Recipient<'a> {
    pub address: &'a str,
    /// RFC 3461 ORCPT as received (`rfc822;addr` in xtext).
    pub orcpt: Option<&'a str>,
    /// RFC 3463 status, e.g. 5.1.1.
    pub status: &'a str,
    /// The remote's reply or our diagnosis ("" for none).
    pub reply: &'a str,
    pub remote_mta: Option<&'a str>,
}

/// One reported recipient.
#[derive(Debug, Clone)]
pub struct Reported<'a> {
    pub recipient: Recipient<'a>,
    pub action: Action,
}

/// RFC 3461 §4.1: NOTIFY absent means FAILURE (delay warnings, when the operator
/// turns them on, also go to senders who did not say NOTIFY).
pub fn wants(notify: Option<&str>, what: &str) -> bool {
    match notify {
        None => what == "FAILURE",
        Some(n) => n.split(',').any(|x| x.trim().eq_ignore_ascii_case(what)),
    }
}

/// The parts of a report.
pub struct Report<'a> {
    pub reporting_mta: &'a str,
    pub sender: &'a str,
    pub envid: Option<&'a str>,
    pub ret: Option<&'a str>,
    pub arrival: i64,
    pub now: i64,
    pub message_id: String,
    /// For delay warnings: when the mail system gives up.
    pub retry_until: Option<i64>,
    pub recipients: Vec<Reported<'a>>,
    pub original: &'a [u8],
}

/// RFC 3461 §4.3: the whole message goes back with failures (RET=FULL or
/// nothing said); a report without failures carries the headers only.
fn headers_only(ret: Option<&str>, failed: bool) -> bool {
    !failed || ret.is_some_and(|r| r.eq_ignore_ascii_case("HDRS"))
}

/// The xtext-decoded ORCPT of RFC 3461 §4.2 (`rfc822;addr`), as the report
/// shows it: on one line, since xtext can encode CR LF (C-FZ3).
fn original_recipient(orcpt: &str) -> String {
    one_line(&crate::xtext::decode(orcpt)).replacen(';', "; ", 1)
}

/// Keep report fields on one line: a remote's reply may hold anything.
fn one_line(s: &str) -> String {
    crate::header::one_line(s).trim().to_string()
}

impl Report<'_> {
    /// The whole DSN message, CRLF line endings.
    pub fn build(&self) -> Vec<u8> {
        let boundary = format!(
            "tern-dsn-{}",
            &self
                .message_id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        );
        let failed = self.recipients.iter().any(|r| r.action == Action::Failed);
        let delayed = self.recipients.iter().any(|r| r.action == Action::Delayed);
        let subject = if failed {
            "Undelivered Mail Returned to Sender"
        } else if delayed {
            "Delayed Mail (still being retried)"
        } else {
            "Successful Mail Delivery Report"
        };
        let mut m = String::new();
        m.push_str(&format!(
            "From: Mail Delivery System <MAILER-DAEMON@{}>\r\n",
            self.reporting_mta
        ));
        m.push_str(&format!("To: <{}>\r\n", self.sender));
        m.push_str(&format!("Subject: {subject}\r\n"));
        m.push_str(&format!("Date: {}\r\n", crate::date::rfc5322(self.now)));
        m.push_str(&format!("Message-ID: <{}>\r\n", self.message_id));
        // RFC 3834 §5: an automatic reply; nobody should answer it automatically.
        m.push_str("Auto-Submitted: auto-replied\r\n");
        m.push_str("MIME-Version: 1.0\r\n");
        m.push_str(&format!("Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n"));
        m.push_str(&format!("--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"));
        m.push_str(&format!(
            "This is the mail system at host {}.\r\n\r\n",
            self.reporting_mta
        ));
        if failed {
            m.push_str("Your message could not be delivered to one or more recipients.\r\nIt is attached below.\r\n\r\n");
        } else if delayed {
            m.push_str("Your message could not be delivered yet. This is only a warning:\r\nthe mail system keeps trying");
            if let Some(until) = self.retry_until {
                m.push_str(&format!(" until {}", crate::date::rfc5322(until)));
            }
            m.push_str(".\r\nYou do not need to send it again.\r\n\r\n");
        } else {
            m.push_str("Your message was delivered or passed on as you asked to be told.\r\n\r\n");
        }
        for r in &self.recipients {
            let f = &r.recipient;
            // Text, folded as a field is: a reply may be long (C-FZ11).
            let said = format!("<{}>: {}", f.address, one_line(f.reply));
            m.push_str(&format!("{}\r\n", crate::compose::fold(&said, 0)));
        }
        m.push_str(&format!(
            "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        ));
        // RFC 3464 §2.2: per-message fields.
        m.push_str(&format!("Reporting-MTA: dns; {}\r\n", self.reporting_mta));
        if let Some(envid) = self.envid {
            m.push_str(&field("Original-Envelope-Id", envid));
        }
        m.push_str(&format!(
            "Arrival-Date: {}\r\n",
            crate::date::rfc5322(self.arrival)
        ));
        // RFC 3464 §2.3: one block per recipient.
        for r in &self.recipients {
            let f = &r.recipient;
            m.push_str("\r\n");
            if let Some(o) = f.orcpt {
                m.push_str(&field("Original-Recipient", &original_recipient(o)));
            }
            m.push_str(&format!("Final-Recipient: rfc822; {}\r\n", f.address));
            m.push_str(&format!("Action: {}\r\n", r.action.word()));
            m.push_str(&format!(
                "Status: {}\r\n",
                if f.status.is_empty() {
                    "5.0.0"
                } else {
                    f.status
                }
            ));
            if let Some(mta) = f.remote_mta {
                m.push_str(&format!("Remote-MTA: dns; {mta}\r\n"));
            }
            if !f.reply.is_empty() {
                m.push_str(&field("Diagnostic-Code", &format!("smtp; {}", f.reply)));
            }
            m.push_str(&format!(
                "Last-Attempt-Date: {}\r\n",
                crate::date::rfc5322(self.now)
            ));
            // RFC 3464 §2.3.7.
            if let Some(until) = self.retry_until.filter(|_| r.action == Action::Delayed) {
                m.push_str(&format!(
                    "Will-Retry-Until: {}\r\n",
                    crate::date::rfc5322(until)
                ));
            }
        }
        let mut out = m.into_bytes();
        if headers_only(self.ret, failed) {
            out.extend_from_slice(
                format!("\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n").as_bytes(),
            );
            out.extend_from_slice(&self.original[..crate::header::header_end(self.original)]);
        } else {
            out.extend_from_slice(
                format!("\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes(),
            );
            out.extend_from_slice(self.original);
        }
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

    fn rcpt<'a>(address: &'a str, orcpt: Option<&'a str>) -> Recipient<'a> {
        Recipient {
            address,
            orcpt,
            status: "5.1.1",
            reply: "550 5.1.1 No such\r\nuser",
            remote_mta: Some("mx.b.test"),
        }
    }

    /// A report on `r` alone, with the original's header section.
    fn headers_report(r: Recipient<'_>, action: Action) -> Report<'_> {
        Report {
            reporting_mta: "mx.a.test",
            sender: "alice@a.test",
            envid: None,
            ret: Some("HDRS"),
            arrival: 0,
            now: 60,
            message_id: "dsn.2@mx.a.test".into(),
            retry_until: None,
            recipients: vec![Reported {
                recipient: r,
                action,
            }],
            original: b"Subject: hi\r\n\r\nbody\r\n",
        }
    }

    #[test]
    fn notify_rules() {
        assert!(wants(None, "FAILURE"));
        assert!(!wants(None, "SUCCESS"));
        assert!(!wants(Some("NEVER"), "FAILURE"));
        assert!(wants(Some("SUCCESS,FAILURE"), "SUCCESS"));
    }

    #[test]
    fn report_structure() {
        let r = rcpt("x@b.test", Some("rfc822;x+2Bpersonal@b.test"));
        let report = Report {
            reporting_mta: "mx.a.test",
            sender: "alice@a.test",
            envid: Some("ENV1"),
            ret: Some("HDRS"),
            arrival: 0,
            now: 60,
            message_id: "dsn.1@mx.a.test".into(),
            retry_until: None,
            recipients: vec![Reported {
                recipient: r,
                action: Action::Failed,
            }],
            original: b"Subject: hi\r\n\r\nsecret body\r\n",
        };
        let text = String::from_utf8(report.build()).unwrap();
        assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status;"));
        assert!(text.contains("Original-Envelope-Id: ENV1\r\n"));
        assert!(text.contains("Original-Recipient: rfc822; x+personal@b.test\r\n"));
        assert!(text.contains("Final-Recipient: rfc822; x@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.b.test\r\nDiagnostic-Code: smtp; 550 5.1.1 No such  user\r\n"));
        assert!(text.contains("Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\n\r\n"));
        assert!(
            !text.contains("secret body"),
            "RET=HDRS leaves the body out"
        );
        assert!(text.contains("Auto-Submitted: auto-replied"));
        // An independent parser sees the three parts.
        let parsed = mail_parser::MessageParser::default()
            .parse(text.as_bytes())
            .unwrap();
        assert_eq!(parsed.parts.len(), 4);
    }

    /// C-FZ3 (found by reading for the `dsn_report` fuzz target): an ORCPT
    /// whose xtext encodes CR LF must not add fields to the report.
    #[test]
    fn an_orcpt_cannot_smuggle_fields_in() {
        let r = rcpt("x@b.test", Some("rfc822;x+0D+0AX-Injected:+20yes@b.test"));
        let report = Report {
            reporting_mta: "mx.a.test",
            sender: "alice@a.test",
            envid: None,
            ret: None,
            arrival: 0,
            now: 60,
            message_id: "dsn.3@mx.a.test".into(),
            retry_until: None,
            recipients: vec![Reported {
                recipient: r,
                action: Action::Failed,
            }],
            original: b"Subject: hi\r\n\r\nbody\r\n",
        };
        let text = String::from_utf8(report.build()).unwrap();
        assert!(!text.contains("\nX-Injected"), "{text}");
        assert!(text.contains("Original-Recipient: rfc822; x  X-Injected: yes@b.test\r\n"));
    }

    #[test]
    fn delay_warning() {
        let mut r = rcpt("x@b.test", None);
        r.status = "4.4.1";
        let mut report = headers_report(r, Action::Delayed);
        report.now = 3600;
        report.retry_until = Some(86_400);
        let text = String::from_utf8(report.build()).unwrap();
        assert!(text.contains("Subject: Delayed Mail (still being retried)\r\n"));
        assert!(text.contains("Action: delayed\r\nStatus: 4.4.1\r\n"));
        assert!(text.contains("Will-Retry-Until: Fri, 2 Jan 1970 00:00:00 +0000\r\n"));
        assert!(text.contains("You do not need to send it again."));
    }

    /// RFC 5322 §2.1.1 (C-FZ11, found by reading for the
    /// `generated_messages` fuzz target): a remote's reply may run to 100
    /// lines of 512 octets, and the report put it on one line, the human
    /// part's and the Diagnostic-Code's, past the 998 a line may hold: a
    /// receiver may refuse the bounce. Folded, every line fits and the
    /// fields unfold to the reply.
    #[test]
    fn a_long_reply_is_folded_within_the_line_limit() {
        let reply = (0..100)
            .map(|i| format!("550-5.7.1 line {i} {}", "w".repeat(490)))
            .collect::<Vec<_>>()
            .join("\r\n");
        let mut r = rcpt("x@b.test", None);
        r.reply = &reply;
        let out = headers_report(r, Action::Failed).build();
        assert!(crate::compose::longest_line(&out) <= crate::compose::MAX_LINE);
        let text = String::from_utf8(out).unwrap().replace("\r\n ", " ");
        assert!(text.contains(&format!("Diagnostic-Code: smtp; {}\r\n", one_line(&reply))));
    }
}
