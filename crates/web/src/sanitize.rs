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
    let html = b.clean(html).to_string();
    Sanitized {
        html,
        remote_images_blocked: blocked.load(Ordering::Relaxed),
    }
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
    fn links_open_outside_without_referrer() {
        let out = clean("<a href=\"https://a.test/\">a</a>");
        assert!(out.contains("target=\"_blank\""), "{out}");
        assert!(out.contains("noreferrer"), "{out}");
    }
}
