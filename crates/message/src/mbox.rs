//! Reading an mbox (RFC 4155): messages separated by "From " lines, one
//! message in memory at a time. A line that starts with "From " only
//! separates messages when the line before it is empty (or it is the first
//! line) and it carries a sender and a ctime date (`From a@b.test Mon Jan
//! 1 10:00:00 2024`): a body line such as "From the desk of..." stays in
//! its message (mail-parser's reader splits there). `>From ` quoting is
//! undone the mboxrd way (one `>` less on every `>+From ` line), which is
//! also right for mboxo files.

use std::io::BufRead;

/// One message: its date from the separator line (Unix time, None when
/// the date is absent or unreadable) and its bytes.
pub struct MboxMessage {
    pub date: Option<i64>,
    pub raw: Vec<u8>,
}

pub struct MboxReader<R> {
    input: R,
    /// The separator that starts the next message, once read.
    next_separator: Option<Option<i64>>,
    started: bool,
}

impl<R: BufRead> MboxReader<R> {
    pub fn new(input: R) -> MboxReader<R> {
        MboxReader {
            input,
            next_separator: None,
            started: false,
        }
    }

    /// The next message, None at the end; an error when the file does not
    /// start with a separator line or cannot be read.
    pub fn next_message(&mut self) -> std::io::Result<Option<MboxMessage>> {
        let mut line = Vec::new();
        if !self.started {
            self.started = true;
            if self.input.read_until(b'\n', &mut line)? == 0 {
                return Ok(None);
            }
            match separator_date(&line) {
                Some(date) => self.next_separator = Some(date),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "not an mbox: the first line is not a \"From \" line",
                    ));
                }
            }
        }
        let Some(date) = self.next_separator.take() else {
            return Ok(None);
        };
        let mut raw = Vec::new();
        let mut previous_blank = false;
        loop {
            line.clear();
            if self.input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if previous_blank && let Some(next) = separator_date(&line) {
                self.next_separator = Some(next);
                break;
            }
            previous_blank = matches!(line.as_slice(), b"\n" | b"\r\n");
            raw.extend_from_slice(unquote(&line));
        }
        // The empty line before a separator belongs to the mbox, not the message.
        if raw.ends_with(b"\r\n\r\n") {
            raw.truncate(raw.len() - 2);
        } else if raw.ends_with(b"\n\n") {
            raw.truncate(raw.len() - 1);
        }
        Ok(Some(MboxMessage { date, raw }))
    }
}

/// `>From ` lines lose one `>` (mboxrd).
fn unquote(line: &[u8]) -> &[u8] {
    let quotes = line.iter().take_while(|&&b| b == b'>').count();
    match quotes > 0 && line[quotes..].starts_with(b"From ") {
        true => &line[1..],
        false => line,
    }
}

/// A separator line's date: Some(date) when the line is `From SENDER
/// DATE...` with a ctime date among its words (Some(None) when the words
/// are there but the date is not readable); None when it is no separator.
fn separator_date(line: &[u8]) -> Option<Option<i64>> {
    let text = std::str::from_utf8(line.strip_prefix(b"From ")?).ok()?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let (_sender, rest) = words.split_first()?;
    // ctime: Www Mmm dd hh:mm:ss yyyy (a time zone may come between).
    let at = rest.windows(4).position(|w| {
        crate::date::month_number(w[0]).is_some()
            && w[1].parse::<u32>().is_ok()
            && w[2].split(':').count() >= 2
    })?;
    let (month, day, time) = (rest[at], rest[at + 1], rest[at + 2]);
    let year = rest[at + 3..]
        .iter()
        .find_map(|w| w.parse::<i64>().ok().filter(|y| *y > 1900));
    let date = year.and_then(|year| {
        let month = crate::date::month_number(month)?;
        let day: u32 = day.parse().ok()?;
        let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
        let (h, m) = (hms.next()??, hms.next()??);
        let s = hms.next().flatten().unwrap_or(0);
        Some(crate::date::days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s)
    });
    Some(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<(Option<i64>, String)> {
        let mut r = MboxReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(m) = r.next_message().unwrap() {
            out.push((m.date, String::from_utf8(m.raw).unwrap()));
        }
        out
    }

    #[test]
    fn separators_need_a_blank_line_a_sender_and_a_date() {
        let got = all(
            "From a@b.test Mon Jan  1 10:00:00 2024\nSubject: one\n\nFrom the desk:\n>From quoted\n>>From twice\n\n\
             From c@d.test Tue Jan  2 10:00:00 2024\nSubject: two\n\nFrom here\n",
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, Some(1_704_103_200));
        assert_eq!(
            got[0].1,
            "Subject: one\n\nFrom the desk:\nFrom quoted\n>From twice\n"
        );
        assert_eq!(got[1].1, "Subject: two\n\nFrom here\n");
    }

    #[test]
    fn odd_separator_lines() {
        assert_eq!(
            separator_date(b"From MAILER-DAEMON Fri Jul  8 12:08:34 2011\n"),
            Some(Some(1_310_126_914))
        );
        assert_eq!(
            separator_date(b"From a@b Sat Jan  3 01:05:34 +0100 1996\n").map(|d| d.is_some()),
            Some(true)
        );
        assert_eq!(separator_date(b"From the desk of the editor\n"), None);
        assert_eq!(separator_date(b"Subject: x\n"), None);
        assert!(
            MboxReader::new(&b"Subject: not an mbox\n"[..])
                .next_message()
                .is_err()
        );
    }
}
