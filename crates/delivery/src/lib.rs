//! The MDA: what happens to a message for our domains. It answers "who gets
//! mail sent to this address" at RCPT time (accounts, aliases, sub-addresses,
//! catch-all), and, at the end of DATA, runs each account's Sieve filter
//! and stores what they decided in one durable transaction: the message
//! once for every mailbox it reaches, queued for every remote target.
//!
//! Resolution order for an address in one of our domains (`resolve`):
//! 1. an account or alias with exactly that address;
//! 2. the address without its sub-address (`user+tag@d` -> `user@d`);
//! 3. the domain's catch-all alias (`@d`);
//! 4. otherwise unknown (550 5.1.1 at RCPT: no backscatter).
//!
//! Aliases expand recursively up to [`MAX_DEPTH`] levels and [`MAX_TARGETS`]
//! targets; a branch that comes back to an alias already on its path is cut
//! (docs/hardening.md C-RL9). If nothing but cycles remains, the address is a loop.
//!
//! Delivery (`filter` runs the scripts, `plan` turns their actions into the
//! store's operation, `effects` sends what goes out after the commit:
//! vacation responses, notifications, rejection reports).

mod effects;
mod filter;
mod history;
mod plan;
mod quota;
mod resolve;

use std::sync::Arc;

use message::Mailbox;
use message::spool::{Spool, Spooled};
use policy::srs::Srs;
use store::{AccountId, AddressKind, QueueOptions, Store, StoreError};

pub use filter::{ScriptCache, SieveConfig};
pub use sieve::SpamLevel;

pub const MAX_DEPTH: usize = 10;
pub const MAX_TARGETS: usize = 1000;

#[derive(Clone)]
pub struct MdaConfig {
    /// The sub-address separator (`+` in `user+tag@domain`); None turns sub-addressing off.
    pub subaddress_separator: Option<char>,
    /// Rewrite the sender of forwarded mail, and route bounces to rewritten
    /// addresses back (None: forward with the original sender).
    pub srs: Option<Arc<Srs>>,
    /// DKIM signing of what Sieve sends from a user's address (vacation
    /// responses, notifications): receivers check DMARC on them too.
    pub signer: Option<Arc<policy::sign::Signer>>,
    /// Our host name (the Message-ID of what Sieve sends, reports).
    pub hostname: String,
    pub sieve: SieveConfig,
    /// Look up the keys other domains publish for the senders of signed
    /// mail (WKD, OPENPGPKEY, SMIMEA); None: only keys published here.
    pub sender_keys: Option<Arc<policy::sender_keys::SenderKeys>>,
    /// CA certificates that vouch for S/MIME signers.
    pub smime_anchors: policy::smime_mime::TrustAnchors,
    /// Where copies encrypted at rest are spooled.
    pub spool: Spool,
}

impl Default for MdaConfig {
    fn default() -> Self {
        MdaConfig {
            subaddress_separator: Some('+'),
            srs: None,
            signer: None,
            hostname: "localhost".into(),
            sieve: SieveConfig::default(),
            sender_keys: None,
            smime_anchors: Default::default(),
            spool: Spool::memory(),
        }
    }
}

/// A local account a message goes to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTarget {
    pub account: AccountId,
    /// The account's address (for Delivered-To).
    pub address: String,
}

/// What one recipient address means here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Ours: these accounts, and these remote addresses (aliases that forward).
    Deliver {
        local: Vec<LocalTarget>,
        remote: Vec<String>,
    },
    /// In one of our domains, but nobody has it.
    Unknown,
    /// Only alias cycles behind it.
    Loop,
    /// Not one of our domains.
    NotLocal,
    /// An SRS address of ours that we did not make, or too old (a forged or
    /// stale bounce).
    BadSrs(String),
    /// Our DMARC report address (RFC 7489 §7.2), kept by no account or alias:
    /// the message is a report to parse and keep.
    Reports,
}

