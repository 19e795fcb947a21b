//! `tern serve`: open the store, load TLS, start every configured listener,
//! stop gracefully on SIGTERM or SIGINT (hardening.md C-FT11).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::{Authenticator, ThrottleConfig};
use delivery::{Mda, MdaConfig};
use imap::{ImapConfig, ImapProtocol};
use managesieve::{ManageSieveConfig, ManageSieveProtocol};
use net::tls::Identity;
use net::{ConnLimiter, Protocol, Shutdown, TlsAcceptor, TlsMode};
use outbound::client::{ClientSettings, Timeouts};
use outbound::runner::{OutboundConfig, Smarthost};
use pop3::{Pop3Config, Pop3Protocol};
use smtp::{Role, SmtpConfig, SmtpProtocol};
use store::Store;
use tokio::net::TcpListener;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServeError(pub String);

/// File descriptors a connection may need beyond its socket (the store,
/// the spool, logs), kept as headroom.
const FD_HEADROOM: u64 = 1024;

/// hardening.md C-FT8: every connection is a file descriptor. The soft
/// limit (often 1024) is raised to the hard one at start; when even that is
/// below `max_connections` and some headroom, the log says so once, with
/// the fix. Past the limit the accept loop backs off (`net::listener`).
fn raise_open_files_limit(max_connections: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let want = max_connections as u64 + FD_HEADROOM;
    // None is "unlimited".
    let mut soft = current.current.unwrap_or(u64::MAX);
    let raised = want.min(current.maximum.unwrap_or(u64::MAX));
    if soft < raised {
        match setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: current.maximum,
            },
        ) {
            Ok(()) => {
                tracing::info!(from = soft, to = raised, "open files limit raised");
                soft = raised;
            }
            Err(e) => tracing::warn!(limit = soft, error = %e, "cannot raise the open files limit"),
        }
    }
    if soft < want {
        tracing::warn!(
            limit = soft,
            max_connections,
            "the open files limit is below [limits] max_connections plus {FD_HEADROOM}: raise the hard limit (LimitNOFILE= in the systemd unit, ulimit -Hn) or lower max_connections"
        );
    }
}

