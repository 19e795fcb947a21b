//! JMAP (RFC 8620, RFC 8621) against a real `tern serve`, through HTTP as
//! a client sends it (Python's urllib), with SMTP and IMAP alongside: a
//! message delivered by SMTP is found by Email/query; a keyword set over
//! JMAP is an IMAP flag, and a flag set over IMAP is a JMAP change; a
//! mailbox made over JMAP is one IMAP selects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};
use testkit::TernServer;

const ALICE: (&str, &str) = ("alice@a.test", "alice-pw");

/// One HTTP request: (status, body as JSON or text, whole answer).
fn http(
    server: &TernServer,
    method: &str,
    path: &str,
    user: (&str, &str),
    body: &[u8],
) -> (u64, Value, Value) {
    let url = format!("http://{}{path}", server.addr("http"));
    let out = common::python("jmap_call.py", &[method, &url, user.0, user.1], body);
    let v: Value = serde_json::from_slice(&out).unwrap();
    (v["status"].as_u64().unwrap(), v["body"].clone(), v)
}

/// An API request of these calls; the method responses.
fn api(server: &TernServer, calls: Value) -> Vec<Value> {
    api_using(
        server,
        json!(["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]),
        calls,
    )
}

/// The same, using these capabilities.
fn api_using(server: &TernServer, using: Value, calls: Value) -> Vec<Value> {
    let request = json!({
        "using": using,
        "methodCalls": calls,
    });
    let (status, body, _) = http(
        server,
        "POST",
        "/jmap/api",
        ALICE,
        request.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{body}");
    body["methodResponses"].as_array().unwrap().clone()
}

/// The arguments of the one response to one call.
fn call(server: &TernServer, name: &str, args: Value) -> Value {
    let r = api(server, json!([[name, args, "c"]]));
    r[0][1].clone()
}

fn imap_session(
    server: &TernServer,
) -> (std::net::TcpStream, std::io::BufReader<std::net::TcpStream>) {
    let (mut w, mut r) = common::raw_client(server.addr("imap"));
    imap(&mut w, &mut r, "a LOGIN alice@a.test alice-pw");
    (w, r)
}

/// Send an IMAP command; the lines up to its tagged answer.
fn imap(
    w: &mut std::net::TcpStream,
    r: &mut std::io::BufReader<std::net::TcpStream>,
    line: &str,
) -> String {
    use std::io::{BufRead, Write};
    w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    let tag = line.split(' ').next().unwrap();
    let mut out = String::new();
    loop {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0, "closed: {out}");
        out.push_str(&l);
        if l.starts_with(&format!("{tag} ")) {
            return out;
        }
    }
}

/// Upload `data` as `media_type` over JMAP (RFC 8620 §6.1); its blob id.
fn upload(server: &TernServer, acct: &str, media_type: &str, data: &[u8]) -> String {
    let url = format!("http://{}/jmap/upload/{acct}/", server.addr("http"));
    let out = common::python(
        "jmap_call.py",
        &["POST", &url, ALICE.0, ALICE.1, media_type],
        data,
    );
    serde_json::from_slice::<Value>(&out).unwrap()["body"]["blobId"]
        .as_str()
        .unwrap()
        .to_string()
}

fn server() -> TernServer {
    let listeners = testkit::ephemeral_listeners(&["smtp", "imap", "http"]);
    common::smtp_server_with(&listeners, "[imap]\nplaintext_on_loopback = true\n")
}

fn deliver(server: &TernServer, subject: &str, body: &str) {
    testkit::send_smtp(
        server.addr("smtp"),
        "bob@far.test",
        "alice@a.test",
        &format!(
            "From: Bob <bob@far.test>\r\nTo: alice@a.test\r\nSubject: {subject}\r\nMessage-ID: <{subject}@far.test>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0100\r\n\r\n{body}\r\n"
        ),
    );
}

fn inbox_id(server: &TernServer) -> String {
    let got = call(
        server,
        "Mailbox/query",
        json!({"accountId": account(server), "filter": {"role": "inbox"}}),
    );
    got["ids"][0].as_str().unwrap().to_string()
}

fn account(server: &TernServer) -> String {
    let (_, session, _) = http(server, "GET", "/.well-known/jmap", ALICE, b"");
    session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn session_and_authentication() {
    let server = server();
    let (status, session, _) = http(&server, "GET", "/.well-known/jmap", ALICE, b"");
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["username"], "alice@a.test");
    let core = &session["capabilities"]["urn:ietf:params:jmap:core"];
    assert_eq!(core["maxCallsInRequest"], 32);
    let id = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        .as_str()
        .unwrap();
    assert_eq!(session["accounts"][id]["name"], "alice@a.test");
    let api_url = session["apiUrl"].as_str().unwrap();
    assert!(
        api_url.starts_with("http://") && api_url.ends_with("/jmap/api"),
        "{api_url}"
    );
    // Wrong password and no credentials: 401 with a Basic challenge.
    let (status, _, _) = http(
        &server,
        "GET",
        "/.well-known/jmap",
        ("alice@a.test", "nope"),
        b"",
    );
    assert_eq!(status, 401);
    let (status, _, _) = http(&server, "GET", "/.well-known/jmap", ("", ""), b"");
    assert_eq!(status, 401);
    // The API takes POST only.
    let (status, _, _) = http(&server, "GET", "/jmap/api", ALICE, b"");
    assert_eq!(status, 405);
}

#[test]
fn request_and_method_errors() {
    let server = server();
    // Request-level: not JSON, not a request, an unknown capability.
    let (status, body, whole) = http(&server, "POST", "/jmap/api", ALICE, b"{nope");
    assert_eq!(status, 400);
    assert_eq!(body["type"], "urn:ietf:params:jmap:error:notJSON");
    assert_eq!(whole["type"], "application/problem+json");
    let (_, body, _) = http(
        &server,
        "POST",
        "/jmap/api",
        ALICE,
        br#"{"methodCalls":[]}"#,
    );
    assert_eq!(body["type"], "urn:ietf:params:jmap:error:notRequest");
    let (_, body, _) = http(
        &server,
        "POST",
        "/jmap/api",
        ALICE,
        br#"{"using":["urn:x"],"methodCalls":[]}"#,
    );
    assert_eq!(body["type"], "urn:ietf:params:jmap:error:unknownCapability");
    let many: Vec<Value> = (0..33)
        .map(|i| json!(["Core/echo", {}, i.to_string()]))
        .collect();
    let (_, body, _) = http(
        &server,
        "POST",
        "/jmap/api",
        ALICE,
        json!({"using": ["urn:ietf:params:jmap:core"], "methodCalls": many})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(body["type"], "urn:ietf:params:jmap:error:limit");
    assert_eq!(body["limit"], "maxCallsInRequest");
    // Method-level errors, each in its place; the request goes on.
    let acct = account(&server);
    let r = api(
        &server,
        json!([
            ["Core/echo", {"hello": true}, "0"],
            ["Nope/get", {}, "1"],
            ["Mailbox/get", {"accountId": "A999"}, "2"],
            ["Mailbox/get", {"accountId": acct, "#ids": {"resultOf": "9", "name": "Mailbox/query", "path": "/ids"}}, "3"],
            ["Mailbox/changes", {"accountId": acct, "sinceState": "bogus"}, "4"],
            ["Mailbox/set", {"accountId": acct, "ifInState": "999999", "create": {}}, "5"],
            ["Email/query", {"accountId": acct, "sort": [{"property": "nope"}]}, "6"],
            ["Email/get", {"accountId": acct, "ids": ["E1"], "properties": ["nope"]}, "7"],
            ["Email/copy", {"accountId": acct, "fromAccountId": "A999", "create": {}}, "8"],
            ["Email/copy", {"accountId": acct, "fromAccountId": acct, "create": {}}, "9"],
            ["Blob/copy", {"accountId": acct, "fromAccountId": "A999", "blobIds": []}, "10"],
        ]),
    );
    assert_eq!(r[0], json!(["Core/echo", {"hello": true}, "0"]));
    let kinds: Vec<&str> = r[1..]
        .iter()
        .map(|x| x[1]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "unknownMethod",
            "accountNotFound",
            "invalidResultReference",
            "cannotCalculateChanges",
            "stateMismatch",
            "unsupportedSort",
            "invalidArguments",
            "fromAccountNotFound",
            "invalidArguments",
            "fromAccountNotFound"
        ]
    );
    assert!(r.iter().all(|x| x[0] == "error" || x[0] == "Core/echo"));
}

#[test]
fn mail_delivered_by_smtp_read_and_changed_over_jmap_and_imap() {
    let server = server();
    let acct = account(&server);
    let inbox = inbox_id(&server);
    let start = call(&server, "Email/get", json!({"accountId": acct, "ids": []}))["state"].clone();
    deliver(&server, "first", "Hello Alice,\r\nthe figures are in.");
    deliver(&server, "second", "Another one.");
    // Query + get in one request, the ids by back-reference.
    let r = api(
        &server,
        json!([
            ["Email/query", {"accountId": acct, "filter": {"inMailbox": inbox}, "sort": [{"property": "receivedAt", "isAscending": true}], "calculateTotal": true}, "q"],
            ["Email/get", {"accountId": acct, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                "properties": ["subject", "from", "messageId", "sentAt", "mailboxIds", "keywords", "textBody", "bodyValues", "preview", "threadId", "blobId"],
                "fetchTextBodyValues": true}, "g"],
        ]),
    );
    assert_eq!(r[0][1]["total"], 2, "{}", r[0][1]);
    let list = r[1][1]["list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(first["subject"], "first");
    assert_eq!(
        first["from"],
        json!([{"name": "Bob", "email": "bob@far.test"}])
    );
    assert_eq!(first["messageId"], json!(["first@far.test"]));
    assert_eq!(first["sentAt"], "2026-12-01T10:00:00+01:00");
    assert_eq!(first["mailboxIds"], json!({inbox.clone(): true}));
    assert_eq!(first["keywords"], json!({}));
    let part = first["textBody"][0]["partId"].as_str().unwrap();
    assert!(
        first["bodyValues"][part]["value"]
            .as_str()
            .unwrap()
            .contains("the figures are in")
    );
    assert!(first["preview"].as_str().unwrap().contains("Hello Alice"));
    let email = first["id"].as_str().unwrap().to_string();
    // Text search through the shared index; changes since the start.
    let found = call(
        &server,
        "Email/query",
        json!({"accountId": acct, "filter": {"body": "figures"}}),
    );
    assert_eq!(found["ids"], json!([email.clone()]));
    let snippets = call(
        &server,
        "SearchSnippet/get",
        json!({"accountId": acct, "filter": {"body": "figures"}, "emailIds": [email.clone()]}),
    );
    let snippet = &snippets["list"][0];
    assert!(
        snippet["preview"]
            .as_str()
            .unwrap()
            .contains("<mark>figures</mark>"),
        "{snippets}"
    );
    assert_eq!(snippet["subject"], Value::Null, "no match in the subject");
    let changes = call(
        &server,
        "Email/changes",
        json!({"accountId": acct, "sinceState": start}),
    );
    assert_eq!(changes["created"].as_array().unwrap().len(), 2, "{changes}");
    // The raw message by its blob id.
    let blob = first["blobId"].as_str().unwrap();
    let (status, raw, whole) = http(
        &server,
        "GET",
        &format!("/jmap/download/{acct}/{blob}/first.eml?accept=message/rfc822"),
        ALICE,
        b"",
    );
    assert_eq!(status, 200);
    assert!(raw.as_str().unwrap().contains("Subject: first"));
    assert!(whole["disposition"].as_str().unwrap().contains("first.eml"));

    // A keyword set over JMAP is an IMAP flag.
    let state = call(&server, "Email/get", json!({"accountId": acct, "ids": []}))["state"].clone();
    let set = call(
        &server,
        "Email/set",
        json!({"accountId": acct, "ifInState": state, "update": {email.clone(): {"keywords/$seen": true, "keywords/$flagged": true}}}),
    );
    assert_eq!(set["updated"], json!({email.clone(): null}), "{set}");
    let (mut w, mut r) = imap_session(&server);
    imap(&mut w, &mut r, "b SELECT INBOX");
    let fetched = imap(&mut w, &mut r, "c FETCH 1 (FLAGS)");
    assert!(
        fetched.contains("\\Seen") && fetched.contains("\\Flagged"),
        "{fetched}"
    );
    // A flag set over IMAP is a JMAP change.
    let before = call(&server, "Email/get", json!({"accountId": acct, "ids": []}))["state"].clone();
    imap(&mut w, &mut r, "d STORE 1 +FLAGS (\\Answered $Work)");
    let changes = call(
        &server,
        "Email/changes",
        json!({"accountId": acct, "sinceState": before}),
    );
    assert_eq!(changes["updated"], json!([email.clone()]), "{changes}");
    let got = call(
        &server,
        "Email/get",
        json!({"accountId": acct, "ids": [email.clone()], "properties": ["keywords"]}),
    );
    assert_eq!(
        got["list"][0]["keywords"],
        json!({"$answered": true, "$flagged": true, "$seen": true, "$work": true})
    );

    // A mailbox made over JMAP; the email moved into it; IMAP sees both.
    let made = call(
        &server,
        "Mailbox/set",
        json!({"accountId": acct, "create": {"p": {"name": "Projects", "parentId": null}}}),
    );
    let projects = made["created"]["p"]["id"].as_str().unwrap().to_string();
    let moved = call(
        &server,
        "Email/set",
        json!({"accountId": acct, "update": {email.clone(): {"mailboxIds": {projects.clone(): true}}}}),
    );
    assert_eq!(moved["updated"], json!({email.clone(): null}), "{moved}");
    let status = imap(&mut w, &mut r, "e STATUS Projects (MESSAGES)");
    assert!(status.contains("MESSAGES 1"), "{status}");
    let status = imap(&mut w, &mut r, "f STATUS INBOX (MESSAGES)");
    assert!(status.contains("MESSAGES 1"), "{status}");
    let boxes = call(
        &server,
        "Mailbox/get",
        json!({"accountId": acct, "ids": [projects.clone(), inbox.clone()]}),
    );
    assert_eq!(boxes["list"][0]["name"], "Projects");
    assert_eq!(boxes["list"][0]["totalEmails"], 1);
    assert_eq!(boxes["list"][1]["role"], "inbox");
    assert_eq!(boxes["list"][1]["unreadEmails"], 1);
    // Not destroyed while it holds mail; destroyed with it when asked.
    let refused = call(
        &server,
        "Mailbox/set",
        json!({"accountId": acct, "destroy": [projects.clone()]}),
    );
    assert_eq!(
        refused["notDestroyed"][&projects]["type"],
        "mailboxHasEmail"
    );
    let gone = call(
        &server,
        "Mailbox/set",
        json!({"accountId": acct, "destroy": [projects.clone()], "onDestroyRemoveEmails": true}),
    );
    assert_eq!(gone["destroyed"], json!([projects]));
    let listed = imap(&mut w, &mut r, "g LIST \"\" \"*\"");
    assert!(!listed.contains("Projects"), "{listed}");
    let after = call(
        &server,
        "Email/get",
        json!({"accountId": acct, "ids": [email.clone()]}),
    );
    assert_eq!(after["notFound"], json!([email]));
}

/// Push (RFC 8620 §7.3): an event source client sees a StateChange for
/// Email within a second of an SMTP delivery, and `closeafter=state`
/// ends the stream after it.
#[test]
fn event_source_sees_an_smtp_delivery() {
    use std::io::BufRead;
    let server = server();
    let acct = account(&server);
    let url = format!(
        "http://{}/jmap/eventsource?types=Email,Mailbox&closeafter=state&ping=0",
        server.addr("http")
    );
    let mut child = std::process::Command::new("python3")
        .arg(common::repo("tests/clients/jmap_events.py"))
        .args([url.as_str(), ALICE.0, ALICE.1, "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "open");
    // The server read the states before it started the response: the
    // delivery below is a change for it.
    let sent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    deliver(&server, "pushed", "Hi.");
    let event: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(event["event"], "state");
    assert_eq!(event["data"]["@type"], "StateChange");
    let changed = &event["data"]["changed"][&acct];
    assert!(changed["Email"].is_string(), "{event}");
    assert!(
        changed.get("Thread").is_none(),
        "types= limits the types: {event}"
    );
    let latency = event["at"].as_f64().unwrap() - sent;
    assert!(
        latency < 1.0,
        "StateChange {latency:.3} s after the delivery"
    );
    // closeafter=state: the server ends the response.
    assert!(lines.next().is_none());
    assert!(child.wait().unwrap().success());
    let state = call(&server, "Email/get", json!({"accountId": acct, "ids": []}))["state"].clone();
    assert_eq!(changed["Email"], state);
}

/// The status line of what the server answers to `head` (a request
/// whose body, if any, is not sent yet) on a new connection; the
/// connection stays open for the body.
fn answer_to_head(server: &TernServer, head: &str) -> (String, std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(server.addr("http")).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n") {
        if tcp.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        got.push(byte[0]);
    }
    (String::from_utf8_lossy(&got).trim().to_string(), tcp)
}

/// An upload or API request is authenticated before its body is read (a
/// stranger's 20 MB is never buffered), and an account's concurrent
/// uploads are held to the session's `maxConcurrentUpload`: the one past
/// it is refused with the `limit` request error at once, and a slot
/// freed takes the next.
#[test]
fn bodies_wait_for_credentials_and_concurrency_limits() {
    let server = server();
    let acct = account(&server);
    let head = |auth: &str, len: usize| {
        format!(
            "POST /jmap/upload/{acct}/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    let wrong = base64_basic(("alice@a.test", "wrong"));
    let (status, _) = answer_to_head(&server, &head(&wrong, 20_000_000));
    assert!(
        status.starts_with("HTTP/1.1 401"),
        "before the body: {status}"
    );
    let alice = base64_basic(ALICE);
    // Four uploads under way (their bodies not sent), the fifth refused.
    // Each of the four asks for a 100 Continue (RFC 9110 §10.1.1), which
    // comes only once it is admitted and its body is awaited.
    let mut waiting = Vec::new();
    for _ in 0..4 {
        let expecting = head(&alice, 5).replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
        let (status, mut tcp) = answer_to_head(&server, &expecting);
        assert!(status.starts_with("HTTP/1.1 100"), "{status}");
        let mut end = [0u8; 2];
        std::io::Read::read_exact(&mut tcp, &mut end).unwrap();
        assert_eq!(&end, b"\r\n", "the interim response has no fields");
        waiting.push(tcp);
    }
    let (status, mut fifth) = answer_to_head(&server, &head(&alice, 5));
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    let mut rest = String::new();
    use std::io::Read;
    let _ = fifth.read_to_string(&mut rest);
    assert!(rest.contains("maxConcurrentUpload"), "{rest}");
    // One finishes; then there is room again.
    {
        use std::io::{BufRead, Write};
        let mut first = waiting.remove(0);
        first.write_all(b"hello").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(first).read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 201"), "{line}");
    }
    // Its slot was given back before its answer was sent.
    let (status, _) = answer_to_head(&server, &(head(&alice, 5) + "world"));
    assert!(status.starts_with("HTTP/1.1 201"), "{status}");
}

/// JMAP over WebSocket (RFC 8887) with the `websockets` client (PyPI):
/// the session announces the endpoint; the handshake agrees on `jmap`; a
/// Request is answered with its requestId; what is not JSON, not a
/// Request, or binary is a RequestError and the connection lives on;
/// push, once enabled, tells an SMTP delivery within a second with a
/// pushState, and a second connection that gives that pushState back
/// hears at once what moved since. Without the subprotocol, or the
/// password, there is no WebSocket.
/// The `websockets` client (tests/clients/jmap_ws.py), one connection.
/// Its lines come through a channel so that a line that never comes fails
/// the test after [`WsClient::PATIENCE`] instead of hanging it.
struct WsClient {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl WsClient {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

    fn open(url: &str, user: (&str, &str)) -> WsClient {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .arg(common::repo("tests/clients/jmap_ws.py"))
            .args([url, user.0, user.1])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        WsClient {
            child,
            stdin,
            lines,
        }
    }

    /// The client's next line; None once it has ended.
    fn line(&mut self) -> Option<String> {
        match self.lines.recv_timeout(Self::PATIENCE) {
            Ok(line) => Some(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("the WebSocket client said nothing for {:?}", Self::PATIENCE)
            }
        }
    }

    fn send(&mut self, message: &str) {
        use std::io::Write;
        writeln!(self.stdin.as_mut().unwrap(), "{message}").unwrap();
    }

    fn receive(&mut self) -> Value {
        serde_json::from_str(&self.line().unwrap()).unwrap()
    }

    fn exchange(&mut self, message: &str) -> Value {
        self.send(message);
        self.receive()
    }

    /// Close from the client's side; whether the client ended well.
    fn close(mut self) -> bool {
        self.stdin = None;
        while self.line().is_some() {}
        self.child.wait().unwrap().success()
    }
}

impl Drop for WsClient {
    /// A test that failed half way leaves no client behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn websocket_requests_and_push() {
    use std::io::{BufRead, Write};
    let server = server();
    let acct = account(&server);
    let (_, session, _) = http(&server, "GET", "/.well-known/jmap", ALICE, b"");
    let url = session["capabilities"]["urn:ietf:params:jmap:websocket"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with("ws://") && url.ends_with("/jmap/ws"),
        "{session}"
    );
    let mut ws = WsClient::open(&url, ALICE);
    assert_eq!(ws.line().unwrap(), "open jmap");
    let r = ws.exchange(
        &json!({"@type": "Request", "id": "R1", "using": ["urn:ietf:params:jmap:core"],
                "methodCalls": [["Core/echo", {"hello": true}, "b3ff"]]})
        .to_string(),
    );
    assert_eq!(r["@type"], "Response");
    assert_eq!(r["requestId"], "R1");
    assert_eq!(
        r["methodResponses"],
        json!([["Core/echo", {"hello": true}, "b3ff"]])
    );
    let e = ws.exchange("The quick brown fox jumps over the lazy dog.");
    assert_eq!(e["@type"], "RequestError");
    assert_eq!(e["type"], "urn:ietf:params:jmap:error:notJSON");
    assert_eq!(e["requestId"], Value::Null);
    let e = ws.exchange(&json!({"@type": "Request", "id": "R2", "using": []}).to_string());
    assert_eq!(e["type"], "urn:ietf:params:jmap:error:notRequest", "{e}");
    assert_eq!(e["requestId"], "R2");
    let e = ws.exchange("BINARY {}");
    assert_eq!(e["type"], "urn:ietf:params:jmap:error:notJSON");
    // Push: nothing is sent on enabling without a pushState; a delivery
    // is told.
    ws.send(&json!({"@type": "WebSocketPushEnable", "dataTypes": ["Email"]}).to_string());
    // The server reads a connection's messages in order: once this echo is
    // answered, push is on (a delivery racing the enable would be part of
    // the state it starts from, and rightly never told).
    let r = ws.exchange(
        &json!({"@type": "Request", "using": ["urn:ietf:params:jmap:core"],
                "methodCalls": [["Core/echo", {}, "0"]]})
        .to_string(),
    );
    assert_eq!(r["@type"], "Response", "enabling push sent nothing: {r}");
    let sent = std::time::Instant::now();
    deliver(&server, "pushed", "Hi.");
    let change = ws.receive();
    assert!(sent.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(change["@type"], "StateChange");
    let email_state =
        call(&server, "Email/get", json!({"accountId": acct, "ids": []}))["state"].clone();
    assert_eq!(
        change["changed"][&acct],
        json!({"Email": email_state}),
        "{change}"
    );
    let push_state = change["pushState"].as_str().unwrap().to_string();
    ws.send(&json!({"@type": "WebSocketPushDisable"}).to_string());
    deliver(&server, "unheard", "Nobody listens.");
    let r = ws.exchange(
        &json!({"@type": "Request", "using": ["urn:ietf:params:jmap:core"],
                "methodCalls": [["Core/echo", {}, "0"]]})
        .to_string(),
    );
    assert_eq!(
        r["@type"], "Response",
        "push off: no StateChange came first: {r}"
    );
    assert!(ws.close());
    // A new connection resumes from the pushState: "unheard" is told.
    let mut ws = WsClient::open(&url, ALICE);
    assert_eq!(ws.line().unwrap(), "open jmap");
    let change = ws.exchange(
        &json!({"@type": "WebSocketPushEnable", "dataTypes": null, "pushState": push_state})
            .to_string(),
    );
    let now = call(&server, "Email/get", json!({"accountId": acct, "ids": []}))["state"].clone();
    assert_eq!(change["changed"][&acct]["Email"], now, "{change}");
    assert!(change["changed"][&acct]["Mailbox"].is_string(), "{change}");
    assert!(ws.close());
    // Refused handshakes: a wrong password; no jmap subprotocol.
    assert!(!WsClient::open(&url, ("alice@a.test", "wrong")).close());
    let head = format!(
        "GET /jmap/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Basic {}\r\n\r\n",
        base64_basic(ALICE)
    );
    let mut tcp = std::net::TcpStream::connect(server.addr("http")).unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    let mut status = String::new();
    std::io::BufReader::new(tcp).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
}

fn base64_basic(user: (&str, &str)) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", user.0, user.1))
}

/// Upload (RFC 8620 §6.1) and Email/import (RFC 8621 §4.8): the uploaded
/// message lands in two mailboxes with its keywords, IMAP sees it there,
/// the upload reads back; a missing blob and a blob that is no message
/// are refused one by one.
#[test]
fn upload_and_import() {
    let server = server();
    let acct = account(&server);
    let inbox = inbox_id(&server);
    let message = b"From: carol@c.test\r\nTo: alice@a.test\r\nSubject: imported\r\nMessage-ID: <imp1@c.test>\r\n\r\nKept from elsewhere.\r\n";
    let url = format!("http://{}/jmap/upload/{acct}/", server.addr("http"));
    let out = common::python(
        "jmap_call.py",
        &["POST", &url, ALICE.0, ALICE.1, "message/rfc822"],
        message,
    );
    let uploaded: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(uploaded["status"], 201, "{uploaded}");
    let body = &uploaded["body"];
    assert_eq!(body["type"], "message/rfc822");
    assert_eq!(body["size"], message.len());
    let blob = body["blobId"].as_str().unwrap().to_string();
    // Another account's upload URL is not ours.
    let other = format!("http://{}/jmap/upload/A999/", server.addr("http"));
    let out = common::python(
        "jmap_call.py",
        &["POST", &other, ALICE.0, ALICE.1, "text/plain"],
        b"x",
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out).unwrap()["status"],
        404
    );
    let (status, raw, _) = http(
        &server,
        "GET",
        &format!("/jmap/download/{acct}/{blob}/m.eml"),
        ALICE,
        b"",
    );
    assert_eq!(status, 200);
    assert!(raw.as_str().unwrap().contains("Kept from elsewhere."));
    let archive = call(
        &server,
        "Mailbox/query",
        json!({"accountId": acct, "filter": {"role": "archive"}}),
    )["ids"][0]
        .clone();
    let not_a_message = upload(&server, &acct, "text/plain", b"just text, no header\r\n");
    let r = call(
        &server,
        "Email/import",
        json!({"accountId": acct, "emails": {
            "a": {"blobId": blob, "mailboxIds": {inbox.clone(): true, archive.as_str().unwrap(): true},
                  "keywords": {"$seen": true, "$imported": true}, "receivedAt": "2026-11-30T08:00:00Z"},
            "b": {"blobId": "U999999", "mailboxIds": {inbox.clone(): true}},
            "c": {"blobId": not_a_message, "mailboxIds": {inbox.clone(): true}},
        }}),
    );
    assert_eq!(r["notCreated"]["b"]["type"], "blobNotFound", "{r}");
    assert_eq!(r["notCreated"]["c"]["type"], "invalidEmail", "{r}");
    let id = r["created"]["a"]["id"].as_str().unwrap().to_string();
    assert_eq!(r["created"]["a"]["size"], message.len());
    let got = call(
        &server,
        "Email/get",
        json!({"accountId": acct, "ids": [id], "properties": ["subject", "mailboxIds", "keywords", "receivedAt"]}),
    );
    let e = &got["list"][0];
    assert_eq!(e["subject"], "imported");
    assert_eq!(e["mailboxIds"].as_object().unwrap().len(), 2);
    assert_eq!(e["keywords"], json!({"$seen": true, "$imported": true}));
    assert_eq!(e["receivedAt"], "2026-11-30T08:00:00Z");
    let (mut w, mut rd) = imap_session(&server);
    let status = imap(&mut w, &mut rd, "b STATUS Archive (MESSAGES)");
    assert!(status.contains("MESSAGES 1"), "{status}");
    imap(&mut w, &mut rd, "c SELECT INBOX");
    let fetched = imap(
        &mut w,
        &mut rd,
        "d FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    );
    assert!(
        fetched.contains("\\Seen") && fetched.contains("$imported"),
        "{fetched}"
    );
    assert!(fetched.contains("Subject: imported"), "{fetched}");
}

/// Email/parse (RFC 8621 §4.9): a forwarded message attached to one that
/// came by SMTP is read as an Email without being stored, and its own
/// parts download by the blob ids the parse gave.
#[test]
fn attached_message_parsed_and_its_parts_downloaded() {
    let server = server();
    let acct = account(&server);
    testkit::send_smtp(
        server.addr("smtp"),
        "bob@far.test",
        "alice@a.test",
        "From: bob@far.test\r\nTo: alice@a.test\r\nSubject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: Dan <dan@d.test>\r\nSubject: the original\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nT3JpZ2luYWwgdGV4dCwgY2Fmw6ku\r\n--b--\r\n",
    );
    let found = call(
        &server,
        "Email/query",
        json!({"accountId": acct, "filter": {"subject": "fwd"}}),
    );
    let id = found["ids"][0].as_str().unwrap().to_string();
    let got = call(
        &server,
        "Email/get",
        json!({"accountId": acct, "ids": [id], "properties": ["attachments", "hasAttachment"]}),
    );
    let attached = &got["list"][0]["attachments"][0];
    assert_eq!(attached["type"], "message/rfc822", "{got}");
    assert_eq!(got["list"][0]["hasAttachment"], true);
    // The filters that read the message (RFC 8621 §4.4.1): hasAttachment
    // (twice: the second from what was remembered) and header.
    deliver(&server, "plain", "No attachment here.");
    let ids = |filter: Value| {
        call(
            &server,
            "Email/query",
            json!({"accountId": acct, "filter": filter}),
        )["ids"]
            .clone()
    };
    for _ in 0..2 {
        assert_eq!(ids(json!({"hasAttachment": true})), json!([id]));
    }
    let plain = ids(json!({"hasAttachment": false}));
    assert_eq!(plain.as_array().unwrap().len(), 1);
    assert_ne!(plain[0], json!(id));
    assert_eq!(ids(json!({"header": ["MIME-Version"]})), json!([id]));
    assert_eq!(ids(json!({"header": ["subject", "PLAIN"]})), plain);
    assert_eq!(ids(json!({"header": ["Subject", "absent"]})), json!([]));
    assert_eq!(
        ids(json!({"operator": "NOT", "conditions": [{"header": ["Message-ID", "plain@"]}]})),
        json!([id])
    );
    let wrong = call(
        &server,
        "Email/query",
        json!({"accountId": acct, "filter": {"header": []}}),
    );
    assert_eq!(wrong["type"], "invalidArguments", "{wrong}");
    let blob = attached["blobId"].as_str().unwrap().to_string();
    let r = call(
        &server,
        "Email/parse",
        json!({"accountId": acct, "blobIds": [blob.clone(), "B999999"], "fetchTextBodyValues": true}),
    );
    let parsed = &r["parsed"][&blob];
    assert_eq!(parsed["subject"], "the original", "{r}");
    assert_eq!(
        parsed["from"],
        json!([{"name": "Dan", "email": "dan@d.test"}])
    );
    assert_eq!(r["notFound"], json!(["B999999"]));
    let part = parsed["textBody"][0]["partId"].as_str().unwrap();
    assert_eq!(parsed["bodyValues"][part]["value"], "Original text, café.");
    let inner = parsed["textBody"][0]["blobId"].as_str().unwrap();
    let (status, text, _) = http(
        &server,
        "GET",
        &format!("/jmap/download/{acct}/{inner}/t.txt"),
        ALICE,
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(text, "Original text, café.");
}

/// Email/set create from `bodyStructure` (RFC 8621 §4.6): a tree of a
/// text/HTML alternative, an inline image from an upload with its cid
/// and an attachment; read back over JMAP as the same tree, and over
/// IMAP as that MIME structure; wrong trees are refused one by one.
#[test]
fn a_draft_created_from_its_body_structure() {
    let server = server();
    let acct = account(&server);
    let inbox = inbox_id(&server);
    let png = upload(&server, &acct, "image/png", b"\x89PNG\r\n\x1a\nfake");
    let tree = json!({"type": "multipart/mixed", "subParts": [
        {"type": "multipart/related", "subParts": [
            {"type": "multipart/alternative", "subParts": [
                {"partId": "t", "type": "text/plain"},
                {"partId": "h", "type": "text/html"}]},
            {"blobId": png, "type": "image/png", "disposition": "inline", "cid": "logo@a.test"}]},
        {"blobId": png, "type": "application/octet-stream", "disposition": "attachment", "name": "logo.bin",
         "headers": [{"name": "X-Part", "value": " kept"}]}]});
    let wrong = |tree: Value, extra: Value| {
        let mut d = json!({"mailboxIds": {inbox.clone(): true}, "subject": "w", "bodyStructure": tree,
                           "bodyValues": {"t": {"value": "x"}}});
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    };
    let r = api(
        &server,
        json!([
            ["Email/set", {"accountId": acct, "create": {
                "d": {"mailboxIds": {inbox.clone(): true}, "from": [{"email": "alice@a.test"}],
                      "subject": "tree", "bodyStructure": tree,
                      "bodyValues": {"t": {"value": "Plain, café."}, "h": {"value": "<p>Rich <img src=\"cid:logo@a.test\"></p>"}}},
                "noSubParts": wrong(json!({"type": "multipart/mixed"}), json!({})),
                "both": wrong(json!({"partId": "t"}), json!({"textBody": [{"partId": "t"}]})),
                "contentHeader": wrong(json!({"partId": "t", "headers": [{"name": "Content-Type", "value": "x/y"}]}), json!({})),
                "noValue": wrong(json!({"partId": "missing"}), json!({})),
                "binaryText": wrong(json!({"partId": "t", "type": "image/png"}), json!({})),
                "noBlob": wrong(json!({"blobId": "Bnope", "type": "image/png"}), json!({})),
            }}, "s"],
            ["Email/get", {"accountId": acct, "ids": ["#d"], "fetchAllBodyValues": true,
                "properties": ["bodyStructure", "textBody", "htmlBody", "attachments", "bodyValues", "hasAttachment"],
                "bodyProperties": ["partId", "blobId", "type", "disposition", "name", "cid", "subParts", "header:X-Part:asText"]}, "g"],
        ]),
    );
    let set = &r[0][1];
    for k in [
        "noSubParts",
        "both",
        "contentHeader",
        "noValue",
        "binaryText",
    ] {
        assert_eq!(
            set["notCreated"][k]["type"], "invalidProperties",
            "{k}: {set}"
        );
    }
    assert_eq!(set["notCreated"]["noBlob"]["type"], "blobNotFound", "{set}");
    let e = &r[1][1]["list"][0];
    let root = &e["bodyStructure"];
    assert_eq!(root["type"], "multipart/mixed", "{e}");
    let related = &root["subParts"][0];
    assert_eq!(related["type"], "multipart/related");
    assert_eq!(related["subParts"][0]["type"], "multipart/alternative");
    assert_eq!(related["subParts"][1]["cid"], "logo@a.test");
    assert_eq!(related["subParts"][1]["disposition"], "inline");
    let attached = &root["subParts"][1];
    assert_eq!(attached["name"], "logo.bin");
    assert_eq!(attached["header:X-Part:asText"], "kept");
    assert_eq!(e["hasAttachment"], true);
    let html = e["htmlBody"][0]["partId"].as_str().unwrap();
    assert!(
        e["bodyValues"][html]["value"]
            .as_str()
            .unwrap()
            .contains("cid:logo@a.test")
    );
    let text = e["textBody"][0]["partId"].as_str().unwrap();
    assert_eq!(e["bodyValues"][text]["value"], "Plain, café.");
    // The attachment's octets are the upload's.
    let blob = attached["blobId"].as_str().unwrap();
    let (status, body, raw) = http(
        &server,
        "GET",
        &format!("/jmap/download/{acct}/{blob}/logo.bin"),
        ALICE,
        b"",
    );
    assert_eq!(status, 200, "{raw}");
    assert!(body.as_str().is_some_and(|b| b.contains("PNG")), "{raw}");
    // IMAP sees the same MIME tree.
    let (mut w, mut rd) = imap_session(&server);
    imap(&mut w, &mut rd, "b SELECT INBOX");
    let structure = imap(&mut w, &mut rd, "c FETCH 1 BODYSTRUCTURE");
    assert!(
        structure.contains("\"RELATED\"")
            && structure.contains("\"ALTERNATIVE\"")
            && structure.contains("\"MIXED\""),
        "{structure}"
    );
}

/// What a client does with a `/queryChanges` answer (RFC 8620 §5.6):
/// take out every removed id, then put each added one at its index.
fn splice(old: &Value, changes: &Value) -> Vec<Value> {
    let removed = changes["removed"].as_array().unwrap();
    let mut ids: Vec<Value> = old
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !removed.contains(i))
        .cloned()
        .collect();
    for a in changes["added"].as_array().unwrap() {
        ids.insert(a["index"].as_u64().unwrap() as usize, a["id"].clone());
    }
    ids
}

/// Email/queryChanges and Mailbox/queryChanges (RFC 8620 §5.6): after an
/// SMTP delivery and an IMAP flag change, the client's spliced results
/// are the query's new results; collapsed threads too; `maxChanges` and
/// unknown states are refused as the RFC says.
#[test]
fn query_changes_follow_smtp_and_imap() {
    let server = server();
    let acct = account(&server);
    deliver(&server, "one", "First.");
    deliver(&server, "two", "Second.");
    let unread =
        json!({"accountId": acct, "filter": {"notKeyword": "$seen"}, "collapseThreads": true});
    let before = call(&server, "Email/query", unread.clone());
    assert_eq!(before["canCalculateChanges"], true);
    assert_eq!(before["ids"].as_array().unwrap().len(), 2);
    let mailboxes = call(&server, "Mailbox/query", json!({"accountId": acct}));
    // Changes: "one" read over IMAP, a third message, a new mailbox.
    let (mut w, mut r) = imap_session(&server);
    imap(&mut w, &mut r, "b SELECT INBOX");
    let out = imap(&mut w, &mut r, "c UID SEARCH HEADER Subject one");
    let uid = out
        .lines()
        .next()
        .unwrap()
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    imap(
        &mut w,
        &mut r,
        &format!("d UID STORE {uid} +FLAGS (\\Seen)"),
    );
    deliver(&server, "three", "Third.");
    call(
        &server,
        "Mailbox/set",
        json!({"accountId": acct, "create": {"k": {"name": "Projects"}}}),
    );
    let mut args = unread.clone();
    args["sinceQueryState"] = before["queryState"].clone();
    args["calculateTotal"] = json!(true);
    let changes = call(&server, "Email/queryChanges", args.clone());
    let after = call(&server, "Email/query", unread.clone());
    assert_eq!(changes["newQueryState"], after["queryState"], "{changes}");
    assert_eq!(changes["oldQueryState"], before["queryState"]);
    assert_eq!(
        json!(splice(&before["ids"], &changes)),
        after["ids"],
        "{changes}"
    );
    assert_eq!(changes["total"], 2);
    args["maxChanges"] = json!(1);
    assert_eq!(
        call(&server, "Email/queryChanges", args.clone())["type"],
        "tooManyChanges"
    );
    args["sinceQueryState"] = json!("bogus");
    args.as_object_mut().unwrap().remove("maxChanges");
    assert_eq!(
        call(&server, "Email/queryChanges", args)["type"],
        "cannotCalculateChanges"
    );
    let m = call(
        &server,
        "Mailbox/queryChanges",
        json!({"accountId": acct, "sinceQueryState": mailboxes["queryState"]}),
    );
    let now = call(&server, "Mailbox/query", json!({"accountId": acct}));
    assert_eq!(json!(splice(&mailboxes["ids"], &m)), now["ids"], "{m}");
    assert_eq!(m["added"].as_array().unwrap().len(), 1, "{m}");
    // The change log pruned (as the hourly upkeep does, here to one row):
    // the old state can no longer be answered, the current one can.
    let store = common::probe(&server).0.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(rt.block_on(store.prune_changes(1)).unwrap() > 0);
    let old = call(
        &server,
        "Email/changes",
        json!({"accountId": acct, "sinceState": before["queryState"]}),
    );
    assert_eq!(old["type"], "cannotCalculateChanges", "{old}");
    let mut args = unread.clone();
    args["sinceQueryState"] = before["queryState"].clone();
    assert_eq!(
        call(&server, "Email/queryChanges", args)["type"],
        "cannotCalculateChanges"
    );
    let now = call(
        &server,
        "Email/changes",
        json!({"accountId": acct, "sinceState": after["queryState"]}),
    );
    assert_eq!(now["created"], json!([]), "{now}");
}

/// Email/set create (RFC 8621 §4.6): a draft with a text and an HTML
/// body and an uploaded attachment, referred to by creation id in the
/// same request; read back over JMAP and IMAP. A value with a line break
/// (header injection) is refused.
#[test]
fn a_draft_created_with_an_attachment() {
    let server = server();
    let acct = account(&server);
    let drafts = call(
        &server,
        "Mailbox/query",
        json!({"accountId": acct, "filter": {"role": "drafts"}}),
    )["ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let pdf = upload(&server, &acct, "application/pdf", b"%PDF-1.4 tiny");
    let r = api(
        &server,
        json!([
            ["Email/set", {"accountId": acct, "create": {
                "d": {
                    "mailboxIds": {drafts.clone(): true},
                    "keywords": {"$draft": true, "$seen": true},
                    "from": [{"name": "Alice Ä", "email": "alice@a.test"}],
                    "to": [{"name": null, "email": "bob@far.test"}],
                    "subject": "Plan für Montag",
                    "textBody": [{"partId": "t", "type": "text/plain"}],
                    "htmlBody": [{"partId": "h", "type": "text/html"}],
                    "bodyValues": {"t": {"value": "See the plan, café."}, "h": {"value": "<p>See the plan, café.</p>"}},
                    "attachments": [{"blobId": pdf, "type": "application/pdf", "name": "plan.pdf"}],
                    "header:X-Client:asText": "tern-test",
                },
                "bad": {"mailboxIds": {drafts.clone(): true}, "subject": "x\r\nBcc: victim@far.test",
                        "textBody": [{"partId": "t"}], "bodyValues": {"t": {"value": "x"}}},
            }}, "s"],
            ["Email/get", {"accountId": acct, "ids": ["#d"], "fetchTextBodyValues": true,
                "properties": ["subject", "from", "to", "keywords", "mailboxIds", "textBody", "htmlBody", "attachments", "bodyValues", "header:X-Client:asText", "messageId"]}, "g"],
        ]),
    );
    let set = &r[0][1];
    assert_eq!(
        set["notCreated"]["bad"]["type"], "invalidProperties",
        "{set}"
    );
    let id = set["created"]["d"]["id"].as_str().unwrap().to_string();
    let e = &r[1][1]["list"][0];
    assert_eq!(
        e["id"],
        id.as_str(),
        "the #d reference named the created email: {}",
        r[1][1]
    );
    assert_eq!(e["subject"], "Plan für Montag");
    assert_eq!(
        e["from"],
        json!([{"name": "Alice Ä", "email": "alice@a.test"}])
    );
    assert_eq!(e["to"], json!([{"name": null, "email": "bob@far.test"}]));
    assert_eq!(e["keywords"], json!({"$draft": true, "$seen": true}));
    assert_eq!(e["mailboxIds"], json!({drafts: true}));
    assert_eq!(e["header:X-Client:asText"], "tern-test");
    let message_id = e["messageId"][0].as_str().unwrap();
    assert!(
        message_id.ends_with("@mx.a.test"),
        "made by the server: {message_id}"
    );
    let part = e["textBody"][0]["partId"].as_str().unwrap();
    assert_eq!(e["bodyValues"][part]["value"], "See the plan, café.");
    assert_eq!(e["htmlBody"][0]["type"], "text/html");
    assert_eq!(e["attachments"][0]["name"], "plan.pdf");
    assert_eq!(e["attachments"][0]["type"], "application/pdf");
    let attached = e["attachments"][0]["blobId"].as_str().unwrap();
    let (status, pdf_back, _) = http(
        &server,
        "GET",
        &format!("/jmap/download/{acct}/{attached}/plan.pdf"),
        ALICE,
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(pdf_back, "%PDF-1.4 tiny");
    let (mut w, mut rd) = imap_session(&server);
    imap(&mut w, &mut rd, "b SELECT Drafts");
    let fetched = imap(
        &mut w,
        &mut rd,
        "c FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    );
    assert!(
        fetched.contains("\\Draft") && fetched.contains("\\Seen"),
        "{fetched}"
    );
    assert!(
        fetched.contains("Subject: =?"),
        "encoded as RFC 2047: {fetched}"
    );
}

/// EmailSubmission (RFC 8621 §7) through the submission port's own
/// steps: a draft sent to Bob arrives in his INBOX without its Bcc:
/// field, the implicit Email/set moves the draft to Sent, the delivery
/// status comes from the history; a From: Alice does not own is
/// `forbiddenFrom`, as SMTP submission would refuse it.
#[test]
fn a_draft_sent_with_email_submission() {
    let server = server();
    let acct = account(&server);
    let (_, session, _) = http(&server, "GET", "/.well-known/jmap", ALICE, b"");
    assert!(session["capabilities"]["urn:ietf:params:jmap:submission"].is_object());
    let using = json!([
        "urn:ietf:params:jmap:core",
        "urn:ietf:params:jmap:mail",
        "urn:ietf:params:jmap:submission"
    ]);
    let send = |calls: Value| api_using(&server, using.clone(), calls);
    let ids = send(json!([
        ["Identity/get", {"accountId": acct}, "i"],
        ["Mailbox/query", {"accountId": acct, "filter": {"role": "drafts"}}, "d"],
        ["Mailbox/query", {"accountId": acct, "filter": {"role": "sent"}}, "s"],
    ]));
    let identities = ids[0][1]["list"].as_array().unwrap();
    let emails: Vec<&str> = identities
        .iter()
        .map(|i| i["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails[0], "alice@a.test");
    assert!(
        emails.contains(&"info@a.test"),
        "aliases are identities: {emails:?}"
    );
    let identity = identities[0]["id"].as_str().unwrap().to_string();
    let drafts = ids[1][1]["ids"][0].as_str().unwrap().to_string();
    let sent_box = ids[2][1]["ids"][0].as_str().unwrap().to_string();
    let r = send(json!([
        ["Email/set", {"accountId": acct, "create": {
            "m": {"mailboxIds": {drafts.clone(): true}, "keywords": {"$draft": true},
                  "from": [{"name": "Alice", "email": "alice@a.test"}],
                  "to": [{"name": "Bob", "email": "bob@a.test"}],
                  "bcc": [{"name": null, "email": "alice@a.test"}],
                  "subject": "lunch?", "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "At noon."}}},
            "forged": {"mailboxIds": {drafts.clone(): true},
                  "from": [{"name": null, "email": "ceo@far.test"}], "to": [{"name": null, "email": "bob@a.test"}],
                  "subject": "wire money", "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "x"}}},
        }}, "c"],
        ["EmailSubmission/set", {"accountId": acct,
            "create": {
                "go": {"identityId": identity, "emailId": "#m"},
                "bad": {"identityId": identity, "emailId": "#forged"},
            },
            "onSuccessUpdateEmail": {"#go": {
                format!("mailboxIds/{drafts}"): null,
                format!("mailboxIds/{sent_box}"): true,
                "keywords/$draft": null,
            }}}, "s"],
    ]));
    let submitted = &r[1][1];
    assert_eq!(r[1][0], "EmailSubmission/set", "{r:?}");
    assert_eq!(
        submitted["notCreated"]["bad"]["type"], "forbiddenFrom",
        "{submitted}"
    );
    let submission = submitted["created"]["go"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(submitted["created"]["go"]["undoStatus"], "final");
    // The implicit Email/set of onSuccessUpdateEmail, with the same call id.
    assert_eq!(r[2][0], "Email/set");
    assert_eq!(r[2][2], "s");
    let email = r[0][1]["created"]["m"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        r[2][1]["updated"],
        json!({email.clone(): null}),
        "{}",
        r[2][1]
    );
    let moved = call(
        &server,
        "Email/get",
        json!({"accountId": acct, "ids": [email], "properties": ["mailboxIds", "keywords"]}),
    );
    assert_eq!(moved["list"][0]["mailboxIds"], json!({sent_box: true}));
    assert_eq!(moved["list"][0]["keywords"], json!({}));
    // Bob has it, without the Bcc: field, with the server's Received line.
    let (mut w, mut rd) = common::raw_client(server.addr("imap"));
    imap(&mut w, &mut rd, "a LOGIN bob@a.test bob-pw");
    imap(&mut w, &mut rd, "b SELECT INBOX");
    let fetched = imap(&mut w, &mut rd, "c FETCH 1 BODY.PEEK[]");
    assert!(fetched.contains("Subject: lunch?"), "{fetched}");
    assert!(fetched.contains("At noon."), "{fetched}");
    assert!(
        !fetched.to_ascii_lowercase().contains("\nbcc:"),
        "Bcc removed: {fetched}"
    );
    // Its status, from the delivery history (written with the next commit).
    let mut status = Value::Null;
    for _ in 0..50 {
        let got = send(
            json!([["EmailSubmission/get", {"accountId": acct, "ids": [submission.clone()]}, "g"]]),
        );
        status = got[0][1]["list"][0]["deliveryStatus"]["bob@a.test"].clone();
        if status["delivered"] == "yes" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status["delivered"], "yes", "{status}");
    let listed = send(
        json!([["EmailSubmission/query", {"accountId": acct, "filter": {"identityIds": [identity]}}, "q"]]),
    );
    assert_eq!(listed[0][1]["ids"], json!([submission.clone()]));
    // Sent is final: no undo.
    let undo = send(
        json!([["EmailSubmission/set", {"accountId": acct, "update": {submission.clone(): {"undoStatus": "canceled"}}}, "u"]]),
    );
    assert_eq!(
        undo[0][1]["notUpdated"][&submission]["type"],
        "cannotUnsend"
    );
}

/// A Web Push receiver (tests/clients/push_receiver.py): an HTTPS server
/// with a device's keys that decrypts what it is sent.
struct PushReceiver {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    port: u16,
    p256dh: String,
    auth: String,
}

impl PushReceiver {
    fn start(cert: &str, key: &str) -> PushReceiver {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .arg(common::repo("tests/clients/push_receiver.py"))
            .args(["127.0.0.1", cert, key])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().unwrap().unwrap();
        let words: Vec<&str> = ready.split(' ').collect();
        assert_eq!(words[0], "ready", "{ready}");
        PushReceiver {
            port: words[1].parse().unwrap(),
            p256dh: words[2].to_string(),
            auth: words[3].to_string(),
            child,
            lines,
        }
    }

    /// The next POST: path, TTL, Content-Encoding, the message.
    fn next(&mut self) -> Value {
        serde_json::from_str(&self.lines.next().unwrap().unwrap()).unwrap()
    }
}

impl Drop for PushReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Push subscriptions (RFC 8620 §7.2) to an HTTPS receiver that holds a
/// device's keys: the verification comes encrypted (RFC 8291, decrypted
/// by Python's `cryptography`), nothing is pushed before the code comes
/// back, then an SMTP delivery is told as a StateChange of the types
/// asked; `url` and `keys` are never shown; a subscription without keys
/// is sent JSON in clear; one the push service says is gone (410) is
/// forgotten.
#[test]
fn push_subscriptions_verified_encrypted_and_told() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::certificate(dir.path(), &["127.0.0.1"]);
    let mut device = PushReceiver::start(&cert, &key);
    let listeners = testkit::ephemeral_listeners(&["smtp", "imap", "http"]);
    let server = common::smtp_server_with(
        &listeners,
        &format!("[imap]\nplaintext_on_loopback = true\n[outbound]\nca_file = \"{cert}\"\n"),
    );
    let acct = account(&server);
    let base = format!("https://127.0.0.1:{}", device.port);
    let created = call(
        &server,
        "PushSubscription/set",
        json!({"create": {
            "phone": {"deviceClientId": "phone-1", "url": format!("{base}/push/phone"),
                      "keys": {"p256dh": device.p256dh, "auth": device.auth}, "types": ["Email"],
                      "expires": "2099-01-01T00:00:00Z"},
            "plain": {"deviceClientId": "laptop-1", "url": format!("{base}/push/plain")},
            "gone": {"deviceClientId": "old-1", "url": format!("{base}/gone/old")},
            "http": {"deviceClientId": "x", "url": "http://127.0.0.1/push"},
            "keys": {"deviceClientId": "y", "url": format!("{base}/push/y"), "keys": {"p256dh": "AAAA", "auth": "AAAA"}},
        }}),
    );
    assert!(created.get("accountId").is_none(), "{created}");
    assert_eq!(
        created["notCreated"]["http"]["properties"],
        json!(["url"]),
        "{created}"
    );
    assert_eq!(
        created["notCreated"]["keys"]["properties"],
        json!(["keys"]),
        "{created}"
    );
    let phone = created["created"]["phone"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let plain = created["created"]["plain"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let gone = created["created"]["gone"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let expires = created["created"]["phone"]["expires"].as_str().unwrap();
    let expires = message::date::rfc3339(expires).unwrap();
    assert!(
        expires <= message::date::unix_now() + 7 * 86_400 + 5,
        "the server's limit"
    );
    // Three verifications, one encrypted, in the order created.
    let mut codes = std::collections::HashMap::new();
    for _ in 0..3 {
        let v = device.next();
        assert_eq!(v["message"]["@type"], "PushVerification", "{v}");
        assert!(v["ttl"].as_str().is_some(), "{v}");
        let id = v["message"]["pushSubscriptionId"]
            .as_str()
            .unwrap()
            .to_string();
        if id == phone {
            assert_eq!(v["encoding"], "aes128gcm", "{v}");
        } else {
            assert_eq!(v["type"], "application/json", "{v}");
        }
        codes.insert(
            id,
            v["message"]["verificationCode"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Not verified: a delivery is told to nobody.
    deliver(&server, "before", "Not pushed.");
    let wrong = call(
        &server,
        "PushSubscription/set",
        json!({"update": {phone.clone(): {"verificationCode": "guess"}}}),
    );
    assert_eq!(
        wrong["notUpdated"][&phone]["type"], "invalidProperties",
        "{wrong}"
    );
    let mut update = serde_json::Map::new();
    for id in [&phone, &plain, &gone] {
        update.insert(id.clone(), json!({"verificationCode": codes[id]}));
    }
    let verified = call(&server, "PushSubscription/set", json!({"update": update}));
    assert_eq!(
        verified["updated"].as_object().unwrap().len(),
        3,
        "{verified}"
    );
    // A delivery is told to all three: the phone only of Email.
    let sent = std::time::Instant::now();
    deliver(&server, "after", "Pushed.");
    let mut told = std::collections::HashMap::new();
    for _ in 0..3 {
        let p = device.next();
        told.insert(p["path"].as_str().unwrap().to_string(), p);
    }
    assert!(sent.elapsed() < std::time::Duration::from_secs(2));
    let state = call(&server, "Email/get", json!({"accountId": acct, "ids": []}))["state"].clone();
    let to_phone = &told["/push/phone"];
    assert_eq!(to_phone["encoding"], "aes128gcm");
    assert_eq!(to_phone["message"]["@type"], "StateChange", "{to_phone}");
    assert_eq!(
        to_phone["message"]["changed"][&acct],
        json!({"Email": state})
    );
    let to_laptop = &told["/push/plain"]["message"]["changed"][&acct];
    assert_eq!(to_laptop["Email"], state);
    assert!(to_laptop["Mailbox"].is_string(), "every type: {to_laptop}");
    // Gone (410): forgotten. url and keys are never shown.
    let got = call(&server, "PushSubscription/get", json!({}));
    let ids: Vec<&str> = got["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![phone.as_str(), plain.as_str()], "{got}");
    assert!(got["list"][0].get("url").is_none() && got["list"][0].get("keys").is_none());
    assert_eq!(got["list"][0]["verificationCode"], codes[&phone]);
    assert_eq!(got["list"][0]["types"], json!(["Email"]));
    let refused = call(
        &server,
        "PushSubscription/get",
        json!({"properties": ["url"]}),
    );
    assert_eq!(refused["type"], "forbidden", "{refused}");
    let refused = call(&server, "PushSubscription/get", json!({"accountId": acct}));
    assert_eq!(refused["type"], "invalidArguments", "{refused}");
    let destroyed = call(
        &server,
        "PushSubscription/set",
        json!({"destroy": [plain.clone(), "P999"]}),
    );
    assert_eq!(destroyed["destroyed"], json!([plain]));
    assert_eq!(destroyed["notDestroyed"]["P999"]["type"], "notFound");
}

/// The number of messages in a user's INBOX, over IMAP.
fn inbox_count(server: &TernServer, user: (&str, &str)) -> usize {
    let (mut w, mut r) = common::raw_client(server.addr("imap"));
    imap(&mut w, &mut r, &format!("a LOGIN {} {}", user.0, user.1));
    let out = imap(&mut w, &mut r, "b STATUS INBOX (MESSAGES)");
    out.split("MESSAGES ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .unwrap()
        .parse()
        .unwrap()
}

/// Delayed send and undo (RFC 8621 §7, FUTURERELEASE RFC 4865): the
/// session says how long a send may wait and which envelope parameters
/// go through; a held submission is "pending" and reaches nobody (not
/// even a local mailbox) until it is released; canceled before that, it
/// leaves the queue and is never sent; released, it is delivered and
/// final, and no longer canceled. A parameter the submission port does
/// not take is refused as an invalid envelope.
#[test]
fn delayed_send_pending_canceled_and_released() {
    let server = server();
    let acct = account(&server);
    let (_, session, _) = http(&server, "GET", "/.well-known/jmap", ALICE, b"");
    let caps =
        &session["accounts"][&acct]["accountCapabilities"]["urn:ietf:params:jmap:submission"];
    assert_eq!(caps["maxDelayedSend"], 30 * 86_400, "{caps}");
    assert!(
        caps["submissionExtensions"]["FUTURERELEASE"].is_array(),
        "{caps}"
    );
    assert!(caps["submissionExtensions"]["DSN"].is_array(), "{caps}");
    let using = json!([
        "urn:ietf:params:jmap:core",
        "urn:ietf:params:jmap:mail",
        "urn:ietf:params:jmap:submission"
    ]);
    let send = |calls: Value| api_using(&server, using.clone(), calls);
    let identity = send(json!([["Identity/get", {"accountId": acct}, "i"]]))[0][1]["list"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let inbox = inbox_id(&server);
    // Three drafts to Bob, each submitted with its own envelope.
    let submit = |subject: &str, mail_params: Value| -> Value {
        let r = send(json!([
            ["Email/set", {"accountId": acct, "create": {"m": {
                "mailboxIds": {inbox.clone(): true},
                "from": [{"email": "alice@a.test"}], "to": [{"email": "bob@a.test"}],
                "subject": subject, "textBody": [{"partId": "1"}], "bodyValues": {"1": {"value": "Later."}}}}}, "c"],
            ["EmailSubmission/set", {"accountId": acct, "create": {"s": {
                "identityId": identity, "emailId": "#m",
                "envelope": {"mailFrom": {"email": "alice@a.test", "parameters": mail_params},
                             "rcptTo": [{"email": "bob@a.test", "parameters": {"NOTIFY": "FAILURE"}}]}}}}, "s"],
        ]));
        r[1][1].clone()
    };
    let before = message::date::unix_now();
    let held = submit("held then canceled", json!({"HOLDFOR": "600"}));
    let created = &held["created"]["s"];
    assert_eq!(created["undoStatus"], "pending", "{held}");
    let send_at = message::date::rfc3339(created["sendAt"].as_str().unwrap()).unwrap();
    assert!(
        (before + 599..=before + 602).contains(&send_at),
        "{created}"
    );
    let held_id = created["id"].as_str().unwrap().to_string();
    let soon = submit("released", json!({"HOLDFOR": "2"}));
    let soon_id = soon["created"]["s"]["id"].as_str().unwrap().to_string();
    let pending = send(
        json!([["EmailSubmission/query", {"accountId": acct, "filter": {"undoStatus": "pending"}}, "q"]]),
    );
    assert_eq!(
        pending[0][1]["ids"].as_array().unwrap().len(),
        2,
        "{pending:?}"
    );
    assert_eq!(
        inbox_count(&server, ("bob@a.test", "bob-pw")),
        0,
        "held: not even locally"
    );
    // Undo the first: out of the queue, canceled, and only once.
    let undo = json!([["EmailSubmission/set", {"accountId": acct, "update": {held_id.clone(): {"undoStatus": "canceled"}}}, "u"]]);
    let r = send(undo.clone());
    assert_eq!(r[0][1]["updated"], json!({held_id.clone(): null}), "{r:?}");
    let r = send(undo);
    assert_eq!(r[0][1]["notUpdated"][&held_id]["type"], "cannotUnsend");
    let got =
        send(json!([["EmailSubmission/get", {"accountId": acct, "ids": [held_id.clone()]}, "g"]]));
    assert_eq!(got[0][1]["list"][0]["undoStatus"], "canceled");
    assert_eq!(
        got[0][1]["list"][0]["envelope"]["mailFrom"]["parameters"],
        json!({"HOLDFOR": "600"})
    );
    // The second is released after 2 s: Bob has it, and it is final.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while inbox_count(&server, ("bob@a.test", "bob-pw")) == 0 {
        assert!(std::time::Instant::now() < deadline, "never released");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let got =
        send(json!([["EmailSubmission/get", {"accountId": acct, "ids": [soon_id.clone()]}, "g"]]));
    assert_eq!(got[0][1]["list"][0]["undoStatus"], "final");
    let r = send(
        json!([["EmailSubmission/set", {"accountId": acct, "update": {soon_id.clone(): {"undoStatus": "canceled"}}}, "u"]]),
    );
    assert_eq!(r[0][1]["notUpdated"][&soon_id]["type"], "cannotUnsend");
    assert_eq!(
        inbox_count(&server, ("bob@a.test", "bob-pw")),
        1,
        "the canceled one never came"
    );
    // Parameters the submission port refuses.
    let bad = submit("bad", json!({"XYZZY": "1"}));
    assert_eq!(bad["notCreated"]["s"]["type"], "invalidProperties", "{bad}");
    let bad = submit("too far", json!({"HOLDFOR": "99999999"}));
    assert_eq!(bad["notCreated"]["s"]["type"], "invalidProperties", "{bad}");
}

/// VacationResponse (RFC 8621 §8), kept as a Sieve script run at
/// delivery: enabled over JMAP, a message from Bob gets one automatic
/// reply (Sieve's vacation: once per sender), read back as set; disabled,
/// no more replies.
#[test]
fn vacation_response_answers_once() {
    let server = server();
    let acct = account(&server);
    let using = json!([
        "urn:ietf:params:jmap:core",
        "urn:ietf:params:jmap:vacationresponse"
    ]);
    let send = |calls: Value| api_using(&server, using.clone(), calls);
    let r = send(json!([
        ["VacationResponse/get", {"accountId": acct}, "0"],
        ["VacationResponse/set", {"accountId": acct, "update": {"singleton": {
            "isEnabled": true, "fromDate": "2020-01-01T00:00:00Z", "toDate": "2099-01-01T00:00:00Z",
            "subject": "Away", "textBody": "Back in January."}},
            "create": {"x": {}}}, "1"],
        ["VacationResponse/get", {"accountId": acct}, "2"],
    ]));
    assert_eq!(r[0][1]["list"][0]["isEnabled"], false);
    assert_eq!(
        r[1][1]["updated"],
        json!({"singleton": null}),
        "{}",
        r[1][1]
    );
    assert_eq!(r[1][1]["notCreated"]["x"]["type"], "singleton");
    let v = &r[2][1]["list"][0];
    assert_eq!(v["id"], "singleton");
    assert_eq!(v["subject"], "Away");
    assert_eq!(v["toDate"], "2099-01-01T00:00:00Z");
    let from_bob = |subject: &str| {
        testkit::send_smtp(
            server.addr("smtp"),
            "bob@a.test",
            "alice@a.test",
            &format!(
                "From: bob@a.test\r\nTo: alice@a.test\r\nSubject: {subject}\r\nMessage-ID: <{subject}@a.test>\r\n\r\nhi\r\n"
            ),
        )
    };
    from_bob("one");
    from_bob("two");
    let (mut w, mut rd) = common::raw_client(server.addr("imap"));
    imap(&mut w, &mut rd, "a LOGIN bob@a.test bob-pw");
    let mut replies = String::new();
    for _ in 0..50 {
        imap(&mut w, &mut rd, "b SELECT INBOX");
        replies = imap(&mut w, &mut rd, "c SEARCH SUBJECT Away");
        if replies.contains("* SEARCH 1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        replies.contains("* SEARCH 1\r\n"),
        "one reply, not two: {replies}"
    );
    let reply = imap(&mut w, &mut rd, "d FETCH 1 BODY.PEEK[]");
    assert!(reply.contains("Back in January."), "{reply}");
    assert!(reply.contains("Auto-Submitted: auto-replied"), "{reply}");
    // Disabled: the script no longer answers.
    let off = send(
        json!([["VacationResponse/set", {"accountId": acct, "update": {"singleton": {"isEnabled": false}}}, "3"]]),
    );
    assert_eq!(off[0][1]["updated"], json!({"singleton": null}));
    let got = send(
        json!([["VacationResponse/get", {"accountId": acct, "ids": ["singleton", "other"]}, "4"]]),
    );
    assert_eq!(got[0][1]["list"][0]["isEnabled"], false);
    assert_eq!(
        got[0][1]["list"][0]["subject"], "Away",
        "the text is kept while off"
    );
    assert_eq!(got[0][1]["notFound"], json!(["other"]));
}

/// A real JMAP client: jmap-jam (npm, MIT) signs in with a bearer token
/// issued by `tern account token add`, reads the inbox by query and get
/// in one request, sets a keyword and uploads a blob. A revoked or wrong
/// token is refused.
#[test]
fn jmap_jam_with_a_bearer_token() {
    let server = server();
    deliver(&server, "for-jam", "Hello, Jam.");
    let token = server
        .admin_ok(&["account", "token", "add", "alice@a.test", "jam"])
        .trim()
        .to_string();
    assert!(token.starts_with("tern_"), "{token}");
    let listed = server.admin_ok(&["account", "token", "list", "alice@a.test"]);
    assert!(listed.starts_with("jam\t"), "{listed}");
    assert!(!listed.contains(&token), "the token is never shown again");
    let session_url = format!("http://{}/.well-known/jmap", server.addr("http"));
    let out = std::process::Command::new("node")
        .arg(common::repo("tests/clients/jmap_jam.mjs"))
        .args([session_url.as_str(), token.as_str()])
        .output()
        .expect("node (see scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["total"], 1, "{seen}");
    assert_eq!(seen["subject"], "for-jam");
    assert_eq!(seen["from"][0]["email"], "bob@far.test");
    assert_eq!(seen["updated"].as_array().unwrap().len(), 1);
    assert_eq!(seen["upload"]["size"], 14);
    let acct = account(&server);
    let got = call(
        &server,
        "Email/get",
        json!({"accountId": acct, "ids": seen["updated"].clone(), "properties": ["keywords"]}),
    );
    assert_eq!(got["list"][0]["keywords"], json!({"$flagged": true}));
    // Revoked: refused at once; a made-up token too.
    let bearer = |t: &str| {
        let url = format!("http://{}/.well-known/jmap", server.addr("http"));
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                &format!("Authorization: Bearer {t}"),
                &url,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(bearer(&token), "200");
    server.admin_ok(&["account", "token", "remove", "alice@a.test", "jam"]);
    assert_eq!(bearer(&token), "401");
    assert_eq!(bearer("tern_made-up"), "401");
}

/// A server where alice has one 40 MB message with a 30 MB attachment
/// (`common::with_large_attachment` under `top`): the server, alice's
/// account id, the email's id, the attachment and the message.
fn with_large_message(top: &str) -> (TernServer, String, String, Vec<u8>, Vec<u8>) {
    let (attachment, message, _) = common::with_large_attachment(top);
    let (server, acct, email) = with_alice_holding(&message);
    (server, acct, email, attachment, message)
}

/// A server whose Alice holds `message` alone: the server, her account
/// id, the message's Email id.
fn with_alice_holding(message: &[u8]) -> (TernServer, String, String) {
    let server = server();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::append_to_alice(&server, &[message.to_vec()]));
    let acct = account(&server);
    let ids = call(&server, "Email/query", json!({"accountId": acct}));
    let email = ids["ids"][0].as_str().unwrap().to_string();
    (server, acct, email)
}

/// Alice's blob `blob` downloaded with curl as `name` into `dir`.
fn curl_download(
    server: &TernServer,
    acct: &str,
    blob: &str,
    name: &str,
    dir: &std::path::Path,
) -> Vec<u8> {
    let out = dir.join(name);
    let status = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "-u",
            &format!("{}:{}", ALICE.0, ALICE.1),
            "-o",
        ])
        .arg(&out)
        .arg(format!(
            "http://{}/jmap/download/{acct}/{blob}/{name}",
            server.addr("http")
        ))
        .status()
        .unwrap();
    assert!(status.success(), "curl {blob}");
    std::fs::read(out).unwrap()
}

/// C-FT9 for Email/get: the body properties of a 40 MB message with a
/// 30 MB attachment (its structure, the parts and their decoded sizes,
/// the text values) come from an outline and one pass over its leaves,
/// never the message whole: the server's peak memory hardly moves (read
/// whole and parsed, it grew by several times the message).
#[test]
fn body_properties_of_a_large_message_are_read_as_a_stream() {
    let (server, acct, email, _, _) =
        with_large_message("From: bob@far.test\r\nSubject: large\r\n");
    let before = common::peak_rss_kib(server.pid().unwrap());
    let got = call(
        &server,
        "Email/get",
        json!({
            "accountId": acct,
            "ids": [email],
            "properties": ["subject", "bodyStructure", "textBody", "attachments",
                           "hasAttachment", "bodyValues"],
            "fetchAllBodyValues": true,
        }),
    );
    common::assert_peak_within(
        server.pid().unwrap(),
        before,
        "Email/get of a 40 MB message",
    );
    let e = &got["list"][0];
    assert_eq!(e["subject"], "large");
    assert_eq!(e["hasAttachment"], true);
    let attachment = &e["attachments"][0];
    assert_eq!(attachment["partId"], "2", "{e}");
    assert_eq!(attachment["size"], 30_000_000, "{e}");
    assert_eq!(attachment["name"], "big.bin", "{e}");
    assert_eq!(attachment["type"], "application/octet-stream", "{e}");
    assert_eq!(e["bodyStructure"]["subParts"][1]["size"], 30_000_000, "{e}");
    assert_eq!(e["textBody"][0]["size"], 9, "{e}");
    assert_eq!(e["bodyValues"]["1"]["value"], "Attached.", "{e}");
}

/// C-FT9 for Email/query: the `hasAttachment` and `header` filters read
/// a large message's outline and header section, never the message whole;
/// both find it, and the server's peak memory hardly moves.
#[test]
fn filters_on_a_large_message_read_its_structure_only() {
    let (server, acct, email, _, _) =
        with_large_message("From: bob@far.test\r\nX-Project: zephyr-42\r\nSubject: large\r\n");
    let before = common::peak_rss_kib(server.pid().unwrap());
    let found = |filter: Value| {
        call(
            &server,
            "Email/query",
            json!({"accountId": acct, "filter": filter}),
        )["ids"]
            .clone()
    };
    assert_eq!(found(json!({"hasAttachment": true})), json!([email]));
    assert_eq!(
        found(json!({"header": ["X-Project", "zephyr"]})),
        json!([email])
    );
    assert_eq!(found(json!({"header": ["X-Project", "other"]})), json!([]));
    common::assert_peak_within(
        server.pid().unwrap(),
        before,
        "Email/query filters on a 40 MB message",
    );
}

/// C-FT9 for EmailSubmission: a 40 MB draft is sent from the store a
/// piece at a time into the submission spool (its Bcc removed from the
/// header section, line ends made CRLF on the way), never held whole: the
/// server's peak memory hardly moves (it held the message three times
/// over before); Bob gets it whole, without the Bcc field.
#[test]
fn a_large_draft_is_submitted_from_the_store() {
    let (server, acct, email, _, _) = with_large_message(
        "From: alice@a.test\r\nTo: bob@a.test\r\nBcc: carol@far.test\r\nSubject: large draft\r\n",
    );
    let using = json!([
        "urn:ietf:params:jmap:core",
        "urn:ietf:params:jmap:mail",
        "urn:ietf:params:jmap:submission"
    ]);
    let identities = api_using(
        &server,
        using.clone(),
        json!([["Identity/get", {"accountId": acct}, "i"]]),
    );
    let identity = identities[0][1]["list"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = common::peak_rss_kib(server.pid().unwrap());
    let r = api_using(
        &server,
        using,
        json!([["EmailSubmission/set", {"accountId": acct, "create": {
            "go": {"identityId": identity, "emailId": email,
                   "envelope": {"mailFrom": {"email": "alice@a.test"},
                                "rcptTo": [{"email": "bob@a.test"}]}}}}, "s"]]),
    );
    common::assert_peak_within(server.pid().unwrap(), before, "submitting a 40 MB draft");
    assert_eq!(r[0][1]["created"]["go"]["undoStatus"], "final", "{r:?}");
    let (mut w, mut rd) = common::raw_client(server.addr("imap"));
    imap(&mut w, &mut rd, "a LOGIN bob@a.test bob-pw");
    imap(&mut w, &mut rd, "b SELECT INBOX");
    let fetched = imap(
        &mut w,
        &mut rd,
        "c FETCH 1 (BINARY.SIZE[2] BODY.PEEK[HEADER])",
    );
    assert!(fetched.contains("BINARY.SIZE[2] 30000000"), "{fetched}");
    assert!(fetched.contains("Subject: large draft"), "{fetched}");
    assert!(!fetched.contains("Bcc:"), "Bcc removed: {fetched}");
}

/// C-FT9 for JMAP downloads: a 40 MB message and its 30 MB base64
/// attachment, downloaded with curl, come from the store a piece at a time
/// (the part decoded on the way), so the server's peak memory hardly moves
/// (read whole, parsed and decoded, it grew by several times the
/// attachment); each arrives octet for octet.
#[test]
fn large_downloads_come_a_piece_at_a_time() {
    let (server, acct, email, attachment, message) =
        with_large_message("From: bob@far.test\r\nSubject: large\r\n");
    let blob = format!("B{}", &email[1..]);
    let before = common::peak_rss_kib(server.pid().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let fetch = |blob: &str, name: &str| curl_download(&server, &acct, blob, name, dir.path());
    let part = fetch(&format!("{blob}-2"), "big.bin");
    let whole = fetch(&blob, "m.eml");
    common::assert_peak_within(server.pid().unwrap(), before, "two large downloads");
    assert!(part == attachment, "the attachment differs");
    assert!(whole.ends_with(&message), "the message differs");
}

/// C-FT9 for a part of a message attached inside a large one (blob id
/// `-2_2`): the attached message is a range of the stored octets with an
/// outline of its own, so its 30 MB base64 attachment comes from the store
/// a piece at a time too (it was read whole, parsed twice and decoded:
/// several times the message).
#[test]
fn a_part_of_an_attached_message_downloads_a_piece_at_a_time() {
    let (attachment, inner, _) =
        common::with_large_attachment("From: carol@far.test\r\nSubject: inner\r\n");
    let outer = [
        &b"From: bob@far.test\r\nSubject: forwarded\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: text/plain\r\n\r\nForwarded.\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n"[..],
        &inner,
        b"\r\n--outer--\r\n",
    ]
    .concat();
    drop(inner);
    let (server, acct, email) = with_alice_holding(&outer);
    drop(outer);
    let blob = format!("B{}-2_2", &email[1..]);
    let before = common::peak_rss_kib(server.pid().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let part = curl_download(&server, &acct, &blob, "big.bin", dir.path());
    common::assert_peak_within(
        server.pid().unwrap(),
        before,
        "a part of an attached message",
    );
    assert!(part == attachment, "the attachment differs");
}
