//! The openspf.org RFC 7208 test suite (release 2014.04, `tests/spf/`),
//! every scenario played as an SMTP session against the MX session state
//! machine: a test DNS server serves the scenario's zone, XCLIENT presents
//! the client address and HELO name, `MAIL FROM` carries the sender. A
//! `fail` must be refused at MAIL with the domain's explanation (RFC 7208
//! §8.4), a `temperror` deferred; every other result must be accepted and
//! show in the delivered message's Authentication-Results.
//!
//! Four senders of the suite cannot be written in SMTP at all (no local
//! part, an empty label, a 64-octet label, an unquoted space): the session
//! must refuse them at MAIL, and the evaluator is checked on them directly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use delivery::{Mda, MdaConfig};
use net::Session;
use policy::spf::{self, SpfRequest};
use serde::Deserialize;
use smtp::{Role, Services, SmtpConfig, SmtpSession};
use testkit::dns::TestDns;
use testkit::fixture;
use testkit::memory::conn_info;

#[derive(Deserialize)]
struct Scenario {
    description: String,
    zonedata: BTreeMap<String, Vec<serde_json::Value>>,
    tests: BTreeMap<String, Case>,
}

#[derive(Deserialize)]
struct Case {
    spec: String,
    helo: String,
    host: String,
    mailfrom: String,
    result: Vec<String>,
    explanation: Option<String>,
}

/// Senders that are not RFC 5321 paths.
const NOT_SMTP: [&str; 4] = [
    "nolocalpart",
    "emptylabel",
    "toolonglabel",
    "dorky-sentinel",
];

fn scenarios() -> Vec<Scenario> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/spf/rfc7208-tests.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The zone as the suite's drivers build it: SPF records are served as TXT
/// unless the name has TXT records of its own ("NONE" stands for no
/// record); a bare TIMEOUT makes questions about missing types time out
/// (served as SERVFAIL: the same temporary failure, without the wait).
fn load_zone(dns: &TestDns, zone: &BTreeMap<String, Vec<serde_json::Value>>) {
    for (name, records) in zone {
        let has_txt = records
            .iter()
            .any(|r| r.as_object().is_some_and(|o| o.contains_key("TXT")));
        for record in records {
            let Some(object) = record.as_object() else {
                assert_eq!(record, "TIMEOUT", "{name}");
                dns.servfail_unanswered(name);
                continue;
            };
            for (kind, value) in object {
                if value == "NONE" {
                    continue;
                }
                match kind.as_str() {
                    "SPF" if has_txt => {}
                    "SPF" | "TXT" => {
                        // An empty list (the suite's "null-text") is served as one
                        // empty string: RFC 1035 §3.3.14 TXT data has at least one.
                        let mut strings: Vec<Vec<u8>> = match value {
                            serde_json::Value::Array(parts) => parts
                                .iter()
                                .map(|p| p.as_str().unwrap().as_bytes().to_vec())
                                .collect(),
                            v => vec![v.as_str().unwrap().as_bytes().to_vec()],
                        };
                        if strings.is_empty() {
                            strings.push(Vec::new());
                        }
                        let refs: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
                        dns.txt_strings(name, &refs);
                    }
                    "A" => {
                        dns.a(name, value.as_str().unwrap().parse().unwrap());
                    }
                    "AAAA" => {
                        dns.aaaa(name, value.as_str().unwrap().parse().unwrap());
                    }
                    "MX" => {
                        let pref = value[0].as_u64().unwrap() as u16;
                        let host = value[1].as_str().unwrap();
                        dns.mx(name, pref, if host.is_empty() { "." } else { host });
                    }
                    "PTR" => {
                        dns.ptr_at(name, value.as_str().unwrap());
                    }
                    "CNAME" => {
                        dns.cname(name, value.as_str().unwrap());
                    }
                    other => panic!("{name}: record type {other} not served"),
                }
            }
        }
    }
}

struct Mx {
    store: Arc<dyn store::Store>,
    services: Arc<Services>,
    config: Arc<SmtpConfig>,
    resolver: dns::Resolver,
    _dir: tempfile::TempDir,
}

async fn mx(dns: &TestDns) -> Mx {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&store::Backend::Sqlite(dir.path().into())).unwrap();
    fixture::populate_store(&store).await;
    let resolver = dns::Resolver::new(&dns::DnsConfig {
        nameservers: vec![dns.addr()],
        timeout: Some(Duration::from_millis(500)),
        ..Default::default()
    })
    .unwrap();
    let verifier = policy::verify::Verifier::new(
        resolver.clone(),
        Arc::new(policy::psl::PublicSuffixList::shipped()),
        policy::verify::VerifyConfig {
            authserv_id: fixture::HOST.into(),
            spf_reject: true,
            dmarc_enforce: true,
            trusted_arc_sealers: vec![],
            require_from: true,
        },
    );
    let checks = antispam::Checks::new(
        antispam::AntispamConfig {
            hostname: fixture::HOST.into(),
            ..Default::default()
        },
        Some(Arc::new(verifier)),
        resolver.clone(),
        store.clone(),
        clock::system(),
    );
    let services = Arc::new(Services {
        mda: Arc::new(Mda::new(store.clone(), MdaConfig::default())),
        auth: Arc::new(auth::Authenticator::new(
            store.clone(),
            auth::ThrottleConfig::default(),
        )),
        checks: Arc::new(checks),
        signer: None,
        spool: message::spool::Spool::memory(),
    });
    let mut config = SmtpConfig::new(fixture::HOST, Role::Mx);
    config.error_delay = Duration::ZERO;
    config.xclient_trusted = vec!["127.0.0.1/32".parse().unwrap()];
    Mx {
        store,
        services,
        config: Arc::new(config),
        resolver,
        _dir: dir,
    }
}

