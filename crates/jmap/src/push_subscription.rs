//! PushSubscription (RFC 8620 §7.2): a device asks to be told of changes
//! by an HTTPS POST to its URL (a Web Push service's, RFC 8030). Not tied
//! to an account: no `accountId`, no state; a user sees only their own.
//!
//! On creation the server posts a PushVerification object holding a
//! random code; nothing else is sent until the device sets
//! `verificationCode` to it. `url` and `keys` are never shown back
//! (§7.2.1: they are private to the device); with `keys`, every message
//! is encrypted to them (RFC 8291, [`crate::webpush`]). A subscription
//! lives at most [`MAX_LIFETIME`] (a client asking longer is told the
//! shorter `expires`), and a user has at most [`MAX_PER_USER`].

use std::future::Future;
use std::pin::Pin;

use base64::Engine;
use serde_json::{Map, Value, json};
use store::PushSubscription;

use crate::Context;
use crate::args::{self, Args};
use crate::error::{MethodError, SetError};
use crate::set::{SetRequest, SetResponse};

/// The longest a subscription lives without being renewed.
pub const MAX_LIFETIME: i64 = 7 * 86_400;
/// The most subscriptions one user keeps.
pub const MAX_PER_USER: usize = 32;

/// Why a push message was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushFailure {
    /// The push service says the subscription is gone (RFC 8030 §7.3:
    /// 404 or 410): it is forgotten.
    Gone,
    /// Anything else (tried again with the next change).
    Failed(String),
}

/// Where push messages go: one POST of a JSON object to a subscription's
/// URL (encrypted to its keys, if it has some), with RFC 8030's TTL.
pub trait PushSender: Send + Sync {
    fn send<'a>(
        &'a self,
        subscription: &'a PushSubscription,
        message: &'a Value,
    ) -> Pin<Box<dyn Future<Output = Result<(), PushFailure>> + Send + 'a>>;
}

/// The properties a client may see (not `url`, not `keys`).
const VISIBLE: [&str; 5] = [
    "id",
    "deviceClientId",
    "verificationCode",
    "expires",
    "types",
];

/// The id of a stored subscription.
fn id_of(n: i64) -> String {
    format!("P{n}")
}

fn to_json(s: &PushSubscription, properties: &[String]) -> Value {
    let mut out = Map::new();
    for p in properties {
        let v = match p.as_str() {
            "id" => json!(id_of(s.id)),
            "deviceClientId" => json!(s.device_client_id),
            // The code is shown once the device proved it has it.
            "verificationCode" => match s.verified {
                true => json!(s.verification_code),
                false => Value::Null,
            },
            "expires" => json!(message::date::rfc3339_text(s.expires)),
            "types" => json!(s.types),
            _ => continue,
        };
        out.insert(p.clone(), v);
    }
    Value::Object(out)
}

/// PushSubscription/get (§7.2.1).
pub async fn get(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    if context.jmap.push_sender.is_none() {
        return Err(MethodError::UnknownMethod);
    }
    let (ids, properties) =
        crate::set::get_arguments(args, context.jmap.limits.max_objects_in_get)?;
    let properties = match properties {
        Some(p) if p.iter().any(|x| x == "url" || x == "keys") => {
            return Err(MethodError::Forbidden("url and keys are not shown".into()));
        }
        Some(p) => p,
        None => VISIBLE.iter().map(|s| s.to_string()).collect(),
    };
    let all = context
        .store()
        .push_subscriptions(context.account.id)
        .await?;
    let wanted = ids.unwrap_or_else(|| all.iter().map(|s| id_of(s.id)).collect());
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    for id in wanted {
        match all.iter().find(|s| id_of(s.id) == id) {
            Some(s) => list.push(to_json(s, &properties)),
            None => not_found.push(id),
        }
    }
    Ok(json!({"list": list, "notFound": not_found}))
}

/// `expires` as asked, no later than the longest lifetime from `now`.
fn expires(asked: Option<&Value>, now: i64) -> Result<i64, SetError> {
    let latest = now + MAX_LIFETIME;
    match asked {
        None | Some(Value::Null) => Ok(latest),
        Some(v) => v
            .as_str()
            .and_then(message::date::rfc3339)
            .filter(|t| *t > now)
            .map(|t| t.min(latest))
            .ok_or_else(|| SetError::invalid("expires", "not a UTCDate in the future")),
    }
}

