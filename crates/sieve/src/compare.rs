//! Comparators and match types: RFC 5228 §2.7 (`:is :contains :matches`,
//! `i;octet`, `i;ascii-casemap`), RFC 5231 (`:value`, `:count`,
//! `i;ascii-numeric` as RFC 4790 §9.1 defines it), the regex draft, and the
//! match variables of RFC 5229 §3.2.
//!
//! Every pattern runs on the `regex` crate: matching takes time linear in
//! the value whatever the pattern (no backtracking blow-up), and compiled
//! patterns are bounded in size ([`REGEX_SIZE_LIMIT`]).

use std::cmp::Ordering;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

use crate::ir::{Comparator, MatchType, Matcher, Relation};

/// Compiled size of one pattern.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Patterns compiled in one run (each is kept for reuse).
pub const MAX_PATTERNS: usize = 256;
/// Match variables `${0}`..`${N}` kept (RFC 5229 §3.2 asks for 0 to 9).
pub const MAX_MATCH_VARIABLES: usize = 32;

type PatternKey = (String, bool, bool);

/// Patterns compiled in one run, by (pattern, case-folded, regex); those
/// written in scripts come from a cache the whole process shares (the same
/// script runs on every message).
#[derive(Default)]
pub struct Patterns {
    cache: HashMap<PatternKey, Regex>,
}

fn shared() -> &'static std::sync::Mutex<HashMap<PatternKey, Regex>> {
    static SHARED: std::sync::OnceLock<std::sync::Mutex<HashMap<PatternKey, Regex>>> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(Default::default)
}

impl Patterns {
    fn get(&mut self, pattern: &str, fold: bool, is_regex: bool) -> Result<&Regex, String> {
        let key = (pattern.to_string(), fold, is_regex);
        if !self.cache.contains_key(&key) {
            if self.cache.len() >= MAX_PATTERNS {
                self.cache.clear();
            }
            let known = shared().lock().ok().and_then(|m| m.get(&key).cloned());
            let re = match known {
                Some(re) => re,
                None => {
                    let re = build(pattern, fold, is_regex)?;
                    if let Ok(mut m) = shared().lock() {
                        if m.len() >= SHARED_PATTERNS {
                            m.clear();
                        }
                        m.insert(key.clone(), re.clone());
                    }
                    re
                }
            };
            self.cache.insert(key.clone(), re);
        }
        Ok(&self.cache[&key])
    }
}

/// Compiled patterns kept for the whole process.
const SHARED_PATTERNS: usize = 4096;

