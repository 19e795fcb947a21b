//! The webmail's filter editor: simple rules ("when the subject contains
//! X, move to folder Y") written as a Sieve script (RFC 5228) that runs at
//! delivery like any other, so ManageSieve clients see and may replace it.
//! The script carries its rules as one JSON comment line, which is how
//! the editor reads them back; a script written by anything else is
//! shown as such and only replaced when the user says so.
//!
//! Strings go into the script as Sieve quoted strings (RFC 5228 §2.4.2:
//! `"` and `\` escaped), and the script is compiled before it is kept, so
//! no rule can add a command of its own.

use serde::{Deserialize, Serialize};

/// The name the editor keeps its script under.
pub const SCRIPT: &str = "webmail-filters";
/// The comment line holding the rules.
const MARK: &str = "# tern-rules: ";
const MAX_RULES: usize = 100;
const MAX_VALUE: usize = 500;

/// Which header a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    From,
    /// To or Cc.
    To,
    Subject,
}

/// How it compares (RFC 5228 §2.7.1 match types, ASCII case-insensitive
/// by the default comparator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Test {
    Contains,
    NotContains,
    Is,
}

/// What happens to a matching message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Then {
    /// Into the folder `target` (created if missing, RFC 5490 §3.2).
    Move,
    MarkRead,
    Flag,
    /// Thrown away (RFC 5228 §4.4 `discard`).
    Delete,
    /// Sent on to the address `target` (RFC 5228 §4.2 `redirect`).
    Forward,
}

/// One rule of the editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub field: Field,
    pub test: Test,
    pub value: String,
    pub then: Then,
    /// The folder of Move, the address of Forward.
    #[serde(default)]
    pub target: String,
    /// No later rule looks at a message this one matched.
    #[serde(default)]
    pub stop: bool,
}

/// A Sieve quoted string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn check(rule: &Rule) -> Result<(), String> {
    let printable = |s: &str| !s.chars().any(char::is_control);
    if rule.value.trim().is_empty() || rule.value.len() > MAX_VALUE || !printable(&rule.value) {
        return Err(format!(
            "each rule needs a value to look for (1 to {MAX_VALUE} characters, one line)"
        ));
    }
    match rule.then {
        Then::Move if rule.target.trim().is_empty() || !printable(&rule.target) => {
            Err("a rule that moves mail needs a folder".into())
        }
        Then::Forward => match message::Mailbox::parse(rule.target.trim()) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("not an address to forward to: {:?}", rule.target)),
        },
        _ => Ok(()),
    }
}

/// The script for `rules`, or what is wrong with one of them.
pub fn script(rules: &[Rule]) -> Result<String, String> {
    if rules.len() > MAX_RULES {
        return Err(format!("at most {MAX_RULES} rules"));
    }
    rules.iter().try_for_each(check)?;
    let json = serde_json::to_string(rules).map_err(|e| e.to_string())?;
    let mut out = format!(
        "# Written by the filter editor of Tern's webmail; saving there again replaces it.\n{MARK}{json}\nrequire [\"fileinto\", \"imap4flags\", \"mailbox\"];\n"
    );
    for rule in rules {
        let headers = match rule.field {
            Field::From => "\"from\"",
            Field::To => "[\"to\", \"cc\"]",
            Field::Subject => "\"subject\"",
        };
        let value = quoted(rule.value.trim());
        let test = match rule.test {
            Test::Contains => format!("header :contains {headers} {value}"),
            Test::NotContains => format!("not header :contains {headers} {value}"),
            Test::Is => format!("header :is {headers} {value}"),
        };
        let action = match rule.then {
            Then::Move => format!("fileinto :create {};", quoted(rule.target.trim())),
            Then::MarkRead => "addflag \"\\\\Seen\";".into(),
            Then::Flag => "addflag \"\\\\Flagged\";".into(),
            Then::Delete => "discard;".into(),
            Then::Forward => format!("redirect {};", quoted(rule.target.trim())),
        };
        let stop = if rule.stop { "\n    stop;" } else { "" };
        out.push_str(&format!("if {test} {{\n    {action}{stop}\n}}\n"));
    }
    sieve::compile(&out).map_err(|e| format!("the rules do not make a valid script: {e}"))?;
    Ok(out)
}

/// The rules of a script the editor wrote; None for any other script.
pub fn rules(script: &str) -> Option<Vec<Rule>> {
    let line = script.lines().find_map(|l| l.strip_prefix(MARK))?;
    serde_json::from_str(line).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(field: Field, test: Test, value: &str, then: Then, target: &str) -> Rule {
        Rule {
            field,
            test,
            value: value.into(),
            then,
            target: target.into(),
            stop: true,
        }
    }

    #[test]
    fn rules_become_sieve_and_are_read_back() {
        let rules = vec![
            rule(
                Field::Subject,
                Test::Contains,
                "[list]",
                Then::Move,
                "Lists/Rust",
            ),
            rule(Field::From, Test::Is, "boss@a.test", Then::Flag, ""),
            rule(
                Field::To,
                Test::NotContains,
                "me@a.test",
                Then::MarkRead,
                "",
            ),
            rule(Field::From, Test::Contains, "spam", Then::Delete, ""),
            rule(
                Field::Subject,
                Test::Contains,
                "invoice",
                Then::Forward,
                "acc@b.test",
            ),
        ];
        let text = script(&rules).unwrap();
        assert!(text.contains("if header :contains \"subject\" \"[list]\" {\n    fileinto :create \"Lists/Rust\";\n    stop;\n}"), "{text}");
        assert!(text.contains("addflag \"\\\\Flagged\";"), "{text}");
        assert!(
            text.contains("not header :contains [\"to\", \"cc\"] \"me@a.test\""),
            "{text}"
        );
        assert!(text.contains("redirect \"acc@b.test\";"), "{text}");
        assert_eq!(super::rules(&text), Some(rules));
        assert_eq!(super::rules("require \"fileinto\";\nkeep;\n"), None);
    }

    /// A value cannot end its string and add commands of its own.
    #[test]
    fn values_stay_strings() {
        let evil = r#"x" { redirect "thief@evil.test"; } if true { discard; } if header :is "a" "#;
        let text = script(&[rule(Field::Subject, Test::Contains, evil, Then::Flag, "")]).unwrap();
        let compiled = sieve::compile(&text).unwrap();
        assert!(!format!("{compiled:?}").contains("Redirect"), "{text}");
        let back = super::rules(&text).unwrap();
        assert_eq!(back[0].value, evil);
        let slash = script(&[rule(Field::Subject, Test::Is, "a\\", Then::Move, "F\\\"")]).unwrap();
        assert!(sieve::compile(&slash).is_ok());
    }

    #[test]
    fn bad_rules_are_refused() {
        for (r, why) in [
            (
                rule(Field::Subject, Test::Contains, " ", Then::Flag, ""),
                "needs a value",
            ),
            (
                rule(Field::Subject, Test::Contains, "a\nb", Then::Flag, ""),
                "one line",
            ),
            (
                rule(Field::Subject, Test::Contains, "x", Then::Move, ""),
                "needs a folder",
            ),
            (
                rule(Field::Subject, Test::Contains, "x", Then::Forward, "nobody"),
                "not an address",
            ),
        ] {
            let e = script(&[r]).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let many = vec![rule(Field::From, Test::Is, "x", Then::Flag, ""); MAX_RULES + 1];
        assert!(script(&many).is_err());
    }
}
