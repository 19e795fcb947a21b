//! JMAP push subscriptions' way out (RFC 8620 §7.2): each message is one
//! HTTPS POST to the subscription's URL over WebPKI-checked TLS (the
//! outbound trust store), encrypted to the device's keys when it gave
//! some (RFC 8291), with RFC 8030's `TTL`; and the pusher, a task that
//! the store's change announcements wake, which posts to every verified
//! subscription a StateChange of the types it asked for that moved.
//!
//! Each subscription is told from the states it last heard (the states
//! when the pusher first saw it verified); a message not taken is owed
//! and goes with the next change; a subscription the push service says
//! is gone (404, 410) is forgotten, as are expired ones, hourly.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jmap::Jmap;
use jmap::push::States;
use jmap::push_subscription::{PushFailure, PushSender};
use serde_json::Value;
use store::PushSubscription;

/// How long a push service keeps a message for an offline device
/// (RFC 8030 §5.2 `TTL`), seconds.
const TTL: u32 = 86_400;
/// The longest one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(20);
/// The most octets of a push service's answer read.
const MAX_ANSWER: usize = 16 << 10;

pub struct HttpsPushSender {
    pub resolver: dns::Resolver,
    pub tls: Arc<rustls::ClientConfig>,
}

impl PushSender for HttpsPushSender {
    fn send<'a>(
        &'a self,
        s: &'a PushSubscription,
        message: &'a Value,
    ) -> Pin<Box<dyn Future<Output = Result<(), PushFailure>> + Send + 'a>> {
        Box::pin(async move {
            let failed = |why: String| PushFailure::Failed(why);
            let (host, port, path) =
                dns::https::parts(&s.url).ok_or_else(|| failed("not an https URL".into()))?;
            let text = message.to_string();
            let mut headers = vec![("TTL", TTL.to_string())];
            let body = match &s.keys {
                Some((p256dh, auth)) => {
                    headers.push(("Content-Encoding", "aes128gcm".into()));
                    let sealed =
                        jmap::webpush::encrypt(p256dh, auth, text.as_bytes()).map_err(failed)?;
                    ("application/octet-stream", sealed)
                }
                None => ("application/json", text.into_bytes()),
            };
            let ask = dns::https::Ask {
                method: http::Method::POST,
                path: &path,
                body: Some(body),
                headers: &headers,
                max_answer: MAX_ANSWER,
            };
            let request = dns::https::request(&self.resolver, &host, port, self.tls.clone(), &ask);
            match tokio::time::timeout(POST_TIMEOUT, request).await {
                Err(_) => Err(failed("timed out".into())),
                Ok(Err(e)) => Err(failed(e)),
                Ok(Ok(a)) if a.status.is_success() => Ok(()),
                Ok(Ok(a)) if matches!(a.status.as_u16(), 404 | 410) => Err(PushFailure::Gone),
                Ok(Ok(a)) => Err(failed(format!("answered {}", a.status))),
            }
        })
    }
}

/// What the pusher remembers of each subscription: the states it heard.
type Heard = HashMap<i64, States>;

/// Push changes to verified subscriptions until the process ends.
pub async fn run(jmap: Arc<Jmap>, sender: Arc<dyn PushSender>) {
    let mut changes = jmap.store().watch();
    let mut heard = Heard::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            r = changes.recv() => {
                if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
                while changes.try_recv().is_ok() {}
            }
            _ = jmap.push_changed.notified() => {}
            _ = sweep.tick() => {
                let now = message::date::unix_now();
                if let Ok(n @ 1..) = jmap.store().remove_expired_push_subscriptions(now).await {
                    tracing::info!(expired = n, "jmap: push subscriptions expired");
                }
            }
        }
        push_all(&jmap, sender.as_ref(), &mut heard).await;
    }
}

/// One round: every active subscription told what moved since it last heard.
async fn push_all(jmap: &Jmap, sender: &dyn PushSender, heard: &mut Heard) {
    let now = message::date::unix_now();
    let Ok(active) = jmap.store().active_push_subscriptions(now).await else {
        return;
    };
    heard.retain(|id, _| active.iter().any(|s| s.id == *id));
    let mut states: HashMap<store::AccountId, States> = HashMap::new();
    for s in active {
        let now_states = match states.get(&s.account) {
            Some(st) => st.clone(),
            None => match jmap.account_states(s.account).await {
                Ok(st) => {
                    states.insert(s.account, st.clone());
                    st
                }
                Err(_) => continue,
            },
        };
        let Some(last) = heard.get(&s.id) else {
            heard.insert(s.id, now_states);
            continue;
        };
        let account_id = format!("A{}", s.account);
        let Some(change) =
            jmap::push::state_change(&account_id, last, &now_states, s.types.as_deref())
        else {
            continue;
        };
        match sender.send(&s, &change).await {
            Ok(()) => {
                heard.insert(s.id, now_states);
                metrics::counter!("tern_jmap_pushes_total", "result" => "sent").increment(1);
            }
            Err(PushFailure::Gone) => {
                tracing::info!(subscription = s.id, url = %s.url, "jmap: push subscription gone");
                let _ = jmap.store().remove_push_subscription(s.account, s.id).await;
                metrics::counter!("tern_jmap_pushes_total", "result" => "gone").increment(1);
            }
            Err(PushFailure::Failed(e)) => {
                tracing::info!(subscription = s.id, url = %s.url, error = %e, "jmap: push not delivered");
                metrics::counter!("tern_jmap_pushes_total", "result" => "failed").increment(1);
            }
        }
    }
}
