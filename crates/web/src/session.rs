//! Browser sessions, shared by the webmail and the web admin: signing in
//! checks the password with the server's [`auth::Authenticator`]
//! (throttled with every other login) and sets a random session cookie
//! (`Secure; HttpOnly; SameSite=Strict`, only its SHA-256 kept). Every
//! request that changes something must also carry the session's CSRF
//! token in `X-Tern-CSRF` (a custom header no other site can make a
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

use crate::jmap::JmapRoutes;
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

/// One signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) account: AccountRecord,
    pub(crate) csrf: String,
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
    pub(crate) fn start(&self, account: AccountRecord, client: IpAddr) -> Option<(String, String)> {
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
    pub(crate) fn check(&self, token: &str) -> Option<Session> {
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
    pub(crate) fn end_others(&self, account: &AccountRecord, current: &str) -> usize {
        let keep = digest(current);
        let Ok(mut map) = self.0.lock() else {
            return 0;
        };
        let before = map.len();
        map.retain(|k, s| s.account.id != account.id || *k == keep);
        before - map.len()
    }

    pub(crate) fn end(&self, token: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&digest(token));
        }
    }

    /// An account's sessions: (id, client, seconds since sign-in, since
    /// last use, whether it is `current`'s).
    pub(crate) fn list(&self, account: &AccountRecord, current: &str) -> Vec<Value> {
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
    pub(crate) fn end_by_id(&self, account: &AccountRecord, id: &str) -> bool {
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
pub(crate) fn cookie(req: &Request<Bytes>) -> Option<String> {
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
}

/// Compare secrets in constant time.
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("tern_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: i64) -> AccountRecord {
        AccountRecord {
            id: store::AccountId(id),
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
