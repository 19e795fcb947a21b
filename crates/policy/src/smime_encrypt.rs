//! Encryption at rest the S/MIME way (RFC 8551 §3.3): the message as an
//! `application/pkcs7-mime; smime-type=enveloped-data` entity, CMS
//! EnvelopedData (RFC 5652 §6) with AES-256-CBC content encryption
//! (RFC 3565) to the account's certificate:
//!
//! - an RSA key gets the content-encryption key by key transport
//!   (RSAES-PKCS1-v1_5, RFC 8551 §2.3, which every S/MIME reader handles);
//! - an EC P-256 key by key agreement (RFC 5753 §3.1: ephemeral-static
//!   ECDH, the ANSI X9.63 KDF with SHA-256 over ECC-CMS-SharedInfo, the
//!   key wrapped with AES-256 key wrap, RFC 3394).
//!
//! The header fields a mail client lists stay readable outside, as for
//! PGP/MIME ([`crate::pgp_mime::kept_clear`]).

use cms::builder::{
    KeyEncryptionInfo, KeyTransRecipientInfoBuilder, RecipientInfoBuilder, RecipientInfoType,
};
use cms::cert::IssuerAndSerialNumber;
use cms::cert::x509::Certificate;
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::content_info::CmsVersion;
use cms::enveloped_data::{
    KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo, OriginatorIdentifierOrKey,
    OriginatorPublicKey, RecipientEncryptedKey, RecipientIdentifier, RecipientInfo,
};
use der::asn1::{BitString, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use message::spool::{Spool, Spooled};

const RSA: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
const ENVELOPED_DATA: &str = "1.2.840.113549.1.7.3";
const DATA: &str = "1.2.840.113549.1.7.1";
/// id-aes256-CBC (RFC 3565 §4.1).
const AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";
/// dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753 §7.1.4).
const ECDH_SHA256_KDF: &str = "1.3.132.1.11.1";
/// id-aes256-wrap (RFC 3565 §2.3.2).
const AES256_WRAP: &str = "2.16.840.1.101.3.4.1.45";

fn oid(text: &str) -> ObjectIdentifier {
    // The constants above are well-formed.
    ObjectIdentifier::new_unwrap(text)
}

/// Whether a certificate's key can be encrypted to (RSA or EC P-256).
pub fn can_encrypt(certificate: &[u8]) -> bool {
    Certificate::from_der(certificate).is_ok_and(|c| key_kind(&c).is_some())
}

#[derive(Clone, Copy)]
enum KeyKind {
    Rsa,
    P256,
}

fn key_kind(c: &Certificate) -> Option<KeyKind> {
    let spki = &c.tbs_certificate.subject_public_key_info;
    match spki.algorithm.oid.to_string().as_str() {
        RSA => Some(KeyKind::Rsa),
        EC_PUBLIC_KEY => {
            let curve = spki.algorithm.parameters.as_ref()?;
            let curve: ObjectIdentifier = curve.decode_as().ok()?;
            (curve.to_string() == P256).then_some(KeyKind::P256)
        }
        _ => None,
    }
}

/// `message` as an S/MIME enveloped-data message to `certificate` (DER):
/// the whole message is the encrypted entity; the fields of
/// [`crate::pgp_mime::KEPT_CLEAR`] stay readable outside. Streamed
/// (hardening.md C-FT9): the message is read from its spool and the base64
/// of the ContentInfo written into `spool` a piece at a time. DER wants
/// every length before its content, and they are all known at the start:
/// AES-CBC with PKCS #7 padding makes n octets into 16·(⌊n/16⌋+1)
/// (RFC 5652 §6.3).
pub fn encrypt(message: &Spooled, certificate: &[u8], spool: &Spool) -> Result<Spooled, String> {
    use std::io::Read;
    let rng = ring::rand::SystemRandom::new();
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut key).map_err(|_| "no randomness")?;
    ring::rand::SecureRandom::fill(&rng, &mut iv).map_err(|_| "no randomness")?;
    let recipient = recipient_info(certificate, &key)?;
    let head = content_info_head(recipient, &iv, message.len())?;
    let failed = |e: std::io::Error| format!("spooling: {e}");
    let mut out = spool.writer();
    out.write(&crate::pgp_mime::kept_clear(message.header()))
        .map_err(failed)?;
    out.write(
        b"MIME-Version: 1.0\r\n\
          Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\n\
          Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    )
    .map_err(failed)?;
    let mut base64 = message::seven_bit::Encoder::base64();
    let mut text = Vec::new();
    base64.feed(&head, &mut text);
    let mut cipher = <Cbc as cbc::cipher::KeyIvInit>::new(&key.into(), &iv.into());
    let mut reader = message.reader();
    let mut piece = vec![0u8; 64 * 1024];
    // Octets read that do not yet fill a block (fewer than 16).
    let mut held = 0;
    let mut read = 0u64;
    loop {
        let n = reader.read(&mut piece[held..]).map_err(failed)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        let filled = held + n;
        let whole = filled / 16 * 16;
        encrypt_blocks(&mut cipher, &mut piece[..whole]);
        base64.feed(&piece[..whole], &mut text);
        out.write(&text).map_err(failed)?;
        text.clear();
        piece.copy_within(whole..filled, 0);
        held = filled - whole;
    }
    // The lengths written first counted every octet.
    if read != message.len() {
        return Err(format!("the spool gave {read} of {} octets", message.len()));
    }
    // PKCS #7 padding (RFC 5652 §6.3): 1 to 16 octets of its own length.
    let pad = 16 - held;
    piece[held..16].fill(pad as u8);
    encrypt_blocks(&mut cipher, &mut piece[..16]);
    base64.feed(&piece[..16], &mut text);
    base64.finish(&mut text);
    out.write(&text).map_err(failed)?;
    out.finish().map_err(failed)
}

/// AES-256-CBC (RFC 3565 §2.2, id-aes256-CBC).
type Cbc = cbc::Encryptor<aes::Aes256>;

/// Encrypt `blocks` (a multiple of 16 octets) in place, the chain going on.
fn encrypt_blocks(cipher: &mut Cbc, blocks: &mut [u8]) {
    use cbc::cipher::BlockEncryptMut;
    for block in blocks.chunks_exact_mut(16) {
        cipher.encrypt_block_mut(block.into());
    }
}

/// The RecipientInfo that gives `certificate`'s key the content-encryption
/// key: key transport to RSA, key agreement to EC P-256.
fn recipient_info(certificate: &[u8], content_key: &[u8]) -> Result<RecipientInfo, String> {
    let cert = Certificate::from_der(certificate).map_err(|e| format!("the certificate: {e}"))?;
    let kind = key_kind(&cert).ok_or("the certificate's key is neither RSA nor EC P-256")?;
    let id = IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    };
    let key = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let fail = |e: cms::builder::Error| format!("encrypting: {e:?}");
    match kind {
        KeyKind::Rsa => {
            use rsa::pkcs1::DecodeRsaPublicKey;
            let public =
                rsa::RsaPublicKey::from_pkcs1_der(&key).map_err(|e| format!("the RSA key: {e}"))?;
            let mut key_rng = rand08::rngs::OsRng;
            KeyTransRecipientInfoBuilder::new(
                RecipientIdentifier::IssuerAndSerialNumber(id),
                KeyEncryptionInfo::Rsa(public),
                &mut key_rng,
            )
            .map_err(fail)?
            .build(content_key)
            .map_err(fail)
        }
        KeyKind::P256 => EcdhRecipient { id, key }.build(content_key).map_err(fail),
    }
}

