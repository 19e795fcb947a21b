//! The webmail's filter editor: rules a user types become a Sieve script
//! (`web::filters::script`). Any rules: either refused, or a script that
//! compiles to exactly one `if` per rule under the editor's one `require`
//! (no value or folder can add a command of its own), that forwards only
//! when a rule says so, and whose rules read back the same.
#![no_main]
use web::filters::{self, Field, Rule, Test, Then};

/// Rules from octets: each rule is a byte of choices, then its value and
/// its target as text, separated by NUL.
fn rules(data: &[u8]) -> Vec<Rule> {
    let mut parts = data.split(|&b| b == 0);
    let mut rules = Vec::new();
    while let (Some(choice), Some(value), Some(target)) = (parts.next(), parts.next(), parts.next())
    {
        let c = choice.first().copied().unwrap_or(0);
        rules.push(Rule {
            field: [Field::From, Field::To, Field::Subject][usize::from(c % 3)],
            test: [Test::Contains, Test::NotContains, Test::Is][usize::from(c / 3 % 3)],
            then: [
                Then::Move,
                Then::MarkRead,
                Then::Flag,
                Then::Delete,
                Then::Forward,
            ][usize::from(c / 9 % 5)],
            stop: c & 0x80 != 0,
            value: String::from_utf8_lossy(value).into_owned(),
            target: String::from_utf8_lossy(target).into_owned(),
        });
    }
    rules
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let rules = rules(data);
    let Ok(script) = filters::script(&rules) else {
        return;
    };
    let compiled = sieve::compile(&script).expect("a script the editor keeps compiles");
    assert_eq!(
        compiled.requires,
        ["fileinto", "imap4flags", "mailbox"],
        "{script}"
    );
    assert_eq!(compiled.commands.len(), rules.len(), "{script}");
    let forwards = rules.iter().any(|r| r.then == Then::Forward);
    assert_eq!(compiled.may_redirect(), forwards, "{script}");
    assert_eq!(filters::rules(&script), Some(rules), "{script}");
});