pub async fn serve(
    config: Config,
    store: Arc<dyn Store>,
    development: bool,
) -> Result<(), ServeError> {
    if development {
        bootstrap_development(&store).await?;
    }
    raise_open_files_limit(config.limits.max_connections);
    // Alone on its store, a node frees what its crashed run held at once
    // (POP3 maildrop locks, report turns); nodes sharing a store let each
    // other's leases run out.
    if config.store.backend == crate::config::BackendName::Sqlite
        && let Err(e) = store.clear_leases().await
    {
        tracing::warn!(error = %e, "cannot free the leases of an earlier run");
    }
    // ACME's certificate from an earlier run first, then [tls], then a
    // self-signed one (until ACME has one, when configured).
    let identity = match (&config.acme, &config.tls) {
        (Some(_), _) if crate::acme::stored(&config.data_dir).is_some() => {
            crate::acme::stored(&config.data_dir).ok_or_else(|| ServeError("acme".into()))
        }
        (_, Some(files)) => {
            Identity::load(&files.cert, &files.key).map_err(|e| ServeError(e.to_string()))
        }
        (_, None) => Identity::self_signed(
            &config.data_dir.join("tls"),
            &[config.hostname.clone(), "localhost".into()],
        )
        .map_err(|e| ServeError(e.to_string())),
    }?;
    let certs = net::tls::Certificates::new(&identity).map_err(|e| ServeError(e.to_string()))?;

    let throttle = ThrottleConfig {
        failure_delay: config.auth.failure_delay.0,
        ip_max_failures: config.auth.max_failures_per_ip,
        ip_window: config.auth.failure_window.0,
        ip_block: config.auth.block_duration.0,
        ..ThrottleConfig::default()
    };
    let authenticator = Arc::new(Authenticator::new(store.clone(), throttle));
    let mda = mda(&config, &store).await?;
    let resolver = resolver(&config)?;
    let signer = signer(&config, &store);
    let psl = Arc::new(public_suffix_list(&config)?);
    let clock = clock::system();
    let checks = Arc::new(checks(
        &config,
        verifier(&config, &resolver, &psl),
        &resolver,
        &store,
        clock.clone(),
    ));
    let spool = message::spool::Spool::in_dir(&config.data_dir.join("spool")).map_err(|e| {
        ServeError(format!(
            "spool directory {}: {e}",
            config.data_dir.join("spool").display()
        ))
    })?;
    let smtp_services = Arc::new(smtp::Services {
        mda: mda.clone(),
        auth: authenticator.clone(),
        checks: checks.clone(),
        signer: signer.clone(),
        spool: spool.clone(),
    });
    let imap_services = Arc::new(imap::Services {
        store: store.clone(),
        auth: authenticator.clone(),
        user_ip: Arc::default(),
        index: Arc::default(),
        events: Arc::default(),
        spool: spool.clone(),
    });
    let pop3_auth = authenticator.clone();
    let sieve_services = Arc::new(managesieve::Services {
        store: store.clone(),
        auth: authenticator.clone(),
    });

    let shutdown = Shutdown::new();
    let limiter = ConnLimiter::new(net::Limits {
        max_connections: config.limits.max_connections,
        max_per_ip: config.limits.max_connections_per_ip,
        per_ip_exempt: config.limits.per_ip_exempt.iter().map(|c| c.0).collect(),
        handshakes_per_ip_minute: config.limits.tls_handshakes_per_ip_minute,
    });
    let mut servers = Servers {
        shutdown: shutdown.clone(),
        limiter,
        certs: certs.clone(),
        acme_alpn: config.acme.is_some(),
        tasks: Vec::new(),
    };

    let l = &config.listeners;
    if let Some(addr) = l.smtp {
        let p = SmtpProtocol::new(smtp_config(&config, Role::Mx), smtp_services.clone());
        servers.start(addr, p, Tls::StartTls).await?;
    }
    if let Some(addr) = l.submission {
        let p = SmtpProtocol::new(
            smtp_config(&config, Role::Submission),
            smtp_services.clone(),
        );
        servers.start(addr, p, Tls::StartTls).await?;
    }
    if let Some(addr) = l.submissions {
        let p = SmtpProtocol::new(
            smtp_config(&config, Role::Submission),
            smtp_services.clone(),
        );
        servers.start(addr, p, Tls::Implicit).await?;
    }
    if let Some(addr) = l.imap {
        servers
            .start(
                addr,
                ImapProtocol::new(imap_config(&config), imap_services.clone()),
                Tls::StartTls,
            )
            .await?;
    }
    if let Some(addr) = l.imaps {
        servers
            .start(
                addr,
                ImapProtocol::new(imap_config(&config), imap_services.clone()),
                Tls::Implicit,
            )
            .await?;
    }
    let pop3_services = Arc::new(pop3::Services {
        store: store.clone(),
        auth: pop3_auth,
    });
    if let Some(addr) = l.pop3 {
        servers
            .start(
                addr,
                Pop3Protocol::new(pop3_config(&config), pop3_services.clone()),
                Tls::StartTls,
            )
            .await?;
    }
    if let Some(addr) = l.pop3s {
        servers
            .start(
                addr,
                Pop3Protocol::new(pop3_config(&config), pop3_services.clone()),
                Tls::Implicit,
            )
            .await?;
    }
    if let Some(addr) = l.managesieve {
        servers
            .start(
                addr,
                ManageSieveProtocol::new(managesieve_config(&config), sieve_services),
                Tls::StartTls,
            )
            .await?;
    }
    let http01 = (config.acme.is_some() && l.http.is_some()).then(Arc::<web::Http01>::default);
    if l.http.is_some() || l.https.is_some() {
        let web = web::Web::new(
            web::WebConfig {
                hostname: config.hostname.clone(),
                services: config.client_services(),
                metrics_allow: config.http.metrics_allow.iter().map(|c| c.0).collect(),
                mta_sts: config.mta_sts_policy(),
            },
            store.clone(),
            crate::metrics::ServerMetrics::install(store.clone())
                .map(|m| m as Arc<dyn web::MetricsSource>),
        );
        let submitter = crate::jmap_submit::SmtpSubmitter {
            config: Arc::new(smtp_config(&config, Role::Submission)),
            services: smtp_services.clone(),
        };
        let mut jmap =
            jmap::Jmap::new(store.clone(), &config.hostname).with_submitter(Arc::new(submitter));
        // Push subscriptions post over WebPKI-checked TLS (the outbound
        // trust store); without a TLS client there are none.
        let push = net::tls::verifying_client(config.outbound.ca_file.as_deref(), &[]).map(|tls| {
            Arc::new(crate::jmap_push::HttpsPushSender {
                resolver: resolver.clone(),
                tls,
            }) as Arc<dyn jmap::push_subscription::PushSender>
        });
        match &push {
            Ok(sender) => jmap = jmap.with_push_sender(sender.clone()),
            Err(e) => tracing::warn!(error = %e, "JMAP push subscriptions are not offered"),
        }
        let jmap = Arc::new(jmap);
        if let Ok(sender) = push {
            tokio::spawn(crate::jmap_push::run(jmap.clone(), sender));
        }
        let web = web
            .with_jmap(web::JmapRoutes {
                jmap,
                auth: authenticator.clone(),
                sessions: Default::default(),
                sender_keys: mda.sender_keys(),
            })
            .with_admin(Arc::new(crate::web_admin::WebAdmin::new(
                store.clone(),
                Arc::new(config.clone()),
            )));
        let web = Arc::new(match &http01 {
            Some(tokens) => web.with_http01(tokens.clone()),
            None => web,
        });
        if let Some(addr) = l.http {
            servers.start_web(addr, web.clone(), false).await?;
        }
        if let Some(addr) = l.https {
            servers.start_web(addr, web, true).await?;
        }
    }
    if let Some(settings) = &config.acme {
        let acme = crate::acme::Acme::new(&config, settings, certs.clone(), http01.clone());
        tokio::spawn(acme.run());
    }
    let maintenance = crate::maintenance::Maintenance {
        store: store.clone(),
        auth: authenticator.clone(),
        history_keep: config.history.keep.0,
        greylist_lifetime: config.antispam.greylist_lifetime.0,
    };
    tokio::spawn(maintenance.run());
    let reporter = reporter(&config, &store, &mda, &resolver, &signer, psl);
    let tls_reporter = tls_reporter(&config, &store, &mda, &resolver, &signer);
    let outbound = outbound_config(&config, &resolver, spool)?;
    let runner = outbound::runner::Runner::new(store.clone(), mda, resolver, outbound, signer);
    let (stop_runner, runner_stopped) = tokio::sync::oneshot::channel::<()>();
    let runner_task = tokio::spawn(runner.run(async {
        let _ = runner_stopped.await;
    }));
    let (stop_reporter, reporter_stopped) = tokio::sync::oneshot::channel::<()>();
    if config.reports.dmarc_send {
        tokio::spawn(reporter.run(async {
            let _ = reporter_stopped.await;
        }));
    }
    let (stop_tls_reporter, tls_reporter_stopped) = tokio::sync::oneshot::channel::<()>();
    if config.reports.tls_rpt_send {
        tokio::spawn(tls_reporter.run(async {
            let _ = tls_reporter_stopped.await;
        }));
    }
    // Listening for SIGTERM before saying so: a stop right after "ready" must
    // be graceful too.
    let stop = stop_signal();
    println!("tern: ready");
    stop.await;
    let _ = stop_runner.send(());
    let _ = stop_reporter.send(());
    let _ = stop_tls_reporter.send(());
    tracing::info!(
        "stopping: no new connections; sessions get {:?} to finish",
        config.shutdown_timeout.0
    );
    shutdown.stop(config.shutdown_timeout.0).await;
    let _ = runner_task.await;
    for t in servers.tasks {
        t.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Local delivery: aliases, sub-addresses, SRS.
pub(crate) async fn mda(config: &Config, store: &Arc<dyn Store>) -> Result<Arc<Mda>, ServeError> {
    let srs = match config.delivery.srs {
        true => Some(Arc::new(srs(store).await?)),
        false => None,
    };
    Ok(Arc::new(Mda::new(
        store.clone(),
        MdaConfig {
            subaddress_separator: config.delivery.subaddress_separator.chars().next(),
            srs,
            signer: signer(config, store),
            hostname: config.hostname.clone(),
            sieve: sieve_config(&config.sieve)?,
            sender_keys: sender_keys(config)?,
            smime_anchors: match &config.policy.smime_ca_file {
                Some(path) => policy::smime_mime::TrustAnchors::from_pem_file(path)
                    .map_err(|e| ServeError(format!("[policy] smime_ca_file: {e}")))?,
                None => Default::default(),
            },
            spool: message::spool::Spool::in_dir(&config.data_dir.join("spool"))
                .map_err(|e| ServeError(format!("spool: {e}")))?,
        },
    )))
}

/// Other domains' published keys, when `[policy] sender_keys` (fetched
/// from their Web Key Directories with certificates checked against
/// `[outbound] ca_file` or the system's roots; without roots, DNS only).
fn sender_keys(
    config: &Config,
) -> Result<Option<Arc<policy::sender_keys::SenderKeys>>, ServeError> {
    if !config.policy.sender_keys {
        return Ok(None);
    }
    let o = &config.outbound;
    let tls = match net::tls::verifying_client(o.ca_file.as_deref(), &[]) {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::warn!(error = %e, "no trust roots: other domains' Web Key Directories are not read");
            None
        }
    };
    Ok(Some(Arc::new(policy::sender_keys::SenderKeys::new(
        resolver(config)?,
        tls,
        o.mta_sts_port,
    ))))
}

/// The site's Sieve scripts, compiled: one that does not compile stops
/// the server from starting (with its line and column).
pub(crate) fn sieve_config(
    s: &crate::config::SieveSettings,
) -> Result<delivery::SieveConfig, ServeError> {
    let load = |path: &std::path::Path| -> Result<Arc<sieve::Script>, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError(format!("sieve script {}: {e}", path.display())))?;
        sieve::compile(&text)
            .map(Arc::new)
            .map_err(|e| ServeError(format!("sieve script {}: {e}", path.display())))
    };
    let mut config = delivery::SieveConfig {
        max_redirects_per_hour: s.max_redirects_per_hour,
        ..Default::default()
    };
    config.limits.max_redirects = s.max_redirects;
    if let Some(before) = &s.before {
        config.before.push(load(before)?);
    }
    if let Some(dir) = &s.global_dir {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| ServeError(format!("sieve global_dir {}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .map(str::to_string);
            if let (Some(name), Some("sieve")) = (name, path.extension().and_then(|x| x.to_str())) {
                config.global.insert(name, load(&path)?);
            }
        }
    }
    Ok(config)
}

