//! EmailSubmission (RFC 8621 §7): sending an email the account holds.
//! The message and its envelope go through the server's own submission
//! path (a [`Submitter`]: the SMTP submission session's steps, called
//! directly), so JMAP gets exactly SMTP submission's checks (the From:
//! and envelope sender the user owns), fixes, sending limits, DKIM
//! signature, durable queueing and history. The Bcc: field is removed
//! from what is sent (§7.5).
//!
//! The envelope's SMTP parameters go to the submission session as MAIL
//! and RCPT parameters, checked there: FUTURERELEASE's `HOLDFOR` or
//! `HOLDUNTIL` (RFC 4865) holds the message in the queue (every copy,
//! local ones too) until its release, and until then the submission's
//! `undoStatus` is "pending" and an update to "canceled" takes it out of
//! the queue (delayed send, undo). Otherwise sending is final and a
//! cancel gets `cannotUnsend`. The extensions the session offers are the
//! capability's `submissionExtensions`, FUTURERELEASE's interval its
//! `maxDelayedSend`. Delivery status comes from the delivery history.
//! `onSuccessUpdateEmail` and `onSuccessDestroyEmail` run an implicit
//! Email/set whose response follows this one (§7.5).

use std::collections::BTreeSet;
use std::net::IpAddr;

use message::spool::{Spool, Spooled};
use serde_json::{Map, Value, json};
use store::{AccountRecord, HistoryKind, HistoryQuery, Store, Submission, object_id};

use crate::Context;
use crate::account::EmailView;
use crate::args::{self, Args};
use crate::error::{MethodError, SetError};
use crate::set::{SetRequest, SetResponse, get_arguments};

/// Why the submission path refused a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The envelope sender is not the user's (§7.5 forbiddenMailFrom).
    MailFrom(String),
    /// The From: field is not the user's, or missing (forbiddenFrom).
    From(String),
    /// Sending limits, or a policy (forbiddenToSend).
    ToSend(String),
    /// No recipient was taken (invalidRecipients).
    Recipients(Vec<String>, String),
    TooLarge(String),
    /// An envelope parameter the submission path does not take.
    Parameter(String),
    /// Anything else, with the reply's text.
    Other(String),
}

/// What the submission path did with a message taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The id of "queued as" (links the delivery history).
    pub smtp_id: String,
    /// The queue entry holding it, if the queue took it.
    pub queue_id: Option<i64>,
    /// The release time of a held message (FUTURERELEASE), Unix seconds.
    pub release_at: Option<i64>,
    /// Recipients refused, each with the reply's text.
    pub refused: Vec<(String, String)>,
}

/// ESMTP parameters (keyword, value) of MAIL or RCPT.
pub type Parameters = Vec<(String, Option<String>)>;

/// The SMTP envelope of a submission (RFC 8621 §7 Envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub mail_from: (String, Parameters),
    pub rcpt_to: Vec<(String, Parameters)>,
}

