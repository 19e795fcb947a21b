//! JMAP (RFC 8620 core, RFC 8621 mail): what the `/jmap` routes of the web
//! listeners run, on the same store as IMAP and POP3, so a change made one
//! way is seen the other at once.
//!
//! Layout: `request` (the Request envelope, result references), `error`
//! (every request, method and set error, mapped to the wire once),
//! `args` (typed arguments), `account` (an account's mailboxes and emails
//! as JMAP sees them: ids, keywords, threads, counts), `changes` (folding
//! the store's change log for `/changes`), then one file per data type:
//! `mailbox`, `thread`, `email` (get, query, set), and `session` (the
//! session resource). [`Jmap::api`] is the whole of an API request: it
//! owns no socket (the web crate does HTTP and authentication).
//!
//! Ids (RFC 8620 §1.2) are the store's object ids (`store::object_id`):
//! `M<uidvalidity>` mailboxes, `E<blob>` emails, `T<thread>` threads,
//! `B<blob>` a message's raw octets and `B<blob>-<part>` a part's.

pub mod account;
pub mod admission;
pub mod args;
pub mod changes;
pub mod email;
pub mod error;
pub mod identity;
pub mod mailbox;
pub mod push;
pub mod push_subscription;
pub mod request;
pub mod session;
pub mod set;
pub mod snippet;
pub mod submission;
pub mod thread;
pub mod upload;
pub mod vacation;
pub mod webpush;
pub mod websocket;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use store::{AccountRecord, Store};

use crate::account::{AccountView, ViewCache};
use crate::args::Args;
pub use crate::error::{MethodError, RequestError, SetError};

/// The capabilities this server has (RFC 8620 §2, RFC 8621 §1.3).
pub const CORE: &str = "urn:ietf:params:jmap:core";
pub const MAIL: &str = "urn:ietf:params:jmap:mail";
/// Identities and EmailSubmission (RFC 8621 §1.3.2), when a submitter is set.
pub const SUBMISSION: &str = "urn:ietf:params:jmap:submission";

/// The limits the session resource announces and requests are held to
/// (RFC 8620 §2 `urn:ietf:params:jmap:core`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_size_upload: u64,
    pub max_concurrent_upload: u64,
    pub max_size_request: u64,
    pub max_concurrent_requests: u64,
    pub max_calls_in_request: u64,
    pub max_objects_in_get: u64,
    pub max_objects_in_set: u64,
}

impl Limits {
    /// The largest API request taken (the web server reads no more).
    pub const MAX_SIZE_REQUEST: u64 = 10_000_000;
    /// The largest upload taken (the web server reads no more).
    pub const MAX_SIZE_UPLOAD: u64 = 25_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_size_upload: Limits::MAX_SIZE_UPLOAD,
            max_concurrent_upload: 4,
            max_size_request: Limits::MAX_SIZE_REQUEST,
            max_concurrent_requests: 8,
            max_calls_in_request: 32,
            max_objects_in_get: 500,
            max_objects_in_set: 500,
        }
    }
}

/// The JMAP service of one server.
pub struct Jmap {
    store: Arc<dyn Store>,
    /// This server's name (the right side of the Message-IDs it makes).
    pub hostname: String,
    views: ViewCache,
    /// Email/query's `hasAttachment`, per stored content.
    pub attachments: email::AttachmentCache,
    pub uploads: upload::Uploads,
    /// The server's submission path (None: no EmailSubmission, and the
    /// capability is not announced).
    pub submitter: Option<Arc<dyn submission::Submitter>>,
    /// Where push subscriptions are posted to (None: no PushSubscription).
    pub push_sender: Option<Arc<dyn push_subscription::PushSender>>,
    /// Poked when a push subscription changed (the pusher reads them again).
    pub push_changed: tokio::sync::Notify,
    /// API requests and uploads under way, per account.
    pub in_flight: admission::InFlight,
    pub limits: Limits,
}

/// What a method is run with: the account, the request's creation ids.
pub struct Context<'a> {
    pub jmap: &'a Jmap,
    pub account: &'a AccountRecord,
    /// This account's JMAP id.
    pub account_id: String,
    /// Where the request came from (submission's limits and logs).
    pub client: std::net::IpAddr,
    /// Creation id → the id of what it created, in this request (§5.3).
    pub created: HashMap<String, String>,
}

