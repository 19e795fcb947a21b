//! The table of scripts × messages × expected actions: every file in
//! `tests/cases/` holds cases, each run through the compiler and the
//! interpreter exactly as delivery runs them.
//!
//! A case:
//!
//! ```text
//! === what it shows
//! message: basic              (tests/messages/basic.eml; or an "--- message" section)
//! from: bob@b.test            (envelope; default bob@b.test, <> for the null sender)
//! to: alice@a.test            (envelope recipient; default alice@a.test)
//! user: alice@a.test          (the account; default the recipient)
//! now: 1796205600             (unix seconds; default 2026-12-02T10:00:00Z)
//! spam: 7 70                  (spamtest level and percent)
//! mailboxes: Work, Lists      (what mailboxexists finds; INBOX always)
//! seen: yes                   (every duplicate id counts as seen)
//! env: remote-ip=192.0.2.7    (environment items)
//! --- script
//! ...
//! --- personal NAME / --- global NAME   (scripts to include)
//! --- expect                  (Action::describe() lines, in order)
//! --- error                   (a runtime error containing this)
//! --- compile-error           (the compile error containing this)
//! --- header                  (the header section of the edited message)
//! --- tracked                 (how many duplicate ids are recorded)
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use sieve::mail::Mail;
use sieve::{Context, Host, Script, SpamLevel};

struct TestHost {
    mailboxes: Vec<String>,
    seen: bool,
    personal: HashMap<String, String>,
    global: HashMap<String, String>,
}

#[async_trait::async_trait]
impl Host for TestHost {
    async fn mailbox_exists(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("INBOX") || self.mailboxes.iter().any(|m| m == name)
    }
    async fn seen(&self, _id: &str) -> bool {
        self.seen
    }
    async fn script(&self, name: &str, global: bool) -> Result<Option<Arc<Script>>, String> {
        let table = if global { &self.global } else { &self.personal };
        match table.get(name) {
            None => Ok(None),
            Some(text) => sieve::compile(text)
                .map(|s| Some(Arc::new(s)))
                .map_err(|e| e.to_string()),
        }
    }
}

#[derive(Default)]
struct Case {
    name: String,
    file: String,
    fields: HashMap<String, String>,
    sections: Vec<(String, String)>,
}

impl Case {
    fn section(&self, name: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }
}

