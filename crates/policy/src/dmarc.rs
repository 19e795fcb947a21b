//! DMARC (RFC 7489): the policy record, identifier alignment with the
//! Organizational Domain from the Public Suffix List, and the disposition.
//! Discovery (the DNS part) is in `verify`; everything here is pure.

use crate::psl::PublicSuffixList;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    fn parse(v: &str) -> Option<Policy> {
        match v.to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    /// RFC 7489 §6.6.4: a message left out by `pct` gets the next milder policy.
    fn milder(self) -> Policy {
        match self {
            Policy::Reject => Policy::Quarantine,
            _ => Policy::None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alignment {
    Relaxed,
    Strict,
}

/// A DMARC policy record (RFC 7489 §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub p: Policy,
    /// For subdomains of the Organizational Domain; defaults to `p`.
    pub sp: Policy,
    pub adkim: Alignment,
    pub aspf: Alignment,
    /// Percentage of failing messages the policy applies to (0..=100).
    pub pct: u8,
    /// Aggregate report destinations (`mailto:` URIs as published, with any
    /// `!size` suffix).
    pub rua: Vec<String>,
    pub ruf: Vec<String>,
    /// Failure reporting options (§6.3 `fo`), as published; default "0".
    pub fo: String,
}

impl Record {
    /// Parse a TXT record; None if it is not a DMARC record Tern can use. A
    /// record without a valid `p` but with a `rua` counts as `p=none` (§6.6.3).
    pub fn parse(txt: &str) -> Option<Record> {
        let mut tags = txt.split(';').map(str::trim).filter(|t| !t.is_empty());
        let (v, version) = tags.next()?.split_once('=')?;
        if !v.trim().eq_ignore_ascii_case("v") || version.trim() != "DMARC1" {
            return None;
        }
        let mut p = None;
        let mut sp = None;
        let mut sp_invalid = false;
        let mut record = Record {
            p: Policy::None,
            sp: Policy::None,
            adkim: Alignment::Relaxed,
            aspf: Alignment::Relaxed,
            pct: 100,
            rua: Vec::new(),
            ruf: Vec::new(),
            fo: "0".to_string(),
        };
        for tag in tags {
            let Some((name, value)) = tag.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "p" => p = Policy::parse(value),
                "sp" => {
                    sp = Policy::parse(value);
                    sp_invalid = sp.is_none();
                }
                "adkim" => record.adkim = alignment(value).unwrap_or(Alignment::Relaxed),
                "aspf" => record.aspf = alignment(value).unwrap_or(Alignment::Relaxed),
                "pct" => {
                    record.pct = value
                        .parse::<u8>()
                        .ok()
                        .filter(|&n| n <= 100)
                        .unwrap_or(100)
                }
                "rua" => record.rua = uris(value),
                "ruf" => record.ruf = uris(value),
                "fo" => record.fo = value.to_string(),
                _ => {}
            }
        }
        match p {
            Some(p) if !sp_invalid => record.p = p,
            _ if !record.rua.is_empty() => record.p = Policy::None,
            _ => return None,
        }
        record.sp = sp.unwrap_or(record.p);
        Some(record)
    }
}

fn alignment(v: &str) -> Option<Alignment> {
    match v {
        "r" => Some(Alignment::Relaxed),
        "s" => Some(Alignment::Strict),
        _ => None,
    }
}

fn uris(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|u| {
            u.len() > 7
                && u.get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("mailto:"))
        })
        .map(String::from)
        .collect()
}

/// RFC 7489 §3.1: whether an authenticated domain is aligned with the From: domain.
pub fn aligned(psl: &PublicSuffixList, mode: Alignment, authenticated: &str, from: &str) -> bool {
    let (a, f) = (
        authenticated.trim_end_matches('.'),
        from.trim_end_matches('.'),
    );
    match mode {
        Alignment::Strict => a.eq_ignore_ascii_case(f),
        Alignment::Relaxed => psl.organizational_domain(a) == psl.organizational_domain(f),
    }
}

