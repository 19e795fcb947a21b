//! Sieve at final delivery: each local account's active script (after the
//! site's scripts, if any, and before its JMAP vacation response's, kept
//! as a script: `store::VACATION_SCRIPT`) runs once on the message as the
//! account gets it, spam verdict field on top. Scripts are compiled once per text and
//! kept ([`ScriptCache`]).
//!
//! Loops and floods: a message that already carries `Delivered-To:` this
//! account has been through here (Postfix's rule), and may not be
//! redirected again; an account that redirected more than
//! [`SieveConfig::max_redirects_per_hour`] messages in the last hour keeps
//! the message instead. Either way the run counts as a runtime error
//! (RFC 5228 §2.10.6): the implicit keep, and a log line.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use message::spool::Spooled;
use sieve::{Action, Outcome, Script};
use store::{AccountId, Store};

use crate::{Envelope, LocalTarget, Mda, Verdict};

/// The site's Sieve settings.
#[derive(Clone)]
pub struct SieveConfig {
    /// Run before every account's own script (the administrator's policy).
    pub before: Vec<Arc<Script>>,
    /// Scripts a user's script may `include :global` (RFC 6609), by name.
    pub global: BTreeMap<String, Arc<Script>>,
    pub limits: sieve::Limits,
    /// Messages one account may redirect in an hour (its other sending counts).
    pub max_redirects_per_hour: u64,
}

impl Default for SieveConfig {
    fn default() -> Self {
        SieveConfig {
            before: Vec::new(),
            global: BTreeMap::new(),
            limits: sieve::Limits::default(),
            max_redirects_per_hour: 100,
        }
    }
}

/// Compiled scripts by the digest of their text: a script is compiled once,
/// not once per message. Bounded: full, it starts over.
#[derive(Default)]
pub struct ScriptCache {
    map: Mutex<HashMap<[u8; 32], Arc<Script>>>,
}

const CACHE_ENTRIES: usize = 10_000;

impl ScriptCache {
    pub fn compile(&self, text: &str) -> Result<Arc<Script>, sieve::SyntaxError> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
        if let Some(s) = self.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(s);
        }
        let script = Arc::new(sieve::compile(text)?);
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= CACHE_ENTRIES {
                m.clear();
            }
            m.insert(key, script.clone());
        }
        Ok(script)
    }
}

/// One account's filtering of the message.
pub(crate) struct Run {
    pub target: LocalTarget,
    /// The recipient address (as given at RCPT) that reached the account.
    pub rcpt: String,
    pub notify: Option<String>,
    pub orcpt: Option<String>,
    pub verdict: Option<Verdict>,
    /// None: no script; the message goes where it would without Sieve.
    pub outcome: Option<Outcome>,
}

