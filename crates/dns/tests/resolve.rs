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
