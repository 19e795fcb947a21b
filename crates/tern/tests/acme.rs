//! Certificates from an ACME CA (RFC 8555): Debian's `pebble` (a test CA
//! that really validates challenges, asking our test DNS where the names
//! are) issues Tern's certificate over http-01, then again when it is due
//! for renewal (pebble's certificates live 60 s here, renewal starts with
//! 50 s left). Every listener serves the new one from the next handshake;
//! a session opened before goes on undisturbed. The TLSA record of the key
//! the next certificate will have is printed before it is used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr};

use common::{MailNet, mx_port};

/// pebble on 127.0.N.2:14000 with its own certificate (made here: the
/// package has none), checking http-01 on `http_port` and tls-alpn-01 on
/// `tls_port`, asking `dns` where the names are.
struct Pebble {
    child: std::process::Child,
    ca_file: String,
    url: String,
}

impl Pebble {
    fn start(
        dir: &std::path::Path,
        ip: Ipv4Addr,
        (http_port, tls_port): (u16, u16),
        dns: SocketAddr,
    ) -> Pebble {
        let own = dir.join("pebble");
        std::fs::create_dir(&own).unwrap();
        let (cert, key) = common::certificate(&own, &[&ip.to_string()]);
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("{ip}:14000"),
            "managementListenAddress": format!("{ip}:15000"),
            "certificate": cert,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": 60,
        }});
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let mut child = std::process::Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &dns.to_string()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("pebble: {e} (see scripts/install-test-deps)"));
        // Ready when it says it listens.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            if line.unwrap().contains("Listening on") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Pebble {
            child,
            ca_file: cert,
            url: format!("https://{ip}:14000/dir"),
        }
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The certificate a TLS handshake with `addr` shows: (issuer, serial).
fn served(net: &MailNet, addr: SocketAddr) -> (String, String) {
    net.rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let client = net::tls::opportunistic_client(&[b"http/1.1"]).unwrap();
        let name = rustls::pki_types::ServerName::try_from("mx.acme.test").unwrap();
        let tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .unwrap();
        let der = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        (cert.issuer().to_string(), cert.raw_serial_as_string())
    })
}

#[test]
fn certificates_come_from_acme_and_renew_in_place() {
    let net = MailNet::new(168);
    let dir = tempfile::tempdir().unwrap();
    let ip = net.ip(20);
    let (http, https) = if mx_port() == 25 {
        (80, 443)
    } else {
        (8080, 8443)
    };
    let pebble = Pebble::start(dir.path(), net.ip(2), (http, https), net.dns.addr());
    let tern = net.tern(
        20,
        "acme.test",
        &[],
        &format!(
            "[listeners]\nhttp = \"{ip}:{http}\"\nhttps = \"{ip}:{https}\"\n\
             [acme]\ndirectory = \"{}\"\nca_file = \"{}\"\ncontact = \"mailto:admin@acme.test\"\n\
             renew_before = \"50s\"\n",
            pebble.url, pebble.ca_file
        ),
    );
    let https_addr: SocketAddr = (ip, https).into();

    // The first certificate: self-signed at start, pebble's once issued.
    let mut first = served(&net, https_addr);
    net.wait(60, "a certificate from pebble", &[&tern], || {
        first = served(&net, https_addr);
        first.0.contains("Pebble")
    });
    // The next key's TLSA is published ahead of its use.
    let records = tern.admin_ok(&["dns", "records", "acme.test"]);
    let next = records
        .lines()
        .find(|l| l.contains("the next certificate's key"))
        .unwrap_or_else(|| panic!("no next-key TLSA in:\n{records}"))
        .split_whitespace()
        .nth(7)
        .unwrap()
        .to_string();

    // A session opened now lives through the renewal.
    let smtp = SocketAddr::from((ip, mx_port()));
    let mut session = std::net::TcpStream::connect(smtp).unwrap();
    session
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(session.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("220"), "{line}");

    // Renewal: a new certificate (another serial), with the key announced.
    let mut second = first.clone();
    net.wait(60, "the renewed certificate", &[&tern], || {
        second = served(&net, https_addr);
        second.1 != first.1 && second.0.contains("Pebble")
    });
    let records = tern.admin_ok(&["dns", "records", "acme.test"]);
    let current = records
        .lines()
        .find(|l| l.starts_with("_25._tcp.mx.acme.test.") && !l.contains("next"))
        .unwrap()
        .split_whitespace()
        .nth(7)
        .unwrap()
        .to_string();
    assert_eq!(
        current, next,
        "the renewed certificate has the announced key"
    );

    session.write_all(b"NOOP\r\n").unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("250"), "the old session: {line}");
    // The served certificate file is the new one (what `dns check` reads).
    assert!(
        tern.data_dir().join("acme").join("cert.pem").exists()
            && tern.data_dir().join("acme").join("account.json").exists()
    );
    drop(pebble);
}

/// Without an http listener the challenge is tls-alpn-01 (RFC 8737): the
/// https listener shows pebble the challenge certificate for ALPN
/// `acme-tls/1`, and the issued certificate to everyone else.
#[test]
fn tls_alpn_01_on_the_https_listener() {
    let net = MailNet::new(169);
    let dir = tempfile::tempdir().unwrap();
    let ip = net.ip(20);
    let https = if mx_port() == 25 { 443 } else { 8443 };
    let pebble = Pebble::start(dir.path(), net.ip(2), (9, https), net.dns.addr());
    let tern = net.tern(
        20,
        "acme.test",
        &[],
        &format!(
            "[listeners]\nhttps = \"{ip}:{https}\"\n\
             [acme]\ndirectory = \"{}\"\nca_file = \"{}\"\n",
            pebble.url, pebble.ca_file
        ),
    );
    let https_addr: SocketAddr = (ip, https).into();
    net.wait(60, "a certificate from pebble", &[&tern], || {
        served(&net, https_addr).0.contains("Pebble")
    });
    assert!(tern.log().contains("ACME: new certificate installed"));
}
