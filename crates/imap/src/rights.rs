//! ACL rights (RFC 4314 §2.1): a set of letters, written in the RFC's
//! order. `c` and `d`, the obsolete RFC 2086 rights, stand for `kx` and
//! `te` (§2.1.1).

/// Every right, in order: the owner's.
pub const ALL: &str = "lrswipkxtea";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rights(String);

impl Rights {
    pub fn all() -> Rights {
        Rights(ALL.into())
    }

    /// Letters as a client or the store wrote them; None for an unknown one.
    pub fn parse(text: &str) -> Option<Rights> {
        let mut set = String::new();
        for c in text.chars() {
            let expanded = match c {
                'c' => "kx",
                'd' => "te",
                c if ALL.contains(c) => &ALL[ALL.find(c)?..ALL.find(c)? + 1],
                _ => return None,
            };
            set.push_str(expanded);
        }
        Some(Rights(ALL.chars().filter(|c| set.contains(*c)).collect()))
    }

    pub fn has(&self, right: char) -> bool {
        self.0.contains(right)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// SETACL's rights (§3.1): `+xyz` adds, `-xyz` takes away, `xyz` replaces.
    pub fn modified(&self, change: &str) -> Option<Rights> {
        if let Some(add) = change.strip_prefix('+') {
            let add = Rights::parse(add)?;
            return Rights::parse(&format!("{}{}", self.0, add.0));
        }
        if let Some(remove) = change.strip_prefix('-') {
            let remove = Rights::parse(remove)?;
            return Some(Rights(self.0.chars().filter(|c| !remove.has(*c)).collect()));
        }
        Rights::parse(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_orders_and_expands() {
        assert_eq!(Rights::parse("rl").unwrap().as_str(), "lr");
        assert_eq!(Rights::parse("cd").unwrap().as_str(), "kxte");
        assert_eq!(Rights::parse("lrlr").unwrap().as_str(), "lr");
        assert!(Rights::parse("lz").is_none());
    }

    #[test]
    fn modify() {
        let r = Rights::parse("lr").unwrap();
        assert_eq!(r.modified("+wi").unwrap().as_str(), "lrwi");
        assert_eq!(r.modified("-r").unwrap().as_str(), "l");
        assert_eq!(r.modified("a").unwrap().as_str(), "a");
        assert!(r.modified("+q").is_none());
    }
}
