//! SMTP command lines (RFC 5321 §4.1) and their parameters, as a client sends them.
#![no_main]
libfuzzer_sys::fuzz_target!(|line: &[u8]| {
    let _ = smtp::command::parse(line);
});
