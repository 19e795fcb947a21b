//! What the store's search index keeps of a message: the header fields
//! SEARCH, SORT and THREAD ask about (RFC 9051 §6.4.4, RFC 5256), decoded
//! once when the message is stored, and its text for full-text search
//! (text parts decoded to UTF-8 from their transfer encoding and charset,
//! HTML as text, attachment names), bounded.

use mail_parser::MimeHeaders;

use crate::header;

/// Text of one message kept for full-text search, at most.
pub const MAX_BODY_TEXT: usize = 256 * 1024;
/// References (and In-Reply-To ids) kept of a message, at most: the
/// first and the latest, as Netnews trims the field (ids dropped from the
/// second on, the first, the conversation's start, kept). Each costs a
/// look-up when the message is stored and work in THREAD, and the sender
/// writes them: a header section holds some ten thousand.
pub const MAX_REFERENCES: usize = 100;
/// RFC 8970 §3: a preview is at most 256 characters; Tern keeps 200.
pub const PREVIEW_CHARS: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageIndex {
    /// The Date: field in Unix seconds (RFC 5256 §2.2 sent date); None when
    /// absent or unreadable.
    pub sent: Option<i64>,
    /// The day of the Date: field in its own zone (days since 1970).
    pub sent_day: Option<i64>,
    /// Decoded, unfolded.
    pub subject: String,
    /// RFC 5256 §2.1, uppercased.
    pub base_subject: String,
    /// The subject marks a reply or forward (RFC 5256 §2.2 step 5).
    pub reply: bool,
    /// The decoded values of From:, To:, Cc:, Bcc: (SEARCH matches in them).
    pub from: String,
    pub to: String,
    pub cc: String,
    pub bcc: String,
    /// RFC 5256 §3: the mailbox (local part) of the first address, uppercased.
    pub from_key: String,
    pub to_key: String,
    pub cc_key: String,
    /// Message ids without brackets (RFC 5322 §3.6.4).
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Text parts and attachment names, at most [`MAX_BODY_TEXT`] octets.
    pub body: String,
    /// RFC 8970: the start of the text, one line.
    pub preview: String,
}

impl MessageIndex {
    pub fn of(raw: &[u8]) -> MessageIndex {
        let fields = header::fields(raw);
        let first = |name: &str| {
            fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(name))
                .map(|f| f.value)
        };
        let all = |name: &str| -> String {
            fields
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case(name))
                .map(|f| header::decoded(f.value))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let subject = first("Subject").map(header::decoded).unwrap_or_default();
        let key = |name: &str| {
            first(name)
                .map(header::addresses)
                .and_then(|a| a.into_iter().next())
                .map(|m| m.local().to_uppercase())
                .unwrap_or_default()
        };
        let (body, preview) = text_of(raw);
        let date = first("Date")
            .map(header::decoded)
            .and_then(|d| crate::date::parse_rfc5322(&d));
        MessageIndex {
            sent: date.map(|(unix, _)| unix),
            sent_day: date.map(|(unix, offset)| (unix + offset).div_euclid(86_400)),
            base_subject: crate::subject::base_subject(&subject),
            reply: crate::subject::is_reply_or_forward(&subject),
            subject,
            from: all("From"),
            to: all("To"),
            cc: all("Cc"),
            bcc: all("Bcc"),
            from_key: key("From"),
            to_key: key("To"),
            cc_key: key("Cc"),
            message_id: first("Message-ID").and_then(|v| header::message_ids(v).into_iter().next()),
            in_reply_to: first("In-Reply-To")
                .map(header::message_ids)
                .map(trimmed)
                .unwrap_or_default(),
            references: first("References")
                .map(header::message_ids)
                .map(trimmed)
                .unwrap_or_default(),
            body,
            preview,
        }
    }
}

/// At most [`MAX_REFERENCES`] ids: the first and the latest.
fn trimmed(mut ids: Vec<String>) -> Vec<String> {
    if ids.len() > MAX_REFERENCES {
        ids.drain(1..ids.len() - (MAX_REFERENCES - 1));
    }
    ids
}