/// The server's submission path, as JMAP uses it.
pub trait Submitter: Send + Sync {
    fn submit(
        &self,
        account: &AccountRecord,
        client: IpAddr,
        envelope: &Envelope,
        message: Spooled,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Sent, Refusal>> + Send + '_>>;

    /// Where a message being submitted is spooled (a large one never
    /// held whole).
    fn spool(&self) -> &Spool;

    /// The SMTP extensions whose parameters an envelope may carry, with
    /// their EHLO arguments (`submissionExtensions`, RFC 8621 §1.3.2).
    fn extensions(&self, account: &AccountRecord) -> Vec<(String, Vec<String>)>;
}

/// The capability's account object: `maxDelayedSend` (FUTURERELEASE's
/// longest interval, 0 without it) and `submissionExtensions`.
pub fn capability(extensions: &[(String, Vec<String>)]) -> Value {
    let max_delay = extensions
        .iter()
        .find(|(name, _)| name == "FUTURERELEASE")
        .and_then(|(_, args)| args.first())
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(0);
    let map: Map<String, Value> = extensions
        .iter()
        .map(|(name, args)| (name.clone(), json!(args)))
        .collect();
    json!({"maxDelayedSend": max_delay, "submissionExtensions": map})
}

impl Refusal {
    fn to_set_error(&self) -> Value {
        let (kind, description) = match self {
            Refusal::MailFrom(d) => ("forbiddenMailFrom", d),
            Refusal::From(d) => ("forbiddenFrom", d),
            Refusal::ToSend(d) => ("forbiddenToSend", d),
            Refusal::Recipients(list, d) => {
                return json!({"type": "invalidRecipients", "invalidRecipients": list, "description": d});
            }
            Refusal::TooLarge(d) => ("tooLarge", d),
            Refusal::Parameter(d) => {
                return json!({"type": "invalidProperties", "properties": ["envelope"], "description": d});
            }
            Refusal::Other(d) => ("forbidden", d),
        };
        json!({"type": kind, "description": description})
    }
}

/// The submission id of a stored submission.
fn id_of(n: i64) -> String {
    format!("S{n}")
}

/// The message of `email` as it is sent, spooled: its header section
/// without Bcc (RFC 8621 §7.5), then its body copied from the store a
/// piece at a time (hardening.md C-FT9), line ends made CRLF; and its
/// header section as stored (for the envelope). None if it is gone.
async fn outgoing(
    store: &dyn Store,
    spool: &Spool,
    email: &EmailView,
) -> Result<Option<(Vec<u8>, Spooled)>, String> {
    let Some(&(mailbox, uid)) = email.entries.first() else {
        return Ok(None);
    };
    let max = message::outline::HEAD_KEEP;
    let found = store::stream::header_section(store, mailbox, uid, email.size, max).await;
    let Some(head) = found.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let mut crlf = message::crlf::Crlf::default();
    let mut out = spool.writer();
    let without_bcc =
        message::header::without_fields(&head, |f| f.name.eq_ignore_ascii_case("Bcc"));
    out.write(&crlf.convert(&without_bcc))
        .map_err(|e| e.to_string())?;
    let mut next = head.len() as u64;
    while next < email.size {
        let piece = store::stream::scan_piece(store, mailbox, uid, next, email.size).await;
        let Some(got) = piece.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        next += got.len() as u64;
        out.write(&crlf.convert(&got)).map_err(|e| e.to_string())?;
    }
    let spooled = out.finish().map_err(|e| e.to_string())?;
    Ok(Some((head, spooled)))
}

/// An esmtp-keyword (RFC 5321 §4.1.2).
fn is_keyword(k: &str) -> bool {
    k.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// An esmtp-value (RFC 5321 §4.1.2: printable, no space, no `=`).
fn is_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| (33..=126).contains(&b) && b != b'=')
}

/// An Address object of §7: its email and SMTP parameters.
fn address(a: &Value) -> Result<(String, Parameters), SetError> {
    let email = a
        .get("email")
        .and_then(Value::as_str)
        .ok_or_else(|| SetError::invalid("envelope", "each address needs an email"))?;
    let mut params = Parameters::new();
    match a.get("parameters") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let value = match v {
                    Value::Null => None,
                    Value::String(s) if is_value(s) => Some(s.clone()),
                    _ => {
                        return Err(SetError::invalid(
                            "envelope",
                            "a parameter value is not an esmtp-value",
                        ));
                    }
                };
                if !is_keyword(k) {
                    return Err(SetError::invalid(
                        "envelope",
                        "a parameter name is not an esmtp-keyword",
                    ));
                }
                params.push((k.clone(), value));
            }
        }
        Some(_) => return Err(SetError::invalid("envelope", "parameters is not an object")),
    }
    Ok((email.to_string(), params))
}

/// The envelope of §7: given, or made from the identity and the
/// To/Cc/Bcc fields.
fn envelope(given: Option<&Value>, identity: &str, head: &[u8]) -> Result<Envelope, SetError> {
    if let Some(e) = given.filter(|e| !e.is_null()) {
        let mail_from = address(
            e.get("mailFrom")
                .ok_or_else(|| SetError::invalid("envelope", "mailFrom is required"))?,
        )?;
        let rcpt_to = e
            .get("rcptTo")
            .and_then(Value::as_array)
            .ok_or_else(|| SetError::invalid("envelope", "rcptTo is required"))?
            .iter()
            .map(address)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Envelope { mail_from, rcpt_to });
    }
    let mut seen = BTreeSet::new();
    let mut rcpt_to = Vec::new();
    for name in ["To", "Cc", "Bcc"] {
        for f in message::header::fields_named(head, name) {
            for a in message::header::addresses(f.value) {
                let a = a.to_string();
                if seen.insert(a.to_ascii_lowercase()) {
                    rcpt_to.push((a, Parameters::new()));
                }
            }
        }
    }
    Ok(Envelope {
        mail_from: (identity.to_string(), Parameters::new()),
        rcpt_to,
    })
}

