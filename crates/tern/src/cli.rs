//! The command line (interface.md "Administration").

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tern",
    version,
    about = "Tern: a complete Internet mail server"
)]
pub struct Cli {
    /// The configuration file. Default: ./tern.toml if it exists, else the development setup.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every listener the configuration names, in one process.
    Serve {
        /// Log only warnings and errors (the summary still prints).
        #[arg(long)]
        quiet: bool,
        /// The log level (error, warn, info, debug, trace), over `log_level`
        /// of the configuration.
        #[arg(long, value_name = "LEVEL", conflicts_with = "quiet",
              value_parser = ["error", "warn", "info", "debug", "trace"])]
        log_level: Option<String>,
    },
    /// Manage the domains Tern receives mail for.
    #[command(subcommand)]
    Domain(DomainCmd),
    /// Manage accounts (mailboxes with a password).
    #[command(subcommand)]
    Account(AccountCmd),
    /// Manage aliases (addresses that deliver to other addresses).
    #[command(subcommand)]
    Alias(AliasCmd),
    /// What to publish in DNS.
    #[command(subcommand)]
    Dns(DnsCmd),
    /// DKIM signing keys.
    #[command(subcommand)]
    Dkim(DkimCmd),
    /// The outbound queue.
    #[command(subcommand)]
    Queue(QueueCmd),
    /// DMARC aggregate reports: those received, and sending ours.
    #[command(subcommand)]
    Report(ReportCmd),
    /// The spam filter: train it, ask it.
    #[command(subcommand)]
    Spam(SpamCmd),
    /// Greylisting (RFC 6647): the triplets seen.
    #[command(subcommand)]
    Greylist(GreylistCmd),
    /// Users' Sieve filters (RFC 5228).
    #[command(subcommand)]
    Sieve(SieveCmd),
    /// Users' public keys (OpenPGP, S/MIME), served by WKD and printed
    /// as OPENPGPKEY / SMIMEA records by `dns records`.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Bring mail into an account from a Maildir (with its folders, flags
    /// and Dovecot keywords), an mbox file, or another IMAP server
    /// (imaps://USER@HOST[:PORT], or imap:// with STARTTLS: every folder,
    /// flags, dates); run again, it skips what is already there.
    Import {
        address: String,
        /// A Maildir, an mbox, or imaps://USER@HOST[:PORT].
        source: String,
        /// The source server's password (default: read from standard input).
        #[arg(long)]
        password: Option<String>,
        /// Trust roots (PEM) for the source server's certificate, instead
        /// of the system's.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Accept any certificate from the source server (an old server's
        /// self-signed one); the password is then exposed to a man in the middle.
        #[arg(long, conflicts_with = "ca_file")]
        insecure: bool,
    },
    /// Write an account's mail out as a Maildir (folders as .Name, flags
    /// and keywords kept).
    Export { address: String, dir: PathBuf },
    /// Bring the store's schema up to date (what `serve` does first, after
    /// a checked snapshot); with --check, only say what would change. With
    /// `--to postgres`: copy the SQLite store of the data directory into
    /// the (empty) PostgreSQL database `[store]` names, checked; stop the
    /// server first.
    Migrate {
        #[arg(long)]
        check: bool,
        #[arg(long, value_enum, conflicts_with = "check")]
        to: Option<MigrateTarget>,
    },
    /// A consistent copy of the store into the empty directory DIR, while
    /// the server runs; checked before it is called a backup.
    Backup { dir: PathBuf },
    /// Put a backup back into an empty data directory (stop the server
    /// first; the next start uses it).
    Restore { dir: PathBuf },
    /// Explain a message: its hops and delays, envelope against header,
    /// the verdicts recorded, where it is stored. MESSAGE is a file or an
    /// EMAILID (E123).
    Trace {
        message: String,
        /// Print it as JSON, for tools.
        #[arg(long)]
        json: bool,
        /// Do not check SPF, DKIM, DMARC and ARC again now (no DNS asked).
        #[arg(long)]
        no_recheck: bool,
    },
    /// Write a man page for tern and for each of its commands into DIR.
    Man { dir: PathBuf },
    /// What happened to the messages from or to ADDRESS, or to one message
    /// (WHAT: a Message-ID, the SMTP id of "queued as", a queue id):
    /// accepted or refused and why, where each copy was filed, each
    /// delivery attempt (MX, IP, TLS, reply), bounces.
    History {
        what: String,
        /// Print it as JSON, for tools.
        #[arg(long)]
        json: bool,
        /// At most this many messages, the most recent.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Publish FILE (an OpenPGP public key, armored or binary, or an
    /// S/MIME certificate, PEM or DER) for ADDRESS; it must name ADDRESS.
    /// Replaces ADDRESS's key of that kind.
    Put { address: String, file: PathBuf },
    /// ADDRESS's published keys: kind, fingerprint, when.
    List { address: String },
    /// Withdraw ADDRESS's key of KIND (openpgp or smime).
    Remove { address: String, kind: String },
    /// Store ADDRESS's new mail encrypted (on) to its OpenPGP key, else
    /// its S/MIME certificate, or as it comes (off). Readable header
    /// fields stay readable.
    Encrypt { address: String, state: String },
}

