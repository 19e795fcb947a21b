//! The web admin at `/admin`: administrators only, the admin CLI's checks
//! and records over `POST /admin/api`, a log line per change; and in a
//! real browser (Debian's Chromium under Playwright, tests/clients/
//! admin.mjs), an administrator adds a domain and an account that can
//! then sign in. Screenshots in `target/test-artefacts/admin/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};
use testkit::TernServer;

const ALICE: (&str, &str) = ("alice@a.test", "alice-pw");
const BOB: (&str, &str) = ("bob@a.test", "bob-pw");

fn server() -> TernServer {
    let listeners = testkit::ephemeral_listeners(&["smtp", "submission", "imap", "http"]);
    common::smtp_server_with(
        &listeners,
        "[imap]\nplaintext_on_loopback = true\n[http]\nadmins = [\"Alice@A.test\"]\n",
    )
}

/// A signed-in browser: its cookie and CSRF token.
struct Browser<'a> {
    server: &'a TernServer,
    headers: String,
}

impl<'a> Browser<'a> {
    fn sign_in(server: &'a TernServer, user: (&str, &str)) -> Browser<'a> {
        let (cookie, csrf) = common::sign_in(server, user);
        Browser {
            server,
            headers: format!("Cookie: {cookie}\r\nX-Tern-CSRF: {csrf}\r\n"),
        }
    }

    /// One action: (HTTP status, the answer).
    fn call(&self, action: Value) -> (u16, Value) {
        let request = common::post("/admin/api", &self.headers, &action.to_string());
        let (status, head, body) = common::http1(self.server, &request);
        let answer =
            serde_json::from_str(&body).unwrap_or_else(|_| json!({"text": body, "head": head}));
        (status, answer)
    }

    /// An action that must succeed: its result.
    fn ok(&self, action: Value) -> Value {
        let (status, answer) = self.call(action.clone());
        assert_eq!(status, 200, "{action} -> {answer}");
        answer["result"].clone()
    }

    /// An action that must be refused: its message.
    fn refused(&self, action: Value) -> String {
        let (status, answer) = self.call(action.clone());
        assert_eq!(status, 400, "{action} -> {answer}");
        answer["error"].as_str().unwrap().to_string()
    }
}

/// Who may: nobody signed out (401), a user who is not an administrator
/// (403), an administrator only with the CSRF token and a JSON body.
#[test]
fn only_administrators_reach_the_admin_api() {
    let server = server();
    let (status, head, body) = common::http1(
        &server,
        "GET /admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(body.contains("Tern administration"), "{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    let health = json!({"action": "health"}).to_string();
    let (status, _, _) = common::http1(&server, &common::post("/admin/api", "", &health));
    assert_eq!(status, 401, "signed out");
    let bob = Browser::sign_in(&server, BOB);
    let (status, _) = bob.call(json!({"action": "health"}));
    assert_eq!(status, 403, "bob is not an administrator");
    let (status, _) =
        bob.call(json!({"action": "accountAdd", "address": "eve@a.test", "password": "x"}));
    assert_eq!(status, 403);
    let (cookie, csrf) = common::sign_in(&server, ALICE);
    let no_csrf = format!("Cookie: {cookie}\r\n");
    let (status, _, _) = common::http1(&server, &common::post("/admin/api", &no_csrf, &health));
    assert_eq!(status, 403, "no CSRF token");
    let plain = common::post(
        "/admin/api",
        &format!("Cookie: {cookie}\r\nX-Tern-CSRF: {csrf}\r\n"),
        &health,
    )
    .replace("application/json", "text/plain");
    let (status, _, _) = common::http1(&server, &plain);
    assert_eq!(status, 415, "not JSON");
    let alice = Browser::sign_in(&server, ALICE);
    let (status, answer) = alice.call(json!({"action": "rm", "path": "/"}));
    assert_eq!(status, 400, "{answer}");
    let h = alice.ok(json!({"action": "health"}));
    assert_eq!(h["hostname"], "mx.a.test");
    assert!(h["accounts"].as_u64().unwrap() >= 2, "{h}");
    assert!(h["disk"]["freeBytes"].as_u64().unwrap() > 0, "{h}");
    assert!(h["certificate"]["daysLeft"].as_i64().unwrap() > 0, "{h}");
    assert!(
        h["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "smtp"),
        "{h}"
    );
    let log = server.log();
    assert!(
        log.contains("web admin: refused, not an administrator"),
        "{log}"
    );
}

/// Domains, accounts, aliases, quotas and holds through the web: the
/// CLI's checks and messages, the records `tern dns records` prints, the
/// new account signs in, and each change is logged (never a password).
#[test]
fn the_web_admin_runs_the_admin_commands_with_their_checks() {
    let server = server();
    let alice = Browser::sign_in(&server, ALICE);
    assert!(
        alice
            .refused(json!({"action": "domainAdd", "domain": "not a domain!"}))
            .contains("malformed domain")
    );
    let added = alice.ok(json!({"action": "domainAdd", "domain": "B.test"}));
    assert_eq!(added["domain"], "b.test");
    assert_eq!(
        added["dkimSelectors"].as_array().unwrap().len(),
        2,
        "{added}"
    );
    let domains = alice.ok(json!({"action": "domains"}));
    assert!(
        domains
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["domain"] == "b.test" && d["accounts"] == 0),
        "{domains}"
    );
    // The same lines the CLI prints.
    let records = alice.ok(json!({"action": "dnsRecords", "domain": "b.test"}));
    let cli = server.admin_ok(&["dns", "records", "b.test"]);
    let lines: Vec<&str> = records["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines, cli.lines().collect::<Vec<_>>());
    assert!(
        lines.contains(&"b.test. 3600 IN MX 10 mx.a.test."),
        "{records}"
    );
    // Live status: this test's DNS answers nothing, so the MX fails.
    let live = alice.ok(json!({"action": "dnsCheck", "domain": "b.test"}));
    let mx = &live["checks"][0];
    assert_eq!(mx["status"], "fail", "{live}");
    assert!(
        mx["fix"].as_str().unwrap().contains("IN MX 10 mx.a.test."),
        "{live}"
    );
    assert!(
        alice
            .refused(json!({"action": "dnsRecords", "domain": "c.test"}))
            .contains("domain c.test not found")
    );

    assert!(
        alice
            .refused(json!({"action": "accountAdd", "address": "carol", "password": "carol-pw-1"}))
            .contains("malformed address")
    );
    assert!(
        alice
            .refused(json!({"action": "accountAdd", "address": "carol@b.test", "password": ""}))
            .contains("the password is empty")
    );
    let carol = alice
        .ok(json!({"action": "accountAdd", "address": "Carol@B.test", "password": "carol-pw-1"}));
    assert_eq!(carol["address"], "carol@b.test");
    let again = alice.refused(
        json!({"action": "accountAdd", "address": "carol@b.test", "password": "other-pw-2"}),
    );
    assert!(again.contains("exists"), "{again}");
    assert!(common::imap_login(&server, ("carol@b.test", "carol-pw-1")));
    alice.ok(
        json!({"action": "accountPassword", "address": "carol@b.test", "password": "carol-pw-2"}),
    );
    assert!(!common::imap_login(&server, ("carol@b.test", "carol-pw-1")));
    assert!(common::imap_login(&server, ("carol@b.test", "carol-pw-2")));

    let quota = alice.ok(json!({"action": "accountQuota", "address": "carol@b.test", "storage": "1M", "messages": "100"}));
    assert_eq!(quota["storageLimit"], 1 << 20, "{quota}");
    assert_eq!(quota["messagesLimit"], 100);
    assert!(
        alice
            .refused(
                json!({"action": "accountQuota", "address": "carol@b.test", "storage": "lots"})
            )
            .contains("not a limit")
    );
    let held = alice.ok(json!({"action": "accountHold", "address": "carol@b.test", "hold": true}));
    assert_eq!(held["held"], true);
    let accounts = alice.ok(json!({"action": "accounts"}));
    let row = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["address"] == "carol@b.test")
        .unwrap()
        .clone();
    assert_eq!(row["held"], true, "{row}");
    assert_eq!(row["storageLimit"], 1 << 20, "{row}");

    let alias = alice.ok(json!({"action": "aliasAdd", "address": "sales@b.test", "targets": "carol@b.test, alice@a.test"}));
    assert_eq!(alias["targets"], json!(["carol@b.test", "alice@a.test"]));
    assert!(
        alice
            .refused(json!({"action": "aliasAdd", "address": "x@b.test", "targets": " , "}))
            .contains("at least one target")
    );
    let aliases = alice.ok(json!({"action": "aliases"}));
    assert!(
        aliases
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["address"] == "sales@b.test")
    );

    // The store's own rule: a domain with accounts stays.
    let busy = alice.refused(json!({"action": "domainRemove", "domain": "b.test"}));
    assert!(!busy.is_empty());
    let (status, _) = alice.call(json!({"action": "accountRemove", "address": "ALICE@a.test"}));
    assert_eq!(status, 409, "not the account one is signed in with");
    alice.ok(json!({"action": "aliasRemove", "address": "sales@b.test"}));
    alice.ok(json!({"action": "accountRemove", "address": "carol@b.test"}));
    assert!(!common::imap_login(&server, ("carol@b.test", "carol-pw-2")));
    alice.ok(json!({"action": "domainRemove", "domain": "b.test"}));
    let cli = server.admin_ok(&["domain", "list"]);
    assert!(!cli.contains("b.test"), "{cli}");

    let log = server.log();
    for action in [
        "domainAdd",
        "accountAdd",
        "accountPassword",
        "accountQuota",
        "accountHold",
        "aliasAdd",
        "accountRemove",
        "domainRemove",
    ] {
        assert!(
            log.lines().any(|l| l.contains("web admin: change made")
                && l.contains("admin=alice@a.test")
                && l.contains(&format!("action={action}"))),
            "no log line for {action}: {log}"
        );
    }
    assert!(log.contains("web admin: change refused"), "{log}");
    assert!(!log.contains("carol-pw"), "a password reached the log");
}

/// The queue, the history and the reports through the web: a message
/// to an unreachable domain waits in the queue; its attempts are shown,
/// it is retried and deleted; its history is read by address.
#[test]
fn the_web_admin_shows_and_works_the_queue_and_history() {
    let server = server();
    common::submit(
        &server,
        "alice@a.test",
        "alice-pw",
        &["dan@far.test"],
        "From: alice@a.test\r\nTo: dan@far.test\r\nSubject: Stuck\r\n\r\nWaiting.\r\n",
    );
    let alice = Browser::sign_in(&server, ALICE);
    let mut queue = Value::Null;
    for _ in 0..100 {
        queue = alice.ok(json!({"action": "queue"}));
        if queue.as_array().is_some_and(|q| !q.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let entry = &queue[0];
    assert_eq!(entry["sender"], "alice@a.test", "{queue}");
    assert_eq!(entry["recipients"][0]["address"], "dan@far.test");
    let id = entry["id"].as_i64().unwrap();
    let detail = alice.ok(json!({"action": "queueShow", "id": id}));
    assert_eq!(
        detail["recipients"][0]["address"], "dan@far.test",
        "{detail}"
    );
    let h = alice.ok(json!({"action": "health"}));
    assert_eq!(h["queue"]["messages"], 1, "{h}");
    assert!(
        alice
            .refused(json!({"action": "queueShow", "id": id + 1000}))
            .contains("not found")
    );
    // Retry makes it due now (it is not leased between attempts).
    let mut retried = false;
    for _ in 0..100 {
        if alice.call(json!({"action": "queueRetry", "id": id})).0 == 200 {
            retried = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(retried);
    alice.ok(json!({"action": "queueDelete", "id": id}));
    assert_eq!(alice.ok(json!({"action": "queue"})), json!([]));
    let events = alice.ok(json!({"action": "history", "what": "dan@far.test"}));
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "accepted"),
        "{events}"
    );
    assert!(
        alice
            .refused(json!({"action": "history", "what": "nobody@nowhere.test"}))
            .contains("no history")
    );
    assert_eq!(alice.ok(json!({"action": "reports"})), json!([]));
    assert!(
        alice
            .refused(json!({"action": "reportShow", "id": 7}))
            .contains("report 7 not found")
    );
}

/// In the browser: an administrator signs in at /admin, adds a domain
/// (its DNS records shown) and an account; the new account then signs in
/// to the webmail. A user who is not an administrator is turned away.
#[test]
fn an_administrator_adds_a_domain_and_an_account_in_the_browser() {
    let server = server();
    let dir = common::repo("target/test-artefacts/admin");
    std::fs::create_dir_all(&dir).unwrap();
    let base = format!("http://{}", server.addr("http"));
    let out = std::process::Command::new("node")
        .arg(common::repo("tests/clients/admin.mjs"))
        .args([base.as_str(), ALICE.0, ALICE.1, BOB.0, BOB.1])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "admin.mjs: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r["steps"],
        json!([
            "not-admin",
            "sign-in",
            "health",
            "domain",
            "dns",
            "account",
            "quota",
            "sign-out",
            "new-user"
        ]),
        "{r}"
    );
    assert_eq!(r["external"], json!([]), "{r}");
    assert_eq!(r["pageErrors"], json!([]), "{r}");
    assert_eq!(
        r["a11y"],
        json!([]),
        "unnamed controls or low contrast: {r}"
    );
    assert!(
        r["notAdmin"]
            .as_str()
            .unwrap()
            .contains("not an administrator"),
        "{r}"
    );
    assert!(
        r["dns"]
            .as_str()
            .unwrap()
            .contains("b.test. 3600 IN MX 10 mx.a.test."),
        "{r}"
    );
    assert_eq!(r["newUser"], "carol@b.test", "{r}");
    assert!(common::imap_login(&server, ("carol@b.test", "carol-pw-1")));
    let listed = server.admin_ok(&["account", "list"]);
    assert!(listed.contains("carol@b.test"), "{listed}");
}
