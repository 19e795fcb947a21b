//! POP3 command lines (RFC 1939).
#![no_main]
libfuzzer_sys::fuzz_target!(|line: &[u8]| {
    let _ = pop3::command::parse(line);
});