/// DKIM signing of what we send, unless `[dkim] sign = false`.
pub(crate) fn signer(config: &Config, store: &Arc<dyn Store>) -> Option<Arc<policy::sign::Signer>> {
    config
        .dkim
        .sign
        .then(|| Arc::new(policy::sign::Signer::new(store.clone())))
}

/// The sender of DMARC aggregate reports (`[reports]`).
pub(crate) fn reporter(
    config: &Config,
    store: &Arc<dyn Store>,
    mda: &Arc<Mda>,
    resolver: &dns::Resolver,
    signer: &Option<Arc<policy::sign::Signer>>,
    psl: Arc<policy::psl::PublicSuffixList>,
) -> outbound::dmarc_reports::Reporter {
    outbound::dmarc_reports::Reporter::new(
        store.clone(),
        mda.clone(),
        signer.clone(),
        resolver.clone(),
        psl,
        outbound::dmarc_reports::ReporterConfig {
            hostname: config.hostname.clone(),
            interval: config.reports.dmarc_interval.0.as_secs().max(1) as i64,
        },
    )
}

/// The TLS reports we send (RFC 8460): by mail, and to https destinations
/// over WebPKI-checked TLS.
pub(crate) fn tls_reporter(
    config: &Config,
    store: &Arc<dyn Store>,
    mda: &Arc<Mda>,
    resolver: &dns::Resolver,
    signer: &Option<Arc<policy::sign::Signer>>,
) -> outbound::tls_reports::TlsReporter {
    let reporter = outbound::tls_reports::TlsReporter::new(
        store.clone(),
        mda.clone(),
        signer.clone(),
        resolver.clone(),
        outbound::dmarc_reports::ReporterConfig {
            hostname: config.hostname.clone(),
            interval: config.reports.tls_rpt_interval.0.as_secs().max(1) as i64,
        },
    );
    match net::tls::verifying_client(config.outbound.ca_file.as_deref(), &[]) {
        Ok(client) => reporter.with_https(client),
        Err(e) => {
            tracing::warn!(error = %e, "TLS reports to https destinations are not sent");
            reporter
        }
    }
}

