//! `tern import ADDRESS imaps://USER@HOST[:PORT]` (or `imap://`, then
//! STARTTLS, required): an account's mail copied in from another IMAP
//! server, every selectable folder with its flags and keywords and each
//! message's internal date. The source is only read (EXAMINE, BODY.PEEK:
//! nothing is marked seen there). The server's certificate is checked
//! (the system's roots, or `--ca-file`); `--insecure` accepts any, for an
//! old server with a self-signed certificate. Folders the source marks
//! \Sent, \Drafts, \Junk, \Trash or \Archive (RFC 6154) land in this
//! account's folder of the same use. Run again, it copies only what is
//! not there yet (the same rule as a file import).

use std::sync::Arc;
use std::time::Duration;

use imap::client::{Fetched, Token};
use store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::admin::AdminError;
use crate::mailbox_files::{Found, Importer};

type Result<T> = std::result::Result<T, AdminError>;

/// How long the source may take to answer anything.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The largest response read (a message with its FETCH data).
const MAX_RESPONSE: usize = 256 << 20;
/// Messages fetched per command, and octets at most (by RFC822.SIZE).
const FETCH_MESSAGES: usize = 100;
const FETCH_OCTETS: u64 = 32 << 20;

/// Where to copy from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub implicit_tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
}

/// `imaps://USER@HOST[:PORT]` or `imap://USER@HOST[:PORT]` (RFC 5092's
/// server part; the user percent-encoded, as `alice%40example.org`).
pub fn parse_url(url: &str) -> Option<Source> {
    let (implicit_tls, rest) = match url.split_once("://")? {
        (scheme, rest) if scheme.eq_ignore_ascii_case("imaps") => (true, rest),
        (scheme, rest) if scheme.eq_ignore_ascii_case("imap") => (false, rest),
        _ => return None,
    };
    let rest = rest.trim_end_matches('/');
    let (user, server) = rest.rsplit_once('@')?;
    let user = web::percent_decode(user)?;
    let (host, port) = match server.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || server.starts_with('[') => (h, p.parse().ok()?),
        _ => (server, if implicit_tls { 993 } else { 143 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if user.is_empty() || host.is_empty() {
        return None;
    }
    Some(Source {
        implicit_tls,
        host: host.to_string(),
        port,
        user,
    })
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Between the two, during the handshake.
    Upgrading,
}

/// A session with the source server.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    tag: u32,
}

impl Conn {
    async fn read(&mut self) -> Result<usize> {
        let mut chunk = [0u8; 64 << 10];
        let read = async {
            match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk).await,
                Stream::Tls(s) => s.read(&mut chunk).await,
                Stream::Upgrading => Ok(0),
            }
        };
        let n = tokio::time::timeout(TIMEOUT, read)
            .await
            .map_err(|_| AdminError("the source server stopped answering".into()))?
            .map_err(|e| AdminError(format!("reading from the source server: {e}")))?;
        if n == 0 {
            return Err(AdminError("the source server closed the connection".into()));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let write = async {
            match &mut self.stream {
                Stream::Plain(s) => s.write_all(bytes).await,
                Stream::Tls(s) => s.write_all(bytes).await,
                Stream::Upgrading => Err(std::io::ErrorKind::NotConnected.into()),
            }
        };
        tokio::time::timeout(TIMEOUT, write)
            .await
            .map_err(|_| AdminError("the source server stopped reading".into()))?
            .map_err(|e| AdminError(format!("writing to the source server: {e}")))
    }

    /// The next whole response (literals included), without its CRLF.
    async fn response(&mut self) -> Result<Vec<u8>> {
        loop {
            match imap::client::response_len(&self.buf, MAX_RESPONSE).map_err(AdminError)? {
                Some(n) => {
                    let mut r: Vec<u8> = self.buf.drain(..n).collect();
                    r.truncate(n - 2);
                    return Ok(r);
                }
                None => {
                    self.read().await?;
                }
            }
        }
    }

    /// Send a command; its untagged responses (tokens) once it completes
    /// OK; NO or BAD is an error naming the command.
    async fn command(&mut self, what: &str, line: &str) -> Result<Vec<Vec<Token>>> {
        let tag = self.send(line).await?;
        self.complete(&tag, what).await
    }

    /// Send a command line under a new tag; the tag.
    async fn send(&mut self, line: &str) -> Result<String> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.write(format!("{tag} {line}\r\n").as_bytes()).await?;
        Ok(tag)
    }

    /// The untagged responses until `tag` completes OK; NO or BAD is an
    /// error naming `what`.
    async fn complete(&mut self, tag: &str, what: &str) -> Result<Vec<Vec<Token>>> {
        let mut untagged = Vec::new();
        loop {
            let r = self.response().await?;
            if let Some(rest) = r.strip_prefix(format!("{tag} ").as_bytes()) {
                let rest = String::from_utf8_lossy(rest);
                return match rest.get(..2).map(|s| s.eq_ignore_ascii_case("OK")) {
                    Some(true) => Ok(untagged),
                    _ => Err(AdminError(format!(
                        "the source server refused {what}: {rest}"
                    ))),
                };
            }
            if r.starts_with(b"+") {
                return Err(AdminError(format!(
                    "the source server wants more for {what}"
                )));
            }
            untagged.push(imap::client::tokens(&r).map_err(AdminError)?);
        }
    }

    async fn capabilities(&mut self) -> Result<Vec<String>> {
        let responses = self.command("CAPABILITY", "CAPABILITY").await?;
        Ok(responses
            .iter()
            .filter(|t| t.get(1).and_then(Token::atom) == Some("CAPABILITY"))
            .flat_map(|t| {
                t[2..]
                    .iter()
                    .filter_map(|c| c.atom().map(str::to_ascii_uppercase))
            })
            .collect())
    }
}

