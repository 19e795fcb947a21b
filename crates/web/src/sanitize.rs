//! A message's HTML made safe to show in the webmail (the reading pane):
//! ammonia's allow-list (no script, no event handler, no form, no
//! `javascript:` URL, no frame, no object), inline styles kept for the
//! layout (what they could load is stopped by the frame's
//! Content-Security-Policy, [`FRAME_CSP`]), `cid:` images pointed at the
//! message's own parts, and remote images removed unless the reader
//! allowed them for this message; the caller learns whether there were
//! some, to offer that. Links open outside the frame, without referrer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the frame showing sanitized HTML may load: nothing but inline
/// styles and the message's own images (and remote images once allowed).
pub const FRAME_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
/// The same with remote images allowed (over https only).
pub const FRAME_CSP_IMAGES: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/// Sanitized HTML, and whether remote images were taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    pub html: String,
    pub remote_images_blocked: bool,
}

/// Sanitize `html`; `cid` maps a Content-ID to the URL of that part.
pub fn html(html: &str, cid: &HashMap<String, String>, remote_images: bool) -> Sanitized {
    let blocked = std::sync::Arc::new(AtomicBool::new(false));
    let seen = blocked.clone();
    let cid = cid.clone();
    let mut b = ammonia::Builder::default();
    b.add_generic_attributes([
        "style", "align", "valign", "bgcolor", "width", "height", "border",
    ])
    .add_tag_attributes("img", ["src", "alt", "width", "height"])
    .add_tag_attributes("td", ["colspan", "rowspan"])
    .add_url_schemes(["cid"])
    .set_tag_attribute_value("a", "target", "_blank")
    .link_rel(Some("noopener noreferrer"))
    .attribute_filter(move |element, attribute, value| {
        if attribute == "style" {
            return safe_style(value).then(|| value.into());
        }
        if element != "img" || attribute != "src" {
            return Some(value.into());
        }
        if let Some(id) = value.strip_prefix("cid:") {
            return cid
                .get(id.trim_matches(['<', '>']))
                .map(|u| u.clone().into());
        }
        if value.starts_with("data:image/") {
            return Some(value.into());
        }
        if remote_images && value.starts_with("https://") {
            return Some(value.into());
        }
        seen.store(true, Ordering::Relaxed);
        None
    });
    let html = mark_misleading_links(&b.clean(html).to_string());
    Sanitized {
        html,
        remote_images_blocked: blocked.load(Ordering::Relaxed),
    }
}

/// After each link whose text names another host than its target (the
/// phisher's `<a href="https://evil.test">https://bank.test</a>`), the
/// host it really leads to, marked. Works on ammonia's output, which is
/// serialized by html5ever: attributes double-quoted, anchors never
/// nested.
fn mark_misleading_links(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<a ") {
        let Some(open_end) = rest[start..].find('>').map(|i| start + i + 1) else {
            break;
        };
        let Some(close) = rest[open_end..].find("</a>").map(|i| open_end + i) else {
            break;
        };
        let tag = &rest[start..open_end];
        let text = decode(&strip_tags(&rest[open_end..close]));
        out.push_str(&rest[..close + 4]);
        let target = tag
            .split_once("href=\"")
            .and_then(|(_, v)| v.split_once('"'))
            .map(|(v, _)| decode(v));
        if let (Some(target), Some(shown)) =
            (target.as_deref().and_then(host_of), host_in_text(&text))
            && !same_site(&target, &shown)
        {
            out.push_str(&format!(
                "<span style=\"color:#a40e26;font-weight:bold\" title=\"the link's text names another site than it leads to\"> [leads to {}]</span>",
                ammonia::clean_text(&target)
            ));
        }
        rest = &rest[close + 4..];
    }
    out.push_str(rest);
    out
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// The entities html5ever writes.
fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The host of an http(s) or bare URL, lower case.
fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest
        .split(['/', '?', '#', ':'])
        .next()?
        .trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The host a link's text shows, if it shows one (`https://x.test/…`,
