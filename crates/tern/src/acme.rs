//! Certificates from an ACME CA (RFC 8555), obtained and renewed while the
//! server runs, served by every TLS listener from the next handshake on
//! (`net::tls::Certificates`): no restart, open connections keep theirs.
//!
//! - Challenges: http-01 (§8.3) on the http listener, tls-alpn-01 (RFC 8737)
//!   on the https one; whichever the listeners allow, http-01 first.
//! - Files in `data_dir/acme`: `account.json` (the account's credentials),
//!   `cert.pem` and `key.pem` (what is served), `next-key.pem`: the key the
//!   next certificate will have, made one renewal ahead so that its DANE
//!   record (`TLSA 3 1 1`, printed by `tern dns records`) is published
//!   before it is used (RFC 7671 §8.1). Keys and credentials are 0600.
//! - Renewal when less than `renew_before` is left (30 days by default); a
//!   failure is logged and tried again after 5 s, doubling with each
//!   failure up to an hour (CAs limit failed validations: Let's Encrypt
//!   allows five an hour per name), never by stopping the server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use net::tls::{Certificates, Identity};

use crate::config::{AcmeSettings, Config};

/// What the ACME client needs from the server.
pub struct Acme {
    settings: AcmeSettings,
    names: Vec<String>,
    dir: PathBuf,
    certs: Arc<Certificates>,
    http01: Option<Arc<web::Http01>>,
    tls_alpn01: bool,
}

/// The directory of the ACME files.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("acme")
}

/// The certificate obtained on an earlier run, if there is one whose key
/// is the one beside it (a crash between writing the two leaves a pair
/// that does not match: then none, and a new one is ordered).
pub fn stored(data_dir: &Path) -> Option<Identity> {
    let d = dir(data_dir);
    let identity = Identity::load(&d.join("cert.pem"), &d.join("key.pem")).ok()?;
    net::tls::Certificates::new(&identity).ok()?;
    Some(identity)
}

/// The SubjectPublicKeyInfo DER of the key the next certificate will
/// have, if one is ready (for its TLSA record).
pub fn next_key_spki(data_dir: &Path) -> Option<Vec<u8>> {
    let pem = std::fs::read_to_string(dir(data_dir).join("next-key.pem")).ok()?;
    let key = rcgen::KeyPair::from_pem(&pem).ok()?;
    Some(rcgen::PublicKeyData::subject_public_key_info(&key))
}

impl Acme {
    pub fn new(
        config: &Config,
        settings: &AcmeSettings,
        certs: Arc<Certificates>,
        http01: Option<Arc<web::Http01>>,
    ) -> Acme {
        Acme {
            settings: settings.clone(),
            names: settings.names(&config.hostname),
            dir: dir(&config.data_dir),
            certs,
            http01,
            tls_alpn01: config.listeners.https.is_some(),
        }
    }

    /// Obtain a certificate when none is there or it is due for renewal,
    /// then sleep until the next one is due; for the life of the server.
    pub async fn run(self) {
        let mut failures = 0u32;
        loop {
            let wait = match self.time_left() {
                Some(left) if left > self.settings.renew_before.0 => {
                    left - self.settings.renew_before.0
                }
                _ => match self.obtain().await {
                    Ok(()) => {
                        failures = 0;
                        continue;
                    }
                    Err(e) => {
                        metrics::counter!("tern_acme_failures_total").increment(1);
                        tracing::warn!(error = %e, names = ?self.names, "ACME: no certificate; trying again later");
                        failures = failures.saturating_add(1);
                        retry_after(failures)
                    }
                },
            };
            tokio::time::sleep(wait.min(Duration::from_secs(86_400))).await;
        }
    }

    /// How long the stored certificate has left (None: there is none, or
    /// its key is not beside it).
    fn time_left(&self) -> Option<Duration> {
        stored(self.dir.parent()?)?;
        let left = not_after(&self.dir.join("cert.pem"))? - message::date::unix_now();
        Some(Duration::from_secs(left.max(0) as u64))
    }

