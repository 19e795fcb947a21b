//! JMAP over WebSocket (RFC 8887) on the http and https listeners: the
//! opening handshake of RFC 6455 §4.2 on `/jmap/ws` (HTTP/1.1 Upgrade),
//! then the frames of one connection moved between the socket and a
//! [`jmap::websocket::WsSession`], which decides what they mean. The
//! connection counts against the listener's limits while it lives, a
//! message is at most `maxSizeRequest`, a peer that is silent for
//! [`SILENT`] (no answer to our pings) is closed, and a draining server
//! closes it with 1001 "going away".

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use jmap::Jmap;
use jmap::websocket::{SUBPROTOCOL, WsSession};
use net::Phase;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::routes::text;

/// The WebSocket endpoint (the session's `urn:ietf:params:jmap:websocket` url).
pub const PATH: &str = "/jmap/ws";
/// How often the server pings an open connection.
const PING: Duration = Duration::from_secs(60);
/// How long a connection may go without a frame from the peer (a pong
/// answers every ping) before it is closed.
const SILENT: Duration = Duration::from_secs(300);

/// Whether a header holds `token` in its comma-separated list (RFC 9110
/// §5.6.1), ignoring case.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The 101 answer to a valid opening handshake (RFC 6455 §4.2.1, §4.2.2)
/// that offers the `jmap` subprotocol (RFC 8887 §4.2); or the answer
/// that refuses it.
pub fn handshake<B>(req: &Request<B>) -> Response<Bytes> {
    let accept = match accept_key(req) {
        Ok(accept) => accept,
        Err((status, why)) => {
            let mut r = text(status, why);
            if status == StatusCode::UPGRADE_REQUIRED {
                r.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            return r;
        }
    };
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let out = r.headers_mut();
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    out.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    out.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    r
}

/// The `Sec-WebSocket-Accept` of a valid handshake, or why it is not.
fn accept_key<B>(req: &Request<B>) -> Result<HeaderValue, (StatusCode, &'static str)> {
    let h = req.headers();
    if req.method() != Method::GET {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"));
    }
    if !has_token(h, header::UPGRADE, "websocket") || !has_token(h, header::CONNECTION, "upgrade") {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint (RFC 8887)\n",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err((StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n"));
    }
    let key = h
        .get(header::SEC_WEBSOCKET_KEY)
        .map(HeaderValue::as_bytes)
        .filter(|k| k.len() == 24)
        .ok_or((StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing\n"))?;
    if !has_token(h, header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL) {
        return Err((
            StatusCode::BAD_REQUEST,
            "the jmap subprotocol is not offered (RFC 8887 §4.2)\n",
        ));
    }
    HeaderValue::from_str(&derive_accept_key(key))
        .map_err(|_| (StatusCode::BAD_REQUEST, "bad key\n"))
}

/// The frame sizes and buffers of one connection: a message is at most
/// `maxSizeRequest`; small buffers, so an idle connection is cheap.
fn config() -> WebSocketConfig {
    let max = jmap::Limits::MAX_SIZE_REQUEST as usize;
    WebSocketConfig::default()
        .read_buffer_size(8 << 10)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Run one upgraded connection until either side closes it.
pub async fn serve<S>(
    io: S,
    jmap: Arc<Jmap>,
    mut session: WsSession,
    mut phase: watch::Receiver<Phase>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
    let mut changes = jmap.store().watch();
    let mut ping = tokio::time::interval(PING);
    ping.tick().await;
    let mut heard = tokio::time::Instant::now();
    metrics::gauge!("tern_jmap_websockets").increment(1.0);
    loop {
        let replies = tokio::select! {
            frame = ws.next() => {
                heard = tokio::time::Instant::now();
                match frame {
                    Some(Ok(Message::Text(t))) => session.on_message(&jmap, t.as_str()).await,
                    Some(Ok(Message::Binary(_))) => vec![session.on_binary()],
                    // Pings are answered by the library; a close is
                    // answered as the stream ends.
                    Some(Ok(_)) => continue,
                    None | Some(Err(_)) => break,
                }
            }
            r = changes.recv(), if session.pushing() => {
                if matches!(r, Err(broadcast::error::RecvError::Closed)) {
                    break;
                }
                // Several announcements of one change come together (and
                // those of while push was off, lagged, tell nothing more).
                while changes.try_recv().is_ok() {}
                session.on_change(&jmap).await.into_iter().collect()
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT {
                    break;
                }
                vec![]
            }
            _ = phase.changed() => {
                let close = CloseFrame { code: CloseCode::Away, reason: "server stopping".into() };
                let _ = ws.close(Some(close)).await;
                break;
            }
        };
        let mut failed = false;
        for reply in replies {
            failed |= ws.feed(Message::text(reply)).await.is_err();
        }
        if failed || ws.flush().await.is_err() {
            break;
        }
    }
    metrics::gauge!("tern_jmap_websockets").decrement(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method("GET").uri(PATH);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    const GOOD: [(&str, &str); 5] = [
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Protocol", "chat, jmap"),
    ];

    /// RFC 6455 §1.3's example key and accept value; RFC 8887 §4.2's
    /// subprotocol.
    #[test]
    fn the_handshake_of_the_rfcs() {
        let r = handshake(&request(&GOOD));
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            r.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(r.headers()[header::SEC_WEBSOCKET_PROTOCOL], "jmap");
    }

    #[test]
    fn what_is_refused() {
        let without = |name: &str| {
            let h: Vec<(&str, &str)> = GOOD.iter().copied().filter(|(k, _)| *k != name).collect();
            handshake(&request(&h)).status()
        };
        assert_eq!(without("Upgrade"), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(
            without("Sec-WebSocket-Version"),
            StatusCode::UPGRADE_REQUIRED
        );
        assert_eq!(without("Sec-WebSocket-Key"), StatusCode::BAD_REQUEST);
        assert_eq!(without("Sec-WebSocket-Protocol"), StatusCode::BAD_REQUEST);
    }
}
