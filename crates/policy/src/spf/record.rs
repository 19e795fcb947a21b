//! The SPF record grammar (RFC 7208 §4.5, §4.6, §5, §6 and the ABNF of §12).
//!
//! A record is parsed whole before anything is evaluated: a syntax error
//! anywhere in it is a `permerror`, even after a mechanism that would have
//! matched (RFC 7208 §4.6: "If there are any syntax errors anywhere in the
//! record, check_host() returns immediately with the result 'permerror',
//! without further interpretation").

use std::net::{Ipv4Addr, Ipv6Addr};

use super::macros::{Context, MacroString};

/// The qualifier in front of a mechanism (RFC 7208 §4.6.2); `+` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

/// Prefix lengths of `a` and `mx` (RFC 7208 §5.6 `dual-cidr-length`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DualCidr {
    pub v4: u8,
    pub v6: u8,
}

impl Default for DualCidr {
    fn default() -> Self {
        DualCidr { v4: 32, v6: 128 }
    }
}

/// One mechanism (RFC 7208 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(MacroString),
    A(Option<MacroString>, DualCidr),
    Mx(Option<MacroString>, DualCidr),
    Ptr(Option<MacroString>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(MacroString),
}

impl Mechanism {
    /// RFC 7208 §4.6.4: the terms that count towards the limit of 10 DNS
    /// queries (with `redirect`).
    pub fn queries_dns(&self) -> bool {
        matches!(
            self,
            Mechanism::Include(_)
                | Mechanism::A(..)
                | Mechanism::Mx(..)
                | Mechanism::Ptr(_)
                | Mechanism::Exists(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
    /// The term as written (for the result's reason).
    pub text: String,
}

/// A parsed record: the directives in order, and the two modifiers RFC
/// 7208 §6 defines (each at most once).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<MacroString>,
    pub exp: Option<MacroString>,
}

/// What makes a record unusable, for the `permerror` reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

fn error(what: impl Into<String>) -> SyntaxError {
    SyntaxError(what.into())
}

/// RFC 7208 §4.5: a TXT record is an SPF record when it starts with
/// `v=spf1` (case-insensitively) followed by a space or nothing.
pub fn is_spf_record(txt: &[u8]) -> bool {
    let Some(head) = txt.get(..6) else {
        return false;
    };
    head.eq_ignore_ascii_case(b"v=spf1") && matches!(txt.get(6), None | Some(b' '))
}

/// Parse a whole SPF record (which [`is_spf_record`] accepted).
pub fn parse(txt: &[u8]) -> Result<Record, SyntaxError> {
    // RFC 7208 §3.1: records are 7-bit ASCII; §12: terms are separated by SP.
    let text = std::str::from_utf8(txt)
        .ok()
        .filter(|t| t.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .ok_or_else(|| error("the record holds a character that is not printable ASCII"))?;
    let mut record = Record::default();
    for term in text
        .get(6..)
        .unwrap_or("")
        .split(' ')
        .filter(|t| !t.is_empty())
    {
        if let Some((name, value)) = modifier(term) {
            add_modifier(&mut record, name, value)?;
        } else {
            record.directives.push(directive(term)?);
        }
    }
    Ok(record)
}

/// `name "=" value` when the term is a modifier (RFC 7208 §12:
/// `name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )`).
fn modifier(term: &str) -> Option<(&str, &str)> {
    let (name, value) = term.split_once('=')?;
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    valid.then_some((name, value))
}

fn add_modifier(record: &mut Record, name: &str, value: &str) -> Result<(), SyntaxError> {
    if name.eq_ignore_ascii_case("redirect") || name.eq_ignore_ascii_case("exp") {
        let spec = domain_spec(value)?;
        let slot = if name.eq_ignore_ascii_case("redirect") {
            &mut record.redirect
        } else {
            &mut record.exp
        };
        // RFC 7208 §6: each of them at most once.
        if slot.replace(spec).is_some() {
            return Err(error(format!("{name}= appears twice")));
        }
        return Ok(());
    }
    // RFC 7208 §6: unknown modifiers are ignored, but must be well-formed.
    MacroString::parse(value, Context::Modifier)
        .map(|_| ())
        .map_err(|e| error(format!("modifier {name}: {e}")))
}

fn directive(term: &str) -> Result<Directive, SyntaxError> {
    let (qualifier, rest) = match term.as_bytes().first() {
        Some(b'+') => (Qualifier::Pass, &term[1..]),
        Some(b'-') => (Qualifier::Fail, &term[1..]),
        Some(b'~') => (Qualifier::SoftFail, &term[1..]),
        Some(b'?') => (Qualifier::Neutral, &term[1..]),
        _ => (Qualifier::Pass, term),
    };
    let split = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (name, args) = rest.split_at(split);
    let bad = || error(format!("bad mechanism {term:?}"));
    let mechanism = match name.to_ascii_lowercase().as_str() {
        "all" if args.is_empty() => Mechanism::All,
        "include" => Mechanism::Include(required_domain(args).ok_or_else(bad)??),
        "exists" => Mechanism::Exists(required_domain(args).ok_or_else(bad)??),
        "ptr" => Mechanism::Ptr(optional_domain(args).ok_or_else(bad)??),
        "a" | "mx" => {
            let (rest, cidr) = dual_cidr(args).ok_or_else(bad)?;
            let domain = optional_domain(rest).ok_or_else(bad)??;
            if name.eq_ignore_ascii_case("a") {
                Mechanism::A(domain, cidr)
            } else {
                Mechanism::Mx(domain, cidr)
            }
        }
        "ip4" => {
            let (ip, len) = network(args, 32).ok_or_else(bad)?;
            Mechanism::Ip4(strict_ipv4(ip).ok_or_else(bad)?, len)
        }
        "ip6" => {
            let (ip, len) = network(args, 128).ok_or_else(bad)?;
            Mechanism::Ip6(ip.parse().map_err(|_| bad())?, len)
        }
        _ => return Err(bad()),
    };
    Ok(Directive {
        qualifier,
        mechanism,
        text: term.to_string(),
    })
}

/// `":" domain-spec`; None when the argument is not of that form.
fn required_domain(args: &str) -> Option<Result<MacroString, SyntaxError>> {
    args.strip_prefix(':').map(domain_spec)
}

/// `[ ":" domain-spec ]`.
fn optional_domain(args: &str) -> Option<Result<Option<MacroString>, SyntaxError>> {
    if args.is_empty() {
        return Some(Ok(None));
    }
    required_domain(args).map(|r| r.map(Some))
}

/// `ip ["/" length]` after the colon of ip4/ip6, the length at most `max`.
fn network(args: &str, max: u8) -> Option<(&str, u8)> {
    let args = args.strip_prefix(':')?;
    match args.split_once('/') {
        Some((ip, len)) => Some((ip, cidr_length(len, max)?)),
        None => Some((args, max)),
    }
}

/// RFC 7208 §12 `qnum`: four decimal octets without leading zeros.
fn strict_ipv4(s: &str) -> Option<Ipv4Addr> {
    let ip: Ipv4Addr = s.parse().ok()?;
    (ip.to_string() == s).then_some(ip)
}

/// A prefix length: "0" or digits without a leading zero, at most `max`.
fn cidr_length(s: &str, max: u8) -> Option<u8> {
    let digits_ok = !s.is_empty()
        && s.len() <= 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    let n: u8 = s.parse().ok().filter(|_| digits_ok)?;
    (n <= max).then_some(n)
}

/// Split `[ip4-cidr-length] ["/" ip6-cidr-length]` off the end of the
/// arguments of `a` or `mx`; None when a length there is malformed.
fn dual_cidr(args: &str) -> Option<(&str, DualCidr)> {
    let mut cidr = DualCidr::default();
    let mut rest = args;
    if let Some(i) = rest.rfind("//") {
        let tail = &rest[i + 2..];
        if tail.bytes().all(|b| b.is_ascii_digit()) {
            cidr.v6 = cidr_length(tail, 128)?;
            rest = &rest[..i];
        }
    }
    if let Some(i) = rest.rfind('/') {
        let tail = &rest[i + 1..];
        if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            cidr.v4 = cidr_length(tail, 32)?;
            rest = &rest[..i];
        }
    }
    Some((rest, cidr))
}

/// RFC 7208 §12: `domain-spec = macro-string domain-end`, `domain-end =
/// ( "." toplabel [ "." ] ) / macro-expand`.
pub fn domain_spec(s: &str) -> Result<MacroString, SyntaxError> {
    let spec = MacroString::parse(s, Context::Domain).map_err(|e| error(e.to_string()))?;
    if spec.ends_with_macro() {
        return Ok(spec);
    }
    let literal = s.strip_suffix('.').unwrap_or(s);
    match literal.rsplit_once('.') {
        Some((_, top)) if is_toplabel(top) => Ok(spec),
        _ => Err(error(format!("{s:?} does not end in a top-level domain"))),
    }
}

/// RFC 7208 §12: `toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum
/// "-" *( alphanum / "-" ) alphanum )`: not all digits.
fn is_toplabel(label: &str) -> bool {
    let b = label.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b.iter().any(|c| c.is_ascii_alphabetic() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Record {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) {
        assert!(parse(s.as_bytes()).is_err(), "{s} should be a syntax error");
    }

    #[test]
    fn selection() {
        assert!(is_spf_record(b"v=spf1"));
        assert!(is_spf_record(b"V=SpF1 -all"));
        assert!(!is_spf_record(b"v=spf10"));
        assert!(!is_spf_record(b"v=spf1mx"));
        assert!(!is_spf_record(b" v=spf1"));
    }

    #[test]
    fn mechanisms() {
        let r = ok(
            "v=spf1 a mx/24//64 ?ptr:x.test ~ip4:1.2.3.0/24 -ip6:::1/128 exists:%{i}.x.test +all",
        );
        assert_eq!(r.directives.len(), 7);
        assert_eq!(
            r.directives[1].mechanism,
            Mechanism::Mx(None, DualCidr { v4: 24, v6: 64 })
        );
        assert_eq!(r.directives[3].qualifier, Qualifier::SoftFail);
        assert_eq!(
            r.directives[3].mechanism,
            Mechanism::Ip4(Ipv4Addr::new(1, 2, 3, 0), 24)
        );
        let r = ok("v=spf1 a//0 a:foo:bar/baz.example.com a:x.test/16");
        assert_eq!(
            r.directives[0].mechanism,
            Mechanism::A(None, DualCidr { v4: 32, v6: 0 })
        );
        assert!(
            matches!(&r.directives[1].mechanism, Mechanism::A(Some(_), c) if *c == DualCidr::default())
        );
        assert!(matches!(&r.directives[2].mechanism, Mechanism::A(Some(_), c) if c.v4 == 16));
    }

    #[test]
    fn syntax_errors() {
        for s in [
            "v=spf1 -all.",
            "v=spf1 -all:foo",
            "v=spf1 all/8",
            "v=spf1 ptr/0",
            "v=spf1 ip4:1.2.3.4/33",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4",
            "v=spf1 ip4:1.2.3.4//32",
            "v=spf1 ip4:1.2.3.4:8080",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip4:01.2.3.4",
            "v=spf1 ip6",
            "v=spf1 ip6:::1/129",
            "v=spf1 ip6::CAFE::BABE",
            "v=spf1 a/33",
            "v=spf1 a//129",
            "v=spf1 a/24/64",
            "v=spf1 a:",
            "v=spf1 a:111.222.33.44",
            "v=spf1 a:abc.123",
            "v=spf1 a:museum",
            "v=spf1 a:museum.",
            "v=spf1 a:example.-com",
            "v=spf1 a:example.com:8080",
            "v=spf1 a:foo-bar",
            "v=spf1 include",
            "v=spf1 include:",
            "v=spf1 include:x.test/24",
            "v=spf1 exists",
            "v=spf1 exists:x.test/24",
            "v=spf1 redirect:x.test",
            "v=spf1 redirect=x.test redirect=y.test",
            "v=spf1 exp=a.test exp=b.test",
            "v=spf1 exp=",
            "v=spf1 exp=-all",
            "v=spf1 =all",
            "v=spf1 1up=foo",
            "v=spf1 foo=%abc",
            "v=spf1 moo.cow/far_out=man:dog/cat",
            "v=spf1 exists:%(ir).sbl.example.com",
            "v=spf1 exists:foo%.sbl.example.com",
            "v=spf1 a:%{a}.example.com",
            "v=spf1 exp=%{r}.example.com",
            "v=spf1 a:foo.example.com\0",
            "v=spf1 a\t-all",
            "v=spf1 \u{80}a -all",
        ] {
            bad(s);
        }
    }

    #[test]
    fn modifiers() {
        let r = ok("v=spf1 moo.cow-far_out=man:dog/cat default=pass exp=x.%{d} redirect=a.test.");
        assert!(r.directives.is_empty());
        assert!(r.exp.is_some() && r.redirect.is_some());
        ok("v=spf1 a:foo.example.xn--zckzah -all");
        ok("v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all");
    }
}
