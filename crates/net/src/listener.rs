//! Accept loops with connection limits, per listener.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::cidr::Cidr;
use crate::driver::{HANDSHAKE_TIMEOUT, drive};
use crate::gauge::Gauged;
use crate::session::{ConnInfo, Protocol, TlsInfo};
use crate::shutdown::{Phase, Shutdown};
use crate::stream::Stream;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Connection limits of the whole server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    /// Client ranges the per-IP limits do not apply to (local proxies, webmail).
    pub per_ip_exempt: Vec<Cidr>,
    /// TLS handshakes one client IP may start per minute (implicit TLS and
    /// STARTTLS alike; a burst of as many is allowed); 0: no limit
    /// (hardening.md C-TLS12).
    pub handshakes_per_ip_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_per_ip: 100,
            per_ip_exempt: vec![Cidr::from_loopback_v4(), Cidr::from_loopback_v6()],
            handshakes_per_ip_minute: 300,
        }
    }
}

impl Cidr {
    fn from_loopback_v4() -> Cidr {
        "127.0.0.0/8".parse().unwrap_or_else(|_| unreachable!())
    }
    fn from_loopback_v6() -> Cidr {
        "::1/128".parse().unwrap_or_else(|_| unreachable!())
    }
}

/// Counts connections in total and per client, and TLS handshakes per
/// client (an IPv4 address or an IPv6 /64: [`crate::cidr::client_network`]).
#[derive(Debug)]
pub struct ConnLimiter {
    limits: Limits,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    handshakes: Mutex<HashMap<IpAddr, Bucket>>,
}

/// A token bucket: handshakes left, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before the full ones are forgotten (a full bucket is the
/// same as no bucket).
const BUCKETS_KEPT: usize = 10_000;

/// Holds one connection's place; frees it on drop.
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    ip: Option<IpAddr>,
}

impl ConnLimiter {
    pub fn new(limits: Limits) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter {
            limits,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            handshakes: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a client may start a TLS handshake now (hardening.md
    /// C-TLS12): each costs the server a key exchange and a signature, so
    /// one address opening and closing connections in a loop would take
    /// the CPU from everyone else, whatever the connection limits.
    pub fn allow_handshake(&self, ip: IpAddr) -> bool {
        let per_minute = f64::from(self.limits.handshakes_per_ip_minute);
        if per_minute == 0.0 || self.limits.per_ip_exempt.iter().any(|c| c.contains(ip)) {
            return true;
        }
        self.allow_handshake_at(crate::cidr::client_network(ip), Instant::now(), per_minute)
    }

    fn allow_handshake_at(&self, ip: IpAddr, now: Instant, per_minute: f64) -> bool {
        let refill = |b: &Bucket| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            (b.tokens + elapsed * per_minute / 60.0).min(per_minute)
        };
        let mut buckets = self.handshakes.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= BUCKETS_KEPT {
            buckets.retain(|_, b| refill(b) < per_minute);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: per_minute,
            at: now,
        });
        let tokens = refill(bucket);
        let allowed = tokens >= 1.0;
        *bucket = Bucket {
            tokens: if allowed { tokens - 1.0 } else { tokens },
            at: now,
        };
        if !allowed {
            metrics::counter!("tern_tls_handshakes_refused_total").increment(1);
        }
        allowed
    }

