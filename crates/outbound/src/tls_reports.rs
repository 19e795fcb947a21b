//! TLS reporting (RFC 8460), the sending side: every TLS setup our MTA
//! makes is recorded by destination domain (with the policy it applied and,
//! on failure, the RFC 8460 §4.3 result type); once per reporting interval,
//! each domain whose `_smtp._tls` record asks for reports by mail gets one:
//! the JSON gzipped in a multipart/report (§5.3), from our TLS report
//! address, DKIM-signed, queued like any other mail; to https endpoints
//! (§3) the gzipped JSON is POSTed (`application/tlsrpt+gzip`, §5.3.2)
//! over TLS checked against the WebPKI.

use std::collections::BTreeMap;
use std::sync::Arc;

use delivery::Mda;
pub use mail_auth::report::tlsrpt::ResultType;
use mail_auth::report::tlsrpt::{
    DateRange, FailureDetails, Policy as ReportPolicy, PolicyDetails, PolicyType, Summary,
    TlsReport,
};
use policy::sign::Signer;
use store::{DomainTlsResults, Store, StoreError, TlsResult};

use crate::dmarc_reports::ReporterConfig;
use crate::tls_policy::TlsPolicy;

/// The policy part of a result, as kept until the report (§4.2).
pub fn policy_details(domain: &str, policy: &TlsPolicy) -> PolicyDetails {
    match policy {
        TlsPolicy::MtaSts { policy, .. } => PolicyDetails {
            policy_type: PolicyType::Sts,
            policy_string: policy.text().lines().map(str::to_string).collect(),
            policy_domain: domain.to_string(),
            mx_host: policy.mx.clone(),
        },
        // §4.1: the TLSA records, each in presentation form.
        TlsPolicy::Dane { host, records, .. } => PolicyDetails {
            policy_type: PolicyType::Tlsa,
            policy_string: records
                .iter()
                .map(|t| {
                    let hex: String = t.data.iter().map(|b| format!("{b:02x}")).collect();
                    format!("{} {} {} {hex}", t.usage, t.selector, t.matching)
                })
                .collect(),
            policy_domain: domain.to_string(),
            mx_host: vec![host.clone()],
        },
        TlsPolicy::Opportunistic => PolicyDetails {
            policy_type: PolicyType::NoPolicyFound,
            policy_string: Vec::new(),
            policy_domain: domain.to_string(),
            mx_host: Vec::new(),
        },
    }
}

/// §4.3: the result type of a failed TLS setup, from what went wrong.
pub fn result_type(error: &crate::client::ClientError) -> ResultType {
    use crate::client::ClientError;
    let text = error.to_string().to_ascii_lowercase();
    match error {
        ClientError::TlsRequired(_) => ResultType::StartTlsNotSupported,
        ClientError::Tls(_) if text.contains("dane:") => ResultType::TlsaInvalid,
        ClientError::Tls(_) if text.contains("notvalidforname") => {
            ResultType::CertificateHostMismatch
        }
        ClientError::Tls(_) if text.contains("expired") => ResultType::CertificateExpired,
        ClientError::Tls(_) if text.contains("unknownissuer") || text.contains("certificate") => {
            ResultType::CertificateNotTrusted
        }
        _ => ResultType::ValidationFailure,
    }
}

/// One TLS setup's outcome, ready for the store.
pub fn result(
    domain: &str,
    policy: &TlsPolicy,
    mx: &str,
    ip: Option<std::net::IpAddr>,
    failure: Option<(ResultType, String)>,
) -> TlsResult {
    let details = policy_details(domain, policy);
    TlsResult {
        at: message::date::unix_now(),
        domain: domain.to_string(),
        policy: serde_json::to_string(&details).unwrap_or_default(),
        failure: failure.map(|(result_type, info)| {
            let f = FailureDetails {
                result_type,
                sending_mta_ip: None,
                receiving_mx_hostname: Some(mx.to_string()),
                receiving_mx_helo: None,
                receiving_ip: ip,
                failed_session_count: 0,
                additional_information: Some(info),
                failure_reason_code: None,
            };
            serde_json::to_string(&f).unwrap_or_default()
        }),
    }
}

/// The mailto: and https: destinations of a `_smtp._tls` record (§3):
/// the address of a `mailto:` URI when it is one valid mailbox, an
/// `https:` URL when it has a host and no control character; the rest is
/// skipped (the record is
/// the reported domain's to write, C-FZ12).
pub fn destinations(records: &[String]) -> (Vec<String>, Vec<String>) {
    let mut mail = Vec::new();
    let mut https = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.trim_start().starts_with("v=TLSRPTv1"))
    {
        for field in r.split(';') {
            let Some(("rua", value)) = field.trim().split_once('=') else {
                continue;
            };
            for uri in value.split(',').map(str::trim) {
                let scheme = uri.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
                match scheme.as_deref() {
                    Some("mailto") => {
                        // RFC 6068 §2: the address, then `?` and header fields.
                        let address = uri[7..].split('?').next().unwrap_or("");
                        if let Some(m) = message::Mailbox::from_mailto(address) {
                            mail.push(m.to_string());
                        }
                    }
                    // RFC 3986 §2: no control character anywhere in a URI
                    // (the URL parser lets one by in a fragment).
                    Some("https")
                        if dns::https::parts(uri).is_some()
                            && !uri.chars().any(char::is_control) =>
                    {
                        https.push(uri.to_string())
                    }
                    _ => {}
                }
            }
        }
    }
    (mail, https)
}