/// The DMARC result (RFC 7489 §11.2 method values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcResult {
    /// No policy record: DMARC does not apply.
    None,
    Pass,
    Fail,
    /// A DNS failure kept us from knowing (try again later).
    TempError,
}

impl DmarcResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DmarcResult::None => "none",
            DmarcResult::Pass => "pass",
            DmarcResult::Fail => "fail",
            DmarcResult::TempError => "temperror",
        }
    }
}

/// What authenticated the message, as DMARC needs it.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    /// The domain SPF passed for (MAIL FROM, or HELO for the null sender).
    pub spf_pass: Option<String>,
    /// SPF could not be evaluated for a DNS reason.
    pub spf_temperror: bool,
    /// The d= of every DKIM signature that passed.
    pub dkim_pass: Vec<String>,
    /// A signature could not be checked for a DNS reason.
    pub dkim_temperror: bool,
}

/// The evaluation for one From: domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub from_domain: String,
    pub result: DmarcResult,
    /// The policy that applies (`p`, or `sp` for a subdomain), when a record was found.
    pub policy: Option<Policy>,
    /// What to do: the policy, or milder when `pct` left the message out.
    pub disposition: Policy,
    pub spf_aligned: bool,
    pub dkim_aligned: bool,
    /// The record that applied and where it was found (for aggregate reports).
    pub published: Option<(String, Record)>,
    /// Why the disposition differs from the policy (RFC 7489 Appendix C
    /// PolicyOverrideType), with a comment.
    pub reason: Option<(&'static str, String)>,
}

impl Evaluation {
    /// No record, or no knowing: DMARC gave nothing to apply.
    pub fn without_record(from_domain: &str, result: DmarcResult) -> Evaluation {
        Evaluation {
            from_domain: from_domain.to_string(),
            result,
            policy: None,
            disposition: Policy::None,
            spf_aligned: false,
            dkim_aligned: false,
            published: None,
            reason: None,
        }
    }
}