/// The DER of a ContentInfo holding EnvelopedData (RFC 5652 §3, §6.1) to
/// `recipient`, up to and including the header of its encrypted content,
/// which will be `plain` octets encrypted with AES-256-CBC under `iv`.
fn content_info_head(
    recipient: RecipientInfo,
    iv: &[u8; 16],
    plain: u64,
) -> Result<Vec<u8>, String> {
    let der = |e: der::Error| format!("encoding: {e}");
    // §6.1: version 0 when every RecipientInfo is version 0 (and there is
    // no originatorInfo or unprotectedAttrs), else 2.
    let version = match &recipient {
        RecipientInfo::Ktri(k) if k.version == CmsVersion::V0 => CmsVersion::V0,
        _ => CmsVersion::V2,
    };
    let recipients = der::asn1::SetOfVec::try_from(vec![recipient]).map_err(der)?;
    let algorithm = AlgorithmIdentifierOwned {
        oid: oid(AES256_CBC),
        parameters: Some(
            der::Any::encode_from(&OctetString::new(iv.to_vec()).map_err(der)?).map_err(der)?,
        ),
    };
    let encrypted = (plain / 16 + 1) * 16;
    // EncryptedContentInfo: contentType, the algorithm, and
    // encryptedContent [0] IMPLICIT OCTET STRING (a primitive 0x80).
    let mut info = oid(DATA).to_der().map_err(der)?;
    info.extend(algorithm.to_der().map_err(der)?);
    info.extend(header(0x80, encrypted));
    let mut enveloped = version.to_der().map_err(der)?;
    enveloped.extend(recipients.to_der().map_err(der)?);
    enveloped.extend(header(0x30, info.len() as u64 + encrypted));
    enveloped.extend(info);
    let enveloped_len = enveloped.len() as u64 + encrypted;
    // ContentInfo: contentType, content [0] EXPLICIT EnvelopedData.
    let mut body = oid(ENVELOPED_DATA).to_der().map_err(der)?;
    let sequence = header(0x30, enveloped_len);
    body.extend(header(0xa0, sequence.len() as u64 + enveloped_len));
    body.extend(sequence);
    body.extend(enveloped);
    let mut out = header(0x30, body.len() as u64 + encrypted);
    out.extend(body);
    Ok(out)
}

