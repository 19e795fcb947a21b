//! MTA-STS policy files and `_mta-sts` records (RFC 8461), as fetched from others.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: &str| {
    if let Ok(policy) = dns::mta_sts::parse(input) {
        // What we read, we can write and read back the same.
        assert_eq!(
            dns::mta_sts::parse(&policy.text()).ok(),
            Some(policy.clone())
        );
        let _ = policy.matches("mx.example.org");
    }
    let _ = dns::mta_sts::record_id(&[input.to_string()]);
});
