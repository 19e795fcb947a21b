//! DANE for SMTP (RFC 7672, RFC 7671, RFC 6698): the certificate an MX
//! host shows is checked against its DNSSEC-validated TLSA records instead
//! of the WebPKI.
//!
//! - Only DANE-TA(2) and DANE-EE(3) are usable for SMTP (RFC 7672 §3.1.3);
//!   PKIX-TA(0), PKIX-EE(1), unknown selectors and matching types are
//!   skipped. TLSA records that are all unusable still make TLS mandatory,
//!   without authentication (RFC 7672 §2.2).
//! - DANE-EE(3): the end-entity certificate (selector 0) or its public key
//!   (selector 1) matches; no name, no validity dates (RFC 7672 §3.1.1).
//! - DANE-TA(2): a certificate of the chain the server sent matches, the
//!   chain from the end-entity up to it verifies with it as trust anchor,
//!   and the end-entity names the MX host (RFC 7672 §3.1.2, §3.2.2).
//! - Matching types: 0 exact, 1 SHA-256, 2 SHA-512 (RFC 6698 §2.1.3).

use std::sync::Arc;

use dns::dnssec::Tlsa;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The TLS client for one MX host with TLSA records.
pub fn client(records: Vec<Tlsa>, host: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = DaneVerifier {
        records: records.into_iter().filter(usable).collect(),
        host: host.trim_end_matches('.').to_ascii_lowercase(),
        signatures: net::tls::AcceptAnyCertificate(provider.clone()),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// RFC 7672 §3.1.3: DANE-TA(2) and DANE-EE(3), selectors 0 and 1,
/// matching types 0, 1 and 2.
pub fn usable(t: &Tlsa) -> bool {
    matches!(t.usage, 2 | 3) && t.selector <= 1 && t.matching <= 2
}

#[derive(Debug)]
struct DaneVerifier {
    records: Vec<Tlsa>,
    /// The MX host name: the reference identifier for DANE-TA (RFC 7672 §3.2.2).
    host: String,
    signatures: net::tls::AcceptAnyCertificate,
}

impl DaneVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), String> {
        if self.records.is_empty() {
            // RFC 7672 §2.2: only unusable records: encrypt, do not authenticate.
            return Ok(());
        }
        let ee_records = self.records.iter().filter(|t| t.usage == 3);
        if ee_records.clone().any(|t| matches(t, end_entity)) {
            return Ok(());
        }
        let mut failure = None;
        for t in self.records.iter().filter(|t| t.usage == 2) {
            for anchor in intermediates.iter().filter(|c| matches(t, c)) {
                match self.chain_to(anchor, end_entity, intermediates, now) {
                    Ok(()) => return Ok(()),
                    Err(e) => failure = Some(e),
                }
            }
        }
        Err(failure
            .unwrap_or_else(|| "no TLSA record matches the certificate chain (RFC 7672 §3)".into()))
    }

    /// DANE-TA(2): the chain from the end-entity verifies up to `anchor`,
    /// and the end-entity names the MX host.
    fn chain_to(
        &self,
        anchor: &CertificateDer<'_>,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), String> {
        let anchors = [webpki::anchor_from_trusted_cert(anchor)
            .map_err(|e| format!("the TLSA-matched certificate: {e}"))?];
        let ee = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|e| format!("the server certificate: {e}"))?;
        let algorithms = self.signatures.0.signature_verification_algorithms.all;
        ee.verify_for_usage(
            algorithms,
            &anchors,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| format!("DANE-TA chain: {e}"))?;
        let name = ServerName::try_from(self.host.clone())
            .map_err(|_| format!("{} is not a host name", self.host))?;
        ee.verify_is_valid_for_subject_name(&name)
            .map_err(|e| format!("DANE-TA: the certificate does not name {}: {e}", self.host))
    }
}

