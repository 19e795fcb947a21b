//! DMARC aggregate reports we send (RFC 7489 §7.2, the XML of Appendix C):
//! the row recorded for each evaluated message, the report destinations of a
//! record, the XML document of one reporting period and the message carrying
//! it. Pure: recording, DNS checks and queueing are the caller's.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::dmarc::{Alignment, Record};

/// One evaluated message, as an aggregate report counts it: the `row`,
/// `identifiers` and `auth_results` of an Appendix C `record`. Messages with
/// equal rows are counted together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub source_ip: IpAddr,
    /// What we did: none, quarantine or reject.
    pub disposition: String,
    /// Whether an aligned DKIM signature passed.
    pub dkim: bool,
    /// Whether SPF passed for an aligned domain.
    pub spf: bool,
    /// PolicyOverrideType and comment, when the disposition is not the policy.
    pub reasons: Vec<(String, String)>,
    pub header_from: String,
    /// The RFC5321.MailFrom domain (the HELO name for the null sender).
    pub envelope_from: String,
    /// Every DKIM signature: domain, selector, result.
    pub dkim_results: Vec<(String, String, String)>,
    /// The SPF check: domain, scope (`mfrom` or `helo`), result.
    pub spf_result: (String, String, String),
}

/// The `policy_published` element: the record as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub domain: String,
    pub adkim: String,
    pub aspf: String,
    pub p: String,
    pub sp: String,
    pub pct: u8,
    pub fo: String,
}

impl Published {
    pub fn new(domain: &str, record: &Record) -> Published {
        let mode = |a: Alignment| if a == Alignment::Strict { "s" } else { "r" };
        Published {
            domain: domain.to_string(),
            adkim: mode(record.adkim).into(),
            aspf: mode(record.aspf).into(),
            p: record.p.as_str().into(),
            sp: record.sp.as_str().into(),
            pct: record.pct,
            fo: record.fo.clone(),
        }
    }
}

/// An evaluation to record: the domain that asked for reports, where they go,
/// its record, and the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recordable {
    pub published: Published,
    pub rua: Vec<String>,
    pub row: Row,
}

impl Recordable {
    /// The store's form (the policy and the row as JSON).
    pub fn to_store(&self, at: i64) -> store::NewEvaluation {
        store::NewEvaluation {
            at,
            domain: self.published.domain.clone(),
            rua: self.rua.join(","),
            policy: serde_json::to_string(&self.published).unwrap_or_default(),
            row: serde_json::to_string(&self.row).unwrap_or_default(),
        }
    }
}

/// A report destination of `rua=` (RFC 7489 §6.2): the address of a
/// `mailto:` URI and its optional size limit (`!10m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub address: String,
    pub max_size: Option<u64>,
}

/// The `mailto:` destinations of a comma-separated `rua` value; others are skipped.
pub fn destinations(rua: &str) -> Vec<Destination> {
    rua.split(',')
        .filter_map(|uri| {
            let uri = uri.trim();
            let rest = uri.get(..7).filter(|s| s.eq_ignore_ascii_case("mailto:"))?;
            let rest = &uri[rest.len()..];
            let (address, limit) = match rest.rsplit_once('!') {
                Some((a, l)) => (a, Some(size_limit(l)?)),
                None => (rest, None),
            };
            // One valid mailbox, or no destination (C-FZ12).
            let address = message::Mailbox::from_mailto(address)?.to_string();
            Some(Destination {
                address,
                max_size: limit,
            })
        })
        .collect()
}

