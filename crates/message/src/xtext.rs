//! xtext (RFC 3461 §4): the encoding of ESMTP parameter values such as ORCPT,
//! ENVID and AUTH=. Printable ASCII except "+" and "=" stands for itself;
//! anything else is "+" and two uppercase hex digits.

/// Whether `s` is valid xtext. UTF-8 is let through as RFC 6533 allows.
pub fn is_valid(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                match (b.get(i + 1), b.get(i + 2)) {
                    (Some(&x), Some(&y)) if hex(x) && hex(y) => i += 3,
                    _ => return false,
                }
            }
            b'=' => return false,
            c if (b'!'..=b'~').contains(&c) || c >= 0x80 => i += 1,
            _ => return false,
        }
    }
    true
}

/// Encode `s` as xtext: "+", "=", controls and space become `+XX`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() && (c == '+' || c == '=' || !c.is_ascii_graphic()) {
            out.push_str(&format!("+{:02X}", c as u8));
        } else {
            out.push(c);
        }
    }
    out
}

/// Decode xtext; a `+` not followed by two hex digits stays as it is.
pub fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        assert!(is_valid("abc+2Bdef"));
        assert!(!is_valid("abc+2b"));
        assert!(!is_valid("abc+2"));
        assert!(!is_valid("a=b"));
        assert!(!is_valid("a b"));
    }

    #[test]
    fn round_trip() {
        let srs = "SRS0=hngt=jm=a.test=alice+tag@b.test";
        let e = encode(srs);
        assert_eq!(e, "SRS0+3Dhngt+3Djm+3Da.test+3Dalice+2Btag@b.test");
        assert!(is_valid(&e));
        assert_eq!(decode(&e), srs);
        assert_eq!(encode("a b\u{e9}"), "a+20b\u{e9}");
        assert_eq!(decode("bad+zz"), "bad+zz");
    }
}
