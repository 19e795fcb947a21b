//! The JMAP routes (RFC 8620): the session resource at `/.well-known/jmap`
//! (and `/jmap/session`), the API at `/jmap/api`, blob downloads at
//! `/jmap/download/{accountId}/{blobId}/{name}`. What a request asks is
//! answered by the `jmap` crate; here are HTTP and authentication.
//!
//! Authentication (RFC 8620 §1.6.1 leaves it to HTTP): Basic with the
//! account's address and password, or a Bearer token (RFC 6750) issued by
//! `tern account token`, checked and throttled by the same
//! [`auth::Authenticator`] as IMAP, POP3 and SMTP AUTH. A password is only
//! taken over https, or over plain http from a loopback client (a TLS
//! proxy on the same machine): never in clear over the network.

use std::net::IpAddr;
use std::sync::Arc;

use auth::{Authenticator, Verdict};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use jmap::Jmap;
use store::AccountRecord;

use crate::query;
use crate::routes::text;

/// Whether the request came over TLS (set by the server per connection).
#[derive(Debug, Clone, Copy)]
pub struct Secure(pub bool);

/// A request whose credentials were checked before its body was read
/// (set by the server; the routes do not check them again).
#[derive(Debug, Clone)]
pub struct Authenticated(pub AccountRecord);

/// An API request or upload let in: its account, and its place among the
/// account's concurrent ones (given back when dropped).
pub struct Admission {
    pub account: AccountRecord,
    _counted: jmap::admission::Admitted,
}

/// JMAP with the authenticator it checks passwords with.
pub struct JmapRoutes {
    pub jmap: Arc<Jmap>,
    pub auth: Arc<Authenticator>,
    /// The webmail's signed-in browsers (their cookie stands for the
    /// password on these routes too).
    pub sessions: crate::session::Sessions,
    /// Other domains' published keys (the webmail encrypts to their
    /// certificates); None: only keys published here.
    pub sender_keys: Option<Arc<policy::sender_keys::SenderKeys>>,
}

/// The JMAP paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JmapRoute {
    Session,
    Api,
    Download,
    Upload,
}

impl JmapRoute {
    pub fn of(path: &str) -> Option<JmapRoute> {
        Some(match path {
            "/.well-known/jmap" | "/jmap/session" => JmapRoute::Session,
            "/jmap/api" | "/jmap/api/" => JmapRoute::Api,
            p if p.starts_with("/jmap/download/") => JmapRoute::Download,
            p if p.starts_with("/jmap/upload/") => JmapRoute::Upload,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            JmapRoute::Session => "jmap-session",
            JmapRoute::Api => "jmap-api",
            JmapRoute::Download => "jmap-download",
            JmapRoute::Upload => "jmap-upload",
        }
    }

    pub fn allows(self, method: &Method) -> bool {
        match self {
            JmapRoute::Api | JmapRoute::Upload => *method == Method::POST,
            _ => matches!(*method, Method::GET | Method::HEAD),
        }
    }
}

impl JmapRoutes {
    /// `/jmap/eventsource` (RFC 8620 §7.3): the push stream, or the
    /// response that refuses it.
    pub async fn event_source(
        &self,
        req: &Request<Bytes>,
        client: IpAddr,
    ) -> Result<Response<crate::eventsource::ChannelBody>, Response<Bytes>> {
        if !matches!(*req.method(), Method::GET) {
            return Err(text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"));
        }
        let account = self.authenticate(req, client).await?;
        let Some(options) = crate::eventsource::Options::parse(req.uri().query()) else {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "types, closeafter or ping is not valid\n",
            ));
        };
        Ok(crate::eventsource::open(self.jmap.clone(), account, options).await)
    }

    /// Before an API request's or an upload's body is read: who sends it
    /// (an unknown client never gets a body buffered), and whether the
    /// account's concurrency limit lets it in (RFC 8620 §2; past it the
    /// `limit` request error).
    pub async fn admit(
        &self,
        route: JmapRoute,
        req: &Request<Bytes>,
        client: IpAddr,
    ) -> Result<Admission, Response<Bytes>> {
        let work = match route {
            JmapRoute::Upload => jmap::admission::Work::Upload,
            _ => jmap::admission::Work::Request,
        };
        let account = self.authenticate(req, client).await?;
        match self.jmap.admit(account.id, work) {
            Some(counted) => Ok(Admission {
                account,
                _counted: counted,
            }),
            None => Err(problem(&jmap::RequestError::Limit(work.limit_name()))),
        }
    }