impl Run {
    pub fn rejection(&self) -> Option<&str> {
        self.outcome.as_ref()?.actions.iter().find_map(|a| match a {
            Action::Reject { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
    }

    pub fn redirects(&self) -> bool {
        self.outcome.as_ref().is_some_and(|o| {
            o.actions
                .iter()
                .any(|a| matches!(a, Action::Redirect { .. }))
        })
    }
}

/// RFC 5429 §2.1: the SMTP reply can refuse the message only when every
/// account refused it and nothing else takes it.
pub(crate) fn refused_by_all(runs: &[Run], others: bool) -> Option<String> {
    if runs.is_empty() || others {
        return None;
    }
    let reasons: Option<Vec<&str>> = runs.iter().map(Run::rejection).collect();
    reasons.map(|r| r.first().copied().unwrap_or("").to_string())
}

/// The store as the interpreter asks it things.
struct StoreHost<'a> {
    store: &'a dyn Store,
    /// None: no account (a dry run for an address that is not one).
    account: Option<AccountId>,
    now: i64,
    global: &'a BTreeMap<String, Arc<Script>>,
    cache: &'a ScriptCache,
}

#[async_trait::async_trait]
impl sieve::Host for StoreHost<'_> {
    async fn mailbox_exists(&self, name: &str) -> bool {
        if name.eq_ignore_ascii_case("INBOX") {
            return true;
        }
        let Some(account) = self.account else {
            return false;
        };
        matches!(self.store.mailbox(account, name).await, Ok(Some(_)))
    }

    async fn seen(&self, id: &str) -> bool {
        let Some(account) = self.account else {
            return false;
        };
        self.store
            .sieve_seen(account, id, self.now)
            .await
            .unwrap_or(false)
    }

    async fn script(&self, name: &str, global: bool) -> Result<Option<Arc<Script>>, String> {
        if global {
            return Ok(self.global.get(name).cloned());
        }
        let Some(account) = self.account else {
            return Ok(None);
        };
        match self.store.sieve_get(account, name).await {
            Ok(Some(text)) => self
                .cache
                .compile(&text)
                .map(Some)
                .map_err(|e| e.to_string()),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Mda {
    /// Every local account's run, once per account. A held message
    /// (FUTURERELEASE) is filtered when it is released.
    pub(crate) async fn filter_all(
        &self,
        envelope: &Envelope,
        data: &Spooled,
        now: i64,
    ) -> Vec<Run> {
        let mut runs: Vec<Run> = Vec::new();
        if envelope.queue_options.release_at.is_some() {
            return runs;
        }
        for r in &envelope.recipients {
            for t in &r.local {
                if runs.iter().any(|x| x.target.account == t.account) {
                    continue;
                }
                let verdict = envelope
                    .verdicts
                    .iter()
                    .find(|v| v.account == t.account)
                    .cloned();
                let outcome = self
                    .filter(t, &r.address, envelope, data, verdict.as_ref(), now)
                    .await;
                runs.push(Run {
                    target: t.clone(),
                    rcpt: r.address.clone(),
                    notify: r.notify.clone(),
                    orcpt: r.orcpt.clone(),
                    verdict,
                    outcome,
                });
            }
        }
        runs
    }

    /// The scripts that apply to an account: the site's, then its own
    /// active one, then its JMAP vacation response's (a script that does
    /// not compile is skipped, with a warning).
    async fn scripts_for(&self, t: &LocalTarget) -> Vec<Arc<Script>> {
        let mut scripts = self.config.sieve.before.clone();
        match self.store.sieve_delivery(t.account).await {
            Ok(own) => {
                for (name, text) in own {
                    match self.scripts.compile(&text) {
                        Ok(s) => scripts.push(s),
                        Err(e) => {
                            tracing::warn!(account = %t.address, script = %name, error = %e, "sieve: a script does not compile")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(account = %t.address, error = %e, "sieve: cannot read the account's scripts")
            }
        }
        scripts
    }

    async fn filter(
        &self,
        t: &LocalTarget,
        rcpt: &str,
        envelope: &Envelope,
        data: &Spooled,
        verdict: Option<&Verdict>,
        now: i64,
    ) -> Option<Outcome> {
        let scripts = self.scripts_for(t).await;
        if scripts.is_empty() {
            return None;
        }
        let mut ctx = sieve::Context::new(&t.address, &envelope.sender, rcpt, now);
        ctx.auth = envelope.submitter.clone();
        ctx.spam = verdict.and_then(|v| v.spam);
        ctx.separator = self.config.subaddress_separator;
        ctx.limits = self.config.sieve.limits.clone();
        ctx.environment
            .push(("host".into(), self.config.hostname.clone()));
        if let Some((_, domain)) = t.address.rsplit_once('@') {
            ctx.environment.push(("domain".into(), domain.to_string()));
        }
        // The script sees the message with our verdict on top; a large
        // one stays in its spool (C-FT9: read whole only when small).
        let top = verdict
            .map(|v| v.field.clone().into_bytes())
            .unwrap_or_default();
        let view = sieve::mail::Mail::spooled(top, data.clone());
        let host = StoreHost {
            store: self.store.as_ref(),
            account: Some(t.account),
            now,
            global: &self.config.sieve.global,
            cache: &self.scripts,
        };
        let mut outcome = sieve::run(&scripts, view, &ctx, &host).await;
        if outcome
            .actions
            .iter()
            .any(|a| matches!(a, Action::Redirect { .. }))
            && let Some(why) = self.redirect_refusal(t, data.header(), now).await
        {
            outcome = Outcome {
                actions: vec![Action::Keep {
                    flags: Vec::new(),
                    content: None,
                    implicit: true,
                }],
                track: Vec::new(),
                error: Some(why),
            };
        }
        Some(outcome)
    }

    /// Why this account may not redirect this message now, if it may not.
    async fn redirect_refusal(&self, t: &LocalTarget, data: &[u8], now: i64) -> Option<String> {
        let looped = message::header::fields_named(data, "Delivered-To")
            .iter()
            .any(|f| f.unfolded().eq_ignore_ascii_case(&t.address));
        if looped {
            return Some(format!(
                "mail loop: the message was delivered to {} before",
                t.address
            ));
        }
        let sent = self
            .store
            .sending_stats(&t.address, now)
            .await
            .map(|s| s.messages_last_hour)
            .unwrap_or(0);
        let max = self.config.sieve.max_redirects_per_hour;
        (sent >= max).then(|| {
            format!(
                "redirect: {} sent {sent} messages in the last hour (limit {max})",
                t.address
            )
        })
    }
}

impl Mda {
    /// What `script` does with `data` sent from `from` to `to`, delivering
    /// nothing (`tern sieve test`). When `to` is an account, its mailboxes,
    /// scripts and tracked ids answer the script's questions.
    pub async fn dry_run(
        &self,
        script: Arc<Script>,
        data: Spooled,
        from: &str,
        to: &str,
        now: i64,
    ) -> Outcome {
        let account = match message::Mailbox::parse(to) {
            Ok(m) => match self.store.lookup_address(&m.key()).await {
                Ok(store::AddressKind::Account(a)) => Some(a.id),
                _ => None,
            },
            Err(_) => None,
        };
        let mut ctx = sieve::Context::new(to, from, to, now);
        ctx.separator = self.config.subaddress_separator;
        ctx.limits = self.config.sieve.limits.clone();
        let host = StoreHost {
            store: self.store.as_ref(),
            account,
            now,
            global: &self.config.sieve.global,
            cache: &self.scripts,
        };
        let view = sieve::mail::Mail::spooled(Vec::new(), data);
        sieve::run(&[script], view, &ctx, &host).await
    }
}
