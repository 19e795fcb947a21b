//! The network loop around a [`Session`]: read, hand the bytes to the session,
//! write its replies, and carry out what it asks (TLS, close). The same loop
//! serves SMTP, IMAP and POP3.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use std::sync::Arc;

use crate::deflate::Deflate;
use crate::listener::ConnLimiter;
use crate::session::{Flow, Session};
use crate::shutdown::Phase;
use crate::stream::Stream;

/// A session that lets its input grow past this is closed (a safety net: sessions
/// bound their own input far below it).
const HARD_INPUT_LIMIT: usize = 4 << 20;
/// How long a TLS handshake may take (hardening.md C-TLS11).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long writing one batch of replies may take before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// Slow clients (slowloris, hardening.md C-SL1): while a command is
/// incomplete or a transaction is in progress, the idle timeout alone would
/// let a client hold the session forever by sending a byte before each
/// timeout. So work in progress has a deadline of its own: the session's
/// timeout, plus one second for every [`MIN_RATE`] octets received since
/// the work began (Postfix's `smtpd_min_data_rate` is the same idea). An
/// idle session (nothing buffered, nothing in progress: IMAP IDLE too)
/// only has the idle timeout.
pub const MIN_RATE: u64 = 500;

/// Work in progress: since when, and how much has arrived since.
#[derive(Debug, Default)]
struct Progress {
    since: Option<tokio::time::Instant>,
    octets: u64,
}

impl Progress {
    /// Starts or ends the clock as the session is busy or not.
    fn track(&mut self, busy: bool) {
        match (busy, self.since) {
            (true, None) => {
                self.since = Some(tokio::time::Instant::now());
                self.octets = 0;
            }
            (false, Some(_)) => self.since = None,
            _ => {}
        }
    }

    /// How long the next read may wait: the idle limit, or less when the
    /// work in progress is due sooner.
    fn read_limit(&self, idle_limit: Duration) -> Duration {
        match self.since {
            None => idle_limit,
            Some(since) => {
                let allowed = idle_limit + Duration::from_secs(self.octets / MIN_RATE);
                idle_limit.min(allowed.saturating_sub(since.elapsed()))
            }
        }
    }
}

/// Run one connection to its end.
///
/// The session's futures (`receive`, `resume`, `on_event`) are boxed: an
/// SMTP `receive` that may deliver a message is a large state machine, and
/// held inline it would make every idle connection's task that large
/// (30.6 KiB per idle SMTP connection before, 15.8 KiB after, measured with
/// `scripts/prove-connections 2000`).
pub async fn drive<S: Session>(
    mut stream: Stream,
    mut session: S,
    tls: Option<(TlsAcceptor, Arc<ConnLimiter>)>,
    mut phase: watch::Receiver<Phase>,
) {
    let mut input = BytesMut::with_capacity(4096);
    let mut out = Vec::with_capacity(512);
    session.greeting(&mut out);
    if write(&mut stream, &mut out).await.is_err() {
        return;
    }
    if let Some(wait) = session.pregreet_wait() {
        match tokio::time::timeout(wait, stream.read_buf(&mut input)).await {
            // Silent through the wait, as a real mail server is.
            Err(_) => session.greeting_done(&mut out),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {
                let flow = session.early_talker(&input, &mut out);
                input.clear();
                let _ = write(&mut stream, &mut out).await;
                if flow == Flow::Close {
                    let _ = tokio::time::timeout(Duration::from_secs(5), stream.shutdown()).await;
                    return;
                }
            }
        }
        if write(&mut stream, &mut out).await.is_err() {
            return;
        }
    }
    // RFC 4978: once COMPRESS is on, what is read is inflated into `input`
    // and every batch of replies is deflated.
    let mut deflate: Option<Deflate> = None;
    let mut raw = BytesMut::with_capacity(RAW_MIN);
    let mut progress = Progress::default();
    loop {
        if *phase.borrow() == Phase::Stop && session.has_more() {
            // In the middle of an answer: a goodbye now would be read as
            // part of it.
            break;
        }
        if *phase.borrow() == Phase::Stop
            || (*phase.borrow() == Phase::Draining && session.is_idle() && !session.has_more())
        {
            session.on_shutdown(&mut out);
            let _ = write_maybe_compressed(&mut stream, &mut out, deflate.is_some()).await;
            break;
        }
        let idle_limit = session.timeout();
        progress.track(!input.is_empty() || !session.is_idle());
        let read_limit = progress.read_limit(idle_limit);
        let flow = if session.has_more() {
            // Backpressure (C-SL2): the previous piece is written; make the
            // next one. Nothing is read meanwhile, so a client that does
            // not read stalls its own answer, each piece bounded by
            // WRITE_TIMEOUT. The client reading it is progress: the
            // slowloris clock starts again.
            progress = Progress::default();
            Box::pin(session.resume(&mut input, &mut out)).await
        } else {
            tokio::select! {
            changed = phase.changed() => {
                if changed.is_err() {
                    // The server is gone without saying goodbye: treat as Stop.
                    session.on_shutdown(&mut out);
                    let _ = write_maybe_compressed(&mut stream, &mut out, deflate.is_some()).await;
                    break;
                }
                continue;
            }
            _ = session.wait_event() => Box::pin(session.on_event(&mut out)).await,
            read = tokio::time::timeout(read_limit, read_some(&mut stream, &mut raw, &mut input, deflate.as_mut())) => match read {
                Err(_) => {
                    match read_limit < idle_limit {
                        true => tracing::info!(octets = progress.octets, "too slow: work in progress past its deadline"),
                        false => tracing::info!("idle timeout"),
                    }
                    session.on_timeout(&mut out);
                    let _ = write_maybe_compressed(&mut stream, &mut out, deflate.is_some()).await;
                    break;
                }
                Ok(Ok(0)) => break,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "read failed");
                    break;
                }
                Ok(Ok(n)) => {
                    progress.octets += n as u64;
                    Box::pin(session.receive(&mut input, &mut out)).await
                }
            },
            }
        };
        if write_maybe_compressed(&mut stream, &mut out, deflate.is_some())
            .await
            .is_err()
        {
            break;
        }
        match flow {
            Flow::Continue if input.len() > HARD_INPUT_LIMIT => {
                tracing::warn!(buffered = input.len(), "input limit exceeded, closing");
                break;
            }
            Flow::Continue => {}
            Flow::Close => break,
            Flow::Compress => {
                // The bytes after the command were compressed by the client.
                let mut d = Deflate::new();
                let pending = input.split();
                if let Err(e) = d.inflate(&pending, &mut input, HARD_INPUT_LIMIT) {
                    tracing::info!(error = %e, "compressed input refused");
                    break;
                }
                deflate = Some(d);
                if !input.is_empty() {
                    let flow = Box::pin(session.receive(&mut input, &mut out)).await;
                    if write_maybe_compressed(&mut stream, &mut out, true)
                        .await
                        .is_err()
                        || flow == Flow::Close
                    {
                        break;
                    }
                }
            }
            Flow::StartTls => {
                // C-TLS1: whatever the client pipelined after STARTTLS was sent in the
                // clear and must not be read as commands inside TLS.
                input.clear();
                let (Stream::Plain(tcp), Some((acceptor, limiter))) = (stream, tls.as_ref()) else {
                    tracing::warn!("STARTTLS asked on a connection that cannot upgrade");
                    return;
                };
                // C-TLS12: the session has said "go ahead"; closing now is
                // what a failed handshake looks like, and the client retries
                // later.
                if let Ok(peer) = tcp.peer_addr()
                    && !limiter.allow_handshake(peer.ip())
                {
                    tracing::info!("too many TLS handshakes from this address; closing");
                    return;
                }
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls_stream)) => {
                        let info = crate::tls::info(tls_stream.get_ref().1);
                        tracing::info!(version = %info.version, cipher = %info.cipher, "STARTTLS done");
                        session.tls_started(info);
                        stream = Stream::Tls(Box::new(tls_stream));
                    }
                    Ok(Err(e)) => {
                        tracing::info!(error = %e, "STARTTLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!("STARTTLS handshake timed out");
                        return;
                    }
                }
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.shutdown()).await;
}

