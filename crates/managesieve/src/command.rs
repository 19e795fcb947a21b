//! The ManageSieve grammar (RFC 5804 §4): a command is an atom followed by
//! quoted strings, literals (`{n+}` CRLF n octets; `{n}` is read the same
//! way, there being no continuation in this protocol) and numbers, ended
//! by CRLF. Input arrives in pieces: [`next`] says whether a whole command
//! is there yet.
//!
//! Bounds (docs/hardening.md C-IM1, C-IM2): a line outside literals is at
//! most [`MAX_LINE`] octets; a literal larger than the caller's limit is
//! never buffered: the caller is told its size and skips it.

/// Octets of one command outside its literals.
pub const MAX_LINE: usize = 8192;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    Number(u64),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// More bytes are needed.
    Incomplete,
    /// A whole command of `consumed` octets.
    Command { consumed: usize, words: Vec<Word> },
    /// The line does not parse: consume `consumed` octets and say why;
    /// `rest_to_come`: the line is too long and its end has not arrived,
    /// so the rest of it is to be skipped when it does, not read as commands.
    Bad {
        consumed: usize,
        why: &'static str,
        rest_to_come: bool,
    },
    /// A literal larger than allowed starts after `consumed` octets: skip
    /// `size` octets, then the rest of the line.
    TooBig { consumed: usize, size: u64 },
}

/// The next command in `input`, literals up to `max_literal` octets.
pub fn next(input: &[u8], max_literal: u64) -> Next {
    let mut words = Vec::new();
    let mut i = 0;
    let mut line_octets = 0;
    loop {
        if line_octets > MAX_LINE {
            return match find_crlf(input, i) {
                Some(end) => Next::Bad {
                    consumed: end + 2,
                    why: "line too long",
                    rest_to_come: false,
                },
                None if input.len() - i > MAX_LINE * 4 => Next::Bad {
                    consumed: input.len(),
                    why: "line too long",
                    rest_to_come: true,
                },
                None => Next::Incomplete,
            };
        }
        let Some(&c) = input.get(i) else {
            return Next::Incomplete;
        };
        match c {
            b' ' => {
                i += 1;
                line_octets += 1;
            }
            b'\r' => {
                return match input.get(i + 1) {
                    None => Next::Incomplete,
                    Some(b'\n') => Next::Command {
                        consumed: i + 2,
                        words,
                    },
                    Some(_) => bad_line(input, i, "bare CR"),
                };
            }
            b'\n' => {
                return Next::Command {
                    consumed: i + 1,
                    words,
                };
            }
            b'"' => {
                let start = i;
                let mut s = Vec::new();
                i += 1;
                loop {
                    match input.get(i) {
                        None => return Next::Incomplete,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => match input.get(i + 1) {
                            None => return Next::Incomplete,
                            Some(&e @ (b'"' | b'\\')) => {
                                s.push(e);
                                i += 2;
                            }
                            Some(_) => return bad_line(input, i, "bad escape in a quoted string"),
                        },
                        Some(b'\r' | b'\n') => {
                            return bad_line(input, i, "line break in a quoted string");
                        }
                        Some(&b) => {
                            s.push(b);
                            i += 1;
                        }
                    }
                    if i - start > MAX_LINE {
                        return bad_line(input, i, "string too long");
                    }
                }
                line_octets += i - start;
                words.push(Word::Str(s));
            }
            b'{' => {
                let Some(close) = input[i..].iter().take(24).position(|&b| b == b'}') else {
                    return match input.len() - i > 24 {
                        true => bad_line(input, i, "bad literal"),
                        false => Next::Incomplete,
                    };
                };
                let inner = &input[i + 1..i + close];
                let digits = inner.strip_suffix(b"+").unwrap_or(inner);
                let Some(size) = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<u64>().ok())
                else {
                    return bad_line(input, i, "bad literal");
                };
                let after = i + close + 1;
                let start = match (input.get(after), input.get(after + 1)) {
                    (Some(b'\r'), Some(b'\n')) => after + 2,
                    (Some(b'\n'), _) => after + 1,
                    (None, _) | (Some(b'\r'), None) => return Next::Incomplete,
                    _ => return bad_line(input, i, "a literal ends its line"),
                };
                if size > max_literal {
                    return Next::TooBig {
                        consumed: start,
                        size,
                    };
                }
                let end = start + size as usize;
                if input.len() < end {
                    return Next::Incomplete;
                }
                words.push(Word::Str(input[start..end].to_vec()));
                line_octets += after - i;
                i = end;
            }
            _ => {
                let start = i;
                while let Some(&b) = input.get(i) {
                    if matches!(b, b' ' | b'\r' | b'\n' | b'"' | b'{') {
                        break;
                    }
                    if !(0x21..=0x7e).contains(&b) {
                        return bad_line(input, i, "bad character");
                    }
                    i += 1;
                }
                if i == input.len() {
                    return match i - start > MAX_LINE {
                        true => bad_line(input, i, "line too long"),
                        false => Next::Incomplete,
                    };
                }
                let text = String::from_utf8_lossy(&input[start..i]).into_owned();
                line_octets += i - start;
                words.push(match text.parse::<u64>() {
                    Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => Word::Number(n),
                    _ => Word::Atom(text),
                });
            }
        }
    }
}