    /// One order (RFC 8555 §7.4): the account, the challenges, the CSR
    /// with the prepared next key, the certificate; then it is served.
    async fn obtain(&self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .names
            .iter()
            .map(|n| Identifier::Dns(n.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let mut answered = Vec::new();
        let outcome = self.answer_challenges(&mut order, &mut answered).await;
        let ready = match outcome {
            Ok(()) => order
                .poll_ready(&RetryPolicy::new().timeout(Duration::from_secs(120)))
                .await
                .map_err(|e| format!("waiting for validation: {e}")),
            Err(e) => Err(e),
        };
        self.withdraw(&answered);
        let status = ready?;
        if status != OrderStatus::Ready {
            return Err(format!("the order is {status:?}, not ready"));
        }
        let key = self.next_key()?;
        let mut params =
            rcgen::CertificateParams::new(self.names.clone()).map_err(|e| e.to_string())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| format!("CSR: {e}"))?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain = order
            .poll_certificate(&RetryPolicy::new().timeout(Duration::from_secs(120)))
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        self.install(&chain, &key.serialize_pem())?;
        tracing::info!(names = ?self.names, "ACME: new certificate installed");
        Ok(())
    }

    /// The account from `account.json`, or a new one (kept there).
    async fn account(&self) -> Result<Account, String> {
        let builder = || match &self.settings.ca_file {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        let path = self.dir.join("account.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let credentials: AccountCredentials =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            return builder()
                .map_err(|e| e.to_string())?
                .from_credentials(credentials)
                .await
                .map_err(|e| format!("account: {e}"));
        }
        let contact: Vec<&str> = self.settings.contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()
            .map_err(|e| e.to_string())?
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await
            .map_err(|e| format!("new account: {e}"))?;
        let json = serde_json::to_vec(&credentials).map_err(|e| e.to_string())?;
        net::tls::write_private(&path, &json).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(account)
    }

    /// Put up the answer to each pending authorization (http-01 when the
    /// http listener is on, else tls-alpn-01) and tell the CA.
    async fn answer_challenges(
        &self,
        order: &mut instant_acme::Order,
        answered: &mut Vec<(ChallengeType, String, String)>,
    ) -> Result<(), String> {
        let mut authorizations = order.authorizations();
        while let Some(next) = authorizations.next().await {
            let mut authz = next.map_err(|e| format!("authorization: {e}"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(format!("authorization is {other:?}")),
            }
            let kind = match (&self.http01, self.tls_alpn01) {
                (Some(_), _) => ChallengeType::Http01,
                (None, true) => ChallengeType::TlsAlpn01,
                (None, false) => return Err("no listener for a challenge".into()),
            };
            let mut challenge = authz
                .challenge(kind.clone())
                .ok_or_else(|| format!("the CA offers no {kind:?} challenge"))?;
            let name = challenge.identifier().to_string();
            let key_authorization = challenge.key_authorization();
            match (&kind, &self.http01) {
                (ChallengeType::Http01, Some(tokens)) => {
                    tokens.set(&challenge.token, Some(key_authorization.as_str()));
                    answered.push((kind.clone(), challenge.token.clone(), name));
                }
                _ => {
                    let cert = alpn_certificate(&name, key_authorization.digest().as_ref())?;
                    self.certs
                        .set_challenge(&name, Some(&cert))
                        .map_err(|e| e.to_string())?;
                    answered.push((kind.clone(), String::new(), name));
                }
            }
            challenge
                .set_ready()
                .await
                .map_err(|e| format!("challenge: {e}"))?;
        }
        Ok(())
    }

    /// Take the challenge answers down again.
    fn withdraw(&self, answered: &[(ChallengeType, String, String)]) {
        for (kind, token, name) in answered {
            match (kind, &self.http01) {
                (ChallengeType::Http01, Some(tokens)) => tokens.set(token, None),
                _ => {
                    let _ = self.certs.set_challenge(name, None);
                }
            }
        }
    }

    /// The key prepared for this certificate (its TLSA already published),
    /// or a new one the first time.
    fn next_key(&self) -> Result<rcgen::KeyPair, String> {
        let path = self.dir.join("next-key.pem");
        match std::fs::read_to_string(&path) {
            Ok(pem) => {
                rcgen::KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(_) => rcgen::KeyPair::generate().map_err(|e| e.to_string()),
        }
    }

    /// Keep the certificate and its key, serve them, and prepare the key
    /// after this one.
    fn install(&self, chain: &str, key: &str) -> Result<(), String> {
        let identity = Identity::from_pem(chain, key).map_err(|e| e.to_string())?;
        let write = |name: &str, data: &[u8], private: bool| {
            let tmp = self.dir.join(format!("{name}.new"));
            let done = if private {
                net::tls::write_private(&tmp, data)
            } else {
                std::fs::write(&tmp, data)
            };
            done.and_then(|()| std::fs::rename(&tmp, self.dir.join(name)))
                .map_err(|e| format!("{}: {e}", self.dir.join(name).display()))
        };
        write("key.pem", key.as_bytes(), true)?;
        write("cert.pem", chain.as_bytes(), false)?;
        self.certs.replace(&identity).map_err(|e| e.to_string())?;
        let next = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        write("next-key.pem", next.serialize_pem().as_bytes(), true)
    }
}

/// The wait after the `failures`-th failure in a row: 5 s, doubling, at
/// most an hour.
fn retry_after(failures: u32) -> Duration {
    let doubled = 5u64.saturating_mul(1 << failures.saturating_sub(1).min(20));
    Duration::from_secs(doubled.min(3600))
}

/// The tls-alpn-01 certificate (RFC 8737 §3): self-signed for the name,
/// with the critical acmeIdentifier extension holding the SHA-256 of the
/// key authorization.
fn alpn_certificate(name: &str, digest: &[u8]) -> Result<Identity, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec![name.to_string()]).map_err(|e| e.to_string())?;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Identity::from_pem(&cert.pem(), &key.serialize_pem()).map_err(|e| e.to_string())
}

/// When the first certificate of a PEM file expires (Unix time).
pub fn not_after(path: &Path) -> Option<i64> {
    let pem = std::fs::read(path).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests {
    #[test]
    fn retries_back_off_to_an_hour() {
        let waits: Vec<u64> = (1..=12).map(|n| super::retry_after(n).as_secs()).collect();
        assert_eq!(waits[..5], [5, 10, 20, 40, 80]);
        assert_eq!(waits[11], 3600);
    }
}
