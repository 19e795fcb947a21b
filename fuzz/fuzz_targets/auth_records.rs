//! DNS records other servers publish, read by Tern: SPF (RFC 7208),
//! DMARC (RFC 7489) and TLS-RPT (RFC 8460). Never a panic; an SPF record
//! is either parsed or a syntax error; and every report destination Tern
//! takes from a DMARC or TLS-RPT record is one valid address (the record
//! is its owner's to write, and the address goes into a report's To
//! field: C-FZ12) or an https URL with a host.
#![no_main]
use message::Mailbox;

libfuzzer_sys::fuzz_target!(|txt: &[u8]| {
    let _ = policy::spf::parse_record(txt);
    let Ok(text) = std::str::from_utf8(txt) else {
        return;
    };
    if let Some(record) = policy::dmarc::Record::parse(text) {
        for d in policy::aggregate::destinations(&record.rua.join(",")) {
            assert_valid(&d.address);
        }
    }
    let (mail, https) = outbound::tls_reports::destinations(&[text.to_string()]);
    for address in &mail {
        assert_valid(address);
    }
    for url in &https {
        assert!(dns::https::parts(url).is_some(), "{url:?}");
        assert!(!url.chars().any(char::is_control), "{url:?}");
    }
});

/// One mailbox, written back the same, nothing that could end a field.
fn assert_valid(address: &str) {
    let parsed = Mailbox::parse(address).unwrap_or_else(|e| panic!("{address:?}: {e}"));
    assert_eq!(parsed.to_string(), address);
    assert!(!address.chars().any(char::is_control), "{address:?}");
}