    /// `/jmap/ws` (RFC 8887): the 101 answer and the session of the
    /// authenticated account, or the response that refuses it.
    pub async fn websocket(
        &self,
        req: &Request<Bytes>,
        client: IpAddr,
    ) -> Result<(Response<Bytes>, jmap::websocket::WsSession), Response<Bytes>> {
        let account = self.authenticate(req, client).await?;
        let answer = crate::websocket::handshake(req);
        if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(answer);
        }
        Ok((answer, jmap::websocket::WsSession::new(account, client)))
    }

    pub async fn respond(
        &self,
        route: JmapRoute,
        req: &Request<Bytes>,
        client: IpAddr,
    ) -> Response<Bytes> {
        let account = match self.authenticate(req, client).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        match route {
            JmapRoute::Session => {
                let base = base_url(req);
                let session = jmap::session::session(
                    &account,
                    &self.jmap.limits,
                    &base,
                    self.jmap.submitter.as_deref(),
                );
                json(StatusCode::OK, &session)
            }
            JmapRoute::Api => self.api(req, &account, client).await,
            JmapRoute::Download => self.download(req, &account).await,
            JmapRoute::Upload => self.upload(req, &account),
        }
    }

    async fn api(
        &self,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
    ) -> Response<Bytes> {
        // A client that names no media type is taken at its word.
        if json_body(req) == Some(false) {
            return json(
                StatusCode::BAD_REQUEST,
                &jmap::RequestError::NotJson.to_problem(),
            );
        }
        match self.jmap.api(account, client, req.body()).await {
            Ok(response) => json(StatusCode::OK, &response),
            Err(e) => problem(&e),
        }
    }

    /// `/jmap/upload/{accountId}/` (RFC 8620 §6.1): the body kept as a
    /// blob of the account (the server reads at most `maxSizeUpload`).
    fn upload(&self, req: &Request<Bytes>, account: &AccountRecord) -> Response<Bytes> {
        let account_id = req
            .uri()
            .path()
            .trim_start_matches("/jmap/upload/")
            .trim_end_matches('/');
        if account_id != jmap::account_id(account) {
            return text(StatusCode::NOT_FOUND, "no such account\n");
        }
        let media_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .filter(|t| t.len() <= 255 && t.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .unwrap_or("application/octet-stream")
            .to_string();
        let size = req.body().len();
        let blob_id = self
            .jmap
            .uploads
            .add(account.id, req.body().to_vec(), media_type.clone());
        json(
            StatusCode::CREATED,
            &serde_json::json!({
                "accountId": account_id,
                "blobId": blob_id,
                "type": media_type,
                "size": size,
            }),
        )
    }

    /// `/jmap/download/{accountId}/{blobId}/{name}?accept={type}` (RFC 8620 §6.2).
    async fn download(&self, req: &Request<Bytes>, account: &AccountRecord) -> Response<Bytes> {
        let path = req.uri().path();
        let mut parts = path.trim_start_matches("/jmap/download/").splitn(3, '/');
        let (Some(account_id), Some(blob_id)) = (parts.next(), parts.next()) else {
            return text(StatusCode::NOT_FOUND, "not found\n");
        };
        let name = parts
            .next()
            .and_then(query::percent_decode)
            .unwrap_or_else(|| "download".into());
        if account_id != jmap::account_id(account) {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        let blob = match self.jmap.download_source(account, blob_id).await {
            Ok(Some(b)) => b,
            Ok(None) => return text(StatusCode::NOT_FOUND, "no such blob\n"),
            Err(_) => return text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n"),
        };
        let accept = query::param(req.uri().query(), "accept")
            .filter(|t| is_media_type(t))
            .or(blob.media_type)
            .unwrap_or_else(|| "message/rfc822".into());
        let mut r = match blob.octets {
            jmap::email::Octets::Held(data) => Response::new(Bytes::from(data)),
            jmap::email::Octets::Stored {
                mailbox,
                uid,
                range,
                decoder,
            } => {
                // C-FT9: a piece at a time, each sent before the next is
                // read (the channel holds a few).
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                let store = self.jmap.store().clone();
                tokio::spawn(send_stored(store, mailbox, uid, range, decoder, tx));
                let mut r = Response::new(Bytes::new());
                r.extensions_mut().insert(crate::eventsource::Streamed::new(
                    crate::eventsource::ChannelBody(rx),
                ));
                r
            }
        };
        if let Ok(v) = HeaderValue::from_str(&accept) {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        let disposition = format!("attachment; filename=\"{}\"", file_name(&name));
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        // RFC 8620 §6.2: the blob of an id never changes.
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, immutable, max-age=31536000"),
        );
        r.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        r
    }

    /// The account of a request's `Authorization: Basic`, or the response
    /// that refuses it.
    async fn authenticate(
        &self,
        req: &Request<Bytes>,
        client: IpAddr,
    ) -> Result<AccountRecord, Response<Bytes>> {
        if let Some(Authenticated(account)) = req.extensions().get::<Authenticated>() {
            return Ok(account.clone());
        }
        let secure = req.extensions().get::<Secure>().is_some_and(|s| s.0);
        if !secure && !client.is_loopback() {
            return Err(text(
                StatusCode::FORBIDDEN,
                "JMAP is served over https only (passwords are never taken in clear)\n",
            ));
        }
        let verdict = match credentials(req) {
            Some(Credentials::Basic(user, password)) => {
                self.auth.check_password(client, &user, &password).await
            }
            Some(Credentials::Bearer(token)) => self.auth.check_token(client, &token).await,
            None => {
                return match self.session_account(req).await {
                    Some(result) => result,
                    None => Err(unauthorized()),
                };
            }
        };
        match verdict {
            Verdict::Success(account) => Ok(account),
            Verdict::Denied { .. } => Err(unauthorized()),
            Verdict::Blocked => Err(text(
                StatusCode::TOO_MANY_REQUESTS,
                "too many failed logins from this address; try later\n",
            )),
            Verdict::TemporaryFailure => {
                Err(text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n"))
            }
        }
    }
}

/// Whether the request's body is declared JSON (`application/json`);
/// None when it declares no media type.
pub(crate) fn json_body(req: &Request<Bytes>) -> Option<bool> {
    req.headers().get(header::CONTENT_TYPE).map(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().starts_with("application/json"))
    })
}

