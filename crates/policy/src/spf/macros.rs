//! SPF macros (RFC 7208 §7): parsed with the record, expanded at
//! evaluation time against what is known of the connection.

use std::fmt::Write;
use std::net::IpAddr;

/// Where a macro string appears: the letters `c`, `r` and `t` are allowed
/// only in explanation text (RFC 7208 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Domain,
    Modifier,
    Explanation,
}

/// RFC 7208 §7.3: at least 128 parts must be supported; more are capped.
const MAX_PARTS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Macro {
        letter: char,
        /// Upper-case letter: URL-escape the value (RFC 7208 §7.3).
        escape: bool,
        /// Keep this many right-hand parts.
        keep: Option<usize>,
        reverse: bool,
        delimiters: String,
    },
}

/// A parsed `macro-string` (or `explain-string`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroString(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MacroError(String);

/// What macros expand to (RFC 7208 §7.2).
pub struct Values<'a> {
    /// `s`: the sender (`local@domain`).
    pub sender: &'a str,
    /// `l`, `o`: its local part and domain.
    pub local: &'a str,
    pub sender_domain: &'a str,
    /// `d`: the domain being checked now.
    pub domain: &'a str,
    /// `i`, `c`, `v`: the client address.
    pub ip: IpAddr,
    /// `h`: the HELO/EHLO name.
    pub helo: &'a str,
    /// `r`: the host doing the check.
    pub receiver: &'a str,
    /// `t`: seconds since the epoch.
    pub now: i64,
}

impl MacroString {
    pub fn parse(s: &str, context: Context) -> Result<MacroString, MacroError> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('%') {
            literal.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            match rest.as_bytes().first() {
                Some(b'%') => literal.push('%'),
                Some(b'_') => literal.push(' '),
                Some(b'-') => literal.push_str("%20"),
                Some(b'{') => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| MacroError("unterminated macro".into()))?;
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(macro_expand(&rest[1..end], context)?);
                    rest = &rest[end + 1..];
                    continue;
                }
                _ => return Err(MacroError(format!("bad macro in {s:?}"))),
            }
            rest = &rest[1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(MacroString(pieces))
    }

    /// Whether the string ends with a `%{...}` expansion.
    pub fn ends_with_macro(&self) -> bool {
        matches!(self.0.last(), Some(Piece::Macro { .. }))
    }

    /// Whether expanding needs the validated name of the client (`%{p}`),
    /// which costs DNS queries.
    pub fn needs_ptr(&self) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p, Piece::Macro { letter: 'p', .. }))
    }

    /// The expansion; `p` is the validated domain name of the client when
    /// [`needs_ptr`](Self::needs_ptr) said so ("unknown" otherwise).
    pub fn expand(&self, v: &Values<'_>, p: Option<&str>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Macro {
                    letter,
                    escape,
                    keep,
                    reverse,
                    delimiters,
                } => {
                    let value = raw_value(*letter, v, p);
                    let value = transform(&value, delimiters, *reverse, *keep);
                    if *escape {
                        url_escape(&value, &mut out);
                    } else {
                        out.push_str(&value);
                    }
                }
            }
        }
        out
    }
}

/// `macro-letter transformers *delimiter` between the braces.
fn macro_expand(inner: &str, context: Context) -> Result<Piece, MacroError> {
    let mut chars = inner.chars();
    let first = chars
        .next()
        .ok_or_else(|| MacroError("empty macro".into()))?;
    let letter = first.to_ascii_lowercase();
    let allowed = match context {
        Context::Explanation | Context::Modifier => "slodiphvcrt",
        Context::Domain => "slodiphv",
    };
    if !first.is_ascii_alphabetic() || !allowed.contains(letter) {
        return Err(MacroError(format!("undefined macro letter {first:?}")));
    }
    let rest = chars.as_str();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, rest) = rest.split_at(digits_end);
    let keep = match digits {
        "" => None,
        d => match d.parse::<usize>() {
            Ok(0) => return Err(MacroError("a macro keeps at least one part".into())),
            Ok(n) => Some(n.min(MAX_PARTS)),
            Err(_) => Some(MAX_PARTS),
        },
    };
    let (reverse, delimiters) = match rest.strip_prefix(['r', 'R']) {
        Some(d) => (true, d),
        None => (false, rest),
    };
    if !delimiters.chars().all(|c| ".-+,/_=".contains(c)) {
        return Err(MacroError(format!("bad macro delimiters {delimiters:?}")));
    }
    Ok(Piece::Macro {
        letter,
        escape: first.is_ascii_uppercase(),
        keep,
        reverse,
        delimiters: delimiters.to_string(),
    })
}

