//! The resolver against a DNS server the test runs: MX plans, null MX,
//! NXDOMAIN, no records, SERVFAIL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dns::{DnsConfig, DnsError, MxPlan, Resolver};
use testkit::dns::TestDns;

#[tokio::test]
async fn outcomes() {
    let z = TestDns::start().await;
    z.mx("a.test", 10, "mx1.a.test")
        .mx("a.test", 20, "mx2.a.test")
        .a("mx1.a.test", "127.0.0.5".parse().unwrap())
        .aaaa("mx1.a.test", "::1".parse().unwrap());
    z.a("implicit.test", "127.0.0.6".parse().unwrap());
    z.mx("nullmx.test", 0, ".");
    z.servfail("broken.test");
    z.txt("a.test", "v=spf1 mx -all");
    let r = Resolver::new(&DnsConfig {
        nameservers: vec![z.addr()],
        timeout: Some(std::time::Duration::from_secs(2)),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        r.mx_plan("a.test").await.unwrap(),
        MxPlan::Hosts(vec!["mx1.a.test".into(), "mx2.a.test".into()])
    );
    assert_eq!(
        r.mx_plan("implicit.test").await.unwrap(),
        MxPlan::Hosts(vec!["implicit.test".into()])
    );
    assert_eq!(r.mx_plan("nullmx.test").await.unwrap(), MxPlan::NullMx);
    assert_eq!(
        r.mx_plan("nowhere.test").await,
        Err(DnsError::NoSuchDomain("nowhere.test".into()))
    );
    assert!(r.mx_plan("broken.test").await.unwrap_err().is_temporary());
    assert_eq!(
        r.addresses("mx1.a.test").await.unwrap(),
        vec![
            "::1".parse::<std::net::IpAddr>().unwrap(),
            "127.0.0.5".parse().unwrap()
        ]
    );
    assert_eq!(
        r.addresses("a.test").await,
        Err(DnsError::NoRecords("a.test".into()))
    );
    assert_eq!(
        r.txt("a.test").await.unwrap(),
        vec!["v=spf1 mx -all".to_string()]
    );
}

/// The validating path (RFC 4035 §4.3) against a test DNS that signs its
/// root and a delegated zone: secure, insecure and bogus answers.
#[tokio::test]
async fn dnssec_secure_insecure_bogus() {
    let z = TestDns::start().await;
    let anchor = z.dnssec();
    z.signed_zone("signed.test").unsigned_zone("plain.test");
    z.mx("signed.test", 10, "mx.signed.test")
        .a("mx.signed.test", "127.0.0.5".parse().unwrap())
        .tlsa("_25._tcp.mx.signed.test", 3, 1, 1, &[7u8; 32])
        .a("nomail.signed.test", "127.0.0.6".parse().unwrap())
        .a("forged.signed.test", "127.0.0.7".parse().unwrap())
        .tlsa("_25._tcp.forged.signed.test", 3, 1, 1, &[8u8; 32])
        .bogus("_25._tcp.forged.signed.test")
        .bogus("forged.signed.test");
    z.mx("plain.test", 10, "mx.plain.test")
        .a("mx.plain.test", "127.0.0.8".parse().unwrap())
        .tlsa("_25._tcp.mx.plain.test", 3, 1, 1, &[9u8; 32]);
    let r = Resolver::new(&DnsConfig {
        nameservers: vec![z.addr()],
        timeout: Some(std::time::Duration::from_secs(2)),
        dnssec: true,
        trust_anchor: Some(anchor),
    })
    .unwrap();

    assert!(r.dnssec_ready().await);
    let mx = r.secure_mx("signed.test").await.unwrap();
    assert!(mx.secure, "{mx:?}");
    assert_eq!(mx.value, vec![(10, "mx.signed.test".to_string())]);
    let a = r.secure_addresses("mx.signed.test").await.unwrap();
    assert!(a.secure && a.value == vec!["127.0.0.5".parse::<std::net::IpAddr>().unwrap()]);
    let tlsa = r.secure_tlsa("_25._tcp.mx.signed.test").await.unwrap();
    assert!(tlsa.secure && tlsa.value[0].data == [7u8; 32], "{tlsa:?}");
    // Proved absent (NSEC): no records, not a failure.
    assert_eq!(
        r.secure_tlsa("_25._tcp.nomail.signed.test").await,
        Err(DnsError::NoSuchDomain("_25._tcp.nomail.signed.test".into()))
    );
    assert!(matches!(
        r.secure_mx("nomail.signed.test").await,
        Err(DnsError::NoRecords(_))
    ));

    // An unsigned zone: answers, not secure.
    let mx = r.secure_mx("plain.test").await.unwrap();
    assert!(!mx.secure && mx.value == vec![(10, "mx.plain.test".to_string())]);
    let tlsa = r.secure_tlsa("_25._tcp.mx.plain.test").await.unwrap();
    assert!(!tlsa.secure);

    // A forged signature: bogus, never an answer.
    assert!(
        matches!(
            r.secure_tlsa("_25._tcp.forged.signed.test").await,
            Err(DnsError::Bogus(..))
        ),
        "{:?}",
        r.secure_tlsa("_25._tcp.forged.signed.test").await
    );
    assert!(matches!(
        r.secure_addresses("forged.signed.test").await,
        Err(DnsError::Bogus(..))
    ));

    // A key that is not the root's: nothing is secure.
    let stranger = TestDns::start().await.dnssec();
    let r = Resolver::new(&DnsConfig {
        nameservers: vec![z.addr()],
        timeout: Some(std::time::Duration::from_secs(2)),
        dnssec: true,
        trust_anchor: Some(stranger),
    })
    .unwrap();
    assert!(
        !r.dnssec_ready().await,
        "a stranger's root key proves nothing"
    );
    let outcome = r.secure_mx("signed.test").await;
    assert!(!matches!(outcome, Ok(ref v) if v.secure), "{outcome:?}");
    // The root's key named by its DS record, as IANA publishes it.
    let r = Resolver::new(&DnsConfig {
        nameservers: vec![z.addr()],
        timeout: Some(std::time::Duration::from_secs(2)),
        dnssec: true,
        trust_anchor: Some(format!("; the root\n{}", z.ds_anchor())),
    })
    .unwrap();
    assert!(r.dnssec_ready().await);
    assert!(r.secure_mx("signed.test").await.unwrap().secure);
    // A DS that matches no key: nothing is validated.
    let wrong = TestDns::start().await;
    wrong.dnssec();
    let r = Resolver::new(&DnsConfig {
        nameservers: vec![z.addr()],
        timeout: Some(std::time::Duration::from_secs(2)),
        dnssec: true,
        trust_anchor: Some(wrong.ds_anchor()),
    })
    .unwrap();
    assert!(!r.dnssec_ready().await);
    // Not a trust anchor at all: refused at start.
    let refused = Resolver::new(&DnsConfig {
        nameservers: vec![z.addr()],
        dnssec: true,
        trust_anchor: Some("example.org. IN A 192.0.2.1".into()),
        ..Default::default()
    });
    assert!(refused.is_err());

    // A server without DNSSEC: validation is not ready (DANE stays off).
    let unsigned = TestDns::start().await;
    unsigned.mx("signed.test", 10, "mx.signed.test");
    let r = Resolver::new(&DnsConfig {
        nameservers: vec![unsigned.addr()],
        timeout: Some(std::time::Duration::from_secs(2)),
        dnssec: true,
        trust_anchor: None,
    })
    .unwrap();
    assert!(!r.dnssec_ready().await);
    // The plain path is unchanged.
    assert_eq!(
        r.mx_plan("signed.test").await.unwrap(),
        MxPlan::Hosts(vec!["mx.signed.test".into()])
    );
}
