//! Authentication for every protocol: password credentials (`credentials`),
//! SASL mechanisms (`sasl`), brute-force throttling (`throttle`), and the
//! [`Authenticator`] that ties them to the store.
//!
//! Implementation notes
//! - Argon2id is slow on purpose; at most `hasher::THREADS` hashes run at once,
//!   on dedicated threads that reuse their memory (hardening.md C-AU4), so a
//!   flood of logins can neither starve the sessions nor swell the process.
//! - A login for a user that does not exist still computes one Argon2 hash, so
//!   the answer takes as long as for a wrong password (C-AU3).
//! - Verified logins are remembered in memory as HMAC(process secret, password)
//!   next to the stored hash they were checked against: the next login with the
//!   same password skips Argon2 until the password changes (the stored hash
//!   then differs). Nothing of this leaves the process.

pub mod credentials;
pub mod hasher;
pub mod sasl;
pub mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use clock::Clock;
use store::{AccountRecord, LoginStanding, Store, StoreError};
use subtle::ConstantTimeEq;

pub use credentials::{ScramKeys, derive, prepare, verify};
pub use sasl::{Exchange, Mechanism, SaslError, Step};
pub use throttle::ThrottleConfig;

const CACHE_ENTRIES: usize = 10_000;

/// Where a SASL exchange stands after one step (see [`Authenticator::advance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Send this challenge and wait for the client's answer.
    Challenge(Vec<u8>),
    /// The exchange is over.
    Done(Verdict),
    /// The client's response did not parse.
    Malformed,
}

/// The outcome of one authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success(AccountRecord),
    /// Wrong user or password (the reply never says which). `blocked`: this failure
    /// blocked the client IP, so the protocol should close the connection.
    Denied {
        blocked: bool,
    },
    /// The client IP is blocked for now: "try later", then close.
    Blocked,
    /// The store could not answer: "try later".
    TemporaryFailure,
}

pub struct Authenticator {
    store: Arc<dyn Store>,
    throttle: ThrottleConfig,
    clock: Arc<dyn Clock>,
    hasher: hasher::Hasher,
    secret: [u8; 32],
    /// A hash of a random password, checked when the user does not exist (C-AU3).
    dummy_hash: String,
    cache: Mutex<HashMap<String, (String, [u8; 32])>>,
}

