//! The webmail in a real browser: Debian's Chromium driven by Playwright
//! (tests/clients/webmail.mjs) against a Tern server, the mail checked
//! over IMAP and JMAP afterwards. Screenshots of each step are kept in
//! `target/test-artefacts/webmail/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};
use testkit::TernServer;

const ALICE: (&str, &str) = ("alice@a.test", "alice-pw");
/// The password Alice chooses in the webmail's Settings.
const NEW_ALICE: (&str, &str) = ("alice@a.test", "a-new-secret-1");

fn server() -> TernServer {
    let listeners = testkit::ephemeral_listeners(&["smtp", "imap", "http"]);
    common::smtp_server_with(&listeners, "[imap]\nplaintext_on_loopback = true\n")
}

fn deliver(server: &TernServer, subject: &str, headers: &str, body: &str) {
    testkit::send_smtp(
        server.addr("smtp"),
        "bob@far.test",
        "alice@a.test",
        &format!(
            "From: Bob <bob@far.test>\r\nTo: alice@a.test\r\nSubject: {subject}\r\nMessage-ID: <{}@far.test>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0100\r\n{headers}\r\n{body}\r\n",
            subject.replace(' ', "-")
        ),
    );
}

#[test]
fn a_user_reads_writes_and_files_mail_in_the_browser() {
    let server = server();
    deliver(
        &server,
        "Hello from Bob",
        "",
        "Hello Alice,\r\nthe figures are in.",
    );
    deliver(
        &server,
        "Hostile",
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
        "<p>Hi</p><script>window.__pwned=true;alert(1)</script>\
         <img src=\"https://evil.test/pixel.gif\" onerror=\"alert(2)\">\
         <a href=\"javascript:alert(3)\">click</a><form action=\"https://evil.test/f\"><input name=p></form>\
         <style>body{background:url(https://evil.test/bg)}</style>\
         <div style=\"background:url(https://evil.test/css)\">css</div>\
         <iframe src=\"https://evil.test/frame\"></iframe><object data=\"https://evil.test/o\"></object>\
         <svg onload=\"alert(4)\"></svg><meta http-equiv=\"refresh\" content=\"0;url=https://evil.test/r\">",
    );
    deliver(&server, "Cheap pills", "", "Buy now.");
    deliver(
        &server,
        "Forwarded note",
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n",
        "--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
         From: Dan <dan@d.test>\r\nTo: bob@far.test\r\nSubject: the original\r\n\r\nOriginal words.\r\n--b--",
    );
    deliver(
        &server,
        "Forwarded page",
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n",
        "--b\r\nContent-Type: text/plain\r\n\r\nThe page.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
         From: Dan <dan@d.test>\r\nTo: bob@far.test\r\nSubject: the page\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n\
         <p>Inner <b>page</b></p><script>window.__pwned=true</script><img src=\"https://images.invalid/dan.png\">\r\n--b--",
    );
    let dir = common::repo("target/test-artefacts/webmail");
    std::fs::create_dir_all(&dir).unwrap();
    // A certificate for Alice, to publish from Settings.
    let dir_path = std::path::Path::new(&dir);
    let (_, key) = common::smime_certificate(dir_path, "alice-cert.pem", "alice@a.test", false);
    std::fs::rename(key, dir_path.join("alice-key.pem")).unwrap();
    let base = format!("http://{}", server.addr("http"));
    let out = std::process::Command::new("node")
        .arg(common::repo("tests/clients/webmail.mjs"))
        .args([base.as_str(), ALICE.0, ALICE.1])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "webmail.mjs: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r["steps"],
        json!([
            "sign-in",
            "read",
            "hostile",
            "attached",
            "attached-html",
            "compose",
            "reply",
            "search",
            "folder",
            "rename-folder",
            "conversation",
            "forward-attached",
            "spam",
            "draft",
            "vacation",
            "filters",
            "keys",
            "password",
            "sign-out"
        ]),
        "{r}"
    );
    assert_eq!(
        r["external"],
        json!([]),
        "nothing but our server was asked: {r}"
    );
    assert_eq!(r["dialogs"], json!([]), "no script ran: {r}");
    assert!(
        r["keyRefused"].as_str().unwrap().contains("private key"),
        "{r}"
    );
    assert!(r["keys"].as_str().unwrap().starts_with("S/MIME "), "{r}");
    assert!(
        r["encryptRefused"]
            .as_str()
            .unwrap()
            .contains("publish an OpenPGP key with an encryption subkey, or an S/MIME certificate"),
        "{r}"
    );
    assert_eq!(r["encryptCheckedWithoutKey"], false, "{r}");
    assert_eq!(r["encryptChecked"], true, "{r}");
    let listed = server.admin_ok(&["key", "list", "alice@a.test"]);
    assert!(listed.starts_with("smime\t"), "{listed}");
    let folders = r["foldersAfter"].as_array().unwrap();
    assert!(
        !folders.iter().any(|f| f == "Projects" || f == "Plans"),
        "{r}"
    );
    assert_eq!(r["inboxRenameHidden"], true, "INBOX is not renamed");
    assert!(r["threadRow"].as_str().unwrap().contains("Bob (2)"), "{r}");
    assert_eq!(r["conversation"], 2, "{r}");
    assert!(
        r["sortedFirst"]
            .as_str()
            .unwrap()
            .starts_with("Cheap pills"),
        "{r}"
    );
    let inner = r["attachedHtml"].as_str().unwrap();
    assert!(
        inner.contains("Inner <b>page</b>") && !inner.contains("<script"),
        "{inner}"
    );
    assert!(
        r["imagesFrom"].as_str().unwrap().contains("dan@d.test"),
        "{r}"
    );
    assert_eq!(
        r["allowedImages"],
        json!(["https://images.invalid/dan.png"]),
        "{r}"
    );
    assert_eq!(r["pageErrors"], json!([]), "{r}");
    assert_eq!(
        r["a11y"],
        json!([]),
        "unnamed controls or low contrast: {r}"
    );
    assert_eq!(r["pwned"], false);
    assert!(
        r["read"].as_str().unwrap().contains("the figures are in"),
        "{r}"
    );
    let frame = r["hostileFrame"].as_str().unwrap().to_lowercase();
    for bad in [
        "<script",
        "javascript:",
        "evil.test",
        "onerror",
        "onload",
        "<form",
        "<iframe",
        "<object",
        "http-equiv",
    ] {
        assert!(!frame.contains(bad), "{bad} reached the frame: {frame}");
    }
    assert!(frame.contains("hi"), "{frame}");
    assert_eq!(
        r["remoteImagesButton"], 1,
        "the reader is offered the blocked images"
    );
    assert_eq!(r["searchFound"], json!(["Hello from Bob"]));
    assert_eq!(r["afterSignOut"], 401, "the session ended");
    let attached = r["attached"].as_str().unwrap();
    assert!(
        attached.contains("the original") && attached.contains("Original words."),
        "{r}"
    );
    assert!(
        r["drafts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "Plans for spring"),
        "{r}"
    );
    // The password changed in Settings is the one IMAP takes now.
    assert!(
        !common::imap_login(&server, ALICE),
        "the old password still works"
    );
    assert!(common::imap_login(&server, NEW_ALICE));
    // Bob has the message with its attachment; the reply went out.
    let bob = common::imap_mailbox(&server, ("bob@a.test", "bob-pw"), "INBOX").concat();
    assert!(bob.contains("Subject: Lunch on Friday"), "{bob}");
    assert!(bob.contains("agenda.txt"), "{bob}");
    let forwarded = common::imap_mailbox(&server, ("bob@a.test", "bob-pw"), "INBOX")
        .into_iter()
        .find(|m| m.contains("Subject: Fwd: Hello from Bob"))
        .unwrap_or_else(|| panic!("{bob}"));
    assert!(
        forwarded.contains("Content-Type: message/rfc822")
            && forwarded.contains("Content-Transfer-Encoding: 7bit")
            && forwarded.contains("the figures are in"),
        "{forwarded}"
    );
    let sent = common::imap_mailbox(&server, NEW_ALICE, "Sent").concat();
    assert!(sent.contains("Subject: Re: Hello from Bob"), "{sent}");
    assert!(
        sent.contains("In-Reply-To: <Hello-from-Bob@far.test>"),
        "{sent}"
    );
    // The filter made in Settings files new mail (a Sieve script).
    assert_eq!(r["filterRules"], 1, "{r}");
    deliver(&server, "[report] weekly", "", "Numbers.");
    let reports = common::imap_mailbox(&server, NEW_ALICE, "Reports").concat();
    assert!(reports.contains("Subject: [report] weekly"), "{reports}");
    let junk = common::imap_mailbox(&server, NEW_ALICE, "Junk").concat();
    assert!(junk.contains("Subject: Cheap pills"), "{junk}");
    // Marking it spam taught Alice's filter (as moving it over IMAP does).
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("spam filter trained by the user")
                && l.contains("spam=true")
                && l.contains("trained=1")),
        "{log}"
    );
    // The vacation reply set in Settings, read back over JMAP.
    let url = format!("{base}/.well-known/jmap");
    let session: Value = serde_json::from_slice(&common::python(
        "jmap_call.py",
        &["GET", &url, NEW_ALICE.0, NEW_ALICE.1],
        b"",
    ))
    .unwrap();
    let acct = session["body"]["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        .as_str()
        .unwrap();
    let call = json!({"using": ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:vacationresponse"],
        "methodCalls": [["VacationResponse/get", {"accountId": acct}, "v"]]});
    let got: Value = serde_json::from_slice(&common::python(
        "jmap_call.py",
        &[
            "POST",
            &format!("{base}/jmap/api"),
            NEW_ALICE.0,
            NEW_ALICE.1,
        ],
        call.to_string().as_bytes(),
    ))
    .unwrap();
    let vacation = &got["body"]["methodResponses"][0][1]["list"][0];
    assert_eq!(vacation["isEnabled"], true, "{got}");
    assert_eq!(vacation["textBody"], "Back on Monday.");
    println!(
        "webmail figures: first load {} bytes, sign-in to message list {} ms",
        r["figures"]["firstLoadBytes"], r["figures"]["signInToListMs"]
    );
}