async fn connect(source: &Source, tls: Arc<rustls::ClientConfig>) -> Result<Conn> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        TcpStream::connect((source.host.as_str(), source.port)),
    )
    .await
    .map_err(|_| AdminError(format!("{}:{}: no answer", source.host, source.port)))?
    .map_err(|e| AdminError(format!("{}:{}: {e}", source.host, source.port)))?;
    let mut conn = Conn {
        stream: Stream::Plain(tcp),
        buf: Vec::new(),
        tag: 0,
    };
    if source.implicit_tls {
        conn.stream = Stream::Tls(Box::new(handshake(&mut conn, source, tls).await?));
        greeting(&mut conn).await?;
    } else {
        greeting(&mut conn).await?;
        // RFC 9051 §6.2.1: the password never goes in clear.
        conn.command("STARTTLS", "STARTTLS").await?;
        conn.stream = Stream::Tls(Box::new(handshake(&mut conn, source, tls).await?));
    }
    Ok(conn)
}

async fn greeting(conn: &mut Conn) -> Result<()> {
    let g = conn.response().await?;
    if !g.starts_with(b"* OK") {
        return Err(AdminError(format!(
            "the source server greeted with: {}",
            String::from_utf8_lossy(&g)
        )));
    }
    Ok(())
}

async fn handshake(
    conn: &mut Conn,
    source: &Source,
    tls: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from(source.host.clone())
        .map_err(|e| AdminError(format!("{}: {e}", source.host)))?;
    let Stream::Plain(tcp) = std::mem::replace(&mut conn.stream, Stream::Upgrading) else {
        return Err(AdminError("TLS is already on".into()));
    };
    tokio::time::timeout(TIMEOUT, TlsConnector::from(tls).connect(name, tcp))
        .await
        .map_err(|_| AdminError("the TLS handshake timed out".into()))?
        .map_err(|e| AdminError(format!("TLS with {}: {e}", source.host)))
}

