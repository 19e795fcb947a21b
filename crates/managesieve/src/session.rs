//! The ManageSieve session (RFC 5804 §2): the capabilities first, STARTTLS
//! (§2.2, the capabilities again once TLS is up), AUTHENTICATE by SASL
//! (§2.1; PLAIN and SCRAM, the same throttling as IMAP), then the script
//! commands on the user's scripts. A script is checked whole before it is
//! stored; what is wrong with it names its line and column.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use auth::{Exchange, Mechanism, Progress, Verdict};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::BytesMut;
use net::{ConnInfo, Flow, TlsInfo};
use store::{AccountRecord, Store, StoreError};

use crate::command::{self, Read, Reader, Word};

pub struct Services {
    pub store: Arc<dyn Store>,
    pub auth: Arc<auth::Authenticator>,
}

#[derive(Debug, Clone)]
pub struct ManageSieveConfig {
    pub hostname: String,
    pub starttls: bool,
    /// AUTHENTICATE without TLS for clients on loopback addresses.
    pub plaintext_on_loopback: bool,
    pub idle_timeout: Duration,
    pub max_errors: u32,
    /// Scripts one user may keep (QUOTA/MAXSCRIPTS).
    pub max_scripts: usize,
    /// Octets of one script (QUOTA/MAXSIZE).
    pub max_script_size: u64,
    /// Advertised as MAXREDIRECTS (what the interpreter allows).
    pub max_redirects: usize,
}

impl ManageSieveConfig {
    pub fn new(hostname: &str) -> ManageSieveConfig {
        ManageSieveConfig {
            hostname: hostname.to_string(),
            starttls: false,
            plaintext_on_loopback: false,
            idle_timeout: Duration::from_secs(1800),
            max_errors: 20,
            max_scripts: 20,
            max_script_size: 64 * 1024,
            max_redirects: 4,
        }
    }
}

/// Literals before login: big enough for any SASL response (C-IM1).
const PRE_AUTH_LITERAL: u64 = 8192;
/// The longest script name (RFC 5804 §1.6 leaves it to the server).
const MAX_NAME: usize = 512;

/// One answer: `OK`/`NO`/`BYE`, a response code, a text.
struct Answer {
    word: &'static str,
    code: Option<String>,
    text: String,
}

fn ok(text: impl Into<String>) -> Answer {
    Answer {
        word: "OK",
        code: None,
        text: text.into(),
    }
}

fn no(code: Option<&str>, text: impl Into<String>) -> Answer {
    Answer {
        word: "NO",
        code: code.map(str::to_string),
        text: text.into(),
    }
}

