//! The ManageSieve grammar (RFC 5804 §4): a command is an atom followed by
//! quoted strings, literals (`{n+}` CRLF n octets; `{n}` is read the same
//! way, there being no continuation in this protocol) and numbers, ended
//! by CRLF. Input arrives in pieces: [`next`] says whether a whole command
//! is there yet.
//!
//! Bounds (docs/hardening.md C-IM1, C-IM2): a line outside literals is at
//! most [`MAX_LINE`] octets; a literal larger than the caller's limit is
//! never buffered: the [`Reader`] tells its size and skips it.

use bytes::{Buf, BytesMut};

/// Octets of one command outside its literals.
pub const MAX_LINE: usize = 8192;

/// What a session takes from its input, one at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Command(Vec<Word>),
    /// A line that does not parse, consumed through its end.
    Bad(&'static str),
    /// A literal of this many octets, more than allowed: it and the rest of
    /// its line are skipped.
    TooBig(u64),
}

/// Takes commands from a session's input as it arrives, in any pieces, and
/// skips what is to be skipped (an oversized literal, the rest of a line
/// too long to hold) without buffering it.
#[derive(Debug)]
pub struct Reader {
    max_line: usize,
    /// Octets of a literal still to skip, then the rest of its line.
    skip: Option<u64>,
}

impl Default for Reader {
    fn default() -> Reader {
        Reader::new(MAX_LINE)
    }
}

impl Reader {
    /// A reader of lines of at most `max_line` octets outside literals.
    pub fn new(max_line: usize) -> Reader {
        Reader {
            max_line,
            skip: None,
        }
    }