#[derive(Debug, Subcommand)]
pub enum SieveCmd {
    /// ADDRESS's scripts, the active one marked.
    List { address: String },
    /// Store FILE as ADDRESS's script NAME (checked first: an error names
    /// its line and column); --activate makes it the one that runs.
    Put {
        address: String,
        name: String,
        file: PathBuf,
        #[arg(long)]
        activate: bool,
    },
    /// Make NAME the script that runs for ADDRESS; without NAME, none runs.
    Activate {
        address: String,
        name: Option<String>,
    },
    /// Remove ADDRESS's script NAME (not the active one).
    Delete { address: String, name: String },
    /// What the script in FILE would do with MESSAGE, one action a line
    /// (keep, fileinto "X", redirect ADDR, ...), without delivering it.
    Test {
        file: PathBuf,
        message: PathBuf,
        /// The envelope sender.
        #[arg(long, default_value = "sender@example.org")]
        from: String,
        /// The envelope recipient (an account's mailboxes and scripts answer
        /// the script's questions).
        #[arg(long, default_value = "user@example.org")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SpamCmd {
    /// Teach ADDRESS's filter (and the shared one) that these messages are
    /// spam, or ham. PATH: a message file, a directory, a Maildir or an mbox.
    Train {
        address: String,
        #[arg(long, conflicts_with = "ham", required_unless_present = "ham")]
        spam: bool,
        #[arg(long)]
        ham: bool,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// What the filter makes of messages for ADDRESS: the score, where it
    /// would go, the rules that fired and the strongest tokens.
    Classify {
        address: String,
        #[arg(required = true, value_name = "MESSAGE")]
        messages: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GreylistCmd {
    /// The triplets (client network, sender, recipient), newest first:
    /// waiting, or passed.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// One line per report received at our report addresses: DMARC
    /// aggregate reports and TLS reports (RFC 8460).
    List,
    /// One received report: who sent mail as our domain, from which IPs, with
    /// which SPF/DKIM/DMARC outcome; or, for a TLS report, how senders' TLS
    /// to our MX went and why sessions failed.
    Show { id: i64 },
    /// Send the DMARC aggregate and TLS reports that are due now (everything recorded
    /// before the current reporting interval began).
    Send,
}

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Receive mail for DOMAIN.
    Add { domain: String },
    /// List the domains.
    List,
    /// Stop receiving mail for DOMAIN (refused while it has accounts or aliases).
    Remove { domain: String },
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Create an account and its mailboxes.
    Add {
        address: String,
        /// The password; without it, one line is read from standard input.
        #[arg(long)]
        password: Option<String>,
    },
    /// Set an account's password.
    Passwd {
        address: String,
        /// The new password; without it, one line is read from standard input.
        #[arg(long)]
        password: Option<String>,
    },
    /// List the accounts.
    List,
    /// Delete an account with all its mail.
    Remove { address: String },
    /// Stop the account's outgoing mail: what it sends (and has queued)
    /// waits until `release` (what the compromised-account check does).
    Hold { address: String },
    /// Let a held account's mail go again.
    Release { address: String },
    /// Show the account's quota and usage; with options, set it first
    /// (RFC 9208). SIZE takes K, M or G; `none` removes a limit.
    Quota {
        address: String,
        /// Octets of all its messages, e.g. 2G.
        #[arg(long)]
        storage: Option<String>,
        /// Number of messages.
        #[arg(long)]
        messages: Option<String>,
    },
    /// Bearer tokens the account's programs sign in to JMAP with instead
    /// of the password (RFC 6750).
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token named NAME and print it (only this once: Tern keeps
    /// only its digest).
    Add { address: String, name: String },
    /// The account's tokens, by name, with when each was issued.
    List { address: String },
    /// Revoke the token named NAME: programs using it are refused at once.
    Remove { address: String, name: String },
}

#[derive(Debug, Subcommand)]
pub enum AliasCmd {
    /// Deliver mail for ADDRESS (or @DOMAIN, a catch-all) to the targets.
    Add {
        address: String,
        /// Comma-separated addresses, local or remote.
        targets: String,
    },
    /// List the aliases.
    List,
    /// Delete an alias.
    Remove { address: String },
}

#[derive(Debug, Subcommand)]
pub enum DnsCmd {
    /// Print the records DOMAIN needs, as zone-file lines.
    Records { domain: String },
    /// Ask the DNS for each record DOMAIN needs: OK, or what is wrong and
    /// the line to publish; exits non-zero when something required is wrong.
    Check { domain: String },
}

#[derive(Debug, Subcommand)]
pub enum DkimCmd {
    /// New keys (RSA and Ed25519) under new selectors: published at once, signing
    /// after `[dkim] rotation_delay`; the old keys stay published.
    Rotate { domain: String },
    /// The domain's keys and which of them sign.
    List { domain: String },
}

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// One line per queued message.
    List,
    /// One message: its recipients and every delivery attempt.
    Show { id: i64 },
    /// Try again now: one message, or with --all every queued message.
    Retry {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        #[arg(long)]
        all: bool,
    },
    /// Remove a message from the queue without a bounce.
    Delete { id: i64 },
}

/// Where `tern migrate --to` copies a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateTarget {
    Postgres,
}
