//! The Authentication-Results header field (RFC 8601): one per message, with
//! our authserv-id; incoming ones that claim that id are removed first (§5).

/// One `method=result` clause with its reason comment and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub method: &'static str,
    pub result: String,
    /// Shown as a comment after the result.
    pub comment: Option<String>,
    /// `ptype.property=value` pairs, e.g. ("smtp.mailfrom", "a@b.test").
    pub properties: Vec<(&'static str, String)>,
}

impl Clause {
    pub fn new(method: &'static str, result: impl Into<String>) -> Clause {
        Clause {
            method,
            result: result.into(),
            comment: None,
            properties: Vec::new(),
        }
    }

    pub fn comment(mut self, c: impl Into<String>) -> Clause {
        self.comment = Some(c.into());
        self
    }

    pub fn property(mut self, name: &'static str, value: impl Into<String>) -> Clause {
        self.properties.push((name, value.into()));
        self
    }
}

/// `Authentication-Results: id; clause; clause\r\n`, folded one clause a line.
pub fn header(authserv_id: &str, clauses: &[Clause]) -> String {
    let mut out = format!("Authentication-Results: {authserv_id}");
    if clauses.is_empty() {
        out.push_str("; none");
    }
    for c in clauses {
        out.push_str(";\r\n\t");
        out.push_str(c.method);
        out.push('=');
        out.push_str(&c.result);
        if let Some(comment) = &c.comment {
            out.push_str(&format!(" ({})", comment_text(comment)));
        }
        for (name, value) in &c.properties {
            out.push_str(&format!(" {name}={}", pvalue(value)));
        }
    }
    out.push_str("\r\n");
    out
}

/// RFC 8601 §2.2: a value is a token, an address, or a quoted string.
pub(crate) fn pvalue(v: &str) -> String {
    let plain = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@.-_+=/:".contains(&b));
    if plain {
        return v.to_string();
    }
    let escaped: String = v
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            _ => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

/// A comment without control characters or unbalanced parentheses.
pub(crate) fn comment_text(c: &str) -> String {
    c.chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '(' => '[',
            ')' => ']',
            _ => c,
        })
        .collect()
}

/// The message without the Authentication-Results fields that claim
/// `authserv_id` (RFC 8601 §5: forged or stale claims of ours).
pub fn without_our_results<'a>(message: &'a [u8], authserv_id: &str) -> std::borrow::Cow<'a, [u8]> {
    message::header::without_fields(message, |f| {
        f.name.eq_ignore_ascii_case("Authentication-Results") && claims(f.value, authserv_id)
    })
}

/// Whether a field's authserv-id (before the first `;`, optional version
/// after it) is `id`.
fn claims(value: &[u8], id: &str) -> bool {
    let text = String::from_utf8_lossy(value);
    let first = text.split(';').next().unwrap_or_default();
    // Comments may precede the id (CFWS).
    let without_comments: String = {
        let mut depth = 0;
        first
            .chars()
            .filter(|c| match c {
                '(' => {
                    depth += 1;
                    false
                }
                ')' => {
                    depth -= 1;
                    false
                }
                _ => depth == 0,
            })
            .collect()
    };
    without_comments
        .split_whitespace()
        .next()
        .is_some_and(|t| t.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let h = header(
            "mx.b.test",
            &[
                Clause::new("spf", "pass").property("smtp.mailfrom", "alice@a.test"),
                Clause::new("dkim", "fail")
                    .comment("body hash (bh=) mismatch")
                    .property("header.d", "a.test"),
                Clause::new("dmarc", "pass").property("header.from", "a.test"),
            ],
        );
        assert_eq!(
            h,
            "Authentication-Results: mx.b.test;\r\n\tspf=pass smtp.mailfrom=alice@a.test;\r\n\tdkim=fail (body hash [bh=] mismatch) header.d=a.test;\r\n\tdmarc=pass header.from=a.test\r\n"
        );
        assert_eq!(
            header("mx.b.test", &[]),
            "Authentication-Results: mx.b.test; none\r\n"
        );
        assert_eq!(pvalue("a b\"c"), "\"a b\\\"c\"");
    }

    #[test]
    fn removes_our_claims_only() {
        let m = b"Authentication-Results: mx.b.test; dkim=pass\r\nAuthentication-Results: (x) MX.B.TEST 1;\r\n spf=pass\r\nAuthentication-Results: mx.other.test; spf=fail\r\nSubject: s\r\n\r\nAuthentication-Results: mx.b.test; body\r\n";
        let out = without_our_results(m, "mx.b.test");
        assert_eq!(
            &*out,
            b"Authentication-Results: mx.other.test; spf=fail\r\nSubject: s\r\n\r\nAuthentication-Results: mx.b.test; body\r\n"
        );
    }
}
