//! Accept loops with connection limits, per listener.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::cidr::Cidr;
use crate::driver::{HANDSHAKE_TIMEOUT, drive};
use crate::session::{ConnInfo, Protocol};
use crate::shutdown::{Phase, Shutdown};
use crate::stream::Stream;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Connection limits of the whole server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    /// Client ranges the per-IP limit does not apply to (local proxies, webmail).
    pub per_ip_exempt: Vec<Cidr>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_per_ip: 100,
            per_ip_exempt: vec![Cidr::from_loopback_v4(), Cidr::from_loopback_v6()],
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

/// Counts connections in total and per client IP.
#[derive(Debug)]
pub struct ConnLimiter {
    limits: Limits,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

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
        })
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
            let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.limits.max_per_ip {
                drop(map);
                self.total.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            *n += 1;
            Some(ip)
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

/// Serve `protocol` on `listener` until the server drains.
pub async fn serve<P: Protocol>(
    listener: TcpListener,
    protocol: Arc<P>,
    tls: TlsMode,
    limiter: Arc<ConnLimiter>,
    shutdown: Shutdown,
) {
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
                tracing::warn!(error = %e, listener = protocol.name(), "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(permit) = limiter.try_acquire(peer.ip()) else {
            tracing::info!(%peer, listener = protocol.name(), "connection limit reached, refusing");
            refuse(
                tcp,
                protocol.busy_reply(),
                matches!(tls, TlsMode::Implicit(_)),
            );
            continue;
        };
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("conn", id, proto = protocol.name(), peer = %peer);
        let (protocol, tls, guard, phase) = (
            protocol.clone(),
            tls.clone(),
            shutdown.track(),
            shutdown.subscribe(),
        );
        tokio::spawn(
            async move {
                let _permit = permit;
                let _guard = guard;
                let local = tcp
                    .local_addr()
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                tracing::info!("connected");
                connection(tcp, id, peer, local, protocol, tls, phase).await;
                tracing::info!("disconnected");
            }
            .instrument(span),
        );
    }
}

async fn connection<P: Protocol>(
    tcp: TcpStream,
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    protocol: Arc<P>,
    tls: TlsMode,
    phase: tokio::sync::watch::Receiver<Phase>,
) {
    let mut conn = ConnInfo {
        id,
        peer,
        local,
        tls: None,
    };
    let (stream, upgrade) = match tls {
        TlsMode::None => (Stream::Plain(tcp), None),
        TlsMode::StartTls(acceptor) => (Stream::Plain(tcp), Some(acceptor)),
        TlsMode::Implicit(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => {
                    let info = crate::tls::info(s.get_ref().1);
                    tracing::info!(version = %info.version, cipher = %info.cipher, "TLS established");
                    conn.tls = Some(info);
                    (Stream::Tls(Box::new(s)), None)
                }
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!("TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let session = protocol.new_session(&conn);
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