/// The 415 for a body that is not declared JSON (another site's page
/// cannot send JSON without a CORS preflight, which is refused); None
/// when it is.
pub(crate) fn refuse_unless_json(req: &Request<Bytes>) -> Option<Response<Bytes>> {
    (json_body(req) != Some(true)).then(|| {
        text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/json\n",
        )
    })
}

/// A request error (RFC 8620 §3.6.1): problem details, status 400.
fn problem(e: &jmap::RequestError) -> Response<Bytes> {
    let mut r = json(StatusCode::BAD_REQUEST, &e.to_problem());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// What `Authorization` carries.
enum Credentials {
    /// User and password (RFC 7617).
    Basic(String, String),
    /// A token from `tern account token` (RFC 6750).
    Bearer(String),
}

fn credentials(req: &Request<Bytes>) -> Option<Credentials> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credentials::Bearer(rest.trim().to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credentials::Basic(user.to_string(), password.to_string()))
}

fn unauthorized() -> Response<Bytes> {
    let mut r = text(StatusCode::UNAUTHORIZED, "authentication required\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"tern\", charset=\"UTF-8\""),
    );
    r.headers_mut().append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tern\""),
    );
    r
}

/// `https://host` (or `http://` on a plain listener) as the client asked.
fn base_url(req: &Request<Bytes>) -> String {
    let secure = req.extensions().get::<Secure>().is_some_and(|s| s.0);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{}://{host}", if secure { "https" } else { "http" })
}

fn is_media_type(t: &str) -> bool {
    let Some((kind, sub)) = t.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    token(kind) && token(sub)
}

fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_control() || c == '"' || c == '\\' || c == '/' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Send a message's octets `range` from the store, decoded, a piece at a
/// time; an error (the message is gone, the store fails) ends the response
/// short of its end, so the client does not take it for complete.
async fn send_stored(
    store: std::sync::Arc<dyn store::Store>,
    mailbox: store::MailboxId,
    uid: u32,
    range: std::ops::Range<u64>,
    mut decoder: message::mime::Decoder,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    let mut next = range.start;
    while next < range.end {
        let failure =
            match store::stream::piece(store.as_ref(), mailbox, uid, next, range.end).await {
                Ok(Some(got)) if !got.is_empty() => Ok(got),
                Ok(_) => Err("the message is gone".to_string()),
                Err(e) => Err(e.to_string()),
            };
        let got = match failure {
            Ok(got) => got,
            Err(why) => {
                tracing::info!(%why, "download cut short");
                let _ = tx.send(Err(std::io::Error::other(why))).await;
                return;
            }
        };
        next += got.len() as u64;
        let plain = store::stream::decode_piece(&mut decoder, &got, next >= range.end);
        if !plain.is_empty() && tx.send(Ok(Bytes::from(plain))).await.is_err() {
            return;
        }
    }
}
