//! S/MIME signed messages (RFC 8551 §3.5.3, multipart/signed with
//! `application/pkcs7-signature`; §3.5.2, opaque `application/pkcs7-mime;
//! smime-type=signed-data`) checked at delivery: the CMS SignedData
//! (RFC 5652 §5) of the second part (or of the whole body) read, the
//! signed part's (or encapsulated content's) digest
//! compared with the signed `messageDigest` attribute (§5.4), and the
//! signature over the signed attributes checked with the signer's
//! certificate (RSA PKCS #1 v1.5, ECDSA P-256/P-384, Ed25519, by ring).
//! Whether the certificate is trusted: the one the sender published here,
//! one its domain names in a DNSSEC-signed SMIMEA record, or one that
//! chains to a trust anchor the operator configured ([`judge`]).

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::{Decode, Encode};
use sha2::Digest;

use dns::dnssec::{Tlsa, Validated};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::pgp_mime::{Outcome, Signed, SignedOctets};
use crate::sender_keys::Source;
use message::spool::Spooled;
use std::io::Read;

const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

/// The largest opaque signed-data message checked: its content is inside
/// the CMS object, which is decoded whole (a multipart/signed message is
/// read a piece at a time, whatever its size).
pub const MAX_OPAQUE: u64 = 25 * 1024 * 1024;

/// Whether a header section's Content-Type is opaque signed-data (RFC
/// 8551 §3.5.2).
pub fn is_opaque(header: &[u8]) -> bool {
    message::header::fields_named(header, "Content-Type")
        .first()
        .and_then(|f| message::mime::parse_content_type(&f.unfolded()))
        .is_some_and(|ct| {
            ct.param("smime-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("signed-data"))
        })
}

/// The signed part and its DER signature, if `message` is an S/MIME signed
/// message: multipart/signed (§3.5.3), or opaque signed-data (§3.5.2,
/// the signed entity inside the CMS object, at most [`MAX_OPAQUE`]).
pub fn signed(message: &Spooled) -> Option<Signed> {
    let outline = message::outline::of_spooled(message).ok()?;
    let root = &outline.root;
    let ct = &root.content_type;
    let opaque = ct
        .param("smime-type")
        .is_some_and(|t| t.eq_ignore_ascii_case("signed-data"));
    if ct.kind == "application"
        && (ct.subtype == "pkcs7-mime" || ct.subtype == "x-pkcs7-mime")
        && opaque
    {
        if message.len() > MAX_OPAQUE {
            return None;
        }
        let raw = message.read_all().ok()?;
        let encoding = root.field(&raw[..], "Content-Transfer-Encoding");
        let signature =
            message::mime::decode_body(encoding.as_deref(), raw.get(root.body.clone())?)?;
        return Some(Signed {
            data: SignedOctets::Held(encapsulated(&signature)?),
            signature,
        });
    }
    crate::pgp_mime::multipart_signed(
        message,
        &outline,
        &[
            "application/pkcs7-signature",
            "application/x-pkcs7-signature",
        ],
    )
}

/// The signed content inside opaque signed-data (RFC 5652 §5.2 eContent).
fn encapsulated(der: &[u8]) -> Option<Vec<u8>> {
    let info = ContentInfo::from_der(der).ok()?;
    let data: SignedData = info.content.decode_as().ok()?;
    let content = data.encap_content_info.econtent?;
    let octets: der::asn1::OctetString = content.decode_as().ok()?;
    Some(octets.into_bytes())
}

/// The certificates a signature came with: the signer's, and the others
/// (intermediates towards a trust anchor), DER.
pub struct Signer {
    pub certificate: Vec<u8>,
    pub others: Vec<Vec<u8>>,
}

/// Check the signature: the signer's certificate when it holds.
pub fn verify(signed: &Signed) -> Result<Signer, String> {
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
        "2.16.840.1.101.3.4.2.1" => digest::<sha2::Sha256>(&signed.data),
        "2.16.840.1.101.3.4.2.2" => digest::<sha2::Sha384>(&signed.data),
        "2.16.840.1.101.3.4.2.3" => digest::<sha2::Sha512>(&signed.data),
        other => return Err(format!("digest algorithm {other} is not supported")),
    }
    .map_err(|e| format!("the message cannot be read: {e}"))?;
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
    let der = |c: &&cms::cert::x509::Certificate| c.to_der().map_err(|_| bad("certificate"));
    let others = certificates
        .iter()
        .filter(|c| !std::ptr::eq(**c, *certificate))
        .map(der)
        .collect::<Result<_, _>>()?;
    Ok(Signer {
        certificate: der(certificate)?,
        others,
    })
}

