//! Reports other servers send to our report addresses: DMARC aggregate
//! reports (XML, gzip, zip) and TLS reports (JSON, gzip), as whole messages
//! (RFC 7489 §7.2, RFC 8460). Unpacking is bounded (C-MM9).
#![no_main]
libfuzzer_sys::fuzz_target!(|message: &[u8]| {
    let _ = policy::feedback::parse(message, 0);
});
