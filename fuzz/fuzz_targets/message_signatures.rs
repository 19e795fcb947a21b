//! What the MX reads of a signed message and of the keys published for its
//! sender: S/MIME (multipart/signed and opaque signed-data: the CMS object
//! and its certificates), PGP/MIME signed messages checked against a key
//! (as if from the sender's Web Key Directory or OPENPGPKEY record), the
//! key itself, and a certificate as an account uploads it. Any input: an
//! outcome, never a panic. The first two octets say how long the key is.
#![no_main]
use message::spool::Spooled;
use policy::sender_keys::{FoundKey, Source};
use policy::{openpgp, pgp_mime, smime, smime_mime};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&[a, b], rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes([a, b])).min(rest.len());
    let (key, raw) = rest.split_at(split);
    let message = Spooled::from_vec(raw.to_vec());
    if let Some(signed) = smime_mime::signed(&message) {
        let _ = smime_mime::verify(&signed);
    }
    if let Some(signed) = pgp_mime::signed(&message) {
        let keys = [
            FoundKey {
                data: key.to_vec(),
                source: Source::Here,
            },
            FoundKey {
                data: key.to_vec(),
                source: Source::Dns { secure: false },
            },
        ];
        let _ = pgp_mime::judge(&signed, "alice@a.test", &keys);
    }
    let _ = pgp_mime::kept_clear(raw);
    let _ = pgp_mime::can_encrypt(key);
    let _ = openpgp::read_public_key(key);
    let _ = smime::read_certificate(key);
});
