//! Every way a JMAP request or method call fails, with the error type the
//! client is sent: request-level errors as RFC 7807 problem details
//! (RFC 8620 §3.6.1), method-level errors as `["error", {...}, callId]`
//! (§3.6.2), and per-object SetErrors (§5.3). One enum each, one mapping
//! each to the wire.

use serde_json::{Value, json};

/// A request the server will not process at all (RFC 8620 §3.6.1): the
/// HTTP status is 400 and the body a problem details object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// `using` names a capability this server does not have.
    UnknownCapability(String),
    /// The body is not JSON (or not I-JSON).
    NotJson,
    /// JSON, but not a Request object.
    NotRequest(String),
    /// A request limit (`maxCallsInRequest`, `maxSizeRequest`) exceeded;
    /// the limit's name.
    Limit(&'static str),
}

impl RequestError {
    fn kind(&self) -> &'static str {
        match self {
            RequestError::UnknownCapability(_) => "unknownCapability",
            RequestError::NotJson => "notJSON",
            RequestError::NotRequest(_) => "notRequest",
            RequestError::Limit(_) => "limit",
        }
    }

    /// The problem details object (RFC 7807) sent with status 400.
    pub fn to_problem(&self) -> Value {
        let detail = match self {
            RequestError::UnknownCapability(c) => format!("unknown capability {c}"),
            RequestError::NotJson => "the request is not valid JSON".to_string(),
            RequestError::NotRequest(why) => format!("not a JMAP request: {why}"),
            RequestError::Limit(name) => format!("the request is over the limit {name}"),
        };
        let mut problem = json!({
            "type": format!("urn:ietf:params:jmap:error:{}", self.kind()),
            "status": 400,
            "detail": detail,
        });
        if let RequestError::Limit(name) = self {
            problem["limit"] = json!(name);
        }
        problem
    }
}

/// A method call that failed as a whole (RFC 8620 §3.6.2, §5, RFC 8621).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodError {
    /// The server could not process it (the store failed): try later.
    ServerFail(String),
    UnknownMethod,
    InvalidArguments(String),
    /// A `#` argument's result reference does not resolve (§3.7).
    InvalidResultReference(String),
    AccountNotFound,
    /// More ids than `maxObjectsInGet` / `maxObjectsInSet`.
    RequestTooLarge,
    /// `ifInState` does not match the current state (§5.3).
    StateMismatch,
    /// The server cannot tell what changed since that state (§5.2, §5.6).
    CannotCalculateChanges,
    /// More changes than the client's `maxChanges` (§5.6).
    TooManyChanges,
    /// A filter this server does not support (§5.5).
    UnsupportedFilter(String),
    UnsupportedSort(String),
    /// An `anchor` not in the results (§5.5).
    AnchorNotFound,
    /// Not allowed, whatever the arguments (§3.6.2).
    Forbidden(String),
    /// `/copy`: the account to copy from is not one this user has (§5.4).
    FromAccountNotFound,
}

impl MethodError {
    pub fn kind(&self) -> &'static str {
        match self {
            MethodError::ServerFail(_) => "serverFail",
            MethodError::UnknownMethod => "unknownMethod",
            MethodError::InvalidArguments(_) => "invalidArguments",
            MethodError::InvalidResultReference(_) => "invalidResultReference",
            MethodError::AccountNotFound => "accountNotFound",
            MethodError::RequestTooLarge => "requestTooLarge",
            MethodError::StateMismatch => "stateMismatch",
            MethodError::CannotCalculateChanges => "cannotCalculateChanges",
            MethodError::TooManyChanges => "tooManyChanges",
            MethodError::UnsupportedFilter(_) => "unsupportedFilter",
            MethodError::UnsupportedSort(_) => "unsupportedSort",
            MethodError::AnchorNotFound => "anchorNotFound",
            MethodError::Forbidden(_) => "forbidden",
            MethodError::FromAccountNotFound => "fromAccountNotFound",
        }
    }

    /// The arguments of the `error` response.
    pub fn to_arguments(&self) -> Value {
        let description = match self {
            MethodError::ServerFail(d)
            | MethodError::InvalidArguments(d)
            | MethodError::InvalidResultReference(d)
            | MethodError::UnsupportedFilter(d)
            | MethodError::UnsupportedSort(d)
            | MethodError::Forbidden(d) => Some(d.as_str()),
            _ => None,
        };
        match description {
            Some(d) => json!({"type": self.kind(), "description": d}),
            None => json!({"type": self.kind()}),
        }
    }
}