pub async fn import(
    store: Arc<dyn Store>,
    address: &str,
    url: &str,
    password: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<()> {
    let source = parse_url(url).ok_or_else(|| {
        AdminError(format!(
            "{url}: not imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT]"
        ))
    })?;
    let mut importer = Importer::start(store, address).await?;
    let mut conn = connect(&source, tls).await?;
    login(&mut conn, &source.user, password).await?;
    let capabilities = conn.capabilities().await?;
    let utf8 = capabilities.iter().any(|c| c == "UTF8=ACCEPT");
    if utf8 {
        conn.command("ENABLE", "ENABLE UTF8=ACCEPT").await?;
    }
    let ours = special_folders(&importer).await?;
    let listed = conn.command("LIST", "LIST \"\" \"*\"").await?;
    for l in listed.iter().filter_map(|t| imap::client::listed(t)) {
        let attributes: Vec<String> = l
            .attributes
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect();
        if attributes
            .iter()
            .any(|a| a == "\\noselect" || a == "\\nonexistent")
        {
            continue;
        }
        let folder = our_folder(&l, utf8, &attributes, &ours);
        copy_folder(&mut conn, &l.name, &folder, &mut importer).await?;
    }
    let _ = conn.command("LOGOUT", "LOGOUT").await;
    importer.finish().await
}

/// AUTHENTICATE PLAIN when offered (any octets in the password), else LOGIN.
async fn login(conn: &mut Conn, user: &str, password: &str) -> Result<()> {
    let capabilities = conn.capabilities().await?;
    if capabilities.iter().any(|c| c == "AUTH=PLAIN") {
        use base64::Engine;
        let plain =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        let tag = conn.send("AUTHENTICATE PLAIN").await?;
        let cont = conn.response().await?;
        if !cont.starts_with(b"+") {
            return Err(AdminError(format!(
                "the source server refused AUTHENTICATE: {}",
                String::from_utf8_lossy(&cont)
            )));
        }
        conn.write(format!("{plain}\r\n").as_bytes()).await?;
        return conn.complete(&tag, "the login").await.map(drop);
    }
    let line = format!(
        "LOGIN {} {}",
        imap::client::quote(user),
        imap::client::quote(password)
    );
    conn.command("the login", &line).await.map(drop)
}

/// This account's folders by special use (`\sent` -> "Sent").
async fn special_folders(importer: &Importer) -> Result<Vec<(String, String)>> {
    Ok(importer
        .store()
        .mailboxes(importer.account())
        .await?
        .into_iter()
        .filter_map(|m| Some((m.special_use?.to_ascii_lowercase(), m.name)))
        .collect())
}

/// Where a source folder goes here: INBOX, our folder of the same special
/// use, or its name with `/` as the hierarchy delimiter (without the
/// `INBOX.` some servers put before every folder).
fn our_folder(
    l: &imap::client::Listed,
    utf8: bool,
    attributes: &[String],
    ours: &[(String, String)],
) -> String {
    if l.name.eq_ignore_ascii_case("INBOX") {
        return "INBOX".into();
    }
    for (usage, name) in ours {
        if attributes.contains(usage) {
            return name.clone();
        }
    }
    let name = match utf8 {
        true => l.name.clone(),
        false => imap::mutf7::decode(&l.name).unwrap_or_else(|| l.name.clone()),
    };
    let name = match l.delimiter {
        Some(d) if d != '/' => name.replace('/', "_").replace(d, "/"),
        _ => name,
    };
    match name.get(..6) {
        Some(prefix) if prefix.eq_ignore_ascii_case("INBOX/") => name[6..].to_string(),
        _ => name,
    }
}

async fn copy_folder(
    conn: &mut Conn,
    name: &str,
    folder: &str,
    importer: &mut Importer,
) -> Result<()> {
    conn.command("EXAMINE", &format!("EXAMINE {}", imap::client::quote(name)))
        .await?;
    let sizes: Vec<(u32, u64)> = conn
        .command("FETCH", "UID FETCH 1:* (UID RFC822.SIZE)")
        .await?
        .iter()
        .filter_map(|t| {
            let f = imap::client::fetched(t)?;
            let size = match &t[3] {
                Token::List(items) => items
                    .chunks(2)
                    .find(|p| {
                        p[0].atom()
                            .is_some_and(|a| a.eq_ignore_ascii_case("RFC822.SIZE"))
                    })
                    .and_then(|p| p.get(1)?.atom()?.parse().ok()),
                _ => None,
            };
            Some((f.uid?, size.unwrap_or(0)))
        })
        .collect();
    for batch in batches(&sizes) {
        let set: Vec<String> = batch.iter().map(u32::to_string).collect();
        let line = format!(
            "UID FETCH {} (UID FLAGS INTERNALDATE BODY.PEEK[])",
            set.join(",")
        );
        for t in conn.command("FETCH", &line).await? {
            let Some(Fetched {
                flags,
                internal_date,
                body: Some(raw),
                ..
            }) = imap::client::fetched(&t)
            else {
                continue;
            };
            let flags = flags
                .into_iter()
                .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
                .collect();
            importer
                .add(Found {
                    folder: folder.to_string(),
                    raw,
                    flags,
                    date: internal_date.unwrap_or_else(message::date::unix_now),
                })
                .await?;
        }
    }
    Ok(())
}

/// UIDs in groups of at most FETCH_MESSAGES messages and FETCH_OCTETS.
fn batches(sizes: &[(u32, u64)]) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    let mut octets = 0;
    for &(uid, size) in sizes {
        let full = out
            .last()
            .is_none_or(|b| b.len() >= FETCH_MESSAGES || octets + size > FETCH_OCTETS);
        if full {
            out.push(Vec::new());
            octets = 0;
        }
        octets += size;
        if let Some(b) = out.last_mut() {
            b.push(uid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_urls() {
        assert_eq!(
            parse_url("imaps://alice%40example.org@imap.example.org"),
            Some(Source {
                implicit_tls: true,
                host: "imap.example.org".into(),
                port: 993,
                user: "alice@example.org".into()
            })
        );
        let s = parse_url("imap://bob@[::1]:1143/").unwrap();
        assert_eq!(
            (s.implicit_tls, s.host.as_str(), s.port),
            (false, "::1", 1143)
        );
        assert_eq!(parse_url("imap://bob@host:x"), None);
        assert_eq!(parse_url("pop3://bob@host"), None);
        assert_eq!(parse_url("imaps://host"), None);
    }

    #[test]
    fn source_folders_land_here() {
        let ours = vec![("\\sent".to_string(), "Sent".to_string())];
        let at = |name: &str, delimiter: Option<char>, attributes: &[&str], utf8: bool| {
            let l = imap::client::Listed {
                attributes: attributes.iter().map(|a| a.to_string()).collect(),
                delimiter,
                name: name.into(),
            };
            let lower: Vec<String> = attributes.iter().map(|a| a.to_ascii_lowercase()).collect();
            our_folder(&l, utf8, &lower, &ours)
        };
        assert_eq!(at("inbox", Some('.'), &[], false), "INBOX");
        assert_eq!(at("Sent Items", Some('/'), &["\\Sent"], false), "Sent");
        assert_eq!(at("INBOX.Lists.rust", Some('.'), &[], false), "Lists/rust");
        assert_eq!(at("a/b.c", Some('.'), &[], false), "a_b/c");
        assert_eq!(at("Entw&APw-rfe", Some('/'), &[], false), "Entwürfe");
        assert_eq!(at("Entwürfe", Some('/'), &[], true), "Entwürfe");
    }

    #[test]
    fn fetch_batches_are_bounded() {
        let sizes: Vec<(u32, u64)> = (1..=250).map(|u| (u, 1000)).collect();
        let b = batches(&sizes);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, 50]);
        let big = [(1, FETCH_OCTETS), (2, 1), (3, FETCH_OCTETS)];
        assert_eq!(batches(&big), [vec![1], vec![2], vec![3]]);
    }
}