/// `www.x.test`, `x.test/path`).
fn host_in_text(text: &str) -> Option<String> {
    let t = text.trim();
    if t.contains(char::is_whitespace) {
        return None;
    }
    if let Some(h) = host_of(t) {
        return Some(h);
    }
    let host = t
        .split(['/', '?', '#'])
        .next()?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let looks_like_host = host.contains('.')
        && host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic()))
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    looks_like_host.then_some(host)
}

/// The same site: equal, or one a subdomain of the other.
fn same_site(a: &str, b: &str) -> bool {
    let a = a.trim_start_matches("www.");
    let b = b.trim_start_matches("www.");
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

/// Whether an inline style can load nothing and hide nothing behind
/// escapes: no `url(`, `image-set(`, `expression(`, `@import`, no CSS
/// escapes or comments (which could spell those). A style failing this
/// is dropped whole (the frame's policy would stop the load too).
fn safe_style(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    ![
        "url(",
        "image-set(",
        "expression(",
        "@import",
        "\\",
        "/*",
        "behavior",
        "-moz-binding",
    ]
    .iter()
    .any(|bad| v.contains(bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        html(s, &HashMap::new(), false).html
    }

    #[test]
    fn scripts_handlers_and_javascript_urls_go() {
        let out = clean(
            "<p onclick=\"steal()\">Hi<script>steal()</script></p><a href=\"javascript:steal()\">x</a>\
             <iframe src=\"https://evil.test\"></iframe><form action=\"https://evil.test\"><input name=p></form>\
             <object data=\"x\"></object><svg><script>steal()</script></svg>",
        );
        for bad in [
            "script",
            "onclick",
            "javascript:",
            "iframe",
            "<form",
            "<input",
            "object",
            "steal",
        ] {
            assert!(!out.contains(bad), "{bad} left in {out}");
        }
        assert!(out.contains("Hi"));
    }

    #[test]
    fn remote_images_blocked_until_allowed_and_cid_mapped() {
        let mut cid = HashMap::new();
        cid.insert(
            "logo@a.test".to_string(),
            "/jmap/download/A1/B7-2/logo".to_string(),
        );
        let s = "<img src=\"https://tracker.test/p.gif\"><img src=\"cid:logo@a.test\"><img src=\"http://plain.test/x\">";
        let out = html(s, &cid, false);
        assert!(out.remote_images_blocked);
        assert!(!out.html.contains("tracker.test"), "{}", out.html);
        assert!(
            out.html.contains("/jmap/download/A1/B7-2/logo"),
            "{}",
            out.html
        );
        let allowed = html(s, &cid, true);
        assert!(allowed.html.contains("https://tracker.test/p.gif"));
        assert!(
            !allowed.html.contains("http://plain.test"),
            "never over http"
        );
    }

    #[test]
    fn styles_that_could_load_are_dropped() {
        let out = clean(
            "<div style=\"color: red\">a</div><div style=\"background:url(https://evil.test/x)\">b</div>\
             <div style=\"background: u\\72l(https://evil.test/y)\">c</div><p style=\"width:expression(alert(1))\">d</p>",
        );
        assert!(out.contains("color: red"), "{out}");
        assert!(
            !out.contains("evil.test") && !out.contains("expression"),
            "{out}"
        );
    }

    #[test]
    fn links_that_name_another_site_are_marked() {
        let out = clean(
            "<a href=\"https://evil.test/login\">https://bank.test/login</a> \
             <a href=\"https://www.bank.test/x\">bank.test</a> \
             <a href=\"https://mail.bank.test/\">Your <b>statement</b></a> \
             <a href=\"https://evil.test/\">www.bank.test</a>",
        );
        assert_eq!(out.matches("[leads to evil.test]").count(), 2, "{out}");
        assert!(
            !out.contains("leads to www.bank.test") && !out.contains("leads to mail.bank.test"),
            "{out}"
        );
    }

    #[test]
    fn links_open_outside_without_referrer() {
        let out = clean("<a href=\"https://a.test/\">a</a>");
        assert!(out.contains("target=\"_blank\""), "{out}");
        assert!(out.contains("noreferrer"), "{out}");
    }
}
