//! Message flags (RFC 9051 §2.3.2): the system flags in their canonical spelling,
//! keywords as given, compared case-insensitively, without duplicates.

/// The system flags a client may set (\Recent is session state, never stored).
pub const SYSTEM_FLAGS: [&str; 5] = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"];

/// Canonical spelling of one flag: `\seen` becomes `\Seen`; keywords stay as given.
pub fn canonical(flag: &str) -> String {
    SYSTEM_FLAGS
        .iter()
        .find(|s| s.eq_ignore_ascii_case(flag))
        .map(|s| s.to_string())
        .unwrap_or_else(|| flag.to_string())
}

/// A flag list without duplicates (case-insensitive), in canonical spelling, sorted.
pub fn normalize<I: IntoIterator<Item = S>, S: AsRef<str>>(flags: I) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in flags {
        let f = canonical(f.as_ref());
        if !f.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(&f)) {
            out.push(f);
        }
    }
    out.sort_by_key(|a| a.to_ascii_lowercase());
    out
}

/// Apply a STORE operation to a flag list.
pub fn apply(current: &[String], op: crate::FlagOp, flags: &[String]) -> Vec<String> {
    let has = |list: &[String], f: &str| list.iter().any(|x| x.eq_ignore_ascii_case(f));
    match op {
        crate::FlagOp::Replace => normalize(flags),
        crate::FlagOp::Add => normalize(current.iter().chain(flags.iter())),
        crate::FlagOp::Remove => normalize(current.iter().filter(|f| !has(flags, f))),
    }
}

pub fn contains(flags: &[String], flag: &str) -> bool {
    flags.iter().any(|f| f.eq_ignore_ascii_case(flag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlagOp;

    #[test]
    fn normalizing_and_applying() {
        assert_eq!(
            normalize(["\\seen", "Work", "\\SEEN", "work", "\\Flagged"]),
            ["\\Flagged", "\\Seen", "Work"]
        );
        let cur = normalize(["\\Seen", "a"]);
        assert_eq!(
            apply(&cur, FlagOp::Add, &["\\deleted".into()]),
            ["\\Deleted", "\\Seen", "a"]
        );
        assert_eq!(apply(&cur, FlagOp::Remove, &["\\SEEN".into()]), ["a"]);
        assert_eq!(apply(&cur, FlagOp::Replace, &[]), Vec::<String>::new());
        assert!(contains(&cur, "\\seen"));
    }
}
