//! MAIL and RCPT parameters of the ESMTP extensions Tern implements:
//! SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET/ENVID/NOTIFY/ORCPT
//! (RFC 3461), AUTH (RFC 4954 §5), HOLDFOR/HOLDUNTIL (RFC 4865), BY (RFC
//! 2852), MT-PRIORITY (RFC 6710), REQUIRETLS (RFC 8689). Anything else is refused with 555; the
//! session refuses those of an extension it does not offer there.

use crate::command::{Param, truncate};
use crate::error::SmtpError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// RFC 1870: the size the client declares.
    pub size: Option<u64>,
    /// RFC 6152: BODY=8BITMIME.
    pub eight_bit: bool,
    pub smtputf8: bool,
    /// RFC 3461 §4.3: FULL or HDRS.
    pub ret: Option<String>,
    /// RFC 3461 §4.4: xtext, as received.
    pub envid: Option<String>,
    /// RFC 4865: HOLDFOR (seconds from now) or HOLDUNTIL (a Unix time).
    pub hold: Option<Hold>,
    /// RFC 2852 §4: `BY=by-time;by-mode[T]`.
    pub by: Option<By>,
    /// RFC 6710: -9..9.
    pub priority: Option<i8>,
    /// RFC 8689 §2: REQUIRETLS (no value).
    pub require_tls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    For(i64),
    Until(i64),
}

/// RFC 2852 §4: seconds from now (may be negative with N), R or N, T.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct By {
    pub seconds: i64,
    pub returns: bool,
    pub trace: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// RFC 3461 §4.1: NEVER, or a list of SUCCESS, FAILURE, DELAY.
    pub notify: Option<String>,
    /// RFC 3461 §4.2: `addr-type;xtext`, as received.
    pub orcpt: Option<String>,
}

pub fn mail_params(params: &[Param<'_>]) -> Result<MailParams, SmtpError> {
    let mut out = MailParams::default();
    for p in params {
        match (p.keyword.as_str(), p.value) {
            ("SIZE", Some(v)) if v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) => {
                // More digits than u64 holds is simply "too big".
                out.size = Some(v.parse().unwrap_or(u64::MAX));
            }
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("7BIT") => out.eight_bit = false,
            ("BODY", Some(v)) if v.eq_ignore_ascii_case("8BITMIME") => out.eight_bit = true,
            ("BODY", Some(v)) => {
                return Err(SmtpError::UnsupportedParameter(format!(
                    "BODY={}",
                    truncate(v)
                )));
            }
            ("SMTPUTF8", None) => out.smtputf8 = true,
            ("REQUIRETLS", None) => out.require_tls = true,
            ("RET", Some(v))
                if v.eq_ignore_ascii_case("FULL") || v.eq_ignore_ascii_case("HDRS") =>
            {
                out.ret = Some(v.to_ascii_uppercase())
            }
            ("ENVID", Some(v)) if v.len() <= 100 && message::xtext::is_valid(v) => {
                out.envid = Some(v.to_string())
            }
            // RFC 4954 §5: accepted; Tern trusts no one's claim of an earlier authentication.
            ("AUTH", Some(v)) if v == "<>" || message::xtext::is_valid(v) => {}
            // RFC 4865 §3: one of the two, seconds as 1*9DIGIT.
            ("HOLDFOR", Some(v)) if out.hold.is_none() && digits(v, 9) => {
                out.hold = v.parse().ok().map(Hold::For)
            }
            ("HOLDUNTIL", Some(v)) if out.hold.is_none() => {
                out.hold = Some(Hold::Until(
                    message::date::rfc3339(v).ok_or(SmtpError::BadParameter("HOLDUNTIL".into()))?,
                ))
            }
            ("BY", Some(v)) if out.by.is_none() => out.by = Some(by(v)?),
            ("MT-PRIORITY", Some(v)) if out.priority.is_none() => {
                out.priority = Some(
                    v.parse::<i8>()
                        .ok()
                        .filter(|n| (-9..=9).contains(n) && !v.starts_with('+'))
                        .ok_or(SmtpError::BadParameter("MT-PRIORITY".into()))?,
                )
            }
            (
                "SIZE" | "BODY" | "SMTPUTF8" | "RET" | "ENVID" | "AUTH" | "HOLDFOR" | "HOLDUNTIL"
                | "BY" | "MT-PRIORITY" | "REQUIRETLS",
                _,
            ) => {
                return Err(SmtpError::BadParameter(p.keyword.clone()));
            }
            _ => return Err(SmtpError::UnsupportedParameter(p.keyword.clone())),
        }
    }
    Ok(out)
}