/// The Envelope object of §7.
fn envelope_json(e: &Envelope) -> Value {
    let address = |(email, params): &(String, Parameters)| {
        let p: Map<String, Value> = params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        json!({"email": email, "parameters": if p.is_empty() { Value::Null } else { Value::Object(p) }})
    };
    json!({
        "mailFrom": address(&e.mail_from),
        "rcptTo": e.rcpt_to.iter().map(address).collect::<Vec<_>>(),
    })
}

/// `undoStatus` (§7) now: a held message not yet released is "pending".
fn undo_status(s: &Submission, now: i64) -> &'static str {
    if s.canceled {
        "canceled"
    } else if s.queue_id.is_some() && s.send_at > now {
        "pending"
    } else {
        "final"
    }
}

/// EmailSubmission/set: create (send), update (undo: refused), destroy
/// (forget the record; the mail is sent).
pub async fn set(
    context: &mut Context<'_>,
    args: &Args,
) -> Result<Vec<(String, Value)>, MethodError> {
    let Some(submitter) = context.jmap.submitter.clone() else {
        return Err(MethodError::UnknownMethod);
    };
    let store = context.jmap.store().clone();
    let before = store.submissions(context.account.id).await?;
    let old_state = state(&before);
    let request = SetRequest::parse(args, context.jmap.limits.max_objects_in_set, &old_state)?;
    let mut response = SetResponse::default();
    let mut sent_emails: Vec<(String, String)> = Vec::new(); // (submission ref, email id)
    for (creation, object) in request.create {
        match create(context, submitter.as_ref(), &object).await {
            Ok((created, email)) => {
                if let Some(id) = created["id"].as_str() {
                    context.created.insert(creation.clone(), id.to_string());
                    sent_emails.push((format!("#{creation}"), email.clone()));
                    sent_emails.push((id.to_string(), email));
                }
                response.created(creation, created);
            }
            Err(Ok(e)) => response.not_created(creation, e),
            Err(Err(refusal)) => {
                response
                    .not_created
                    .insert(creation, refusal.to_set_error());
            }
        }
    }
    for (id, patch) in request.update {
        let Some(found) = before.iter().find(|s| id_of(s.id) == id) else {
            response.not_updated(id, SetError::NotFound);
            continue;
        };
        if patch.len() != 1 || patch.get("undoStatus").and_then(Value::as_str) != Some("canceled") {
            response.not_updated(
                id,
                SetError::invalid("undoStatus", "only undoStatus may change, to canceled"),
            );
            continue;
        }
        let now = message::date::unix_now();
        if store
            .cancel_submission(context.account.id, found.id, now)
            .await?
        {
            tracing::info!(account = %context.account.address, msg = %found.smtp_id, "jmap: held submission canceled");
            response.updated(id);
        } else {
            let why = match undo_status(found, now) {
                "canceled" => "it was canceled already",
                _ => "it was released for delivery already",
            };
            response
                .not_updated
                .insert(id, json!({"type": "cannotUnsend", "description": why}));
        }
    }
    for id in request.destroy {
        let removed = match id.strip_prefix('S').and_then(|n| n.parse::<i64>().ok()) {
            Some(n) => store.remove_submission(context.account.id, n).await?,
            None => false,
        };
        if removed {
            response.destroyed.push(id);
        } else {
            response.not_destroyed(id, SetError::NotFound);
        }
    }
    let new_state = state(&store.submissions(context.account.id).await?);
    let out = response.into_value(&context.account_id, &old_state, &new_state);
    let mut responses = vec![("EmailSubmission/set".to_string(), out)];
    if let Some(implicit) = on_success(context, args, &sent_emails).await? {
        responses.push(("Email/set".to_string(), implicit));
    }
    Ok(responses)
}

/// The state of the account's submissions: what each is now (a held
/// one's release changes it, as a cancel does).
fn state(all: &[Submission]) -> String {
    let now = message::date::unix_now();
    let text: String = all
        .iter()
        .map(|s| format!("{}:{};", s.id, undo_status(s, now)))
        .collect();
    crate::set::digest(&text)
}

