//! RFC 5322 header sections and MIME trees, as they arrive in messages.
#![no_main]
libfuzzer_sys::fuzz_target!(|message: &[u8]| {
    let end = message::header::header_end(message);
    assert!(end <= message.len());
    for field in message::header::fields(message) {
        let _ = message::header::addresses(field.value);
        let _ = message::header::decoded(field.value);
        let _ = message::header::message_ids(field.value);
    }
    let _ = message::mime::parse(message);
});