/// The report about `d` for the period ending at `until`.
fn report(d: &DomainTlsResults, ours: &str, hostname: &str, begin: i64, until: i64) -> TlsReport {
    let mut policies: BTreeMap<String, ReportPolicy> = BTreeMap::new();
    for (policy, failure, n) in &d.rows {
        let entry = policies
            .entry(policy.clone())
            .or_insert_with(|| ReportPolicy {
                policy: serde_json::from_str(policy).unwrap_or_else(|_| PolicyDetails {
                    policy_type: PolicyType::NoPolicyFound,
                    policy_string: Vec::new(),
                    policy_domain: d.domain.clone(),
                    mx_host: Vec::new(),
                }),
                summary: Summary {
                    total_success: 0,
                    total_failure: 0,
                },
                failure_details: Vec::new(),
            });
        let n32 = u32::try_from(*n).unwrap_or(u32::MAX);
        match failure
            .as_deref()
            .map(serde_json::from_str::<FailureDetails>)
        {
            None => entry.summary.total_success += n32,
            Some(Ok(mut f)) => {
                entry.summary.total_failure += n32;
                f.failed_session_count = n32;
                entry.failure_details.push(f);
            }
            Some(Err(_)) => entry.summary.total_failure += n32,
        }
    }
    TlsReport {
        organization_name: Some(ours.to_string()),
        date_range: DateRange {
            start_datetime: mail_parser::DateTime::from_timestamp(begin),
            end_datetime: mail_parser::DateTime::from_timestamp(until - 1),
        },
        contact_info: Some(format!("{}@{ours}", delivery::TLSRPT_LOCAL_PART)),
        report_id: format!("{}.{until}@{hostname}", d.domain),
        policies: policies.into_values().collect(),
    }
}

/// Sends the TLS reports that are due.
pub struct TlsReporter {
    store: Arc<dyn Store>,
    mda: Arc<Mda>,
    signer: Option<Arc<Signer>>,
    dns: dns::Resolver,
    cfg: ReporterConfig,
    /// The TLS client for https destinations (WebPKI-verifying); None:
    /// they are skipped.
    https: Option<Arc<rustls::ClientConfig>>,
}

/// The most octets of an https destination's answer read.
const MAX_HTTPS_ANSWER: usize = 16 << 10;

impl TlsReporter {
    pub fn new(
        store: Arc<dyn Store>,
        mda: Arc<Mda>,
        signer: Option<Arc<Signer>>,
        dns: dns::Resolver,
        cfg: ReporterConfig,
    ) -> TlsReporter {
        TlsReporter {
            store,
            mda,
            signer,
            dns,
            cfg,
            https: None,
        }
    }

    /// Send to https destinations too, over TLS checked by `client`.
    pub fn with_https(mut self, client: Arc<rustls::ClientConfig>) -> TlsReporter {
        self.https = Some(client);
        self
    }

    /// The end of the last whole period before `now` (what is due then).
    pub fn due_until(&self, now: i64) -> i64 {
        now - now.rem_euclid(self.cfg.interval.max(1))
    }

    /// Send the report of every domain with results before `until`; the
    /// domains reported to.
    pub async fn send_due(&self, until: i64) -> Result<Vec<String>, StoreError> {
        let due = self.store.tls_results_before(until).await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let Some(ours) =
            crate::dmarc_reports::reporting_domain(&self.store, &self.cfg.hostname).await?
        else {
            tracing::warn!("TLS reports: no domain to send them from; add one");
            return Ok(Vec::new());
        };
        let mut sent = Vec::new();
        for d in &due {
            match self.dns.txt(&format!("_smtp._tls.{}", d.domain)).await {
                // DNS trouble: keep the results for the next run.
                Err(e) if e.is_temporary() => continue,
                Err(_) => {}
                Ok(records) => {
                    let (to, https) = destinations(&records);
                    if !to.is_empty() {
                        self.send(d, &ours, until, &to).await?;
                    }
                    let posted = self.post(d, &ours, until, &https).await;
                    if !to.is_empty() || posted {
                        sent.push(d.domain.clone());
                    }
                }
            }
            self.store.delete_tls_results(&d.domain, until).await?;
        }
        Ok(sent)
    }

