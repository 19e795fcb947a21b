//! The configuration file (TOML), as `docs/configuration.md` and
//! `tern.example.toml` document it. Every key has a default except where noted;
//! an unknown key or a bad value is an error naming the key and its line (the
//! `toml` crate reports the position, `deny_unknown_fields` the key).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use net::Cidr;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Our host name: greeting, EHLO, Received, Message-ID. Default: the system's.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter; RUST_LOG wins.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// `text` (one line an event) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// How long a stopping server lets sessions finish.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Seconds,
    #[serde(default)]
    pub listeners: Listeners,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    #[serde(default)]
    pub dns: Dns,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub queue: Queue,
    #[serde(default)]
    pub smtp: Smtp,
    #[serde(default)]
    pub outbound: Outbound,
    #[serde(default)]
    pub imap: Imap,
    #[serde(default)]
    pub pop3: Pop3,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub delivery: Delivery,
    #[serde(default)]
    pub policy: PolicySettings,
    #[serde(default)]
    pub dkim: DkimSettings,
    #[serde(default)]
    pub reports: ReportSettings,
    #[serde(default)]
    pub antispam: Antispam,
    #[serde(default)]
    pub sieve: SieveSettings,
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub history: HistorySettings,
    #[serde(default)]
    pub mta_sts: MtaStsSettings,
    /// Certificates from an ACME CA (RFC 8555); absent: `[tls]` or
    /// self-signed. With both, `[tls]` serves until ACME's first certificate.
    pub acme: Option<AcmeSettings>,
}

/// `[acme]`: the certificate of every listener obtained and renewed from
/// an ACME CA (RFC 8555), by http-01 on the http listener or tls-alpn-01
/// (RFC 8737) on the https one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSettings {
    /// The CA's directory URL (Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory).
    pub directory: String,
    /// A `mailto:` URL for the CA's notices.
    pub contact: Option<String>,
    /// The names the certificate is for; default: the hostname.
    #[serde(default)]
    pub names: Vec<String>,
    /// Trust roots (PEM) for the CA's HTTPS (a private CA); absent: the WebPKI.
    pub ca_file: Option<PathBuf>,
    /// Renew when the certificate has less than this left (default 30 days).
    #[serde(default = "default_acme_renew_before")]
    pub renew_before: Seconds,
}

fn default_acme_renew_before() -> Seconds {
    Seconds(Duration::from_secs(30 * 86_400))
}

impl AcmeSettings {
    /// The names to certify: `names`, or the hostname.
    pub fn names(&self, hostname: &str) -> Vec<String> {
        match self.names.is_empty() {
            true => vec![hostname.to_string()],
            false => self.names.clone(),
        }
    }
}

/// `[mta_sts]`: our own MTA-STS policy (RFC 8461), served on the https
/// listener at `mta-sts.DOMAIN` for every domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtaStsSettings {
    /// "testing" (senders report failures, deliver anyway), "enforce"
    /// (senders deliver only over verified TLS to our MX), "none".
    #[serde(default = "default_mta_sts_mode")]
    pub mode: String,
    /// How long senders keep the policy.
    #[serde(default = "default_mta_sts_max_age")]
    pub max_age: Seconds,
}

impl Default for MtaStsSettings {
    fn default() -> Self {
        MtaStsSettings {
            mode: default_mta_sts_mode(),
            max_age: default_mta_sts_max_age(),
        }
    }
}

fn default_mta_sts_mode() -> String {
    "testing".into()
}

fn default_mta_sts_max_age() -> Seconds {
    Seconds(Duration::from_secs(7 * 86_400))
}

impl Config {
    /// The MTA-STS policy we publish: our host name as the one MX.
    pub fn mta_sts_policy(&self) -> dns::mta_sts::Policy {
        dns::mta_sts::Policy {
            mode: dns::mta_sts::Mode::parse(&self.mta_sts.mode)
                .unwrap_or(dns::mta_sts::Mode::Testing),
            mx: vec![self.hostname.clone()],
            max_age: self.mta_sts.max_age.0.as_secs(),
        }
    }
}

/// `[history]`: the delivery history (`tern history`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySettings {
    /// How long events are kept (older ones are removed every hour).
    #[serde(default = "default_history_keep")]
    pub keep: Seconds,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            keep: default_history_keep(),
        }
    }
}

fn default_history_keep() -> Seconds {
    Seconds(Duration::from_secs(30 * 86_400))
}