/// A DER tag and length (X.690 §8.1.3: the short form under 128, else
/// the octets of the length after their count).
fn header(tag: u8, len: u64) -> Vec<u8> {
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets = len.to_be_bytes();
        let skip = octets.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&octets[skip..]);
    }
    out
}

/// A KeyAgreeRecipientInfo for an EC P-256 recipient (RFC 5753 §3.1.1).
struct EcdhRecipient {
    id: IssuerAndSerialNumber,
    /// The recipient's public point, uncompressed.
    key: Vec<u8>,
}

impl RecipientInfoBuilder for EcdhRecipient {
    fn recipient_info_type(&self) -> RecipientInfoType {
        RecipientInfoType::Kari
    }

    fn recipient_info_version(&self) -> CmsVersion {
        CmsVersion::V3
    }

    fn build(
        &mut self,
        content_encryption_key: &[u8],
    ) -> Result<RecipientInfo, cms::builder::Error> {
        let fail = |what: &str| cms::builder::Error::Builder(what.to_string());
        let rng = ring::rand::SystemRandom::new();
        let ephemeral =
            ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::ECDH_P256, &rng)
                .map_err(|_| fail("no ephemeral key"))?;
        let ours = ephemeral
            .compute_public_key()
            .map_err(|_| fail("no ephemeral key"))?;
        let theirs =
            ring::agreement::UnparsedPublicKey::new(&ring::agreement::ECDH_P256, &self.key);
        let wrap = AlgorithmIdentifierOwned {
            oid: oid(AES256_WRAP),
            parameters: None,
        };
        // User keying material (RFC 5753 §3.1.1, "MAY be present"): 64
        // random octets. Readers that mishandle its absence (PKI.js 4
        // derives with an empty one) then agree with the rest.
        let mut ukm = [0u8; 64];
        ring::rand::SecureRandom::fill(&rng, &mut ukm).map_err(|_| fail("no randomness"))?;
        let shared_info = shared_info(&wrap, &ukm)?;
        let kek =
            ring::agreement::agree_ephemeral(ephemeral, &theirs, |z| x963_kdf(z, &shared_info))
                .map_err(|_| fail("key agreement failed"))?;
        let wrapped = aes_kw::KekAes256::from(kek)
            .wrap_vec(content_encryption_key)
            .map_err(|_| fail("key wrap failed"))?;
        Ok(RecipientInfo::Kari(KeyAgreeRecipientInfo {
            version: CmsVersion::V3,
            originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
                // RFC 5753 §3.1.1: id-ecPublicKey with the curve named
                // (absent would also do, but some readers, PKI.js among
                // them, need it).
                algorithm: AlgorithmIdentifierOwned {
                    oid: oid(EC_PUBLIC_KEY),
                    parameters: Some(der::Any::encode_from(&oid(P256))?),
                },
                public_key: BitString::from_bytes(ours.as_ref())?,
            }),
            ukm: Some(OctetString::new(ukm.to_vec())?),
            key_enc_alg: AlgorithmIdentifierOwned {
                oid: oid(ECDH_SHA256_KDF),
                parameters: Some(der::Any::encode_from(&wrap)?),
            },
            recipient_enc_keys: vec![RecipientEncryptedKey {
                rid: KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(self.id.clone()),
                enc_key: OctetString::new(wrapped)?,
            }],
        }))
    }
}

