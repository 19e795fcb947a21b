//! Another server's IMAP responses, as `tern import imaps://` reads them.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    if let Ok(Some(n)) = imap::client::response_len(input, 1 << 20) {
        assert!(n <= input.len());
        if let Ok(tokens) = imap::client::tokens(&input[..n]) {
            let _ = imap::client::fetched(&tokens);
            let _ = imap::client::listed(&tokens);
        }
    }
});
