//! The Public Suffix List (publicsuffix.org) and the Organizational Domain of
//! RFC 7489 §3.2. Tern ships a copy of the list (`data/`); the operator can
//! point `[policy] public_suffix_list` at a newer file.

use std::collections::HashSet;

/// The copy shipped with Tern.
const SHIPPED: &str = include_str!("../data/public_suffix_list.dat");

#[derive(Debug, Default)]
pub struct PublicSuffixList {
    rules: HashSet<String>,
    /// `*.ck` is kept as `ck`.
    wildcards: HashSet<String>,
    /// `!www.ck` is kept as `www.ck`.
    exceptions: HashSet<String>,
}

impl PublicSuffixList {
    pub fn shipped() -> PublicSuffixList {
        PublicSuffixList::parse(SHIPPED)
    }

    /// The list's text: one rule per line, `//` comments; rules in Unicode are
    /// kept in their A-label (punycode) form, as DNS names arrive.
    pub fn parse(text: &str) -> PublicSuffixList {
        let mut list = PublicSuffixList::default();
        for line in text.lines() {
            let Some(rule) = line.split_whitespace().next() else {
                continue;
            };
            if rule.starts_with("//") {
                continue;
            }
            let (set, name) = if let Some(r) = rule.strip_prefix('!') {
                (&mut list.exceptions, r)
            } else if let Some(r) = rule.strip_prefix("*.") {
                (&mut list.wildcards, r)
            } else {
                (&mut list.rules, rule)
            };
            if let Ok(ascii) = idna::domain_to_ascii(name) {
                set.insert(ascii);
            }
        }
        list
    }

    pub fn len(&self) -> usize {
        self.rules.len() + self.wildcards.len() + self.exceptions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many labels at the end of `domain` are its public suffix (the
    /// publicsuffix.org algorithm: exception rules win, then the longest match,
    /// and an unlisted TLD is a public suffix by the implicit `*` rule).
    fn suffix_labels(&self, labels: &[&str]) -> usize {
        let n = labels.len();
        let mut longest = 1;
        for len in 1..=n {
            let suffix = labels[n - len..].join(".");
            if self.exceptions.contains(&suffix) {
                return len - 1;
            }
            if self.rules.contains(&suffix) {
                longest = longest.max(len);
            }
            if len >= 2 && self.wildcards.contains(&labels[n - len + 1..].join(".")) {
                longest = longest.max(len);
            }
        }
        longest
    }

    /// RFC 7489 §3.2: the public suffix and one more label; a name that is
    /// itself a public suffix is its own Organizational Domain.
    pub fn organizational_domain(&self, domain: &str) -> String {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let keep = self.suffix_labels(&labels) + 1;
        if keep >= labels.len() {
            return domain;
        }
        labels[labels.len() - keep..].join(".")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of publicsuffix.org's test file that matter for DMARC.
    #[test]
    fn organizational_domains() {
        let psl = PublicSuffixList::shipped();
        assert!(psl.len() > 8000, "the shipped list is loaded");
        for (domain, org) in [
            ("example.com", "example.com"),
            ("a.b.example.com", "example.com"),
            ("mail.example.co.uk", "example.co.uk"),
            ("co.uk", "co.uk"),
            ("com", "com"),
            ("a.b.example.test", "example.test"), // unlisted TLD: implicit "*"
            ("www.ck", "www.ck"),                 // !www.ck
            ("a.b.ck", "a.b.ck"),                 // *.ck: b.ck is a suffix
            ("x.a.b.ck", "a.b.ck"),
            ("Mail.Example.COM.", "example.com"),
            ("foo.github.io", "foo.github.io"), // private section
            ("xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"), // 食狮.公司.cn
            ("www.xn--85x722f.xn--55qx5d.cn", "xn--85x722f.xn--55qx5d.cn"),
        ] {
            assert_eq!(psl.organizational_domain(domain), org, "{domain}");
        }
    }

    #[test]
    fn a_custom_list() {
        let psl = PublicSuffixList::parse("// comment\ntest\n*.wild.test\n!ok.wild.test\n");
        assert_eq!(psl.organizational_domain("a.b.test"), "b.test");
        assert_eq!(psl.organizational_domain("a.b.wild.test"), "a.b.wild.test");
        assert_eq!(psl.organizational_domain("x.ok.wild.test"), "ok.wild.test");
    }
}