/// The digest of the signed octets, read a piece at a time.
fn digest<D: Digest>(data: &SignedOctets) -> std::io::Result<Vec<u8>> {
    let mut hash = D::new();
    let mut reader = data.reader();
    let mut piece = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut piece)?;
        if n == 0 {
            return Ok(hash.finalize().to_vec());
        }
        hash.update(&piece[..n]);
    }
}

/// The operator's S/MIME trust anchors (`[policy] smime_ca_file`): CA
/// certificates whose chains vouch for a signer (RFC 8551 §4.1, RFC 5280
/// §6 path validation, by webpki).
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors(Vec<CertificateDer<'static>>);

impl TrustAnchors {
    /// The certificates of a PEM file.
    pub fn from_pem_file(path: &std::path::Path) -> Result<TrustAnchors, String> {
        use rustls_pki_types::pem::PemObject;
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certificates.is_empty() {
            return Err(format!("{}: no certificate", path.display()));
        }
        Ok(TrustAnchors(certificates))
    }

    /// Whether the signer's certificate chains to one of them, for email
    /// protection (RFC 5280 §4.2.1.12, when it lists key purposes), at
    /// `now`.
    fn chain(&self, signer: &Signer, now: UnixTime) -> Result<(), String> {
        let anchors: Vec<_> = self
            .0
            .iter()
            .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
            .collect();
        let certificate = CertificateDer::from(signer.certificate.as_slice());
        let end_entity =
            webpki::EndEntityCert::try_from(&certificate).map_err(|e| e.to_string())?;
        let intermediates: Vec<_> = signer
            .others
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                &intermediates,
                now,
                webpki::KeyUsage::required_if_present(EMAIL_PROTECTION),
                None,
                None,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// id-kp-emailProtection (RFC 5280 §4.2.1.12), 1.3.6.1.5.5.7.3.4, DER.
const EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];

/// What may vouch for a signer's certificate.
pub struct Vouchers<'a> {
    /// The certificate the sender published here.
    pub here: Option<&'a store::PublicKey>,
    /// The sender's SMIMEA records (RFC 8162).
    pub smimea: Option<&'a Validated<Vec<Tlsa>>>,
    /// The operator's trust anchors.
    pub anchors: &'a TrustAnchors,
    pub now: UnixTime,
}

/// The verdict on a signed message from `from`: fail when the signature
/// does not hold or its certificate is not for `from`; pass when the
/// certificate is the one `from` published here, is named by a
/// DNSSEC-signed SMIMEA record of usage 3 (DANE-EE, RFC 8162 §2, RFC 7218),
/// or chains to a trust anchor; neutral otherwise (nothing vouches for
/// it: a valid signature proves only that someone held the key).
pub fn judge(signed: &Signed, from: &str, vouchers: &Vouchers<'_>) -> Outcome {
    let signer = match verify(signed) {
        Ok(signer) => signer,
        Err(why) => return Outcome::Fail(why),
    };
    if let Some(p) = vouchers.here.filter(|p| p.data == signer.certificate) {
        return Outcome::Pass(format!("signed with key {}", p.fingerprint));
    }
    let info = match crate::smime::read_certificate(&signer.certificate) {
        Ok(c) if c.addresses.iter().any(|a| a.eq_ignore_ascii_case(from)) => c,
        _ => return Outcome::Fail(format!("the certificate is not for {from}")),
    };
    let fp = &info.fingerprint;
    if let Some(records) = vouchers.smimea {
        let named = records
            .value
            .iter()
            .any(|t| t.usage == 3 && t.matches(&info.der, Some(&info.spki)));
        let source = Source::Dns {
            secure: records.secure,
        };
        match (named, source.vouches()) {
            (true, true) => {
                return Outcome::Pass(format!(
                    "signed with certificate {fp} {}",
                    source.describe("SMIMEA")
                ));
            }
            (true, false) => {
                return Outcome::Unchecked(format!(
                    "valid signature with certificate {fp} {}",
                    source.describe("SMIMEA")
                ));
            }
            (false, _) => {}
        }
    }
    if vouchers.anchors.0.is_empty() {
        return Outcome::Unchecked(
            "valid signature; the certificate is not one published here".into(),
        );
    }
    match vouchers.anchors.chain(&signer, vouchers.now) {
        Ok(()) => Outcome::Pass(format!(
            "signed with certificate {fp} issued under a trusted authority"
        )),
        Err(e) => Outcome::Unchecked(format!(
            "valid signature; the certificate is not published and does not chain to a trusted authority ({e})"
        )),
    }
}
