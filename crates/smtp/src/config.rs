//! What an SMTP listener needs to know, with RFC defaults.

use std::time::Duration;

use net::Cidr;

/// Which service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Port 25: mail for our domains from anyone, no AUTH, never a relay.
    Mx,
    /// Ports 587/465 (RFC 6409, RFC 8314): AUTH over TLS, then mail to anywhere.
    Submission,
}

impl Role {
    /// For logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Role::Mx => "mx",
            Role::Submission => "submission",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub hostname: String,
    pub role: Role,
    /// Whether STARTTLS can be offered (a certificate is loaded).
    pub starttls: bool,
    /// RFC 1870 SIZE; Postfix uses 10 MB, Tern 50 MiB.
    pub max_message_size: u64,
    /// RFC 5321 §4.5.3.1.8 asks for at least 100; Postfix allows 1000.
    pub max_recipients: usize,
    /// RFC 5321 §4.5.3.1.4: 512 octets including CRLF.
    pub max_command_line: usize,
    /// Refuse messages with a text line longer than this (CRLF included). None
    /// (the default) accepts them: RFC 5321 §4.5.3.1.6 limits senders to 1000
    /// octets, but §4.5.3.1 asks receivers to impose no limits where they can,
    /// and much legitimate mail has longer lines. Memory stays bounded by the
    /// message size limit.
    pub max_text_line: Option<usize>,
    /// Postfix's header_size_limit (hardening.md C-MM3, C-MM4).
    pub max_header_size: usize,
    /// More Received fields than this is a loop (RFC 5321 §6.3; Postfix hopcount_limit).
    pub max_received: usize,
    /// RFC 5321 §4.5.3.2.7: the server waits at least 5 minutes for a command.
    pub command_timeout: Duration,
    /// Waiting for the next block of message data.
    pub data_timeout: Duration,
    /// After this many errors in a session each reply is delayed by `error_delay`...
    pub soft_error_limit: u32,
    /// ...and after this many the session ends with 421 (C-SM17; Postfix: 10, 20, 1 s).
    pub hard_error_limit: u32,
    pub error_delay: Duration,
    /// Clients allowed to use XCLIENT (Postfix extension).
    pub xclient_trusted: Vec<Cidr>,
    /// ARC-seal mail the MX forwards through an alias (RFC 8617).
    pub arc_seal: bool,
    /// RFC 4865 FUTURERELEASE: the longest hold a submission may ask for.
    pub max_hold: Duration,
    /// RFC 2852 DELIVERBY: the shortest by-time accepted with `R`.
    pub min_deliver_by: Duration,
}

impl SmtpConfig {
    pub fn new(hostname: &str, role: Role) -> SmtpConfig {
        SmtpConfig {
            hostname: hostname.to_string(),
            role,
            starttls: false,
            max_message_size: 50 << 20,
            max_recipients: 1000,
            max_command_line: 512,
            max_text_line: None,
            max_header_size: 100 << 10,
            max_received: 50,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(300),
            soft_error_limit: 10,
            hard_error_limit: 20,
            error_delay: Duration::from_secs(1),
            xclient_trusted: Vec::new(),
            arc_seal: false,
            max_hold: Duration::from_secs(30 * 86_400),
            min_deliver_by: Duration::from_secs(120),
        }
    }
}
