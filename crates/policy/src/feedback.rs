//! Reports other receivers send to our report address: DMARC aggregate
//! reports (RFC 7489 §7.2: XML, gzip or zip attachment) and TLS reports
//! (RFC 8460: JSON, gzip), found in the message, decompressed within a
//! bound (hardening.md C-MM9), summarised for the store and described for
//! the operator (`tern report list` / `show`).

use std::fmt::Write as _;

use mail_auth::report::tlsrpt::TlsReport;
use mail_auth::report::{DmarcResult, Report};
use store::ReportKind;

/// The largest report document Tern decompresses (RFC 7489 reports from the
/// largest receivers stay well below).
pub const MAX_DOCUMENT: usize = 20 << 20;

/// The largest message read as a report (it is parsed whole): reports
/// come compressed (RFC 7489 §7.2.1.1), a few KiB to a few MiB.
pub const MAX_MESSAGE: u64 = 10 << 20;

const NO_DMARC: &str = "no DMARC aggregate report in it";

/// The report in `message` (DMARC aggregate or TLS), ready to keep; Err
/// with the reason otherwise.
pub fn parse(message: &[u8], received_at: i64) -> Result<store::ReceivedReport, String> {
    let dmarc = match parse_dmarc(message, received_at) {
        Ok(report) => return Ok(report),
        Err(e) => e,
    };
    // A TLS report's gzipped JSON also reads as a broken DMARC report.
    parse_tls(message, received_at).map_err(|tls| match dmarc.as_str() {
        NO_DMARC => format!("neither a DMARC aggregate report nor a TLS report ({tls})"),
        _ => dmarc,
    })
}

/// RFC 8460 §4: a TLS report, its sessions counted over every policy.
fn parse_tls(message: &[u8], received_at: i64) -> Result<store::ReceivedReport, String> {
    let report = TlsReport::parse_rfc5322(message, MAX_DOCUMENT).map_err(|e| match e {
        mail_auth::report::Error::ReportParseError(why) => format!("bad TLS report JSON: {why}"),
        mail_auth::report::Error::UncompressError(why) => format!("cannot decompress: {why}"),
        mail_auth::report::Error::ReportTooLarge => {
            format!("report larger than {} MiB", MAX_DOCUMENT >> 20)
        }
        _ => "no TLS report in it".to_string(),
    })?;
    let domain = report
        .policies
        .first()
        .map(|p| p.policy.policy_domain.to_ascii_lowercase())
        .unwrap_or_default();
    if report.report_id.is_empty() || domain.is_empty() {
        return Err("TLS report without report-id or policy-domain".into());
    }
    let sum = |f: fn(&mail_auth::report::tlsrpt::Summary) -> u32| -> u64 {
        report
            .policies
            .iter()
            .map(|p| u64::from(f(&p.summary)))
            .sum()
    };
    let failed = sum(|s| s.total_failure);
    Ok(store::ReceivedReport {
        id: 0,
        kind: ReportKind::Tls,
        received_at,
        org: report
            .organization_name
            .clone()
            .unwrap_or_else(|| "(unnamed)".into()),
        report_id: report.report_id.clone(),
        domain,
        begin: report.date_range.start_datetime.to_timestamp(),
        end: report.date_range.end_datetime.to_timestamp(),
        messages: sum(|s| s.total_success) + failed,
        failed,
        document: serde_json::to_vec(&report).map_err(|e| e.to_string())?,
    })
}

fn parse_dmarc(message: &[u8], received_at: i64) -> Result<store::ReceivedReport, String> {
    let report = Report::parse_rfc5322(message, MAX_DOCUMENT).map_err(|e| match e {
        mail_auth::report::Error::MailParseError => "not a MIME message".to_string(),
        mail_auth::report::Error::ReportParseError(why) => format!("bad report XML: {why}"),
        mail_auth::report::Error::UncompressError(why) => format!("cannot decompress: {why}"),
        mail_auth::report::Error::ReportTooLarge => {
            format!("report larger than {} MiB", MAX_DOCUMENT >> 20)
        }
        mail_auth::report::Error::NoReportsFound => NO_DMARC.to_string(),
    })?;
    let meta = &report.report_metadata;
    if meta.org_name.is_empty()
        || meta.report_id.is_empty()
        || report.policy_published.domain.is_empty()
    {
        return Err("report without org_name, report_id or domain".into());
    }
    let messages = report.record.iter().map(|r| u64::from(r.row.count)).sum();
    let failed = report
        .record
        .iter()
        .filter(|r| !passed(r))
        .map(|r| u64::from(r.row.count))
        .sum();
    Ok(store::ReceivedReport {
        id: 0,
        kind: ReportKind::Dmarc,
        received_at,
        org: meta.org_name.clone(),
        report_id: meta.report_id.clone(),
        domain: report.policy_published.domain.to_ascii_lowercase(),
        begin: meta.date_range.begin as i64,
        end: meta.date_range.end as i64,
        messages,
        failed,
        document: serde_json::to_vec(&report).map_err(|e| e.to_string())?,
    })
}

