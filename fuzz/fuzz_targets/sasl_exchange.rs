//! SASL exchanges as a client drives them (RFC 4616 PLAIN, LOGIN, RFC 5802 /
//! RFC 7677 SCRAM-SHA-256 with and without channel binding): any responses,
//! in any number, end the exchange without a panic.
#![no_main]
use auth::credentials::ScramKeys;
use auth::sasl::{Exchange, Mechanism, Step};

/// The user's keys, derived once (PBKDF2 is slow on purpose).
fn keys() -> &'static ScramKeys {
    static KEYS: std::sync::OnceLock<ScramKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| ScramKeys::derive("pencil", &[7; 16], 4096))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let mechanism = Mechanism::ALL[first as usize % Mechanism::ALL.len()];
    let binding = (first & 0x80 != 0).then_some(&b"exporter-data"[..]);
    let mut exchange = Exchange::with_nonce(mechanism, "fyko+d2lbbFgONRv9qkxdawL", binding);
    let mut responses = rest.split(|&b| b == b'\n');
    let mut step = exchange.respond(responses.next());
    for _ in 0..8 {
        step = match step {
            Step::Challenge(_) => exchange.respond(responses.next()),
            Step::NeedScramKeys { .. } => exchange.scram_keys(Some(keys().clone()), [0; 16]),
            _ => return,
        };
    }
});
