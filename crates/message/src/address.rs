//! Mailbox addresses as SMTP carries them (RFC 5321 §4.1.2), with the
//! internationalised forms of RFC 6531 when the session negotiated SMTPUTF8.
//!
//! A [`Mailbox`] can only exist if it parsed: the local part is kept as
//! written (without the quotes of a quoted string), the domain lowercased.
//! Source routes (`@a,@b:user@c`) are accepted and dropped, as RFC 5321
//! §4.1.1.3 and Appendix C ask.

use std::fmt;
use std::net::IpAddr;

/// RFC 5321 §4.5.3.1.1: the maximum total length of a user name or other local-part is 64 octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: the maximum total length of a domain name or number is 255 octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: the maximum total length of a reverse-path or forward-path is 256 octets
/// (including the punctuation and element separators).
pub const MAX_PATH: usize = 256;

/// Why an address did not parse. Each maps to one reply in the protocol crates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address syntax error")]
    Syntax,
    #[error("local part longer than 64 octets")]
    LocalPartTooLong,
    #[error("domain longer than 255 octets")]
    DomainTooLong,
    #[error("path longer than 256 octets")]
    PathTooLong,
    #[error("non-ASCII address without SMTPUTF8")]
    NeedsUtf8,
}

/// The part after `@`: a domain name, or an address literal such as `[192.0.2.1]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// A domain name, lowercased, without a trailing dot.
    Name(String),
    /// `[IPv4]` or `[IPv6:...]` (RFC 5321 §4.1.3).
    Literal(IpAddr),
}

impl Domain {
    /// Parse a domain name (not a literal), as `tern domain add` and EHLO take it.
    pub fn parse_name(s: &str) -> Result<Domain, AddressError> {
        parse_domain_name(s, true).map(Domain::Name)
    }

    /// The domain name, if this is not an address literal.
    pub fn name(&self) -> Option<&str> {
        match self {
            Domain::Name(n) => Some(n),
            Domain::Literal(_) => None,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(n) => f.write_str(n),
            Domain::Literal(IpAddr::V4(ip)) => write!(f, "[{ip}]"),
            Domain::Literal(IpAddr::V6(ip)) => write!(f, "[IPv6:{ip}]"),
        }
    }
}

/// `local-part@domain`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox {
    local: String,
    domain: Domain,
}

impl Mailbox {
    /// Parse `local@domain` without angle brackets (the CLI and the header checks use this).
    /// UTF-8 is allowed here; the SMTP layer checks SMTPUTF8 itself.
    pub fn parse(s: &str) -> Result<Mailbox, AddressError> {
        parse_mailbox(s, true)
    }

    /// The mailbox of a `mailto:` URI's address part, percent-encoded
    /// octets decoded (RFC 6068 §2), when it is exactly one valid address;
    /// None otherwise. The URIs of DNS records (DMARC's and TLS-RPT's
    /// `rua`) are the record owner's to write: a CR LF or a name in one
    /// must not reach a header field we write (C-FZ12).
    pub fn from_mailto(address: &str) -> Option<Mailbox> {
        let mut bytes = Vec::with_capacity(address.len());
        crate::mime::percent_decode(address.as_bytes(), &mut bytes);
        Mailbox::parse(std::str::from_utf8(&bytes).ok()?).ok()
    }

    pub fn new(local: &str, domain: Domain) -> Result<Mailbox, AddressError> {
        parse_mailbox(
            &format!("{}@{}", quote_local_if_needed(local), domain),
            true,
        )
    }

    /// The local part as written, unquoted.
    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Whether any part needs SMTPUTF8 (RFC 6531 §3.2).
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || self.domain.name().is_some_and(|d| !d.is_ascii())
    }

    /// The canonical lookup key: local part lowercased (Tern treats local parts
    /// case-insensitively, as every major server does), `@`, the domain.
    pub fn key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }

    /// The same mailbox without a sub-address: `user+tag@d` gives `user@d`.
    /// None if the local part has no separator (or starts with one).
    pub fn without_detail(&self, separator: char) -> Option<Mailbox> {
        let (base, _) = self.local.split_once(separator)?;
        if base.is_empty() {
            return None;
        }
        Some(Mailbox {
            local: base.to_string(),
            domain: self.domain.clone(),
        })
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", quote_local_if_needed(&self.local), self.domain)
    }
}