/// Read what the client sent into `input`, inflating it when compression
/// is on; 0 is the end of the connection.
///
/// The compressed bytes go through `raw`, which an idle session keeps
/// small (C-IM11): 1 KiB, doubled while reads fill it (an upload), back
/// to 1 KiB after one that does not.
async fn read_some(
    stream: &mut Stream,
    raw: &mut BytesMut,
    input: &mut BytesMut,
    deflate: Option<&mut Deflate>,
) -> std::io::Result<usize> {
    let Some(d) = deflate else {
        return stream.read_buf(input).await;
    };
    let want = raw.capacity().clamp(RAW_MIN, RAW_MAX);
    raw.clear();
    raw.reserve(want);
    let n = stream.read_buf(raw).await?;
    if n > 0 {
        d.inflate(raw, input, HARD_INPUT_LIMIT)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    }
    *raw = if n == want {
        BytesMut::with_capacity((want * 2).min(RAW_MAX))
    } else {
        BytesMut::with_capacity(RAW_MIN)
    };
    Ok(n)
}

const RAW_MIN: usize = 1024;
const RAW_MAX: usize = 64 * 1024;

async fn write_maybe_compressed(
    stream: &mut Stream,
    out: &mut Vec<u8>,
    compressed: bool,
) -> std::io::Result<()> {
    if compressed && !out.is_empty() {
        *out = Deflate::deflate(out);
    }
    write(stream, out).await
}

async fn write(stream: &mut Stream, out: &mut Vec<u8>) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let result = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(out).await?;
        stream.flush().await
    })
    .await
    .unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write timed out",
        ))
    });
    out.clear();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_in_progress_has_a_deadline_that_data_extends() {
        let idle = Duration::from_secs(60);
        let mut p = Progress::default();
        p.track(false);
        assert_eq!(p.read_limit(idle), idle);
        p.track(true);
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(p.read_limit(idle), Duration::from_secs(10));
        // 5,000 octets buy 10 more seconds.
        p.octets += 5000;
        p.track(true);
        assert_eq!(p.read_limit(idle), Duration::from_secs(20));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(p.read_limit(idle), Duration::ZERO);
        // Idle again: the clock stops, and starts afresh with the next work.
        p.track(false);
        assert_eq!(p.read_limit(idle), idle);
        p.track(true);
        assert_eq!(p.read_limit(idle), idle);
    }
}
