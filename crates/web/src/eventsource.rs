//! JMAP push over an event source (RFC 8620 §7.3): a `text/event-stream`
//! response that stays open and carries a `state` event (a StateChange
//! object, §7.1) whenever the account's Mailbox, Email or Thread state
//! moves, from whatever path (SMTP delivery, IMAP, POP3, JMAP), and a
//! `ping` event every `ping` seconds when asked. `closeafter=state` ends
//! the response after the first state event (for clients that poll).
//!
//! A connection costs one task and a channel of a few events; the
//! server's store change announcements wake it, and it reads the three
//! states of its account (three index lookups) to see what changed.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use hyper::body::{Body, Frame};
use jmap::Jmap;
use store::AccountRecord;
use tokio::sync::{broadcast, mpsc};

use crate::query;

/// A response body fed from a channel: each message is one frame; an
/// error ends the response without its proper end (a download whose
/// message vanished half way is not taken for complete).
pub struct ChannelBody(pub mpsc::Receiver<std::io::Result<Bytes>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|next| next.map(|b| b.map(Frame::data)))
    }
}

/// A streamed body riding on a `Response<Bytes>` through the routes (as a
/// response extension), put in place of the empty body before it is sent.
#[derive(Clone)]
pub struct Streamed(Arc<std::sync::Mutex<Option<ChannelBody>>>);

impl Streamed {
    pub fn new(body: ChannelBody) -> Streamed {
        Streamed(Arc::new(std::sync::Mutex::new(Some(body))))
    }

    pub fn take(&self) -> Option<ChannelBody> {
        self.0.lock().ok()?.take()
    }
}

/// The shortest ping interval taken (§7.3: the server may set a minimum).
const MIN_PING: u64 = 5;
/// The longest: a client asking more gets this.
const MAX_PING: u64 = 600;

/// What the client asked for in the query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// None: every type (`*`).
    pub types: Option<Vec<String>>,
    pub close_after_state: bool,
    pub ping: Option<Duration>,
}

impl Options {
    /// `types`, `closeafter` and `ping` of the query (§7.3); None when a
    /// value is not one the RFC allows.
    pub fn parse(q: Option<&str>) -> Option<Options> {
        let types = match query::param(q, "types").as_deref() {
            None | Some("*") => None,
            Some(list) => Some(list.split(',').map(str::to_string).collect()),
        };
        let close_after_state = match query::param(q, "closeafter").as_deref() {
            None | Some("no") => false,
            Some("state") => true,
            Some(_) => return None,
        };
        let ping = match query::param(q, "ping") {
            None => None,
            Some(p) => match p.parse::<u64>().ok()? {
                0 => None,
                n => Some(Duration::from_secs(n.clamp(MIN_PING, MAX_PING))),
            },
        };
        Some(Options {
            types,
            close_after_state,
            ping,
        })
    }
}

/// Start the event stream of an authenticated account: every change
/// after the response starts is told.
pub async fn open(
    jmap: Arc<Jmap>,
    account: AccountRecord,
    options: Options,
) -> Response<ChannelBody> {
    let (tx, rx) = mpsc::channel(4);
    let watch = jmap.store().watch();
    let states = jmap.states(&account).await.unwrap_or_default();
    tokio::spawn(push(jmap, account, options, states, watch, tx));
    metrics::gauge!("tern_jmap_event_sources").increment(1.0);
    let mut r = Response::new(ChannelBody(rx));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn push(
    jmap: Arc<Jmap>,
    account: AccountRecord,
    options: Options,
    mut last: jmap::push::States,
    mut watch: broadcast::Receiver<store::MailboxId>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
) {
    let account_id = jmap::account_id(&account);
    let ping = options.ping.unwrap_or(Duration::from_secs(MAX_PING));
    let mut ticker = tokio::time::interval(ping);
    ticker.tick().await; // the first tick is at once
    loop {
        tokio::select! {
            _ = tx.closed() => break,
            r = watch.recv() => {
                if matches!(r, Err(broadcast::error::RecvError::Closed)) {
                    break;
                }
                // Several announcements of one change come together.
                while watch.try_recv().is_ok() {}
                let Ok(now) = jmap.states(&account).await else { continue };
                let change = jmap::push::state_change(&account_id, &last, &now, options.types.as_deref());
                last = now;
                let Some(event) = change else { continue };
                if tx.send(Ok(Bytes::from(format!("event: state\ndata: {event}\n\n")))).await.is_err()
                    || options.close_after_state
                {
                    break;
                }
            }
            _ = ticker.tick(), if options.ping.is_some() => {
                let data = serde_json::json!({"interval": ping.as_secs()});
                if tx.send(Ok(Bytes::from(format!("event: ping\ndata: {data}\n\n")))).await.is_err() {
                    break;
                }
            }
        }
    }
    metrics::gauge!("tern_jmap_event_sources").decrement(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_the_query() {
        let o = Options::parse(Some("types=Email,Mailbox&closeafter=state&ping=1")).unwrap();
        assert_eq!(
            o.types,
            Some(vec!["Email".to_string(), "Mailbox".to_string()])
        );
        assert!(o.close_after_state);
        assert_eq!(o.ping, Some(Duration::from_secs(MIN_PING)));
        let all = Options::parse(Some("types=*&closeafter=no&ping=0")).unwrap();
        assert_eq!(all.types, None);
        assert_eq!(all.ping, None);
        assert!(Options::parse(Some("closeafter=maybe")).is_none());
        assert!(Options::parse(Some("ping=-1")).is_none());
    }
}