/// Whether a certificate matches a TLSA record (RFC 6698 §2.1.2, §2.1.3).
fn matches(t: &Tlsa, cert: &CertificateDer<'_>) -> bool {
    t.matches(cert.as_ref(), net::tls::subject_public_key_info(cert))
}

impl ServerCertVerifier for DaneVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now)
            .map(|()| ServerCertVerified::assertion())
            .map_err(|e| rustls::Error::General(format!("DANE: {e}")))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    fn tlsa(usage: u8, selector: u8, matching: u8, data: Vec<u8>) -> Tlsa {
        Tlsa {
            usage,
            selector,
            matching,
            data,
        }
    }

    fn verifier(records: Vec<Tlsa>, host: &str) -> DaneVerifier {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        DaneVerifier {
            records: records.into_iter().filter(usable).collect(),
            host: host.into(),
            signatures: net::tls::AcceptAnyCertificate(provider),
        }
    }

    /// A CA and a server certificate it issued for `name`.
    fn chain(name: &str) -> (CertificateDer<'static>, CertificateDer<'static>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let ee = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (ee.der().clone(), ca_cert.der().clone())
    }

    #[test]
    fn dane_ee_by_key_or_certificate_any_hash() {
        let (ee, _) = chain("mx.a.test");
        let spki = net::tls::subject_public_key_info(&ee).unwrap().to_vec();
        let now = UnixTime::now();
        for record in [
            tlsa(3, 1, 1, sha2::Sha256::digest(&spki).to_vec()),
            tlsa(3, 1, 2, sha2::Sha512::digest(&spki).to_vec()),
            tlsa(3, 0, 0, ee.to_vec()),
            tlsa(3, 0, 1, sha2::Sha256::digest(&ee).to_vec()),
        ] {
            // DANE-EE ignores names (RFC 7672 §3.1.1): any host.
            assert_eq!(
                verifier(vec![record], "other.test").check(&ee, &[], now),
                Ok(())
            );
        }
        let wrong = tlsa(3, 1, 1, vec![0; 32]);
        assert!(
            verifier(vec![wrong], "mx.a.test")
                .check(&ee, &[], now)
                .is_err()
        );
    }

    #[test]
    fn dane_ta_needs_the_chain_and_the_name() {
        let (ee, ca) = chain("mx.a.test");
        let now = UnixTime::now();
        let ta = tlsa(2, 0, 1, sha2::Sha256::digest(&ca).to_vec());
        let sent = [ca.clone()];
        assert_eq!(
            verifier(vec![ta.clone()], "mx.a.test").check(&ee, &sent, now),
            Ok(())
        );
        let err = verifier(vec![ta.clone()], "mx.b.test").check(&ee, &sent, now);
        assert!(err.unwrap_err().contains("does not name"));
        // The TA not sent: nothing to match.
        assert!(
            verifier(vec![ta], "mx.a.test")
                .check(&ee, &[], now)
                .is_err()
        );
        // Another CA's key in TLSA: no match.
        let (_, other_ca) = chain("mx.a.test");
        let ta = tlsa(2, 0, 1, sha2::Sha256::digest(&other_ca).to_vec());
        assert!(
            verifier(vec![ta], "mx.a.test")
                .check(&ee, &sent, now)
                .is_err()
        );
    }

    #[test]
    fn unusable_records_are_skipped() {
        let (ee, _) = chain("mx.a.test");
        let spki = net::tls::subject_public_key_info(&ee).unwrap().to_vec();
        // PKIX-EE(1) would match, but is not for SMTP: skipped, and with
        // nothing usable left TLS is unauthenticated (RFC 7672 §2.2).
        let pkix = tlsa(1, 1, 1, sha2::Sha256::digest(&spki).to_vec());
        assert!(
            !usable(&pkix) && !usable(&tlsa(3, 2, 1, vec![])) && !usable(&tlsa(3, 1, 3, vec![]))
        );
        assert_eq!(
            verifier(vec![pkix], "x").check(&ee, &[], UnixTime::now()),
            Ok(())
        );
    }
}