impl From<store::StoreError> for MethodError {
    fn from(e: store::StoreError) -> Self {
        tracing::warn!(error = %e, "jmap: store failed");
        MethodError::ServerFail("the store could not answer; try again later".into())
    }
}

/// Why one object of a `/set` call was not created, updated or destroyed
/// (RFC 8620 §5.3, RFC 8621 §2.5, §4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    Forbidden(String),
    OverQuota,
    NotFound,
    /// The properties that are wrong.
    InvalidProperties(Vec<String>, String),
    /// Mailbox/set: a child mailbox is in the way.
    MailboxHasChild,
    /// Mailbox/set: emails are in it and `onDestroyRemoveEmails` is false.
    MailboxHasEmail,
    /// Another object already has this (name, parent).
    AlreadyExists,
    /// A `#` creation id that was never created.
    InvalidPatch(String),
    /// Email/import: the blob is not (or no longer) there (RFC 8621 §4.8).
    BlobNotFound(Vec<String>),
    /// Email/import: the blob is not an RFC 5322 message.
    InvalidEmail(String),
}

impl SetError {
    pub fn to_value(&self) -> Value {
        match self {
            SetError::Forbidden(d) => json!({"type": "forbidden", "description": d}),
            SetError::OverQuota => json!({"type": "overQuota"}),
            SetError::NotFound => json!({"type": "notFound"}),
            SetError::InvalidProperties(props, d) => {
                json!({"type": "invalidProperties", "properties": props, "description": d})
            }
            SetError::MailboxHasChild => json!({"type": "mailboxHasChild"}),
            SetError::MailboxHasEmail => json!({"type": "mailboxHasEmail"}),
            SetError::AlreadyExists => json!({"type": "alreadyExists"}),
            SetError::InvalidPatch(d) => json!({"type": "invalidPatch", "description": d}),
            SetError::BlobNotFound(ids) => json!({"type": "blobNotFound", "notFound": ids}),
            SetError::InvalidEmail(d) => json!({"type": "invalidEmail", "description": d}),
        }
    }

    pub fn invalid(property: &str, why: &str) -> SetError {
        SetError::InvalidProperties(vec![property.to_string()], why.to_string())
    }
}

impl From<store::StoreError> for SetError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Full => SetError::OverQuota,
            store::StoreError::NotFound(_) => SetError::NotFound,
            store::StoreError::Duplicate(_) => SetError::AlreadyExists,
            store::StoreError::InUse(d) | store::StoreError::Invalid(d) => SetError::Forbidden(d),
            store::StoreError::Busy | store::StoreError::Io(_) => {
                tracing::warn!(error = %e, "jmap: store failed");
                SetError::Forbidden("the store could not do it now; try again later".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_their_type_and_limit() {
        let p = RequestError::Limit("maxCallsInRequest").to_problem();
        assert_eq!(p["type"], "urn:ietf:params:jmap:error:limit");
        assert_eq!(p["limit"], "maxCallsInRequest");
        assert_eq!(p["status"], 400);
        assert_eq!(
            RequestError::NotJson.to_problem()["type"],
            "urn:ietf:params:jmap:error:notJSON"
        );
    }

    #[test]
    fn method_errors_carry_their_type() {
        assert_eq!(
            MethodError::StateMismatch.to_arguments(),
            json!({"type": "stateMismatch"})
        );
        assert_eq!(
            MethodError::InvalidArguments("ids".into()).to_arguments()["type"],
            "invalidArguments"
        );
    }
}
