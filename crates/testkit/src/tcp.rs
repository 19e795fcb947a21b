//! A client connection for transcripts and tests: plain TCP, upgraded to TLS on
//! demand, without certificate checks (test servers use self-signed ones).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::transcript::Wire;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a transcript's `!inbox` and `!queue` look into the server's store.
pub trait Probe: Send + Sync {
    fn inbox(&self, address: &str) -> BoxFuture<'_, Result<usize, String>>;
    fn queue(&self) -> BoxFuture<'_, Result<usize, String>>;
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

pub struct TcpWire {
    stream: Stream,
    buf: Vec<u8>,
    probe: Option<Arc<dyn Probe>>,
    /// How long to wait for a line.
    pub timeout: Duration,
}

impl TcpWire {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<TcpWire> {
        let s = TcpStream::connect(addr).await?;
        Ok(TcpWire {
            stream: Stream::Plain(s),
            buf: Vec::new(),
            probe: None,
            timeout: Duration::from_secs(15),
        })
    }

    /// Connect from a chosen local address (another 127.0.0.x stands for another client).
    pub async fn connect_from(
        local: std::net::IpAddr,
        addr: SocketAddr,
    ) -> std::io::Result<TcpWire> {
        let socket = if local.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(local, 0))?;
        let s = socket.connect(addr).await?;
        Ok(TcpWire {
            stream: Stream::Plain(s),
            buf: Vec::new(),
            probe: None,
            timeout: Duration::from_secs(15),
        })
    }

    /// Connect and do the TLS handshake at once (implicit TLS, RFC 8314).
    pub async fn connect_tls(addr: SocketAddr) -> std::io::Result<TcpWire> {
        let mut w = TcpWire::connect(addr).await?;
        w.starttls().await?;
        Ok(w)
    }

    pub fn with_probe(mut self, probe: Arc<dyn Probe>) -> TcpWire {
        self.probe = Some(probe);
        self
    }

    /// The negotiated TLS version, if any.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        match &self.stream {
            Stream::Tls(s) => s.get_ref().1.protocol_version(),
            _ => None,
        }
    }

    async fn read_some(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16384];
        let n = match &mut self.stream {
            Stream::Plain(s) => s.read(&mut chunk).await?,
            Stream::Tls(s) => s.read(&mut chunk).await?,
            Stream::Gone => 0,
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Everything the server sends until it closes (bounded by the timeout).
    pub async fn read_to_end(&mut self) -> std::io::Result<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.read_some()).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => {}
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "server did not close",
                    ));
                }
            }
        }
        Ok(std::mem::take(&mut self.buf))
    }
}

impl Wire for TcpWire {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes).await,
            Stream::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Stream::Gone => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "closed",
            )),
        }
    }

    async fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(Some(line));
            }
            match tokio::time::timeout_at(deadline, self.read_some()).await {
                Ok(Ok(0)) => return Ok(None),
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "no reply line; buffered {:?}",
                            String::from_utf8_lossy(&self.buf)
                        ),
                    ));
                }
            }
        }
    }

    async fn starttls(&mut self) -> std::io::Result<()> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(std::io::Error::other("already TLS"));
        };
        self.buf.clear();
        let connector = TlsConnector::from(insecure_client_config(&[]));
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let tls = connector.connect(name, tcp).await?;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    async fn inbox_count(&mut self, address: &str) -> Result<usize, String> {
        match &self.probe {
            Some(p) => p.inbox(address).await,
            None => Err("no store probe on this wire".into()),
        }
    }

    async fn queue_count(&mut self) -> Result<usize, String> {
        match &self.probe {
            Some(p) => p.queue().await,
            None => Err("no store probe on this wire".into()),
        }
    }
}

/// A TLS client that accepts any certificate, offering these ALPN ids.
pub fn insecure_client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    net::tls::opportunistic_client(alpn).unwrap_or_else(|e| panic!("TLS client config: {e}"))
}
