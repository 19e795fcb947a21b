//! The webmail at `/` on the http and https listeners: its assets (plain
//! JavaScript modules, embedded in the binary, nothing fetched from
//! anywhere else), sign-in and sessions ([`crate::session`]), and the one
//! thing the browser cannot do safely alone: a message's HTML sanitized
//! for the reading pane ([`crate::sanitize`]). Everything else the page
//! does is JMAP on `/jmap/api`, as any client would.

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use store::AccountRecord;

use crate::jmap::{JmapRoutes, json};
use crate::routes::text;
use crate::session::{COOKIE, clear_cookie, cookie};

/// The page and its modules: (path, media type, content).
const ASSETS: [(&str, &str, &[u8]); 5] = [
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
    (
        "/webmail/smime.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/webmail/smime.js"),
    ),
    // PKI.js 4.0 with asn1js and their dependencies, one module
    // (vendor/LICENSES.txt); loaded only when S/MIME is used.
    (
        "/webmail/vendor/pkijs.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/webmail/vendor/pkijs.js"),
    ),
];

/// What the page itself may do: its own scripts, styles and API, frames
/// of its own origin (the reading pane), nothing from anywhere else.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

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
    Filters,
    SaveFilters,
    Keys,
    PublishKey,
    WithdrawKey,
    EncryptAtRest,
    FindKeys,
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
            "/webmail/filters" => WebmailRoute::Filters,
            "/webmail/filters/save" => WebmailRoute::SaveFilters,
            "/webmail/keys" => WebmailRoute::Keys,
            "/webmail/keys/publish" => WebmailRoute::PublishKey,
            "/webmail/keys/withdraw" => WebmailRoute::WithdrawKey,
            "/webmail/keys/encrypt" => WebmailRoute::EncryptAtRest,
            "/webmail/keys/find" => WebmailRoute::FindKeys,
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
            WebmailRoute::Filters | WebmailRoute::SaveFilters => "webmail-filters",
            WebmailRoute::Keys
            | WebmailRoute::PublishKey
            | WebmailRoute::WithdrawKey
            | WebmailRoute::EncryptAtRest
            | WebmailRoute::FindKeys => "webmail-keys",
        }
    }

    fn method(self) -> Method {
        match self {
            WebmailRoute::Login
            | WebmailRoute::Logout
            | WebmailRoute::EndSession
            | WebmailRoute::Password
            | WebmailRoute::SaveFilters
            | WebmailRoute::PublishKey
            | WebmailRoute::WithdrawKey
            | WebmailRoute::EncryptAtRest
            | WebmailRoute::FindKeys => Method::POST,
            _ => Method::GET,
        }
    }
}

/// The headers every webmail answer carries.
pub(crate) fn harden(r: &mut Response<Bytes>, csp: &'static str) {
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
            WebmailRoute::Filters => self.filters(account).await,
            WebmailRoute::SaveFilters => self.save_filters(req, account, client).await,
            WebmailRoute::Keys => self.keys(account).await,
            WebmailRoute::PublishKey => self.publish_key(req, account, client).await,
            WebmailRoute::WithdrawKey => self.withdraw_key(req, account, client).await,
            WebmailRoute::EncryptAtRest => self.encrypt_at_rest(req, account, client).await,
            WebmailRoute::FindKeys => self.find_keys(req).await,
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
        if let Some(refused) = crate::jmap::refuse_unless_json(req) {
            return refused;
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

    /// `GET /webmail/html/{emailId}[?images=1]` (or `/webmail/html/
    /// attached/{blobId}` for an attached message): the message's HTML body,
    /// sanitized, for a sandboxed frame; `X-Tern-Remote-Images: blocked`
    /// when remote images were taken out.
    async fn html(
        &self,
        req: &Request<Bytes>,
        account: &AccountRecord,
        client: IpAddr,
    ) -> Response<Bytes> {
        // A stored message by its id, or a message attached to one
        // (message/rfc822) by its blob id, read with Email/parse.
        let path = req.uri().path();
        let (method, id) = match path.strip_prefix("/webmail/html/attached/") {
            Some(blob) => ("Email/parse", blob.to_string()),
            None => (
                "Email/get",
                path.trim_start_matches("/webmail/html/").to_string(),
            ),
        };
        let images = crate::query::param(req.uri().query(), "images").as_deref() == Some("1");
        let account_id = jmap::account_id(account);
        let mut args = json!({
            "accountId": account_id,
            "properties": ["htmlBody", "attachments", "bodyValues"],
            "bodyProperties": ["partId", "blobId", "type", "cid", "name"],
            "fetchHTMLBodyValues": true,
        });
        args[if method == "Email/get" {
            "ids"
        } else {
            "blobIds"
        }] = json!([id]);
        let request = json!({
            "using": [jmap::CORE, jmap::MAIL],
            "methodCalls": [[method, args, "h"]],
        });
        let Ok(answer) = self
            .jmap
            .api(account, client, request.to_string().as_bytes())
            .await
        else {
            return text(StatusCode::BAD_REQUEST, "bad message id\n");
        };
        let found = &answer["methodResponses"][0][1];
        let email = match method {
            "Email/get" => &found["list"][0],
            _ => &found["parsed"][id.as_str()],
        };
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

fn asset(i: usize) -> Response<Bytes> {
    let (_, media_type, content) = ASSETS[i];
    embedded(media_type, content)
}

/// An asset embedded in the binary, revalidated on each load.
pub(crate) fn embedded(media_type: &'static str, content: &'static [u8]) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from_static(content));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