/// A reverse-path (MAIL FROM): a mailbox or the null path `<>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    Null,
    Mailbox(Mailbox),
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Mailbox(m) => m.fmt(f),
        }
    }
}

/// A forward-path (RCPT TO): a mailbox, or the special `<Postmaster>` without a domain
/// (RFC 5321 §4.1.1.3, which every server must accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    Postmaster,
    Mailbox(Mailbox),
}

/// Parse `<...>` as a reverse-path. `utf8` says whether SMTPUTF8 was negotiated.
pub fn parse_reverse_path(s: &str, utf8: bool) -> Result<ReversePath, AddressError> {
    let inner = strip_path(s, utf8)?;
    if inner.is_empty() {
        return Ok(ReversePath::Null);
    }
    parse_mailbox(inner, utf8).map(ReversePath::Mailbox)
}

/// Parse `<...>` as a forward-path.
pub fn parse_forward_path(s: &str, utf8: bool) -> Result<ForwardPath, AddressError> {
    let inner = strip_path(s, utf8)?;
    if inner.eq_ignore_ascii_case("postmaster") {
        return Ok(ForwardPath::Postmaster);
    }
    parse_mailbox(inner, utf8).map(ForwardPath::Mailbox)
}

/// Check the brackets and the length, drop a source route, return the mailbox text.
fn strip_path(s: &str, utf8: bool) -> Result<&str, AddressError> {
    if s.len() > MAX_PATH {
        return Err(AddressError::PathTooLong);
    }
    if !utf8 && !s.is_ascii() {
        return Err(AddressError::NeedsUtf8);
    }
    let inner = s
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .ok_or(AddressError::Syntax)?;
    // RFC 5321 §4.1.2: A-d-l = At-domain *( "," At-domain ) ":" Mailbox. Only a path that
    // starts with '@' has a source route; a ':' elsewhere belongs to a quoted local part.
    if inner.starts_with('@') {
        let (route, rest) = inner.split_once(':').ok_or(AddressError::Syntax)?;
        for hop in route.split(',') {
            let d = hop.strip_prefix('@').ok_or(AddressError::Syntax)?;
            parse_domain_name(d, utf8)?;
        }
        return Ok(rest);
    }
    Ok(inner)
}

fn parse_mailbox(s: &str, utf8: bool) -> Result<Mailbox, AddressError> {
    if !utf8 && !s.is_ascii() {
        return Err(AddressError::NeedsUtf8);
    }
    let (local, rest) = parse_local_part(s, utf8)?;
    let domain_text = rest.strip_prefix('@').ok_or(AddressError::Syntax)?;
    let domain = if domain_text.starts_with('[') {
        Domain::Literal(parse_address_literal(domain_text)?)
    } else {
        Domain::Name(parse_domain_name(domain_text, utf8)?)
    };
    Ok(Mailbox { local, domain })
}

/// Local-part = Dot-string / Quoted-string (RFC 5321 §4.1.2). Returns the unquoted
/// local part and the rest of the input (starting at '@').
fn parse_local_part(s: &str, utf8: bool) -> Result<(String, &str), AddressError> {
    let (local, rest, raw_len) = if let Some(q) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i);
                    break;
                }
                '\\' => match chars.next() {
                    // quoted-pairSMTP = %d92 %d32-126
                    Some((_, e)) if (' '..='~').contains(&e) => out.push(e),
                    _ => return Err(AddressError::Syntax),
                },
                // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF8-non-ascii (RFC 6531)
                c if (' '..='~').contains(&c) || (utf8 && !c.is_ascii()) => out.push(c),
                _ => return Err(AddressError::Syntax),
            }
        }
        let end = end.ok_or(AddressError::Syntax)?;
        let rest = &q[end + 1..];
        (out, rest, end + 2)
    } else {
        let at = s.rfind('@').ok_or(AddressError::Syntax)?;
        let dot_string = &s[..at];
        if dot_string.is_empty()
            || dot_string
                .split('.')
                .any(|atom| atom.is_empty() || !atom.chars().all(|c| is_atext(c, utf8)))
        {
            return Err(AddressError::Syntax);
        }
        (dot_string.to_string(), &s[at..], at)
    };
    if raw_len > MAX_LOCAL_PART && !is_srs(&local) {
        return Err(AddressError::LocalPartTooLong);
    }
    Ok((local, rest))
}