/// Send one email; the created object and the email's id, or why not
/// (a SetError, or the submission path's refusal).
async fn create(
    context: &Context<'_>,
    submitter: &dyn Submitter,
    object: &Args,
) -> Result<(Value, String), Result<SetError, Refusal>> {
    let identity_id = object
        .get("identityId")
        .and_then(Value::as_str)
        .ok_or(Ok(SetError::invalid("identityId", "required")))?;
    let addresses = crate::identity::addresses(context)
        .await
        .map_err(|_| Ok(SetError::Forbidden("try again later".into())))?;
    let identity = addresses
        .iter()
        .find(|a| crate::identity::id_of(a) == identity_id)
        .ok_or(Ok(SetError::invalid("identityId", "no such identity")))?
        .clone();
    let email_id = object
        .get("emailId")
        .and_then(Value::as_str)
        .and_then(|id| context.resolve_id(id))
        .ok_or(Ok(SetError::invalid("emailId", "required")))?;
    let view = context
        .view()
        .await
        .map_err(|_| Ok(SetError::Forbidden("try again later".into())))?;
    let email = view
        .email_by_jmap_id(&email_id)
        .ok_or(Ok(SetError::invalid("emailId", "no such email")))?;
    let (head, message) = outgoing(context.store(), submitter.spool(), email)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "jmap: cannot read the message to submit");
            Ok(SetError::Forbidden("try again later".into()))
        })?
        .ok_or(Ok(SetError::invalid("emailId", "no such email")))?;
    let envelope = envelope(object.get("envelope"), &identity, &head).map_err(Ok)?;
    if envelope.rcpt_to.is_empty() {
        return Err(Ok(SetError::InvalidProperties(
            vec!["envelope".into()],
            "no recipients (noRecipients)".into(),
        )));
    }
    let sent = submitter
        .submit(context.account, context.client, &envelope, message)
        .await
        .map_err(Err)?;
    let send_at = sent.release_at.unwrap_or_else(message::date::unix_now);
    let record = Submission {
        id: 0,
        account: context.account.id,
        smtp_id: sent.smtp_id.clone(),
        email_id: email.id,
        thread_id: email.thread,
        identity: identity_id.to_string(),
        envelope: envelope_json(&envelope).to_string(),
        send_at,
        queue_id: sent.release_at.and(sent.queue_id),
        canceled: false,
    };
    let n = context
        .store()
        .add_submission(record)
        .await
        .map_err(|e| Ok(SetError::from(e)))?;
    tracing::info!(account = %context.account.address, msg = %sent.smtp_id, recipients = envelope.rcpt_to.len(), held = sent.release_at.is_some(), "jmap: email submitted");
    Ok((
        json!({
            "id": id_of(n),
            "undoStatus": if sent.release_at.is_some() { "pending" } else { "final" },
            "sendAt": message::date::rfc3339_text(send_at),
            "threadId": object_id::thread(email.thread),
        }),
        object_id::email(email.id),
    ))
}

/// The implicit Email/set of `onSuccessUpdateEmail` / `onSuccessDestroyEmail`
/// (§7.5): keys are submission ids or `#creation` ids of this call.
async fn on_success(
    context: &mut Context<'_>,
    args: &Args,
    sent: &[(String, String)],
) -> Result<Option<Value>, MethodError> {
    let email_of = |key: &str| sent.iter().find(|(k, _)| k == key).map(|(_, e)| e.clone());
    let mut update = Map::new();
    if let Some(patches) = args::object(args, "onSuccessUpdateEmail")? {
        for (key, patch) in patches {
            if let Some(email) = email_of(key) {
                update.insert(email, patch.clone());
            }
        }
    }
    let mut destroy = Vec::new();
    for key in args::strings(args, "onSuccessDestroyEmail")?.unwrap_or_default() {
        if let Some(email) = email_of(&key) {
            destroy.push(Value::String(email));
        }
    }
    if update.is_empty() && destroy.is_empty() {
        return Ok(None);
    }
    let mut implicit = Map::new();
    implicit.insert("accountId".into(), json!(context.account_id));
    implicit.insert("update".into(), Value::Object(update));
    implicit.insert("destroy".into(), Value::Array(destroy));
    crate::email::set::set(context, &implicit).await.map(Some)
}

