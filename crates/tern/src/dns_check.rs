//! `tern dns check DOMAIN`: ask the DNS, through the configured resolver,
//! for every record Tern needs to receive and to be trusted, and say per
//! record OK or what is wrong with the line to publish (the same lines as
//! `tern dns records`). Checked: MX; the MX host's addresses; their PTR
//! and its forward match (FCrDNS, what Gmail-class receivers ask of a
//! sender); SPF, evaluated for each address Tern sends from; every DKIM
//! key; DMARC; the SRV records mail clients look for (RFC 6186, only a
//! warning when missing); the MX's TLSA record against the certificate
//! served now (DANE, RFC 7672: missing warns, wrong fails); MTA-STS (RFC
//! 8461: the `_mta-sts` record's id, then the policy fetched over HTTPS
//! as a sender would, compared with ours); TLS-RPT (RFC 8460: the
//! `_smtp._tls` record reaches our report address); the autoconfig and
//! autodiscover names clients ask (warnings only).

use std::net::IpAddr;
use std::sync::Arc;

use store::Store;

use crate::admin::{AdminError, dns_lines, known_domain};
use crate::config::Config;

/// One record's verdict.
pub struct Finding {
    pub what: String,
    pub problem: Option<String>,
    /// A problem here makes the check fail (otherwise a warning).
    pub required: bool,
    /// What to publish (or ask for) to fix it.
    pub fix: Option<String>,
}

impl Finding {
    fn ok(what: impl Into<String>) -> Finding {
        Finding {
            what: what.into(),
            problem: None,
            required: true,
            fix: None,
        }
    }

    fn bad(what: impl Into<String>, problem: impl Into<String>, fix: Option<String>) -> Finding {
        Finding {
            what: what.into(),
            problem: Some(problem.into()),
            required: true,
            fix,
        }
    }

    fn warning(mut self) -> Finding {
        self.required = false;
        self
    }
}

/// No such name, or no such record: nothing found (not a DNS failure).
fn found<T>(r: Result<Vec<T>, dns::DnsError>) -> Result<Vec<T>, dns::DnsError> {
    match r {
        Err(e) if !e.is_temporary() => Ok(Vec::new()),
        other => other,
    }
}

fn same_host(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Print the verdicts; an error when something required is wrong.
pub async fn check(store: Arc<dyn Store>, config: &Config, domain: &str) -> Result<(), AdminError> {
    let name = known_domain(&store, domain).await?;
    let findings = findings(&store, config, &name).await?;
    let mut failed = 0;
    for f in &findings {
        match &f.problem {
            None => println!("OK    {}", f.what),
            Some(p) => {
                let word = if f.required { "FAIL " } else { "WARN " };
                failed += usize::from(f.required);
                println!("{word} {}: {p}", f.what);
                if let Some(fix) = &f.fix {
                    println!("      fix: {fix}");
                }
            }
        }
    }
    if failed > 0 {
        return Err(AdminError(format!(
            "{failed} record(s) of {name} need fixing (see above)"
        )));
    }
    Ok(())
}

/// The verdict on every record one of our domains (`name`, checked) needs.
pub async fn findings(
    store: &Arc<dyn Store>,
    config: &Config,
    name: &str,
) -> Result<Vec<Finding>, AdminError> {
    let name = name.to_string();
    let resolver = crate::serve::resolver(config).map_err(|e| AdminError(e.0))?;
    let lines = dns_lines(store, config, &name).await?;
    let host = config.hostname.as_str();
    // The lookups are independent: asked together, a silent DNS costs one
    // timeout, not one per record.
    let (mx, addresses) = tokio::join!(
        mx(&resolver, &name, host, &lines.mx),
        resolver.addresses(host)
    );
    let addresses = addresses.unwrap_or_default();
    let mut findings = vec![mx];
    findings.push(if addresses.is_empty() {
        Finding::bad(
            format!("A/AAAA {host}"),
            "the MX host has no address",
            Some(format!(
                "{host}. 3600 IN A <the server's public IPv4 address>"
            )),
        )
    } else {
        let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
        Finding::ok(format!("A/AAAA {host} -> {}", list.join(", ")))
    });

    // Where our mail comes from: `[outbound] source`, or the MX host.
    let senders: Vec<IpAddr> = match config.outbound.source {
        Some(ip) => vec![ip],
        None => addresses.clone(),
    };
    let r = &resolver;
    let mut checks: Vec<Check<'_>> = Vec::new();
    for ip in &senders {
        checks.push(one(fcrdns(r, *ip, host)));
    }
    for ip in &senders {
        checks.push(one(spf(r, *ip, &name, host, &lines.spf)));
    }
    for (owner, expected, line) in &lines.dkim {
        checks.push(one(dkim(r, owner, expected, line)));
    }
    checks.push(one(dmarc(r, &name, &lines.dmarc)));
    for (owner, port, line) in &lines.srv {
        checks.push(one(srv(r, owner, *port, host, line)));
    }
    if let Some((owner, hash, line)) = &lines.tlsa {
        checks.push(one(tlsa(r, owner, hash, line)));
    }
    if let Some(m) = &lines.mta_sts {
        checks.push(Box::pin(mta_sts(r, config, &name, m)));
    }
    checks.push(one(tlsrpt(r, &name, &lines.tlsrpt.0, &lines.tlsrpt.1)));
    for (owner, line) in &lines.autoconfig {
        checks.push(one(client_name(r, owner, &addresses, line)));
    }
    for key in &lines.keys {
        checks.push(one(published_key(r, key)));
    }
    findings.extend(
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .flatten(),
    );
    Ok(findings)
}

/// A check under way: its findings (in the order they were listed).
type Check<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Finding>> + Send + 'a>>;

fn one<'a>(check: impl std::future::Future<Output = Finding> + Send + 'a) -> Check<'a> {
    Box::pin(async move { vec![check.await] })
}