    /// A place for a connection from `ip`, or None when a limit is reached.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnPermit> {
        if self.total.fetch_add(1, Ordering::SeqCst) >= self.limits.max_connections {
            self.total.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let counted_ip = if self.limits.per_ip_exempt.iter().any(|c| c.contains(ip)) {
            None
        } else {
            let client = crate::cidr::client_network(ip);
            let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(client).or_insert(0);
            if *n >= self.limits.max_per_ip {
                drop(map);
                self.total.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            *n += 1;
            Some(client)
        };
        Some(ConnPermit {
            limiter: self.clone(),
            ip: counted_ip,
        })
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limiter.total.fetch_sub(1, Ordering::SeqCst);
        if let Some(ip) = self.ip {
            let mut map = self
                .limiter
                .per_ip
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// How a listener speaks TLS.
#[derive(Clone)]
pub enum TlsMode {
    /// No TLS at all.
    None,
    /// Plaintext first; STARTTLS/STLS upgrades with this acceptor.
    StartTls(TlsAcceptor),
    /// TLS from the first byte (RFC 8314).
    Implicit(TlsAcceptor),
}

/// One accepted connection, with its place under the limits already taken.
pub struct Accepted {
    pub tcp: TcpStream,
    pub info: ConnInfo,
    /// The server's phase, to close idle connections when it drains.
    pub phase: tokio::sync::watch::Receiver<Phase>,
    /// The limits, for the TLS handshakes this connection starts.
    pub limiter: Arc<ConnLimiter>,
}

/// What a listener is, for the accept loop: its name in logs and metrics
/// (`smtp`, `imaps`, `https`...), what a refused client is told, and whether
/// TLS starts with the first byte (then nothing can be told in clear).
#[derive(Clone)]
pub struct ListenerKind {
    pub label: String,
    pub busy_reply: &'static [u8],
    pub implicit_tls: bool,
}

/// Accept connections on `listener` until the server drains: each one under
/// the connection limits (a refused client is told `busy_reply` and closed),
/// counted open for the graceful stop, in its own task running `handle`.
/// The one accept loop of every listener, whatever it speaks.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    kind: ListenerKind,
    limiter: Arc<ConnLimiter>,
    shutdown: Shutdown,
    handle: F,
) where
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let label = kind.label.clone();
    let mut phase = shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = phase.changed() => {
                if *phase.borrow() != Phase::Running { break }
                continue;
            }
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends (hardening.md C-FT8): back off instead of spinning.
                tracing::warn!(error = %e, listener = label.as_str(), "accept failed");
                metrics::counter!("tern_accept_errors_total", "listener" => label.clone())
                    .increment(1);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(permit) = limiter.try_acquire(peer.ip()) else {
            tracing::info!(%peer, listener = label.as_str(), "connection limit reached, refusing");
            metrics::counter!("tern_connections_refused_total", "listener" => label.clone())
                .increment(1);
            refuse(tcp, kind.busy_reply, kind.implicit_tls);
            continue;
        };
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("conn", id, proto = label.as_str(), peer = %peer);
        let local = tcp
            .local_addr()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let accepted = Accepted {
            tcp,
            info: ConnInfo {
                id,
                peer,
                local,
                tls: None,
            },
            phase: shutdown.subscribe(),
            limiter: limiter.clone(),
        };
        let (guard, work) = (shutdown.track(), handle(accepted));
        metrics::counter!("tern_connections_total", "listener" => label.clone()).increment(1);
        let open =
            Gauged::new(metrics::gauge!("tern_connections_open", "listener" => label.clone()));
        tokio::spawn(
            async move {
                let _permit = permit;
                let _guard = guard;
                let _open = open;
                tracing::info!("connected");
                work.await;
                tracing::info!("disconnected");
            }
            .instrument(span),
        );
    }
}

/// The server side of a TLS handshake, bounded in time (hardening.md
/// C-TLS11) and in rate per client address (C-TLS12); None (logged) when
/// it is refused, fails or times out.
pub async fn accept_tls(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    limiter: &ConnLimiter,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, TlsInfo)> {
    if let Ok(peer) = tcp.peer_addr()
        && !limiter.allow_handshake(peer.ip())
    {
        tracing::info!("too many TLS handshakes from this address; closing");
        return None;
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => {
            let info = crate::tls::info(s.get_ref().1);
            tracing::info!(version = %info.version, cipher = %info.cipher, "TLS established");
            Some((s, info))
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!("TLS handshake timed out");
            None
        }
    }
}

/// A listener's name in logs and metrics: the protocol's, with an "s" for
/// implicit TLS (submissions, imaps, pop3s, https).
pub fn label(name: &str, implicit_tls: bool) -> String {
    match implicit_tls {
        true => format!("{name}s"),
        false => name.to_string(),
    }
}

/// Serve `protocol` on `listener` until the server drains.
pub async fn serve<P: Protocol>(
    listener: TcpListener,
    protocol: Arc<P>,
    tls: TlsMode,
    limiter: Arc<ConnLimiter>,
    shutdown: Shutdown,
) {
    let implicit_tls = matches!(tls, TlsMode::Implicit(_));
    let kind = ListenerKind {
        label: label(protocol.name(), implicit_tls),
        busy_reply: protocol.busy_reply(),
        implicit_tls,
    };
    accept_loop(listener, kind, limiter, shutdown, move |accepted| {
        connection(accepted, protocol.clone(), tls.clone())
    })
    .await;
}

async fn connection<P: Protocol>(accepted: Accepted, protocol: Arc<P>, tls: TlsMode) {
    let Accepted {
        tcp,
        mut info,
        phase,
        limiter,
    } = accepted;
    let (stream, upgrade) = match tls {
        TlsMode::None => (Stream::Plain(tcp), None),
        TlsMode::StartTls(acceptor) => (Stream::Plain(tcp), Some((acceptor, limiter))),
        TlsMode::Implicit(acceptor) => {
            let Some((s, tls)) = accept_tls(&acceptor, tcp, &limiter).await else {
                return;
            };
            info.tls = Some(tls);
            (Stream::Tls(Box::new(s)), None)
        }
    };
    let session = protocol.new_session(&info);
    drive(stream, session, upgrade, phase).await;
}

/// Tell a refused client to come back later, without holding a place for it.
fn refuse(mut tcp: TcpStream, reply: &'static [u8], implicit_tls: bool) {
    tokio::spawn(async move {
        if !implicit_tls {
            let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(reply)).await;
        }
        let _ = tcp.shutdown().await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections per client: an IPv6 /64 is one client; other clients
    /// and exempt ranges are not held back; a place comes back on drop.
    #[test]
    fn connections_are_limited_per_client() {
        let limiter = ConnLimiter::new(Limits {
            max_per_ip: 2,
            ..Limits::default()
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let first = limiter.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        let _second = limiter.try_acquire(ip("2001:db8:1:2::2")).unwrap();
        assert!(limiter.try_acquire(ip("2001:db8:1:2:abcd::3")).is_none());
        assert!(limiter.try_acquire(ip("2001:db8:1:3::1")).is_some());
        assert!(limiter.try_acquire(ip("::1")).is_some(), "exempt");
        drop(first);
        assert!(limiter.try_acquire(ip("2001:db8:1:2::9")).is_some());
    }

    /// C-TLS12: a burst of the minute's handshakes, then one per
    /// 60/N seconds; other addresses and exempt ranges unaffected.
    #[test]
    fn handshakes_are_limited_per_address() {
        let limiter = ConnLimiter::new(Limits {
            handshakes_per_ip_minute: 6,
            ..Limits::default()
        });
        let (a, b): (IpAddr, IpAddr) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        let t0 = Instant::now();
        let allow =
            |ip, secs: u64| limiter.allow_handshake_at(ip, t0 + Duration::from_secs(secs), 6.0);
        assert!((0..6).all(|_| allow(a, 0)));
        assert!(!allow(a, 0));
        assert!(allow(b, 0), "another address has its own bucket");
        assert!(!allow(a, 9), "one token per 10 s");
        assert!(allow(a, 10));
        assert!(!allow(a, 10));
        let (c, d): (IpAddr, IpAddr) = (
            "2001:db8:1:2::1".parse().unwrap(),
            "2001:db8:1:2:ffff::2".parse().unwrap(),
        );
        let allow_now = |ip| limiter.allow_handshake(ip);
        assert!((0..6).all(|_| allow_now(c)));
        assert!(!allow_now(d), "one IPv6 /64 shares one bucket");
        let loopback: IpAddr = [127, 0, 0, 1].into();
        assert!(
            (0..100).all(|_| limiter.allow_handshake(loopback)),
            "exempt"
        );
    }
}