    /// The next thing in `input` (consumed from it), literals up to
    /// `max_literal` octets; None: more input is needed.
    pub fn next(&mut self, input: &mut BytesMut, max_literal: u64) -> Option<Read> {
        if let Some(octets) = &mut self.skip {
            let n = usize::try_from(*octets)
                .unwrap_or(usize::MAX)
                .min(input.len());
            input.advance(n);
            *octets -= n as u64;
            if *octets > 0 {
                return None;
            }
            // The rest of the line the literal was in.
            let Some(end) = input.iter().position(|&b| b == b'\n') else {
                input.clear();
                return None;
            };
            input.advance(end + 1);
            self.skip = None;
        }
        match parse(input, self.max_line, max_literal) {
            Next::Incomplete => None,
            Next::Bad {
                consumed,
                why,
                rest_to_come,
            } => {
                input.advance(consumed);
                if rest_to_come {
                    self.skip = Some(0);
                }
                Some(Read::Bad(why))
            }
            Next::TooBig { consumed, size } => {
                input.advance(consumed);
                self.skip = Some(size);
                Some(Read::TooBig(size))
            }
            Next::Command { consumed, words } => {
                input.advance(consumed);
                Some(Read::Command(words))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Word {
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    Number(u64),
}

#[derive(Debug, PartialEq, Eq)]
enum Next {
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

/// The next command in `input`, lines up to `max_line` octets outside
/// literals, literals up to `max_literal` octets.
fn parse(input: &[u8], max_line: usize, max_literal: u64) -> Next {
    let mut words = Vec::new();
    let mut i = 0;
    let mut line_octets = 0;
    loop {
        if line_octets > max_line {
            return match find_lf(input, i) {
                Some(end) => Next::Bad {
                    consumed: end + 1,
                    why: "line too long",
                    rest_to_come: false,
                },
                None if input.len() - i > max_line * 4 => Next::Bad {
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
                    Some(_) => bad_line(input, i, max_line, "bare CR"),
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
                            Some(_) => {
                                return bad_line(
                                    input,
                                    i,
                                    max_line,
                                    "bad escape in a quoted string",
                                );
                            }
                        },
                        Some(b'\r' | b'\n') => {
                            return bad_line(input, i, max_line, "line break in a quoted string");
                        }
                        Some(&b) => {
                            s.push(b);
                            i += 1;
                        }
                    }
                    if i - start > max_line {
                        return bad_line(input, i, max_line, "string too long");
                    }
                }
                line_octets += i - start;
                words.push(Word::Str(s));
            }
            b'{' => {
                let Some(close) = input[i..].iter().take(24).position(|&b| b == b'}') else {
                    return match input.len() - i > 24 {
                        true => bad_line(input, i, max_line, "bad literal"),
                        false => Next::Incomplete,
                    };
                };
                let inner = &input[i + 1..i + close];
                let digits = inner.strip_suffix(b"+").unwrap_or(inner);
                let Some(size) = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<u64>().ok())
                else {
                    return bad_line(input, i, max_line, "bad literal");
                };
                let after = i + close + 1;
                let start = match (input.get(after), input.get(after + 1)) {
                    (Some(b'\r'), Some(b'\n')) => after + 2,
                    (Some(b'\n'), _) => after + 1,
                    (None, _) | (Some(b'\r'), None) => return Next::Incomplete,
                    _ => return bad_line(input, i, max_line, "a literal ends its line"),
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
                loop {
                    // The limit is checked before each octet, so that it is
                    // crossed at the same octet however the input is split.
                    if line_octets + (i - start) > max_line {
                        return bad_line(input, i, max_line, "line too long");
                    }
                    let Some(&b) = input.get(i) else {
                        return Next::Incomplete;
                    };
                    if matches!(b, b' ' | b'\r' | b'\n' | b'"' | b'{') {
                        break;
                    }
                    if !(0x21..=0x7e).contains(&b) {
                        return bad_line(input, i, max_line, "bad character");
                    }
                    i += 1;
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

/// Where the line ends: its LF (after a CR or bare, as a command may end).
fn find_lf(input: &[u8], from: usize) -> Option<usize> {
    input[from.min(input.len())..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| from + p)
}

/// A bad line is consumed through its end (or all there is, if no end yet
/// and the rest is long).
fn bad_line(input: &[u8], at: usize, max_line: usize, why: &'static str) -> Next {
    match find_lf(input, at) {
        Some(end) => Next::Bad {
            consumed: end + 1,
            why,
            rest_to_come: false,
        },
        None if input.len() > max_line => Next::Bad {
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
        match parse(s.as_bytes(), MAX_LINE, 1000) {
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
        assert_eq!(
            parse(b"PUTSCRIPT \"a\" {5+}\r\nke", MAX_LINE, 1000),
            Next::Incomplete
        );
        assert_eq!(parse(b"NOOP", MAX_LINE, 1000), Next::Incomplete);
        assert_eq!(
            parse(b"PUTSCRIPT \"a\" {50000+}\r\n", MAX_LINE, 1000),
            Next::TooBig {
                consumed: 24,
                size: 50000
            }
        );
        assert!(matches!(
            parse(b"X \"a\r\nb\"\r\n", MAX_LINE, 1000),
            Next::Bad { consumed: 6, .. }
        ));
        assert!(matches!(
            parse(b"X {abc}\r\n", MAX_LINE, 1000),
            Next::Bad { .. }
        ));
        let long = format!("X {}\r\n", "a".repeat(MAX_LINE + 10));
        assert!(matches!(
            parse(long.as_bytes(), MAX_LINE, 1000),
            Next::Bad { .. }
        ));
        assert_eq!(string("a\"b"), "\"a\\\"b\"");
        assert_eq!(string("a\r\nb"), "{4}\r\na\r\nb");
    }

    /// What a reader takes from `input` fed in pieces of `size` octets.
    fn reads(input: &[u8], size: usize, max_line: usize) -> Vec<Read> {
        let mut reader = Reader::new(max_line);
        let mut buffer = BytesMut::new();
        let mut seen = Vec::new();
        for piece in input.chunks(size) {
            buffer.extend_from_slice(piece);
            while let Some(read) = reader.next(&mut buffer, 1000) {
                seen.push(read);
            }
        }
        seen
    }

    /// The same input gives the same reads in one piece and octet by octet.
    fn split_alike(input: &[u8], max_line: usize) -> Vec<Read> {
        let whole = reads(input, input.len(), max_line);
        assert_eq!(
            reads(input, 1, max_line),
            whole,
            "{:?}",
            String::from_utf8_lossy(input)
        );
        whole
    }

    #[test]
    fn an_atom_past_the_line_limit_is_too_long_however_it_arrives() {
        // Found by fuzzing (managesieve_command): a bad octet past the limit
        // was "bad character" in one piece, "line too long" in small ones.
        let seen = split_alike(b"AUTHEN\x14ICATE\r\nNOOP\r\n", 5);
        assert_eq!(seen[0], Read::Bad("line too long"));
        assert_eq!(seen[1], Read::Command(vec![Word::Atom("NOOP".into())]));
        let seen = split_alike(b"AUT\x14ICATE\r\nNOOP\r\n", 5);
        assert_eq!(seen[0], Read::Bad("bad character"));
    }

    #[test]
    fn a_bad_line_ends_at_its_lf_as_a_command_does() {
        // A command may end in a bare LF; a bad line once ran on to the
        // next CRLF and took the commands before it along.
        for max_line in [4, 8192] {
            let seen = split_alike(b"X \"a\nNOOP\nNOOP\r\n", max_line);
            let noop = Read::Command(vec![Word::Atom("NOOP".into())]);
            assert_eq!(
                seen,
                [
                    Read::Bad("line break in a quoted string"),
                    noop.clone(),
                    noop
                ]
            );
        }
    }
}