/// The domain's MX names our host.
async fn mx(resolver: &dns::Resolver, name: &str, host: &str, line: &str) -> Finding {
    match found(resolver.mx(name).await) {
        Ok(mx) if mx.iter().any(|(_, h)| same_host(h, host)) => {
            Finding::ok(format!("MX {name} -> {host}"))
        }
        Ok(mx) if mx.is_empty() => {
            Finding::bad(format!("MX {name}"), "no MX record", Some(line.to_string()))
        }
        Ok(mx) => {
            let hosts: Vec<&str> = mx.iter().map(|(_, h)| h.as_str()).collect();
            Finding::bad(
                format!("MX {name}"),
                format!("points at {} (not {host})", hosts.join(", ")),
                Some(line.to_string()),
            )
        }
        Err(e) => Finding::bad(
            format!("MX {name}"),
            format!("DNS: {e}"),
            Some(line.to_string()),
        ),
    }
}

/// Forward-confirmed reverse DNS (RFC 8601 §3 iprev): the address's PTR
/// names our host, and that name has the address.
async fn fcrdns(resolver: &dns::Resolver, ip: IpAddr, host: &str) -> Finding {
    let what = format!("PTR {ip}");
    let fix = Some(format!(
        "ask the provider of {ip} to set its reverse DNS (PTR) to {host}."
    ));
    let names = match found(resolver.ptr(ip).await) {
        Ok(n) => n,
        Err(e) => return Finding::bad(what, format!("DNS: {e}"), fix),
    };
    if !names.iter().any(|n| same_host(n, host)) {
        let found = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        return Finding::bad(what, format!("names {found}, not {host}"), fix);
    }
    match resolver.addresses(host).await {
        Ok(back) if back.contains(&ip) => Finding::ok(format!("PTR {ip} -> {host} -> {ip}")),
        _ => Finding::bad(what, format!("{host} does not resolve back to {ip}"), fix),
    }
}

/// RFC 7208: would a receiver give our address `pass` for mail from the domain?
async fn spf(
    resolver: &dns::Resolver,
    ip: IpAddr,
    domain: &str,
    host: &str,
    line: &str,
) -> Finding {
    let sender = format!("postmaster@{domain}");
    let request = policy::spf::SpfRequest {
        ip,
        helo: host,
        mail_from: &sender,
        receiver: "dns-check.invalid",
        now: message::date::unix_now(),
    };
    let outcome = policy::spf::check(resolver, &request).await;
    let what = format!("SPF {domain} for {ip}");
    if outcome.result == policy::spf::SpfResult::Pass {
        Finding::ok(what)
    } else {
        Finding::bad(
            what,
            format!("{} ({})", outcome.result.as_str(), outcome.reason),
            Some(line.to_string()),
        )
    }
}

/// The TXT record of a DKIM key carries its public key.
async fn dkim(resolver: &dns::Resolver, owner: &str, expected: &str, line: &str) -> Finding {
    let what = format!("DKIM {owner}");
    let key = |text: &str| {
        text.split(';')
            .filter_map(|t| t.split_once('='))
            .find(|(k, _)| k.trim() == "p")
            .map(|(_, v)| v.chars().filter(|c| !c.is_whitespace()).collect::<String>())
    };
    match found(resolver.txt(owner).await) {
        Ok(records)
            if records
                .iter()
                .any(|r| key(r).is_some() && key(r) == key(expected)) =>
        {
            Finding::ok(what)
        }
        Ok(records) if records.is_empty() => {
            Finding::bad(what, "not published", Some(line.to_string()))
        }
        Ok(_) => Finding::bad(what, "published with another key", Some(line.to_string())),
        Err(e) => Finding::bad(what, format!("DNS: {e}"), Some(line.to_string())),
    }
}