/// DMARC passes when the aligned DKIM or SPF result does (RFC 7489 §4.2).
fn passed(r: &mail_auth::report::Record) -> bool {
    let e = &r.row.policy_evaluated;
    e.dkim == DmarcResult::Pass || e.spf == DmarcResult::Pass
}

/// One line for `tern report list`.
pub fn summary(r: &store::ReceivedReport) -> String {
    let counted = match r.kind {
        ReportKind::Dmarc => format!("{} messages, {} failing DMARC", r.messages, r.failed),
        ReportKind::Tls => format!("{} TLS sessions, {} failed", r.messages, r.failed),
    };
    format!(
        "{}\t{}\t{}\t{}\t{} to {}\t{counted}\t{}",
        r.id,
        r.kind.as_str(),
        r.domain,
        r.org,
        message::date::rfc5322(r.begin),
        message::date::rfc5322(r.end),
        r.report_id
    )
}

/// A TLS report for `tern report show`: per policy, the sessions that
/// worked and failed, and why they failed (RFC 8460 §4.3 result types).
fn describe_tls(r: &store::ReceivedReport) -> Result<String, String> {
    let report: TlsReport = serde_json::from_slice(&r.document)
        .map_err(|e| format!("stored report unreadable: {e}"))?;
    let mut out = String::new();
    let contact = report.contact_info.as_deref().unwrap_or("no contact");
    let _ = writeln!(out, "TLS report {} from {} <{contact}>", r.report_id, r.org);
    let _ = writeln!(
        out,
        "Period: {} to {}",
        message::date::rfc5322(r.begin),
        message::date::rfc5322(r.end)
    );
    let _ = writeln!(out, "Sessions: {} ({} failed)", r.messages, r.failed);
    for p in &report.policies {
        let d = &p.policy;
        let _ = writeln!(
            out,
            "\nPolicy {:?} for {} (MX {}): {} successful, {} failed",
            d.policy_type,
            d.policy_domain,
            d.mx_host.join(", "),
            p.summary.total_success,
            p.summary.total_failure
        );
        for f in &p.failure_details {
            let ip = f.sending_mta_ip.map_or("?".into(), |ip| ip.to_string());
            let mx = f.receiving_mx_hostname.as_deref().unwrap_or("?");
            let _ = writeln!(
                out,
                "  {:?}: {} session(s) from {ip} to {mx}{}",
                f.result_type,
                f.failed_session_count,
                f.additional_information
                    .as_deref()
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(out)
}

/// Everything a report says, for `tern report show`: who sent mail as our
/// domain, from which IPs, with which SPF/DKIM/DMARC outcome.
pub fn describe(r: &store::ReceivedReport) -> Result<String, String> {
    if r.kind == ReportKind::Tls {
        return describe_tls(r);
    }
    let report: Report = serde_json::from_slice(&r.document)
        .map_err(|e| format!("stored report unreadable: {e}"))?;
    let p = &report.policy_published;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Report {} from {} <{}>",
        r.report_id, r.org, report.report_metadata.email
    );
    let _ = writeln!(
        out,
        "Period: {} to {}",
        message::date::rfc5322(r.begin),
        message::date::rfc5322(r.end)
    );
    let _ = writeln!(
        out,
        "Policy: {} p={} sp={} adkim={} aspf={}",
        p.domain, p.p, p.sp, p.adkim, p.aspf
    );
    let _ = writeln!(out, "Messages: {} ({} failing DMARC)", r.messages, r.failed);
    for rec in &report.record {
        let e = &rec.row.policy_evaluated;
        let ip = rec
            .row
            .source_ip
            .map_or("?".to_string(), |ip| ip.to_string());
        let _ = writeln!(
            out,
            "\n{ip}: {} message(s), header_from={} envelope_from={}",
            rec.row.count, rec.identifiers.header_from, rec.identifiers.envelope_from
        );
        let _ = writeln!(
            out,
            "  dmarc={} (dkim={} spf={}) disposition={}",
            if passed(rec) { "pass" } else { "fail" },
            e.dkim,
            e.spf,
            e.disposition
        );
        for reason in &e.reason {
            let _ = writeln!(
                out,
                "  reason: {} {}",
                reason.type_,
                reason.comment.as_deref().unwrap_or("")
            );
        }
        for d in &rec.auth_results.dkim {
            let _ = writeln!(out, "  dkim: {} s={} {}", d.domain, d.selector, d.result);
        }
        for s in &rec.auth_results.spf {
            let _ = writeln!(out, "  spf: {} ({}) {}", s.domain, s.scope, s.result);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate;

    fn report_message(xml: &str) -> Vec<u8> {
        let meta = aggregate::Metadata {
            org_name: "c.test".into(),
            email: "dmarc-reports@c.test".into(),
            report_id: "7@c.test".into(),
            begin: 86400,
            end: 172799,
        };
        aggregate::message(&meta, "a.test", "c.test", &["r@a.test".into()], xml)
    }

    const XML: &str = r#"<?xml version="1.0"?><feedback><version>1.0</version>
<report_metadata><org_name>c.test</org_name><email>d@c.test</email><report_id>7@c.test</report_id>
<date_range><begin>86400</begin><end>172799</end></date_range></report_metadata>
<policy_published><domain>a.test</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct><fo>0</fo></policy_published>
<record><row><source_ip>192.0.2.1</source_ip><count>4</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
<identifiers><envelope_from>b.test</envelope_from><header_from>a.test</header_from></identifiers>
<auth_results><dkim><domain>a.test</domain><selector>s</selector><result>pass</result></dkim><spf><domain>b.test</domain><scope>mfrom</scope><result>pass</result></spf></auth_results></record>
<record><row><source_ip>198.51.100.9</source_ip><count>2</count><policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
<identifiers><envelope_from>evil.test</envelope_from><header_from>a.test</header_from></identifiers>
<auth_results><spf><domain>evil.test</domain><scope>mfrom</scope><result>fail</result></spf></auth_results></record>
</feedback>"#;

    #[test]
    fn gzipped_report_parses_and_describes() {
        let r = parse(&report_message(XML), 5).unwrap();
        assert_eq!((r.org.as_str(), r.domain.as_str()), ("c.test", "a.test"));
        assert_eq!((r.messages, r.failed, r.begin), (6, 2, 86400));
        let text = describe(&r).unwrap();
        assert!(
            text.contains("198.51.100.9: 2 message(s), header_from=a.test envelope_from=evil.test"),
            "{text}"
        );
        assert!(
            text.contains("dmarc=fail (dkim=fail spf=fail) disposition=reject"),
            "{text}"
        );
        assert!(summary(&r).contains("6 messages, 2 failing DMARC"));
    }

    #[test]
    fn not_a_report_is_refused() {
        let plain = b"From: <x@y.test>\r\nSubject: hi\r\n\r\nhello\r\n";
        assert!(
            parse(plain, 0).unwrap_err().contains(
                "neither a DMARC aggregate report nor a TLS report (no TLS report in it)"
            )
        );
        // A gzip bomb is cut at the bound (C-MM9).
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b' '; MAX_DOCUMENT + 1]).unwrap();
        let bomb = gz.finish().unwrap();
        let m = report_message("x");
        let text = String::from_utf8(m).unwrap();
        let cut = text.find("H4sI").unwrap();
        let mut forged = text[..cut].to_string();
        use base64::Engine as _;
        for line in base64::engine::general_purpose::STANDARD
            .encode(bomb)
            .as_bytes()
            .chunks(76)
        {
            forged.push_str(std::str::from_utf8(line).unwrap());
            forged.push_str("\r\n");
        }
        forged.push_str("--tern-report-7-c-test--\r\n");
        let err = parse(forged.as_bytes(), 0).unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }
}
