//! The OpenPGP public keys users publish (RFC 9580), read as far as a
//! server needs: the packets walked (RFC 9580 §4.2), the key's
//! fingerprint (§5.5.4: SHA-1 of a version 4 key, SHA-256 of version 6)
//! and user IDs; armor (§6) taken off. Served by WKD (the Web Key
//! Directory: the local part's SHA-1 in z-base-32) and printed as an
//! OPENPGPKEY record (RFC 7929 §3). Nothing here checks signatures.

use base64::Engine;
use sha2::{Digest, Sha256};

/// The largest key taken (a key with many signatures is still far less).
pub const MAX_KEY: usize = 256 * 1024;
const MAX_PACKETS: usize = 10_000;

/// What a published key says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Upper-case hex.
    pub fingerprint: String,
    pub user_ids: Vec<String>,
    /// The key as binary packets (what WKD serves).
    pub binary: Vec<u8>,
}

impl KeyInfo {
    /// Whether one of its user IDs is `address` (`Name <address>` or the
    /// bare address, ASCII case-insensitive).
    pub fn names(&self, address: &str) -> bool {
        self.user_ids.iter().any(|uid| {
            let inner = match (uid.rfind('<'), uid.rfind('>')) {
                (Some(a), Some(b)) if a < b => &uid[a + 1..b],
                _ => uid.as_str(),
            };
            inner.trim().eq_ignore_ascii_case(address)
        })
    }
}

/// Read a public key, armored or binary.
pub fn read_public_key(input: &[u8]) -> Result<KeyInfo, String> {
    if input.len() > MAX_KEY {
        return Err(format!("larger than {} KiB", MAX_KEY / 1024));
    }
    let binary = match std::str::from_utf8(input) {
        Ok(text) if text.contains("-----BEGIN PGP") => dearmor(text)?,
        _ => input.to_vec(),
    };
    let mut fingerprint = None;
    let mut user_ids = Vec::new();
    for (i, packet) in packets(&binary)?.into_iter().enumerate() {
        match (i, packet.tag) {
            (0, 6) => fingerprint = Some(key_fingerprint(packet.body)?),
            (0, 5) => return Err(private_key()),
            (0, _) => return Err("not an OpenPGP public key (it does not start with one)".into()),
            (_, 5 | 7) => return Err(private_key()),
            (_, 13) => user_ids.push(String::from_utf8_lossy(packet.body).into_owned()),
            _ => {}
        }
    }
    let fingerprint = fingerprint.ok_or("no OpenPGP packets")?;
    Ok(KeyInfo {
        fingerprint,
        user_ids,
        binary,
    })
}

fn private_key() -> String {
    "that is a private key: publish the public one (gpg --export ADDRESS)".into()
}

/// RFC 9580 §6.2: the base64 between the armor header and tail, its
/// CRC-24 checked when given.
fn dearmor(text: &str) -> Result<Vec<u8>, String> {
    if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
        return Err(private_key());
    }
    let start = text
        .find("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        .ok_or("not an armored OpenPGP public key")?;
    let mut lines = text[start..].lines().skip(1);
    // Armor headers ("Comment: ...") end at the first blank line.
    for line in lines.by_ref() {
        if line.trim().is_empty() {
            break;
        }
    }
    let (mut b64, mut checksum) = (String::new(), None);
    for line in lines {
        let line = line.trim();
        if line.starts_with("-----END PGP PUBLIC KEY BLOCK-----") {
            let data = base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .map_err(|e| format!("bad armor: {e}"))?;
            if let Some(sum) = checksum {
                let sum = base64::engine::general_purpose::STANDARD
                    .decode(sum)
                    .map_err(|e| format!("bad armor checksum: {e}"))?;
                if sum != crc24(&data).to_be_bytes()[1..] {
                    return Err("the armor's checksum does not match".into());
                }
            }
            return Ok(data);
        }
        match line.strip_prefix('=') {
            Some(sum) if sum.len() == 4 => checksum = Some(sum.to_string()),
            _ => b64.push_str(line),
        }
    }
    Err("the armor has no end line".into())
}