/// `[http]`: what the http and https listeners serve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Client ranges that may read `/metrics`; everyone else gets 403.
    #[serde(default = "default_metrics_allow")]
    pub metrics_allow: Vec<CidrValue>,
    /// The accounts that may use the web admin at `/admin` (signed in as
    /// at the webmail); none by default.
    #[serde(default)]
    pub admins: Vec<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            metrics_allow: default_metrics_allow(),
            admins: Vec::new(),
        }
    }
}

fn default_metrics_allow() -> Vec<CidrValue> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|c| c.parse().ok().map(CidrValue))
        .collect()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub submissions: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    pub imaps: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    pub pop3s: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub managesieve: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// The resolvers outbound delivery asks; empty: the system's (/etc/resolv.conf).
    #[serde(default)]
    pub nameservers: Vec<SocketAddr>,
    /// DNSSEC validation of the lookups DANE needs (RFC 4035 §4).
    #[serde(default = "yes")]
    pub dnssec: bool,
    /// DNSKEY records in zone-file form to trust; absent: the IANA root's.
    pub trust_anchor: Option<PathBuf>,
}

impl Default for Dns {
    fn default() -> Self {
        Dns {
            nameservers: Vec::new(),
            dnssec: true,
            trust_anchor: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub backend: BackendName,
    /// PostgreSQL: a libpq URL or connection string (`sslmode=require` to
    /// insist on TLS over TCP).
    pub url: Option<String>,
    /// PostgreSQL: the CA (PEM) that signed the database server's
    /// certificate; default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// How long a write waits for another process (the admin CLI) to release the database.
    #[serde(default = "default_busy_timeout")]
    pub busy_timeout: Seconds,
    /// Largest database size in bytes; past it new mail gets 452 4.3.1. Default: no limit.
    pub max_size: Option<u64>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: BackendName::default(),
            url: None,
            ca_file: None,
            busy_timeout: default_busy_timeout(),
            max_size: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendName {
    #[default]
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Waits between attempts; the last one repeats.
    #[serde(default = "default_retry")]
    pub retry: Vec<Seconds>,
    /// Then the message bounces.
    #[serde(default = "default_max_age")]
    pub max_age: Seconds,
    /// Tell the sender once when a message is still undelivered after this
    /// long (RFC 3464 "delayed"). Absent: no warnings.
    pub delay_warning: Option<Seconds>,
    /// How long a delivery attempt holds its recipients: with several
    /// nodes, how soon another node takes over a dead node's recipients.
    /// Longer than any attempt can last.
    #[serde(default = "default_lease")]
    pub lease: Seconds,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            retry: default_retry(),
            max_age: default_max_age(),
            lease: default_lease(),
            delay_warning: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    #[serde(default)]
    pub xclient_trusted: Vec<CidrValue>,
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u64,
    #[serde(default = "default_max_recipients")]
    pub max_recipients: usize,
    #[serde(default = "default_max_header_size")]
    pub max_header_size: usize,
    /// Refuse messages with longer text lines (RFC 5321 §4.5.3.1.6); default: accept.
    #[serde(default)]
    pub max_text_line: Option<usize>,
    #[serde(default = "default_max_received")]
    pub max_received: usize,
    #[serde(default = "default_smtp_timeout")]
    pub command_timeout: Seconds,
    #[serde(default = "default_smtp_timeout")]
    pub data_timeout: Seconds,
    #[serde(default = "default_soft_errors")]
    pub soft_error_limit: u32,
    #[serde(default = "default_hard_errors")]
    pub hard_error_limit: u32,
    #[serde(default = "default_error_delay")]
    pub error_delay: Seconds,
    /// RFC 4865 FUTURERELEASE: the longest hold a submission may ask for.
    #[serde(default = "default_max_hold")]
    pub max_hold: Seconds,
    /// RFC 2852 DELIVERBY: the shortest deadline accepted with `R` (return).
    #[serde(default = "default_min_deliver_by")]
    pub min_deliver_by: Seconds,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            xclient_trusted: Vec::new(),
            max_message_size: default_max_message_size(),
            max_recipients: default_max_recipients(),
            max_header_size: default_max_header_size(),
            max_text_line: None,
            max_received: default_max_received(),
            command_timeout: default_smtp_timeout(),
            data_timeout: default_smtp_timeout(),
            soft_error_limit: default_soft_errors(),
            hard_error_limit: default_hard_errors(),
            error_delay: default_error_delay(),
            max_hold: default_max_hold(),
            min_deliver_by: default_min_deliver_by(),
        }
    }
}

/// Outbound delivery: the SMTP client and the queue runner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    /// The port MX hosts are contacted on (25; tests point it elsewhere).
    #[serde(default = "default_outbound_port")]
    pub port: u16,
    /// Local address for outgoing connections; absent: the system picks.
    pub source: Option<std::net::IpAddr>,
    /// Messages being delivered at once, in total.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: usize,
    /// Connections at once to one destination domain.
    #[serde(default = "default_max_per_domain")]
    pub max_per_domain: usize,
    /// RFC 5321 §4.5.3.2 timeouts: TCP connect; greeting, EHLO, MAIL, RCPT;
    /// the reply after the message data.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Seconds,
    #[serde(default = "default_smtp_timeout")]
    pub command_timeout: Seconds,
    #[serde(default = "default_final_timeout")]
    pub data_timeout: Seconds,
    /// A relay for all mail (or some domains) instead of MX lookups.
    pub smarthost: Option<Smarthost>,
    /// Trust roots (PEM) for WebPKI checks (MTA-STS policies); absent: the
    /// system's (SSL_CERT_FILE honoured).
    pub ca_file: Option<PathBuf>,
    /// The port MTA-STS policies are fetched from (443; tests point it elsewhere).
    #[serde(default = "default_mta_sts_port")]
    pub mta_sts_port: u16,
    /// Honour other domains' MTA-STS policies (RFC 8461) when sending.
    #[serde(default = "yes")]
    pub mta_sts: bool,
    /// DANE for MX hosts with DNSSEC-validated TLSA records (RFC 7672);
    /// needs `[dns] dnssec`.
    #[serde(default = "yes")]
    pub dane: bool,
}