/// `10m`: a number with an optional k, m, g or t unit (RFC 7489 §6.2).
fn size_limit(s: &str) -> Option<u64> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().ok()?;
    let shift = match &s[digits.len()..] {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// Who reports, and what (the `report_metadata` element).
#[derive(Debug, Clone)]
pub struct Metadata {
    pub org_name: String,
    pub email: String,
    pub report_id: String,
    pub begin: i64,
    pub end: i64,
}

/// The aggregate report document, in the RFC 7489 Appendix C schema
/// (version 1.0, no namespace), every optional element of the policy given.
pub fn xml(meta: &Metadata, published: &Published, rows: &[(Row, u64)]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n");
    x.push_str("  <version>1.0</version>\n  <report_metadata>\n");
    element(&mut x, 4, "org_name", &meta.org_name);
    element(&mut x, 4, "email", &meta.email);
    element(&mut x, 4, "report_id", &meta.report_id);
    x.push_str("    <date_range>\n");
    element(&mut x, 6, "begin", &meta.begin.to_string());
    element(&mut x, 6, "end", &meta.end.to_string());
    x.push_str("    </date_range>\n  </report_metadata>\n  <policy_published>\n");
    let p = published;
    for (name, value) in [
        ("domain", p.domain.as_str()),
        ("adkim", &p.adkim),
        ("aspf", &p.aspf),
        ("p", &p.p),
        ("sp", &p.sp),
        ("pct", &p.pct.to_string()),
        ("fo", &p.fo),
    ] {
        element(&mut x, 4, name, value);
    }
    x.push_str("  </policy_published>\n");
    for (row, count) in rows {
        record(&mut x, row, *count);
    }
    x.push_str("</feedback>\n");
    x
}

fn record(x: &mut String, row: &Row, count: u64) {
    let verdict = |pass: bool| if pass { "pass" } else { "fail" };
    x.push_str("  <record>\n    <row>\n");
    element(x, 6, "source_ip", &schema_ip(row.source_ip));
    element(x, 6, "count", &count.to_string());
    x.push_str("      <policy_evaluated>\n");
    element(x, 8, "disposition", &row.disposition);
    element(x, 8, "dkim", verdict(row.dkim));
    element(x, 8, "spf", verdict(row.spf));
    for (kind, comment) in &row.reasons {
        x.push_str("        <reason>\n");
        element(x, 10, "type", kind);
        element(x, 10, "comment", comment);
        x.push_str("        </reason>\n");
    }
    x.push_str("      </policy_evaluated>\n    </row>\n    <identifiers>\n");
    element(x, 6, "envelope_from", &row.envelope_from);
    element(x, 6, "header_from", &row.header_from);
    x.push_str("    </identifiers>\n    <auth_results>\n");
    for (domain, selector, result) in &row.dkim_results {
        x.push_str("      <dkim>\n");
        element(x, 8, "domain", domain);
        element(x, 8, "selector", selector);
        element(x, 8, "result", result);
        x.push_str("      </dkim>\n");
    }
    let (domain, scope, result) = &row.spf_result;
    x.push_str("      <spf>\n");
    element(x, 8, "domain", domain);
    element(x, 8, "scope", scope);
    element(x, 8, "result", result);
    x.push_str("      </spf>\n    </auth_results>\n  </record>\n");
}

/// The schema's IPAddress type knows only dotted IPv4 and all eight groups of IPv6.
fn schema_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:x}")).collect();
            groups.join(":")
        }
    }
}

fn element(x: &mut String, indent: usize, name: &str, value: &str) {
    let _ = writeln!(x, "{:indent$}<{name}>{}</{name}>", "", escape(value));
}

use message::xml::escape;

