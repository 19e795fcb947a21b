//! A small, transparent rule set: each rule has a name and a score, and the
//! header of every delivered message lists the rules that fired. The
//! rules look at the message as the client sent it (before our own trace
//! fields) and at what the session learned (HELO, reverse DNS, SPF).
//!
//! Archives (hardening.md C-MM9): ZIP attachments are looked into only to
//! read the names in their central directory, never unpacked.

use std::net::IpAddr;

use mail_parser::{Message, MimeHeaders};

use crate::html;
use crate::score::Hit;

/// File name endings that run code when opened on common systems.
const EXECUTABLE: &[&str] = &[
    "exe", "scr", "pif", "bat", "cmd", "com", "js", "jse", "vbs", "vbe", "wsf", "wsh", "hta",
    "jar", "msi", "lnk", "ps1", "cpl", "reg", "iso", "img", "vhd",
];
/// ZIP entries read per archive.
const MAX_ZIP_ENTRIES: usize = 1000;

/// What the rules know besides the message.
pub struct Context<'a> {
    /// Our host name and the domains we serve (lowercase).
    pub hostname: &'a str,
    pub local_domains: &'a [String],
    pub now: i64,
}

/// The content rules that fire on a raw message.
pub fn content(raw: &[u8], ctx: &Context<'_>) -> Vec<Hit> {
    content_of(raw, message::parsed::parse(raw).message(), ctx)
}

/// The same, with the message already parsed (None: it did not parse).
pub fn content_of(raw: &[u8], parsed: Option<&Message<'_>>, ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let fields = message::header::fields(raw);
    let has = |name: &str| fields.iter().any(|f| f.name.eq_ignore_ascii_case(name));
    if !has("Date") {
        hits.push(Hit::new("MISSING_DATE", 1.0, "no Date: field"));
    }
    if !has("Message-ID") {
        hits.push(Hit::new("MISSING_MESSAGE_ID", 1.0, "no Message-ID: field"));
    }
    let bulk = has("List-Id")
        || fields.iter().any(|f| {
            f.name.eq_ignore_ascii_case("Precedence") && {
                let v = f.unfolded().to_ascii_lowercase();
                v.contains("bulk") || v.contains("list")
            }
        });
    if bulk && !has("List-Unsubscribe") {
        hits.push(Hit::new(
            "BULK_NO_UNSUBSCRIBE",
            1.5,
            "bulk mail without List-Unsubscribe",
        ));
    }
    for f in fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("Received"))
    {
        let value = f.unfolded().to_ascii_lowercase();
        if value.contains(&format!("by {}", ctx.hostname.to_ascii_lowercase())) {
            hits.push(Hit::new(
                "FORGED_RECEIVED",
                3.0,
                "a Received: field claims to be ours",
            ));
            break;
        }
    }
    let Some(msg) = parsed else {
        return hits;
    };
    subject_rules(msg, &mut hits);
    date_rules(msg, ctx, &mut hits);
    from_rules(msg, ctx, &mut hits);
    body_rules(msg, &mut hits);
    attachment_rules(msg, &mut hits);
    hits
}

fn subject_rules(msg: &Message<'_>, hits: &mut Vec<Hit>) {
    let Some(subject) = msg.subject() else {
        hits.push(Hit::new("MISSING_SUBJECT", 0.5, "no Subject: field"));
        return;
    };
    let letters: Vec<char> = subject.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() >= 10 && letters.iter().all(|c| c.is_uppercase()) {
        hits.push(Hit::new("SUBJECT_ALL_CAPS", 0.8, "subject in capitals"));
    }
}

fn date_rules(msg: &Message<'_>, ctx: &Context<'_>, hits: &mut Vec<Hit>) {
    let Some(date) = msg.date() else {
        return;
    };
    let t = date.to_timestamp();
    if t > ctx.now + 86_400 {
        hits.push(Hit::new(
            "DATE_IN_FUTURE",
            1.5,
            "Date: more than a day ahead",
        ));
    } else if t < ctx.now - 30 * 86_400 {
        hits.push(Hit::new("DATE_IN_PAST", 1.0, "Date: more than 30 days old"));
    }
}

/// A display name that names one of our domains (or one of our users) on
/// an address elsewhere: the "CEO fraud" form of impersonation.
fn from_rules(msg: &Message<'_>, ctx: &Context<'_>, hits: &mut Vec<Hit>) {
    let Some(from) = msg.from().and_then(|a| a.first()) else {
        return;
    };
    let domain = from
        .address()
        .and_then(|a| a.rsplit_once('@'))
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let ours = |d: &str| {
        ctx.local_domains
            .iter()
            .any(|l| l == d || d.ends_with(&format!(".{l}")))
    };
    if let Some(name) = from.name() {
        let name = name.to_ascii_lowercase();
        let claims = ctx
            .local_domains
            .iter()
            .find(|d| name.contains(&format!("@{d}")) || name.contains(d.as_str()));
        if let Some(claimed) = claims
            && !ours(&domain)
        {
            hits.push(Hit::new(
                "FROM_NAME_CLAIMS_LOCAL",
                4.0,
                format!("display name names {claimed}, address is at {domain}"),
            ));
        }
    }
}