/// The session's rules on the wire: the cookie is Secure, HttpOnly and
/// SameSite=Strict; a wrong password gets no session; a change made
/// with the cookie but without the CSRF token is refused, with it
/// accepted; every page carries a strict Content-Security-Policy; a
/// signed-out cookie opens nothing.
#[test]
fn sessions_cookies_and_csrf_on_the_wire() {
    let server = server();
    let (status, head, _) = common::http1(
        &server,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    let csp = head
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{head}"
    );
    let (status, _, _) = common::http1(
        &server,
        &common::post(
            "/webmail/login",
            "",
            r#"{"username":"alice@a.test","password":"nope"}"#,
        ),
    );
    assert_eq!(status, 401);
    // A form another site could post (text/plain) signs nobody in.
    let plain = common::post(
        "/webmail/login",
        "",
        r#"{"username":"alice@a.test","password":"alice-pw"}"#,
    )
    .replace("application/json", "text/plain");
    let (status, head, _) = common::http1(&server, &plain);
    assert_eq!(status, 415);
    assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");
    let (status, head, body) = common::http1(
        &server,
        &common::post(
            "/webmail/login",
            "",
            r#"{"username":"alice@a.test","password":"alice-pw"}"#,
        ),
    );
    assert_eq!(status, 200, "{head}");
    let set_cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    let cookie = set_cookie
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = serde_json::from_str::<Value>(&body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let api =
        r#"{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"x":1},"0"]]}"#;
    let (status, _, _) = common::http1(
        &server,
        &common::post("/jmap/api", &format!("Cookie: {cookie}\r\n"), api),
    );
    assert_eq!(status, 403, "no CSRF token");
    let (status, _, _) = common::http1(
        &server,
        &common::post(
            "/jmap/api",
            &format!("Cookie: {cookie}\r\nX-Tern-CSRF: wrong\r\n"),
            api,
        ),
    );
    assert_eq!(status, 403, "a wrong CSRF token");
    let with = format!("Cookie: {cookie}\r\nX-Tern-CSRF: {csrf}\r\n");
    let (status, _, body) = common::http1(&server, &common::post("/jmap/api", &with, api));
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = common::http1(&server, &common::post("/webmail/logout", &with, ""));
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = common::http1(&server, &common::post("/jmap/api", &with, api));
    assert_eq!(status, 401, "signed out");
}

/// The filter editor's rules on the wire: read back as saved, a bad rule
/// refused with its reason, another client's active script (put by
/// `tern sieve put`, as ManageSieve would) replaced only when asked.
#[test]
fn filters_are_a_sieve_script_the_user_owns() {
    let server = server();
    let (cookie, csrf) = common::sign_in(&server, ("alice@a.test", "alice-pw"));
    let with = format!("Cookie: {cookie}\r\nX-Tern-CSRF: {csrf}\r\n");
    let get = |server: &TernServer| {
        let request = format!(
            "GET /webmail/filters HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
        );
        let (status, _, body) = common::http1(server, &request);
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(
        get(&server),
        json!({"rules": [], "editedElsewhere": false, "active": null})
    );
    let script = server.data_dir().join("mine.sieve");
    std::fs::write(&script, "require \"fileinto\";\nfileinto \"Elsewhere\";\n").unwrap();
    server.admin_ok(&[
        "sieve",
        "put",
        "alice@a.test",
        "mine",
        script.to_str().unwrap(),
        "--activate",
    ]);
    let rule = json!({"field": "from", "test": "contains", "value": "news@", "then": "move", "target": "News"});
    let save = |rules: Value, replace: bool| {
        let body = json!({"rules": rules, "replace": replace}).to_string();
        let (status, _, body) = common::http1(
            &server,
            &common::post("/webmail/filters/save", &with, &body),
        );
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap_or(Value::Null),
        )
    };
    let (status, answer) = save(json!([rule]), false);
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["active"], "mine");
    let bad = json!({"field": "subject", "test": "is", "value": "x", "then": "forward", "target": "nobody"});
    let (status, answer) = save(json!([bad]), true);
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("not an address"),
        "{answer}"
    );
    let (status, answer) = save(json!([rule]), true);
    assert_eq!(status, 200, "{answer}");
    let now = get(&server);
    assert_eq!(now["active"], "webmail-filters");
    assert_eq!(now["rules"][0]["target"], "News", "{now}");
    let listed = server.admin_ok(&["sieve", "list", "alice@a.test"]);
    assert!(
        listed.contains("webmail-filters") && listed.contains("mine"),
        "{listed}"
    );
    // The rule files mail at delivery.
    testkit::send_smtp(
        server.addr("smtp"),
        "news@far.test",
        "alice@a.test",
        "From: news@far.test\r\nTo: alice@a.test\r\nSubject: Issue 9\r\n\r\nNews.\r\n",
    );
    let news = common::imap_mailbox(&server, ("alice@a.test", "alice-pw"), "News").concat();
    assert!(news.contains("Subject: Issue 9"), "{news}");
}
