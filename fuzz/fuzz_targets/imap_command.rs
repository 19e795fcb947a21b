//! IMAP commands (RFC 9051 §9 grammar), literals included, as a client sends them.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let _ = imap::parse::parse_command(input);
});
