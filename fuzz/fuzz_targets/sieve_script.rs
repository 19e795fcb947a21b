//! Sieve scripts (RFC 5228 and extensions), as users upload them.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = sieve::compile(text);
});
