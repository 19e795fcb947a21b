//! The base subject of RFC 5256 §2.1: the subject without the "Re:",
//! "Fwd:", "[list]" and "(fwd)" that replies and forwards add, so that SORT
//! SUBJECT and THREAD put a conversation together.

/// RFC 5256 §2.1, steps 1 to 7, on an already decoded subject; the result
/// is uppercased for comparison (the i;unicode-casemap of RFC 5051, in its
/// simple form).
pub fn base_subject(decoded: &str) -> String {
    // (1) tabs and continuations to one space each, runs of spaces to one.
    let mut s = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    loop {
        // (2) trailing "(fwd)" and spaces.
        loop {
            let t = s.trim_end();
            let t = match strip_suffix_ci(t, "(fwd)") {
                Some(rest) => rest.trim_end(),
                None => t,
            };
            if t.len() == s.len() {
                break;
            }
            s = t.to_string();
        }
        // (3)-(5) leading blobs and "re:" / "fw:" / "fwd:".
        loop {
            let before = s.len();
            s = strip_leader(&s).to_string();
            if let Some(rest) = strip_blob(&s)
                && !rest.is_empty()
            {
                s = rest.to_string();
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd: ...]" around the whole.
        match strip_prefix_ci(&s, "[fwd:").and_then(|r| r.strip_suffix(']')) {
            Some(inner) => s = inner.trim().to_string(),
            None => break,
        }
    }
    s.to_uppercase()
}

/// Whether the subject as written is a reply or forward (it had a
/// subj-refwd or "(fwd)" to remove): RFC 5256 §2.2 step 5 prefers the
/// original over replies when grouping by subject.
pub fn is_reply_or_forward(decoded: &str) -> bool {
    let s = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    let t = s.trim_end();
    if strip_suffix_ci(t, "(fwd)").is_some() {
        return true;
    }
    let mut rest = t;
    while let Some(r) = strip_blob(rest) {
        rest = r;
    }
    refwd(rest).is_some() || strip_prefix_ci(rest, "[fwd:").is_some()
}

/// subj-leader = (*subj-blob subj-refwd) / WSP
fn strip_leader(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix(' ') {
        return rest;
    }
    let mut rest = s;
    while let Some(r) = strip_blob(rest) {
        rest = r;
    }
    match refwd(rest) {
        Some(after) => after,
        None => s,
    }
}

/// subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
fn refwd(s: &str) -> Option<&str> {
    let rest = strip_prefix_ci(s, "re")
        .or_else(|| strip_prefix_ci(s, "fwd"))
        .or_else(|| strip_prefix_ci(s, "fw"))?;
    let rest = rest.trim_start();
    let rest = strip_blob(rest).unwrap_or(rest);
    rest.strip_prefix(':')
}

/// subj-blob = "[" *BLOBCHAR "]" *WSP, BLOBCHAR anything but "[" and "]".
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find([']', '['])?;
    if inner.as_bytes()[end] != b']' {
        return None;
    }
    Some(inner[end + 1..].trim_start())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let at = s.len().checked_sub(suffix.len())?;
    let tail = s.get(at..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5256_base_subjects() {
        for (subject, base) in [
            ("Re: hello", "HELLO"),
            ("RE: Re: re:hello", "HELLO"),
            ("Fwd: hello", "HELLO"),
            ("Fw: hello (fwd)", "HELLO"),
            ("hello (fwd) (FWD)  ", "HELLO"),
            ("[tern-dev] Re: release", "RELEASE"),
            ("Re: [tern-dev] Re: release", "RELEASE"),
            ("Re[2]: hello", "HELLO"),
            ("[Fwd: Re: hello]", "HELLO"),
            ("Re: [Fwd: hello]", "HELLO"),
            ("[only a blob]", "[ONLY A BLOB]"),
            ("  spaced\t\r\n  out  ", "SPACED OUT"),
            ("Recipe", "RECIPE"),
            ("Re:", ""),
            ("", ""),
            ("Ré: café", "RÉ: CAFÉ"),
        ] {
            assert_eq!(base_subject(subject), base, "{subject:?}");
        }
        assert!(is_reply_or_forward("Re: x"));
        assert!(is_reply_or_forward("[list] Fwd: x"));
        assert!(is_reply_or_forward("x (fwd)"));
        assert!(!is_reply_or_forward("x"));
        assert!(!is_reply_or_forward("[list] x"));
    }
}