/// atext of RFC 5322 §3.2.3, extended with UTF8-non-ascii by RFC 6531 §3.3.
fn is_atext(c: char, utf8: bool) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (utf8 && !c.is_ascii() && !c.is_control())
}

/// Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str] (RFC 5321 §4.1.2),
/// or U-labels when UTF-8 is allowed (RFC 6531 §3.3). Lowercased.
fn parse_domain_name(s: &str, utf8: bool) -> Result<String, AddressError> {
    if s.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong);
    }
    if s.is_empty() {
        return Err(AddressError::Syntax);
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || c == '-'
                    || (utf8 && !c.is_ascii() && c.is_alphanumeric())
            });
        if !ok {
            return Err(AddressError::Syntax);
        }
    }
    Ok(s.to_lowercase())
}

/// address-literal (RFC 5321 §4.1.3): `[1.2.3.4]` or `[IPv6:...]`. General literals
/// (`[tag:content]`) are refused: no standardised tag exists besides IPv6.
fn parse_address_literal(s: &str) -> Result<IpAddr, AddressError> {
    let inner = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or(AddressError::Syntax)?;
    if let Some(v6) = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("ipv6:"))
    {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| AddressError::Syntax);
    }
    inner
        .parse::<std::net::Ipv4Addr>()
        .map(IpAddr::V4)
        .map_err(|_| AddressError::Syntax)
}

/// Whether a local part is an SRS address (SRS0 or SRS1, any case, then
/// `=`, `+` or `-`): a forwarder's rewritten sender, which may be longer
/// than 64 octets (a long sender's domain and local part are both in it).
/// Such a local part is taken up to the path's limit (RFC 5321
/// §4.5.3.1: "implementation techniques that impose no limits on the
/// length of these objects should be used"), so that bounces to the
/// addresses Tern's forwarding made come back.
pub fn is_srs(local: &str) -> bool {
    strip_srs_tag(local, "SRS0").is_some() || strip_srs_tag(local, "SRS1").is_some()
}

/// `SRS0=rest` (any case, `=`, `+` or `-`) -> `rest`.
pub fn strip_srs_tag<'a>(local: &'a str, tag: &str) -> Option<&'a str> {
    let (name, separator) = (local.get(..4)?, local.get(4..5)?);
    (name.eq_ignore_ascii_case(tag) && matches!(separator, "=" | "+" | "-")).then(|| &local[5..])
}

