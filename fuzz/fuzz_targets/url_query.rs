//! Query strings of HTTP requests (RFC 3986).
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &str| {
    let _ = web::percent_decode(input);
});