fn find_crlf(input: &[u8], from: usize) -> Option<usize> {
    input[from.min(input.len())..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// A bad line is consumed through its end (or all there is, if no end yet
/// and the rest is long).
fn bad_line(input: &[u8], at: usize, why: &'static str) -> Next {
    match find_crlf(input, at) {
        Some(end) => Next::Bad {
            consumed: end + 2,
            why,
            rest_to_come: false,
        },
        None if input.len() > MAX_LINE => Next::Bad {
            consumed: input.len(),
            why,
            rest_to_come: true,
        },
        None => Next::Incomplete,
    }
}

/// A string as the server writes it: quoted when it can be, else a literal
/// (RFC 5804 §4).
pub fn string(s: &str) -> String {
    if s.len() <= 1024 && !s.contains(['\r', '\n', '\0']) {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("{{{}}}\r\n{s}", s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Word> {
        match next(s.as_bytes(), 1000) {
            Next::Command { consumed, words } => {
                assert_eq!(consumed, s.len());
                words
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forms() {
        assert_eq!(
            words("PUTSCRIPT \"a \\\"b\\\"\" {5+}\r\nkeep;\r\n"),
            [
                Word::Atom("PUTSCRIPT".into()),
                Word::Str(b"a \"b\"".to_vec()),
                Word::Str(b"keep;".to_vec())
            ]
        );
        assert_eq!(words("HAVESPACE \"x\" 1000\r\n")[2], Word::Number(1000));
        assert_eq!(words("noop\r\n"), [Word::Atom("noop".into())]);
        assert_eq!(
            words("GETSCRIPT {3}\r\nabc\r\n")[1],
            Word::Str(b"abc".to_vec())
        );
        assert_eq!(next(b"PUTSCRIPT \"a\" {5+}\r\nke", 1000), Next::Incomplete);
        assert_eq!(next(b"NOOP", 1000), Next::Incomplete);
        assert_eq!(
            next(b"PUTSCRIPT \"a\" {50000+}\r\n", 1000),
            Next::TooBig {
                consumed: 24,
                size: 50000
            }
        );
        assert!(matches!(
            next(b"X \"a\r\nb\"\r\n", 1000),
            Next::Bad { consumed: 6, .. }
        ));
        assert!(matches!(next(b"X {abc}\r\n", 1000), Next::Bad { .. }));
        let long = format!("X {}\r\n", "a".repeat(MAX_LINE + 10));
        assert!(matches!(next(long.as_bytes(), 1000), Next::Bad { .. }));
        assert_eq!(string("a\"b"), "\"a\\\"b\"");
        assert_eq!(string("a\r\nb"), "{4}\r\na\r\nb");
    }
}
