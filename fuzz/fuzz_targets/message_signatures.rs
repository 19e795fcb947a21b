//! What the MX reads of a signed message and of the keys published for its
//! sender: S/MIME (multipart/signed and opaque signed-data: the CMS object
//! and its certificates), PGP/MIME signed messages checked against a key
//! (as if from the sender's Web Key Directory or OPENPGPKEY record), the
//! key itself, and a certificate as an account uploads it. Any input: an
//! outcome, never a panic; and the Authentication-Results field of the
//! verdict, with the sender's From address in it, is one line with one
//! clause (C-FZ13). The first two octets say how long the key is.
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
        let from = message::header::fields_named(raw, "From")
            .first()
            .and_then(|f| message::header::addresses(f.value).into_iter().next())
            .map(|m| m.key())
            .unwrap_or_default();
        let outcome = pgp_mime::judge(&signed, &from, &keys);
        let field = pgp_mime::result_field(
            "mx.a.test",
            pgp_mime::SignatureKind::OpenPgp,
            &from,
            &outcome,
        );
        assert_eq!(clauses(&field), 1, "{field:?}");
    }
    let _ = pgp_mime::kept_clear(raw);
    let _ = pgp_mime::can_encrypt(key);
    let _ = openpgp::read_public_key(key);
    let _ = smime::read_certificate(key);
});

/// The `;` of a field outside its quoted strings and comments, each
/// beginning a clause (RFC 8601 §2.2); fails on a line break before the end.
fn clauses(field: &str) -> usize {
    let body = field.strip_suffix("\r\n").expect("ends with CRLF");
    assert!(!body.contains(['\r', '\n']), "one line");
    let (mut quoted, mut escaped, mut depth, mut n) = (false, false, 0usize, 0);
    for c in body.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ';' if !quoted && depth == 0 => n += 1,
            _ => {}
        }
    }
    n
}
