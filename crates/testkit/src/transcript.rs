//! Protocol transcripts (conventions.md §1): a `.tx` file says what the client
//! sends and what the server must answer, line by line.
//!
//! ```text
//! # a comment (name the RFC section)
//! @listener submission        header: which service the transcript talks to
//! C: EHLO client.test         send the line and CRLF
//! C! raw\r\nbytes\x00         send exactly these bytes (escapes: \r \n \t \\ \xNN)
//! S: 250 exact line           the next line must be exactly this
//! S~ 250[ -].*                the next line must match this regex (whole line)
//! S... 250 last line          skip lines until one is exactly this
//! !starttls                   run the TLS handshake (after a 220 to STARTTLS)
//! !closed                     the server must have closed the connection
//! !inbox alice@a.test 1       alice's INBOX must hold exactly 1 message
//! !queue 1                    the outbound queue must hold exactly 1 message
//! ```
//! `${NAME}` is replaced by the runner's variables everywhere; `$$` is a `$`.

use std::collections::HashMap;
use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Send(Vec<u8>),
    Expect(String),
    ExpectMatch(String),
    SkipTo(String),
    StartTls,
    Closed,
    Inbox(String, usize),
    Queue(usize),
}

#[derive(Debug, Clone)]
pub struct Transcript {
    pub name: String,
    pub headers: HashMap<String, String>,
    /// (line number in the file, step)
    pub steps: Vec<(usize, Step)>,
}

