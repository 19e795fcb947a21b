//! A user's Sieve script run on a message, as delivery runs it: the
//! message is the sender's to write (its fields, addresses, dates, MIME
//! parts, text), the script the user's. Besides "no panic" and a bounded
//! run: the actions stay within the limits (RFC 5228 §2.10.2's implicit
//! keep at most once more), a runtime error leaves the implicit keep
//! alone, and the message read whole or from its spool (as a large one
//! is, C-FT9) gives the same actions and the same edited message.
//!
//! Input: the script, a NUL, the message.
#![no_main]
use std::collections::HashMap;
use std::sync::Arc;

use sieve::mail::Mail;
use sieve::{Action, Context, Host, Outcome, Script};

struct FuzzHost {
    scripts: HashMap<String, Arc<Script>>,
}

#[async_trait::async_trait]
impl Host for FuzzHost {
    async fn mailbox_exists(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("INBOX") || name == "Work"
    }
    async fn seen(&self, id: &str) -> bool {
        id.len() % 2 == 0
    }
    async fn script(&self, name: &str, _global: bool) -> Result<Option<Arc<Script>>, String> {
        Ok(self.scripts.get(name).cloned())
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&data[..nul]) else {
        return;
    };
    let Ok(script) = sieve::compile(text) else {
        return;
    };
    let script = Arc::new(script);
    let raw = data[nul + 1..].to_vec();
    let host = FuzzHost {
        // `include "self"` finds the script itself: the depth limit ends it.
        scripts: HashMap::from([("self".to_string(), script.clone())]),
    };
    let mut ctx = Context::new(
        "alice@a.test",
        "bob@b.test",
        "alice+box@a.test",
        1_796_205_600,
    );
    ctx.environment
        .push(("remote-ip".into(), "192.0.2.7".into()));
    let limits = ctx.limits.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let scripts = [script];
    let whole = runtime.block_on(sieve::run(&scripts, raw.clone(), &ctx, &host));
    let spool = message::spool::Spooled::from_vec(raw.clone());
    let streamed = runtime.block_on(sieve::run(
        &scripts,
        Mail::streamed(Vec::new(), spool),
        &ctx,
        &host,
    ));

    assert!(
        whole.actions.len() <= limits.max_actions + 1,
        "{:?}",
        whole.actions
    );
    let redirects = whole
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Redirect { .. }))
        .count();
    assert!(redirects <= limits.max_redirects);
    if whole.error.is_some() {
        assert!(matches!(
            whole.actions.as_slice(),
            [Action::Keep { implicit: true, .. }]
        ));
    }
    assert_eq!(
        described(&whole),
        described(&streamed),
        "whole and streamed"
    );
    assert_eq!(whole.error, streamed.error);
    assert!(
        edited(&whole, &raw) == edited(&streamed, &raw),
        "edited differently"
    );
});

fn described(o: &Outcome) -> Vec<String> {
    o.actions.iter().map(Action::describe).collect()
}

/// The message each action delivers, where an edit made it another.
fn edited(o: &Outcome, raw: &[u8]) -> Vec<Option<Vec<u8>>> {
    o.actions
        .iter()
        .map(|a| match a {
            Action::Keep { content, .. }
            | Action::FileInto { content, .. }
            | Action::Redirect { content, .. } => content.as_ref().map(|c| c.bytes(raw)),
            _ => None,
        })
        .collect()
}
