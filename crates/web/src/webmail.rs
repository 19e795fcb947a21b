//! The webmail at `/` on the http and https listeners: its assets (plain
//! JavaScript modules, embedded in the binary, nothing fetched from
//! anywhere else), sign-in and sessions, and the one thing the browser
//! cannot do safely alone: a message's HTML sanitized for the reading
//! pane ([`crate::sanitize`]). Everything else the page does is JMAP on
//! `/jmap/api`, as any client would.
//!
//! Sessions: signing in checks the password with the server's
//! [`auth::Authenticator`] (throttled with every other login; over
//! https, or plain http from loopback only) and sets a random session
//! cookie (`Secure; HttpOnly; SameSite=Strict`, only its SHA-256 kept).
//! Every request that changes something must also carry the session's
//! CSRF token in `X-Tern-CSRF` (a custom header no other site can make a
//! browser send). A session ends at sign-out, after 12 hours unused, 7
//! days at most, or when its account is removed; a user sees their
//! sessions and ends any of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use store::AccountRecord;

use crate::jmap::{JmapRoutes, json};
use crate::routes::text;

/// The cookie holding the session.
pub const COOKIE: &str = "tern_session";
/// The header that must carry the session's CSRF token on changes.
pub const CSRF_HEADER: &str = "x-tern-csrf";
/// A session unused this long ends.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session ends this long after sign-in, used or not.
const LIFETIME: Duration = Duration::from_secs(7 * 86_400);
/// The most sessions one account keeps (the oldest ends first).
const PER_ACCOUNT: usize = 20;

/// The page and its modules: (path, media type, content).
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../assets/webmail/index.html"),
    ),
    (
        "/webmail/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/webmail/app.js"),
    ),
    (
        "/webmail/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/webmail/app.css"),
    ),
];

/// What the page itself may do: its own scripts, styles and API, frames
/// of its own origin (the reading pane), nothing from anywhere else.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// One signed-in browser.
#[derive(Debug, Clone)]
struct Session {
    account: AccountRecord,
    csrf: String,
    client: IpAddr,
    created: Instant,
    seen: Instant,
}

/// The sessions of every account, by the SHA-256 of their cookie.
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<[u8; 32], Session>>);

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A session's public id (what the list shows, what ending one names).
fn public_id(d: &[u8; 32]) -> String {
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// Start a session; (cookie token, CSRF token).
    fn start(&self, account: AccountRecord, client: IpAddr) -> Option<(String, String)> {
        let (token, csrf) = (random_token()?, random_token()?);
        let now = Instant::now();
        let mut map = self.0.lock().ok()?;
        map.retain(|_, s| live(s, now));
        let mut mine: Vec<([u8; 32], Instant)> = map
            .iter()
            .filter(|(_, s)| s.account.id == account.id)
            .map(|(k, s)| (*k, s.created))
            .collect();
        mine.sort_by_key(|(_, at)| *at);
        while mine.len() >= PER_ACCOUNT {
            map.remove(&mine.remove(0).0);
        }
        map.insert(
            digest(&token),
            Session {
                account,
                csrf: csrf.clone(),
                client,
                created: now,
                seen: now,
            },
        );
        Some((token, csrf))
    }

    /// The live session of a cookie token (marked used now).
    fn check(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.0.lock().ok()?;
        let key = digest(token);
        let s = map.get_mut(&key)?;
        if !live(s, now) {
            map.remove(&key);
            return None;
        }
        s.seen = now;
        Some(s.clone())
    }

    /// End every session of an account but `current`'s; how many.
    fn end_others(&self, account: &AccountRecord, current: &str) -> usize {
        let keep = digest(current);
        let Ok(mut map) = self.0.lock() else {
            return 0;
        };
        let before = map.len();
        map.retain(|k, s| s.account.id != account.id || *k == keep);
        before - map.len()
    }

    fn end(&self, token: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&digest(token));
        }
    }

    /// An account's sessions: (id, client, seconds since sign-in, since
    /// last use, whether it is `current`'s).
    fn list(&self, account: &AccountRecord, current: &str) -> Vec<Value> {
        let now = Instant::now();
        let Ok(map) = self.0.lock() else {
            return Vec::new();
        };
        let current = digest(current);
        let mut out: Vec<(Instant, Value)> = map
            .iter()
            .filter(|(_, s)| s.account.id == account.id && live(s, now))
            .map(|(k, s)| {
                (
                    s.created,
                    json!({
                        "id": public_id(k),
                        "client": s.client.to_string(),
                        "signedInSecondsAgo": now.duration_since(s.created).as_secs(),
                        "usedSecondsAgo": now.duration_since(s.seen).as_secs(),
                        "current": *k == current,
                    }),
                )
            })
            .collect();
        out.sort_by_key(|(at, _)| *at);
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// End one of an account's sessions by its public id; whether it was.
    fn end_by_id(&self, account: &AccountRecord, id: &str) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return false;
        };
        let key = map
            .iter()
            .find(|(k, s)| s.account.id == account.id && public_id(k) == id)
            .map(|(k, _)| *k);
        key.is_some_and(|k| map.remove(&k).is_some())
    }
}