impl Authenticator {
    pub fn new(store: Arc<dyn Store>, config: ThrottleConfig) -> Authenticator {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret[..]);
        let mut dummy = [0u8; 16];
        rand::fill(&mut dummy[..]);
        let dummy_hash = derive(&format!("{dummy:?}")).password_hash;
        Authenticator {
            store,
            throttle: config,
            clock: clock::system(),
            hasher: hasher::Hasher::new(),
            secret,
            dummy_hash,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The same, on another clock (tests move time instead of sleeping).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Authenticator {
        self.clock = clock;
        self
    }

    /// Carry a SASL exchange forward from `step` (what [`Exchange::respond`] said):
    /// look up SCRAM keys, check passwords, record the outcome. Every protocol's
    /// AUTH command runs its exchanges through this.
    pub async fn advance(&self, ip: IpAddr, exchange: &mut Exchange, mut step: Step) -> Progress {
        loop {
            let verdict = match step {
                Step::Challenge(data) => return Progress::Challenge(data),
                Step::NeedScramKeys { username } => match self.scram_keys(ip, &username).await {
                    Ok((keys, fake_salt)) => {
                        step = exchange.scram_keys(keys, fake_salt);
                        continue;
                    }
                    Err(verdict) => verdict,
                },
                Step::CheckPassword { username, password } => {
                    self.check_password(ip, &username, &password).await
                }
                Step::Success { username } => self.scram_finished(ip, &username, true).await,
                Step::Failed(SaslError::Failed) => match exchange.user() {
                    Some(username) => self.scram_finished(ip, username, false).await,
                    None => Verdict::Denied { blocked: false },
                },
                Step::Failed(SaslError::AuthzidMismatch) => Verdict::Denied { blocked: false },
                Step::Failed(SaslError::Malformed | SaslError::Cancelled) => {
                    return Progress::Malformed;
                }
            };
            return Progress::Done(verdict);
        }
    }

    /// Whether this client may not even try right now. (When the store
    /// cannot say, the attempt itself will answer "try later".)
    pub async fn is_blocked(&self, ip: IpAddr) -> bool {
        let now = self.clock.now();
        self.store
            .login_standing(
                &net::cidr::client_key(ip),
                "",
                now,
                &self.throttle.windows(),
            )
            .await
            .is_ok_and(|standing| standing.blocked(now))
    }

    /// Check a user name and password (PLAIN, LOGIN, IMAP LOGIN, POP3 USER/PASS).
    pub async fn check_password(&self, ip: IpAddr, username: &str, password: &str) -> Verdict {
        let account = canonical_username(username);
        let standing = match self.before_attempt(ip, &account).await {
            Ok(standing) => standing,
            Err(v) => return v,
        };
        let creds = match self.store.account_credentials(&account).await {
            Ok(c) => c,
            Err(e) => return temporary(e),
        };
        let (hash, record) = match creds {
            Some(c) => (c.credentials.password_hash, Some(c.account)),
            None => (self.dummy_hash.clone(), None),
        };
        // SASLprep (RFC 4013), as the stored hash was made; a hash made before
        // Tern prepared passwords may still hold the raw form.
        let prepared = prepare(password).ok();
        let mut matches = match &prepared {
            Some(p) => self.password_matches(&account, p, &hash).await,
            None => false,
        };
        if !matches && prepared.as_deref() != Some(password) && record.is_some() {
            matches = self.password_matches(&account, password, &hash).await;
        }
        let matches = matches && record.is_some();
        self.after_attempt(ip, &account, Some(standing), record.filter(|_| matches))
            .await
    }

    /// Check a bearer token (RFC 6750; JMAP's programs): throttled like a
    /// password, the failures counted against the client address.
    pub async fn check_token(&self, ip: IpAddr, token: &str) -> Verdict {
        const WHO: &str = "(bearer token)";
        let standing = match self.before_attempt(ip, WHO).await {
            Ok(standing) => standing,
            Err(v) => return v,
        };
        let found = match self.store.token_account(token_digest(token)).await {
            Ok(found) => found,
            Err(e) => return temporary(e),
        };
        self.after_attempt(ip, WHO, Some(standing), found).await
    }

    /// The SCRAM keys of a user, or None (with a made-up salt that is stable per user,
    /// so probing twice does not reveal that the user is unknown).
    pub async fn scram_keys(
        &self,
        ip: IpAddr,
        username: &str,
    ) -> Result<(Option<ScramKeys>, [u8; 16]), Verdict> {
        let account = canonical_username(username);
        self.before_attempt(ip, &account).await?;
        let fake = credentials::hmac(&self.secret, account.as_bytes());
        let mut fake_salt = [0u8; 16];
        fake_salt.copy_from_slice(&fake[..16]);
        match self.store.account_credentials(&account).await {
            Ok(c) => Ok((
                c.and_then(|c| ScramKeys::decode(&c.credentials.scram_sha256)),
                fake_salt,
            )),
            Err(e) => Err(temporary(e)),
        }
    }

    /// Finish a SCRAM exchange: record it, and look the account up on success.
    pub async fn scram_finished(&self, ip: IpAddr, username: &str, success: bool) -> Verdict {
        let account = canonical_username(username);
        let record = if success {
            match self.store.account_credentials(&account).await {
                Ok(c) => c.map(|c| c.account),
                Err(e) => return temporary(e),
            }
        } else {
            None
        };
        self.after_attempt(ip, &account, None, record).await
    }

    /// What this attempt faces: "try later" when the IP is blocked or the
    /// store cannot say; otherwise its standing, after the account's delay.
    async fn before_attempt(&self, ip: IpAddr, account: &str) -> Result<LoginStanding, Verdict> {
        let now = self.clock.now();
        let standing = self
            .store
            .login_standing(
                &net::cidr::client_key(ip),
                account,
                now,
                &self.throttle.windows(),
            )
            .await
            .map_err(temporary)?;
        if standing.blocked(now) {
            metrics::counter!("tern_auth_total", "result" => "blocked").increment(1);
            return Err(Verdict::Blocked);
        }
        let delay = self.throttle.account_delay(&standing);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(standing)
    }

    /// Record the outcome in the store (every node sees it). A success
    /// writes only when it changes something (`before`: the standing the
    /// attempt faced, when known): an IP with failures to forgive, or one
    /// the account has not logged in from.
    async fn after_attempt(
        &self,
        ip: IpAddr,
        account: &str,
        before: Option<LoginStanding>,
        success: Option<AccountRecord>,
    ) -> Verdict {
        let now = self.clock.now();
        let client = net::cidr::client_key(ip);
        match success {
            Some(record) => {
                let unchanged = before.is_some_and(|b| b.known_client && b.client_failures == 0);
                if !unchanged
                    && let Err(e) = self.store.login_succeeded(&client, account, now).await
                {
                    tracing::warn!(error = %e, "authentication: cannot record a success");
                }
                tracing::info!(user = %record.address, %ip, "authenticated");
                metrics::counter!("tern_auth_total", "result" => "success").increment(1);
                Verdict::Success(record)
            }
            None => {
                let windows = self.throttle.windows();
                let blocked = match self
                    .store
                    .login_failed(&client, account, now, &windows)
                    .await
                {
                    Ok(after) => after.blocked(now),
                    Err(e) => {
                        tracing::warn!(error = %e, "authentication: cannot count a failure");
                        false
                    }
                };
                tracing::warn!(user = %escape(account), %ip, blocked, "authentication failed");
                metrics::counter!("tern_auth_total", "result" => "failure").increment(1);
                tokio::time::sleep(self.throttle.failure_delay).await;
                Verdict::Denied { blocked }
            }
        }
    }

    /// Forget failures that no longer count (run now and then; any node).
    pub async fn expire_failures(&self) -> store::Result<u64> {
        self.store
            .expire_login_failures(self.clock.now(), &self.throttle.windows())
            .await
    }

    async fn password_matches(&self, account: &str, password: &str, hash: &str) -> bool {
        let digest = credentials::hmac(&self.secret, password.as_bytes());
        if let Ok(cache) = self.cache.lock()
            && let Some((cached_hash, cached_digest)) = cache.get(account)
            && cached_hash == hash
        {
            return bool::from(cached_digest.ct_eq(&digest));
        }
        let ok = self.hasher.verify(password, hash).await;
        if ok && let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(account.to_string(), (hash.to_string(), digest));
        }
        ok
    }
}

