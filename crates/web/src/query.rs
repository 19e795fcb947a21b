//! The query string of a request URL (RFC 3986 §3.4), as forms send it.

/// The first value of `name` in `query`, percent-decoded; None when absent
/// or not UTF-8. A `+` stays a `+`: the values asked for here are mail
/// addresses, where `+` is a sub-address separator and a space is invalid.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key)?.eq_ignore_ascii_case(name))
            .then(|| percent_decode(value))
            .flatten()
    })
}

/// `%XX` escapes decoded; None when an escape is malformed or the result is
/// not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_decodes_a_parameter() {
        let q = Some("a=1&emailaddress=j%2Bx%40example.org&b");
        assert_eq!(param(q, "emailaddress").as_deref(), Some("j+x@example.org"));
        assert_eq!(param(q, "EmailAddress").as_deref(), Some("j+x@example.org"));
        assert_eq!(param(q, "b").as_deref(), Some(""));
        assert_eq!(param(q, "c"), None);
        assert_eq!(param(None, "a"), None);
    }

    #[test]
    fn refuses_bad_escapes() {
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
    }
}
