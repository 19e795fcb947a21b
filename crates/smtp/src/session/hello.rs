//! HELO, EHLO (RFC 5321 §4.1.1.1), STARTTLS (RFC 3207) and XCLIENT (Postfix).

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use super::{Helo, SmtpSession, is_submission};
use crate::command::Param;
use crate::error::SmtpError;
use crate::reply::{Enhanced, Reply};

impl SmtpSession {
    /// HELO or EHLO: a new session state (RFC 5321 §4.1.4: like RSET), and for EHLO
    /// the extensions this state offers, each one really implemented.
    pub(super) fn hello(&mut self, name: &str, extended: bool) -> Reply {
        self.tx = None;
        self.helo = Some(Helo {
            name: name.to_string(),
            extended,
        });
        let greeting = format!(
            "{} Hello {} [{}]",
            self.cfg.hostname,
            crate::command::truncate(name),
            self.client_ip()
        );
        if !extended {
            return Reply::bare(250, greeting);
        }
        let mut lines: Vec<Cow<'static, str>> = vec![greeting.into()];
        lines.push("PIPELINING".into());
        lines.push(format!("SIZE {}", self.cfg.max_message_size).into());
        lines.push("8BITMIME".into());
        lines.push("SMTPUTF8".into());
        lines.push("ENHANCEDSTATUSCODES".into());
        lines.push("CHUNKING".into());
        lines.push("DSN".into());
        // RFC 9422: the one limit Tern has per transaction.
        lines.push(format!("LIMITS RCPTMAX={}", self.cfg.max_recipients).into());
        lines.push(format!("DELIVERBY {}", self.cfg.min_deliver_by.as_secs()).into());
        lines.push("MT-PRIORITY MIXER".into());
        if self.future_release_offered() {
            // RFC 4865 §3: the longest interval, and the latest date-time.
            let max = self.cfg.max_hold.as_secs();
            let until = message::date::unix_now() + max as i64;
            lines
                .push(format!("FUTURERELEASE {max} {}", message::date::rfc3339_text(until)).into());
        }
        if self.cfg.starttls && self.tls.is_none() {
            lines.push("STARTTLS".into());
        }
        if self.require_tls_offered() {
            lines.push("REQUIRETLS".into());
        }
        // RFC 8314 §3 / RFC 4954 §4: AUTH only over TLS, only on submission (C-TLS5, C-AU7).
        if is_submission(&self.cfg) && self.tls.is_some() && self.user.is_none() {
            let mechs: Vec<&str> = auth::Mechanism::offered(self.channel_binding().is_some())
                .map(|m| m.name())
                .collect();
            lines.push(format!("AUTH {}", mechs.join(" ")).into());
        }
        if self.xclient_allowed() {
            lines.push("XCLIENT ADDR PORT NAME HELO PROTO".into());
        }
        Reply::multi(250, lines)
    }

    /// RFC 3207 §4: 220, then the handshake; the driver discards what the client
    /// pipelined after the command (C-TLS1) and calls `tls_started`.
    pub(super) fn starttls(&mut self) -> Result<Reply, SmtpError> {
        if self.tls.is_some() {
            return Err(SmtpError::AlreadyTls);
        }
        if !self.cfg.starttls {
            return Err(SmtpError::NotImplemented);
        }
        if self.tx.is_some() {
            return Err(SmtpError::BadSequence("STARTTLS inside a mail transaction"));
        }
        Ok(Reply::new(220, Enhanced(2, 0, 0), "Ready to start TLS"))
    }

    /// RFC 4865 §6: holding mail is for authenticated submission only.
    /// RFC 8689 §2: REQUIRETLS only on a session that is itself over TLS
    /// (its MAIL parameter elsewhere is one of an extension not offered).
    pub(super) fn require_tls_offered(&self) -> bool {
        self.tls.is_some()
    }

    pub(super) fn future_release_offered(&self) -> bool {
        is_submission(&self.cfg) && self.user.is_some()
    }

    fn xclient_allowed(&self) -> bool {
        self.cfg
            .xclient_trusted
            .iter()
            .any(|c| c.contains(self.client_ip()))
    }

    /// XCLIENT (Postfix XCLIENT_README): a trusted proxy passes on the real client's
    /// address and HELO. The session then starts over with a new greeting.
    pub(super) fn xclient(&mut self, attrs: &[Param<'_>]) -> Result<Reply, SmtpError> {
        if !self.xclient_allowed() {
            return Err(SmtpError::NotImplemented);
        }
        if self.tx.is_some() {
            return Err(SmtpError::BadSequence("XCLIENT inside a mail transaction"));
        }
        let mut ip = self.client_ip();
        let mut port = self.peer.port();
        let mut helo = None;
        let mut extended = None;
        for a in attrs {
            // Postfix XCLIENT_README: attribute values are xtext (RFC 1891).
            // xtext can encode CR LF and other controls; no value may hold
            // one (it would split the Received field the HELO goes into).
            let value = a
                .value
                .map(message::xtext::decode)
                .filter(|v| !v.chars().any(char::is_control))
                .ok_or_else(|| SmtpError::BadParameter(a.keyword.clone()))?;
            let value = value.as_str();
            // "[UNAVAILABLE]" and "[TEMPUNAVAIL]" mean the proxy does not know: keep ours.
            let unknown = value.eq_ignore_ascii_case("[UNAVAILABLE]")
                || value.eq_ignore_ascii_case("[TEMPUNAVAIL]");
            match a.keyword.as_str() {
                _ if unknown => {}
                "ADDR" => {
                    let v = value
                        .strip_prefix("IPV6:")
                        .or_else(|| value.strip_prefix("ipv6:"))
                        .unwrap_or(value);
                    ip = v
                        .parse::<IpAddr>()
                        .map_err(|_| SmtpError::BadParameter("ADDR".into()))?;
                }
                "PORT" => {
                    port = value
                        .parse()
                        .map_err(|_| SmtpError::BadParameter("PORT".into()))?
                }
                "HELO" => helo = Some(value.to_string()),
                "PROTO" if value.eq_ignore_ascii_case("ESMTP") => extended = Some(true),
                "PROTO" if value.eq_ignore_ascii_case("SMTP") => extended = Some(false),
                "NAME" => {}
                _ => return Err(SmtpError::BadParameter(a.keyword.clone())),
            }
        }
        tracing::info!(client = %ip, "XCLIENT");
        self.peer = SocketAddr::new(ip, port);
        self.helo = helo.map(|name| Helo {
            name,
            extended: extended.unwrap_or(true),
        });
        self.user = None;
        self.owned.clear();
        Ok(Reply::bare(
            220,
            format!("{} ESMTP Tern", self.cfg.hostname),
        ))
    }
}
