//! Reading SMTP replies from a server we do not trust (hardening.md C-OB1,
//! C-OB2): bounded lines and line counts, strict reply codes. Anything odd is
//! a protocol error, which the caller treats as a temporary failure.

use tokio::io::{AsyncRead, AsyncReadExt};

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF.
pub const MAX_LINE: usize = 512;
/// Lines of one multi-line reply (EHLO lists are the longest in practice).
pub const MAX_LINES: usize = 100;

/// A reply: its code, enhanced status if the text starts with one, the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// RFC 3463 `class.subject.detail`, when given.
    pub enhanced: Option<String>,
    /// All lines' text, joined by newlines (codes removed).
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The status for a DSN: the enhanced code, or one made from the basic code.
    pub fn status(&self) -> String {
        self.enhanced
            .clone()
            .unwrap_or_else(|| format!("{}.0.0", self.code / 100))
    }

    /// `250 2.0.0 text` on one line, for logs, the queue's history and
    /// DSN Diagnostic-Code: the lines joined by spaces, any control
    /// character the server sent a space too.
    pub fn one_line(&self) -> String {
        let text = message::header::one_line(&self.text);
        match &self.enhanced {
            Some(e) => format!("{} {e} {text}", self.code),
            None => format!("{} {text}", self.code),
        }
        .trim()
        .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("connection closed")]
    Closed,
    #[error("I/O error: {0}")]
    Io(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Reads replies; keeps bytes that arrived beyond the current reply.
#[derive(Debug, Default)]
pub struct ReplyReader {
    buf: Vec<u8>,
}

impl ReplyReader {
    /// Forget what was buffered (after STARTTLS: hardening.md C-TLS6).
    pub fn discard(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
        n
    }

    pub async fn read<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> Result<Reply, ReplyError> {
        let mut lines: Vec<String> = Vec::new();
        let mut code = None;
        loop {
            let line = self.line(stream).await?;
            let (c, last, text) = parse_line(&line)?;
            if code.is_some_and(|prev| prev != c) {
                return Err(ReplyError::Protocol(
                    "reply code changed inside a multi-line reply".into(),
                ));
            }
            code = Some(c);
            lines.push(text);
            if last {
                break;
            }
            if lines.len() >= MAX_LINES {
                return Err(ReplyError::Protocol("multi-line reply too long".into()));
            }
        }
        let code = code.unwrap_or(0);
        let enhanced = lines.last().and_then(|l| enhanced_code(l, code));
        let text = lines
            .iter()
            .map(|l| match &enhanced {
                Some(e) => l
                    .strip_prefix(e.as_str())
                    .unwrap_or(l)
                    .trim_start()
                    .to_string(),
                None => l.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Reply {
            code,
            enhanced,
            text,
        })
    }

    async fn line<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Result<String, ReplyError> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                if i + 2 > MAX_LINE {
                    return Err(ReplyError::Protocol("reply line too long".into()));
                }
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(ReplyError::Protocol("reply line too long".into()));
            }
            let mut chunk = [0u8; 1024];
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| ReplyError::Io(e.to_string()))?;
            if n == 0 {
                return Err(ReplyError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// RFC 5321 §4.2: `Reply-code [ SP / "-" ] textstring`, code 2xx-5xx.
fn parse_line(line: &str) -> Result<(u16, bool, String), ReplyError> {
    let b = line.as_bytes();
    let valid = b.len() >= 3
        && (b'2'..=b'5').contains(&b[0])
        && (b'0'..=b'5').contains(&b[1])
        && b[2].is_ascii_digit();
    if !valid {
        return Err(ReplyError::Protocol(format!(
            "bad reply line {:?}",
            truncate(line)
        )));
    }
    let code = u16::from(b[0] - b'0') * 100 + u16::from(b[1] - b'0') * 10 + u16::from(b[2] - b'0');
    match b.get(3) {
        None => Ok((code, true, String::new())),
        Some(b' ') => Ok((code, true, line[4..].to_string())),
        Some(b'-') => Ok((code, false, line[4..].to_string())),
        Some(_) => Err(ReplyError::Protocol(format!(
            "bad reply line {:?}",
            truncate(line)
        ))),
    }
}

/// An RFC 3463 code at the start of the text, of the same class as the reply.
fn enhanced_code(text: &str, code: u16) -> Option<String> {
    let word = text.split_whitespace().next()?;
    let mut parts = word.split('.');
    let class: u16 = parts.next()?.parse().ok()?;
    let subject: u16 = parts.next()?.parse().ok()?;
    let detail: u16 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && class == code / 100 && subject < 1000 && detail < 1000)
        .then(|| word.to_string())
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut r = ReplyReader::default();
        let mut s = input;
        let mut out = Vec::new();
        loop {
            match r.read(&mut s).await {
                Err(ReplyError::Closed) => return out,
                other => {
                    let stop = other.is_err();
                    out.push(other);
                    if stop {
                        return out;
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn replies() {
        let got = read_all(b"250-mx.test hello\r\n250-PIPELINING\r\n250 SIZE 1000\r\n550 5.1.1 No such user\r\n220\r\n").await;
        let ehlo = got[0].clone().unwrap();
        assert_eq!(
            (ehlo.code, ehlo.text.as_str()),
            (250, "mx.test hello\nPIPELINING\nSIZE 1000")
        );
        let no = got[1].clone().unwrap();
        assert_eq!(
            (
                no.code,
                no.enhanced.as_deref(),
                no.status(),
                no.text.as_str()
            ),
            (550, Some("5.1.1"), "5.1.1".to_string(), "No such user")
        );
        assert_eq!(got[2].clone().unwrap().code, 220);
    }

    /// C-OB2: garbage codes are protocol errors, never success.
    #[tokio::test]
    async fn bogus_codes() {
        for bad in [
            &b"999 x\r\n"[..],
            b"25 x\r\n",
            b"2500 ok\r\n",
            b"250x\r\n",
            b"ok\r\n",
            b"250-a\r\n251 b\r\n",
        ] {
            let got = read_all(bad).await;
            assert!(
                matches!(got.last(), Some(Err(ReplyError::Protocol(_)))),
                "{:?}: {got:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// C-OB1: endless multi-line replies and huge lines are cut short.
    #[tokio::test]
    async fn bounded() {
        let many = "250-x\r\n".repeat(100_000);
        assert!(matches!(
            read_all(many.as_bytes()).await.last(),
            Some(Err(ReplyError::Protocol(_)))
        ));
        let long = format!("250 {}\r\n", "x".repeat(1 << 20));
        assert!(matches!(
            read_all(long.as_bytes()).await.last(),
            Some(Err(ReplyError::Protocol(_)))
        ));
    }

    /// A remote's reply text may hold a bare CR or terminal escapes: the
    /// one-line form (logs, the queue's history, JMAP's smtpReply) has
    /// spaces in their place (found by fuzzing `smtp_reply`).
    #[tokio::test]
    async fn one_line_holds_no_control_characters() {
        let got = read_all(b"550-5.7.1 first\rforged\r\n550 5.7.1 \x1b[2Jsecond\r\n").await;
        let reply = got[0].clone().unwrap();
        assert_eq!(reply.one_line(), "550 5.7.1 first forged  [2Jsecond");
    }
}
