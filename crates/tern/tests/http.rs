//! The http and https listeners against a real `tern serve`: `/metrics`
//! read by Prometheus's own text-format parser (PyPI prometheus-client)
//! with the counters moving as mail flows, the allow-list, and client
//! autoconfiguration read by standard XML and property-list parsers, the
//! same services as the SRV records `dns records` prints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use testkit::TernServer;

fn scrape(server: &TernServer) -> Value {
    let url = format!("http://{}/metrics", server.addr("http"));
    serde_json::from_slice(&common::python("prom_scrape.py", &[&url], b"")).unwrap()
}

fn sample(metrics: &Value, key: &str) -> f64 {
    metrics.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// An IMAP session over plain TCP: greeting read, then each command's
/// tagged answer (or the IDLE continuation) read.
struct Imap(TcpStream);

impl Imap {
    fn connect(server: &TernServer) -> Imap {
        let s = TcpStream::connect(server.addr("imap")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut imap = Imap(s);
        imap.until("* OK");
        imap
    }

    fn until(&mut self, end: &str) -> String {
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        while !got.contains(end) {
            let n = self.0.read(&mut buf).unwrap();
            assert!(n > 0, "closed before {end:?}: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    }

    fn command(&mut self, tag: &str, line: &str, end: &str) -> String {
        self.0
            .write_all(format!("{tag} {line}\r\n").as_bytes())
            .unwrap();
        self.until(end)
    }
}

/// `(delta, key)`: each counter must have grown by at least this much.
fn assert_grew(before: &Value, after: &Value, expected: &[(f64, &str)]) {
    for (delta, key) in expected {
        let (b, a) = (sample(before, key), sample(after, key));
        assert!(a - b >= *delta, "{key}: {b} -> {a}, expected +{delta}");
    }
}

#[test]
fn metrics_move_as_mail_flows() {
    let listeners = testkit::ephemeral_listeners(&["smtp", "imap", "http"]);
    let server = common::smtp_server_with(&listeners, "[imap]\nplaintext_on_loopback = true\n");
    let before = scrape(&server);
    let types = &before["__types__"];
    assert_eq!(types["tern_store_commit_seconds"], "histogram");
    // The parser names a counter family without its `_total`.
    assert_eq!(types["tern_connections"], "counter");
    assert_eq!(types["tern_queue_messages"], "gauge");

    testkit::send_smtp(
        server.addr("smtp"),
        "x@far.test",
        "alice@a.test",
        "Subject: m\r\n\r\nhi",
    );
    let mut refused = TcpStream::connect(server.addr("smtp")).unwrap();
    refused
        .write_all(b"EHLO x\r\nMAIL FROM:<x@far.test>\r\nRCPT TO:<nobody@a.test>\r\nQUIT\r\n")
        .unwrap();
    let mut rest = String::new();
    refused.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("550 5.1.1"), "{rest}");

    let mut wrong = Imap::connect(&server);
    let no = wrong.command("a", "LOGIN alice@a.test wrong", "a NO");
    assert!(no.contains("a NO"), "{no}");
    let mut imap = Imap::connect(&server);
    imap.command("a", "LOGIN alice@a.test alice-pw", "a OK");
    imap.command("b", "SELECT INBOX", "b OK");
    imap.command("c", "IDLE", "+ ");

    let during = scrape(&server);
    assert_grew(
        &before,
        &during,
        &[
            (1.0, "tern_smtp_messages_accepted_total{role=mx}"),
            (1.0, "tern_smtp_recipients_accepted_total{role=mx}"),
            (1.0, "tern_smtp_refused_total{reason=5.1.1,role=mx}"),
            (2.0, "tern_connections_total{listener=smtp}"),
            (2.0, "tern_connections_total{listener=imap}"),
            (1.0, "tern_auth_total{result=failure}"),
            (1.0, "tern_auth_total{result=success}"),
            (1.0, "tern_store_commit_seconds_count{}"),
            (1.0, "tern_http_requests_total{route=metrics,status=200}"),
        ],
    );
    assert_eq!(sample(&during, "tern_imap_idle{}"), 1.0);
    assert_eq!(sample(&during, "tern_imap_sessions{}"), 1.0);
    // Buckets are cumulative and end with +Inf, which counts every commit.
    assert_eq!(
        sample(&during, "tern_store_commit_seconds_bucket{le=+Inf}"),
        sample(&during, "tern_store_commit_seconds_count{}")
    );

    imap.0.write_all(b"DONE\r\n").unwrap();
    imap.until("c OK");
    drop(imap);
    drop(wrong);
    // The gauges come back down when IDLE ends and the sessions close.
    let mut after = scrape(&server);
    for _ in 0..50 {
        if sample(&after, "tern_imap_sessions{}") == 0.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = scrape(&server);
    }
    assert_eq!(sample(&after, "tern_imap_idle{}"), 0.0);
    assert_eq!(sample(&after, "tern_imap_sessions{}"), 0.0);
    assert_eq!(sample(&after, "tern_connections_open{listener=imap}"), 0.0);
}

#[test]
fn metrics_only_for_the_allowed_ranges() {
    let listeners = testkit::ephemeral_listeners(&["smtp", "http"]);
    let server =
        common::smtp_server_with(&listeners, "[http]\nmetrics_allow = [\"192.0.2.0/24\"]\n");
    let (status, _) = http(
        &server,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 403);
}

/// One request on a new connection: (status, whole response).
fn http(server: &TernServer, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(server.addr("http")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let got = String::from_utf8_lossy(&got).into_owned();
    let status = got
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {got}"));
    (status, got)
}

/// Client autoconfiguration at fixed ports on 127.0.160.1 (ports a client
/// can be told; ephemeral ones are not published).
#[test]
fn clients_configure_themselves() {
    let ip = "127.0.160.1";
    let listeners = format!(
        "[listeners]\nsmtp = \"{ip}:0\"\nsubmission = \"{ip}:10587\"\nsubmissions = \"{ip}:10465\"\n\
         imaps = \"{ip}:10993\"\npop3 = \"{ip}:10110\"\nhttp = \"{ip}:0\"\nhttps = \"{ip}:0\"\n"
    );
    let server = common::smtp_server_with(&listeners, "");
    let base = format!("http://{}", server.addr("http"));
    let got: Value = serde_json::from_slice(&common::python(
        "autoconfig_fetch.py",
        &[&base, "bob+lists@A.test"],
        b"",
    ))
    .unwrap();
    let host = testkit::fixture::HOST;
    let tb = &got["thunderbird"];
    assert_eq!(tb["domain"], "a.test");
    // (kind, port, TLS) of each server; every server at our host name.
    let servers = |list: &Value, [kind, name, port, tls, user]: [usize; 5], login: &str| {
        let rows: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!(s[name], host);
                assert_eq!(s[user], login);
                format!(
                    "{} {} {}",
                    s[kind].as_str().unwrap(),
                    s[port],
                    s[tls].as_str().unwrap()
                )
            })
            .collect();
        rows.join(", ")
    };
    assert_eq!(
        servers(&tb["servers"], [1, 2, 3, 4, 5], "%EMAILADDRESS%"),
        "imap 10993 SSL, pop3 10110 STARTTLS, smtp 10465 SSL, smtp 10587 STARTTLS"
    );
    assert_eq!(
        servers(&got["autodiscover"], [0, 1, 2, 3, 4], "bob+lists@a.test"),
        "IMAP 10993 SSL, POP3 10110 TLS, SMTP 10465 SSL, SMTP 10587 TLS"
    );
    let apple = &got["mobileconfig"];
    assert_eq!(apple["content_type"], "application/x-apple-aspen-config");
    assert_eq!(apple["type"], "com.apple.mail.managed");
    assert_eq!(apple["incoming"], serde_json::json!([host, 10993]));
    assert_eq!(apple["outgoing"], serde_json::json!([host, 10465]));
    assert_eq!(apple["user"], "bob+lists@a.test");

    // The SRV records tell the same ports.
    let records = server.admin_ok(&["dns", "records", "a.test"]);
    for (label, port) in [
        ("_imaps", 10993),
        ("_pop3", 10110),
        ("_submissions", 10465),
        ("_submission", 10587),
    ] {
        let line = format!("{label}._tcp.a.test. 3600 IN SRV 0 1 {port} {host}.");
        assert!(records.contains(&line), "{line} not in:\n{records}");
    }
    assert!(!records.contains("_imap._tcp"), "{records}");

    // autoconfig.DOMAIN: the domain from the host name asked for.
    let (status, body) = http(
        &server,
        "GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.a.test\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<domain>a.test</domain>"), "{body}");

    // Over https too (ALPN h2), with curl as the client.
    let out = std::process::Command::new("curl")
        .args([
            "-sk",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .arg(format!(
            "https://{}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=bob%40a.test",
            server.addr("https")
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200 2");
}

#[test]
fn bad_requests_get_clear_answers() {
    let listeners = testkit::ephemeral_listeners(&["smtp", "http"]);
    let server = common::smtp_server_with(&listeners, "");
    let get = |target: &str| {
        http(
            &server,
            &format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    };
    // Not one of our domains, no address, not an address, a bad escape.
    assert_eq!(
        get("/mail/config-v1.1.xml?emailaddress=j%40elsewhere.test").0,
        404
    );
    assert_eq!(get("/mail/config-v1.1.xml").0, 400);
    assert_eq!(get("/apple/mail.mobileconfig?emailaddress=nobody").0, 400);
    assert_eq!(get("/apple/mail.mobileconfig?emailaddress=%zz").0, 400);
    assert_eq!(get("/no/such/page").0, 404);
    let (status, text) = http(
        &server,
        "DELETE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert!(
        text.to_ascii_lowercase().contains("allow: get, head"),
        "{text}"
    );
    let (status, _) = http(
        &server,
        "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n<Request/>",
    );
    assert_eq!(status, 400);
    // A body over the bound is refused, not read.
    let big = "x".repeat(100_000);
    let (status, _) = http(
        &server,
        &format!(
            "POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{big}",
            big.len()
        ),
    );
    assert_eq!(status, 413);
    // Our MTA-STS policy, for our domains only (RFC 8461 §3.2).
    let sts = |host: &str| {
        http(
            &server,
            &format!(
                "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    let (status, body) = sts("mta-sts.a.test");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{body}"
    );
    assert!(
        body.ends_with("version: STSv1\r\nmode: testing\r\nmx: mx.a.test\r\nmax_age: 604800\r\n"),
        "{body}"
    );
    assert_eq!(sts("mta-sts.elsewhere.test").0, 404);
    assert_eq!(sts("a.test").0, 404);
    // Garbage is answered 400 and the server lives on.
    let (status, _) = http(&server, "NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(status, 400);
    assert_eq!(get("/metrics").0, 200);
}