/// EmailSubmission/get: the kept records, with each recipient's delivery
/// status from the delivery history.
pub async fn get(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let (ids, _) = get_arguments(args, context.jmap.limits.max_objects_in_get)?;
    let all = context.store().submissions(context.account.id).await?;
    let wanted = ids.unwrap_or_else(|| all.iter().map(|s| id_of(s.id)).collect());
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    for id in wanted {
        match all.iter().find(|s| id_of(s.id) == id) {
            Some(s) => list.push(to_json(context, s).await?),
            None => not_found.push(id),
        }
    }
    Ok(json!({
        "accountId": context.account_id,
        "state": state(&all),
        "list": list,
        "notFound": not_found,
    }))
}

async fn to_json(context: &Context<'_>, s: &Submission) -> Result<Value, MethodError> {
    let envelope: Value = serde_json::from_str(&s.envelope).unwrap_or(Value::Null);
    let events = context
        .store()
        .history(HistoryQuery::Message(s.smtp_id.clone()), 1)
        .await?;
    let mut status = Map::new();
    for r in envelope["rcptTo"].as_array().into_iter().flatten() {
        let Some(rcpt) = r["email"].as_str() else {
            continue;
        };
        let last = events.iter().rfind(|e| {
            e.recipient
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(rcpt))
                && matches!(
                    e.kind,
                    HistoryKind::Delivered
                        | HistoryKind::Deferred
                        | HistoryKind::Bounced
                        | HistoryKind::Refused
                        | HistoryKind::Filed
                )
        });
        let (delivered, reply) = match last.map(|e| (e.kind, e.detail.clone())) {
            Some((HistoryKind::Delivered | HistoryKind::Filed, d)) => ("yes", d),
            Some((HistoryKind::Deferred, d)) => ("queued", d),
            Some((HistoryKind::Bounced | HistoryKind::Refused, d)) => ("no", d),
            _ => ("queued", "250 2.0.0 queued".to_string()),
        };
        status.insert(
            rcpt.to_string(),
            json!({"smtpReply": reply, "delivered": delivered, "displayed": "unknown"}),
        );
    }
    Ok(json!({
        "id": id_of(s.id),
        "identityId": s.identity,
        "emailId": object_id::email(s.email_id),
        "threadId": object_id::thread(s.thread_id),
        "envelope": envelope,
        "sendAt": message::date::rfc3339_text(s.send_at),
        "undoStatus": undo_status(s, message::date::unix_now()),
        "deliveryStatus": status,
        "dsnBlobIds": [],
        "mdnBlobIds": [],
    }))
}

/// EmailSubmission/query (§7.3): filter on identityIds, emailIds,
/// threadIds, undoStatus, before, after; sorted by sendAt (newest
/// first unless asked), paged.
pub async fn query(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let all = context.store().submissions(context.account.id).await?;
    let now = message::date::unix_now();
    let filter = args::object(args, "filter")?.cloned().unwrap_or_default();
    let list_of = |name: &str| {
        filter.get(name).and_then(Value::as_array).map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect::<Vec<_>>()
        })
    };
    let date = |name: &str| {
        filter
            .get(name)
            .and_then(Value::as_str)
            .and_then(message::date::rfc3339)
    };
    for key in filter.keys() {
        if ![
            "identityIds",
            "emailIds",
            "threadIds",
            "undoStatus",
            "before",
            "after",
        ]
        .contains(&key.as_str())
        {
            return Err(MethodError::UnsupportedFilter(format!(
                "cannot filter on {key}"
            )));
        }
    }
    let mut found: Vec<&Submission> = all
        .iter()
        .filter(|s| list_of("identityIds").is_none_or(|l| l.contains(&s.identity)))
        .filter(|s| list_of("emailIds").is_none_or(|l| l.contains(&object_id::email(s.email_id))))
        .filter(|s| {
            list_of("threadIds").is_none_or(|l| l.contains(&object_id::thread(s.thread_id)))
        })
        .filter(|s| {
            filter
                .get("undoStatus")
                .and_then(Value::as_str)
                .is_none_or(|u| u == undo_status(s, now))
        })
        .filter(|s| date("before").is_none_or(|t| s.send_at < t))
        .filter(|s| date("after").is_none_or(|t| s.send_at >= t))
        .collect();
    let ascending = args
        .get("sort")
        .and_then(Value::as_array)
        .and_then(|l| l.first())
        .and_then(|s| s.get("isAscending"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if ascending {
        found.reverse();
    }
    let ids: Vec<String> = found.iter().map(|s| id_of(s.id)).collect();
    crate::set::query_page(context, args, ids, &state(&all), false)
}