/// The local part of the address where each of our domains receives DMARC
/// aggregate reports (the `rua=` that `tern dns records` prints).
pub const REPORT_LOCAL_PART: &str = "dmarc-reports";
/// Where TLS reports (RFC 8460) come, on every domain (`_smtp._tls` rua).
pub const TLSRPT_LOCAL_PART: &str = "tls-reports";

/// One accepted recipient of a transaction.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The address as given at RCPT (local part in its case, domain lowercased).
    pub address: String,
    /// Where it leads: local accounts and remote addresses.
    pub local: Vec<LocalTarget>,
    pub remote: Vec<String>,
    /// RFC 3461 NOTIFY and ORCPT as received.
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

/// The spam filter's word on one account's copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub account: AccountId,
    /// To Junk (what keep means for this copy).
    pub junk: bool,
    /// The header field that says why (`X-Spam-Status: ...\r\n`).
    pub field: String,
    /// RFC 5235 levels for Sieve's spamtest.
    pub spam: Option<sieve::SpamLevel>,
}

/// What became of a message handed to [`Mda::deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Stored durably: copies in mailboxes, and the queue entry that took
    /// the rest (if one did: a held message's every copy is there).
    Accepted {
        placed: usize,
        queue_id: Option<i64>,
    },
    /// Every recipient's filter refused it (Sieve `reject`, RFC 5429 §2.1):
    /// the reason to answer the client with; nothing was stored.
    Refused(String),
}

/// The envelope of a message to deliver.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// The reverse-path, empty for `<>`.
    pub sender: String,
    pub recipients: Vec<Recipient>,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    /// What the checks said of each local account's copy. Accounts absent
    /// here get their copy in INBOX as it is.
    pub verdicts: Vec<Verdict>,
    /// FUTURERELEASE, DELIVERBY, MT-PRIORITY. A held message (FUTURERELEASE)
    /// goes through the queue for local recipients too.
    pub queue_options: QueueOptions,
    /// The authenticated account that submitted it (its mail stops while
    /// the account is held).
    pub submitter: Option<String>,
    /// The message's keys in the delivery history (its SMTP id, or the
    /// queue id it is delivered from); absent: a message Tern wrote.
    pub history: store::MessageKey,
}

pub struct Mda {
    store: Arc<dyn Store>,
    config: MdaConfig,
    queued: Arc<tokio::sync::Notify>,
    scripts: ScriptCache,
}

impl Mda {
    pub fn new(store: Arc<dyn Store>, config: MdaConfig) -> Mda {
        Mda {
            store,
            config,
            queued: Arc::new(tokio::sync::Notify::new()),
            scripts: ScriptCache::default(),
        }
    }

    /// Encryption at rest: the message (as it came, our trace fields
    /// apart) encrypted to the key of each recipient account that asked
    /// for it ([`policy::at_rest_key`]: PGP/MIME to its OpenPGP key, else
    /// S/MIME to its certificate; either read and written a piece at a
    /// time); none for a message already encrypted end to end.
    async fn encrypted_copies(
        &self,
        data: &Spooled,
        runs: &[filter::Run],
    ) -> std::collections::HashMap<AccountId, plan::Sealed> {
        let mut out = std::collections::HashMap::new();
        if policy::pgp_mime::is_encrypted(data.header()) {
            return out;
        }
        for run in runs {
            let account = run.target.account;
            if out.contains_key(&account)
                || !self.store.encrypts_at_rest(account).await.unwrap_or(false)
            {
                continue;
            }
            let keys = self.store.public_keys(account).await.unwrap_or_default();
            let Some(key) = policy::at_rest_key(&keys).cloned() else {
                tracing::warn!(account = %run.target.address, "encryption at rest is on but the account has no key to encrypt to: stored as it came");
                continue;
            };
            let (data, spool) = (data.clone(), self.config.spool.clone());
            let sealed = tokio::task::spawn_blocking(move || match key.kind {
                store::KeyKind::OpenPgp => policy::pgp_mime::encrypt(&data, &key.data, &spool),
                store::KeyKind::Smime => policy::smime_encrypt::encrypt(&data, &key.data, &spool),
            })
            .await;
            match sealed {
                Ok(Ok(sealed)) => {
                    out.insert(account, plan::Sealed::new(sealed));
                }
                Ok(Err(e)) => {
                    tracing::warn!(account = %run.target.address, error = %e, "cannot encrypt at rest: stored as it came");
                }
                Err(e) => tracing::warn!(error = %e, "encryption task failed"),
            }
        }
        out
    }