impl Context<'_> {
    pub fn store(&self) -> &dyn Store {
        self.jmap.store.as_ref()
    }

    /// The account's mailboxes and emails now.
    pub async fn view(&self) -> Result<Arc<AccountView>, MethodError> {
        self.jmap.views.get(self.store(), self.account.id).await
    }

    /// `accountId` must be the one account this user has (§3.6.2).
    pub fn check_account(&self, args: &Args) -> Result<(), MethodError> {
        match args::string(args, "accountId")? {
            Some(id) if id == self.account_id => Ok(()),
            Some(_) => Err(MethodError::AccountNotFound),
            None => Err(MethodError::InvalidArguments(
                "accountId is required".into(),
            )),
        }
    }

    /// An id as given, or the id a `#creationId` of this request stands for.
    pub fn resolve_id(&self, id: &str) -> Option<String> {
        match id.strip_prefix('#') {
            Some(creation) => self.created.get(creation).cloned(),
            None => Some(id.to_string()),
        }
    }
}

/// The JMAP id of an account.
pub fn account_id(account: &AccountRecord) -> String {
    format!("A{}", account.id)
}

impl Jmap {
    pub fn new(store: Arc<dyn Store>, hostname: &str) -> Jmap {
        Jmap {
            store,
            hostname: hostname.to_string(),
            views: ViewCache::default(),
            attachments: email::AttachmentCache::default(),
            uploads: upload::Uploads::default(),
            submitter: None,
            push_sender: None,
            push_changed: tokio::sync::Notify::new(),
            in_flight: admission::InFlight::default(),
            limits: Limits::default(),
        }
    }

    /// Admit one more API request or upload of `account`, if its
    /// concurrency limit allows; the admission ends when it is dropped.
    pub fn admit(
        &self,
        account: store::AccountId,
        work: admission::Work,
    ) -> Option<admission::Admitted> {
        let limit = match work {
            admission::Work::Request => self.limits.max_concurrent_requests,
            admission::Work::Upload => self.limits.max_concurrent_upload,
        };
        self.in_flight.admit(account, work, limit)
    }

    /// Post push subscriptions' messages through this sender.
    pub fn with_push_sender(mut self, sender: Arc<dyn push_subscription::PushSender>) -> Jmap {
        self.push_sender = Some(sender);
        self
    }

    /// Send mail through this submission path (EmailSubmission).
    pub fn with_submitter(mut self, submitter: Arc<dyn submission::Submitter>) -> Jmap {
        self.submitter = Some(submitter);
        self
    }

    /// The capabilities a request may use.
    pub fn capabilities(&self) -> Vec<&'static str> {
        let mut out = vec![CORE, MAIL, vacation::CAPABILITY, websocket::CAPABILITY];
        if self.submitter.is_some() {
            out.push(SUBMISSION);
        }
        out
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Run one API request (RFC 8620 §3) for an authenticated account:
    /// the Response object, or the request-level error.
    pub async fn api(
        &self,
        account: &AccountRecord,
        client: std::net::IpAddr,
        body: &[u8],
    ) -> Result<Value, RequestError> {
        if body.len() as u64 > self.limits.max_size_request {
            return Err(RequestError::Limit("maxSizeRequest"));
        }
        let request = request::parse(body, self.limits.max_calls_in_request as usize)?;
        self.run(account, client, request).await
    }