/// RFC 6186: a client finds the service at our host and port (optional:
/// clients can be set up by hand, so a missing record only warns).
async fn srv(resolver: &dns::Resolver, owner: &str, port: u16, host: &str, line: &str) -> Finding {
    let what = format!("SRV {owner}");
    match found(resolver.srv(owner).await) {
        Ok(r)
            if r.iter()
                .any(|(_, _, p, t)| *p == port && same_host(t, host)) =>
        {
            Finding::ok(what)
        }
        Ok(r) if r.is_empty() => Finding::bad(
            what,
            "not published (clients must be set up by hand)",
            Some(line.to_string()),
        )
        .warning(),
        Ok(_) => Finding::bad(
            what,
            format!("points elsewhere (not {host} port {port})"),
            Some(line.to_string()),
        )
        .warning(),
        Err(e) => Finding::bad(what, format!("DNS: {e}"), Some(line.to_string())).warning(),
    }
}

/// RFC 7672 §3.1: a TLSA RRset for the MX must match the certificate we
/// serve, or senders that check DANE cannot deliver at all; none is a
/// warning (they fall back to opportunistic TLS). Only DANE-EE records
/// with the SPKI and SHA-256 (3 1 1, what `dns records` prints) are
/// checked; others are reported as not checked.
async fn tlsa(resolver: &dns::Resolver, owner: &str, hash: &[u8], line: &str) -> Finding {
    let what = format!("TLSA {owner}");
    let fix = Some(line.to_string());
    match found(resolver.tlsa(owner).await) {
        Ok(r) if r.is_empty() => Finding::bad(
            what,
            "not published (senders that check DANE use opportunistic TLS)",
            fix,
        )
        .warning(),
        Ok(r)
            if r.iter()
                .any(|(u, s, m, d)| (*u, *s, *m) == (3, 1, 1) && d == hash) =>
        {
            Finding::ok(what)
        }
        Ok(r) if r.iter().any(|(u, s, m, _)| (*u, *s, *m) == (3, 1, 1)) => Finding::bad(
            what,
            "no record matches the certificate served now: DANE senders cannot deliver",
            fix,
        ),
        Ok(_) => Finding::bad(what, "only records Tern does not check (not 3 1 1)", fix).warning(),
        Err(e) => Finding::bad(what, format!("DNS: {e}"), fix),
    }
}

/// A user's published key (RFC 7929 OPENPGPKEY, RFC 8162 SMIMEA): missing
/// only warns (publishing is the user's choice); a record with another
/// key fails (senders would encrypt to a key the user no longer has).
async fn published_key(resolver: &dns::Resolver, key: &crate::admin::KeyRecord) -> Finding {
    let (what, found_now) = match key.kind {
        store::KeyKind::OpenPgp => (
            format!("OPENPGPKEY {}", key.owner),
            found(resolver.openpgpkey(&key.owner).await)
                .map(|r| (r.is_empty(), r.contains(&key.data))),
        ),
        store::KeyKind::Smime => (
            format!("SMIMEA {}", key.owner),
            found(resolver.smimea(&key.owner).await).map(|r| {
                let ours = r
                    .iter()
                    .any(|(u, s, m, d)| (*u, *s, *m) == (3, 0, 0) && *d == key.data);
                (r.is_empty(), ours)
            }),
        ),
    };
    let fix = Some(key.line.clone());
    match found_now {
        Ok((_, true)) => Finding::ok(what),
        Ok((true, _)) => Finding::bad(what, "not published", fix).warning(),
        Ok((false, false)) => Finding::bad(
            what,
            "another key is published: senders would use a key the user does not have now",
            fix,
        ),
        Err(e) => Finding::bad(what, format!("DNS: {e}"), fix),
    }
}

