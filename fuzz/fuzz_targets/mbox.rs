//! mbox files (RFC 4155), as `tern import` reads them.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let mut reader = message::mbox::MboxReader::new(input);
    let mut total = 0;
    while let Ok(Some(m)) = reader.next_message() {
        total += m.raw.len();
        assert!(total <= input.len());
    }
});
