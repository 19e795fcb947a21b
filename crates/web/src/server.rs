//! The network side of HTTP: hyper (HTTP/1.1 and HTTP/2) on a listener, under
//! the accept loop every listener shares (connection limits, graceful stop),
//! with TLS on the https listener. Request bodies are read whole, bounded.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use net::listener::{Accepted, ListenerKind, accept_loop, accept_tls};
use net::{ConnLimiter, Phase, Shutdown, TlsAcceptor};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::eventsource::ChannelBody;
use crate::jmap::Secure;
use crate::routes::{Web, text};

/// The largest request body read (the autodiscover request is a few
/// hundred bytes); past it the answer is 413.
const MAX_BODY: usize = 64 << 10;
/// The largest JMAP API request (the session's `maxSizeRequest`).
const MAX_JMAP_BODY: usize = jmap::Limits::MAX_SIZE_REQUEST as usize;
/// How long a client may take to send a request's header section, also
/// between requests on a kept-alive connection (slowloris: hardening.md).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// What a client over the connection limits is told.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Serve `web` on `listener` until the server drains; TLS from the first
/// byte when `tls` is given (the https listener).
pub async fn serve(
    listener: TcpListener,
    web: Arc<Web>,
    tls: Option<TlsAcceptor>,
    limiter: Arc<ConnLimiter>,
    shutdown: Shutdown,
) {
    let kind = ListenerKind {
        label: net::listener::label("http", tls.is_some()),
        busy_reply: BUSY,
        implicit_tls: tls.is_some(),
    };
    accept_loop(listener, kind, limiter, shutdown, move |accepted| {
        connection(accepted, web.clone(), tls.clone())
    })
    .await;
}

async fn connection(accepted: Accepted, web: Arc<Web>, tls: Option<TlsAcceptor>) {
    let Accepted {
        tcp,
        info,
        phase,
        limiter,
    } = accepted;
    let client = info.peer.ip();
    match tls {
        None => run(tcp, web, client, false, phase).await,
        Some(acceptor) => {
            if let Some((stream, _)) = accept_tls(&acceptor, tcp, &limiter).await {
                run(stream, web, client, true, phase).await;
            }
        }
    }
}

/// Serve requests on one connection until it closes, or the server
/// drains (then the request in progress is answered and the connection
/// closed) or stops.
async fn run<IO>(
    io: IO,
    web: Arc<Web>,
    client: IpAddr,
    secure: bool,
    mut phase: tokio::sync::watch::Receiver<Phase>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A WebSocket's task, once the connection is upgraded: the
    // connection lives (and counts against the limits) until it ends.
    let upgraded: Upgraded = Arc::default();
    let conn_phase = phase.clone();
    let slot = upgraded.clone();
    let service = service_fn(move |mut req: Request<Incoming>| {
        let web = web.clone();
        let slot = slot.clone();
        let phase = conn_phase.clone();
        req.extensions_mut().insert(Secure(secure));
        async move {
            if req.uri().path() == crate::websocket::PATH {
                return Ok(websocket(&web, req, client, slot, phase).await);
            }
            Ok::<_, Infallible>(answer(&web, req, client).await)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 << 10);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100)
        .keep_alive_interval(Some(Duration::from_secs(60)));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            changed = phase.changed() => {
                let now = *phase.borrow();
                match (changed, now) {
                    (Err(_), _) | (Ok(()), Phase::Stop) => return,
                    (Ok(()), Phase::Draining) if !draining => {
                        conn.as_mut().graceful_shutdown();
                        draining = true;
                    }
                    (Ok(()), _) => {}
                }
            }
        }
    }
    let task = upgraded.lock().ok().and_then(|mut t| t.take());
    if let Some(task) = task {
        // The task closes on a drain itself; a stop ends it.
        let abort = task.abort_handle();
        tokio::select! {
            _ = task => {}
            _ = phase.wait_for(|p| *p == Phase::Stop) => abort.abort(),
        }
    }
}

/// The task of a connection upgraded to a WebSocket, if it was.
type Upgraded = Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>;

/// `/jmap/ws`: answer the handshake; when it is accepted, the WebSocket
/// runs in a task of this connection once hyper hands the socket over.
async fn websocket(
    web: &Web,
    mut req: Request<Incoming>,
    client: IpAddr,
    slot: Upgraded,
    phase: tokio::sync::watch::Receiver<Phase>,
) -> Reply {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _) = req.into_parts();
    let head = Request::from_parts(parts, Bytes::new());
    let (answer, session, jmap) = match web.websocket(&head, client).await {
        Some(Ok(opening)) => opening,
        Some(Err(refused)) => return refused.map(|b| Either::Left(Full::new(b))),
        None => {
            return text(StatusCode::NOT_FOUND, "not found\n").map(|b| Either::Left(Full::new(b)));
        }
    };
    let task = tokio::spawn(async move {
        if let Ok(io) = on_upgrade.await {
            crate::websocket::serve(TokioIo::new(io), jmap, session, phase).await;
        }
    });
    if let Ok(mut s) = slot.lock() {
        *s = Some(task);
    }
    answer.map(|b| Either::Left(Full::new(b)))
}

/// What a response's body is: whole, or a stream that stays open (push).
type Reply = Response<Either<Full<Bytes>, ChannelBody>>;

/// Read the body (bounded), then let the routes answer.
async fn answer(web: &Web, req: Request<Incoming>, client: IpAddr) -> Reply {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/jmap/eventsource" {
        let head = Request::from_parts(parts.clone(), Bytes::new());
        match web.event_source(&head, client).await {
            Some(Ok(stream)) => return stream.map(Either::Right),
            Some(Err(refused)) => return refused.map(|b| Either::Left(Full::new(b))),
            None => {}
        }
    }
    // The credentials (and the account's concurrency) before the body.
    let head = Request::from_parts(parts.clone(), Bytes::new());
    let admission = match web.admit(&head, client).await {
        Some(Ok(a)) => Some(a),
        Some(Err(refused)) => return refused.map(|b| Either::Left(Full::new(b))),
        None => None,
    };
    let path = parts.uri.path();
    let limit = if path.starts_with("/jmap/upload/") {
        jmap::Limits::MAX_SIZE_UPLOAD as usize
    } else if path.starts_with("/jmap/") {
        MAX_JMAP_BODY
    } else {
        MAX_BODY
    };
    let response = match Limited::new(body, limit).collect().await {
        Ok(collected) => {
            let mut req = Request::from_parts(parts, collected.to_bytes());
            if let Some(a) = &admission {
                req.extensions_mut()
                    .insert(crate::jmap::Authenticated(a.account.clone()));
            }
            web.respond(req, client).await
        }
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
        }
        Err(_) => text(StatusCode::BAD_REQUEST, "request body unreadable\n"),
    };
    drop(admission);
    let mut response = response;
    if let Some(body) = response
        .extensions_mut()
        .remove::<crate::eventsource::Streamed>()
        .and_then(|s| s.take())
    {
        return response.map(|_| Either::Right(body));
    }
    response.map(|b| Either::Left(Full::new(b)))
}