fn live(s: &Session, now: Instant) -> bool {
    now.duration_since(s.seen) < IDLE && now.duration_since(s.created) < LIFETIME
}

/// The session cookie's value in a request, if it has one.
fn cookie(req: &Request<Bytes>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// A request that changes something must show the session's CSRF token.
fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD)
}

/// The webmail's paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebmailRoute {
    Asset(usize),
    Login,
    Logout,
    Session,
    Sessions,
    EndSession,
    Password,
    Html,
}

impl WebmailRoute {
    pub fn of(path: &str) -> Option<WebmailRoute> {
        if let Some(i) = ASSETS.iter().position(|(p, _, _)| *p == path) {
            return Some(WebmailRoute::Asset(i));
        }
        Some(match path {
            "/webmail/login" => WebmailRoute::Login,
            "/webmail/logout" => WebmailRoute::Logout,
            "/webmail/session" => WebmailRoute::Session,
            "/webmail/sessions" => WebmailRoute::Sessions,
            "/webmail/sessions/end" => WebmailRoute::EndSession,
            "/webmail/password" => WebmailRoute::Password,
            p if p.starts_with("/webmail/html/") => WebmailRoute::Html,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            WebmailRoute::Asset(_) => "webmail-asset",
            WebmailRoute::Login => "webmail-login",
            WebmailRoute::Logout => "webmail-logout",
            WebmailRoute::Session | WebmailRoute::Sessions => "webmail-session",
            WebmailRoute::EndSession => "webmail-end-session",
            WebmailRoute::Password => "webmail-password",
            WebmailRoute::Html => "webmail-html",
        }
    }

    fn method(self) -> Method {
        match self {
            WebmailRoute::Login
            | WebmailRoute::Logout
            | WebmailRoute::EndSession
            | WebmailRoute::Password => Method::POST,
            _ => Method::GET,
        }
    }
}

/// The headers every webmail answer carries.
fn harden(r: &mut Response<Bytes>, csp: &'static str) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

impl JmapRoutes {
    /// The account of a webmail session cookie, if the request has a live
    /// one (and, for a change, its CSRF token): Some(Ok(account)),
    /// Some(Err(refusal)), or None without a cookie.
    pub(crate) async fn session_account(
        &self,
        req: &Request<Bytes>,
    ) -> Option<Result<AccountRecord, Response<Bytes>>> {
        let token = cookie(req)?;
        let refused = || {
            text(
                StatusCode::UNAUTHORIZED,
                "the session has ended; sign in again\n",
            )
        };
        let Some(session) = self.sessions.check(&token) else {
            return Some(Err(refused()));
        };
        if changes(req.method()) {
            let shown = req.headers().get(CSRF_HEADER).map(HeaderValue::as_bytes);
            let expected = session.csrf.as_bytes();
            let same = shown.is_some_and(|s| s.len() == expected.len() && ring_eq(s, expected));
            if !same {
                return Some(Err(text(
                    StatusCode::FORBIDDEN,
                    "the CSRF token is missing or wrong\n",
                )));
            }
        }
        // A removed account's sessions end with it.
        match self
            .jmap
            .store()
            .account_credentials(&session.account.address)
            .await
        {
            Ok(Some(c)) if c.account.id == session.account.id => Some(Ok(session.account)),
            Ok(_) => {
                self.sessions.end(&token);
                Some(Err(refused()))
            }
            Err(_) => Some(Err(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "try again later\n",
            ))),
        }
    }

    /// Answer a webmail route.
    pub async fn webmail(
        &self,
        route: WebmailRoute,
        req: &Request<Bytes>,
        client: IpAddr,
    ) -> Response<Bytes> {
        let allowed = req.method() == route.method()
            || (route.method() == Method::GET && req.method() == Method::HEAD);
        if !allowed {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        let mut r = match route {
            WebmailRoute::Asset(i) => asset(i),
            WebmailRoute::Login => self.login(req, client).await,
            _ => match self.session_account(req).await {
                None => text(StatusCode::UNAUTHORIZED, "sign in first\n"),
                Some(Err(refused)) => refused,
                Some(Ok(account)) => self.signed_in(route, req, &account, client).await,
            },
        };
        if !matches!(route, WebmailRoute::Html) {
            harden(&mut r, PAGE_CSP);
        }
        r
    }

    async fn signed_in(
        &self,
        route: WebmailRoute,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
    ) -> Response<Bytes> {
        let token = cookie(req).unwrap_or_default();
        match route {
            WebmailRoute::Logout => {
                self.sessions.end(&token);
                let mut r = json(StatusCode::OK, &json!({"signedOut": true}));
                r.headers_mut().insert(header::SET_COOKIE, clear_cookie());
                r
            }
            WebmailRoute::Session => {
                let csrf = self
                    .sessions
                    .check(&token)
                    .map(|s| s.csrf)
                    .unwrap_or_default();
                json(
                    StatusCode::OK,
                    &json!({"username": account.address, "csrf": csrf}),
                )
            }
            WebmailRoute::Sessions => json(
                StatusCode::OK,
                &json!({"sessions": self.sessions.list(account, &token)}),
            ),
            WebmailRoute::EndSession => {
                let id = serde_json::from_slice::<Value>(req.body())
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let ended = self.sessions.end_by_id(account, &id);
                json(
                    if ended {
                        StatusCode::OK
                    } else {
                        StatusCode::NOT_FOUND
                    },
                    &json!({"ended": ended}),
                )
            }
            WebmailRoute::Password => self.password(req, account, client, &token).await,
            WebmailRoute::Html => self.html(req, account, client).await,
            WebmailRoute::Asset(_) | WebmailRoute::Login => {
                text(StatusCode::NOT_FOUND, "not found\n")
            }
        }
    }

    /// `POST /webmail/password` with `{"current", "new"}`: the current
    /// password checked (and throttled) like a sign-in, the new one taken
    /// as `tern account passwd` takes it; the account's other sessions end.
    async fn password(
        &self,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
        token: &str,
    ) -> Response<Bytes> {
        const MIN_LENGTH: usize = 8;
        let form: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let (Some(current), Some(new)) = (form["current"].as_str(), form["new"].as_str()) else {
            return text(StatusCode::BAD_REQUEST, "current and new are required\n");
        };
        if new.chars().count() < MIN_LENGTH || auth::prepare(new).is_err() {
            return text(
                StatusCode::BAD_REQUEST,
                "the new password needs at least 8 characters, none of them control characters\n",
            );
        }
        match self
            .auth
            .check_password(client, &account.address, current)
            .await
        {
            auth::Verdict::Success(_) => {}
            auth::Verdict::Blocked => {
                return text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed attempts; try later\n",
                );
            }
            auth::Verdict::TemporaryFailure => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n");
            }
            auth::Verdict::Denied { .. } => {
                return text(StatusCode::FORBIDDEN, "the current password is wrong\n");
            }
        }
        let new = new.to_string();
        let Ok(credentials) = tokio::task::spawn_blocking(move || auth::derive(&new)).await else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n");
        };
        if self
            .jmap
            .store()
            .set_credentials(&account.address, credentials)
            .await
            .is_err()
        {
            return text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n");
        }
        let ended = self.sessions.end_others(account, token);
        tracing::info!(account = %account.address, %client, other_sessions_ended = ended, "webmail: password changed");
        json(
            StatusCode::OK,
            &json!({"changed": true, "otherSessionsEnded": ended}),
        )
    }

    /// `POST /webmail/login` with `{"username", "password"}`.
    async fn login(&self, req: &Request<Bytes>, client: IpAddr) -> Response<Bytes> {
        let secure = req
            .extensions()
            .get::<crate::jmap::Secure>()
            .is_some_and(|s| s.0);
        if !secure && !client.is_loopback() {
            return text(
                StatusCode::FORBIDDEN,
                "sign in over https (passwords are never taken in clear)\n",
            );
        }
        // JSON only: another site's page cannot send it without a CORS
        // preflight, which is refused (no sign-in into someone else's
        // account behind the user's back).
        if crate::jmap::json_body(req) != Some(true) {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send application/json\n",
            );
        }
        let form: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let (Some(user), Some(password)) = (form["username"].as_str(), form["password"].as_str())
        else {
            return text(
                StatusCode::BAD_REQUEST,
                "username and password are required\n",
            );
        };
        let account = match self.auth.check_password(client, user, password).await {
            auth::Verdict::Success(account) => account,
            auth::Verdict::Blocked => {
                return text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed sign-ins from this address; try later\n",
                );
            }
            auth::Verdict::TemporaryFailure => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n");
            }
            auth::Verdict::Denied { .. } => {
                return text(StatusCode::UNAUTHORIZED, "wrong address or password\n");
            }
        };
        let Some((token, csrf)) = self.sessions.start(account.clone(), client) else {
            return text(StatusCode::SERVICE_UNAVAILABLE, "try again later\n");
        };
        tracing::info!(account = %account.address, %client, "webmail: signed in");
        let mut r = json(
            StatusCode::OK,
            &json!({"username": account.address, "csrf": csrf}),
        );
        let cookie = format!("{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    }

    /// `GET /webmail/html/{emailId}[?images=1]`: the message's HTML body,
    /// sanitized, for a sandboxed frame; `X-Tern-Remote-Images: blocked`
    /// when remote images were taken out.
    async fn html(
        &self,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
    ) -> Response<Bytes> {
        let id = req
            .uri()
            .path()
            .trim_start_matches("/webmail/html/")
            .to_string();
        let images = crate::query::param(req.uri().query(), "images").as_deref() == Some("1");
        let account_id = jmap::account_id(account);
        let request = json!({
            "using": [jmap::CORE, jmap::MAIL],
            "methodCalls": [["Email/get", {
                "accountId": account_id, "ids": [id],
                "properties": ["htmlBody", "attachments", "bodyValues"],
                "bodyProperties": ["partId", "blobId", "type", "cid", "name"],
                "fetchHTMLBodyValues": true,
            }, "h"]],
        });
        let Ok(answer) = self
            .jmap
            .api(account, client, request.to_string().as_bytes())
            .await
        else {
            return text(StatusCode::BAD_REQUEST, "bad message id\n");
        };
        let email = &answer["methodResponses"][0][1]["list"][0];
        if email.is_null() {
            return text(StatusCode::NOT_FOUND, "no such message\n");
        }
        let html: String = email["htmlBody"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let part = p["partId"].as_str()?;
                let value = email["bodyValues"][part]["value"].as_str()?;
                Some(match p["type"].as_str() {
                    Some("text/html") => value.to_string(),
                    // A text part among the HTML ones is shown as text.
                    _ => format!("<pre>{}</pre>", ammonia::clean_text(value)),
                })
            })
            .collect();
        let cid: HashMap<String, String> = email["attachments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let cid = p["cid"].as_str()?;
                let blob = p["blobId"].as_str()?;
                Some((
                    cid.to_string(),
                    format!("/jmap/download/{account_id}/{blob}/inline"),
                ))
            })
            .collect();
        let clean = crate::sanitize::html(&html, &cid, images);
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><base target=\"_blank\"></head><body>{}</body></html>",
            clean.html
        );
        let mut r = Response::new(Bytes::from(page));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if clean.remote_images_blocked {
            r.headers_mut().insert(
                header::HeaderName::from_static("x-tern-remote-images"),
                HeaderValue::from_static("blocked"),
            );
        }
        let csp = if images {
            crate::sanitize::FRAME_CSP_IMAGES
        } else {
            crate::sanitize::FRAME_CSP
        };
        harden(&mut r, csp);
        r
    }
}