/// RFC 9580 §6.1.
fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for b in data {
        crc ^= u32::from(*b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

struct Packet<'a> {
    tag: u8,
    body: &'a [u8],
}

/// RFC 9580 §4.2: old and new packet headers; partial lengths (§4.2.1.4)
/// belong to data packets, never to keys, and are refused.
fn packets(mut data: &[u8]) -> Result<Vec<Packet<'_>>, String> {
    let bad = || "not OpenPGP data (a packet header is wrong)".to_string();
    let mut out = Vec::new();
    while !data.is_empty() {
        if out.len() >= MAX_PACKETS {
            return Err("too many packets".into());
        }
        let h = data[0];
        if h & 0x80 == 0 {
            return Err(bad());
        }
        let (tag, len, header) = if h & 0x40 != 0 {
            let o = |i: usize| data.get(i).copied().map(usize::from).ok_or_else(bad);
            match o(1)? {
                l @ 0..=191 => (h & 0x3f, l, 2),
                l @ 192..=223 => (h & 0x3f, ((l - 192) << 8) + o(2)? + 192, 3),
                255 => {
                    let l = (o(2)? << 24) | (o(3)? << 16) | (o(4)? << 8) | o(5)?;
                    (h & 0x3f, l, 6)
                }
                _ => return Err("a partial-length packet has no place in a key".into()),
            }
        } else {
            let n = match h & 3 {
                0 => 1,
                1 => 2,
                2 => 4,
                _ => return Err("an indeterminate-length packet has no place in a key".into()),
            };
            let bytes = data.get(1..1 + n).ok_or_else(bad)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            ((h >> 2) & 0x0f, len, 1 + n)
        };
        let body = data.get(header..header + len).ok_or_else(bad)?;
        out.push(Packet { tag, body });
        data = &data[header + len..];
    }
    Ok(out)
}

/// RFC 9580 §5.5.4.
fn key_fingerprint(body: &[u8]) -> Result<String, String> {
    let digest: Vec<u8> = match body.first() {
        Some(4) => {
            let len = u16::try_from(body.len()).map_err(|_| "key packet too long")?;
            let mut input = vec![0x99];
            input.extend_from_slice(&len.to_be_bytes());
            input.extend_from_slice(body);
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input)
                .as_ref()
                .to_vec()
        }
        Some(6) => {
            let len = u32::try_from(body.len()).map_err(|_| "key packet too long")?;
            let mut h = Sha256::new();
            h.update([0x9b]);
            h.update(len.to_be_bytes());
            h.update(body);
            h.finalize().to_vec()
        }
        Some(v) => return Err(format!("key version {v} is not supported (4 and 6 are)")),
        None => return Err("an empty key packet".into()),
    };
    Ok(digest.iter().map(|b| format!("{b:02X}")).collect())
}

/// The Web Key Directory's name for a local part: the SHA-1 of its
/// lower-case form, in z-base-32.
pub fn wkd_hash(local: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        local.to_lowercase().as_bytes(),
    );
    zbase32(digest.as_ref())
}

/// z-base-32 (the human-oriented base-32 of Zooko), 5 bits a character.
fn zbase32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// RFC 7929 §3 (and RFC 8162 §3 for SMIMEA): the first 28 octets of the
/// SHA-256 of the local part, in hex, the owner name's first label.
pub fn dane_local_label(local: &str) -> String {
    Sha256::digest(local.as_bytes())[..28]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The owner name of `local@domain`'s OPENPGPKEY record (RFC 7929 §3).
pub fn openpgpkey_owner(local: &str, domain: &str) -> String {
    format!("{}._openpgpkey.{domain}", dane_local_label(local))
}

/// The OPENPGPKEY record (RFC 7929) of `local@domain`'s key.
pub fn openpgpkey_record(local: &str, domain: &str, key: &[u8]) -> String {
    format!(
        "{}. 3600 IN OPENPGPKEY {}",
        openpgpkey_owner(local, domain),
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zbase32_and_wkd_hash() {
        // The Web Key Directory draft's example (§3.1).
        assert_eq!(wkd_hash("Joe.Doe"), "iy9q119eutrkn8s1mk4r39qejnbu3n5q");
        assert_eq!(zbase32(&[0xf0, 0xbf, 0xc7]), "6n9hq");
    }

    #[test]
    fn crc24_of_the_rfc() {
        assert_eq!(crc24(b""), 0x00B7_04CE);
    }

    #[test]
    fn packets_and_refusals() {
        // A new-format user ID packet alone is not a key.
        assert!(read_public_key(&[0xCD, 0x03, b'a', b'b', b'c']).is_err());
        // A secret key packet (tag 5, new format).
        let e = read_public_key(&[0xC5, 0x01, 0x04]).unwrap_err();
        assert!(e.contains("private key"), "{e}");
        assert!(read_public_key(b"hello").is_err());
        assert!(read_public_key(&[0xC6, 0x05, 0x04]).is_err(), "truncated");
        let e = read_public_key(b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n").unwrap_err();
        assert!(e.contains("private key"), "{e}");
    }

    #[test]
    fn user_ids_name_addresses() {
        let k = KeyInfo {
            fingerprint: String::new(),
            user_ids: vec!["Alice <Alice@A.test>".into(), "bob@a.test".into()],
            binary: Vec::new(),
        };
        assert!(k.names("alice@a.test"));
        assert!(k.names("bob@a.test"));
        assert!(!k.names("carol@a.test"));
    }
}