fn default_mta_sts_port() -> u16 {
    443
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            port: default_outbound_port(),
            source: None,
            max_deliveries: default_max_deliveries(),
            max_per_domain: default_max_per_domain(),
            connect_timeout: default_connect_timeout(),
            command_timeout: default_smtp_timeout(),
            data_timeout: default_final_timeout(),
            smarthost: None,
            ca_file: None,
            mta_sts_port: default_mta_sts_port(),
            dane: true,
            mta_sts: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smarthost {
    /// "HOST:PORT" or "HOST" (port 587).
    pub host: String,
    /// AUTH PLAIN, only ever sent over TLS.
    pub user: Option<String>,
    pub password: Option<String>,
    /// Only mail for these domains goes through the relay; empty: all mail.
    #[serde(default)]
    pub domains: Vec<String>,
}

impl Smarthost {
    /// (host, port) from `host`.
    pub fn address(&self) -> Result<(String, u16), String> {
        match self.host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => p
                .parse()
                .map(|p| (h.trim_matches(['[', ']']).to_string(), p))
                .map_err(|_| format!("outbound.smarthost.host: bad port in {:?}", self.host)),
            _ => Ok((self.host.clone(), 587)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imap {
    /// Allow LOGIN and AUTHENTICATE without TLS for clients on loopback addresses.
    #[serde(default)]
    pub plaintext_on_loopback: bool,
    /// Close a session idle (or in IDLE) this long; RFC 9051 §5.4 asks for 30 minutes at least.
    #[serde(default = "default_imap_idle")]
    pub idle_timeout: Seconds,
    /// Sessions of one user from one client address (Dovecot's mail_max_userip_connections).
    #[serde(default = "default_per_user_ip")]
    pub max_connections_per_user_ip: usize,
}

impl Default for Imap {
    fn default() -> Self {
        Imap {
            plaintext_on_loopback: false,
            idle_timeout: default_imap_idle(),
            max_connections_per_user_ip: default_per_user_ip(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pop3 {
    /// Allow USER/PASS and AUTH without TLS for clients on loopback addresses.
    #[serde(default)]
    pub plaintext_on_loopback: bool,
    /// RFC 1939 §3: the autologout timer is at least 10 minutes.
    #[serde(default = "default_pop3_idle")]
    pub idle_timeout: Seconds,
}

impl Default for Pop3 {
    fn default() -> Self {
        Pop3 {
            plaintext_on_loopback: false,
            idle_timeout: default_pop3_idle(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default = "default_failure_delay")]
    pub failure_delay: Seconds,
    #[serde(default = "default_max_failures")]
    pub max_failures_per_ip: u32,
    #[serde(default = "default_failure_window")]
    pub failure_window: Seconds,
    #[serde(default = "default_block")]
    pub block_duration: Seconds,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            failure_delay: default_failure_delay(),
            max_failures_per_ip: default_max_failures(),
            failure_window: default_failure_window(),
            block_duration: default_block(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_max_per_ip")]
    pub max_connections_per_ip: usize,
    #[serde(default = "default_exempt")]
    pub per_ip_exempt: Vec<CidrValue>,
    /// TLS handshakes one client address may start per minute (0: no
    /// limit); `per_ip_exempt` ranges are not counted.
    #[serde(default = "default_handshakes_per_ip_minute")]
    pub tls_handshakes_per_ip_minute: u32,
    /// Per user and hour: past it, new mail is held and the admin told.
    #[serde(default = "default_submission_per_hour")]
    pub submission_per_hour: u64,
    /// Per user and hour: past these, 451 4.7.28 until the hour passes.
    #[serde(default = "default_messages_per_hour")]
    pub messages_per_hour: u64,
    #[serde(default = "default_recipients_per_hour")]
    pub recipients_per_hour: u64,
    /// The compromised-account hold also starts on a surge of this many
    /// times the usual hourly pace (and at least `surge_min` messages)...
    #[serde(default = "default_surge_factor")]
    pub surge_factor: f64,
    #[serde(default = "default_surge_min")]
    pub surge_min: u64,
    /// ...mail to more new domains than this in an hour, more bounces, or
    /// more submissions that score as spam.
    #[serde(default = "default_new_domains_per_hour")]
    pub new_domains_per_hour: u64,
    #[serde(default = "default_bounces_per_hour")]
    pub bounces_per_hour: u64,
    #[serde(default = "default_spam_per_hour")]
    pub spam_per_hour: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: default_max_connections(),
            max_connections_per_ip: default_max_per_ip(),
            per_ip_exempt: default_exempt(),
            tls_handshakes_per_ip_minute: default_handshakes_per_ip_minute(),
            submission_per_hour: default_submission_per_hour(),
            messages_per_hour: default_messages_per_hour(),
            recipients_per_hour: default_recipients_per_hour(),
            surge_factor: default_surge_factor(),
            surge_min: default_surge_min(),
            new_domains_per_hour: default_new_domains_per_hour(),
            bounces_per_hour: default_bounces_per_hour(),
            spam_per_hour: default_spam_per_hour(),
        }
    }
}

/// Spam defence on the MX (`[antispam]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Antispam {
    /// RFC 6647 greylisting of unknown (client network, sender, recipient).
    /// Off by default: it delays the first mail of every new correspondent,
    /// which an operator should choose knowingly.
    #[serde(default)]
    pub greylist: bool,
    #[serde(default = "default_greylist_delay")]
    pub greylist_delay: Seconds,
    #[serde(default = "default_greylist_window")]
    pub greylist_window: Seconds,
    #[serde(default = "default_greylist_lifetime")]
    pub greylist_lifetime: Seconds,
    /// Triplets a client network must pass before it skips greylisting.
    #[serde(default = "default_greylist_trust_after")]
    pub greylist_trust_after: u32,
    /// DNS block lists for the client address: "zone", "zone=score", or
    /// "zone:127.0.0.2,127.0.0.3=score". Without a score a listing refuses.
    #[serde(default)]
    pub dnsbl: Vec<DnsListValue>,
    /// DNS allow lists: skip greylisting and block lists, and `dnswl_score`.
    #[serde(default)]
    pub dnswl: Vec<DnsListValue>,
    #[serde(default = "default_dnswl_score")]
    pub dnswl_score: f64,
    /// Domain lists (DBL style) for the sender, From: and link domains.
    #[serde(default)]
    pub domain_lists: Vec<DnsListValue>,
    /// Networks that skip greylisting, block lists and the pregreet test.
    #[serde(default)]
    pub exempt: Vec<CidrValue>,
    #[serde(default = "default_reject_score")]
    pub reject_score: f64,
    #[serde(default = "default_junk_score")]
    pub junk_score: f64,
    /// The Bayesian classifier (trained by users moving mail to and from Junk).
    #[serde(default = "yes")]
    pub bayes: bool,
    /// Postscreen's pregreet test on the MX: the greeting waits this long
    /// for a silent client (once a day per client address). Default "0s":
    /// off; postscreen deployments use "6s".
    #[serde(default = "default_pregreet_wait")]
    pub pregreet_wait: Seconds,
}

impl Default for Antispam {
    fn default() -> Self {
        Antispam {
            greylist: false,
            greylist_delay: default_greylist_delay(),
            greylist_window: default_greylist_window(),
            greylist_lifetime: default_greylist_lifetime(),
            greylist_trust_after: default_greylist_trust_after(),
            dnsbl: Vec::new(),
            dnswl: Vec::new(),
            dnswl_score: default_dnswl_score(),
            domain_lists: Vec::new(),
            exempt: Vec::new(),
            reject_score: default_reject_score(),
            junk_score: default_junk_score(),
            bayes: true,
            pregreet_wait: default_pregreet_wait(),
        }
    }
}

/// A DNS list in the configuration (see `antispam::dnsbl`).
#[derive(Debug, Clone, PartialEq)]
pub struct DnsListValue(pub antispam::dnsbl::DnsList);

impl<'de> Deserialize<'de> for DnsListValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map(DnsListValue)
            .map_err(serde::de::Error::custom)
    }
}

fn default_submission_per_hour() -> u64 {
    500
}
fn default_messages_per_hour() -> u64 {
    1000
}
fn default_recipients_per_hour() -> u64 {
    5000
}
fn default_surge_factor() -> f64 {
    10.0
}
fn default_surge_min() -> u64 {
    50
}
fn default_new_domains_per_hour() -> u64 {
    50
}
fn default_bounces_per_hour() -> u64 {
    30
}
fn default_spam_per_hour() -> u64 {
    5
}
fn default_greylist_delay() -> Seconds {
    Seconds(Duration::from_secs(300))
}
fn default_greylist_window() -> Seconds {
    Seconds(Duration::from_secs(12 * 3600))
}
fn default_greylist_lifetime() -> Seconds {
    Seconds(Duration::from_secs(35 * 86_400))
}
fn default_greylist_trust_after() -> u32 {
    3
}
fn default_dnswl_score() -> f64 {
    -2.0
}
fn default_reject_score() -> f64 {
    15.0
}
fn default_junk_score() -> f64 {
    5.0
}
fn default_pregreet_wait() -> Seconds {
    Seconds(Duration::ZERO)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// The sub-address separator; "" turns sub-addressing off.
    #[serde(default = "default_separator")]
    pub subaddress_separator: String,
    /// Forwarded mail (aliases to other domains) gets an SRS sender and an
    /// ARC seal; bounces to SRS addresses are routed back.
    #[serde(default = "yes")]
    pub srs: bool,
    #[serde(default = "yes")]
    pub arc_seal: bool,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            subaddress_separator: default_separator(),
            srs: true,
            arc_seal: true,
        }
    }
}

/// Sieve filtering (RFC 5228) and ManageSieve (RFC 5804).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SieveSettings {
    /// A script run before every user's own (the administrator's policy);
    /// its `stop` ends filtering. Absent: none.
    pub before: Option<PathBuf>,
    /// A directory of `NAME.sieve` files users' scripts may
    /// `include :global "NAME"` (RFC 6609). Absent: none.
    pub global_dir: Option<PathBuf>,
    /// Scripts one user may keep, and the size of one (ManageSieve HAVESPACE).
    #[serde(default = "default_max_scripts")]
    pub max_scripts: usize,
    #[serde(default = "default_max_script_size")]
    pub max_script_size: u64,
    /// `redirect` actions in one run (ManageSieve MAXREDIRECTS).
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,
    /// Messages one user may redirect in an hour.
    #[serde(default = "default_max_redirects_per_hour")]
    pub max_redirects_per_hour: u64,
    /// ManageSieve AUTHENTICATE without TLS for clients on loopback addresses.
    #[serde(default)]
    pub plaintext_on_loopback: bool,
}

impl Default for SieveSettings {
    fn default() -> Self {
        SieveSettings {
            before: None,
            global_dir: None,
            max_scripts: default_max_scripts(),
            max_script_size: default_max_script_size(),
            max_redirects: default_max_redirects(),
            max_redirects_per_hour: default_max_redirects_per_hour(),
            plaintext_on_loopback: false,
        }
    }
}

fn default_max_scripts() -> usize {
    20
}
fn default_max_script_size() -> u64 {
    64 * 1024
}
fn default_max_redirects() -> usize {
    4
}
fn default_max_redirects_per_hour() -> u64 {
    100
}

/// Sender authentication of incoming mail (the MX).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// SPF, DKIM, DMARC, ARC and iprev on every message the MX receives.
    #[serde(default = "yes")]
    pub verify: bool,
    /// Refuse SPF `fail` at MAIL FROM (550 5.7.23); `temperror` gets 451 4.7.24.
    #[serde(default)]
    pub spf_reject: bool,
    /// Apply DMARC `p=reject` (550 5.7.1) and `p=quarantine` (Junk); false: mark only.
    #[serde(default = "yes")]
    pub dmarc_enforce: bool,
    /// Forwarders whose valid ARC chain may override a DMARC failure.
    #[serde(default)]
    pub trusted_arc_sealers: Vec<String>,
    /// A newer Public Suffix List file; default: the copy in Tern.
    pub public_suffix_list: Option<PathBuf>,
    /// Refuse mail on the MX without exactly one From: field with an address
    /// (DMARC cannot apply to it, RFC 7489 §6.6.1); false: accept it, marked
    /// `dmarc=none` with the reason.
    #[serde(default = "yes")]
    pub require_from: bool,
    /// For signed mail from other domains, look up the keys the sender's
    /// domain publishes (Web Key Directory, OPENPGPKEY, SMIMEA).
    #[serde(default = "yes")]
    pub sender_keys: bool,
    /// CA certificates (PEM) whose chains vouch for S/MIME signers.
    pub smime_ca_file: Option<PathBuf>,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            verify: true,
            spf_reject: false,
            dmarc_enforce: true,
            trusted_arc_sealers: Vec::new(),
            public_suffix_list: None,
            require_from: true,
            sender_keys: true,
            smime_ca_file: None,
        }
    }
}