    /// Run a parsed request (over HTTP, or a WebSocket message).
    pub async fn run(
        &self,
        account: &AccountRecord,
        client: std::net::IpAddr,
        request: request::Request,
    ) -> Result<Value, RequestError> {
        let capabilities = self.capabilities();
        for capability in &request.using {
            if !capabilities.contains(&capability.as_str()) {
                return Err(RequestError::UnknownCapability(capability.clone()));
            }
        }
        let mut context = Context {
            jmap: self,
            account,
            account_id: account_id(account),
            client,
            created: HashMap::new(),
        };
        if let Some(ids) = &request.created_ids {
            for (k, v) in ids {
                if let Value::String(v) = v {
                    context.created.insert(k.clone(), v.clone());
                }
            }
        }
        let mut responses: Vec<(String, Value, String)> = Vec::new();
        for call in request.calls {
            let outcome = match request::resolve_references(call.arguments, &responses) {
                Ok(arguments) => {
                    self.call(&mut context, &request.using, &call.name, arguments)
                        .await
                }
                Err(e) => Err(e),
            };
            metrics::counter!("tern_jmap_calls_total", "method" => method_label(&call.name), "result" => match &outcome { Ok(_) => "ok", Err(e) => e.kind() }).increment(1);
            match outcome {
                Ok(results) => {
                    for (name, result) in results {
                        responses.push((name, result, call.call_id.clone()));
                    }
                }
                Err(e) => responses.push(("error".into(), e.to_arguments(), call.call_id)),
            }
        }
        let mut response = json!({
            "methodResponses": responses
                .into_iter()
                .map(|(n, a, id)| json!([n, a, id]))
                .collect::<Vec<_>>(),
            "sessionState": session::STATE,
        });
        if request.created_ids.is_some() {
            response["createdIds"] = json!(context.created);
        }
        Ok(response)
    }

    /// Run one method call: its response(s) (EmailSubmission/set may add
    /// an implicit Email/set, RFC 8621 §7.5), or its error.
    async fn call(
        &self,
        context: &mut Context<'_>,
        using: &[String],
        name: &str,
        args: Args,
    ) -> Result<Vec<(String, Value)>, MethodError> {
        let needs = if name.starts_with("Core/")
            || name.starts_with("PushSubscription/")
            || name.starts_with("Blob/")
        {
            CORE
        } else if name.starts_with("Identity/") || name.starts_with("EmailSubmission/") {
            SUBMISSION
        } else if name.starts_with("VacationResponse/") {
            vacation::CAPABILITY
        } else {
            MAIL
        };
        if !using.iter().any(|u| u == needs) || !self.capabilities().contains(&needs) {
            return Err(MethodError::UnknownMethod);
        }
        if name == "Core/echo" {
            return Ok(vec![(name.to_string(), Value::Object(args))]);
        }
        if !KNOWN_METHODS.contains(&name) {
            return Err(MethodError::UnknownMethod);
        }
        if let Some(method) = name.strip_prefix("PushSubscription/") {
            push_subscription::check_no_account(&args)?;
            let result = match method {
                "get" => push_subscription::get(context, &args).await,
                _ => push_subscription::set(context, &args).await,
            }?;
            return Ok(vec![(name.to_string(), result)]);
        }
        context.check_account(&args)?;
        if name.ends_with("/copy") {
            return Err(copy_refused(context, &args));
        }
        if name == "EmailSubmission/set" {
            return submission::set(context, &args).await;
        }
        let result = match name {
            "Mailbox/get" => mailbox::get(context, &args).await,
            "Mailbox/changes" => mailbox::changes(context, &args).await,
            "Mailbox/query" => mailbox::query(context, &args).await,
            "Mailbox/queryChanges" => mailbox::query_changes(context, &args).await,
            "Email/queryChanges" => email::query::query_changes(context, &args).await,
            "Identity/changes" | "EmailSubmission/changes" | "EmailSubmission/queryChanges" => {
                Err(MethodError::CannotCalculateChanges)
            }
            "Mailbox/set" => mailbox::set(context, &args).await,
            "Thread/get" => thread::get(context, &args).await,
            "Thread/changes" => thread::changes(context, &args).await,
            "Email/get" => email::get::get(context, &args).await,
            "Email/changes" => email::changes(context, &args).await,
            "Email/query" => email::query::query(context, &args).await,
            "Email/set" => email::set::set(context, &args).await,
            "Email/import" => email::import::import(context, &args).await,
            "Email/parse" => email::parse::parse(context, &args).await,
            "Identity/get" => identity::get(context, &args).await,
            "Identity/set" => identity::set(context, &args).await,
            "EmailSubmission/get" => submission::get(context, &args).await,
            "EmailSubmission/query" => submission::query(context, &args).await,
            "VacationResponse/get" => vacation::get(context, &args).await,
            "SearchSnippet/get" => snippet::get(context, &args).await,
            "VacationResponse/set" => vacation::set(context, &args).await,
            _ => Err(MethodError::UnknownMethod),
        }?;
        Ok(vec![(name.to_string(), result)])
    }

