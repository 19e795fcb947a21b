//! MTA-STS (RFC 8461): the policy file's format, both ways (Tern serves
//! its own and reads other domains'), the `_mta-sts` TXT record, and the
//! fetch of a policy over HTTPS with a verified certificate.

use std::sync::Arc;
use std::time::Duration;

use crate::Resolver;

/// RFC 8461 §3.3: "policy bodies larger than 64 KiB" are refused.
pub const MAX_POLICY: usize = 64 << 10;
/// How long a fetch may take, connection to the last octet (§3.3 asks
/// for a timeout; a minute is what it suggests as the longest).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// What a policy asks of senders (§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to matching MX hosts over authenticated TLS.
    Enforce,
    /// Deliver as usual, report what would have failed (TLS-RPT).
    Testing,
    /// No policy (how a domain withdraws one).
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::Enforce, Mode::Testing, Mode::None]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A policy (§3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// MX patterns: a host name, or `*.` and a domain (one label).
    pub mx: Vec<String>,
    /// Seconds the policy may be cached (at most 31557600, §3.2).
    pub max_age: u64,
}

impl Policy {
    /// The policy file (§3.2): CRLF lines, `key: value`.
    pub fn text(&self) -> String {
        let mut out = format!("version: STSv1\r\nmode: {}\r\n", self.mode.as_str());
        for mx in &self.mx {
            out += &format!("mx: {mx}\r\n");
        }
        out += &format!("max_age: {}\r\n", self.max_age);
        out
    }

    /// The id of the `_mta-sts` record for this policy: it changes when the
    /// policy does (§3.1: 1 to 32 letters and digits).
    pub fn id(&self) -> String {
        // FNV-1a, 64 bits: a change detector, not a secret.
        let hash = self.text().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        format!("{hash:016x}")
    }

    /// Does an MX host match one of the patterns (§4.1)? A wildcard
    /// matches exactly one label in the left-most position.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|pattern| {
            let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => host == pattern,
            }
        })
    }
}

/// Read a policy file (§3.2): unknown keys ignored, every required one
/// present and valid.
pub fn parse(text: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("not a key: value line: {line:?}"));
        };
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_string()),
            "mode" => mode = Some(Mode::parse(value).ok_or(format!("unknown mode {value:?}"))?),
            "max_age" => {
                let age: u64 = value
                    .parse()
                    .map_err(|_| format!("max_age {value:?} is not a number"))?;
                max_age = Some(age.min(31_557_600));
            }
            "mx" => mx.push(value.to_ascii_lowercase()),
            _ => {}
        }
    }
    if version.as_deref() != Some("STSv1") {
        return Err("no \"version: STSv1\"".into());
    }
    let mode = mode.ok_or("no mode")?;
    let max_age = max_age.ok_or("no max_age")?;
    if mode != Mode::None && mx.is_empty() {
        return Err("no mx".into());
    }
    Ok(Policy { mode, mx, max_age })
}

/// The `_mta-sts.DOMAIN` TXT record (§3.1): the policy id when there is
/// exactly one valid `v=STSv1` record, an error otherwise.
pub fn record_id(records: &[String]) -> Result<String, String> {
    let sts: Vec<&String> = records
        .iter()
        .filter(|r| r.trim_start().starts_with("v=STSv1"))
        .collect();
    let [one] = sts.as_slice() else {
        return Err(match sts.len() {
            0 => "no v=STSv1 record".into(),
            n => format!("{n} v=STSv1 records (senders ignore them all)"),
        });
    };
    one.split(';')
        .filter_map(|f| f.trim().split_once('='))
        .find(|(k, _)| *k == "id")
        .map(|(_, v)| v.trim().to_string())
        .filter(|id| {
            !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .ok_or_else(|| "no valid id= (1 to 32 letters and digits)".into())
}

/// Fetch `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` (§3.3): the
/// host's address from `resolver`, a certificate valid for the name under
/// `tls`'s roots, status 200 and `text/plain`, no redirects, at most
/// [`MAX_POLICY`] octets, within [`FETCH_TIMEOUT`]. `port` is 443 but for tests.
pub async fn fetch(
    resolver: &Resolver,
    domain: &str,
    tls: Arc<rustls::ClientConfig>,
    port: u16,
) -> Result<Policy, String> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch_unbounded(resolver, domain, tls, port))
        .await
        .map_err(|_| format!("no policy within {}s", FETCH_TIMEOUT.as_secs()))?
}