/// The report message of RFC 7489 §7.2.1.1: the subject naming the domain,
/// submitter and report id, a short text part and the gzipped XML attached as
/// `receiver!domain!begin!end.xml.gz`. CRLF line endings, not yet signed.
pub fn message(
    meta: &Metadata,
    domain: &str,
    submitter: &str,
    to: &[String],
    xml: &str,
) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(xml.as_bytes());
    let gzipped = gz.finish().unwrap_or_default();
    let encoded = base64::engine::general_purpose::STANDARD.encode(gzipped);
    let boundary = format!("tern-report-{}", meta.report_id.replace(['@', '.'], "-"));
    let file = format!("{submitter}!{domain}!{}!{}.xml.gz", meta.begin, meta.end);
    let mut m = String::new();
    let _ = write!(
        m,
        "From: DMARC reports <{email}>\r\n\
         To: {to}\r\n\
         Subject: Report Domain: {domain} Submitter: {submitter} Report-ID: <{id}>\r\n\
         Date: {date}\r\n\
         Message-ID: <{id}>\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         This is a DMARC aggregate report (RFC 7489) for {domain},\r\n\
         covering {begin} to {end} (seconds since 1970, UTC).\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: application/gzip\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{file}\"\r\n\
         \r\n",
        email = meta.email,
        to = to
            .iter()
            .map(|t| format!("<{t}>"))
            .collect::<Vec<_>>()
            .join(", "),
        id = meta.report_id,
        date = message::date::rfc5322(meta.end + 1),
        begin = meta.begin,
        end = meta.end,
    );
    for line in encoded.as_bytes().chunks(76) {
        m.push_str(&String::from_utf8_lossy(line));
        m.push_str("\r\n");
    }
    let _ = write!(m, "--{boundary}--\r\n");
    m.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        Row {
            source_ip: "2001:db8::1".parse().unwrap(),
            disposition: "none".into(),
            dkim: true,
            spf: false,
            reasons: vec![("trusted_forwarder".into(), "arc=pass".into())],
            header_from: "a.test".into(),
            envelope_from: "b.test".into(),
            dkim_results: vec![("a.test".into(), "s1".into(), "pass".into())],
            spf_result: ("b.test".into(), "mfrom".into(), "pass".into()),
        }
    }

    /// C-FZ12: a record's `rua` is the reported domain's to write; a
    /// percent-encoded CR LF became part of the address and went into the
    /// report's To field as it was: fields of the sender's choosing in a
    /// report we DKIM-sign. Only an address that is one valid mailbox is
    /// a destination.
    #[test]
    fn a_destination_is_one_valid_address() {
        let d = destinations(
            "mailto:r%0D%0AX-Injected:%20yes@x.test,mailto:a b@x.test,mailto:@x.test,mailto:r%40x.test,mailto:ok@x.test",
        );
        let addresses: Vec<&str> = d.iter().map(|d| d.address.as_str()).collect();
        assert_eq!(addresses, ["r@x.test", "ok@x.test"]);
    }

    #[test]
    fn destinations_with_limits_and_escapes() {
        let d = destinations(
            "mailto:a@x.test!10m, https://x.test/r ,mailto:b%21c@y.test,mailto:bad!1q",
        );
        assert_eq!(
            d,
            vec![
                Destination {
                    address: "a@x.test".into(),
                    max_size: Some(10 << 20)
                },
                Destination {
                    address: "b!c@y.test".into(),
                    max_size: None
                },
            ]
        );
    }

    #[test]
    fn xml_follows_appendix_c() {
        let meta = Metadata {
            org_name: "c.test".into(),
            email: "dmarc-reports@c.test".into(),
            report_id: "1@c.test".into(),
            begin: 0,
            end: 86399,
        };
        let published = Published {
            domain: "a.test".into(),
            adkim: "r".into(),
            aspf: "s".into(),
            p: "reject".into(),
            sp: "reject".into(),
            pct: 100,
            fo: "0".into(),
        };
        let x = xml(&meta, &published, &[(row(), 3)]);
        assert!(x.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n  <version>1.0</version>"
        ));
        assert!(
            x.contains("<source_ip>2001:db8:0:0:0:0:0:1</source_ip>"),
            "{x}"
        );
        assert!(x.contains("<count>3</count>"));
        assert!(x.contains("<type>trusted_forwarder</type>"));
        assert!(x.contains("<aspf>s</aspf>"));
        let m = String::from_utf8(message(&meta, "a.test", "c.test", &["r@a.test".into()], &x))
            .unwrap();
        assert!(m.contains(
            "Subject: Report Domain: a.test Submitter: c.test Report-ID: <1@c.test>\r\n"
        ));
        assert!(m.contains("filename=\"c.test!a.test!0!86399.xml.gz\""));
        assert!(
            m.contains("Date: Fri, 2 Jan 1970 00:00:00 +0000\r\n")
                || m.contains("Date: Fri, 02 Jan 1970"),
            "{m}"
        );
    }

    #[test]
    fn rows_survive_the_store_form() {
        let r = Recordable {
            published: Published::new(
                "a.test",
                &Record::parse("v=DMARC1; p=reject; fo=1").unwrap(),
            ),
            rua: vec!["mailto:r@a.test".into()],
            row: row(),
        };
        let stored = r.to_store(5);
        assert_eq!(stored.rua, "mailto:r@a.test");
        let back: Row = serde_json::from_str(&stored.row).unwrap();
        assert_eq!(back, r.row);
        let policy: Published = serde_json::from_str(&stored.policy).unwrap();
        assert_eq!((policy.sp.as_str(), policy.fo.as_str()), ("reject", "1"));
    }
}