/// One line to the session, its reply.
async fn say(session: &mut SmtpSession, line: &str) -> String {
    let mut input = BytesMut::from(format!("{line}\r\n").as_bytes());
    let mut out = Vec::new();
    session.receive(&mut input, &mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// What the MX made of the case: the SPF result word, and the text of a
/// refusal at MAIL (None when the message was accepted).
async fn over_smtp(mx: &Mx, case: &Case) -> (String, Option<String>) {
    let mut session = SmtpSession::new(mx.config.clone(), mx.services.clone(), &conn_info(false));
    let mut greeting = Vec::new();
    session.greeting(&mut greeting);
    assert!(
        say(&mut session, "EHLO tester.test")
            .await
            .starts_with("250")
    );
    let ip: IpAddr = case.host.parse().unwrap();
    let xclient = format!(
        "XCLIENT ADDR={} HELO={}",
        message::xtext::encode(&ip.to_string()),
        message::xtext::encode(&case.helo)
    );
    assert!(
        say(&mut session, &xclient).await.starts_with("220"),
        "{xclient}"
    );
    let reply = say(&mut session, &format!("MAIL FROM:<{}>", case.mailfrom)).await;
    if reply.starts_with("550 5.7.23") {
        return ("fail".into(), Some(reply));
    }
    if reply.starts_with("451 4.7.24") {
        return ("temperror".into(), Some(reply));
    }
    assert!(reply.starts_with("250"), "MAIL: {reply}");
    assert!(
        say(&mut session, "RCPT TO:<alice@a.test>")
            .await
            .starts_with("250")
    );
    assert!(say(&mut session, "DATA").await.starts_with("354"));
    let message = "From: tester@a.test\r\nSubject: spf\r\n\r\nbody\r\n.";
    let reply = say(&mut session, message).await;
    assert!(reply.starts_with("250"), "end of data: {reply}");
    let inbox = fixture::mailbox(&mx.store, "alice@a.test", "INBOX")
        .await
        .unwrap();
    let last = String::from_utf8_lossy(inbox.last().unwrap()).into_owned();
    let word = last
        .split("spf=")
        .nth(1)
        .and_then(|rest| rest.split([' ', ';', '\r']).next())
        .unwrap_or_else(|| panic!("no spf= in\n{last}"))
        .to_string();
    (word, None)
}

async fn direct(mx: &Mx, case: &Case) -> (String, Option<String>) {
    let request = SpfRequest {
        ip: case.host.parse().unwrap(),
        helo: &case.helo,
        mail_from: &case.mailfrom,
        receiver: fixture::HOST,
        now: 0,
    };
    let outcome = spf::check(&mx.resolver, &request).await;
    let text = outcome
        .explanation
        .clone()
        .unwrap_or("does not allow".into());
    (outcome.result.as_str().to_string(), Some(text))
}

async fn play(scenario: &Scenario) -> Vec<String> {
    let dns = TestDns::start().await;
    load_zone(&dns, &scenario.zonedata);
    let mx = mx(&dns).await;
    let mut wrong = Vec::new();
    for (name, case) in &scenario.tests {
        let (result, refusal) = if NOT_SMTP.contains(&name.as_str()) {
            let reply = mail_reply(&mx, case).await;
            assert!(
                reply.starts_with("501") || reply.starts_with("553"),
                "{name}: {reply}"
            );
            direct(&mx, case).await
        } else {
            over_smtp(&mx, case).await
        };
        let mut ok = case.result.contains(&result);
        if let (Some(expected), true) = (&case.explanation, result == "fail") {
            let text = refusal.unwrap_or_default();
            ok &= match expected.as_str() {
                "DEFAULT" => text.contains("does not allow"),
                exp => text.contains(exp),
            };
            if !ok {
                wrong.push(format!(
                    "{} / {name} (§{}): {result} {text:?}, expected {:?} {expected:?}",
                    scenario.description, case.spec, case.result
                ));
                continue;
            }
        }
        if !ok {
            wrong.push(format!(
                "{} / {name} (§{}): {result}, expected {:?}",
                scenario.description, case.spec, case.result
            ));
        }
    }
    wrong
}

/// The reply to MAIL for a sender that is not an SMTP path.
async fn mail_reply(mx: &Mx, case: &Case) -> String {
    let mut session = SmtpSession::new(mx.config.clone(), mx.services.clone(), &conn_info(false));
    say(&mut session, "EHLO tester.test").await;
    say(&mut session, &format!("MAIL FROM:<{}>", case.mailfrom)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7208_suite_over_smtp() {
    let scenarios = scenarios();
    let total: usize = scenarios.iter().map(|s| s.tests.len()).sum();
    assert_eq!(total, 203, "the 2014.04 suite has 203 cases");
    let mut wrong = Vec::new();
    for scenario in &scenarios {
        wrong.extend(play(scenario).await);
    }
    assert!(
        wrong.is_empty(),
        "{} of {total} cases wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
