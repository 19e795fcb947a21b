//! S/MIME signed messages (RFC 8551 §3.5.3, multipart/signed with
//! `application/pkcs7-signature`) checked at delivery: the CMS SignedData
//! (RFC 5652 §5) of the second part read, the first part's digest
//! compared with the signed `messageDigest` attribute (§5.4), and the
//! signature over the signed attributes checked with the signer's
//! certificate (RSA PKCS #1 v1.5, ECDSA P-256/P-384, Ed25519, by ring).
//! Which certificate it is, and whether it is trusted, the caller decides.

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::{Decode, Encode};
use sha2::Digest;

use crate::pgp_mime::{Outcome, Signed};

const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// The signed part and its DER signature, if `raw` is an S/MIME
/// multipart/signed message.
pub fn signed(raw: &[u8]) -> Option<Signed> {
    let root = message::mime::parse(raw);
    let ct = &root.content_type;
    let smime = ct.param("protocol").is_some_and(|p| {
        p.eq_ignore_ascii_case("application/pkcs7-signature")
            || p.eq_ignore_ascii_case("application/x-pkcs7-signature")
    });
    if ct.kind != "multipart" || ct.subtype != "signed" || !smime || root.children.len() != 2 {
        return None;
    }
    let (first, second) = (&root.children[0], &root.children[1]);
    let encoding = second.field(raw, "Content-Transfer-Encoding");
    let signature = message::mime::decode_body(encoding.as_deref(), raw.get(second.body.clone())?)?;
    Some(Signed {
        data: raw.get(first.header.start..first.body.end)?.to_vec(),
        signature,
    })
}

/// Check the signature: the signer's certificate (DER) when it holds.
pub fn verify(signed: &Signed) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("the signature cannot be read ({what})");
    let info = ContentInfo::from_der(&signed.signature).map_err(|_| bad("CMS"))?;
    if info.content_type.to_string() != SIGNED_DATA {
        return Err(bad("not SignedData"));
    }
    let data: SignedData = info.content.decode_as().map_err(|_| bad("SignedData"))?;
    let signer = data
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| bad("no signer"))?;
    let certificates: Vec<&cms::cert::x509::Certificate> = data
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => Some(c),
            CertificateChoices::Other(_) => None,
        })
        .collect();
    let certificate = certificates
        .iter()
        .find(|c| match &signer.sid {
            SignerIdentifier::IssuerAndSerialNumber(id) => {
                c.tbs_certificate.issuer == id.issuer
                    && c.tbs_certificate.serial_number == id.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(_) => certificates.len() == 1,
        })
        .ok_or("the signer's certificate is not in the signature")?;
    let digest: Vec<u8> = match signer.digest_alg.oid.to_string().as_str() {
        "2.16.840.1.101.3.4.2.1" => sha2::Sha256::digest(&signed.data).to_vec(),
        "2.16.840.1.101.3.4.2.2" => sha2::Sha384::digest(&signed.data).to_vec(),
        "2.16.840.1.101.3.4.2.3" => sha2::Sha512::digest(&signed.data).to_vec(),
        other => return Err(format!("digest algorithm {other} is not supported")),
    };
    let attributes = signer
        .signed_attrs
        .as_ref()
        .ok_or("no signed attributes (RFC 8551 §2.5 requires them)")?;
    let stated = attributes
        .iter()
        .find(|a| a.oid.to_string() == MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| der::asn1::OctetString::from_der(&v.to_der().ok()?).ok())
        .ok_or_else(|| bad("no messageDigest"))?;
    if stated.as_bytes() != digest.as_slice() {
        return Err("the message was changed after it was signed".into());
    }
    let message = attributes.to_der().map_err(|_| bad("attributes"))?;
    let spki = &certificate.tbs_certificate.subject_public_key_info;
    let key = spki.subject_public_key.raw_bytes();
    let algorithm: &dyn ring::signature::VerificationAlgorithm =
        match (spki.algorithm.oid.to_string().as_str(), digest.len()) {
            ("1.2.840.113549.1.1.1", 32) => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            ("1.2.840.113549.1.1.1", 48) => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
            ("1.2.840.113549.1.1.1", 64) => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
            ("1.2.840.10045.2.1", 32) => &ring::signature::ECDSA_P256_SHA256_ASN1,
            ("1.2.840.10045.2.1", 48) => &ring::signature::ECDSA_P384_SHA384_ASN1,
            ("1.3.101.112", _) => &ring::signature::ED25519,
            (other, _) => return Err(format!("key algorithm {other} is not supported")),
        };
    ring::signature::UnparsedPublicKey::new(algorithm, key)
        .verify(&message, signer.signature.as_bytes())
        .map_err(|_| "the signature does not match the message".to_string())?;
    certificate.to_der().map_err(|_| bad("certificate"))
}

/// The verdict on a signed message from `from`: pass when the signature
/// holds and its certificate is the one `from` published here; neutral
/// when it holds with a certificate for `from` that is not published
/// here (nothing vouches for it); fail otherwise.
pub fn judge(signed: &Signed, from: &str, published: Option<&store::PublicKey>) -> Outcome {
    let der = match verify(signed) {
        Ok(der) => der,
        Err(why) => return Outcome::Fail(why),
    };
    if let Some(p) = published.filter(|p| p.data == der) {
        return Outcome::Pass(p.fingerprint.clone());
    }
    match crate::smime::read_certificate(&der) {
        Ok(c) if c.addresses.iter().any(|a| a.eq_ignore_ascii_case(from)) => {
            Outcome::Unchecked("valid signature; the certificate is not one published here".into())
        }
        _ => Outcome::Fail(format!("the certificate is not for {from}")),
    }
}
