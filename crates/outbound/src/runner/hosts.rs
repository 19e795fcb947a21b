//! Delivery of one message to one destination domain over SMTP: the
//! route (smarthost or MX hosts, RFC 5321 §5.1), connections and their
//! reuse, the transactions (split by the server's LIMITS), the 7-bit form for
//! servers without 8BITMIME.

use super::*;
use message::spool::Spooled;

/// Why an MX host is not tried.
pub(super) enum HostFailure {
    /// Its addresses could not be found.
    Dns(Reply),
    /// DANE applies and cannot be met: a bogus answer, a failed TLSA lookup.
    Dane(Reply),
}

/// Where mail for one domain goes.
pub(super) struct Route {
    /// MX hosts in order (or the smarthost).
    hosts: Vec<String>,
    port: u16,
    /// AUTH PLAIN credentials (smarthost only).
    credentials: Option<(String, String)>,
    /// The TLS this destination gets (chosen once, here, for every connection).
    pub(super) tls: TlsPolicy,
    /// The destination domain whose TLS report (RFC 8460) counts these
    /// connections; None through a smarthost.
    report_for: Option<String>,
    /// What the message asks of TLS (RFC 8689).
    asked: MessageTls,
}

impl Runner {
    /// RFC 5321 §5.1: the smarthost, or the MX hosts in order, each address in turn.
    pub(super) async fn deliver_domain(
        &self,
        job: &QueueJob,
        domain: &str,
        rcpts: &[QueuedRecipient],
        content: &Spooled,
    ) -> DomainRun {
        let mut run = DomainRun::new();
        let env = out_envelope(job, rcpts);
        let asked = MessageTls::of(job.options.require_tls, content.header());
        let route = match self.route(domain, asked).await {
            Ok(r) => r,
            Err((reply, permanent)) => {
                run.attempts
                    .push(self.attempt(rcpts, None, None, None, &reply));
                run.settle(rcpts, reply, permanent);
                return run;
            }
        };
        run.tls_policy = route.tls.label();
        // A session kept from the previous message to this domain: its last
        // transaction ended cleanly, so no RSET. If the server has closed it
        // meanwhile, that is no attempt worth recording: a new connection follows.
        // (A REQUIRETLS message needs its own, authenticated one.)
        let pooled = match asked {
            MessageTls::Required => None,
            _ => self.take_pooled(domain),
        };
        if let Some(mut session) = pooled {
            let mut reused = DomainRun::new();
            reused.tls_policy = run.tls_policy;
            match self
                .transact(&mut session, &env, content, rcpts, &mut reused)
                .await
            {
                Ok(results) => {
                    reused.results = results;
                    self.give_back(domain, session);
                    return reused;
                }
                Err(reply) => {
                    tracing::debug!(%domain, reply = %reply.one_line(), "reused session failed");
                }
            }
        }
        let mut last_error = crate::client::local_reply(451, "4.4.1", "no MX host answered");
        // RFC 7672 §2.2: once a host with DANE failed, a host without it
        // is no way around the failure (hardening.md C-OB12).
        let mut dane_failed = false;
        'hosts: for (i, host) in route.hosts.iter().enumerate() {
            let (ips, tls) = match self.host_route(host, &route).await {
                Ok(found) => found,
                Err(HostFailure::Dns(reply)) => {
                    last_error = reply;
                    continue;
                }
                Err(HostFailure::Dane(reply)) => {
                    // A DANE failure is an attempt the operator must see.
                    dane_failed = true;
                    run.attempts
                        .push(self.attempt(rcpts, Some(host), None, None, &reply));
                    last_error = reply;
                    continue;
                }
            };
            if dane_failed && !matches!(tls, TlsPolicy::Dane { .. }) {
                tracing::info!(%domain, %host, "not tried: an MX host with DANE failed before it");
                continue;
            }
            if asked == MessageTls::Required && !tls.satisfies_require_tls() {
                last_error = crate::client::local_reply(
                    550,
                    "5.7.30",
                    &format!("REQUIRETLS: {host} has neither DANE nor an enforced MTA-STS policy"),
                );
                run.attempts
                    .push(self.attempt(rcpts, Some(host), None, None, &last_error));
                continue;
            }
            // RFC 5321 §5.1: MX hosts from our own preference on are not used;
            // if we are the best MX, the mail loops (hardening.md C-RL10).
            if self.is_me(host, &ips) {
                if i == 0 {
                    self.looped(domain, host, rcpts, &mut run);
                    return run;
                }
                break;
            }
            for ip in ips {
                let connected = self.connect(host, ip, &route, &tls, rcpts, &mut run).await;
                let mut session = match connected {
                    Ok(s) => s,
                    Err(reply) => {
                        dane_failed |= matches!(tls, TlsPolicy::Dane { .. });
                        last_error = reply;
                        continue;
                    }
                };
                // The server greets with our own name: it is us behind another address.
                if session
                    .greeting_name
                    .eq_ignore_ascii_case(&self.cfg.hostname)
                {
                    session.quit().await;
                    if i == 0 {
                        self.looped(domain, host, rcpts, &mut run);
                        return run;
                    }
                    break 'hosts;
                }
                match self
                    .transact(&mut session, &env, content, rcpts, &mut run)
                    .await
                {
                    Ok(results) => {
                        run.results = results;
                        self.give_back(domain, session);
                        return run;
                    }
                    Err(reply) => last_error = reply,
                }
            }
        }
        // RFC 8689 §4.2.1: REQUIRETLS that no host can meet returns the message.
        let permanent = last_error.enhanced.as_deref() == Some("5.7.30");
        run.settle(rcpts, last_error, permanent);
        run
    }

    /// RFC 5321 §5.1: our own best MX (hardening.md C-RL10): permanent, 5.4.6.
    pub(super) fn looped(
        &self,
        domain: &str,
        host: &str,
        rcpts: &[QueuedRecipient],
        run: &mut DomainRun,
    ) {
        let reply = crate::client::local_reply(
            554,
            "5.4.6",
            &format!("mail for {domain} loops back to myself (MX {host})"),
        );
        run.attempts
            .push(self.attempt(rcpts, Some(host), None, None, &reply));
        run.settle(rcpts, reply, true);
    }

    /// A host's addresses; an IP address (a smarthost given by address) is itself.
    pub(super) async fn host_addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let mut ips = self.resolver.addresses(host).await?;
        ips.truncate(MAX_ADDRESSES_PER_HOST);
        Ok(ips)
    }

    /// A host's addresses and the TLS it gets: DANE when its address and
    /// TLSA records are DNSSEC-validated (RFC 7672 §2.2.2, §2.2.3, the port
    /// delivered to naming the TLSA records), else the domain's policy. A
    /// bogus answer or a TLSA lookup that failed (not proved absent) is a
    /// DANE failure, 4.7.5: the host is not used (RFC 7672 §2.2).
    pub(super) async fn host_route(
        &self,
        host: &str,
        route: &Route,
    ) -> Result<(Vec<IpAddr>, TlsPolicy), HostFailure> {
        let reply = crate::client::local_reply;
        let unresolved = |e: DnsError| {
            HostFailure::Dns(reply(451, "4.4.3", &format!("cannot resolve {host}: {e}")))
        };
        let dane = self.cfg.dane
            && route.asked != MessageTls::PolicyIgnored
            && route.report_for.is_some()
            && host.trim_matches(['[', ']']).parse::<IpAddr>().is_err()
            && self.resolver.dnssec_ready().await;
        if !dane {
            let ips = self.host_addresses(host).await.map_err(unresolved)?;
            return Ok((ips, route.tls.clone()));
        }
        let dnssec_failed = |e: DnsError| {
            self.note_dnssec_failure(route, host, &e);
            HostFailure::Dane(reply(451, "4.7.5", &format!("DANE: {e}")))
        };
        let addresses = match self.resolver.secure_addresses(host).await {
            Ok(a) => a,
            Err(e @ DnsError::Bogus(..)) => return Err(dnssec_failed(e)),
            Err(e) => return Err(unresolved(e)),
        };
        let mut ips = addresses.value;
        ips.truncate(MAX_ADDRESSES_PER_HOST);
        if !addresses.secure {
            return Ok((ips, route.tls.clone()));
        }
        let name = format!("_{}._tcp.{}", route.port, host.trim_end_matches('.'));
        match self.resolver.secure_tlsa(&name).await {
            Ok(t) if t.secure && !t.value.is_empty() => match TlsPolicy::dane(host, t.value) {
                Ok(dane) => Ok((ips, dane)),
                Err(e) => Err(HostFailure::Dane(reply(
                    451,
                    "4.7.5",
                    &format!("DANE: {e}"),
                ))),
            },
            Ok(_) | Err(DnsError::NoRecords(_) | DnsError::NoSuchDomain(_)) => {
                Ok((ips, route.tls.clone()))
            }
            Err(e) => Err(dnssec_failed(e)),
        }
    }

    /// RFC 8460 §4.3: a DNSSEC failure on the way to a host counts in the
    /// destination's TLS report.
    fn note_dnssec_failure(&self, route: &Route, host: &str, e: &DnsError) {
        let Some(domain) = &route.report_for else {
            return;
        };
        let kind = match e {
            DnsError::Bogus(..) => tls_reports::ResultType::DnssecInvalid,
            _ => tls_reports::ResultType::TlsaInvalid,
        };
        let failure = Some((kind, e.to_string()));
        let r = tls_reports::result(domain, &route.tls, host, None, failure);
        self.store.record_tls_results(vec![r]);
    }

    pub(super) fn is_me(&self, host: &str, ips: &[IpAddr]) -> bool {
        host.trim_end_matches('.')
            .eq_ignore_ascii_case(&self.cfg.hostname)
            || ips.iter().any(|ip| self.cfg.local_ips.contains(ip))
    }

    /// A ready session to one address (after AUTH for a smarthost), or the reply
    /// to remember; failed attempts are logged in `run`.
    pub(super) async fn connect(
        &self,
        host: &str,
        ip: IpAddr,
        route: &Route,
        tls: &TlsPolicy,
        rcpts: &[QueuedRecipient],
        run: &mut DomainRun,
    ) -> Result<Session, Reply> {
        run.tls_policy = tls.label();
        let mut session = match self.open(host, ip, route, tls).await {
            Ok(s) => s,
            Err(e) => {
                let reply = error_reply(&e);
                run.attempts
                    .push(self.attempt(rcpts, Some(host), Some(ip), None, &reply));
                return Err(reply);
            }
        };
        if let Some((user, password)) = &route.credentials
            && let Err(e) = session.auth_plain(user, password).await
        {
            let reply = error_reply(&e);
            run.attempts.push(self.attempt(
                rcpts,
                Some(host),
                Some(ip),
                session.tls.clone(),
                &reply,
            ));
            return Err(reply);
        }
        Ok(session)
    }

    /// Where mail for a domain goes: (hosts, port, credentials), or the reply that
    /// settles it (and whether that is permanent).
    pub(super) async fn route(
        &self,
        domain: &str,
        asked: MessageTls,
    ) -> Result<Route, (Reply, bool)> {
        if let Some(s) = &self.cfg.smarthost
            && (s.domains.is_empty() || s.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
        {
            return Ok(Route {
                hosts: vec![s.host.clone()],
                port: s.port,
                credentials: s.credentials.clone(),
                tls: TlsPolicy::Opportunistic,
                report_for: None,
                asked,
            });
        }
        let reply = crate::client::local_reply;
        // With DANE the MX records are validated: bogus ones defer
        // (RFC 7672 §2.2.1); secure or insecure, the plan is the same.
        let plan = match self.cfg.dane && self.resolver.dnssec_ready().await {
            true => self.resolver.secure_mx_plan(domain).await.map(|v| v.value),
            false => self.resolver.mx_plan(domain).await,
        };
        match plan {
            Ok(MxPlan::Hosts(mut hosts)) => {
                // hardening.md C-OB9: a domain with 50 MX hosts gets the best few.
                hosts.truncate(MAX_MX_HOSTS);
                let tls = match (&self.cfg.mta_sts, asked) {
                    (_, MessageTls::PolicyIgnored) | (None, _) => TlsPolicy::Opportunistic,
                    (Some(m), _) => m.policy_for(domain).await,
                };
                // RFC 8461 §4.2: in enforce mode only the MX hosts the policy
                // names; none left is a temporary failure.
                let allowed: Vec<String> = hosts.into_iter().filter(|h| tls.allows_mx(h)).collect();
                if allowed.is_empty() {
                    return Err((
                        reply(
                            451,
                            "4.7.5",
                            &format!("MTA-STS: no MX host of {domain} is named by its policy"),
                        ),
                        false,
                    ));
                }
                Ok(Route {
                    hosts: allowed,
                    port: self.cfg.port,
                    credentials: None,
                    tls,
                    report_for: Some(domain.to_ascii_lowercase()),
                    asked,
                })
            }
            // RFC 7505 §4.2: 5.1.10.
            Ok(MxPlan::NullMx) => Err((
                reply(
                    556,
                    "5.1.10",
                    &format!("{domain} accepts no mail (null MX)"),
                ),
                true,
            )),
            Err(DnsError::NoSuchDomain(_)) => Err((
                reply(550, "5.1.2", &format!("domain {domain} does not exist")),
                true,
            )),
            Err(e @ DnsError::Bogus(..)) => {
                Err((reply(451, "4.7.5", &format!("DNSSEC: {e}")), false))
            }
            // SERVFAIL, timeouts: never a bounce before max_age.
            Err(e) => Err((reply(451, "4.4.3", &format!("DNS: {e}")), false)),
        }
    }

    /// A session as the destination's TLS policy asks: verified TLS first
    /// when it has one (enforce: nothing else; testing: a failure is noted,
    /// then opportunistic), else opportunistic, which falls back to
    /// plaintext after a failed handshake (RFC 7435 §6).
    pub(super) async fn open(
        &self,
        host: &str,
        ip: IpAddr,
        route: &Route,
        policy: &TlsPolicy,
    ) -> Result<Session, ClientError> {
        let (client, port) = (&self.cfg.client, route.port);
        // RFC 8460: each TLS setup to the destination counts in its report.
        let report = |failure: Option<(tls_reports::ResultType, String)>| {
            if let Some(domain) = &route.report_for {
                let r = tls_reports::result(domain, policy, host, Some(ip), failure);
                self.store.record_tls_results(vec![r]);
            }
        };
        let failure = |e: &ClientError| Some((tls_reports::result_type(e), e.to_string()));
        let webpki = self.cfg.mta_sts.as_ref().map(|m| &m.verifying);
        if let Some(verifying) = policy.verifying_client(webpki) {
            match Session::open(host, ip, port, client, TlsUse::Verified(verifying)).await {
                Ok(mut s) => {
                    report(None);
                    let required = match route.asked {
                        MessageTls::Required => ", REQUIRETLS",
                        _ => "",
                    };
                    s.tls = s.tls.map(|t| format!("{t} ({}{required})", policy.label()));
                    return Ok(s);
                }
                Err(e @ (ClientError::Tls(_) | ClientError::TlsRequired(_))) => {
                    report(failure(&e));
                    if policy.enforced() {
                        return Err(e);
                    }
                    // RFC 8461 §5: testing mode delivers anyway (and reports).
                    // (DANE is always enforced: RFC 7672 §2.2.)
                    tracing::info!(%host, %ip, error = %e, "MTA-STS testing: TLS would have failed; delivering anyway");
                    return self.open_opportunistic(host, ip, port, |_| {}).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.open_opportunistic(host, ip, port, report).await
    }

    /// STARTTLS when offered with any certificate, plaintext after a failed
    /// handshake (RFC 7435 §6); `report` hears how TLS went.
    async fn open_opportunistic(
        &self,
        host: &str,
        ip: IpAddr,
        port: u16,
        report: impl Fn(Option<(tls_reports::ResultType, String)>),
    ) -> Result<Session, ClientError> {
        let client = &self.cfg.client;
        match Session::open(host, ip, port, client, TlsUse::Opportunistic).await {
            Err(e @ ClientError::Tls(_)) => {
                report(Some((tls_reports::result_type(&e), e.to_string())));
                tracing::info!(%host, %ip, error = %e, "TLS failed; retrying without it");
                Session::open(host, ip, port, client, TlsUse::Off).await
            }
            Ok(s) => {
                match s.tls {
                    Some(_) => report(None),
                    None => report(Some((
                        tls_reports::ResultType::StartTlsNotSupported,
                        "STARTTLS not offered or refused".into(),
                    ))),
                }
                Ok(s)
            }
            other => other,
        }
    }

    /// RFC 6152 §3: the 7-bit form of an 8-bit message for a server without
    /// 8BITMIME, with our DKIM signatures made again over it. None when
    /// there is nothing to convert (or it cannot be: 8-bit header fields).
    pub(super) async fn seven_bit(&self, content: &Spooled) -> Option<Spooled> {
        if !has_8bit(content) {
            return None;
        }
        // Read and written a piece at a time (C-FT9), off the async threads.
        let (from, spool) = (content.clone(), self.cfg.spool.clone());
        let made =
            tokio::task::spawn_blocking(move || message::seven_bit::convert_spooled(&from, &spool))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let converted = match made {
            Ok(Some(converted)) => converted,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the queued message to convert it");
                return None;
            }
        };
        tracing::info!("next server has no 8BITMIME: converted to 7 bit");
        Some(match &self.signer {
            Some(signer) => signer.resign(&converted, now()).await,
            None => converted,
        })
    }

    /// Send over an open session. None if the session failed before any answer
    /// about the recipients (the caller tries elsewhere).
    pub(super) async fn transact(
        &self,
        session: &mut Session,
        env: &OutEnvelope,
        content: &Spooled,
        rcpts: &[QueuedRecipient],
        run: &mut DomainRun,
    ) -> Result<Vec<(QueuedRecipient, RcptResult, Option<String>)>, Reply> {
        // RFC 9422: no more recipients per transaction than the server takes.
        let per = session.ext.rcpt_max.unwrap_or(usize::MAX).max(1);
        if rcpts.len() <= per {
            return self.transact_one(session, env, content, rcpts, run).await;
        }
        let mut all = Vec::new();
        for (chunk, targets) in rcpts.chunks(per).zip(env.recipients.chunks(per)) {
            let part = OutEnvelope {
                recipients: targets.to_vec(),
                ..env.clone()
            };
            all.extend(
                self.transact_one(session, &part, content, chunk, run)
                    .await?,
            );
        }
        Ok(all)
    }

    /// One transaction (MAIL, RCPTs, data) for these recipients.
    pub(super) async fn transact_one(
        &self,
        session: &mut Session,
        env: &OutEnvelope,
        content: &Spooled,
        rcpts: &[QueuedRecipient],
        run: &mut DomainRun,
    ) -> Result<Vec<(QueuedRecipient, RcptResult, Option<String>)>, Reply> {
        let remote = Some(session.mx.clone());
        let converted = match session.ext.eight_bit {
            true => None,
            false => self.seven_bit(content).await,
        };
        let content = converted.as_ref().unwrap_or(content);
        let results = match session.send(env, content).await {
            Ok(results) => results,
            Err(e) => {
                let reply = error_reply(&e);
                run.attempts.push(self.attempt(
                    rcpts,
                    Some(&session.mx),
                    Some(session.ip),
                    session.tls.clone(),
                    &reply,
                ));
                // A 5xx to MAIL or DATA is the server's final word for these
                // recipients; anything else is worth another host.
                return match e.permanent_reply() {
                    Some(r) => Ok(rcpts
                        .iter()
                        .map(|q| (q.clone(), RcptResult::Permanent(r.clone()), remote.clone()))
                        .collect()),
                    None => Err(reply),
                };
            }
        };
        let summary = results
            .iter()
            .zip(rcpts)
            .map(|(r, q)| format!("{}: {}", q.address, r.reply().one_line()))
            .collect::<Vec<_>>()
            .join("; ");
        run.attempts.push(Attempt {
            at: now(),
            recipients: join(rcpts),
            mx: remote.clone(),
            ip: Some(session.ip.to_string()),
            tls: session.tls.clone(),
            reply: summary,
        });
        for (r, q) in results.iter().zip(rcpts) {
            // RFC 3461 §5.2.2.1: NOTIFY=SUCCESS to a server without DSN: "relayed".
            let trace = env.by.is_some_and(|(_, _, trace)| trace);
            if matches!(r, RcptResult::Delivered(_))
                && !session.ext.dsn
                && (trace || dsn::wants(q.notify.as_deref(), "SUCCESS"))
            {
                run.relayed.push(q.address.clone());
            }
        }
        Ok(results
            .into_iter()
            .zip(rcpts)
            .map(|(r, q)| (q.clone(), r, remote.clone()))
            .collect())
    }

    pub(super) fn attempt(
        &self,
        rcpts: &[QueuedRecipient],
        mx: Option<&str>,
        ip: Option<IpAddr>,
        tls: Option<String>,
        reply: &Reply,
    ) -> Attempt {
        Attempt {
            at: now(),
            recipients: join(rcpts),
            mx: mx.map(String::from),
            ip: ip.map(|i| i.to_string()),
            tls,
            reply: reply.one_line(),
        }
    }

    pub(super) fn take_pooled(&self, domain: &str) -> Option<Session> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.get_mut(domain)?;
        while let Some(p) = list.pop() {
            if p.since.elapsed() < REUSE_FOR {
                return Some(p.session);
            }
        }
        None
    }

    /// Say QUIT to sessions that waited too long for another message.
    pub(super) fn close_idle_sessions(&self) {
        let mut expired = Vec::new();
        for list in self
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values_mut()
        {
            let (keep, old) = std::mem::take(list)
                .into_iter()
                .partition(|p| p.since.elapsed() < REUSE_FOR);
            *list = keep;
            expired.extend(old);
        }
        for p in expired {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), p.session.quit()).await;
            });
        }
    }

    pub(super) fn give_back(&self, domain: &str, session: Session) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let list = pool.entry(domain.to_string()).or_default();
        list.retain(|p| p.since.elapsed() < REUSE_FOR);
        if list.len() < self.cfg.max_per_domain {
            list.push(Pooled {
                session,
                since: Instant::now(),
            });
        }
    }
}

/// Whether the content holds an 8-bit octet past its head (read a block at
/// a time).
fn has_8bit(content: &Spooled) -> bool {
    let mut found = false;
    let _ = content.chunks(|c| found |= c.iter().any(|b| *b >= 0x80));
    found
}
