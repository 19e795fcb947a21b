//! The words a Bayesian filter learns from, in the manner of SpamBayes and
//! bogofilter: decoded text of every text part (HTML reduced to text), the
//! header fields that carry meaning (Subject words, From: address, name and
//! domain, Reply-To domain, the mailer), the hosts of links, the kinds of
//! attachments, and a few shape tokens (HTML only, many links). Each token
//! counts once per message.
//!
//! Bounded: at most [`MAX_TOKENS`] distinct tokens from at most
//! [`MAX_TEXT`] bytes of decoded text (hardening.md C-MM2, C-MM7).

use std::collections::BTreeSet;

use mail_parser::{Message, MimeHeaders};

pub const MAX_TOKENS: usize = 5000;
pub const MAX_TEXT: usize = 512 * 1024;
/// Words shorter than this say little; longer ones are summarised.
const MIN_WORD: usize = 3;
const MAX_WORD: usize = 20;

/// FNV-1a, 64 bits: a stable hash for token storage (the same in every
/// version of Tern, unlike the standard library's hasher).
pub fn hash(token: &str) -> u64 {
    hash_bytes(token.as_bytes())
}

pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The distinct tokens of a raw message, sorted.
pub fn tokenize(raw: &[u8]) -> Vec<String> {
    of_message(raw, message::parsed::parse(raw).message())
}

/// The same, from a message already parsed (None: it did not parse).
pub fn of_message(raw: &[u8], parsed: Option<&Message<'_>>) -> Vec<String> {
    let mut t = Collector::default();
    let Some(msg) = parsed else {
        t.words(
            &String::from_utf8_lossy(&raw[..raw.len().min(MAX_TEXT)]),
            "",
        );
        return t.finish();
    };
    if let Some(subject) = msg.subject() {
        t.words(subject, "subject:");
    }
    if let Some(from) = msg.from().and_then(|a| a.first()) {
        if let Some(name) = from.name() {
            t.words(name, "from:name:");
        }
        if let Some(addr) = from.address() {
            let addr = addr.to_ascii_lowercase();
            t.add(format!("from:addr:{addr}"));
            if let Some((_, domain)) = addr.rsplit_once('@') {
                t.add(format!("from:domain:{domain}"));
            }
        }
    }
    if let Some((_, domain)) = msg
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .and_then(|a| a.rsplit_once('@'))
    {
        t.add(format!("reply-to:domain:{}", domain.to_ascii_lowercase()));
    }
    if let Some(mailer) = msg.header_raw("X-Mailer") {
        t.words(mailer, "x-mailer:");
    }
    let recipients =
        msg.to().map_or(0, |a| a.iter().count()) + msg.cc().map_or(0, |a| a.iter().count());
    t.add(format!("to:count:{}", bucket(recipients)));
    for name in [
        "List-Unsubscribe",
        "List-Id",
        "Precedence",
        "Auto-Submitted",
    ] {
        if msg.header_raw(name).is_some() {
            t.add(format!("header:{}", name.to_ascii_lowercase()));
        }
    }
    if crate::rules::html_only(msg) {
        t.add("shape:html-only".into());
    }
    let mut text_budget = MAX_TEXT;
    for i in 0..msg.text_body_count().max(msg.html_body_count()).min(8) {
        let Some(text) = msg.body_text(i) else {
            continue;
        };
        let text = &text[..floor_char(&text, text_budget)];
        text_budget -= text.len();
        t.words(text, "");
        t.links(text);
    }
    for html in crate::rules::html_parts(msg) {
        let links = crate::html::links(html);
        t.add(format!("shape:links:{}", bucket(links.len())));
        for link in links.iter().take(50) {
            t.host(&link.target_host);
        }
        let images = html.matches("<img").count();
        if images > 0 {
            t.add(format!("shape:images:{}", bucket(images)));
        }
    }
    for part in msg.attachments().take(20) {
        if let Some(ct) = part.content_type() {
            t.add(format!(
                "attach:type:{}/{}",
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase()
            ));
        }
        if let Some(name) = part.attachment_name()
            && let Some((_, ext)) = name.rsplit_once('.')
        {
            t.add(format!("attach:ext:{}", ext.to_ascii_lowercase()));
        }
    }
    t.finish()
}