fn digits(v: &str, max: usize) -> bool {
    !v.is_empty() && v.len() <= max && v.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 2852 §4: `by-time ";" by-mode [by-trace]`, by-time `[-]1*9DIGIT`;
/// with R the time must be positive.
fn by(v: &str) -> Result<By, SmtpError> {
    let bad = || SmtpError::BadParameter("BY".into());
    let (time, mode) = v.split_once(';').ok_or_else(bad)?;
    let unsigned = time.strip_prefix('-').unwrap_or(time);
    if !digits(unsigned, 9) {
        return Err(bad());
    }
    let seconds: i64 = time.parse().map_err(|_| bad())?;
    let (returns, trace) = match mode.to_ascii_uppercase().as_str() {
        "R" => (true, false),
        "RT" => (true, true),
        "N" => (false, false),
        "NT" => (false, true),
        _ => return Err(bad()),
    };
    if returns && seconds <= 0 {
        return Err(bad());
    }
    Ok(By {
        seconds,
        returns,
        trace,
    })
}

pub fn rcpt_params(params: &[Param<'_>]) -> Result<RcptParams, SmtpError> {
    let mut out = RcptParams::default();
    for p in params {
        match (p.keyword.as_str(), p.value) {
            ("NOTIFY", Some(v)) if valid_notify(v) => out.notify = Some(v.to_ascii_uppercase()),
            ("ORCPT", Some(v)) if valid_orcpt(v) => out.orcpt = Some(v.to_string()),
            ("NOTIFY" | "ORCPT", _) => return Err(SmtpError::BadParameter(p.keyword.clone())),
            _ => return Err(SmtpError::UnsupportedParameter(p.keyword.clone())),
        }
    }
    Ok(out)
}

/// RFC 3461 §4.1: "NEVER" alone, or one or more of SUCCESS, FAILURE, DELAY.
fn valid_notify(v: &str) -> bool {
    if v.eq_ignore_ascii_case("NEVER") {
        return true;
    }
    let items: Vec<String> = v.split(',').map(|s| s.to_ascii_uppercase()).collect();
    !items.is_empty()
        && items
            .iter()
            .all(|i| matches!(i.as_str(), "SUCCESS" | "FAILURE" | "DELAY"))
        && items
            .iter()
            .enumerate()
            .all(|(n, i)| !items[..n].contains(i))
}

/// RFC 3461 §4.2: `addr-type ";" xtext`, at most 500 characters.
fn valid_orcpt(v: &str) -> bool {
    let Some((kind, addr)) = v.split_once(';') else {
        return false;
    };
    v.len() <= 500
        && !kind.is_empty()
        && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !addr.is_empty()
        && message::xtext::is_valid(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: Option<&'static str>) -> Param<'static> {
        Param {
            keyword: k.into(),
            value: v,
        }
    }

    #[test]
    fn mail_parameters() {
        let m = mail_params(&[
            p("SIZE", Some("1000")),
            p("BODY", Some("8bitmime")),
            p("SMTPUTF8", None),
            p("RET", Some("hdrs")),
            p("ENVID", Some("QQ314159")),
        ])
        .unwrap();
        assert_eq!(
            m,
            MailParams {
                size: Some(1000),
                eight_bit: true,
                smtputf8: true,
                ret: Some("HDRS".into()),
                envid: Some("QQ314159".into()),
                ..Default::default()
            }
        );
        let m = mail_params(&[
            p("HOLDFOR", Some("3600")),
            p("BY", Some("120;RT")),
            p("MT-PRIORITY", Some("-3")),
        ])
        .unwrap();
        assert_eq!(m.hold, Some(Hold::For(3600)));
        assert_eq!(
            m.by,
            Some(By {
                seconds: 120,
                returns: true,
                trace: true
            })
        );
        assert_eq!(m.priority, Some(-3));
        assert_eq!(
            mail_params(&[p("HOLDUNTIL", Some("1970-01-02T00:00:00Z"))])
                .unwrap()
                .hold,
            Some(Hold::Until(86_400))
        );
        for bad in [
            [p("HOLDFOR", Some("1234567890"))],
            [p("HOLDUNTIL", Some("tomorrow"))],
            [p("BY", Some("0;R"))],
            [p("BY", Some("10;X"))],
            [p("BY", Some("10"))],
            [p("MT-PRIORITY", Some("10"))],
            [p("MT-PRIORITY", Some("+1"))],
        ] {
            assert!(
                matches!(mail_params(&bad), Err(SmtpError::BadParameter(_))),
                "{bad:?}"
            );
        }
        assert!(
            mail_params(&[
                p("HOLDFOR", Some("1")),
                p("HOLDUNTIL", Some("1970-01-02T00:00:00Z"))
            ])
            .is_err()
        );
        assert_eq!(
            mail_params(&[p("BY", Some("-5;N"))])
                .unwrap()
                .by
                .unwrap()
                .seconds,
            -5
        );
        assert_eq!(
            mail_params(&[p("SIZE", Some("99999999999999999999"))])
                .unwrap()
                .size,
            Some(u64::MAX)
        );
        assert!(matches!(
            mail_params(&[p("SIZE", Some("1e9"))]),
            Err(SmtpError::BadParameter(_))
        ));
        assert!(matches!(
            mail_params(&[p("BODY", Some("BINARYMIME"))]),
            Err(SmtpError::UnsupportedParameter(_))
        ));
        assert!(mail_params(&[p("REQUIRETLS", None)]).is_ok_and(|m| m.require_tls));
        assert!(matches!(
            mail_params(&[p("REQUIRETLS", Some("yes"))]),
            Err(SmtpError::BadParameter(_))
        ));
        assert!(matches!(
            mail_params(&[p("SMTPUTF8", Some("x"))]),
            Err(SmtpError::BadParameter(_))
        ));
        assert!(mail_params(&[p("AUTH", Some("<>"))]).is_ok());
        assert!(matches!(
            mail_params(&[p("AUTH", Some("a+5"))]),
            Err(SmtpError::BadParameter(_))
        ));
    }

    #[test]
    fn rcpt_parameters() {
        let r = rcpt_params(&[
            p("NOTIFY", Some("SUCCESS,FAILURE")),
            p("ORCPT", Some("rfc822;bob+2B@b.test")),
        ])
        .unwrap();
        assert_eq!(r.notify.as_deref(), Some("SUCCESS,FAILURE"));
        assert_eq!(r.orcpt.as_deref(), Some("rfc822;bob+2B@b.test"));
        for bad in ["NEVER,SUCCESS", "SUCCESS,SUCCESS", "ALWAYS", ""] {
            assert!(rcpt_params(&[p("NOTIFY", Some(bad))]).is_err(), "{bad}");
        }
        assert!(rcpt_params(&[p("ORCPT", Some("bob@b.test"))]).is_err());
    }
}