/// HTML with no plain text part beside it (mail-parser converts such HTML
/// into a text body, so the parts are looked at directly).
pub fn html_only(msg: &Message<'_>) -> bool {
    let mut html = false;
    for part in &msg.parts {
        match part.body {
            mail_parser::PartType::Text(_) if !part.is_message() => return false,
            mail_parser::PartType::Html(_) => html = true,
            _ => {}
        }
    }
    html
}

/// The HTML parts as written (mail-parser also offers text parts converted
/// to HTML; those say nothing about links).
pub fn html_parts<'m>(msg: &'m Message<'_>) -> impl Iterator<Item = &'m str> {
    msg.parts
        .iter()
        .filter_map(|p| match &p.body {
            mail_parser::PartType::Html(html) => Some(html.as_ref()),
            _ => None,
        })
        .take(8)
}

fn body_rules(msg: &Message<'_>, hits: &mut Vec<Hit>) {
    if html_only(msg) {
        hits.push(Hit::new("HTML_ONLY", 0.7, "HTML without a text part"));
    }
    let mut mismatch = None;
    let mut ip_link = false;
    for body in html_parts(msg) {
        for link in html::links(body) {
            if link.target_host.parse::<IpAddr>().is_ok() {
                ip_link = true;
            }
            if let Some(shown) = html::host_in_text(&link.text)
                && !link.target_host.is_empty()
                && !same_site(&shown, &link.target_host)
            {
                mismatch.get_or_insert((shown, link.target_host.clone()));
            }
        }
    }
    if let Some((shown, target)) = mismatch {
        hits.push(Hit::new(
            "LINK_TEXT_MISMATCH",
            3.0,
            format!("a link shows {shown} but goes to {target}"),
        ));
    }
    if ip_link {
        hits.push(Hit::new(
            "LINK_TO_IP_ADDRESS",
            1.5,
            "a link to a bare IP address",
        ));
    }
}

/// Same site: one host is the other or a subdomain of it.
fn same_site(a: &str, b: &str) -> bool {
    let a = a.trim_start_matches("www.");
    let b = b.trim_start_matches("www.");
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

fn attachment_rules(msg: &Message<'_>, hits: &mut Vec<Hit>) {
    for part in msg.attachments().take(50) {
        let name = part.attachment_name().unwrap_or("").to_ascii_lowercase();
        if is_executable(&name) {
            hits.push(Hit::new(
                "EXECUTABLE_ATTACHMENT",
                6.0,
                format!("attachment {name}"),
            ));
            return;
        }
        let zip = name.ends_with(".zip")
            || part
                .content_type()
                .is_some_and(|ct| ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("zip")));
        if zip
            && let Some(inner) = zip_names(part.contents())
                .into_iter()
                .find(|n| is_executable(n))
        {
            hits.push(Hit::new(
                "EXECUTABLE_IN_ZIP",
                6.0,
                format!("{name} holds {inner}"),
            ));
            return;
        }
    }
}

fn is_executable(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| EXECUTABLE.contains(&ext.to_ascii_lowercase().as_str()))
}

/// The file names in a ZIP archive's central directory (APPNOTE §4.3.12),
/// read without decompressing anything; empty if it is not a ZIP.
pub fn zip_names(zip: &[u8]) -> Vec<String> {
    // End of central directory: signature PK\5\6, within the last 64 KiB + 22.
    let tail_start = zip.len().saturating_sub(65_557);
    let Some(eocd) = zip[tail_start..]
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .map(|i| tail_start + i)
    else {
        return Vec::new();
    };
    let u16_at = |i: usize| -> Option<usize> {
        Some(u16::from_le_bytes([*zip.get(i)?, *zip.get(i + 1)?]) as usize)
    };
    let u32_at = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes([
            *zip.get(i)?,
            *zip.get(i + 1)?,
            *zip.get(i + 2)?,
            *zip.get(i + 3)?,
        ]) as usize)
    };
    let (Some(count), Some(mut at)) = (u16_at(eocd + 10), u32_at(eocd + 16)) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for _ in 0..count.min(MAX_ZIP_ENTRIES) {
        if zip.get(at..at + 4) != Some(b"PK\x01\x02") {
            break;
        }
        let (Some(name_len), Some(extra), Some(comment)) =
            (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32))
        else {
            break;
        };
        let Some(name) = zip.get(at + 46..at + 46 + name_len) else {
            break;
        };
        names.push(String::from_utf8_lossy(name).to_ascii_lowercase());
        at += 46 + name_len + extra + comment;
    }
    names
}

