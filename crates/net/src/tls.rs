//! TLS for every listener: rustls with the ring provider, TLS 1.2 and 1.3 only,
//! AEAD suites with forward secrecy only (rustls has nothing weaker: hardening.md
//! C-TLS8, C-TLS9, C-TLS12). The certificate comes from `[tls]` or, when none is
//! configured, a self-signed pair generated once into the data directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::session::TlsInfo;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("cannot read private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("cannot create a self-signed certificate in {path}: {reason}")]
    SelfSigned { path: PathBuf, reason: String },
    #[error("TLS configuration rejected: {0}")]
    Config(String),
}

/// A certificate chain and its key, loaded once and shared by every listener.
#[derive(Debug, Clone)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl Identity {
    /// Load PEM files: the full chain and the private key (PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| TlsError::Certificate {
                path: cert.into(),
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Certificate {
                path: cert.into(),
                reason: "no certificate in the file".into(),
            });
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
            path: key.into(),
            reason: e.to_string(),
        })?;
        Ok(Identity {
            chain,
            key: Arc::new(key_der),
        })
    }

    /// From PEM text: the full chain and the private key.
    pub fn from_pem(chain: &str, key: &str) -> Result<Identity, TlsError> {
        let bad = |reason: String| TlsError::Config(format!("certificate from PEM: {reason}"));
        let chain = CertificateDer::pem_slice_iter(chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if chain.is_empty() {
            return Err(bad("no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| bad(e.to_string()))?;
        Ok(Identity {
            chain,
            key: Arc::new(key),
        })
    }

    /// The self-signed pair in `dir` (`cert.pem`, `key.pem`), created on first use for
    /// these host names.
    pub fn self_signed(dir: &Path, names: &[String]) -> Result<Identity, TlsError> {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        if !cert.exists() || !key.exists() {
            let err = |reason: String| TlsError::SelfSigned {
                path: dir.into(),
                reason,
            };
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            let generated = rcgen::generate_simple_self_signed(names.to_vec())
                .map_err(|e| err(e.to_string()))?;
            write_private(&key, generated.signing_key.serialize_pem().as_bytes())
                .map_err(|e| err(e.to_string()))?;
            std::fs::write(&cert, generated.cert.pem()).map_err(|e| err(e.to_string()))?;
            tracing::info!(cert = %cert.display(), "generated a self-signed certificate");
        }
        Identity::load(&cert, &key)
    }

    /// The chain and its signing key, as a handshake uses them; a key
    /// that is not the certificate's is refused here, not at each handshake.
    fn certified(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let certified = self.certified_unchecked()?;
        certified
            .keys_match()
            .map_err(|e| TlsError::Config(format!("the key is not the certificate's: {e}")))?;
        Ok(certified)
    }

    /// The same without the check, which parses the certificate as the
    /// WebPKI would: a tls-alpn-01 certificate's critical acmeIdentifier
    /// extension (RFC 8737 §3) fails that parse, and the pair was made
    /// together a moment before anyway.
    fn certified_unchecked(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let key = rustls::crypto::ring::sign::any_supported_type(&self.key)
            .map_err(|e| TlsError::Config(format!("the private key: {e}")))?;
        Ok(Arc::new(CertifiedKey::new(self.chain.clone(), key)))
    }

    /// A server configuration with this certificate alone (never replaced).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        Certificates::new(self)?.server_config(alpn)
    }
}

/// The ALPN id of the tls-alpn-01 challenge (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The certificate every TLS listener serves, replaceable while the server
/// runs (ACME renewal, RFC 8555): each handshake takes the current one;
/// connections already open keep theirs. It also holds the tls-alpn-01
/// challenge certificates (RFC 8737 §3), shown only to a client that asks
/// for ALPN `acme-tls/1` and the challenged name.
#[derive(Debug)]
pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Certificates {
    pub fn new(identity: &Identity) -> Result<Arc<Certificates>, TlsError> {
        Ok(Arc::new(Certificates {
            current: RwLock::new(identity.certified()?),
            challenges: RwLock::new(HashMap::new()),
        }))
    }

    /// Serve this certificate from the next handshake on.
    pub fn replace(&self, identity: &Identity) -> Result<(), TlsError> {
        let certified = identity.certified()?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = certified;
        Ok(())
    }

    /// The tls-alpn-01 certificate for `name` (None: remove it).
    pub fn set_challenge(&self, name: &str, identity: Option<&Identity>) -> Result<(), TlsError> {
        let mut challenges = self.challenges.write().unwrap_or_else(|p| p.into_inner());
        let name = name.to_ascii_lowercase();
        match identity {
            Some(i) => challenges.insert(name, i.certified_unchecked()?),
            None => challenges.remove(&name),
        };
        Ok(())
    }

    /// A server configuration answering to these ALPN ids with the
    /// current certificate.
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut ids| ids.any(|id| id == ACME_TLS_ALPN));
        if acme {
            // RFC 8737 §3: the challenge certificate, or no handshake at all.
            let name = hello.server_name()?.to_ascii_lowercase();
            let challenges = self.challenges.read().unwrap_or_else(|p| p.into_inner());
            return challenges.get(&name).cloned();
        }
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// DANE-EE association data for the first certificate of a PEM file: the
/// SHA-256 of its SubjectPublicKeyInfo, what a `TLSA 3 1 1` record
/// publishes (RFC 7671 §5.1, RFC 7672 §3.1.1). The key, not the
/// certificate: the record survives renewals that keep the key.
pub fn dane_ee_spki_sha256(cert_file: &Path) -> Result<Vec<u8>, TlsError> {
    use sha2::{Digest, Sha256};
    let bad = |reason: String| TlsError::Certificate {
        path: cert_file.into(),
        reason,
    };
    let cert = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no certificate in the file".into()))?
        .map_err(|e| bad(e.to_string()))?;
    let spki =
        subject_public_key_info(&cert).ok_or_else(|| bad("not an X.509 certificate".into()))?;
    Ok(Sha256::digest(spki).to_vec())
}

/// The SubjectPublicKeyInfo of a DER certificate, whole (tag and length
/// included): the seventh field of tbsCertificate, after the optional
/// version (RFC 5280 §4.1).
pub fn subject_public_key_info(cert: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _) = der_element(cert)?;
    let (_, mut tbs, _) = der_element(certificate)?;
    // [0] EXPLICIT version, then serialNumber, signature, issuer,
    // validity, subject: skipped.
    if tbs.first() == Some(&0xa0) {
        tbs = der_element(tbs)?.2;
    }
    for _ in 0..5 {
        tbs = der_element(tbs)?.2;
    }
    let (whole, _, _) = der_element(tbs)?;
    (tbs.first() == Some(&0x30)).then_some(whole)
}

/// One DER element at the start of `bytes`: (the element whole, its
/// contents, what follows it).
fn der_element(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let first = *bytes.get(1)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let length = bytes
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (length, 2 + n)
    };
    let end = header.checked_add(length)?;
    let whole = bytes.get(..end)?;
    Some((whole, &whole[header..], &bytes[end..]))
}