/// Quote a local part when it is not a valid Dot-string (RFC 5321 §4.1.2).
pub fn quote_local_if_needed(local: &str) -> String {
    let dot_string = !local.is_empty()
        && local
            .split('.')
            .all(|a| !a.is_empty() && a.chars().all(|c| is_atext(c, true)));
    if dot_string {
        return local.to_string();
    }
    let mut q = String::from("\"");
    for c in local.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_mailbox() {
        let m = Mailbox::parse("Alice.B@Example.COM").unwrap();
        assert_eq!(m.local(), "Alice.B");
        assert_eq!(m.domain(), &Domain::Name("example.com".into()));
        assert_eq!(m.key(), "alice.b@example.com");
    }

    #[test]
    fn null_and_postmaster() {
        assert_eq!(parse_reverse_path("<>", false).unwrap(), ReversePath::Null);
        assert_eq!(
            parse_forward_path("<Postmaster>", false).unwrap(),
            ForwardPath::Postmaster
        );
        assert!(parse_forward_path("<>", false).is_err());
    }

    #[test]
    fn source_route_is_dropped() {
        // RFC 5321 §4.1.1.3 / Appendix C
        let p = parse_forward_path("<@hosta.int,@jkl.org:userc@d.bar.org>", false).unwrap();
        assert_eq!(
            p,
            ForwardPath::Mailbox(Mailbox::parse("userc@d.bar.org").unwrap())
        );
    }

    #[test]
    fn quoted_local_part() {
        let m = Mailbox::parse("\"john doe\"@x.test").unwrap();
        assert_eq!(m.local(), "john doe");
        assert_eq!(m.to_string(), "\"john doe\"@x.test");
        let m = Mailbox::parse("\"user@foreign\"@[127.0.0.1]").unwrap();
        assert_eq!(m.local(), "user@foreign");
        assert!(matches!(m.domain(), Domain::Literal(_)));
    }

    #[test]
    fn relay_tricks_never_yield_a_foreign_domain() {
        // hardening.md C-RL2: each either fails to parse or keeps the foreign part in the local part.
        for bad in [
            "<\"user@foreign\">",
            "<foreign!user>",
            "<user@foreign@[1.2.3.4]>",
            "<\"\">",
            "<>",
        ] {
            assert!(parse_forward_path(bad, false).is_err(), "{bad}");
        }
        let m = parse_forward_path("<user%foreign@[1.2.3.4]>", false).unwrap();
        assert!(matches!(m, ForwardPath::Mailbox(m) if m.local() == "user%foreign"));
        let m = parse_forward_path("<foreign!user@local.test>", false).unwrap();
        assert!(
            matches!(m, ForwardPath::Mailbox(m) if m.local() == "foreign!user" && m.domain().name() == Some("local.test"))
        );
    }

    #[test]
    fn limits() {
        let long_local = format!("<{}@x.test>", "a".repeat(65));
        assert_eq!(
            parse_forward_path(&long_local, false),
            Err(AddressError::LocalPartTooLong)
        );
        // An SRS address (a forwarder's rewriting of a long sender) is
        // taken up to the path's limit.
        let srs = format!("<SRS0=abcd=xy=d.test={}@x.test>", "a".repeat(60));
        assert!(parse_forward_path(&srs, false).is_ok());
        let srs_too_long = format!("<srs0+{}@x.test>", "a".repeat(250));
        assert_eq!(
            parse_forward_path(&srs_too_long, false),
            Err(AddressError::PathTooLong)
        );
        let label = "a".repeat(60);
        let long_domain = format!("a@{}", [label.as_str(); 5].join("."));
        assert_eq!(
            Mailbox::parse(&long_domain),
            Err(AddressError::DomainTooLong)
        );
        let long_path = format!("<@{}:a@b.test>", "a".repeat(300));
        assert_eq!(
            parse_forward_path(&long_path, false),
            Err(AddressError::PathTooLong)
        );
    }

    #[test]
    fn utf8_needs_smtputf8() {
        assert_eq!(
            parse_reverse_path("<ü@x.test>", false),
            Err(AddressError::NeedsUtf8)
        );
        let m = parse_reverse_path("<ü@bücher.test>", true).unwrap();
        assert!(matches!(m, ReversePath::Mailbox(m) if m.is_utf8()));
    }

    #[test]
    fn bad_domains() {
        for bad in [
            "a@",
            "a@-x.test",
            "a@x..test",
            "a@x.test.",
            "a@x_y.test",
            "a@[999.1.1.1]",
            "a@[foo:bar]",
            "@x.test",
            "a.@x.test",
            ".a@x.test",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad}");
        }
        assert!(Mailbox::parse("a@[IPv6:::1]").is_ok());
    }

    #[test]
    fn sub_address() {
        let m = Mailbox::parse("bob+lists@x.test").unwrap();
        assert_eq!(m.without_detail('+').unwrap().key(), "bob@x.test");
        assert!(
            Mailbox::parse("bob@x.test")
                .unwrap()
                .without_detail('+')
                .is_none()
        );
        assert!(
            Mailbox::parse("+x@x.test")
                .unwrap()
                .without_detail('+')
                .is_none()
        );
    }
}