fn build(pattern: &str, fold: bool, is_regex: bool) -> Result<Regex, String> {
    let source = if is_regex {
        pattern.to_string()
    } else {
        glob_to_regex(pattern)
    };
    RegexBuilder::new(&source)
        .case_insensitive(fold && is_regex)
        .dot_matches_new_line(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(64)
        .build()
        .map_err(|e| format!("bad pattern {pattern:?}: {}", first_line(&e.to_string())))
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

/// Whether a regex compiles (a script's literal keys are checked on upload).
pub fn check_regex(pattern: &str) -> Result<(), String> {
    build(pattern, false, true).map(|_| ())
}

/// What a test found: whether it matched, and the match variables when a
/// `:matches` or `:regex` key matched.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    pub matched: bool,
    pub captures: Option<Vec<String>>,
}

/// RFC 5228 §2.7.1: true when any value matches any key; `:count` compares
/// how many values there are (RFC 5231 §4.2).
pub fn test(
    m: &Matcher,
    values: &[String],
    keys: &[String],
    patterns: &mut Patterns,
) -> Result<Found, String> {
    if let MatchType::Count(rel) = &m.kind {
        let count = values.len().to_string();
        let matched = keys
            .iter()
            .any(|k| relation_holds(*rel, order(m.comparator, &count, k)));
        return Ok(Found {
            matched,
            captures: None,
        });
    }
    for v in values {
        for k in keys {
            let found = one(m, v, k, patterns)?;
            if found.matched {
                return Ok(found);
            }
        }
    }
    Ok(Found::default())
}

/// One value against one key.
pub fn one(m: &Matcher, value: &str, key: &str, patterns: &mut Patterns) -> Result<Found, String> {
    let plain = |matched| {
        Ok(Found {
            matched,
            captures: None,
        })
    };
    match &m.kind {
        MatchType::Is => plain(equal(m.comparator, value, key)),
        MatchType::Contains => plain(match m.comparator {
            Comparator::Octet => value.contains(key),
            _ => value
                .to_ascii_lowercase()
                .contains(&key.to_ascii_lowercase()),
        }),
        MatchType::Value(rel) => plain(relation_holds(*rel, order(m.comparator, value, key))),
        MatchType::Count(_) => plain(false),
        MatchType::Matches => {
            let fold = m.comparator != Comparator::Octet;
            let (v, k) = match fold {
                true => (value.to_ascii_lowercase(), key.to_ascii_lowercase()),
                false => (value.to_string(), key.to_string()),
            };
            let re = patterns.get(&k, fold, false)?;
            Ok(match re.captures(&v) {
                // Lowercasing ASCII keeps every offset: capture from the value as written.
                Some(c) => Found {
                    matched: true,
                    captures: Some(captured(&c, value)),
                },
                None => Found::default(),
            })
        }
        MatchType::Regex => {
            let fold = m.comparator != Comparator::Octet;
            let re = patterns.get(key, fold, true)?;
            Ok(match re.captures(value) {
                Some(c) => Found {
                    matched: true,
                    captures: Some(captured(&c, value)),
                },
                None => Found::default(),
            })
        }
    }
}

fn captured(c: &regex::Captures<'_>, original: &str) -> Vec<String> {
    c.iter()
        .take(MAX_MATCH_VARIABLES)
        .map(|g| {
            g.map(|g| original[g.range()].to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// RFC 5228 §2.7.1 wildcards: `*` any run, `?` one character, `\` quotes
/// the next; each wildcard captures (RFC 5229 §3.2), matching as little as
/// it can from the left ("[*] *" on "[a] [b] c" gives "a" and "[b] c").
fn glob_to_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() * 2 + 8);
    out.push_str("^(?:");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str("(.*?)"),
            '?' => out.push_str("(.)"),
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push_str(&regex::escape(&n.to_string()));
                }
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out.push_str(")$");
    out
}

pub fn equal(c: Comparator, a: &str, b: &str) -> bool {
    match c {
        Comparator::Octet => a == b,
        Comparator::AsciiCasemap => a.eq_ignore_ascii_case(b),
        Comparator::AsciiNumeric => numeric_order(a, b) == Ordering::Equal,
    }
}

pub fn order(c: Comparator, a: &str, b: &str) -> Ordering {
    match c {
        Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
        Comparator::AsciiCasemap => a
            .to_ascii_lowercase()
            .as_bytes()
            .cmp(b.to_ascii_lowercase().as_bytes()),
        Comparator::AsciiNumeric => numeric_order(a, b),
    }
}

/// RFC 4790 §9.1.1: the number the leading digits make; a string that
/// does not start with a digit is positive infinity. Compared as digit
/// strings, so any length works.
fn numeric_order(a: &str, b: &str) -> Ordering {
    fn digits(s: &str) -> Option<&str> {
        let end = s
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        let d = s[..end].trim_start_matches('0');
        Some(d)
    }
    match (digits(a), digits(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
    }
}

fn relation_holds(r: Relation, o: Ordering) -> bool {
    match r {
        Relation::Gt => o == Ordering::Greater,
        Relation::Ge => o != Ordering::Less,
        Relation::Lt => o == Ordering::Less,
        Relation::Le => o != Ordering::Greater,
        Relation::Eq => o == Ordering::Equal,
        Relation::Ne => o != Ordering::Equal,
    }
}

/// RFC 5229 §4.1 `:quotewildcard`.
pub fn quote_wildcards(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchType, comparator: Comparator) -> Matcher {
        Matcher { comparator, kind }
    }

    fn check(kind: MatchType, c: Comparator, v: &str, k: &str) -> Found {
        one(&m(kind, c), v, k, &mut Patterns::default()).unwrap()
    }

    #[test]
    fn wildcards_capture_leftmost_shortest() {
        let f = check(
            MatchType::Matches,
            Comparator::AsciiCasemap,
            "[acme-users] [fwd] version 1.0 is out",
            "[*] *",
        );
        assert_eq!(
            f.captures.unwrap(),
            [
                "[acme-users] [fwd] version 1.0 is out",
                "acme-users",
                "[fwd] version 1.0 is out"
            ]
        );
        let f = check(
            MatchType::Matches,
            Comparator::AsciiCasemap,
            "Frodo@Example.COM",
            "*@*.com",
        );
        assert_eq!(
            f.captures.unwrap(),
            ["Frodo@Example.COM", "Frodo", "Example"]
        );
        assert!(check(MatchType::Matches, Comparator::AsciiCasemap, "a*b", "a\\*b").matched);
        assert!(!check(MatchType::Matches, Comparator::AsciiCasemap, "axb", "a\\*b").matched);
        assert!(check(MatchType::Matches, Comparator::Octet, "abc", "a?c").matched);
        assert!(!check(MatchType::Matches, Comparator::Octet, "ABC", "a?c").matched);
        // A pathological pattern stays linear.
        let long = "a".repeat(20_000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!check(MatchType::Matches, Comparator::Octet, &long, &pattern).matched);
    }

    #[test]
    fn numeric_and_relational() {
        assert!(equal(Comparator::AsciiNumeric, "007", "7"));
        assert!(equal(Comparator::AsciiNumeric, "abc", "xyz"));
        assert_eq!(numeric_order("5", "x"), Ordering::Less);
        assert_eq!(
            numeric_order("123456789012345678901234567890", "99"),
            Ordering::Greater
        );
        let mut p = Patterns::default();
        let ge = m(MatchType::Value(Relation::Ge), Comparator::AsciiNumeric);
        assert!(one(&ge, "10", "9", &mut p).unwrap().matched);
        let count = m(MatchType::Count(Relation::Eq), Comparator::AsciiNumeric);
        assert!(
            test(&count, &["a".into(), "b".into()], &["2".into()], &mut p)
                .unwrap()
                .matched
        );
        let lt = m(MatchType::Value(Relation::Lt), Comparator::AsciiCasemap);
        assert!(one(&lt, "Apple", "banana", &mut p).unwrap().matched);
    }

    #[test]
    fn regex_captures_and_limits() {
        let f = check(
            MatchType::Regex,
            Comparator::AsciiCasemap,
            "Invoice 2024-11",
            "invoice ([0-9]+)-([0-9]+)",
        );
        assert_eq!(f.captures.unwrap(), ["Invoice 2024-11", "2024", "11"]);
        assert!(
            one(
                &m(MatchType::Regex, Comparator::Octet),
                "x",
                "(",
                &mut Patterns::default()
            )
            .is_err()
        );
        assert!(check_regex("a{1000}{1000}").is_err());
        assert_eq!(quote_wildcards("a*b?\\"), "a\\*b\\?\\\\");
    }
}