/// RFC 8461: the `_mta-sts` record names our policy's id, and the policy
/// fetched as a sender would (HTTPS, verified certificate) is ours and
/// names our MX. No record only warns (MTA-STS is optional); a record that
/// leads nowhere fails (senders would find no policy, or an old one).
async fn mta_sts(
    resolver: &dns::Resolver,
    config: &Config,
    domain: &str,
    m: &crate::admin::MtaStsLines,
) -> Vec<Finding> {
    let what = format!("MTA-STS {}", m.owner);
    let fix = Some(m.txt.clone());
    let id = match found(resolver.txt(&m.owner).await) {
        Ok(r) if r.is_empty() => {
            return vec![Finding::bad(what, "not published", fix).warning()];
        }
        Ok(r) => dns::mta_sts::record_id(&r),
        Err(e) => Err(format!("DNS: {e}")),
    };
    let mut findings = vec![match id {
        Ok(id) if id == m.id => Finding::ok(what),
        Ok(id) => Finding::bad(
            what,
            format!(
                "id={id}, not the id of the policy served now ({}): senders keep an old policy",
                m.id
            ),
            fix,
        ),
        Err(e) => Finding::bad(what, e, fix),
    }];
    let what = format!("MTA-STS policy https://{}/.well-known/mta-sts.txt", m.host);
    let fix = Some(format!(
        "{} (and a certificate for {} on the https listener)",
        m.cname, m.host
    ));
    let tls = match net::tls::verifying_client(config.outbound.ca_file.as_deref(), &[b"http/1.1"]) {
        Ok(t) => t,
        Err(e) => {
            findings.push(Finding::bad(what, e.to_string(), fix));
            return findings;
        }
    };
    let ours = config.mta_sts_policy();
    findings.push(
        match dns::mta_sts::fetch(resolver, domain, tls, config.outbound.mta_sts_port).await {
            Ok(p) if p == ours => Finding::ok(format!("{what}: mode {}", p.mode.as_str())),
            Ok(p) if !p.matches(&config.hostname) => Finding::bad(
                what,
                format!(
                    "does not name {} as an MX: senders in enforce mode would refuse it",
                    config.hostname
                ),
                fix,
            ),
            Ok(_) => Finding::bad(what, "another policy than the one Tern serves", fix),
            Err(e) => Finding::bad(what, format!("senders cannot fetch it: {e}"), fix),
        },
    );
    findings
}

/// A name clients ask for their settings leads to our addresses (optional:
/// a missing one only warns).
async fn client_name(
    resolver: &dns::Resolver,
    owner: &str,
    ours: &[IpAddr],
    line: &str,
) -> Finding {
    let what = format!("autoconfig {owner}");
    let fix = Some(line.to_string());
    match resolver.addresses(owner).await {
        Ok(found) if found.iter().any(|ip| ours.contains(ip)) => Finding::ok(what),
        Ok(_) => Finding::bad(what, "leads to another server", fix).warning(),
        Err(e) if e.is_temporary() => Finding::bad(what, format!("DNS: {e}"), fix).warning(),
        Err(_) => {
            Finding::bad(what, "not published (clients must be set up by hand)", fix).warning()
        }
    }
}

/// RFC 8460 §3: one `v=TLSRPTv1` record whose rua reaches our TLS report
/// address (optional: missing or elsewhere warns).
async fn tlsrpt(resolver: &dns::Resolver, domain: &str, owner: &str, line: &str) -> Finding {
    let what = format!("TLS-RPT {owner}");
    let fix = Some(line.to_string());
    let ours = format!("mailto:{}@{domain}", delivery::TLSRPT_LOCAL_PART);
    let records: Vec<String> = match found(resolver.txt(owner).await) {
        Ok(r) => r
            .into_iter()
            .filter(|t| t.trim_start().starts_with("v=TLSRPTv1"))
            .collect(),
        Err(e) => return Finding::bad(what, format!("DNS: {e}"), fix),
    };
    match records.as_slice() {
        [] => Finding::bad(
            what,
            "not published (no reports on senders' TLS to us)",
            fix,
        )
        .warning(),
        [one] if one.to_ascii_lowercase().contains(&ours) => Finding::ok(what),
        [_] => Finding::bad(what, format!("reports go elsewhere, not to {ours}"), fix).warning(),
        _ => Finding::bad(what, "more than one record (senders report to none)", fix).warning(),
    }
}

/// RFC 7489 §6.3: one record with a policy; p=none protects nothing.
async fn dmarc(resolver: &dns::Resolver, domain: &str, line: &str) -> Finding {
    let owner = format!("_dmarc.{domain}");
    let what = format!("DMARC {owner}");
    let records: Vec<String> = match found(resolver.txt(&owner).await) {
        Ok(r) => r
            .into_iter()
            .filter(|t| t.trim_start().starts_with("v=DMARC1"))
            .collect(),
        Err(e) => return Finding::bad(what, format!("DNS: {e}"), Some(line.to_string())),
    };
    let policy = |r: &str| {
        r.split(';')
            .filter_map(|t| t.split_once('='))
            .find(|(k, _)| k.trim() == "p")
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    match records.as_slice() {
        [] => Finding::bad(what, "not published", Some(line.to_string())),
        [one] => match policy(one).as_deref() {
            Some("quarantine" | "reject") => Finding::ok(what),
            Some("none") => Finding::bad(
                what,
                "p=none asks receivers to do nothing",
                Some(line.to_string()),
            )
            .warning(),
            _ => Finding::bad(what, "no valid p= tag", Some(line.to_string())),
        },
        _ => Finding::bad(
            what,
            "more than one record (receivers ignore them all)",
            Some(line.to_string()),
        ),
    }
}