fn raw_value(letter: char, v: &Values<'_>, p: Option<&str>) -> String {
    match letter {
        's' => v.sender.to_string(),
        'l' => v.local.to_string(),
        'o' => v.sender_domain.to_string(),
        'd' => v.domain.to_string(),
        'i' => dotted(v.ip),
        'p' => p.unwrap_or("unknown").to_string(),
        'v' => match v.ip {
            IpAddr::V4(_) => "in-addr".into(),
            IpAddr::V6(_) => "ip6".into(),
        },
        'h' => v.helo.to_string(),
        'c' => v.ip.to_string(),
        'r' => v.receiver.to_string(),
        't' => v.now.to_string(),
        _ => String::new(),
    }
}

/// `%{i}`: IPv4 in dotted decimal; IPv6 as 32 dot-separated nibbles
/// (RFC 7208 §7.3, upper-case as in its example).
fn dotted(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(63);
            for byte in v6.octets() {
                for nibble in [byte >> 4, byte & 0xf] {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    let _ = write!(s, "{nibble:X}");
                }
            }
            s
        }
    }
}

/// RFC 7208 §7.3: split on the delimiters (default "."), reverse, keep the
/// right-hand parts, join with ".".
fn transform(value: &str, delimiters: &str, reverse: bool, keep: Option<usize>) -> String {
    if delimiters.is_empty() && !reverse && keep.is_none() {
        return value.to_string();
    }
    let delimiters = if delimiters.is_empty() {
        "."
    } else {
        delimiters
    };
    let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
    if reverse {
        parts.reverse();
    }
    if let Some(n) = keep {
        let skip = parts.len().saturating_sub(n);
        parts.drain(..skip);
    }
    parts.join(".")
}

/// RFC 7208 §7.3 with RFC 3986 §2: everything but the unreserved characters
/// as `%XX`.
fn url_escape(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7208 §7.4's examples.
    #[test]
    fn rfc_examples() {
        let v = Values {
            sender: "strong-bad@email.example.com",
            local: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: "192.0.2.3".parse().unwrap(),
            helo: "mx.example.org",
            receiver: "mx.example.org",
            now: 0,
        };
        let x = |s: &str| {
            MacroString::parse(s, Context::Explanation)
                .unwrap()
                .expand(&v, None)
        };
        assert_eq!(x("%{s}"), "strong-bad@email.example.com");
        assert_eq!(x("%{o}"), "email.example.com");
        assert_eq!(x("%{d}"), "email.example.com");
        assert_eq!(x("%{d4}"), "email.example.com");
        assert_eq!(x("%{d3}"), "email.example.com");
        assert_eq!(x("%{d2}"), "example.com");
        assert_eq!(x("%{d1}"), "com");
        assert_eq!(x("%{dr}"), "com.example.email");
        assert_eq!(x("%{d2r}"), "example.email");
        assert_eq!(x("%{l}"), "strong-bad");
        assert_eq!(x("%{l-}"), "strong.bad");
        assert_eq!(x("%{lr}"), "strong-bad");
        assert_eq!(x("%{lr-}"), "bad.strong");
        assert_eq!(x("%{l1r-}"), "strong");
        assert_eq!(
            x("%{ir}.%{v}._spf.%{d2}"),
            "3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(x("%{lr-}.lp._spf.%{d2}"), "bad.strong.lp._spf.example.com");
        assert_eq!(
            x("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}"),
            "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(
            x("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}"),
            "3.2.0.192.in-addr.strong.lp._spf.example.com"
        );
        assert_eq!(
            x("%{d2}.trusted-domains.example.net"),
            "example.com.trusted-domains.example.net"
        );
        let v6 = Values {
            ip: "2001:db8::cb01".parse().unwrap(),
            ..v
        };
        assert_eq!(
            MacroString::parse("%{ir}.%{v}._spf.%{d2}", Context::Domain)
                .unwrap()
                .expand(&v6, None),
            "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn escapes_and_errors() {
        let v = Values {
            sender: "a@b.test",
            local: "~jack&jill=up-a_b3.c",
            sender_domain: "b.test",
            domain: "b.test",
            ip: "192.0.2.3".parse().unwrap(),
            helo: "h",
            receiver: "r",
            now: 0,
        };
        let s = MacroString::parse("l=%{L} %%%_%-", Context::Explanation).unwrap();
        assert_eq!(s.expand(&v, None), "l=~jack%26jill%3Dup-a_b3.c % %20");
        assert!(MacroString::parse("%{c}", Context::Domain).is_err());
        assert!(MacroString::parse("%{l0}", Context::Domain).is_err());
        assert!(MacroString::parse("%{lx}", Context::Domain).is_err());
        assert!(MacroString::parse("%x", Context::Domain).is_err());
        assert!(MacroString::parse("%{l", Context::Domain).is_err());
        assert!(MacroString::parse("%", Context::Domain).is_err());
    }
}
