//! What the spam rules need of HTML: the links, each with the host it goes
//! to and the text it shows. A small scanner, not a parser: it looks for
//! `<a` tags and their `href`, bounded in links and in the bytes it reads,
//! each byte looked at a bounded number of times.

/// One `<a href>` of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Lowercased host of the href ("" when it has none, e.g. mailto:).
    pub target_host: String,
    /// The visible text, tags removed, whitespace collapsed.
    pub text: String,
}

const MAX_LINKS: usize = 500;
const MAX_SCAN: usize = 1 << 20;
/// Octets of a link's text read (the rest of a longer one says nothing more).
const MAX_TEXT: usize = 2000;

pub fn links(html: &str) -> Vec<Link> {
    let html = &html[..floor(html, MAX_SCAN)];
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<a") {
        let start = at + i;
        // `<abbr>` and `<address>` are not links (seen before looking for
        // the tag's end: each such tag once scanned on to the next `>`).
        if !lower[start + 2..].starts_with(|c: char| c.is_whitespace()) {
            at = start + 2;
            continue;
        }
        let Some(tag_end) = lower[start..].find('>').map(|e| start + e) else {
            break;
        };
        let tag = &html[start..tag_end];
        // The text shown: up to `</a`, at most MAX_TEXT octets of it (cut
        // on a character boundary).
        let text_end = floor(html, tag_end + 1 + MAX_TEXT);
        let close = lower[tag_end + 1..text_end]
            .find("</a")
            .map_or(text_end, |e| tag_end + 1 + e);
        let text = visible(&html[tag_end + 1..close]);
        if let Some(href) = attribute(tag, "href") {
            out.push(Link {
                target_host: host_of(&href),
                text,
            });
        }
        if out.len() >= MAX_LINKS {
            break;
        }
        at = tag_end;
    }
    out
}

fn floor(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The value of an attribute in a tag, quoted or not.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = lower[at + name.len()..].trim_start();
        if before_ok && rest.starts_with('=') {
            let value_start = tag.len() - rest.len() + 1;
            let value = tag[value_start..].trim_start();
            return Some(match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or("").to_string(),
                _ => value
                    .split(|c: char| c.is_whitespace() || c == '>')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            });
        }
        from = at + name.len();
    }
    None
}

/// Text with tags removed and whitespace collapsed.
pub fn visible(fragment: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in fragment.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The host of a URL (`http://user@Host:80/x` -> `host`).
pub fn host_of(url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else {
        return String::new();
    };
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    let host = if authority.starts_with('[') {
        authority
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A host written in a link's text (`www.bank.test`, `https://bank.test/x`),
/// if the text looks like one.
pub fn host_in_text(text: &str) -> Option<String> {
    let t = text.trim();
    if t.contains("://") {
        return Some(host_of(t)).filter(|h| !h.is_empty());
    }
    let word = t.split_whitespace().next()?;
    let looks_like_host = !t.contains(' ')
        && word.contains('.')
        && word
            .trim_end_matches('/')
            .split('/')
            .next()?
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && word
            .split('.')
            .next_back()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    looks_like_host.then(|| word.split('/').next().unwrap_or("").to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_hosts() {
        let html = r#"<p>Log in at <A class=x HREF="https://evil.test/login">www.mybank.test</a>, or <a href=http://user@Shop.Test:8080/x>shop</a> <abbr>x</abbr> <a name=top></a></p>"#;
        let l = links(html);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].target_host, "evil.test");
        assert_eq!(l[0].text, "www.mybank.test");
        assert_eq!(host_in_text(&l[0].text).as_deref(), Some("www.mybank.test"));
        assert_eq!(l[1].target_host, "shop.test");
        assert_eq!(host_in_text("click here"), None);
        assert_eq!(
            host_in_text("https://a.test/path").as_deref(),
            Some("a.test")
        );
        assert_eq!(host_of("mailto:x@y.test"), "");
        assert_eq!(host_of("http://[2001:db8::1]:80/"), "2001:db8::1");
    }

    #[test]
    fn a_link_text_cut_inside_a_character_is_cut_before_it() {
        // An unclosed link's text is read up to MAX_TEXT octets; that end once
        // fell inside the "€" and the slice panicked (the MX's spam check
        // of the message died with its session). Cut before the "€" now.
        let html = format!(
            "<a href=https://x.test/>{}€ and more",
            "a".repeat(MAX_TEXT - 2)
        );
        let l = links(&html);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].text, "a".repeat(MAX_TEXT - 2));
    }

    #[test]
    fn many_tags_that_start_like_a_link_are_read_once() {
        // `<ab` a megabyte long, one `>` at the end: each `<ab` once looked
        // for its `>` before seeing it was no link (quadratic: seconds of
        // CPU for one message: 13 s in a debug build, 0.08 s now).
        let html = format!("{}>", "<ab".repeat(MAX_SCAN / 3));
        assert!(links(&html).is_empty());
    }
}