    async fn send(
        &self,
        d: &DomainTlsResults,
        ours: &str,
        until: i64,
        to: &[String],
    ) -> Result<(), StoreError> {
        let begin = until - self.cfg.interval.max(1);
        let report = report(d, ours, &self.cfg.hostname, begin, until);
        let from = format!("{}@{ours}", delivery::TLSRPT_LOCAL_PART);
        let mut bytes = Vec::new();
        if let Err(e) = report.write_rfc5322(
            &d.domain,
            &self.cfg.hostname,
            ("", from.as_str()),
            to.iter().map(String::as_str),
            &mut bytes,
        ) {
            tracing::warn!(domain = %d.domain, error = %e, "TLS reports: cannot write the report");
            return Ok(());
        }
        if let Some(signer) = &self.signer {
            let signatures = signer.sign(ours, &bytes, message::date::unix_now()).await;
            bytes.splice(0..0, signatures.into_bytes());
        }
        self.mda
            .deliver_generated(&from, to, bytes, message::date::unix_now())
            .await?;
        tracing::info!(domain = %d.domain, to = ?to, "TLS report sent");
        Ok(())
    }

    /// §3, §5.3.2: POST the gzipped report to each https destination;
    /// whether one took it (a 2xx). A failure is logged, not retried: the
    /// next period's report follows.
    async fn post(&self, d: &DomainTlsResults, ours: &str, until: i64, urls: &[String]) -> bool {
        let Some(client) = &self.https else {
            if !urls.is_empty() {
                tracing::info!(domain = %d.domain, "TLS reports: no TLS client for https destinations");
            }
            return false;
        };
        if urls.is_empty() {
            return false;
        }
        let begin = until - self.cfg.interval.max(1);
        let json = report(d, ours, &self.cfg.hostname, begin, until).to_json();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let gzipped = std::io::Write::write_all(&mut gz, json.as_bytes())
            .and_then(|()| gz.finish())
            .unwrap_or_default();
        let mut any = false;
        for url in urls {
            let Some((host, port, path)) = dns::https::parts(url) else {
                tracing::info!(domain = %d.domain, %url, "TLS reports: not an https URL");
                continue;
            };
            let ask = dns::https::Ask {
                method: http::Method::POST,
                path: &path,
                body: Some(("application/tlsrpt+gzip", gzipped.clone())),
                headers: &[],
                max_answer: MAX_HTTPS_ANSWER,
            };
            match dns::https::request(&self.dns, &host, port, client.clone(), &ask).await {
                Ok(a) if a.status.is_success() => {
                    tracing::info!(domain = %d.domain, %url, "TLS report posted");
                    any = true;
                }
                Ok(a) => {
                    tracing::warn!(domain = %d.domain, %url, status = %a.status, "TLS report refused")
                }
                Err(e) => {
                    tracing::warn!(domain = %d.domain, %url, error = %e, "TLS report not posted")
                }
            }
        }
        any
    }

    /// Run until `stop`: at each period's end, send what is due.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let this = &self;
        crate::dmarc_reports::at_each_period_end(
            &self.store,
            "tls-reports",
            self.cfg.interval,
            stop,
            |until| async move {
                if let Err(e) = this.send_due(until).await {
                    tracing::warn!(error = %e, "TLS reports: cannot send");
                }
            },
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rua_destinations() {
        let (mail, https) = destinations(&[
            "v=TLSRPTv1; rua=mailto:tls@a.test,https://r.a.test/x".into(),
            "v=spf1 -all".into(),
        ]);
        assert_eq!(mail, ["tls@a.test"]);
        assert_eq!(https, ["https://r.a.test/x"]);
    }

    /// C-FZ12: the `_smtp._tls` record is the reported domain's to write
    /// (RFC 8460 §3); its addresses went as they were into the report's To
    /// field, a CR LF among them adding fields of its choosing to a report
    /// we DKIM-sign. Only one valid mailbox per `mailto:` URI (percent-
    /// decoded, RFC 6068 §2) and only https URLs with a host are kept.
    #[test]
    fn only_valid_destinations_are_kept() {
        let (mail, https) = destinations(&[
            "v=TLSRPTv1; rua=mailto:a@x.test\r\nX-Injected: yes,mailto:tls%2Brpt@a.test,mailto:not an address,https://,https://r.a.test/x\r\nX: y,https://r.a.test/y#\u{1f},https://r.a.test/ok".into(),
        ]);
        assert_eq!(mail, ["tls+rpt@a.test"]);
        assert_eq!(https, ["https://r.a.test/ok"]);
    }

    #[test]
    fn results_counted_per_policy() {
        let policy = TlsPolicy::Opportunistic;
        let ok = result(
            "b.test",
            &policy,
            "mx.b.test",
            Some([127, 0, 0, 1].into()),
            None,
        );
        let bad = result(
            "b.test",
            &policy,
            "mx.b.test",
            Some([127, 0, 0, 1].into()),
            Some((ResultType::StartTlsNotSupported, "no".into())),
        );
        let d = DomainTlsResults {
            domain: "b.test".into(),
            rows: vec![(ok.policy.clone(), None, 5), (bad.policy, bad.failure, 2)],
        };
        let r = report(&d, "a.test", "mx.a.test", 0, 86_400);
        assert_eq!(r.policies.len(), 1);
        assert_eq!(r.policies[0].summary.total_success, 5);
        assert_eq!(r.policies[0].summary.total_failure, 2);
        assert_eq!(r.policies[0].failure_details[0].failed_session_count, 2);
        assert_eq!(r.report_id, "b.test.86400@mx.a.test");
    }
}
