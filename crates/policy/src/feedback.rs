//! DMARC aggregate reports that other receivers send to our report address
//! (RFC 7489 §7.2): found in the message (XML, gzip or zip attachment),
//! decompressed within a bound (hardening.md C-MM9), summarised for the store
//! and described for the operator (`tern report list` / `show`).

use std::fmt::Write as _;

use mail_auth::report::{DmarcResult, Report};

/// The largest report document Tern decompresses (RFC 7489 reports from the
/// largest receivers stay well below).
pub const MAX_DOCUMENT: usize = 20 << 20;

/// The report in `message`, ready to keep; Err with the reason otherwise.
pub fn parse(message: &[u8], received_at: i64) -> Result<store::ReceivedReport, String> {
    let report = Report::parse_rfc5322(message, MAX_DOCUMENT).map_err(|e| match e {
        mail_auth::report::Error::MailParseError => "not a MIME message".to_string(),
        mail_auth::report::Error::ReportParseError(why) => format!("bad report XML: {why}"),
        mail_auth::report::Error::UncompressError(why) => format!("cannot decompress: {why}"),
        mail_auth::report::Error::ReportTooLarge => {
            format!("report larger than {} MiB", MAX_DOCUMENT >> 20)
        }
        mail_auth::report::Error::NoReportsFound => "no DMARC aggregate report in it".to_string(),
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
    format!(
        "{}\t{}\t{}\t{} to {}\t{} messages, {} failing DMARC\t{}",
        r.id,
        r.domain,
        r.org,
        message::date::rfc5322(r.begin),
        message::date::rfc5322(r.end),
        r.messages,
        r.failed,
        r.report_id
    )
}

/// Everything a report says, for `tern report show`: who sent mail as our
/// domain, from which IPs, with which SPF/DKIM/DMARC outcome.
pub fn describe(r: &store::ReceivedReport) -> Result<String, String> {
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
            parse(plain, 0)
                .unwrap_err()
                .contains("no DMARC aggregate report")
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