/// Signals from the session: HELO, reverse DNS, SPF.
pub fn session(helo: &str, ip: IpAddr, hostname: &str, local_domains: &[String]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let helo_l = helo.trim_end_matches('.').to_ascii_lowercase();
    if let Some(literal) = helo_l.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let literal = literal.strip_prefix("ipv6:").unwrap_or(literal);
        if literal.parse::<IpAddr>().ok() != Some(ip) {
            hits.push(Hit::new(
                "HELO_LITERAL_MISMATCH",
                1.5,
                format!("HELO {helo} from {ip}"),
            ));
        }
    } else if helo_l == hostname.to_ascii_lowercase() || local_domains.contains(&helo_l) {
        hits.push(Hit::new(
            "HELO_CLAIMS_OUR_NAME",
            3.0,
            format!("HELO {helo} is our own name"),
        ));
    } else if !helo_l.contains('.') {
        hits.push(Hit::new("HELO_NOT_FQDN", 1.0, format!("HELO {helo}")));
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> (String, Vec<String>) {
        ("mx.a.test".into(), vec!["a.test".into()])
    }

    #[test]
    fn content_rules_fire() {
        let (host, domains) = ctx();
        let c = Context {
            hostname: &host,
            local_domains: &domains,
            now: 1_800_000_000,
        };
        let raw = b"From: \"CEO a.test\" <boss@evil.test>\r\nSubject: URGENT WIRE TRANSFER NOW\r\nPrecedence: bulk\r\nReceived: from x by mx.a.test; Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<a href=\"http://10.0.0.1/login\">https://www.a-bank.test/login</a>";
        let rules: Vec<&str> = content(raw, &c).iter().map(|h| h.rule).collect();
        for want in [
            "MISSING_DATE",
            "MISSING_MESSAGE_ID",
            "BULK_NO_UNSUBSCRIBE",
            "FORGED_RECEIVED",
            "SUBJECT_ALL_CAPS",
            "FROM_NAME_CLAIMS_LOCAL",
            "HTML_ONLY",
            "LINK_TEXT_MISMATCH",
            "LINK_TO_IP_ADDRESS",
        ] {
            assert!(rules.contains(&want), "{want} did not fire: {rules:?}");
        }
        let clean = b"From: Alice <alice@b.test>\r\nDate: Fri, 15 Jan 2027 08:00:00 +0000\r\nMessage-ID: <1@b.test>\r\nSubject: lunch\r\n\r\nSee you at noon.\r\n";
        assert!(content(clean, &c).is_empty(), "{:?}", content(clean, &c));
    }

    #[test]
    fn executables_and_zips() {
        // A ZIP with one stored entry "invoice.pdf.exe".
        let mut zip = Vec::new();
        let name = b"invoice.pdf.exe";
        zip.extend_from_slice(b"PK\x03\x04");
        zip.extend_from_slice(&[0; 22]);
        zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&[0, 0]);
        zip.extend_from_slice(name);
        let cd = zip.len();
        zip.extend_from_slice(b"PK\x01\x02");
        zip.extend_from_slice(&[0; 24]);
        zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&[0; 16]);
        zip.extend_from_slice(name);
        zip.extend_from_slice(b"PK\x05\x06");
        zip.extend_from_slice(&[0; 6]);
        zip.extend_from_slice(&1u16.to_le_bytes());
        zip.extend_from_slice(&[0; 4]);
        zip.extend_from_slice(&(cd as u32).to_le_bytes());
        zip.extend_from_slice(&[0, 0]);
        assert_eq!(zip_names(&zip), ["invoice.pdf.exe"]);
        assert!(zip_names(b"not a zip").is_empty());
        assert!(zip_names(b"PK\x05\x06\xff\xff").is_empty());
        assert!(is_executable("a.SCR") && !is_executable("a.pdf"));
    }

    #[test]
    fn session_rules() {
        let (host, domains) = ctx();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let rules = |helo: &str| -> Vec<&'static str> {
            session(helo, ip, &host, &domains)
                .iter()
                .map(|h| h.rule)
                .collect()
        };
        assert_eq!(rules("[192.0.2.9]"), ["HELO_LITERAL_MISMATCH"]);
        assert!(rules("[192.0.2.1]").is_empty());
        assert_eq!(rules("mx.a.test"), ["HELO_CLAIMS_OUR_NAME"]);
        assert_eq!(rules("localhost"), ["HELO_NOT_FQDN"]);
        assert!(rules("mail.b.test").is_empty());
    }
}