pub(crate) fn resolver(config: &Config) -> Result<dns::Resolver, ServeError> {
    let trust_anchor = match &config.dns.trust_anchor {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| ServeError(format!("[dns] trust_anchor {}: {e}", path.display())))?,
        ),
        None => None,
    };
    dns::Resolver::new(&dns::DnsConfig {
        nameservers: config.dns.nameservers.clone(),
        timeout: None,
        dnssec: config.dns.dnssec,
        trust_anchor,
    })
    .map_err(|e| ServeError(format!("DNS resolver: {e}")))
}

/// The SRS key: made on the first start, kept in the store (every node of
/// a shared store must sign and check with the same key).
async fn srs(store: &Arc<dyn Store>) -> Result<policy::srs::Srs, ServeError> {
    let mut fresh = vec![0u8; 32];
    rand::fill(&mut fresh[..]);
    let key = store
        .setting_or_init("srs-key", fresh)
        .await
        .map_err(|e| ServeError(format!("SRS key: {e}")))?;
    Ok(policy::srs::Srs::new(key))
}

/// The Public Suffix List: `[policy] public_suffix_list`, else the shipped copy.
pub(crate) fn public_suffix_list(
    config: &Config,
) -> Result<policy::psl::PublicSuffixList, ServeError> {
    Ok(match &config.policy.public_suffix_list {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ServeError(format!(
                    "policy.public_suffix_list: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            policy::psl::PublicSuffixList::parse(&text)
        }
        None => policy::psl::PublicSuffixList::shipped(),
    })
}

/// The MX's sender authentication, unless `[policy] verify = false`.
/// The inbound check pipeline (`[antispam]`, `[limits]`, and sender
/// authentication when `[policy] verify`).
pub(crate) fn checks(
    config: &Config,
    verifier: Option<Arc<policy::verify::Verifier>>,
    resolver: &dns::Resolver,
    store: &Arc<dyn Store>,
    clock: Arc<dyn clock::Clock>,
) -> antispam::Checks {
    let a = &config.antispam;
    let l = &config.limits;
    let lists = |v: &[crate::config::DnsListValue]| v.iter().map(|l| l.0.clone()).collect();
    let cfg = antispam::AntispamConfig {
        hostname: config.hostname.clone(),
        greylist: a.greylist.then_some(antispam::greylist::GreylistConfig {
            delay: a.greylist_delay.0.as_secs() as i64,
            window: a.greylist_window.0.as_secs() as i64,
            lifetime: a.greylist_lifetime.0.as_secs() as i64,
            trust_after: a.greylist_trust_after,
        }),
        dnsbl: lists(&a.dnsbl),
        dnswl: lists(&a.dnswl),
        domain_lists: lists(&a.domain_lists),
        exempt: a.exempt.iter().map(|c| c.0).collect(),
        thresholds: antispam::score::Thresholds {
            junk: a.junk_score,
            reject: a.reject_score,
        },
        bayes: a.bayes,
        dnswl_score: a.dnswl_score,
        limits: antispam::limits::SendingLimits {
            messages_per_hour: l.messages_per_hour,
            recipients_per_hour: l.recipients_per_hour,
            hold: antispam::limits::HoldRules {
                submission_per_hour: l.submission_per_hour,
                surge_factor: l.surge_factor,
                surge_min: l.surge_min,
                new_domains_per_hour: l.new_domains_per_hour,
                bounces_per_hour: l.bounces_per_hour,
                spam_per_hour: l.spam_per_hour,
            },
        },
        pregreet_wait: (!a.pregreet_wait.0.is_zero()).then_some(a.pregreet_wait.0),
    };
    antispam::Checks::new(cfg, verifier, resolver.clone(), store.clone(), clock)
}

fn verifier(
    config: &Config,
    resolver: &dns::Resolver,
    psl: &Arc<policy::psl::PublicSuffixList>,
) -> Option<Arc<policy::verify::Verifier>> {
    config
        .policy
        .verify
        .then(|| Arc::new(any_verifier(config, resolver, psl)))
}

/// The sender authentication of `[policy]`, whether the MX uses it or not
/// (`tern trace` re-checks with it).
pub(crate) fn any_verifier(
    config: &Config,
    resolver: &dns::Resolver,
    psl: &Arc<policy::psl::PublicSuffixList>,
) -> policy::verify::Verifier {
    let p = &config.policy;
    let cfg = policy::verify::VerifyConfig {
        authserv_id: config.hostname.clone(),
        spf_reject: p.spf_reject,
        dmarc_enforce: p.dmarc_enforce,
        trusted_arc_sealers: p.trusted_arc_sealers.clone(),
        require_from: p.require_from,
    };
    policy::verify::Verifier::new(resolver.clone(), psl.clone(), cfg)
}

/// Other domains' MTA-STS policies, when `[outbound] mta_sts` (and trust
/// roots exist to check their certificates; without, a warning).
fn mta_sts(config: &Config, resolver: &dns::Resolver) -> Option<Arc<outbound::tls_policy::MtaSts>> {
    let o = &config.outbound;
    if !o.mta_sts {
        return None;
    }
    match net::tls::verifying_client(o.ca_file.as_deref(), &[]) {
        Ok(verifying) => {
            let m = Arc::new(outbound::tls_policy::MtaSts::new(
                resolver.clone(),
                verifying,
                o.mta_sts_port,
            ));
            tokio::spawn(m.clone().refresh_loop());
            Some(m)
        }
        Err(e) => {
            tracing::warn!(error = %e, "MTA-STS policies of other domains are not enforced");
            None
        }
    }
}

fn outbound_config(
    config: &Config,
    resolver: &dns::Resolver,
    spool: message::spool::Spool,
) -> Result<OutboundConfig, ServeError> {
    let o = &config.outbound;
    let tls = net::tls::opportunistic_client(&[]).map_err(|e| ServeError(e.to_string()))?;
    let smarthost = match &o.smarthost {
        None => None,
        Some(s) => {
            let (host, port) = s.address().map_err(ServeError)?;
            Some(Smarthost {
                host,
                port,
                credentials: s.user.clone().zip(s.password.clone()),
                domains: s.domains.clone(),
            })
        }
    };
    // Our own addresses: an MX that leads to one of them is a loop (RFC 5321 §5.1).
    let l = &config.listeners;
    let local_ips = [l.smtp, l.submission, l.submissions]
        .into_iter()
        .flatten()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .collect();
    Ok(OutboundConfig {
        hostname: config.hostname.clone(),
        retry: config.queue.retry.iter().map(|r| r.0).collect(),
        max_age: config.queue.max_age.0,
        delay_warning: config.queue.delay_warning.map(|d| d.0),
        port: o.port,
        client: ClientSettings {
            helo_name: config.hostname.clone(),
            timeouts: Timeouts {
                connect: o.connect_timeout.0,
                greeting: o.command_timeout.0,
                command: o.command_timeout.0,
                data_init: o.command_timeout.0.min(Duration::from_secs(120)),
                data_block: o.command_timeout.0.min(Duration::from_secs(180)),
                data_final: o.data_timeout.0,
            },
            source: o.source,
            tls,
        },
        max_deliveries: o.max_deliveries,
        max_per_domain: o.max_per_domain,
        local_ips,
        smarthost,
        mta_sts: mta_sts(config, resolver),
        dane: o.dane && config.dns.dnssec,
        spool,
        shared_queue: config.store.backend == crate::config::BackendName::Postgres,
        lease: config.queue.lease.0,
    })
}

fn imap_config(config: &Config) -> ImapConfig {
    let mut c = ImapConfig::new(
        &config.hostname,
        usize::try_from(config.smtp.max_message_size).unwrap_or(usize::MAX),
    );
    c.starttls = true;
    c.plaintext_on_loopback = config.imap.plaintext_on_loopback;
    c.idle_timeout = config.imap.idle_timeout.0;
    c.max_per_user_ip = config.imap.max_connections_per_user_ip;
    c
}

fn managesieve_config(config: &Config) -> ManageSieveConfig {
    let s = &config.sieve;
    let mut c = ManageSieveConfig::new(&config.hostname);
    c.starttls = true;
    c.plaintext_on_loopback = s.plaintext_on_loopback;
    c.max_scripts = s.max_scripts;
    c.max_script_size = s.max_script_size;
    c.max_redirects = s.max_redirects;
    c
}

fn pop3_config(config: &Config) -> Pop3Config {
    let mut c = Pop3Config::new(&config.hostname);
    c.starttls = true;
    c.plaintext_on_loopback = config.pop3.plaintext_on_loopback;
    c.idle_timeout = config.pop3.idle_timeout.0;
    c
}

fn smtp_config(config: &Config, role: Role) -> SmtpConfig {
    let s = &config.smtp;
    let mut c = SmtpConfig::new(&config.hostname, role);
    c.starttls = true;
    c.max_message_size = s.max_message_size;
    c.max_recipients = s.max_recipients;
    c.max_header_size = s.max_header_size;
    c.max_text_line = s.max_text_line;
    c.max_received = s.max_received;
    c.command_timeout = s.command_timeout.0;
    c.data_timeout = s.data_timeout.0;
    c.soft_error_limit = s.soft_error_limit;
    c.hard_error_limit = s.hard_error_limit;
    c.error_delay = s.error_delay.0;
    c.xclient_trusted = s.xclient_trusted.iter().map(|c| c.0).collect();
    c.arc_seal = config.delivery.arc_seal;
    c.max_hold = s.max_hold.0;
    c.min_deliver_by = s.min_deliver_by.0;
    c
}

enum Tls {
    StartTls,
    Implicit,
}

struct Servers {
    shutdown: Shutdown,
    limiter: Arc<ConnLimiter>,
    /// The certificate every listener serves (replaced by ACME renewals).
    certs: Arc<net::tls::Certificates>,
    /// The https listener also answers tls-alpn-01 (RFC 8737).
    acme_alpn: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Servers {
    async fn start<P: Protocol>(
        &mut self,
        addr: SocketAddr,
        protocol: P,
        tls: Tls,
    ) -> Result<(), ServeError> {
        let name = protocol.name();
        let config = self
            .certs
            .server_config(protocol.alpn())
            .map_err(|e| ServeError(e.to_string()))?;
        let acceptor = TlsAcceptor::from(config);
        let mode = match tls {
            Tls::StartTls => TlsMode::StartTls(acceptor),
            Tls::Implicit => TlsMode::Implicit(acceptor),
        };
        let label = net::listener::label(name, matches!(tls, Tls::Implicit));
        let listener = bind(addr, &label).await?;
        let task = tokio::spawn(net::serve(
            listener,
            Arc::new(protocol),
            mode,
            self.limiter.clone(),
            self.shutdown.clone(),
        ));
        self.tasks.push(task);
        Ok(())
    }

    /// The http listener, or with `tls` the https one (TLS from the first
    /// byte, ALPN h2 and http/1.1).
    async fn start_web(
        &mut self,
        addr: SocketAddr,
        web: Arc<web::Web>,
        tls: bool,
    ) -> Result<(), ServeError> {
        let alpn: &[&[u8]] = match self.acme_alpn {
            true => &[b"h2", b"http/1.1", net::tls::ACME_TLS_ALPN],
            false => &[b"h2", b"http/1.1"],
        };
        let acceptor = match tls {
            true => Some(TlsAcceptor::from(
                self.certs
                    .server_config(alpn)
                    .map_err(|e| ServeError(e.to_string()))?,
            )),
            false => None,
        };
        let listener = bind(addr, &net::listener::label("http", tls)).await?;
        self.tasks.push(tokio::spawn(web::serve(
            listener,
            web,
            acceptor,
            self.limiter.clone(),
            self.shutdown.clone(),
        )));
        Ok(())
    }
}

/// Bind a listener and say where (the port may have been chosen: port 0).
async fn bind(addr: SocketAddr, label: &str) -> Result<TcpListener, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError(format!("cannot listen on {addr} ({label}): {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| ServeError(e.to_string()))?;
    println!("tern: {label} listening on {bound}");
    tracing::info!(listener = %label, addr = %bound, "listening");
    Ok(listener)
}

/// The development setup: domain `localhost` and one account, created on the first
/// start only; its password is printed once.
async fn bootstrap_development(store: &Arc<dyn Store>) -> Result<(), ServeError> {
    let err = |e: store::StoreError| ServeError(e.to_string());
    if !store.list_domains().await.map_err(err)?.is_empty() {
        println!("tern: development setup in ./tern-data (reusing what the first start created)");
        return Ok(());
    }
    crate::admin::create_domain(store, "localhost")
        .await
        .map_err(|e| ServeError(e.to_string()))?;
    let password: String = {
        const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes[..]);
        bytes
            .iter()
            .map(|b| CHARS[usize::from(*b) % CHARS.len()] as char)
            .collect()
    };
    let pw = password.clone();
    let creds = tokio::task::spawn_blocking(move || auth::derive(&pw))
        .await
        .map_err(|e| ServeError(e.to_string()))?;
    store
        .add_account("admin@localhost", creds)
        .await
        .map_err(err)?;
    println!("tern: development setup created in ./tern-data");
    println!("tern: account admin@localhost, password {password} (shown only this once)");
    Ok(())
}

/// SIGTERM or Ctrl-C, handled from the moment this is called (not only
/// once the future is first polled).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    async move {
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