/// The text to search and the preview: text parts (HTML as text) and
/// attachment names, bounded.
fn text_of(raw: &[u8]) -> (String, String) {
    let parsed = crate::parsed::parse(raw);
    let Some(m) = parsed.message() else {
        return (String::new(), String::new());
    };
    let mut body = String::new();
    let push = |text: &str, body: &mut String| {
        if body.len() >= MAX_BODY_TEXT {
            return;
        }
        let room = MAX_BODY_TEXT - body.len();
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&text[..end]);
    };
    for i in 0..m.text_body_count() {
        if let Some(t) = m.body_text(i) {
            push(&t, &mut body);
        }
    }
    if m.text_body_count() == 0 {
        for i in 0..m.html_body_count() {
            if let Some(t) = m.body_text(i) {
                push(&t, &mut body);
            }
        }
    }
    let preview = preview_of(&body);
    for a in m.attachments() {
        if let Some(name) = a.attachment_name() {
            push(name, &mut body);
        }
    }
    (body, preview)
}

/// RFC 8970 §3: whitespace runs as one space, at most [`PREVIEW_CHARS`].
fn preview_of(text: &str) -> String {
    let mut out = String::new();
    for (n, word) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= PREVIEW_CHARS {
            break;
        }
    }
    out.chars().take(PREVIEW_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_text() {
        let raw = b"From: \"Bob B\" <bob@b.test>\r\nTo: a@a.test, Carol <carol@c.test>\r\n\
Subject: Re: [list] =?UTF-8?Q?Caf=C3=A9?=\r\nDate: Tue, 01 Dec 2026 10:00:00 +0100\r\n\
Message-ID: <m1@b.test>\r\nIn-Reply-To: <m0@a.test>\r\nReferences: <r1@x> <m0@a.test>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello   there,\r\nthe figures.\r\n\
--b\r\nContent-Type: application/pdf; name=q3.pdf\r\nContent-Disposition: attachment; filename=q3.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";
        let i = MessageIndex::of(raw);
        assert_eq!(i.subject, "Re: [list] Caf\u{e9}");
        assert_eq!(i.base_subject, "CAF\u{c9}");
        assert!(i.reply);
        assert_eq!(i.sent, Some(1_796_115_600));
        assert_eq!(i.sent_day, Some(1_796_115_600 / 86_400));
        assert_eq!(i.from, "\"Bob B\" <bob@b.test>");
        assert_eq!(i.from_key, "BOB");
        assert_eq!(i.to_key, "A");
        assert_eq!(i.message_id.as_deref(), Some("m1@b.test"));
        assert_eq!(i.in_reply_to, ["m0@a.test"]);
        assert_eq!(i.references, ["r1@x", "m0@a.test"]);
        assert!(i.body.contains("the figures."), "{}", i.body);
        assert!(i.body.contains("q3.pdf"));
        assert_eq!(i.preview, "Hello there, the figures.");
        let bare = MessageIndex::of(b"Subject: x\r\n\r\nbody");
        assert_eq!(bare.sent, None);
        assert_eq!(bare.body, "body");
    }

    /// A sender writes References: each id costs a look-up when the message
    /// is stored (which conversation it joins) and work in THREAD; a header
    /// section holds some ten thousand. Kept as Netnews trims them: the
    /// first (the conversation's start) and the most recent.
    #[test]
    fn references_are_trimmed_to_the_first_and_the_latest() {
        let ids: Vec<String> = (0..10_000).map(|n| format!("<{n}@x>")).collect();
        let raw = format!("References: {}\r\n\r\nbody", ids.join("\r\n "));
        let i = MessageIndex::of(raw.as_bytes());
        assert_eq!(i.references.len(), MAX_REFERENCES);
        assert_eq!(i.references[0], "0@x");
        assert_eq!(
            i.references[1],
            format!("{}@x", 10_000 - MAX_REFERENCES + 1)
        );
        assert_eq!(i.references.last().map(String::as_str), Some("9999@x"));
        let raw = format!("In-Reply-To: {}\r\n\r\nbody", ids.join(" "));
        assert_eq!(
            MessageIndex::of(raw.as_bytes()).in_reply_to.len(),
            MAX_REFERENCES
        );
        let few = MessageIndex::of(b"References: <a@x> <b@x>\r\n\r\n");
        assert_eq!(few.references, ["a@x", "b@x"]);
    }
}
