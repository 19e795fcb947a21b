//! MAIL FROM and RCPT TO paths (RFC 5321 §4.1.2, RFC 6531).
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &str| {
    let _ = message::address::parse_reverse_path(input, true);
    let _ = message::address::parse_forward_path(input, false);
});