/// A new bearer token: `tern_` and 32 random octets, base64url.
pub fn new_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    format!(
        "tern_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a token: its SHA-256 digest.
pub fn token_digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Accounts are named by their address; compare them in canonical form
/// (after SASLprep, RFC 4616 §2, RFC 5802 §2.2). A name with a control
/// character is no address: its characters are escaped, so that it names
/// no account and is a key the store can hold (PostgreSQL's text holds no
/// NUL) for counting the failure.
fn canonical_username(username: &str) -> String {
    let username = prepare(username).unwrap_or_else(|_| username.to_string());
    match message::Mailbox::parse(&username) {
        Ok(m) => m.key(),
        Err(_) if username.chars().any(char::is_control) => {
            username.chars().flat_map(char::escape_default).collect()
        }
        Err(_) => username.to_lowercase(),
    }
}

fn temporary(e: StoreError) -> Verdict {
    tracing::warn!(error = %e, "authentication: store unavailable");
    Verdict::TemporaryFailure
}

/// Client-supplied text for a log line: printable, bounded.
fn escape(s: &str) -> String {
    s.chars().take(128).flat_map(char::escape_default).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    /// A user name goes to the store as the key of the account and of the
    /// throttle: one with a control character (a NUL from AUTH LOGIN's
    /// base64 or SCRAM's `n=`) names no account, and PostgreSQL's text
    /// cannot hold a NUL, so such a name must fail as a wrong name, counted,
    /// not as "try later".
    #[test]
    fn a_user_name_is_a_key_the_store_can_hold() {
        for name in ["u\0@a.test", "\0", "U\u{1}x@A.test", "a\r\nb"] {
            let key = canonical_username(name);
            assert!(!key.chars().any(char::is_control), "{name:?} → {key:?}");
            assert_ne!(key, canonical_username("u@a.test"));
        }
        assert_eq!(canonical_username("U@A.test"), "u@a.test");
    }

    /// C-AU1 on a clock the test moves: a success forgives the address's
    /// failures; at its limit the address is blocked, even for the right
    /// password, until the block runs out.
    #[tokio::test]
    async fn blocked_at_the_limit_until_the_block_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&store::Backend::Sqlite(dir.path().into())).unwrap();
        store.add_domain("a.test").await.unwrap();
        store
            .add_account("u@a.test", derive("right"))
            .await
            .unwrap();
        let clock = clock::ManualClock::at(1_000_000);
        let config = ThrottleConfig {
            failure_delay: Duration::ZERO,
            ip_max_failures: 2,
            ..Default::default()
        };
        let auth = Authenticator::new(store, config).with_clock(Arc::new(clock.clone()));
        let ip = IpAddr::from([10, 0, 0, 1]);
        let denied = |blocked| Verdict::Denied { blocked };
        assert_eq!(
            auth.check_password(ip, "u@a.test", "wrong").await,
            denied(false)
        );
        let right = auth.check_password(ip, "u@a.test", "right").await;
        assert!(matches!(right, Verdict::Success(_)), "{right:?}");
        assert_eq!(
            auth.check_password(ip, "u@a.test", "wrong").await,
            denied(false)
        );
        assert_eq!(
            auth.check_password(ip, "u@a.test", "wrong").await,
            denied(true)
        );
        assert!(auth.is_blocked(ip).await);
        assert!(!auth.is_blocked(IpAddr::from([10, 0, 0, 2])).await);
        let refused = auth.check_password(ip, "u@a.test", "right").await;
        assert_eq!(refused, Verdict::Blocked);
        clock.advance(900);
        let freed = auth.check_password(ip, "u@a.test", "right").await;
        assert!(matches!(freed, Verdict::Success(_)), "{freed:?}");
        // An IPv6 client is its /64: guesses from addresses it rotates
        // through count together.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for guess in ["2001:db8:5:6::1", "2001:db8:5:6:aaaa::2"] {
            auth.check_password(v6(guess), "u@a.test", "wrong").await;
        }
        assert!(auth.is_blocked(v6("2001:db8:5:6:ffff::3")).await);
        assert!(!auth.is_blocked(v6("2001:db8:5:7::1")).await);
    }
}
