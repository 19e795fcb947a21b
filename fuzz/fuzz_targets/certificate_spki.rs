//! The public key Tern reads out of a certificate another server shows
//! (`net::tls::subject_public_key_info`, a small DER reader): DANE-EE
//! records with selector 1 and SMIMEA records are matched against it
//! (RFC 6698 §2.1.2, RFC 8162). If it read a different key than the one
//! the handshake or the signature is checked with, a certificate could
//! pass DANE with one key and prove another. So, besides "no panic":
//! whenever webpki (what TLS handshakes are checked with) or the `cms`
//! crate's X.509 (what S/MIME reads) takes the input as a certificate,
//! Tern's reader finds exactly the key they find.
#![no_main]
use cms::cert::x509::Certificate;
use der::{Decode, Encode};
use rustls_pki_types::CertificateDer;

libfuzzer_sys::fuzz_target!(|der: &[u8]| {
    let ours = net::tls::subject_public_key_info(der);
    if let Ok(ee) = webpki::EndEntityCert::try_from(&CertificateDer::from(der)) {
        let theirs = ee.subject_public_key_info();
        assert_eq!(ours, Some(theirs.as_ref()), "webpki reads another key");
    }
    if let Ok(cert) = Certificate::from_der(der) {
        let theirs = cert.tbs_certificate.subject_public_key_info.to_der();
        assert_eq!(ours, theirs.as_deref().ok(), "x509-cert reads another key");
    }
});