/// Evaluate a found record (at `found_at`: the From domain or its
/// Organizational Domain). `sample` is a number in 0..100 for `pct`.
pub fn evaluate(
    psl: &PublicSuffixList,
    from_domain: &str,
    record: &Record,
    found_at: &str,
    ids: &Identities,
    sample: u8,
) -> Evaluation {
    let spf_aligned = ids
        .spf_pass
        .as_deref()
        .is_some_and(|d| aligned(psl, record.aspf, d, from_domain));
    let dkim_aligned = ids
        .dkim_pass
        .iter()
        .any(|d| aligned(psl, record.adkim, d, from_domain));
    // §6.6.3: the organizational record's sp= governs subdomains.
    let policy = if found_at.eq_ignore_ascii_case(from_domain) {
        record.p
    } else {
        record.sp
    };
    let result = if spf_aligned || dkim_aligned {
        DmarcResult::Pass
    } else if ids.spf_temperror || ids.dkim_temperror {
        // An identity that could not be checked might have passed.
        DmarcResult::TempError
    } else {
        DmarcResult::Fail
    };
    let (disposition, reason) = match result {
        DmarcResult::Fail if sample < record.pct => (policy, None),
        DmarcResult::Fail => (
            policy.milder(),
            Some(("sampled_out", format!("pct={}", record.pct))),
        ),
        _ => (Policy::None, None),
    };
    Evaluation {
        from_domain: from_domain.to_string(),
        result,
        policy: Some(policy),
        disposition,
        spf_aligned,
        dkim_aligned,
        published: Some((found_at.to_ascii_lowercase(), record.clone())),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (hardening.md C-FZ3): a report URI with a multi-byte
    /// character across its seventh octet panicked the parser.
    #[test]
    fn a_multibyte_uri_is_not_cut_inside_a_character() {
        let r = Record::parse("v=DMARC1; p=none; rua=mailtg\u{30b} s, mailto:r@a.test").unwrap();
        assert_eq!(r.rua, vec!["mailto:r@a.test".to_string()]);
        assert!(Record::parse("v=DMARC1; rua=ma\u{e9}lto:x@y").is_none());
    }

    #[test]
    fn records() {
        let r = Record::parse(
            "v=DMARC1; p=reject; sp=none; adkim=s; pct=50; rua=mailto:d@a.test,mailto:e@b.test",
        )
        .unwrap();
        assert_eq!(
            (r.p, r.sp, r.adkim, r.aspf, r.pct),
            (
                Policy::Reject,
                Policy::None,
                Alignment::Strict,
                Alignment::Relaxed,
                50
            )
        );
        assert_eq!(r.rua, ["mailto:d@a.test", "mailto:e@b.test"]);
        assert_eq!(
            Record::parse("v=DMARC1;p=quarantine").unwrap().sp,
            Policy::Quarantine
        );
        assert!(Record::parse("v=spf1 -all").is_none());
        assert!(
            Record::parse("p=reject; v=DMARC1").is_none(),
            "v= must come first"
        );
        assert!(Record::parse("v=DMARC1; p=bogus").is_none());
        // §6.6.3: no valid p, but a rua: p=none.
        assert_eq!(
            Record::parse("v=DMARC1; p=bogus; rua=mailto:r@a.test")
                .unwrap()
                .p,
            Policy::None
        );
        assert_eq!(
            Record::parse("v=DMARC1; p=reject; pct=500").unwrap().pct,
            100
        );
    }

    fn ids(spf: Option<&str>, dkim: &[&str]) -> Identities {
        Identities {
            spf_pass: spf.map(String::from),
            dkim_pass: dkim.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn alignment_and_disposition() {
        let psl = PublicSuffixList::shipped();
        let reject = Record::parse("v=DMARC1; p=reject").unwrap();
        let eval = |from: &str, at: &str, r: &Record, i: &Identities, sample| {
            evaluate(&psl, from, r, at, i, sample)
        };
        // Relaxed: a subdomain's DKIM aligns with the parent's From.
        let e = eval("a.test", "a.test", &reject, &ids(None, &["mail.a.test"]), 0);
        assert_eq!((e.result, e.disposition), (DmarcResult::Pass, Policy::None));
        // Strict: it does not.
        let strict = Record::parse("v=DMARC1; p=reject; adkim=s; aspf=s").unwrap();
        let e = eval(
            "a.test",
            "a.test",
            &strict,
            &ids(Some("bounce.a.test"), &["mail.a.test"]),
            0,
        );
        assert_eq!(
            (e.result, e.disposition),
            (DmarcResult::Fail, Policy::Reject)
        );
        // Unaligned passes do not count.
        let e = eval(
            "a.test",
            "a.test",
            &reject,
            &ids(Some("evil.test"), &["evil.test"]),
            0,
        );
        assert_eq!(e.result, DmarcResult::Fail);
        // A subdomain From gets sp= of the organizational record.
        let sp = Record::parse("v=DMARC1; p=reject; sp=quarantine").unwrap();
        let e = eval("news.a.test", "a.test", &sp, &ids(None, &[]), 0);
        assert_eq!(
            (e.policy, e.disposition),
            (Some(Policy::Quarantine), Policy::Quarantine)
        );
        // pct: sampled out means the next milder policy.
        let half = Record::parse("v=DMARC1; p=reject; pct=50").unwrap();
        assert_eq!(
            eval("a.test", "a.test", &half, &ids(None, &[]), 49).disposition,
            Policy::Reject
        );
        assert_eq!(
            eval("a.test", "a.test", &half, &ids(None, &[]), 50).disposition,
            Policy::Quarantine
        );
        // A DNS failure on SPF with nothing else aligned: we cannot know.
        let mut i = ids(None, &[]);
        i.spf_temperror = true;
        assert_eq!(
            eval("a.test", "a.test", &reject, &i, 0).result,
            DmarcResult::TempError
        );
    }
}
