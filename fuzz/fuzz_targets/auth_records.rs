//! DNS records other servers publish, read by Tern: SPF (RFC 7208) and
//! DMARC (RFC 7489). Never a panic; an SPF record is either parsed or a
//! syntax error.
#![no_main]
libfuzzer_sys::fuzz_target!(|txt: &[u8]| {
    let _ = policy::spf::parse_record(txt);
    if let Ok(text) = std::str::from_utf8(txt) {
        let _ = policy::dmarc::Record::parse(text);
    }
});
