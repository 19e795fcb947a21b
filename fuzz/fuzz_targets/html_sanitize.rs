//! The webmail's HTML sanitizer (`web::sanitize::html`) on hostile HTML:
//! it never panics, and what it returns is safe to show. Its output is
//! html5ever's serialization (text `<` written `&lt;`, attribute values
//! double-quoted with `"` written `&quot;`), so every `<` opens a tag and
//! each tag reads back exactly: no script-capable element, no event
//! handler, no `javascript:`/`vbscript:` URL, and no image from the
//! network unless remote images were allowed (then only https).
#![no_main]
use std::collections::HashMap;

const FORBIDDEN: [&str; 14] = [
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input",
    "button", "textarea", "select", "base", "meta",
];

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let Some((&flags, rest)) = input.split_first() else {
        return;
    };
    let html = String::from_utf8_lossy(rest);
    let remote = flags & 1 == 1;
    let cid = HashMap::from([("a@b".to_string(), "/jmap/download/A1/B7-2/a".to_string())]);
    let out = web::sanitize::html(&html, &cid, remote);
    for (tag, attributes) in tags(&out.html) {
        assert!(
            !FORBIDDEN.contains(&tag.as_str()),
            "<{tag}> in {:?}",
            out.html
        );
        assert!(
            tag != "link" && tag != "style" && tag != "svg" && tag != "math",
            "<{tag}>"
        );
        for (name, value) in attributes {
            assert!(
                !name.starts_with("on"),
                "{name} on <{tag}> in {:?}",
                out.html
            );
            let value = value.trim().to_ascii_lowercase();
            if [
                "href",
                "src",
                "action",
                "formaction",
                "background",
                "srcset",
            ]
            .contains(&name.as_str())
            {
                for scheme in ["javascript:", "vbscript:", "data:text"] {
                    assert!(
                        !value.starts_with(scheme),
                        "{name}={value} in {:?}",
                        out.html
                    );
                }
            }
            if name == "style" {
                // What a browser reads: the value with its entities undone.
                let css = value
                    .replace("&quot;", "\"")
                    .replace("&nbsp;", " ")
                    .replace("&amp;", "&");
                for loads in [
                    "url(",
                    "image-set(",
                    "expression(",
                    "@import",
                    "\\",
                    "behavior",
                ] {
                    assert!(!css.contains(loads), "style {css:?} in {:?}", out.html);
                }
            }
            if tag == "img" && name == "src" {
                let allowed = value.starts_with("/jmap/download/")
                    || value.starts_with("data:image/")
                    || (remote && value.starts_with("https://"));
                assert!(
                    allowed,
                    "img src={value} (remote {remote}) in {:?}",
                    out.html
                );
            }
        }
    }
});

/// The tags of html5ever-serialized HTML: each name (lowercase) and its
/// attributes. Panics on what that serializer never writes.
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let closing = rest.starts_with('/');
        let start = usize::from(closing);
        let name_end = rest[start..]
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .map_or(rest.len(), |i| start + i);
        let name = rest[start..name_end].to_ascii_lowercase();
        assert!(
            !name.is_empty() && !name.starts_with('!'),
            "not a tag at <{rest:.40}"
        );
        rest = &rest[name_end..];
        let mut attributes = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('>') {
                rest = after;
                break;
            }
            assert!(!closing, "a closing tag with attributes: {rest:.40}");
            let eq = rest.find('=').expect("an attribute without a value");
            let attribute = rest[..eq].to_ascii_lowercase();
            let value_start = rest[eq + 1..].strip_prefix('"').expect("an unquoted value");
            let value_end = value_start.find('"').expect("an unterminated value");
            attributes.push((attribute, value_start[..value_end].to_string()));
            rest = &value_start[value_end + 1..];
        }
        if !closing {
            out.push((name, attributes));
        }
    }
    out
}