/// DKIM signing of what our users send.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    #[serde(default = "yes")]
    pub sign: bool,
    /// After `tern dkim rotate`, how long the new keys are only published
    /// (DNS caches catch up) before they sign.
    #[serde(default = "default_rotation_delay")]
    pub rotation_delay: Seconds,
}

impl Default for DkimSettings {
    fn default() -> Self {
        DkimSettings {
            sign: true,
            rotation_delay: default_rotation_delay(),
        }
    }
}

/// DMARC aggregate reports (RFC 7489 §7.2) about the mail the MX checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// Send them by itself at the end of each interval (false: only
    /// `tern report send`, e.g. from cron).
    #[serde(default = "yes")]
    pub dmarc_send: bool,
    /// The reporting period, aligned to 00:00 UTC for a day (RFC 7489 §7.2:
    /// at least daily is expected).
    #[serde(default = "default_report_interval")]
    pub dmarc_interval: Seconds,
    /// Send TLS reports (RFC 8460) to the domains we deliver to that ask
    /// for them (`_smtp._tls` rua=mailto:).
    #[serde(default = "yes")]
    pub tls_rpt_send: bool,
    /// Their period (RFC 8460 §4.1: a day, from 00:00 UTC).
    #[serde(default = "default_report_interval")]
    pub tls_rpt_interval: Seconds,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            dmarc_send: true,
            dmarc_interval: default_report_interval(),
            tls_rpt_send: true,
            tls_rpt_interval: default_report_interval(),
        }
    }
}