/// 0, 1, 2-5, 6-20, many.
fn bucket(n: usize) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2..=5 => "few",
        6..=20 => "some",
        _ => "many",
    }
}

fn floor_char(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Default)]
struct Collector {
    set: BTreeSet<String>,
}

impl Collector {
    fn add(&mut self, token: String) {
        if self.set.len() < MAX_TOKENS {
            self.set.insert(token);
        }
    }

    /// Words of free text: letters and digits (and the `$`, `€`, `%` that
    /// spam likes), lowercased; long ones become "skip:" + first letter +
    /// length in tens, as SpamBayes does.
    fn words(&mut self, text: &str, prefix: &str) {
        for raw in text
            .split(|c: char| !(c.is_alphanumeric() || matches!(c, '$' | '€' | '%' | '\'' | '-')))
        {
            let w = raw.trim_matches(|c| c == '\'' || c == '-');
            let len = w.chars().count();
            if len < MIN_WORD {
                continue;
            }
            if len > MAX_WORD {
                let first = w.chars().next().unwrap_or('x').to_lowercase();
                self.add(format!("{prefix}skip:{first}{}", len / 10 * 10));
                continue;
            }
            if w.chars().all(|c| c.is_ascii_digit()) {
                self.add(format!("{prefix}num:{len}"));
                continue;
            }
            self.add(format!("{prefix}{}", w.to_lowercase()));
        }
    }

    /// Hosts of the links written in text.
    fn links(&mut self, text: &str) {
        for (i, _) in text.match_indices("://").take(200) {
            let rest = &text[i + 3..];
            let end = rest
                .find(|c: char| {
                    matches!(c, '/' | '"' | '\'' | '>' | '<' | ')') || c.is_whitespace()
                })
                .unwrap_or(rest.len());
            self.host(&rest[..end]);
        }
    }

    fn host(&mut self, host: &str) {
        let host = host
            .rsplit('@')
            .next()
            .unwrap_or(host)
            .split(':')
            .next()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if host.is_empty() || host.len() > 253 {
            return;
        }
        self.add(format!("url:{host}"));
        // The registrable-looking tail (the last two labels).
        let labels: Vec<&str> = host.split('.').collect();
        if labels.len() > 2 {
            self.add(format!("url:{}", labels[labels.len() - 2..].join(".")));
        }
        if host.parse::<std::net::IpAddr>().is_ok() {
            self.add("url:ip-address".into());
        }
    }

    fn finish(self) -> Vec<String> {
        self.set.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_message() {
        let raw = b"From: \"Pharma Shop\" <deals@cheap-pills.test>\r\nTo: a@b.test\r\nSubject: Cheap VIAGRA now!!!\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Buy <b>cheap</b> pills at <a href=\"http://www.cheap-pills.test/buy\">our store</a> for $9.99 1234567 supercalifragilisticexpialidocious</p>";
        let t = tokenize(raw);
        for want in [
            "subject:viagra",
            "subject:cheap",
            "from:addr:deals@cheap-pills.test",
            "from:domain:cheap-pills.test",
            "from:name:pharma",
            "shape:html-only",
            "url:www.cheap-pills.test",
            "url:cheap-pills.test",
            "cheap",
            "pills",
            "num:7",
            "skip:s30",
            "to:count:1",
        ] {
            assert!(t.contains(&want.to_string()), "no {want} in {t:?}");
        }
        assert!(!t.iter().any(|w| w == "at"), "short words are dropped");
        assert_eq!(hash("cheap"), hash("cheap"));
        assert_ne!(hash("cheap"), hash("pills"));
    }

    #[test]
    fn bounded() {
        let mut raw = b"Subject: x\r\n\r\n".to_vec();
        for i in 0..20_000 {
            raw.extend_from_slice(format!("word{i} ").as_bytes());
        }
        assert_eq!(tokenize(&raw).len(), MAX_TOKENS);
    }
}