impl Transcript {
    pub fn parse(
        name: &str,
        text: &str,
        vars: &HashMap<String, String>,
    ) -> Result<Transcript, String> {
        let mut headers = HashMap::new();
        let mut steps = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = substitute(raw, vars).map_err(|e| format!("{name}:{n}: {e}"))?;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let step = if let Some(rest) = line.strip_prefix('@') {
                let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                headers.insert(k.to_string(), v.trim().to_string());
                continue;
            } else if let Some(rest) = line.strip_prefix("C: ") {
                Step::Send(format!("{rest}\r\n").into_bytes())
            } else if line == "C:" {
                Step::Send(b"\r\n".to_vec())
            } else if let Some(rest) = line.strip_prefix("C! ") {
                Step::Send(unescape(rest).map_err(|e| format!("{name}:{n}: {e}"))?)
            } else if let Some(rest) = line.strip_prefix("S: ") {
                Step::Expect(rest.to_string())
            } else if let Some(rest) = line.strip_prefix("S~ ") {
                regex::Regex::new(rest).map_err(|e| format!("{name}:{n}: bad regex: {e}"))?;
                Step::ExpectMatch(rest.to_string())
            } else if let Some(rest) = line.strip_prefix("S... ") {
                Step::SkipTo(rest.to_string())
            } else if line == "!starttls" {
                Step::StartTls
            } else if line == "!closed" {
                Step::Closed
            } else if let Some(rest) = line.strip_prefix("!inbox ") {
                let (who, count) = rest
                    .split_once(' ')
                    .ok_or(format!("{name}:{n}: !inbox ADDRESS COUNT"))?;
                Step::Inbox(
                    who.to_string(),
                    count
                        .trim()
                        .parse()
                        .map_err(|_| format!("{name}:{n}: bad count"))?,
                )
            } else if let Some(rest) = line.strip_prefix("!queue ") {
                Step::Queue(
                    rest.trim()
                        .parse()
                        .map_err(|_| format!("{name}:{n}: bad count"))?,
                )
            } else {
                return Err(format!("{name}:{n}: cannot read line {line:?}"));
            };
            steps.push((n, step));
        }
        Ok(Transcript {
            name: name.to_string(),
            headers,
            steps,
        })
    }

    /// Play the transcript on a wire; the error says which line failed and why.
    pub async fn play<W: Wire>(&self, wire: &mut W) -> Result<(), String> {
        for (n, step) in &self.steps {
            let at = format!("{}:{n}", self.name);
            match step {
                Step::Send(bytes) => wire
                    .send(bytes)
                    .await
                    .map_err(|e| format!("{at}: send failed: {e}"))?,
                Step::Expect(want) => {
                    let got = next_line(wire, &at).await?;
                    if &got != want {
                        return Err(format!("{at}: expected {want:?}\n  got {got:?}"));
                    }
                }
                Step::ExpectMatch(pattern) => {
                    let got = next_line(wire, &at).await?;
                    let re = regex::Regex::new(&format!("^(?:{pattern})$"))
                        .map_err(|e| format!("{at}: {e}"))?;
                    if !re.is_match(&got) {
                        return Err(format!(
                            "{at}: expected a match for {pattern:?}\n  got {got:?}"
                        ));
                    }
                }
                Step::SkipTo(want) => loop {
                    if &next_line(wire, &at).await? == want {
                        break;
                    }
                },
                Step::StartTls => wire
                    .starttls()
                    .await
                    .map_err(|e| format!("{at}: TLS handshake failed: {e}"))?,
                Step::Closed => match wire.read_line().await {
                    Ok(None) | Err(_) => {}
                    Ok(Some(line)) => {
                        return Err(format!(
                            "{at}: expected the connection to be closed, got {line:?}"
                        ));
                    }
                },
                Step::Inbox(who, count) => {
                    let got = wire
                        .inbox_count(who)
                        .await
                        .map_err(|e| format!("{at}: {e}"))?;
                    if got != *count {
                        return Err(format!(
                            "{at}: {who} has {got} message(s) in INBOX, expected {count}"
                        ));
                    }
                }
                Step::Queue(count) => {
                    let got = wire.queue_count().await.map_err(|e| format!("{at}: {e}"))?;
                    if got != *count {
                        return Err(format!(
                            "{at}: the queue holds {got} message(s), expected {count}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

async fn next_line<W: Wire>(wire: &mut W, at: &str) -> Result<String, String> {
    match wire.read_line().await {
        Ok(Some(line)) => Ok(line),
        Ok(None) => Err(format!("{at}: the connection closed")),
        Err(e) => Err(format!("{at}: read failed: {e}")),
    }
}

/// Where a transcript is played: a socket to a real server, or a session in memory.
pub trait Wire {
    fn send(&mut self, bytes: &[u8]) -> impl Future<Output = std::io::Result<()>>;
    /// The next line without its CRLF; None at the end of the stream.
    fn read_line(&mut self) -> impl Future<Output = std::io::Result<Option<String>>>;
    fn starttls(&mut self) -> impl Future<Output = std::io::Result<()>>;
    fn inbox_count(&mut self, address: &str) -> impl Future<Output = Result<usize, String>>;
    fn queue_count(&mut self) -> impl Future<Output = Result<usize, String>>;
}

fn substitute(line: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        if rest[start..].starts_with("$$") {
            out.push('$');
            rest = &rest[start + 2..];
            continue;
        }
        if !rest[start..].starts_with("${") {
            out.push('$');
            rest = &rest[start + 1..];
            continue;
        }
        let end = rest[start..].find('}').ok_or("unterminated ${")? + start;
        let name = &rest[start + 2..end];
        out.push_str(
            vars.get(name)
                .ok_or(format!("unknown variable ${{{name}}}"))?,
        );
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).ok_or("bad \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
                i += 2;
            }
            _ => return Err("bad escape".into()),
        }
        i += 2;
    }
    Ok(out)
}

/// Every `.tx` file under `dir`, sorted, with its text.
pub fn load_dir(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "tx")
            && let Ok(text) = std::fs::read_to_string(&p)
        {
            out.push((
                p.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                text,
            ));
        }
    }
    out.sort();
    out
}

/// Play every transcript of `tests/transcripts/<protocol>/` with `play`, `parallel`
/// at a time, and fail with every failure listed.
pub async fn run_all<F, Fut>(protocol: &str, parallel: usize, play: F)
where
    F: Fn(String, String) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/transcripts")
        .join(protocol);
    let files = load_dir(&dir);
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let mut failures = Vec::new();
    for batch in files.chunks(parallel.max(1)) {
        let mut tasks = tokio::task::JoinSet::new();
        for (name, text) in batch.iter().cloned() {
            tasks.spawn(play(name, text));
        }
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(format!("a transcript task panicked: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {protocol} transcripts failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let vars = HashMap::from([("HOST".to_string(), "mx.a.test".to_string())]);
        let t = Transcript::parse("t", "@listener smtp\n# c\nC: EHLO x\nC! a\\r\\n\\x00\nS: 220 ${HOST}\nS~ 250.*\nS... 250 OK\n!starttls\n!closed\n!inbox a@b 2\n!queue 0\n", &vars).unwrap();
        assert_eq!(t.headers["listener"], "smtp");
        let steps: Vec<Step> = t.steps.into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            steps,
            vec![
                Step::Send(b"EHLO x\r\n".to_vec()),
                Step::Send(b"a\r\n\x00".to_vec()),
                Step::Expect("220 mx.a.test".into()),
                Step::ExpectMatch("250.*".into()),
                Step::SkipTo("250 OK".into()),
                Step::StartTls,
                Step::Closed,
                Step::Inbox("a@b".into(), 2),
                Step::Queue(0),
            ]
        );
        assert!(Transcript::parse("t", "X: y", &vars).is_err());
        assert!(Transcript::parse("t", "S: ${NOPE}", &vars).is_err());
    }
}