/// Write a file only its owner may read (keys, credentials), synced.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// The negotiated version and suite of an established connection (server or
/// client side).
pub fn info<D>(conn: &rustls::ConnectionCommon<D>) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_else(|| "unknown".into());
    // RFC 9266 §2: 32 octets exported with this label and no context; only
    // on TLS 1.3 (§3: TLS 1.2 needs the extended master secret).
    let channel_binding = (conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3))
        .then(|| {
            conn.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
                .ok()
                .map(|k| k.to_vec())
        })
        .flatten();
    TlsInfo {
        version,
        cipher,
        channel_binding,
    }
}

/// A TLS client that checks the server's certificate (RFC 9525 name
/// checks, by rustls-webpki) against the roots in `ca_file` (PEM), or the
/// system's (`SSL_CERT_FILE` honoured) when there is none.
pub fn verifying_client(
    ca_file: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsError::Certificate {
                    path: path.into(),
                    reason: e.to_string(),
                })?;
            for cert in certs {
                roots.add(cert).map_err(|e| TlsError::Certificate {
                    path: path.into(),
                    reason: e.to_string(),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    if roots.is_empty() {
        return Err(TlsError::Config(
            "no trust roots to check the server's certificate with (none installed)".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A TLS client for opportunistic STARTTLS (RFC 3207 §4.1, RFC 7435): any
/// certificate is accepted, since the alternative is plaintext. Destinations
/// that require authenticated TLS (DANE, MTA-STS) use a verifying config instead.
pub fn opportunistic_client(alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Checks the handshake signatures (so the peer holds the key of the certificate
/// it shows) but not who the certificate names. Other verifiers (DANE) hand
/// it the signatures, so that there is one place that checks them.
#[derive(Debug)]
pub struct AcceptAnyCertificate(pub Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key that is not the certificate's is refused when the pair is
    /// loaded (ACME's files after a crash between the two writes).
    #[test]
    fn a_key_must_be_the_certificates() {
        let one = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let two = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let pair = Identity::from_pem(&one.cert.pem(), &one.signing_key.serialize_pem()).unwrap();
        assert!(Certificates::new(&pair).is_ok());
        let mixed = Identity::from_pem(&one.cert.pem(), &two.signing_key.serialize_pem()).unwrap();
        let err = Certificates::new(&mixed).unwrap_err().to_string();
        assert!(err.contains("not the certificate's"), "{err}");
    }

    /// The SPKI found by walking the DER is the one rcgen put in.
    #[test]
    fn finds_the_subject_public_key_info() {
        let made = rcgen::generate_simple_self_signed(vec!["mx.a.test".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let der = made.cert.der();
        let spki = subject_public_key_info(der).unwrap_or_default().to_vec();
        use rcgen::PublicKeyData;
        assert_eq!(spki, made.signing_key.subject_public_key_info());
        assert_eq!(subject_public_key_info(&der[..40]), None);
        assert_eq!(
            subject_public_key_info(b"\x30\x85\xff\xff\xff\xff\xff"),
            None
        );
    }
}
