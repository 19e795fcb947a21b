//! Shared by the tern integration tests: a server with the standard test world.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use testkit::fixture::{self, StoreProbe};
use testkit::{TernServer, Wire, ephemeral_listeners};

pub const BIN: &str = env!("CARGO_BIN_EXE_tern");

/// Test settings: no deliberate delays, so error paths run fast; DNS goes to a
/// closed port, so queued mail stays queued (deferred) and nothing reaches the
/// real DNS; no sender authentication (it needs DNS: the MailNet tests do it);
/// no greylisting and no pregreet wait (the spam tests turn them on).
pub const FAST: &str = "[auth]\nfailure_delay = \"0s\"\n[smtp]\nerror_delay = \"0s\"\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n[policy]\nverify = false\n[antispam]\ngreylist = false\npregreet_wait = \"0s\"\n";

/// A server with the SMTP listeners and the fixture world (created through the CLI).
/// `extra` is TOML merged over the test defaults.
pub fn smtp_server(extra: &str) -> TernServer {
    smtp_server_with(
        &ephemeral_listeners(&["smtp", "submission", "submissions"]),
        extra,
    )
}

/// A server on `listeners` (TOML) with the fixture world; `extra` merged over
/// the test defaults.
pub fn smtp_server_with(listeners: &str, extra: &str) -> TernServer {
    let config = merge_toml(&[listeners, FAST, extra]);
    let server = TernServer::start(BIN.as_ref(), fixture::HOST, &config);
    fixture::populate_cli(&server);
    server
}

/// A server with every listener built so far and the fixture world.
pub fn full_server(extra: &str) -> TernServer {
    let listeners = ephemeral_listeners(&[
        "smtp",
        "submission",
        "submissions",
        "imap",
        "imaps",
        "pop3",
        "pop3s",
        "managesieve",
    ]);
    let config = merge_toml(&[&listeners, FAST, extra]);
    let server = TernServer::start(BIN.as_ref(), fixture::HOST, &config);
    fixture::populate_cli(&server);
    server
}

/// The server's store, opened from the test process as a second writer would.
pub fn probe(server: &TernServer) -> Arc<StoreProbe> {
    let store = store::open(&store::Backend::Sqlite(server.data_dir())).unwrap();
    Arc::new(StoreProbe(store))
}

/// Merge TOML documents, later keys winning, tables merged key by key.
pub fn merge_toml(parts: &[&str]) -> String {
    fn merge(into: &mut toml::Table, from: toml::Table) {
        for (k, v) in from {
            match (into.get_mut(&k), v) {
                (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
                (_, v) => {
                    into.insert(k, v);
                }
            }
        }
    }
    let mut out = toml::Table::new();
    for p in parts {
        merge(&mut out, p.parse::<toml::Table>().unwrap());
    }
    toml::to_string(&out).unwrap()
}

/// The port MX listeners use in multi-server tests: the standard 25 when we may
/// bind it (root), else 2525. Every server of a test has its own address, so
/// they can all use the same port.
pub fn mx_port() -> u16 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    if root { 25 } else { 2525 }
}

/// The port of https listeners in multi-server tests (MTA-STS policies are
/// fetched from 443): 443 when we may bind it (root), else 8443.
pub fn https_port() -> u16 {
    if mx_port() == 25 { 443 } else { 8443 }
}

/// A certificate and key made by openssl for these names (host names or IP
/// addresses), in `dir`: (cert.pem, key.pem).
pub fn certificate(dir: &std::path::Path, names: &[&str]) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let san: Vec<String> = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(_) => format!("IP:{n}"),
            Err(_) => format!("DNS:{n}"),
        })
        .collect();
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args(["-subj", &format!("/CN={}", names[0])])
        .args(["-addext", &format!("subjectAltName={}", san.join(","))])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

/// A test mail network: its own block 127.0.N.0/24 (N unique per test), an
/// authoritative DNS server for the test domains, Tern servers and other peers.
pub struct MailNet {
    pub rt: tokio::runtime::Runtime,
    pub dns: testkit::dns::TestDns,
    block: u8,
}

impl MailNet {
    pub fn new(block: u8) -> MailNet {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dns = rt.block_on(testkit::dns::TestDns::start());
        MailNet { rt, dns, block }
    }

