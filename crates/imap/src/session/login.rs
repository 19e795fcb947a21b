//! CAPABILITY, STARTTLS (RFC 9051 §6.2.1), LOGIN (§6.2.3), AUTHENTICATE
//! (§6.2.2, RFC 4959 SASL-IR), ENABLE (RFC 5161), and the IDLE/SASL
//! continuation lines.

use auth::{Exchange, Mechanism, Progress, Verdict};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use net::Flow;

use super::{ImapSession, Mode, Outcome, SessionState};
use crate::error::ImapError;
use crate::response;

impl ImapSession {
    /// RFC 8314 §3 / RFC 9051 §6.2.3: credentials only over TLS, unless the operator
    /// allowed cleartext from loopback clients.
    fn login_allowed(&self) -> bool {
        self.tls.is_some() || (self.cfg.plaintext_on_loopback && self.client_ip().is_loopback())
    }

    /// The TLS connection's channel-binding data (SCRAM -PLUS), if any.
    fn channel_binding(&self) -> Option<&[u8]> {
        self.tls.as_ref()?.channel_binding.as_deref()
    }

    /// What this state offers, each item really implemented.
    pub(super) fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev2", "IMAP4rev1"];
        let auth: Vec<String>;
        if self.state.account().is_none() {
            if self.tls.is_none() && self.cfg.starttls {
                caps.push("STARTTLS");
            }
            if self.login_allowed() {
                auth = Mechanism::offered(self.channel_binding().is_some())
                    .filter(|m| *m != Mechanism::Login)
                    .map(|m| format!("AUTH={}", m.name()))
                    .collect();
                caps.extend(auth.iter().map(String::as_str));
                caps.push("SASL-IR");
            } else {
                caps.push("LOGINDISABLED");
            }
        }
        caps.extend([
            "LITERAL+",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "ID",
            "CHILDREN",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "ESEARCH",
            "SORT",
            "ESORT",
            "THREAD=ORDEREDSUBJECT",
            "THREAD=REFERENCES",
            "CONDSTORE",
            "QRESYNC",
            "BINARY",
            "STATUS=SIZE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
            "METADATA",
            "OBJECTID",
            "SAVEDATE",
            "PREVIEW",
            "SEARCHRES",
            "UTF8=ACCEPT",
            "ACL",
            "RIGHTS=texk",
            "LIST-MYRIGHTS",
            "NOTIFY",
        ]);
        if !self.compressed && self.state.account().is_some() {
            caps.push("COMPRESS=DEFLATE");
        }
        let mut text = caps.join(" ");
        text.push_str(&format!(" APPENDLIMIT={}", self.cfg.limits.max_append));
        text
    }

    pub(super) fn starttls(&self) -> Result<(), ImapError> {
        if self.tls.is_some() {
            return Err(ImapError::AlreadyTls);
        }
        if !self.cfg.starttls {
            return Err(ImapError::NoTls);
        }
        Ok(())
    }

    pub(super) async fn login(
        &mut self,
        user: &str,
        password: &str,
        _out: &mut Vec<u8>,
    ) -> Outcome {
        if !self.login_allowed() {
            // C-TLS5: refused without looking at the password.
            return Err(ImapError::PrivacyRequired);
        }
        let verdict = self
            .services
            .auth
            .check_password(self.client_ip(), user, password)
            .await;
        self.logged_in(verdict)
    }

    fn logged_in(&mut self, verdict: Verdict) -> Outcome {
        match verdict {
            Verdict::Success(account) => {
                let limit = self.cfg.max_per_user_ip;
                let Some(permit) =
                    self.services
                        .user_ip
                        .try_acquire(account.id, self.client_ip(), limit)
                else {
                    return Err(ImapError::TooManySessions);
                };
                self._permit = Some((
                    permit,
                    net::Gauged::new(metrics::gauge!("tern_imap_sessions")),
                ));
                self.state = SessionState::Authenticated(account);
                Ok(format!("[CAPABILITY {}] Logged in", self.capabilities()))
            }
            Verdict::Denied { blocked: false } => Err(ImapError::AuthFailed),
            Verdict::Denied { blocked: true } | Verdict::Blocked => Err(ImapError::AuthBlocked),
            Verdict::TemporaryFailure => Err(ImapError::AuthTemporary),
        }
    }

    pub(super) async fn authenticate_start(
        &mut self,
        tag: String,
        mechanism: &str,
        initial: Option<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> Flow {
        if !self.login_allowed() {
            return self.fail(&tag, ImapError::PrivacyRequired, out);
        }
        if self.services.auth.is_blocked(self.client_ip()).await {
            return self.fail(&tag, ImapError::AuthBlocked, out);
        }
        let binding = self.channel_binding();
        let Some(mechanism) =
            Mechanism::parse(mechanism, binding.is_some()).filter(|m| *m != Mechanism::Login)
        else {
            return self.fail(&tag, ImapError::UnknownMechanism, out);
        };
        // RFC 4959: "=" is an empty initial response.
        let initial = match initial.as_deref() {
            None => None,
            Some(b"=") => Some(Vec::new()),
            Some(text) => match B64.decode(text) {
                Ok(d) => Some(d),
                Err(_) => return self.fail(&tag, ImapError::Syntax("bad base64".into()), out),
            },
        };
        let mut exchange = Exchange::new(mechanism, binding);
        let step = exchange.respond(initial.as_deref());
        self.authenticate_step(tag, exchange, step, out).await
    }

    async fn authenticate_step(
        &mut self,
        tag: String,
        mut exchange: Exchange,
        step: auth::Step,
        out: &mut Vec<u8>,
    ) -> Flow {
        match self
            .services
            .auth
            .advance(self.client_ip(), &mut exchange, step)
            .await
        {
            Progress::Challenge(data) => {
                response::untagged_continuation(out, &B64.encode(data));
                self.mode = Mode::Authenticate {
                    tag,
                    exchange: Box::new(exchange),
                };
                Flow::Continue
            }
            Progress::Done(verdict) => {
                let outcome = self.logged_in(verdict);
                self.finish(&tag, outcome, out)
            }
            Progress::Malformed => self.fail(
                &tag,
                ImapError::Syntax("malformed SASL response".into()),
                out,
            ),
        }
    }

    /// A line while in IDLE (DONE) or AUTHENTICATE (a SASL response or "*").
    pub(super) async fn continuation(&mut self, line: Vec<u8>, out: &mut Vec<u8>) -> Flow {
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Idle { tag } => self.idle_done(tag, &line, out).await,
            Mode::Authenticate { tag, mut exchange } => {
                if line == b"*" {
                    return self.fail(&tag, ImapError::AuthCancelled, out);
                }
                let Ok(data) = B64.decode(&line) else {
                    return self.fail(&tag, ImapError::Syntax("bad base64".into()), out);
                };
                let step = exchange.respond(Some(&data));
                self.authenticate_step(tag, *exchange, step, out).await
            }
            Mode::Command => Flow::Continue,
        }
    }

    /// RFC 5161 ENABLE: IMAP4rev2 (RFC 9051 §6.3.1), CONDSTORE, QRESYNC (RFC 7162),
    /// UTF8=ACCEPT (RFC 6855).
    pub(super) fn enable(&mut self, caps: &[String], out: &mut Vec<u8>) -> String {
        let mut enabled = Vec::new();
        for c in caps {
            let newly = match c.as_str() {
                "IMAP4REV2" => !std::mem::replace(&mut self.rev2, true),
                // RFC 6855 §3: UTF-8 in mailbox names and strings.
                "UTF8=ACCEPT" => !std::mem::replace(&mut self.utf8, true),
                "CONDSTORE" => !std::mem::replace(&mut self.condstore, true),
                "QRESYNC" => {
                    // QRESYNC implies CONDSTORE (RFC 7162 §3.2.3).
                    self.condstore = true;
                    !std::mem::replace(&mut self.qresync, true)
                }
                _ => false,
            };
            if newly {
                enabled.push(if c == "IMAP4REV2" {
                    "IMAP4rev2"
                } else {
                    c.as_str()
                });
            }
        }
        response::untagged(out, format!("ENABLED {}", enabled.join(" ")).trim_end());
        "ENABLE completed".into()
    }
}
