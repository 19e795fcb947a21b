//! Trace header fields (RFC 5321 §4.4): the `Received:` line every SMTP hop
//! prepends, and the `Return-Path:` / `Delivered-To:` lines of final delivery.

use std::net::IpAddr;

/// What the receiving side knows about one SMTP transaction.
#[derive(Debug, Clone)]
pub struct ReceivedInfo<'a> {
    /// The name the client gave in HELO/EHLO.
    pub helo: &'a str,
    pub client_ip: IpAddr,
    /// Our own host name.
    pub by: &'a str,
    /// RFC 3848 / RFC 6531 §4.3 protocol keyword: see [`with_protocol`].
    pub protocol: &'static str,
    /// `TLSv1.3` and the cipher suite name, when the session was encrypted.
    pub tls: Option<(&'a str, &'a str)>,
    /// Our identifier for this message, so logs and headers meet.
    pub id: &'a str,
    /// The single recipient, if there is exactly one (RFC 5321 §4.4: "for" is optional
    /// and leaks the other recipients of a multi-recipient message).
    pub for_rcpt: Option<&'a str>,
    pub date: i64,
}

/// The `with` keyword: RFC 3848 §2 (ESMTP, ESMTPA, ESMTPS, ESMTPSA; SMTP for HELO)
/// and RFC 6531 §4.3 (UTF8SMTP...) when SMTPUTF8 was used.
pub fn with_protocol(ehlo: bool, tls: bool, authenticated: bool, utf8: bool) -> &'static str {
    match (ehlo, utf8, tls, authenticated) {
        (false, _, _, _) => "SMTP",
        (true, false, false, false) => "ESMTP",
        (true, false, false, true) => "ESMTPA",
        (true, false, true, false) => "ESMTPS",
        (true, false, true, true) => "ESMTPSA",
        (true, true, false, false) => "UTF8SMTP",
        (true, true, false, true) => "UTF8SMTPA",
        (true, true, true, false) => "UTF8SMTPS",
        (true, true, true, true) => "UTF8SMTPSA",
    }
}

/// `Received: ...\r\n`, folded over several lines.
pub fn received(info: &ReceivedInfo<'_>) -> String {
    let helo = sanitize(info.helo);
    let mut h = format!(
        "Received: from {helo} ([{}])\r\n\tby {} (Tern) with {} id {}",
        info.client_ip, info.by, info.protocol, info.id
    );
    if let Some((version, cipher)) = info.tls {
        h.push_str(&format!(
            "\r\n\t(version={} cipher={})",
            sanitize(version),
            sanitize(cipher)
        ));
    }
    if let Some(rcpt) = info.for_rcpt {
        h.push_str(&format!("\r\n\tfor <{}>", sanitize(rcpt)));
    }
    h.push_str(&format!(";\r\n\t{}\r\n", crate::date::rfc5322(info.date)));
    h
}

/// A fresh identifier: 12 characters of a base-32 alphabet, 60 random bits
/// (queue ids, the local part of Message-IDs).
pub fn unique_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTVWXYZ";
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes[..]);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// A Message-ID (without the angle brackets) for a message Tern writes:
/// `tag.unique@host` (RFC 5322 §3.6.4).
pub fn message_id(tag: &str, host: &str) -> String {
    format!("{tag}.{}@{host}", unique_id())
}

/// `Return-Path: <sender>\r\nDelivered-To: rcpt\r\n` (RFC 5321 §4.4; Delivered-To as
/// Postfix and qmail write it, which lets loops through forwarding be found).
pub fn delivery_prefix(return_path: &str, delivered_to: &str) -> String {
    format!(
        "Return-Path: <{}>\r\nDelivered-To: {}\r\n",
        sanitize(return_path),
        sanitize(delivered_to)
    )
}

/// Client-supplied text inside a header: no control characters, no parentheses
/// that would unbalance a comment.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '(' || c == ')' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_header() {
        let info = ReceivedInfo {
            helo: "client.test",
            client_ip: "192.0.2.1".parse().unwrap(),
            by: "mx.a.test",
            protocol: with_protocol(true, true, true, false),
            tls: Some(("TLSv1.3", "TLS13_AES_256_GCM_SHA384")),
            id: "abc",
            for_rcpt: Some("bob@a.test"),
            date: 0,
        };
        let h = received(&info);
        assert!(h.starts_with("Received: from client.test ([192.0.2.1])\r\n\tby mx.a.test (Tern) with ESMTPSA id abc\r\n\t(version=TLSv1.3"));
        assert!(h.ends_with("for <bob@a.test>;\r\n\tThu, 1 Jan 1970 00:00:00 +0000\r\n"));
        assert_eq!(with_protocol(false, true, true, true), "SMTP");
        assert_eq!(with_protocol(true, false, false, false), "ESMTP");
    }

    #[test]
    fn client_text_cannot_break_the_header() {
        let info = ReceivedInfo {
            helo: "x\r\nBcc: evil (",
            client_ip: "::1".parse().unwrap(),
            by: "h",
            protocol: "ESMTP",
            tls: None,
            id: "i",
            for_rcpt: None,
            date: 0,
        };
        let h = received(&info);
        assert!(h.contains("from x__Bcc: evil _ ([::1])"));
    }
}