    pub fn ip(&self, host: u8) -> std::net::Ipv4Addr {
        std::net::Ipv4Addr::new(127, 0, self.block, host)
    }

    /// The configuration a Tern at 127.0.N.`host` gets: the MX port on its own
    /// address, submission and IMAP on ephemeral ports, our DNS, retries every
    /// second; `extra` is merged over it.
    pub fn tern_config(&self, host: u8, extra: &str) -> String {
        let ip = self.ip(host);
        let port = mx_port();
        let base = format!(
            "[listeners]\nsmtp = \"{ip}:{port}\"\nsubmission = \"{ip}:0\"\nimap = \"{ip}:0\"\n\
             [dns]\nnameservers = [\"{}\"]\n\
             [outbound]\nport = {port}\nsource = \"{ip}\"\n\
             [queue]\nretry = [\"1s\"]\nmax_age = \"1h\"\n[policy]\nverify = true\n",
            self.dns.addr()
        );
        merge_toml(&[FAST, &base, extra])
    }

    /// A Tern for `domain` (host name mx.DOMAIN) at 127.0.N.`host`, published in
    /// DNS as the domain's MX. a.test gets the fixture world (alice, bob, aliases);
    /// any other domain gets `users` (address, password). Published once it
    /// knows its domain and users, as an operator would: a server retrying
    /// each second must not reach it before, or it refuses the relay for good.
    pub fn tern(&self, host: u8, domain: &str, users: &[(&str, &str)], extra: &str) -> TernServer {
        let mx = format!("mx.{domain}");
        let server = TernServer::start(BIN.as_ref(), &mx, &self.tern_config(host, extra));
        if domain == fixture::DOMAIN {
            fixture::populate_cli(&server);
        } else {
            server.admin_ok(&["domain", "add", domain]);
        }
        for (address, password) in users {
            server.admin_ok(&["account", "add", address, "--password", password]);
        }
        self.dns.mx(domain, 10, &mx).a(&mx, self.ip(host));
        server
    }

    /// The messages in an account's INBOX on `server`.
    pub fn inbox(&self, server: &TernServer, address: &str) -> Vec<Vec<u8>> {
        self.mailbox(server, address, "INBOX")
    }

    /// The messages in one of an account's mailboxes on `server`.
    pub fn mailbox(&self, server: &TernServer, address: &str, name: &str) -> Vec<Vec<u8>> {
        let store = probe(server).0.clone();
        self.rt
            .block_on(fixture::mailbox(&store, address, name))
            .unwrap_or_else(|e| panic!("{name} of {address}: {e}"))
    }

    /// Wait (up to 20 s) for a message in `address`'s INBOX that `matches`; its text.
    pub fn wait_for(
        &self,
        server: &TernServer,
        address: &str,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let mut found = None;
        self.wait(20, &format!("a message for {address}"), &[server], || {
            found = self
                .inbox(server, address)
                .iter()
                .map(|m| text(m))
                .find(|m| matches(m));
            found.is_some()
        });
        found.unwrap_or_default()
    }

    pub fn queue(&self, server: &TernServer) -> Vec<store::QueueSummary> {
        let store = probe(server).0.clone();
        self.rt.block_on(store.queue_list()).unwrap()
    }

    /// Poll `done` every 100 ms for up to `secs` seconds; panic with `what`, the
    /// servers' logs' tails and `why()` when it never holds.
    pub fn wait(
        &self,
        secs: u64,
        what: &str,
        servers: &[&TernServer],
        mut done: impl FnMut() -> bool,
    ) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if done() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let logs: Vec<String> = servers.iter().map(|s| tail(&s.log(), 30)).collect();
        panic!(
            "timed out waiting for {what}\n--- logs ---\n{}",
            logs.join("\n---\n")
        );
    }
}

pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The repository's path for a file (test scripts).
pub fn repo(path: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

/// Submit a message with Python's smtplib (STARTTLS + AUTH) to `server`'s
/// submission port; returns the recipients the server refused.
pub fn submit(
    server: &TernServer,
    user: &str,
    password: &str,
    to: &[&str],
    message: &str,
) -> String {
    submit_with(server, user, password, to, &[], message)
}

/// `submit` with RCPT options (e.g. "NOTIFY=SUCCESS").
pub fn submit_with(
    server: &TernServer,
    user: &str,
    password: &str,
    to: &[&str],
    rcpt_options: &[&str],
    message: &str,
) -> String {
    let addr = server.addr("submission");
    let mut args = vec![
        addr.ip().to_string(),
        addr.port().to_string(),
        user.to_string(),
        password.to_string(),
        user.to_string(),
        to.join(","),
    ];
    args.extend(rcpt_options.iter().map(|o| o.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = String::from_utf8_lossy(&python("submit.py", &args, message.as_bytes())).to_string();
    text.trim().to_string()
}

/// Submit a message the server is expected to refuse whole (at MAIL or
/// DATA): what smtplib said about it (its standard error).
pub fn submit_refused(
    server: &TernServer,
    user: &str,
    password: &str,
    to: &str,
    options: &[&str],
) -> String {
    let addr = server.addr("submission");
    let out = std::process::Command::new("python3")
        .arg(repo("tests/clients/submit.py"))
        .args([
            &addr.ip().to_string(),
            &addr.port().to_string(),
            user,
            password,
            user,
            to,
        ])
        .args(options)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "not refused: {}", text(&out.stdout));
    text(&out.stderr)
}

/// An SMTP server that is not Tern: Python's aiosmtpd (tests/clients/smtp_sink.py),
/// stopped when dropped.
pub struct Sink {
    child: std::process::Child,
    pub dir: tempfile::TempDir,
}

impl Sink {
    pub fn start(ip: std::net::Ipv4Addr, port: u16, options: &[&str]) -> Sink {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("python3")
            .arg(repo("tests/clients/smtp_sink.py"))
            .args([&ip.to_string(), &port.to_string()])
            .arg(dir.path())
            .args(options)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("python3: {e} (see scripts/install-test-deps)"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "smtp_sink.py did not start (is aiosmtpd installed?)"
        );
        Sink { child, dir }
    }

    /// The messages stored so far: (envelope as JSON text, content).
    pub fn messages(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for n in 1.. {
            let base = self.dir.path().join(n.to_string());
            let Ok(content) = std::fs::read(base.with_extension("eml")) else {
                break;
            };
            let meta = std::fs::read_to_string(base.with_extension("json")).unwrap_or_default();
            out.push((meta, content));
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // SIGTERM by PID, then reap it.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl MailNet {
    /// Publish what `tern dns records DOMAIN` prints (TXT records: SPF, DKIM,
    /// DMARC) in the test DNS, and the PTR of the server's address.
    pub fn publish(&self, server: &TernServer, host: u8, domain: &str) {
        let records = server.admin_ok(&["dns", "records", domain]);
        for line in records.lines() {
            let Some((owner, rest)) = line.split_once(". 3600 IN TXT ") else {
                continue;
            };
            // "a" "b" -> ab (zone-file strings of one record).
            let text: String = rest
                .split('"')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect();
            self.dns.txt(owner, &text);
        }
        self.dns.ptr(self.ip(host), &format!("mx.{domain}"));
    }

    /// One SMTP transaction from 127.0.N.`host` to `mx` (as another MTA would
    /// send it, plaintext): the replies to MAIL, RCPT and the end of DATA, or
    /// up to the first refusal.
    pub fn send_from(
        &self,
        host: u8,
        mx: std::net::SocketAddr,
        helo: &str,
        mail_from: &str,
        rcpt: &str,
        message: &[u8],
    ) -> Vec<String> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let source = std::net::SocketAddr::new(self.ip(host).into(), 0);
        // RFC 5321 §4.5.2 dot-stuffing, CRLF line endings.
        let data = outbound::client::wire_form(message, true);
        self.rt.block_on(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(source).unwrap();
            let stream = socket.connect(mx).await.unwrap();
            let mut io = BufReader::new(stream);
            async fn reply<S: tokio::io::AsyncBufRead + Unpin>(io: &mut S) -> String {
                let mut all = String::new();
                loop {
                    let mut line = String::new();
                    if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return all;
                    }
                    all.push_str(&line);
                    if line.as_bytes().get(3) != Some(&b'-') {
                        return all.trim_end().to_string();
                    }
                }
            }
            let mut out = Vec::new();
            reply(&mut io).await;
            io.get_mut()
                .write_all(format!("EHLO {helo}\r\n").as_bytes())
                .await
                .unwrap();
            reply(&mut io).await;
            for (command, want) in [
                (format!("MAIL FROM:<{mail_from}>\r\n"), "250"),
                (format!("RCPT TO:<{rcpt}>\r\n"), "250"),
                ("DATA\r\n".to_string(), "354"),
            ] {
                io.get_mut().write_all(command.as_bytes()).await.unwrap();
                let r = reply(&mut io).await;
                let ok = r.starts_with(want);
                if command != "DATA\r\n" {
                    out.push(r);
                }
                if !ok {
                    return out;
                }
            }
            io.get_mut().write_all(&data).await.unwrap();
            io.get_mut().write_all(b".\r\nQUIT\r\n").await.unwrap();
            out.push(reply(&mut io).await);
            out
        })
    }
}

/// dkimpy (tests/clients/dkim_tool.py) with these arguments and input.
pub fn dkim_tool(args: &[&str], input: &[u8]) -> Vec<u8> {
    python("dkim_tool.py", args, input)
}

/// Run `tests/clients/SCRIPT ARGS` with `input` on standard input; its output
/// (panics with its standard error if it fails).
pub fn python(script: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .arg(repo(&format!("tests/clients/{script}")))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3: {e} (see scripts/install-test-deps)"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A stored message as text (lossy).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Authentication-Results field of a stored message, unfolded.
pub fn auth_results(message: &str) -> String {
    let start = message
        .find("Authentication-Results: ")
        .unwrap_or_else(|| panic!("no Authentication-Results in:\n{message}"));
    let rest = &message[start..];
    let mut end = rest.find("\r\n").unwrap();
    while rest[end + 2..].starts_with('\t') || rest[end + 2..].starts_with(' ') {
        end += 2 + rest[end + 2..].find("\r\n").unwrap();
    }
    rest[..end].replace("\r\n", "")
}

/// The DKIM records `tern dns records` prints for a domain, as the JSON
/// file dkim_tool.py reads instead of DNS.
pub fn dkim_records_json(server: &testkit::TernServer, domain: &str, path: &std::path::Path) {
    let records = server.admin_ok(&["dns", "records", domain]);
    let map: std::collections::HashMap<String, String> = records
        .lines()
        .filter(|l| l.contains("._domainkey."))
        .map(|l| {
            let (owner, rest) = l.split_once(". 3600 IN TXT ").unwrap();
            let value: String = rest.split('"').skip(1).step_by(2).collect();
            (owner.to_string(), value)
        })
        .collect();
    let json = format!(
        "{{{}}}",
        map.iter()
            .map(|(k, v)| format!("\"{k}\": \"{v}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(path, json).unwrap();
}

/// The admin CLI on a data directory of its own, without a server: writes
/// `NAME.toml` next to `data` and runs `tern --config` with it.
pub struct OfflineTern {
    pub config: std::path::PathBuf,
}

impl OfflineTern {
    pub fn new(data: &std::path::Path) -> OfflineTern {
        let config = data.with_extension("toml");
        std::fs::write(
            &config,
            format!(
                "hostname = \"mx.a.test\"\ndata_dir = \"{}\"\n",
                data.display()
            ),
        )
        .unwrap();
        OfflineTern { config }
    }

    /// (success, standard output and standard error).
    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}

/// `tern history WHAT --json`: the events.
pub fn history(server: &TernServer, what: &str) -> Vec<serde_json::Value> {
    let out = server.admin_ok(&["history", what, "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// A process's resident memory in KiB, from /proc.
#[allow(dead_code)]
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A message with `top` as its first header fields, a line of text and a
/// 30 MB attachment (`big.bin`, base64 in lines of 76): the attachment,
/// the message and the octets of the attachment's body as encoded.
#[allow(dead_code)]
pub fn with_large_attachment(top: &str) -> (Vec<u8>, Vec<u8>, usize) {
    use base64::Engine;
    let attachment: Vec<u8> = (0..30_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&attachment);
    let lines: Vec<&[u8]> = encoded.as_bytes().chunks(76).collect();
    let head = format!(
        "{top}Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--zz\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    let body = lines.join(&b"\r\n"[..]);
    let message = [head.as_bytes(), &body, b"\r\n--zz--\r\n"].concat();
    (attachment, message, body.len())
}

/// Run the admin command `args` under Python, which measures it: its
/// standard output and its peak memory (the child's ru_maxrss), KiB.
#[allow(dead_code)]
pub fn admin_with_peak(server: &TernServer, args: &[&str]) -> (String, u64) {
    let line = server.admin_command_line(args);
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import resource, subprocess, sys\n\
             r = subprocess.run(sys.argv[1:], capture_output=True)\n\
             assert r.returncode == 0, r.stderr\n\
             print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
             sys.stdout.write(r.stdout.decode())\n",
        )
        .args(&line)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (peak, said) = text.split_once('\n').unwrap();
    (said.trim().to_string(), peak.trim().parse().unwrap())
}

/// The most memory the process has held since it started (VmHWM), KiB.
#[allow(dead_code)]
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Fail unless the peak memory of the server `pid` grew by less than
/// 24 MiB since it was `before` (KiB) while it did `what` with a 40 MB
/// message: well under one copy of it. What the server's heap holds while
/// it works on such a message moves by a few MB (heaptrack); the rest of
/// the growth is the allocator's arenas and the stacks of blocking
/// threads, which vary with the machine's load (10 MB alone on two cores,
/// 17 MB once in CI beside the other tests).
#[allow(dead_code)]
pub fn assert_peak_within(pid: u32, before: u64, what: &str) {
    let peak = peak_rss_kib(pid);
    eprintln!("server peak RSS {before} KiB before {what}, {peak} KiB after");
    assert!(
        peak < before + 24 * 1024,
        "the server's peak memory grew from {before} KiB to {peak} KiB ({what})"
    );
}

/// Put `messages` into alice@a.test's INBOX through the store, as a
/// second writer would.
#[allow(dead_code)]
pub async fn append_to_alice(server: &TernServer, messages: &[Vec<u8>]) {
    let store = probe(server).0.clone();
    let store::AddressKind::Account(alice) = store.lookup_address("alice@a.test").await.unwrap()
    else {
        panic!("no alice")
    };
    let inbox = store.mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    for m in messages {
        store
            .append(inbox.id, store::Spooled::from_vec(m.clone()), vec![], 1)
            .await
            .unwrap();
    }
}

/// A plain connection to `addr` with its greeting read: the writing half
/// and a line reader (a minute's read timeout).
#[allow(dead_code)]
pub fn raw_client(
    addr: std::net::SocketAddr,
) -> (std::net::TcpStream, std::io::BufReader<std::net::TcpStream>) {
    use std::io::BufRead;
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let w = tcp.try_clone().unwrap();
    let mut r = std::io::BufReader::new(tcp);
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    (w, r)
}

/// alice@a.test sends `to` a message whose Message-ID is `<SUBJECT@a.test>`.
pub fn send_from_alice(a: &TernServer, to: &str, subject: &str) {
    let message = format!(
        "From: <alice@a.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@a.test>\r\n\r\nHello.\r\n"
    );
    assert_eq!(submit(a, "alice@a.test", "alice-pw", &[to], &message), "{}");
}

/// The details of the delivery attempts of alice's message `subject`
/// (see [`send_from_alice`]), once `n` exist.
pub fn attempts(net: &MailNet, a: &TernServer, subject: &str, n: usize) -> Vec<String> {
    let id = format!("<{subject}@a.test>");
    net.wait(30, &format!("{n} attempt(s) for {subject}"), &[a], || {
        history(a, &id)
            .iter()
            .filter(|e| e["event"] == "attempt")
            .count()
            >= n
    });
    history(a, &id)
        .iter()
        .filter(|e| e["event"] == "attempt")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect()
}

/// The `_mta-sts` TXT record `tern dns records DOMAIN` prints on `server`.
pub fn mta_sts_record(server: &TernServer, domain: &str) -> String {
    let records = server.admin_ok(&["dns", "records", domain]);
    records
        .lines()
        .find(|l| l.starts_with(&format!("_mta-sts.{domain}.")))
        .and_then(|l| l.split('"').nth(1))
        .unwrap_or_else(|| panic!("no _mta-sts line in:\n{records}"))
        .to_string()
}

/// One HTTP/1.1 request on a new connection: (status, head, body).
pub fn http1(server: &TernServer, request: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(server.addr("http")).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

pub fn post(path: &str, extra: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sign in as the webmail does: (the `Cookie:` value, the CSRF token).
pub fn sign_in(server: &TernServer, user: (&str, &str)) -> (String, String) {
    let body = serde_json::json!({"username": user.0, "password": user.1}).to_string();
    let (status, head, body) = http1(server, &post("/webmail/login", "", &body));
    assert_eq!(status, 200, "{head}\n{body}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .and_then(|(_, v)| v.trim().split(';').next())
        .unwrap()
        .to_string();
    let csrf = serde_json::from_str::<serde_json::Value>(&body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    (cookie, csrf)
}

/// Whether IMAP LOGIN takes these credentials.
pub fn imap_login(server: &TernServer, user: (&str, &str)) -> bool {
    use std::io::{BufRead, Write};
    let (mut w, mut r) = raw_client(server.addr("imap"));
    w.write_all(format!("a LOGIN {} {}\r\n", user.0, user.1).as_bytes())
        .unwrap();
    let mut line = String::new();
    while !line.starts_with("a ") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0);
    }
    line.starts_with("a OK")
}

/// IMAP: each message's raw text in a user's mailbox.
pub fn imap_mailbox(server: &TernServer, user: (&str, &str), name: &str) -> Vec<String> {
    use std::io::{BufRead, Write};
    let (mut w, mut r) = raw_client(server.addr("imap"));
    let mut run = |line: &str| {
        w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        let tag = line.split(' ').next().unwrap().to_string();
        let mut out = String::new();
        loop {
            let mut l = String::new();
            assert!(r.read_line(&mut l).unwrap() > 0);
            out.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return out;
            }
        }
    };
    run(&format!("a LOGIN {} {}", user.0, user.1));
    run(&format!("b SELECT \"{name}\""));
    let fetched = run("c FETCH 1:* BODY.PEEK[]");
    fetched.split("* ").skip(1).map(str::to_string).collect()
}

/// An S/MIME certificate for `address` (self-signed, ECDSA P-256, by
/// openssl) in `dir`: (the certificate's path, PEM or DER, its key's).
pub fn smime_certificate(
    dir: &std::path::Path,
    name: &str,
    address: &str,
    der: bool,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join(name);
    let key = dir.join(format!("{name}.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=Test"])
        .args(["-addext", &format!("subjectAltName=email:{address}")])
        .args(["-outform", if der { "DER" } else { "PEM" }])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// gpg with its own home (the agent it starts is stopped at the end).
pub struct Gpg(tempfile::TempDir);

impl Gpg {
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("g")
            .tempdir_in("/tmp")
            .unwrap();
        Gpg(home)
    }

    pub fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = std::process::Command::new("gpg")
            .env("GNUPGHOME", self.0.path())
            .args(["--batch", "--quiet", "--no-tty"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A key for `uid` that never expires (`gpg --quick-gen-key`).
    pub fn generate(&self, uid: &str, algorithm: &str, usage: &str) {
        self.run(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            algorithm,
            usage,
            "never",
        ]);
    }

    pub fn text(&self, args: &[&str]) -> String {
        String::from_utf8(self.run(args)).unwrap()
    }
}

impl Gpg {
    /// Its home directory (GNUPGHOME).
    pub fn home(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Default for Gpg {
    fn default() -> Gpg {
        Gpg::new()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = std::process::Command::new("gpgconf")
            .env("GNUPGHOME", self.0.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// An armored detached OpenPGP signature (CRLF lines) of `part` by
/// `signer`'s key, made by gpg.
pub fn pgp_signature(gpg: &Gpg, dir: &std::path::Path, signer: &str, part: &str) -> String {
    let part_file = dir.join("part.txt");
    std::fs::write(&part_file, part).unwrap();
    let sig_file = dir.join("part.asc");
    let _ = std::fs::remove_file(&sig_file);
    gpg.run(&[
        "--armor",
        "--detach-sign",
        "--digest-algo",
        "SHA256",
        "--local-user",
        signer,
        "--output",
        sig_file.to_str().unwrap(),
        part_file.to_str().unwrap(),
    ]);
    std::fs::read_to_string(&sig_file)
        .unwrap()
        .replace('\n', "\r\n")
}

/// A PGP/MIME signed message (RFC 3156 §5) of `part` with `signature`.
pub fn pgp_signed(from: &str, to: &str, subject: &str, part: &str, signature: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/signed; micalg=pgp-sha256;\r\n protocol=\"application/pgp-signature\"; boundary=\"sig\"\r\n\r\n\
         --sig\r\n{part}\r\n--sig\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n\
         {signature}\r\n--sig--\r\n"
    )
}

/// A base64 (76-column CRLF lines) CMS signature of `part` by `cert` and
/// `key`, made by `openssl cms -sign`: detached, or (`opaque`) with `part`
/// inside.
pub fn smime_signature(
    cert: &std::path::Path,
    key: &std::path::Path,
    dir: &std::path::Path,
    part: &str,
    opaque: bool,
) -> String {
    let part_file = dir.join("part.txt");
    std::fs::write(&part_file, part).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-in",
        ])
        .arg(&part_file)
        .args(opaque.then_some("-nodetach"))
        .arg("-signer")
        .arg(cert)
        .arg("-inkey")
        .arg(key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(out.stdout);
    b64.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// An S/MIME multipart/signed message (RFC 8551 §3.5.3) of `part` with
/// `signature`.
pub fn smime_signed(from: &str, to: &str, subject: &str, part: &str, signature: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"s\"\r\n\r\n\
         --s\r\n{part}\r\n--s\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{signature}\r\n--s--\r\n"
    )
}

/// The CMS object (DER) of an S/MIME enveloped-data message as an IMAP
/// FETCH of BODY[] shows it: its base64 body, up to the literal's end.
pub fn enveloped_der(fetched: &str) -> Vec<u8> {
    use base64::Engine;
    let body = &fetched[fetched.find("\r\n\r\n").unwrap() + 4..];
    base64::engine::general_purpose::STANDARD
        .decode(
            body.lines()
                .take_while(|l| !l.is_empty() && !l.starts_with(')'))
                .collect::<String>(),
        )
        .unwrap_or_else(|e| panic!("{e}: {fetched}"))
}

/// The message of `fetched` (IMAP FETCH answers) with this subject.
pub fn with_subject(fetched: &[String], subject: &str) -> String {
    fetched
        .iter()
        .find(|m| m.contains(&format!("Subject: {subject}\r\n")))
        .unwrap_or_else(|| panic!("{subject}: {fetched:?}"))
        .clone()
}

/// SMTP load: send to alice and bob, one message after another, until the
/// connection breaks; record the subject of every acknowledged message.
pub async fn load_sender(
    addr: std::net::SocketAddr,
    id: String,
    acked: Arc<std::sync::Mutex<Vec<String>>>,
) {
    let Ok(mut w) = testkit::TcpWire::connect(addr).await else {
        return;
    };
    w.timeout = std::time::Duration::from_secs(5);
    let line = async |w: &mut testkit::TcpWire| w.read_line().await.ok().flatten();
    if line(&mut w).await.is_none() || w.send(b"EHLO crash.test\r\n").await.is_err() {
        return;
    }
    while let Some(l) = line(&mut w).await {
        if l.starts_with("250 ") {
            break;
        }
    }
    for i in 0.. {
        let subject = format!("crash-{id}-{i}");
        let rcpt = if i % 2 == 0 {
            "alice@a.test"
        } else {
            "bob@a.test"
        };
        let body = format!("MAIL FROM:<load@far.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n");
        if w.send(body.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..3 {
            match line(&mut w).await {
                Some(_) => {}
                None => return,
            }
        }
        let content = format!("Subject: {subject}\r\n\r\n{}\r\n.\r\n", "x".repeat(998));
        if w.send(content.as_bytes()).await.is_err() {
            return;
        }
        match line(&mut w).await {
            Some(l) if l.starts_with("250 ") => acked.lock().unwrap().push(subject),
            other => {
                eprintln!("sender {id}: {other:?}");
                return;
            }
        }
    }
}

/// The subjects of alice's and bob's INBOX messages, each asserted to be
/// there once (a message stored twice fails the test).
pub async fn subjects_stored_once(
    store: &Arc<dyn store::Store>,
) -> std::collections::HashSet<String> {
    let mut stored = std::collections::HashSet::new();
    for who in ["alice@a.test", "bob@a.test"] {
        for m in testkit::fixture::inbox(store, who).await.unwrap() {
            let text = String::from_utf8_lossy(&m).into_owned();
            if let Some(s) = text.lines().find_map(|l| l.strip_prefix("Subject: ")) {
                assert!(stored.insert(s.to_string()), "{s} delivered twice");
            }
        }
    }
    stored
}