impl Answer {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.word.as_bytes());
        if let Some(code) = &self.code {
            out.extend_from_slice(format!(" ({code})").as_bytes());
        }
        if !self.text.is_empty() {
            out.push(b' ');
            out.extend_from_slice(command::string(&self.text).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

pub struct ManageSieveSession {
    cfg: Arc<ManageSieveConfig>,
    services: Arc<Services>,
    peer: SocketAddr,
    tls: Option<TlsInfo>,
    user: Option<AccountRecord>,
    sasl: Option<Box<Exchange>>,
    reader: Reader,
    /// The capabilities are owed (after STARTTLS, RFC 5804 §2.2).
    capabilities_due: bool,
    errors: u32,
}

impl ManageSieveSession {
    pub fn new(
        cfg: Arc<ManageSieveConfig>,
        services: Arc<Services>,
        conn: &ConnInfo,
    ) -> ManageSieveSession {
        ManageSieveSession {
            cfg,
            services,
            peer: conn.peer,
            tls: conn.tls.clone(),
            user: None,
            sasl: None,
            reader: Reader::default(),
            capabilities_due: false,
            errors: 0,
        }
    }

    fn login_allowed(&self) -> bool {
        self.tls.is_some() || (self.cfg.plaintext_on_loopback && self.peer.ip().is_loopback())
    }

    /// RFC 5804 §1.7, each really implemented.
    fn capabilities(&self, out: &mut Vec<u8>) {
        let mut lines: Vec<(String, Option<String>)> = vec![
            (
                "IMPLEMENTATION".into(),
                Some(format!("Tern {}", env!("CARGO_PKG_VERSION"))),
            ),
            ("SIEVE".into(), Some(sieve::EXTENSIONS.join(" "))),
            ("NOTIFY".into(), Some("mailto".into())),
            (
                "MAXREDIRECTS".into(),
                Some(self.cfg.max_redirects.to_string()),
            ),
        ];
        if self.user.is_none() {
            let mechanisms = match self.login_allowed() {
                true => {
                    let binding = self
                        .tls
                        .as_ref()
                        .is_some_and(|t| t.channel_binding.is_some());
                    Mechanism::offered(binding)
                        .filter(|m| *m != Mechanism::Login)
                        .map(|m| m.name())
                        .collect::<Vec<_>>()
                        .join(" ")
                }
                false => String::new(),
            };
            lines.push(("SASL".into(), Some(mechanisms)));
        }
        if let Some(u) = &self.user {
            lines.push(("OWNER".into(), Some(u.address.clone())));
        }
        if self.tls.is_none() && self.cfg.starttls && self.user.is_none() {
            lines.push(("STARTTLS".into(), None));
        }
        lines.push(("VERSION".into(), Some("1.0".into())));
        for (name, value) in lines {
            out.extend_from_slice(command::string(&name).as_bytes());
            if let Some(v) = value {
                out.push(b' ');
                out.extend_from_slice(command::string(&v).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
    }

    async fn process(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        loop {
            let limit = match self.user {
                Some(_) => self.cfg.max_script_size + 1024,
                None => PRE_AUTH_LITERAL,
            };
            let Some(read) = self.reader.next(input, limit) else {
                return Flow::Continue;
            };
            let flow = match read {
                Read::Bad(why) => self.error(no(None, format!("Syntax error: {why}")), out),
                Read::TooBig(size) => {
                    self.sasl = None;
                    if self.user.is_none() {
                        // C-IM1: nothing that large before login.
                        out.extend_from_slice(b"BYE \"Literal too large\"\r\n");
                        return Flow::Close;
                    }
                    self.error(
                        no(
                            Some("QUOTA/MAXSIZE"),
                            format!(
                                "{size} octets is more than {} allowed",
                                self.cfg.max_script_size
                            ),
                        ),
                        out,
                    )
                }
                Read::Command(words) => match self.sasl.take() {
                    Some(exchange) => self.sasl_response(*exchange, words, out).await,
                    None => self.command(words, out).await,
                },
            };
            if flow != Flow::Continue {
                return flow;
            }
        }
    }

    fn error(&mut self, answer: Answer, out: &mut Vec<u8>) -> Flow {
        answer.write(out);
        self.errors += 1;
        if self.errors >= self.cfg.max_errors {
            out.extend_from_slice(b"BYE \"Too many errors\"\r\n");
            return Flow::Close;
        }
        Flow::Continue
    }

    fn answer(&mut self, result: Result<Answer, Answer>, out: &mut Vec<u8>) -> Flow {
        match result {
            Ok(a) => {
                a.write(out);
                Flow::Continue
            }
            Err(a) => self.error(a, out),
        }
    }

    async fn command(&mut self, words: Vec<Word>, out: &mut Vec<u8>) -> Flow {
        let mut words = words.into_iter();
        let name = match words.next() {
            Some(Word::Atom(a)) => a.to_ascii_uppercase(),
            None => return self.error(no(None, "Empty command"), out),
            Some(_) => return self.error(no(None, "Expected a command name"), out),
        };
        let args: Vec<Word> = words.collect();
        match name.as_str() {
            "CAPABILITY" => {
                if !args.is_empty() {
                    return self.error(no(None, "CAPABILITY takes no arguments"), out);
                }
                self.capabilities(out);
                ok("").write(out);
                Flow::Continue
            }
            "LOGOUT" => {
                ok("Logout").write(out);
                Flow::Close
            }
            "NOOP" => {
                let answer = match args.as_slice() {
                    [] => Ok(ok("Done")),
                    [Word::Str(tag)] => Ok(Answer {
                        word: "OK",
                        code: Some(format!(
                            "TAG {}",
                            command::string(&String::from_utf8_lossy(tag))
                        )),
                        text: "Done".into(),
                    }),
                    _ => Err(no(None, "NOOP takes one string at most")),
                };
                self.answer(answer, out)
            }
            "STARTTLS" => {
                if self.tls.is_some() || !self.cfg.starttls || self.user.is_some() {
                    return self.error(no(None, "TLS is not available"), out);
                }
                ok("Begin TLS negotiation").write(out);
                Flow::StartTls
            }
            "AUTHENTICATE" => self.authenticate(args, out).await,
            _ if self.user.is_none() => self.error(no(None, "Authenticate first"), out),
            "UNAUTHENTICATE" => {
                // RFC 5804 §2.14.1.
                self.user = None;
                ok("").write(out);
                Flow::Continue
            }
            "LISTSCRIPTS" => self.list_scripts(out).await,
            "GETSCRIPT" => self.get_script(args, out).await,
            _ => {
                let result = self.script_command(&name, args).await;
                self.answer(result, out)
            }
        }
    }

    async fn script_command(&mut self, name: &str, args: Vec<Word>) -> Result<Answer, Answer> {
        let Some(account) = self.user.as_ref().map(|u| u.id) else {
            return Err(no(None, "Authenticate first"));
        };
        let store = self.services.store.clone();
        let temp = |e: StoreError| no(Some("TRYLATER"), e.to_string());
        match (name, args.as_slice()) {
            ("HAVESPACE", [Word::Str(n), Word::Number(size)]) => {
                let n = script_name(n)?;
                self.room_for(account, &n, *size).await?;
                Ok(ok(""))
            }
            ("PUTSCRIPT", [Word::Str(n), Word::Str(text)]) => {
                let n = script_name(n)?;
                let text = script_text(text)?;
                self.room_for(account, &n, text.len() as u64).await?;
                sieve::compile(&text).map_err(|e| no(None, e.to_string()))?;
                store.sieve_put(account, &n, &text).await.map_err(temp)?;
                tracing::info!(user = %self.address(), script = %n, size = text.len(), "sieve script stored");
                Ok(ok(""))
            }
            ("CHECKSCRIPT", [Word::Str(text)]) => {
                let text = script_text(text)?;
                if text.len() as u64 > self.cfg.max_script_size {
                    return Err(no(Some("QUOTA/MAXSIZE"), "Script too large"));
                }
                sieve::compile(&text).map_err(|e| no(None, e.to_string()))?;
                Ok(ok(""))
            }
            ("SETACTIVE", [Word::Str(n)]) => {
                let n = String::from_utf8_lossy(n).into_owned();
                let target = (!n.is_empty()).then_some(n.as_str());
                if let Some(t) = target {
                    // A script stored before a change of the language must still check.
                    let text = store.sieve_get(account, t).await.map_err(temp)?;
                    let text =
                        text.ok_or_else(|| no(Some("NONEXISTENT"), "There is no such script"))?;
                    sieve::compile(&text)
                        .map_err(|e| no(None, format!("The script does not check: {e}")))?;
                }
                match store.sieve_activate(account, target).await {
                    Ok(()) => {
                        tracing::info!(user = %self.address(), script = %n, "sieve script activated");
                        Ok(ok(""))
                    }
                    Err(StoreError::NotFound(_)) => {
                        Err(no(Some("NONEXISTENT"), "There is no such script"))
                    }
                    Err(e) => Err(temp(e)),
                }
            }
            ("DELETESCRIPT", [Word::Str(n)]) => {
                let n = String::from_utf8_lossy(n).into_owned();
                match store.sieve_delete(account, &n).await {
                    Ok(()) => Ok(ok("")),
                    Err(StoreError::NotFound(_)) => {
                        Err(no(Some("NONEXISTENT"), "There is no such script"))
                    }
                    Err(StoreError::InUse(_)) => {
                        Err(no(Some("ACTIVE"), "You may not delete the active script"))
                    }
                    Err(e) => Err(temp(e)),
                }
            }
            ("RENAMESCRIPT", [Word::Str(from), Word::Str(to)]) => {
                let from = String::from_utf8_lossy(from).into_owned();
                let to = script_name(to)?;
                match store.sieve_rename(account, &from, &to).await {
                    Ok(()) => Ok(ok("")),
                    Err(StoreError::NotFound(_)) => {
                        Err(no(Some("NONEXISTENT"), "There is no such script"))
                    }
                    Err(StoreError::Duplicate(_)) => {
                        Err(no(Some("ALREADYEXISTS"), "A script has that name"))
                    }
                    Err(e) => Err(temp(e)),
                }
            }
            (
                "HAVESPACE" | "PUTSCRIPT" | "CHECKSCRIPT" | "SETACTIVE" | "DELETESCRIPT"
                | "RENAMESCRIPT",
                _,
            ) => Err(no(None, format!("Bad arguments to {name}"))),
            _ => Err(no(None, format!("Unknown command {name}"))),
        }
    }

    fn address(&self) -> &str {
        self.user.as_ref().map(|u| u.address.as_str()).unwrap_or("")
    }

    /// RFC 5804 §2.3: room for a script of this name and size.
    async fn room_for(
        &self,
        account: store::AccountId,
        name: &str,
        size: u64,
    ) -> Result<(), Answer> {
        if size > self.cfg.max_script_size {
            return Err(no(
                Some("QUOTA/MAXSIZE"),
                format!(
                    "A script may have {} octets at most",
                    self.cfg.max_script_size
                ),
            ));
        }
        let list = self
            .services
            .store
            .sieve_list(account)
            .await
            .map_err(|e| no(Some("TRYLATER"), e.to_string()))?;
        if !list.iter().any(|s| s.name == name) && list.len() >= self.cfg.max_scripts {
            return Err(no(
                Some("QUOTA/MAXSCRIPTS"),
                format!("You may keep {} scripts at most", self.cfg.max_scripts),
            ));
        }
        Ok(())
    }

    async fn list_scripts(&mut self, out: &mut Vec<u8>) -> Flow {
        let Some(account) = self.user.as_ref().map(|u| u.id) else {
            return self.error(no(None, "Authenticate first"), out);
        };
        match self.services.store.sieve_list(account).await {
            Ok(list) => {
                for s in list {
                    out.extend_from_slice(command::string(&s.name).as_bytes());
                    if s.active {
                        out.extend_from_slice(b" ACTIVE");
                    }
                    out.extend_from_slice(b"\r\n");
                }
                ok("").write(out);
                Flow::Continue
            }
            Err(e) => self.error(no(Some("TRYLATER"), e.to_string()), out),
        }
    }

    async fn get_script(&mut self, args: Vec<Word>, out: &mut Vec<u8>) -> Flow {
        let Some(account) = self.user.as_ref().map(|u| u.id) else {
            return self.error(no(None, "Authenticate first"), out);
        };
        let [Word::Str(name)] = args.as_slice() else {
            return self.error(no(None, "GETSCRIPT takes a script name"), out);
        };
        let name = String::from_utf8_lossy(name).into_owned();
        match self.services.store.sieve_get(account, &name).await {
            Ok(Some(text)) => {
                out.extend_from_slice(format!("{{{}}}\r\n", text.len()).as_bytes());
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
                ok("").write(out);
                Flow::Continue
            }
            Ok(None) => self.error(no(Some("NONEXISTENT"), "There is no such script"), out),
            Err(e) => self.error(no(Some("TRYLATER"), e.to_string()), out),
        }
    }

    /// RFC 5804 §2.1: `AUTHENTICATE "MECH" ["initial response"]`.
    async fn authenticate(&mut self, args: Vec<Word>, out: &mut Vec<u8>) -> Flow {
        if self.user.is_some() {
            return self.error(no(None, "Already authenticated"), out);
        }
        if !self.login_allowed() {
            return self.error(no(Some("ENCRYPT-NEEDED"), "Use STARTTLS first"), out);
        }
        let (mechanism, initial) = match args.as_slice() {
            [mech] => (word_text(mech), None),
            [mech, Word::Str(i)] => (word_text(mech), Some(i.clone())),
            _ => {
                return self.error(
                    no(
                        None,
                        "AUTHENTICATE takes a mechanism and an optional response",
                    ),
                    out,
                );
            }
        };
        let binding = self.tls.as_ref().and_then(|t| t.channel_binding.clone());
        let Some(mechanism) =
            Mechanism::parse(&mechanism, binding.is_some()).filter(|m| *m != Mechanism::Login)
        else {
            return self.error(no(None, "Unsupported mechanism"), out);
        };
        let initial = match initial {
            None => None,
            Some(i) => match B64.decode(&i) {
                Ok(d) => Some(d),
                Err(_) => return self.error(no(None, "Bad base64"), out),
            },
        };
        let mut exchange = Exchange::new(mechanism, binding.as_deref());
        let step = exchange.respond(initial.as_deref());
        self.sasl_step(exchange, step, out).await
    }

    async fn sasl_response(
        &mut self,
        mut exchange: Exchange,
        words: Vec<Word>,
        out: &mut Vec<u8>,
    ) -> Flow {
        let data = match words.as_slice() {
            [Word::Str(s)] if s == b"*" => {
                return self.error(no(None, "Authentication cancelled"), out);
            }
            [Word::Str(s)] => match B64.decode(s) {
                Ok(d) => d,
                Err(_) => return self.error(no(None, "Bad base64"), out),
            },
            _ => return self.error(no(None, "Expected a string"), out),
        };
        let step = exchange.respond(Some(&data));
        self.sasl_step(exchange, step, out).await
    }

    async fn sasl_step(
        &mut self,
        mut exchange: Exchange,
        step: auth::Step,
        out: &mut Vec<u8>,
    ) -> Flow {
        match self
            .services
            .auth
            .advance(self.peer.ip(), &mut exchange, step)
            .await
        {
            Progress::Challenge(data) => {
                out.extend_from_slice(command::string(&B64.encode(data)).as_bytes());
                out.extend_from_slice(b"\r\n");
                self.sasl = Some(Box::new(exchange));
                Flow::Continue
            }
            Progress::Done(Verdict::Success(account)) => {
                tracing::info!(user = %account.address, "managesieve login");
                self.user = Some(account);
                ok("Logged in").write(out);
                Flow::Continue
            }
            Progress::Done(Verdict::Denied { blocked: false }) => {
                self.error(no(None, "Authentication failed"), out)
            }
            Progress::Done(Verdict::Denied { blocked: true } | Verdict::Blocked) => {
                out.extend_from_slice(
                    b"BYE (TRYLATER) \"Too many authentication failures; try again later\"\r\n",
                );
                Flow::Close
            }
            Progress::Done(Verdict::TemporaryFailure) => self.error(
                no(Some("TRYLATER"), "Temporary authentication failure"),
                out,
            ),
            Progress::Malformed => self.error(no(None, "Malformed SASL response"), out),
        }
    }
}

fn word_text(w: &Word) -> String {
    match w {
        Word::Atom(a) => a.clone(),
        Word::Str(s) => String::from_utf8_lossy(s).into_owned(),
        Word::Number(n) => n.to_string(),
    }
}

/// RFC 5804 §1.6: a name is UTF-8 without control characters or the
/// Unicode line and paragraph separators.
fn script_name(raw: &[u8]) -> Result<String, Answer> {
    let name = std::str::from_utf8(raw).map_err(|_| no(None, "A script name is UTF-8"))?;
    if name.is_empty()
        || name.len() > MAX_NAME
        || name
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(no(None, "Bad script name"));
    }
    Ok(name.to_string())
}

/// RFC 5804 §2.6: a script is UTF-8.
fn script_text(raw: &[u8]) -> Result<String, Answer> {
    String::from_utf8(raw.to_vec()).map_err(|_| no(None, "A script is UTF-8 text"))
}

impl net::Session for ManageSieveSession {
    fn greeting(&mut self, out: &mut Vec<u8>) {
        self.capabilities(out);
        ok(format!("{} ManageSieve ready", self.cfg.hostname)).write(out);
    }

    async fn receive(&mut self, input: &mut BytesMut, out: &mut Vec<u8>) -> Flow {
        self.process(input, out).await
    }

    fn tls_started(&mut self, info: TlsInfo) {
        self.tls = Some(info);
        self.capabilities_due = true;
    }

    fn timeout(&self) -> Duration {
        self.cfg.idle_timeout
    }

    fn on_timeout(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"BYE \"Idle for too long\"\r\n");
    }

    fn on_shutdown(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"BYE (TRYLATER) \"Server shutting down\"\r\n");
    }

    /// RFC 5804 §2.2: after the TLS handshake the server speaks first.
    fn wait_event(&mut self) -> impl std::future::Future<Output = ()> + Send {
        let due = self.capabilities_due;
        async move {
            if !due {
                std::future::pending::<()>().await;
            }
        }
    }

    async fn on_event(&mut self, out: &mut Vec<u8>) -> Flow {
        self.capabilities_due = false;
        self.capabilities(out);
        ok("TLS negotiation successful").write(out);
        Flow::Continue
    }
}