/// Compare secrets in constant time.
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("tern_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn asset(i: usize) -> Response<Bytes> {
    let (_, media_type, content) = ASSETS[i];
    let mut r = Response::new(Bytes::from_static(content));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: i64) -> AccountRecord {
        AccountRecord {
            id,
            address: format!("u{id}@a.test"),
            created: 0,
        }
    }

    #[test]
    fn sessions_start_check_list_and_end() {
        let s = Sessions::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (token, csrf) = s.start(account(1), ip).unwrap();
        assert_eq!(s.check(&token).unwrap().csrf, csrf);
        assert!(s.check("forged").is_none());
        let (other, _) = s.start(account(1), ip).unwrap();
        let list = s.list(&account(1), &token);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["current"], true);
        let other_id = list[1]["id"].as_str().unwrap().to_string();
        assert!(
            !s.end_by_id(&account(2), &other_id),
            "not another account's"
        );
        assert!(s.end_by_id(&account(1), &other_id));
        assert!(s.check(&other).is_none());
        s.end(&token);
        assert!(s.check(&token).is_none());
    }

    #[test]
    fn an_account_keeps_at_most_its_newest_sessions() {
        let s = Sessions::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let first = s.start(account(1), ip).unwrap().0;
        for _ in 0..PER_ACCOUNT {
            s.start(account(1), ip).unwrap();
        }
        assert!(s.check(&first).is_none(), "the oldest ended");
        assert_eq!(s.list(&account(1), "").len(), PER_ACCOUNT);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let req = Request::builder()
            .header(header::COOKIE, "a=1; tern_session=abc; b=2")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(cookie(&req).as_deref(), Some("abc"));
    }
}