fn default_report_interval() -> Seconds {
    Seconds(Duration::from_secs(86_400))
}

fn default_rotation_delay() -> Seconds {
    Seconds(Duration::from_secs(2 * 86_400))
}

/// A duration written `30s`, `5m`, `4h`, `5d` (or a bare number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Seconds(Duration::from_secs(n))),
            Raw::Text(s) => parse_duration(&s).map(Seconds).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "bad duration {s:?}: write e.g. \"30s\", \"5m\", \"4h\", \"5d\""
                ))
            }),
        }
    }
}

pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(factor)?))
}

/// An address range (`127.0.0.0/8`) in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrValue(pub Cidr);

impl<'de> Deserialize<'de> for CidrValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<Cidr>()
            .map(CidrValue)
            .map_err(serde::de::Error::custom)
    }
}

fn yes() -> bool {
    true
}
fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/tern")
}
fn default_log_level() -> String {
    "info".into()
}
fn default_shutdown_timeout() -> Seconds {
    Seconds(Duration::from_secs(30))
}
fn default_pop3_idle() -> Seconds {
    Seconds(Duration::from_secs(600))
}
fn default_per_user_ip() -> usize {
    20
}
fn default_imap_idle() -> Seconds {
    Seconds(Duration::from_secs(30 * 60))
}
fn default_busy_timeout() -> Seconds {
    Seconds(Duration::from_secs(10))
}
fn default_retry() -> Vec<Seconds> {
    [60, 300, 900, 3600, 14_400]
        .into_iter()
        .map(|s| Seconds(Duration::from_secs(s)))
        .collect()
}
fn default_max_deliveries() -> usize {
    20
}
fn default_max_per_domain() -> usize {
    4
}
fn default_connect_timeout() -> Seconds {
    Seconds(Duration::from_secs(30))
}
fn default_final_timeout() -> Seconds {
    Seconds(Duration::from_secs(600))
}
fn default_lease() -> Seconds {
    Seconds(Duration::from_secs(3600))
}
fn default_max_age() -> Seconds {
    Seconds(Duration::from_secs(5 * 86_400))
}
fn default_max_message_size() -> u64 {
    50 << 20
}
fn default_max_recipients() -> usize {
    1000
}
fn default_max_header_size() -> usize {
    100 << 10
}
fn default_max_received() -> usize {
    50
}
fn default_smtp_timeout() -> Seconds {
    Seconds(Duration::from_secs(300))
}
fn default_soft_errors() -> u32 {
    10
}
fn default_hard_errors() -> u32 {
    20
}
fn default_error_delay() -> Seconds {
    Seconds(Duration::from_secs(1))
}
fn default_max_hold() -> Seconds {
    Seconds(Duration::from_secs(30 * 86_400))
}
fn default_min_deliver_by() -> Seconds {
    Seconds(Duration::from_secs(120))
}
fn default_outbound_port() -> u16 {
    25
}
fn default_failure_delay() -> Seconds {
    Seconds(Duration::from_secs(2))
}
fn default_max_failures() -> u32 {
    10
}
fn default_failure_window() -> Seconds {
    Seconds(Duration::from_secs(600))
}
fn default_block() -> Seconds {
    Seconds(Duration::from_secs(900))
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_per_ip() -> usize {
    100
}
fn default_handshakes_per_ip_minute() -> u32 {
    300
}
fn default_exempt() -> Vec<CidrValue> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|s| s.parse().ok())
        .map(CidrValue)
        .collect()
}
fn default_separator() -> String {
    "+".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("invalid config {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl Config {
    /// Read and check a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.into(),
            reason: e.to_string(),
        })?;
        Config::parse(&text).map_err(|reason| ConfigError::Invalid {
            path: path.into(),
            reason,
        })
    }

    /// Parse configuration text; the error names the key and its line.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| one_line(&e, text))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        message::Domain::parse_name(&self.hostname)
            .map_err(|_| format!("hostname: {:?} is not a domain name", self.hostname))?;
        if self.queue.retry.is_empty() {
            return Err("queue.retry: needs at least one interval".into());
        }
        if self.queue.retry.iter().any(|r| r.0.is_zero()) {
            return Err("queue.retry: an interval of 0 would retry without pause".into());
        }
        if self.outbound.max_deliveries == 0 || self.outbound.max_per_domain == 0 {
            return Err("outbound.max_deliveries and max_per_domain: at least 1".into());
        }
        if let Some(s) = &self.outbound.smarthost {
            s.address()?;
            if s.user.is_some() != s.password.is_some() {
                return Err("outbound.smarthost: user and password go together".into());
            }
        }
        if self.delivery.subaddress_separator.chars().count() > 1 {
            return Err("delivery.subaddress_separator: one character, or \"\" for none".into());
        }
        let a = &self.antispam;
        if a.junk_score >= a.reject_score {
            return Err("antispam.junk_score: must be below reject_score".into());
        }
        if a.greylist && a.greylist_window.0 <= a.greylist_delay.0 {
            return Err("antispam.greylist_window: must be longer than greylist_delay".into());
        }
        if self.queue.lease.0 < Duration::from_secs(2) {
            return Err("queue.lease: at least 2s".into());
        }
        if self.store.backend == BackendName::Postgres && self.store.url.is_none() {
            return Err("store.url: needed with backend = \"postgres\"".into());
        }
        if let Some(acme) = &self.acme {
            if !acme.directory.starts_with("https://") {
                return Err("acme.directory: an https:// URL".into());
            }
            if self.listeners.http.is_none() && self.listeners.https.is_none() {
                return Err(
                    "acme: needs an http listener (http-01) or an https one (tls-alpn-01)".into(),
                );
            }
        }
        if dns::mta_sts::Mode::parse(&self.mta_sts.mode).is_none() {
            return Err(format!(
                "mta_sts.mode: {:?} is not \"enforce\", \"testing\" or \"none\"",
                self.mta_sts.mode
            ));
        }
        Ok(())
    }

    /// The services mail clients are told about (SRV records, autoconfig),
    /// at the ports configured; a port of 0 (chosen at start) is nothing a
    /// client could be told.
    pub fn client_services(&self) -> Vec<web::ClientService> {
        use web::{ServiceKind as K, ServiceTls as T};
        let l = &self.listeners;
        [
            (K::Submission, T::Implicit, l.submissions),
            (K::Submission, T::StartTls, l.submission),
            (K::Imap, T::Implicit, l.imaps),
            (K::Imap, T::StartTls, l.imap),
            (K::Pop3, T::Implicit, l.pop3s),
            (K::Pop3, T::StartTls, l.pop3),
        ]
        .into_iter()
        .filter_map(|(kind, tls, addr)| {
            let port = addr?.port();
            (port != 0).then_some(web::ClientService { kind, tls, port })
        })
        .collect()
    }

    /// The development setup of `tern serve` without a configuration (interface.md).
    pub fn development() -> Config {
        let mut c = Config::parse("hostname = \"localhost\"\ndata_dir = \"tern-data\"\n")
            .unwrap_or_else(|e| panic!("built-in config: {e}"));
        let lo = |port: u16| Some(SocketAddr::from(([127, 0, 0, 1], port)));
        c.listeners = Listeners {
            smtp: lo(2525),
            submission: lo(2587),
            submissions: lo(2465),
            imap: lo(2143),
            imaps: lo(2993),
            pop3: lo(2110),
            pop3s: lo(2995),
            managesieve: lo(4190),
            http: lo(8080),
            ..Listeners::default()
        };
        // Mail comes from this machine: SPF and DMARC would only measure the
        // laptop's DNS (and defer everything when it is offline).
        c.policy.verify = false;
        // The one account the setup creates runs it, from the browser too.
        c.http.admins = vec!["admin@localhost".into()];
        c
    }
}