async fn fetch_unbounded(
    resolver: &Resolver,
    domain: &str,
    tls: Arc<rustls::ClientConfig>,
    port: u16,
) -> Result<Policy, String> {
    let host = format!("mta-sts.{}", domain.trim_end_matches('.'));
    let ask = crate::https::Ask {
        method: http::Method::GET,
        path: "/.well-known/mta-sts.txt",
        body: None,
        headers: &[],
        max_answer: MAX_POLICY,
    };
    let answer = crate::https::request(resolver, &host, port, tls, &ask).await?;
    // §3.3: no redirects followed, any other status is no policy.
    if answer.status != http::StatusCode::OK {
        return Err(format!("HTTP status {}", answer.status));
    }
    if !answer.content_type.starts_with("text/plain") {
        return Err(format!(
            "Content-Type {:?}, not text/plain",
            answer.content_type
        ));
    }
    let text = String::from_utf8(answer.body).map_err(|_| "the policy is not UTF-8".to_string())?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_back() {
        let p = Policy {
            mode: Mode::Enforce,
            mx: vec!["mx.a.test".into(), "*.b.test".into()],
            max_age: 604_800,
        };
        let text = p.text();
        assert_eq!(
            text,
            "version: STSv1\r\nmode: enforce\r\nmx: mx.a.test\r\nmx: *.b.test\r\nmax_age: 604800\r\n"
        );
        assert_eq!(parse(&text), Ok(p.clone()));
        assert_ne!(
            p.id(),
            Policy {
                mode: Mode::Testing,
                ..p.clone()
            }
            .id()
        );
        assert_eq!(p.id().len(), 16);
    }

    #[test]
    fn the_rfc_example_and_errors() {
        // RFC 8461 §3.2, with LF line ends and an unknown key.
        let p = parse("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\nextension: x\n").unwrap();
        assert_eq!(p.mx.len(), 3);
        assert!(parse("mode: enforce\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse("version: STSv1\nmode: sometimes\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse("version: STSv1\nmode: enforce\nmax_age: 1\n").is_err());
        assert!(parse("version: STSv1\nmode: none\nmax_age: 1\n").is_ok());
        assert_eq!(
            parse("version: STSv1\nmode: testing\nmx: a\nmax_age: 99999999999\n")
                .unwrap()
                .max_age,
            31_557_600
        );
    }

    #[test]
    fn mx_patterns() {
        let p = parse(
            "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 1\n",
        )
        .unwrap();
        assert!(p.matches("mail.example.com."));
        assert!(p.matches("MX1.example.net"));
        assert!(!p.matches("example.net"));
        assert!(!p.matches("a.b.example.net"));
        assert!(!p.matches("other.example.com"));
    }

    #[test]
    fn txt_records() {
        assert_eq!(
            record_id(&["v=STSv1; id=20160831085700Z;".into()]),
            Ok("20160831085700Z".into())
        );
        assert!(record_id(&[]).is_err());
        assert!(record_id(&["v=STSv1; id=a".into(), "v=STSv1; id=b".into()]).is_err());
        assert!(record_id(&["v=STSv1; id=not-alnum".into()]).is_err());
        assert_eq!(
            record_id(&["v=spf1 -all".into(), "v=STSv1;id=x".into()]),
            Ok("x".into())
        );
    }
}