/// ECC-CMS-SharedInfo (RFC 5753 §7.2): the key-wrap algorithm, the user
/// keying material as entityUInfo [0], and the length of the key to
/// derive in bits (256) as suppPubInfo [2].
fn shared_info(
    wrap: &AlgorithmIdentifierOwned,
    ukm: &[u8],
) -> Result<Vec<u8>, cms::builder::Error> {
    let mut body = wrap.to_der()?;
    let entity = OctetString::new(ukm.to_vec())?.to_der()?;
    tagged(&mut body, 0xa0, &entity);
    let bits = OctetString::new(256u32.to_be_bytes().to_vec())?.to_der()?;
    tagged(&mut body, 0xa2, &bits);
    let mut out = Vec::new();
    tagged(&mut out, 0x30, &body);
    Ok(out)
}

/// `content` under `tag` with its DER length.
fn tagged(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.extend(header(tag, content.len() as u64));
    out.extend_from_slice(content);
}

/// The ANSI X9.63 KDF with SHA-256 (SEC 1 §3.6.1), one block: 32 octets.
fn x963_kdf(z: &[u8], shared_info: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(z);
    h.update(1u32.to_be_bytes());
    h.update(shared_info);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_info_is_der() {
        let wrap = AlgorithmIdentifierOwned {
            oid: oid(AES256_WRAP),
            parameters: None,
        };
        let info = shared_info(&wrap, &[7, 7]).unwrap();
        // SEQUENCE { SEQUENCE { OID aes256-wrap }, [0] { OCTET STRING 0707 },
        // [2] { OCTET STRING 00000100 } }
        assert_eq!(
            info,
            [
                0x30, 0x1b, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01,
                0x2d, 0xa0, 0x04, 0x04, 0x02, 0x07, 0x07, 0xa2, 0x06, 0x04, 0x04, 0x00, 0x00, 0x01,
                0x00
            ]
        );
        let long = shared_info(&wrap, &[0; 64]).unwrap();
        assert_eq!(&long[..2], &[0x30, 13 + 68 + 8]);
    }

    /// X.690 §8.1.3: short form under 128, else the count of octets.
    #[test]
    fn der_lengths_of_any_size() {
        assert_eq!(header(0x30, 0x7f), [0x30, 0x7f]);
        assert_eq!(header(0x80, 0x80), [0x80, 0x81, 0x80]);
        assert_eq!(header(0xa0, 300), [0xa0, 0x82, 0x01, 0x2c]);
        assert_eq!(
            header(0x30, 40_000_016),
            [0x30, 0x84, 0x02, 0x62, 0x5a, 0x10]
        );
    }

    #[test]
    fn not_a_certificate_is_refused() {
        assert!(!can_encrypt(b"nonsense"));
        let message = Spooled::from_vec(b"Subject: x\r\n\r\nhi\r\n".to_vec());
        assert!(encrypt(&message, b"nonsense", &Spool::memory()).is_err());
    }
}