/// The `toml` crate's error as one line: "line 3, column 1: unknown field `x`...".
fn one_line(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let key = text
                .lines()
                .nth(line - 1)
                .and_then(|l| l.split('=').next())
                .map(str::trim)
                .unwrap_or("");
            format!("line {line} ({key}): {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_example_parses() {
        let text = r#"
hostname = "mx.a.test"
data_dir = "/var/lib/tern"
[listeners]
smtp        = "127.0.0.10:25"
submission  = "127.0.0.10:587"
submissions = "127.0.0.10:465"
imap        = "127.0.0.10:143"
imaps       = "127.0.0.10:993"
pop3        = "127.0.0.10:110"
pop3s       = "127.0.0.10:995"
http        = "127.0.0.10:80"
https       = "127.0.0.10:443"
managesieve = "127.0.0.10:4190"
[tls]
cert = "/path/fullchain.pem"
key  = "/path/key.pem"
[dns]
nameservers = ["127.0.0.53:53"]
dnssec = true
trust_anchor = "/path/root.key"
[store]
backend = "sqlite"
[queue]
retry = ["1m", "5m", "15m", "1h", "4h"]
max_age = "5d"
[smtp]
xclient_trusted = ["127.0.0.1/32"]
[outbound]
port = 25
source = "127.0.0.10"
"#;
        let c = Config::parse(text).unwrap();
        assert_eq!(c.listeners.smtp, Some("127.0.0.10:25".parse().unwrap()));
        assert_eq!(c.queue.retry[3], Seconds(Duration::from_secs(3600)));
        assert_eq!(c.queue.max_age, Seconds(Duration::from_secs(432_000)));
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = Config::parse("hostname = \"a.test\"\nfoo = 1\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("foo"), "{e}");
        let e =
            Config::parse("hostname = \"a.test\"\n[listeners]\nsmtp = \"nowhere\"\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("smtp"), "{e}");
        let e = Config::parse("[queue]\nmax_age = \"5 weeks\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("max_age"), "{e}");
        let e = Config::parse("hostname = \"not a host\"\n").unwrap_err();
        assert!(e.contains("hostname"), "{e}");
    }

    /// The shipped example documents real keys only, with valid values.
    #[test]
    fn example_file_parses() {
        let text = include_str!("../../../tern.example.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.smtp.max_message_size, 52_428_800);
        assert_eq!(c.store.busy_timeout, Seconds(Duration::from_secs(10)));
    }

    #[test]
    fn outbound_settings() {
        let c = Config::parse(
            "[outbound.smarthost]\nhost = \"relay.test\"\nuser = \"u\"\npassword = \"p\"\n\
             [queue]\ndelay_warning = \"4h\"\n",
        )
        .unwrap();
        let s = c.outbound.smarthost.unwrap();
        assert_eq!(s.address().unwrap(), ("relay.test".to_string(), 587));
        assert_eq!(
            c.queue.delay_warning,
            Some(Seconds(Duration::from_secs(14_400)))
        );
        assert_eq!(c.outbound.max_per_domain, 4);
        let at = |host: &str| {
            Smarthost {
                host: host.into(),
                user: None,
                password: None,
                domains: vec![],
            }
            .address()
        };
        assert_eq!(
            at("relay.test:2525").unwrap(),
            ("relay.test".to_string(), 2525)
        );
        assert_eq!(at("[::1]:25").unwrap(), ("::1".to_string(), 25));
        assert!(at("relay.test:smtp").is_err());
        let e =
            Config::parse("[outbound.smarthost]\nhost = \"r.test\"\nuser = \"u\"\n").unwrap_err();
        assert!(e.contains("user and password"), "{e}");
        let e = Config::parse("[queue]\nretry = [\"0s\"]\n").unwrap_err();
        assert!(e.contains("queue.retry"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1w"), None);
        assert_eq!(parse_duration("s"), None);
    }
}