    /// The lookups of other domains' published keys, when on.
    pub fn sender_keys(&self) -> Option<Arc<policy::sender_keys::SenderKeys>> {
        self.config.sender_keys.clone()
    }

    /// RFC 3156 §5 and RFC 8551 §3.5.3: a signed message checked with the
    /// key its From address published here, or its domain publishes
    /// ([`policy::sender_keys`]), or (S/MIME) a trust anchor's chain; the
    /// Authentication-Results field to add to the local copies (empty for
    /// a message that is not signed). The signed part is read from the
    /// spool a piece at a time whatever its size (hardening.md C-FT9); an
    /// opaque S/MIME message, whose content is inside its CMS object, is
    /// checked up to [`policy::smime_mime::MAX_OPAQUE`].
    async fn signature_check(&self, data: &Spooled) -> String {
        use policy::pgp_mime::{Outcome, SignatureKind};
        let head = data.header();
        let Some(kind) = message::header::fields_named(head, "Content-Type")
            .first()
            .and_then(|f| SignatureKind::of(&f.unfolded()))
        else {
            return String::new();
        };
        let from = message::header::fields_named(head, "From")
            .first()
            .and_then(|f| message::header::addresses(f.value).into_iter().next())
            .map(|m| m.key())
            .unwrap_or_default();
        // A signed message always gets our verdict on top (readers trust
        // the first result of a signed message, never one it came with).
        let field = |outcome: &Outcome| {
            tracing::info!(from = %from, method = kind.method(), outcome = ?outcome, "signature checked");
            policy::pgp_mime::result_field(&self.config.hostname, kind, &from, outcome)
        };
        let unchecked = |why: &str| field(&Outcome::Unchecked(why.to_string()));
        if kind == SignatureKind::Smime
            && policy::smime_mime::is_opaque(head)
            && data.len() > policy::smime_mime::MAX_OPAQUE
        {
            return unchecked("signed; too large to check");
        }
        // The message is read (its outline, then the signed part hashed)
        // a piece at a time, off the runtime's threads.
        let message = data.clone();
        let found = tokio::task::spawn_blocking(move || match kind {
            SignatureKind::OpenPgp => policy::pgp_mime::signed(&message),
            SignatureKind::Smime => policy::smime_mime::signed(&message),
        })
        .await;
        let Ok(Some(signed)) = found else {
            return unchecked("signed; not a well-formed signed message");
        };
        let wanted = match kind {
            SignatureKind::OpenPgp => store::KeyKind::OpenPgp,
            SignatureKind::Smime => store::KeyKind::Smime,
        };
        let local = self.store.account_credentials(&from).await.ok().flatten();
        let here = match &local {
            Some(c) => self
                .store
                .public_keys(c.account.id)
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|k| k.kind == wanted),
            None => None,
        };
        // Another domain's sender: the keys its domain publishes.
        let lookups = self.config.sender_keys.as_ref().filter(|_| local.is_none());
        // Hashing the signed part reads it from the spool: off the
        // runtime's threads.
        let judged = match kind {
            SignatureKind::OpenPgp => {
                let mut keys: Vec<_> = here
                    .into_iter()
                    .map(|k| policy::sender_keys::FoundKey {
                        data: k.data,
                        source: policy::sender_keys::Source::Here,
                    })
                    .collect();
                if let Some(lookups) = lookups {
                    keys.extend(lookups.openpgp(&from).await);
                }
                let from = from.clone();
                tokio::task::spawn_blocking(move || policy::pgp_mime::judge(&signed, &from, &keys))
                    .await
            }
            SignatureKind::Smime => {
                let smimea = match lookups {
                    Some(l) => l.smimea(&from).await,
                    None => None,
                };
                let (from, anchors) = (from.clone(), self.config.smime_anchors.clone());
                tokio::task::spawn_blocking(move || {
                    policy::smime_mime::judge(
                        &signed,
                        &from,
                        &policy::smime_mime::Vouchers {
                            here: here.as_ref(),
                            smimea: smimea.as_ref(),
                            anchors: &anchors,
                            now: rustls_pki_types::UnixTime::now(),
                        },
                    )
                })
                .await
            }
        };
        match judged {
            Ok(outcome) => field(&outcome),
            Err(_) => unchecked("signed; the check failed"),
        }
    }

    /// The domain whose ARC seal a forwarded copy should carry: the first
    /// recipient an alias forwards elsewhere, or whose account's script
    /// may redirect (RFC 8617 §5.1: the forwarder seals).
    pub async fn forwarding_domain(&self, recipients: &[Recipient]) -> Option<String> {
        let domain = |a: &str| a.rsplit_once('@').map(|(_, d)| d.to_string());
        if let Some(r) = recipients
            .iter()
            .find(|r| r.remote.iter().any(|t| t != &r.address))
        {
            return domain(&r.address);
        }
        for t in recipients.iter().flat_map(|r| &r.local) {
            if let Ok(Some((_, text))) = self.store.sieve_active(t.account).await
                && self.scripts.compile(&text).is_ok_and(|s| s.may_redirect())
            {
                return domain(&t.address);
            }
        }
        self.config
            .sieve
            .before
            .iter()
            .any(|s| s.may_redirect())
            .then(|| {
                recipients
                    .iter()
                    .flat_map(|r| &r.local)
                    .next()
                    .and_then(|t| domain(&t.address))
            })
            .flatten()
    }

    /// Notified whenever a delivery put something in the outbound queue (the
    /// queue runner waits on it).
    pub fn queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Run each local account's filter, then store and queue what they
    /// decided in one durable transaction. `data` already carries our
    /// Received line. What the filters send (vacation responses,
    /// notifications, rejection reports) goes out after the commit.
    pub async fn deliver(
        &self,
        envelope: &Envelope,
        data: Spooled,
        received_at: i64,
    ) -> Result<Delivered, StoreError> {
        let runs = self.filter_all(envelope, &data, received_at).await;
        // Forwarding aliases and report addresses take the message anyway.
        let others = envelope
            .recipients
            .iter()
            .any(|r| !r.remote.is_empty() || r.local.is_empty());
        if let Some(reason) = filter::refused_by_all(&runs, others) {
            return Ok(Delivered::Refused(reason));
        }
        let head = match runs.iter().any(|r| r.rejection().is_some()) {
            true => data.header().to_vec(),
            false => Vec::new(),
        };
        let queue_sender = self.queue_sender(envelope).await?;
        let redirect_senders = self.redirect_senders(envelope, &runs).await?;
        let signature = self.signature_check(&data).await;
        let encrypted = self.encrypted_copies(&data, &runs).await;
        let built = plan::build(
            envelope,
            &queue_sender,
            &redirect_senders,
            data,
            received_at,
            &runs,
            &plan::Extras {
                signature: &signature,
                encrypted: &encrypted,
            },
        );
        let planned = history::Planned::of(&built.messages);
        if built.messages.is_empty() {
            // Only recipients that took the message otherwise (report
            // addresses), or filters that discarded it.
            self.store
                .record_history(history::events(envelope, &runs, &planned, &[], received_at));
            self.after_commit(envelope, &head, &runs, received_at).await;
            return Ok(Delivered::Accepted {
                placed: 0,
                queue_id: None,
            });
        }
        let stored = self.store.store_messages(built.messages).await?;
        self.store.record_history(history::events(
            envelope,
            &runs,
            &planned,
            &stored,
            received_at,
        ));
        let queue_id = stored.iter().find_map(|s| s.queue_id);
        if queue_id.is_some() {
            self.queued.notify_one();
        }
        self.after_commit(envelope, &head, &runs, received_at).await;
        Ok(Delivered::Accepted {
            placed: stored.iter().map(|s| s.placed.len()).sum(),
            queue_id,
        })
    }

    /// Deliver a message Tern wrote itself (a DSN, a DMARC report) from
    /// `sender` (empty: `<>`): locally for our addresses, through the queue
    /// for others. Addresses that cannot receive mail are skipped with a
    /// warning; returns how many recipients took the message.
    pub async fn deliver_generated(
        &self,
        sender: &str,
        to: &[String],
        data: Vec<u8>,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut recipients = Vec::new();
        for address in to {
            let Ok(mailbox) = Mailbox::parse(address) else {
                tracing::warn!(to = %address, "generated message: not an address");
                continue;
            };
            let (local, remote) = match self.resolve(&mailbox).await? {
                Resolution::Deliver { local, remote } => (local, remote),
                Resolution::NotLocal => (vec![], vec![mailbox.to_string()]),
                other => {
                    tracing::warn!(to = %address, resolution = ?other, "generated message: the address cannot receive mail");
                    continue;
                }
            };
            recipients.push(Recipient {
                address: mailbox.to_string(),
                local,
                remote,
                notify: None,
                orcpt: None,
            });
        }
        if recipients.is_empty() {
            return Ok(0);
        }
        let envelope = Envelope {
            sender: sender.to_string(),
            recipients,
            ..Default::default()
        };
        // Boxed: what the recipients' filters send comes back here.
        Box::pin(self.deliver(&envelope, Spooled::from_vec(data), now)).await?;
        Ok(envelope.recipients.len())
    }

    /// The reverse-path of the queued copy: rewritten by SRS when the message is
    /// forwarded by one of our aliases for a sender of another domain (so SPF at
    /// the next hop checks us, and bounces come back here).
    async fn queue_sender(&self, envelope: &Envelope) -> Result<String, StoreError> {
        let Some(srs) = &self.config.srs else {
            return Ok(envelope.sender.clone());
        };
        let forwarding = envelope
            .recipients
            .iter()
            .find(|r| r.remote.iter().any(|t| t != &r.address));
        let (Some(via), false) = (forwarding, envelope.sender.is_empty()) else {
            return Ok(envelope.sender.clone());
        };
        if self.store.lookup_address(&envelope.sender).await? != AddressKind::NotLocal {
            // Our own sender: SPF for our domain already covers us.
            return Ok(envelope.sender.clone());
        }
        let domain = via.address.rsplit_once('@').map_or("", |(_, d)| d);
        Ok(srs.forward(&envelope.sender, domain, message::date::unix_now()))
    }

    /// The reverse-path of each account's redirected copies (RFC 5228
    /// §4.2 keeps the sender; SRS rewrites it as for alias forwarding).
    async fn redirect_senders(
        &self,
        envelope: &Envelope,
        runs: &[filter::Run],
    ) -> Result<Vec<(AccountId, String)>, StoreError> {
        let mut out = Vec::new();
        let local_sender = match (&self.config.srs, envelope.sender.is_empty()) {
            (Some(_), false) => {
                self.store.lookup_address(&envelope.sender).await? != AddressKind::NotLocal
            }
            _ => true,
        };
        for run in runs.iter().filter(|r| r.redirects()) {
            let sender = match (&self.config.srs, local_sender) {
                (Some(srs), false) => {
                    let domain = run.target.address.rsplit_once('@').map_or("", |(_, d)| d);
                    srs.forward(&envelope.sender, domain, message::date::unix_now())
                }
                _ => envelope.sender.clone(),
            };
            out.push((run.target.account, sender));
        }
        Ok(out)
    }
}
