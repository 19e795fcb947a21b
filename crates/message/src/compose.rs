//! Writing the messages Tern makes itself (bounces, disposition
//! notifications, vacation replies, notifications, header fields a Sieve
//! script adds) from text that comes from elsewhere: a remote server's
//! reply, the subject and message ids of the mail being answered, a
//! user's words.
//!
//! RFC 5322 §2.1.1: "Each line of characters MUST be no more than 998
//! characters, and SHOULD be no more than 78 characters, excluding the
//! CRLF." A header field is folded at its spaces (§2.2.3) to stay within
//! 78 where its words allow and within 998 always; a text body with a
//! longer line goes as quoted-printable (RFC 2045 §6.7), whose lines are
//! at most 76. Text that is not ASCII goes in a Subject-like field as
//! RFC 2047 encoded words, each at most 75 characters (§2), which fold
//! between them and read back as the same text (§6.2).

use crate::header::one_line;

/// RFC 5322 §2.1.1: the most a line may hold, without its CRLF.
pub const MAX_LINE: usize = 998;

/// RFC 5322 §2.1.1: what a line should hold at most, without its CRLF.
const GOOD_LINE: usize = 78;

/// Octets of text in one encoded word: base64 makes 60 of 45, and with
/// `=?UTF-8?B?` and `?=` the word is 72 characters (RFC 2047 §2: 75).
const ENCODED_WORD_TEXT: usize = 45;

/// A header field as written: `name: value` and CRLF, the value on one
/// line's worth of text ([`one_line`]: control characters become spaces,
/// so nothing in it starts a field of its own) folded by [`fold`].
pub fn field(name: &str, value: &str) -> String {
    format!(
        "{name}: {}\r\n",
        fold(one_line(value).trim(), name.len() + 2)
    )
}

/// `value` folded at its spaces so that each line holds at most 78
/// characters where its words allow (RFC 5322 §2.2.3), the first line
/// already holding `first_line_used`. A word too long for a line of 998
/// is cut; unfolding reads a space where it was cut (the only change to
/// the text, and only for a word of hundreds of characters).
pub fn fold(value: &str, first_line_used: usize) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 32 + 8);
    let mut line = first_line_used;
    for (i, word) in value.split(' ').enumerate() {
        if i > 0 {
            if line + 1 + word.len() > GOOD_LINE && line > 1 {
                out.push_str("\r\n ");
                line = 1;
            } else {
                out.push(' ');
                line += 1;
            }
        }
        let mut rest = word;
        while line + rest.len() > MAX_LINE {
            let cut = floor_char_boundary(rest, MAX_LINE.saturating_sub(line));
            if cut == 0 && line <= 1 {
                break;
            }
            out.push_str(&rest[..cut]);
            out.push_str("\r\n ");
            line = 1;
            rest = &rest[cut..];
        }
        out.push_str(rest);
        line += rest.len();
    }
    out
}

/// The largest char boundary of `s` at or before `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Unstructured text (a Subject) for a header field: ASCII as it is,
/// otherwise RFC 2047 "B" encoded words of at most 45 octets of text each
/// (75 characters at most, §2), separated by spaces that [`fold`] may fold
/// at and that a reader drops between encoded words (§6.2).
pub fn encoded_words(value: &str) -> String {
    if value.is_ascii() {
        return value.to_string();
    }
    use base64::Engine;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > ENCODED_WORD_TEXT {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text with its line breaks made CRLF: CRLF, a bare LF and a bare CR
/// each end a line (RFC 5322 §2.3: CR and LF only together).
pub fn crlf_lines(text: &str) -> String {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// A `text/plain` UTF-8 body with its Content-Type and
/// Content-Transfer-Encoding fields and the empty line before it: 8bit
/// when every line fits in 998 octets, quoted-printable otherwise (RFC
/// 2045 §6.7: its lines are at most 76). Ends with CRLF.
pub fn text_plain(text: &str) -> String {
    let mut body = crlf_lines(text);
    if !body.ends_with("\r\n") {
        body.push_str("\r\n");
    }
    let head = "Content-Type: text/plain; charset=utf-8\r\n";
    if body.split("\r\n").all(|l| l.len() <= MAX_LINE) {
        return format!("{head}Content-Transfer-Encoding: 8bit\r\n\r\n{body}");
    }
    let encoded = crate::seven_bit::quoted_printable(body.as_bytes());
    format!(
        "{head}Content-Transfer-Encoding: quoted-printable\r\n\r\n{}",
        String::from_utf8_lossy(&encoded)
    )
}

/// The longest line of `message`, without its line break: at most
/// [`MAX_LINE`] in what Tern writes.
pub fn longest_line(message: &[u8]) -> usize {
    message
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unfolded(s: &str) -> String {
        s.replace("\r\n ", " ")
    }

    #[test]
    fn short_values_stay_on_one_line() {
        assert_eq!(field("Subject", "Auto: hello"), "Subject: Auto: hello\r\n");
        assert_eq!(field("X", " a\r\nb\tc "), "X: a  b c\r\n");
    }

    #[test]
    fn long_values_fold_at_spaces_within_78() {
        let ids: Vec<String> = (0..40).map(|i| format!("<id{i}.x@example.test>")).collect();
        let out = field("References", &ids.join(" "));
        assert!(out.lines().all(|l| l.len() <= GOOD_LINE), "{out}");
        assert_eq!(unfolded(&out), format!("References: {}\r\n", ids.join(" ")));
    }

    #[test]
    fn a_word_past_998_is_cut() {
        let word = "é".repeat(1500);
        let out = field("Diagnostic-Code", &format!("smtp; 550 {word} end"));
        assert!(longest_line(out.as_bytes()) <= MAX_LINE, "{out}");
        assert!(out.ends_with(" end\r\n"));
        assert_eq!(unfolded(&out).replace(' ', "").matches('é').count(), 1500);
    }

    #[test]
    fn encoded_words_are_short_and_read_back() {
        let text = "Grüße aus Köln ".repeat(20);
        let words = encoded_words(&text);
        assert!(words.split(' ').all(|w| w.len() <= 75), "{words}");
        let out = field("Subject", &words);
        // The first word follows the name on its line; the rest fold in 78.
        assert!(out.lines().skip(1).all(|l| l.len() <= GOOD_LINE), "{out}");
        assert_eq!(
            crate::header::decoded(&out.as_bytes()["Subject:".len()..]),
            text.trim_end()
        );
        assert_eq!(encoded_words("plain"), "plain");
    }

    #[test]
    fn a_text_body_with_a_long_line_goes_quoted_printable() {
        assert_eq!(
            text_plain("Away\nback Monday"),
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nAway\r\nback Monday\r\n"
        );
        assert_eq!(crlf_lines("a\rb\nc\r\nd\r"), "a\r\nb\r\nc\r\nd\r\n");
        let long = format!("short\n{}", "ü".repeat(800));
        let part = text_plain(&long);
        assert!(part.contains("Content-Transfer-Encoding: quoted-printable\r\n"));
        assert!(longest_line(part.as_bytes()) <= 76);
        let body = &part[part.find("\r\n\r\n").unwrap() + 4..];
        assert!(
            crate::mime::decode_qp(body.as_bytes())
                == format!("{}\r\n", crlf_lines(&long)).into_bytes()
        );
    }
}