fn parse_cases(file: &str, text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    let mut section: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            if let Some(mut c) = current.take() {
                c.sections.extend(section.take());
                cases.push(c);
            }
            current = Some(Case {
                name: name.trim().to_string(),
                file: file.to_string(),
                ..Default::default()
            });
            continue;
        }
        let Some(c) = current.as_mut() else { continue };
        if let Some(name) = line.strip_prefix("--- ") {
            c.sections.extend(section.take());
            section = Some((name.trim().to_string(), String::new()));
            continue;
        }
        match section.as_mut() {
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {
                if let Some((k, v)) = line.split_once(':')
                    && !line.starts_with('#')
                {
                    c.fields.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
    }
    if let Some(mut c) = current {
        c.sections.extend(section);
        cases.push(c);
    }
    cases
}

fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

fn scripts(c: &Case, kind: &str) -> HashMap<String, String> {
    c.sections
        .iter()
        .filter_map(|(n, t)| {
            n.strip_prefix(kind)
                .map(|name| (name.trim().to_string(), t.clone()))
        })
        .collect()
}

async fn run_case(c: &Case, dir: &Path) -> Result<(), String> {
    let script_text = c.section("script").ok_or("no script section")?;
    let compiled = sieve::compile(script_text);
    if let Some(want) = c.section("compile-error") {
        let want = want.trim();
        return match compiled {
            Err(e) if e.to_string().contains(want) => Ok(()),
            Err(e) => Err(format!(
                "compile error {:?}, wanted {want:?}",
                e.to_string()
            )),
            Ok(_) => Err(format!("compiled, wanted the error {want:?}")),
        };
    }
    let script = compiled.map_err(|e| format!("does not compile: {e}"))?;
    let raw = match (c.fields.get("message"), c.section("message")) {
        (_, Some(inline)) => crlf(inline),
        (Some(name), None) => {
            let text = std::fs::read_to_string(dir.join("messages").join(format!("{name}.eml")))
                .map_err(|e| format!("message {name}: {e}"))?;
            crlf(&text)
        }
        (None, None) => crlf("From: bob@b.test\nTo: alice@a.test\nSubject: test\n\nbody\n"),
    };
    let field = |k: &str, d: &str| c.fields.get(k).cloned().unwrap_or_else(|| d.to_string());
    let from = field("from", "bob@b.test");
    let from = if from == "<>" { String::new() } else { from };
    let to = field("to", "alice@a.test");
    let user = field("user", &to);
    let now: i64 = field("now", "1796205600").parse().map_err(|_| "bad now")?;
    let mut ctx = Context::new(&user, &from, &to, now);
    ctx.auth = c.fields.get("auth").cloned();
    if let Some(spam) = c.fields.get("spam") {
        let mut p = spam
            .split_whitespace()
            .map(|x| x.parse::<u8>().unwrap_or(0));
        ctx.spam = Some(SpamLevel {
            level: p.next().unwrap_or(0),
            percent: p.next().unwrap_or(0),
        });
    }
    if let Some(env) = c.fields.get("env") {
        for item in env.split(',') {
            if let Some((k, v)) = item.split_once('=') {
                ctx.environment
                    .push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    let host = TestHost {
        mailboxes: field("mailboxes", "")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        seen: field("seen", "no") == "yes",
        personal: scripts(c, "personal "),
        global: scripts(c, "global "),
    };
    let mut list = Vec::new();
    for (name, text) in scripts(c, "before ") {
        let s = sieve::compile(&text).map_err(|e| format!("before {name}: {e}"))?;
        list.push(Arc::new(s));
    }
    list.push(Arc::new(script));
    let outcome = sieve::run(&list, raw.clone(), &ctx, &host).await;
    let got: Vec<String> = outcome.actions.iter().map(|a| a.describe()).collect();
    let mut problems = Vec::new();
    // The same message left in its spool, as a large one is (C-FT9): the
    // same actions, the same edited message.
    let data = message::spool::Spooled::from_vec(raw.clone());
    let streamed = sieve::run(&list, Mail::streamed(Vec::new(), data), &ctx, &host).await;
    let edited = |o: &sieve::Outcome| -> Vec<Option<Vec<u8>>> {
        o.actions
            .iter()
            .map(|a| match a {
                sieve::Action::Keep { content, .. }
                | sieve::Action::FileInto { content, .. }
                | sieve::Action::Redirect { content, .. } => {
                    content.as_ref().map(|c| c.bytes(&raw))
                }
                _ => None,
            })
            .collect()
    };
    let streamed_got: Vec<String> = streamed.actions.iter().map(|a| a.describe()).collect();
    if streamed_got != got
        || edited(&streamed) != edited(&outcome)
        || streamed.error != outcome.error
    {
        problems.push(format!(
            "the message left in its spool gives other actions\n  whole:    {got:?}\n  streamed: {streamed_got:?}"
        ));
    }
    if let Some(want) = c.section("expect") {
        let want: Vec<String> = want
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if got != want {
            problems.push(format!("actions\n  got:  {got:?}\n  want: {want:?}"));
        }
    }
    match (c.section("error"), &outcome.error) {
        (Some(want), Some(e)) if e.contains(want.trim()) => {}
        (Some(want), e) => problems.push(format!("error {e:?}, wanted {:?}", want.trim())),
        (None, Some(e)) => problems.push(format!("unexpected runtime error {e:?}")),
        (None, None) => {}
    }
    if let Some(want) = c.section("header") {
        let edited = outcome
            .actions
            .iter()
            .find_map(|a| match a {
                sieve::Action::Keep { content, .. }
                | sieve::Action::FileInto { content, .. }
                | sieve::Action::Redirect { content, .. } => Some(content.clone()),
                _ => None,
            })
            .flatten()
            .map(|c| c.bytes(&raw))
            .unwrap_or(raw);
        let end = message::header::header_end(&edited);
        let head = String::from_utf8_lossy(&edited[..end]).replace("\r\n", "\n");
        if head.trim_end() != want.trim_end() {
            problems.push(format!("header\n--- got\n{head}--- want\n{want}"));
        }
    }
    if let Some(want) = c.section("tracked") {
        let n: usize = want.trim().parse().map_err(|_| "bad tracked")?;
        if outcome.track.len() != n {
            problems.push(format!("tracked {} ids, wanted {n}", outcome.track.len()));
        }
    }
    if c.section("expect").is_none()
        && c.section("error").is_none()
        && c.section("header").is_none()
    {
        problems.push("the case checks nothing".into());
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("\n")),
    }
}

#[tokio::test]
async fn every_case() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files: Vec<_> = std::fs::read_dir(dir.join("cases"))
        .expect("tests/cases")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    let mut total = 0;
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read a case file");
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for c in parse_cases(&name, &text) {
            total += 1;
            if let Err(e) = run_case(&c, &dir).await {
                failures.push(format!("{} / {}:\n{e}", c.file, c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(total >= 300, "only {total} cases");
    println!("{total} cases passed");
}

/// The bounds of one run: steps, then actions. Past one, the run is a
/// runtime error: the implicit keep, nothing else.
#[tokio::test]
async fn runs_are_bounded() {
    let host = TestHost {
        mailboxes: vec![],
        seen: false,
        personal: HashMap::new(),
        global: HashMap::new(),
    };
    let many = "if true { }\n".repeat(40);
    let script =
        Arc::new(sieve::compile(&format!("require \"fileinto\";\n{many}fileinto \"A\";")).unwrap());
    let mut ctx = Context::new("alice@a.test", "bob@b.test", "alice@a.test", 0);
    ctx.limits.max_steps = 50;
    let msg = b"From: bob@b.test\r\n\r\nx\r\n".to_vec();
    let out = sieve::run(std::slice::from_ref(&script), msg.clone(), &ctx, &host).await;
    assert!(
        out.error
            .as_deref()
            .unwrap_or("")
            .contains("more than 50 steps"),
        "{out:?}"
    );
    assert_eq!(out.actions.len(), 1);
    ctx.limits.max_steps = 1000;
    let out = sieve::run(&[script], msg.clone(), &ctx, &host).await;
    assert_eq!(out.error, None);

    let folders: String = (0..40).map(|i| format!("fileinto \"F{i}\";\n")).collect();
    let script = Arc::new(sieve::compile(&format!("require \"fileinto\";\n{folders}")).unwrap());
    let out = sieve::run(&[script], msg, &ctx, &host).await;
    assert!(
        out.error
            .as_deref()
            .unwrap_or("")
            .contains("more than 32 actions"),
        "{out:?}"
    );
}