fn types(v: Option<&Value>) -> Result<Option<Vec<String>>, SetError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(list)) => list
            .iter()
            .map(|t| {
                t.as_str()
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .map(str::to_string)
                    .ok_or_else(|| SetError::invalid("types", "not a list of type names"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(SetError::invalid("types", "not a list")),
    }
}

/// A random code, 128 bits, base64url.
fn new_code() -> Result<String, SetError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| SetError::Forbidden("no randomness; try again".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// PushSubscription/set (§7.2.2): create (and send the verification),
/// update `verificationCode`, `expires`, `types`; destroy.
pub async fn set(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let Some(sender) = context.jmap.push_sender.clone() else {
        return Err(MethodError::UnknownMethod);
    };
    let request = SetRequest::parse(args, context.jmap.limits.max_objects_in_set, "")?;
    let store = context.store();
    let account = context.account.id;
    let now = message::date::unix_now();
    let mut response = SetResponse::default();
    let mut count = store.push_subscriptions(account).await?.len();
    for (creation, object) in request.create {
        if count >= MAX_PER_USER {
            response.not_created(
                creation,
                SetError::Forbidden(format!("at most {MAX_PER_USER} push subscriptions")),
            );
            continue;
        }
        match create(context, sender.as_ref(), &object, now).await {
            Ok((id, expires)) => {
                count += 1;
                response.created(
                    creation,
                    json!({"id": id_of(id), "expires": message::date::rfc3339_text(expires)}),
                );
            }
            Err(e) => response.not_created(creation, e),
        }
    }
    let mut mine = store.push_subscriptions(account).await?;
    for (id, patch) in request.update {
        let Some(s) = mine.iter_mut().find(|s| id_of(s.id) == id) else {
            response.not_updated(id, SetError::NotFound);
            continue;
        };
        match update(s, &patch, now) {
            Ok(changed_expires) => {
                store.update_push_subscription(s).await?;
                match changed_expires {
                    Some(t) => {
                        response
                            .updated
                            .insert(id, json!({"expires": message::date::rfc3339_text(t)}));
                    }
                    None => response.updated(id),
                }
            }
            Err(e) => response.not_updated(id, e),
        }
    }
    for id in request.destroy {
        let removed = match id.strip_prefix('P').and_then(|n| n.parse::<i64>().ok()) {
            Some(n) => store.remove_push_subscription(account, n).await?,
            None => false,
        };
        if removed {
            response.destroyed.push(id);
        } else {
            response.not_destroyed(id, SetError::NotFound);
        }
    }
    let mut out = response.into_value("", "", "");
    if let Value::Object(m) = &mut out {
        // §7.2.2: no accountId, no states.
        for k in ["accountId", "oldState", "newState"] {
            m.remove(k);
        }
    }
    context.jmap.push_changed.notify_one();
    Ok(out)
}

/// Keep a new subscription and post its PushVerification (§7.2.2); its
/// id and expiry.
async fn create(
    context: &Context<'_>,
    sender: &dyn PushSender,
    object: &Args,
    now: i64,
) -> Result<(i64, i64), SetError> {
    for k in object.keys() {
        if !["deviceClientId", "url", "keys", "expires", "types"].contains(&k.as_str()) {
            return Err(SetError::invalid(k, "cannot be set on create"));
        }
    }
    let device = object
        .get("deviceClientId")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty() && d.len() <= 255)
        .ok_or_else(|| SetError::invalid("deviceClientId", "required"))?;
    let url = object
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| {
            u.len() <= 2048
                && u.len() > "https://".len()
                && u.starts_with("https://")
                && u.bytes().all(|b| (0x21..0x7f).contains(&b))
        })
        .ok_or_else(|| SetError::invalid("url", "an https URL is required"))?;
    let keys = match object.get("keys") {
        None | Some(Value::Null) => None,
        Some(k) => {
            let field = |n: &str| k.get(n).and_then(Value::as_str).map(str::to_string);
            let (Some(p256dh), Some(auth)) = (field("p256dh"), field("auth")) else {
                return Err(SetError::invalid("keys", "p256dh and auth are required"));
            };
            crate::webpush::check_keys(&p256dh, &auth)
                .map_err(|e| SetError::invalid("keys", &e))?;
            Some((p256dh, auth))
        }
    };
    let mut subscription = PushSubscription {
        id: 0,
        account: context.account.id,
        device_client_id: device.to_string(),
        url: url.to_string(),
        keys,
        verification_code: new_code()?,
        verified: false,
        expires: expires(object.get("expires"), now)?,
        types: types(object.get("types"))?,
    };
    subscription.id = context
        .store()
        .add_push_subscription(subscription.clone())
        .await?;
    let verification = json!({
        "@type": "PushVerification",
        "pushSubscriptionId": id_of(subscription.id),
        "verificationCode": subscription.verification_code,
    });
    if let Err(e) = sender.send(&subscription, &verification).await {
        tracing::info!(account = %context.account.address, url = %subscription.url, error = ?e, "jmap: push verification not delivered");
    }
    Ok((subscription.id, subscription.expires))
}

/// Apply an update; the new expiry when the server changed what was asked.
fn update(s: &mut PushSubscription, patch: &Args, now: i64) -> Result<Option<i64>, SetError> {
    let mut told = None;
    for (k, v) in patch {
        match k.as_str() {
            "verificationCode" => {
                if v.as_str() != Some(s.verification_code.as_str()) {
                    return Err(SetError::invalid("verificationCode", "not the code sent"));
                }
                s.verified = true;
            }
            "expires" => {
                let t = expires(Some(v), now)?;
                if v.as_str().and_then(message::date::rfc3339) != Some(t) {
                    told = Some(t);
                }
                s.expires = t;
            }
            "types" => s.types = types(Some(v))?,
            other => return Err(SetError::invalid(other, "cannot be changed")),
        }
    }
    Ok(told)
}

/// What `args` must not hold for PushSubscription methods (§7.2: they
/// are not tied to an account).
pub fn check_no_account(args: &Args) -> Result<(), MethodError> {
    match args::string(args, "accountId")? {
        Some(_) => Err(MethodError::InvalidArguments(
            "PushSubscription methods take no accountId".into(),
        )),
        None => Ok(()),
    }
}
