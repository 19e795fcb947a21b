//! The S/MIME certificates users publish (RFC 8551 §4, X.509 of RFC
//! 5280): read from PEM or DER, the addresses they are for taken from the
//! subjectAltName's rfc822Name entries (and, as older certificates do, the
//! subject's emailAddress), and printed as an SMIMEA record (RFC 8162).

use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

/// What a published certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint: String,
    /// Lower-case.
    pub addresses: Vec<String>,
    pub not_after: i64,
    pub der: Vec<u8>,
    /// The SubjectPublicKeyInfo, whole (an SMIMEA record may name it).
    pub spki: Vec<u8>,
}

/// Read one certificate, PEM or DER.
pub fn read_certificate(input: &[u8]) -> Result<CertInfo, String> {
    if input.len() > crate::openpgp::MAX_KEY {
        return Err("larger than 256 KiB".into());
    }
    if std::str::from_utf8(input).is_ok_and(|t| t.contains("PRIVATE KEY-----")) {
        return Err("that holds a private key: publish the certificate only".into());
    }
    let der = match x509_parser::pem::parse_x509_pem(input) {
        Ok((_, pem)) if pem.label == "CERTIFICATE" => pem.contents,
        Ok((_, pem)) => return Err(format!("a PEM {} is not a certificate", pem.label)),
        Err(_) => input.to_vec(),
    };
    let (_, cert) =
        X509Certificate::from_der(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut addresses = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::RFC822Name(a) = name {
                addresses.push(a.to_ascii_lowercase());
            }
        }
    }
    for email in cert.subject().iter_email() {
        if let Ok(a) = email.as_str() {
            addresses.push(a.to_ascii_lowercase());
        }
    }
    addresses.dedup();
    let not_after = cert.validity().not_after.timestamp();
    let spki = cert.public_key().raw.to_vec();
    Ok(CertInfo {
        fingerprint: Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        addresses,
        not_after,
        der,
        spki,
    })
}

/// The SMIMEA record (RFC 8162 §2-3) of `local@domain`'s certificate:
/// usage 3 (DANE-EE: this very certificate), selector 0 (the whole
/// certificate), matching type 0 (given in full).
pub fn smimea_record(local: &str, domain: &str, der: &[u8]) -> String {
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}. 3600 IN SMIMEA 3 0 0 {hex}",
        smimea_owner(local, domain)
    )
}

/// The owner name of `local@domain`'s SMIMEA record (RFC 8162 §3).
pub fn smimea_owner(local: &str, domain: &str) -> String {
    format!(
        "{}._smimecert.{domain}",
        crate::openpgp::dane_local_label(local)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        assert!(read_certificate(b"not a certificate").is_err());
        let e = read_certificate(b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n")
            .unwrap_err();
        assert!(e.contains("private key"), "{e}");
    }

    #[test]
    fn the_record_names_the_local_part() {
        let r = smimea_record("alice", "a.test", &[0x30, 0x01]);
        assert!(
            r.ends_with("._smimecert.a.test. 3600 IN SMIMEA 3 0 0 3001"),
            "{r}"
        );
        assert_eq!(r.split('.').next().unwrap().len(), 56);
    }
}
