//! Modified UTF-7 (RFC 3501 §5.1.3): how IMAP4rev1 clients write mailbox names.
//! IMAP4rev2 and UTF8=ACCEPT clients use UTF-8 (RFC 9051 §5.1, RFC 6855).

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

/// UTF-8 to modified UTF-7: printable ASCII stays, "&" is "&-", the rest is
/// "&" + base64 (with "," for "/") of UTF-16BE + "-".
pub fn encode(name: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&STANDARD_NO_PAD.encode(bytes).replace('/', ","));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Modified UTF-7 to UTF-8; None if it is not valid modified UTF-7.
pub fn decode(name: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = name;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find('-')?;
        let chunk = &after[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let bytes = STANDARD_NO_PAD.decode(chunk.replace(',', "/")).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let s = String::from_utf16(&units).ok()?;
            // Printable ASCII must not be base64-encoded (RFC 3501 §5.1.3).
            if s.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&s);
        }
        rest = &after[end + 1..];
    }
    if rest.chars().any(|c| !(' '..='~').contains(&c)) {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3501_examples() {
        assert_eq!(
            encode("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        assert_eq!(encode("A&B"), "A&-B");
        assert_eq!(decode("A&-B").as_deref(), Some("A&B"));
        assert_eq!(encode("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(decode("&Jjo-!").as_deref(), Some("☺!"));
        assert!(decode("&AGE-").is_none(), "encoded ASCII is invalid");
        assert!(decode("&Jjo").is_none());
        assert!(decode("ü").is_none());
    }
}