    /// A blob this account may read: a message's or a part's octets
    /// (RFC 8620 §6.2), with the part's media type if it is a part.
    pub async fn download(
        &self,
        account: &AccountRecord,
        blob_id: &str,
    ) -> Result<Option<email::Blob>, MethodError> {
        if let Some(b) = self.uploaded(account, blob_id) {
            return Ok(Some(b));
        }
        let view = self.views.get(self.store.as_ref(), account.id).await?;
        email::blob(self.store.as_ref(), &view, blob_id).await
    }

    /// A blob this account uploaded (RFC 8620 §6.1).
    fn uploaded(&self, account: &AccountRecord, blob_id: &str) -> Option<email::Blob> {
        let u = self.uploads.get(account.id, blob_id)?;
        Some(email::Blob {
            data: u.data.to_vec(),
            media_type: Some(u.media_type),
            name: None,
        })
    }

    /// A blob for `/jmap/download`: a large message or its part is not
    /// read here but named by its place in the store, for the caller to
    /// send a piece at a time (hardening.md C-FT9).
    pub async fn download_source(
        &self,
        account: &AccountRecord,
        blob_id: &str,
    ) -> Result<Option<email::BlobSource>, MethodError> {
        if let Some(b) = self.uploaded(account, blob_id) {
            return Ok(Some(b.into()));
        }
        let view = self.views.get(self.store.as_ref(), account.id).await?;
        email::blob_source(self.store.as_ref(), &view, blob_id).await
    }

    /// The account's states now (push: RFC 8620 §7.1 StateChange).
    pub async fn states(&self, account: &AccountRecord) -> Result<push::States, MethodError> {
        self.account_states(account.id).await
    }

    /// The states of an account by its store id.
    pub async fn account_states(
        &self,
        account: store::AccountId,
    ) -> Result<push::States, MethodError> {
        let mut out = Vec::new();
        for (name, kind) in [
            ("Mailbox", store::DataType::Mailbox),
            ("Email", store::DataType::Email),
            ("Thread", store::DataType::Thread),
        ] {
            out.push((
                name,
                self.store.change_state(account, kind).await?.to_string(),
            ));
        }
        Ok(out)
    }
}

/// `Email/copy` and `Blob/copy` (RFC 8620 §5.4, §6.3) copy between two
/// accounts; a user here has one account (the session lists it alone),
/// so a copy names either it twice, or an account this user does not
/// have.
fn copy_refused(context: &Context<'_>, args: &args::Args) -> MethodError {
    match args::string(args, "fromAccountId") {
        Ok(Some(from)) if from == context.account_id => MethodError::InvalidArguments(
            "fromAccountId must differ from accountId (RFC 8620 §5.4)".into(),
        ),
        Ok(Some(_)) => MethodError::FromAccountNotFound,
        Ok(None) => MethodError::InvalidArguments("fromAccountId is required".into()),
        Err(e) => e,
    }
}

/// The methods this server runs.
const KNOWN_METHODS: [&str; 30] = [
    "Core/echo",
    "Mailbox/get",
    "Mailbox/changes",
    "Mailbox/query",
    "Mailbox/queryChanges",
    "Mailbox/set",
    "Thread/get",
    "Thread/changes",
    "Email/get",
    "Email/changes",
    "Email/query",
    "Email/queryChanges",
    "Email/set",
    "Email/import",
    "Email/parse",
    "Identity/get",
    "Identity/changes",
    "Identity/set",
    "EmailSubmission/get",
    "EmailSubmission/changes",
    "EmailSubmission/query",
    "EmailSubmission/queryChanges",
    "EmailSubmission/set",
    "VacationResponse/get",
    "VacationResponse/set",
    "SearchSnippet/get",
    "PushSubscription/get",
    "PushSubscription/set",
    "Email/copy",
    "Blob/copy",
];

/// The `method` label of the calls counter: known names, else "other"
/// (a client cannot grow the label set).
fn method_label(name: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("other")
}
