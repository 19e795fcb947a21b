//! The session resource at `/.well-known/jmap` (RFC 8620 §2): what this
//! server can do, the user's account, and where the API, download,
//! upload and push endpoints are.

use serde_json::{Value, json};
use store::AccountRecord;

use crate::{CORE, Limits, MAIL, SUBMISSION, account_id};

/// The session's state: it changes only when the session object would
/// (a new capability in a new build), so clients need not fetch it again.
pub const STATE: &str = "1";

/// The sort properties of Email/query (RFC 8621 §4.4.2).
pub const EMAIL_SORT: [&str; 9] = [
    "receivedAt",
    "size",
    "from",
    "to",
    "subject",
    "sentAt",
    "hasKeyword",
    "allInThreadHaveKeyword",
    "someInThreadHaveKeyword",
];

/// The session object for `account`, its URLs under `base`
/// (`https://host`; the WebSocket's `wss://host`); the submission
/// capability when there is a `submission` path.
pub fn session(
    account: &AccountRecord,
    limits: &Limits,
    base: &str,
    submission: Option<&dyn crate::submission::Submitter>,
) -> Value {
    let id = account_id(account);
    let mut session = json!({
        "capabilities": {
            CORE: {
                "maxSizeUpload": limits.max_size_upload,
                "maxConcurrentUpload": limits.max_concurrent_upload,
                "maxSizeRequest": limits.max_size_request,
                "maxConcurrentRequests": limits.max_concurrent_requests,
                "maxCallsInRequest": limits.max_calls_in_request,
                "maxObjectsInGet": limits.max_objects_in_get,
                "maxObjectsInSet": limits.max_objects_in_set,
                "collationAlgorithms": ["i;ascii-casemap", "i;octet", "i;unicode-casemap"],
            },
            MAIL: {},
            crate::vacation::CAPABILITY: {},
            crate::websocket::CAPABILITY: {
                "url": format!("{}/jmap/ws", base.replacen("http", "ws", 1)),
                "supportsPush": true,
            },
        },
        "accounts": {
            id.clone(): {
                "name": account.address,
                "isPersonal": true,
                "isReadOnly": false,
                "accountCapabilities": {
                    MAIL: {
                        "maxMailboxesPerEmail": null,
                        "maxMailboxDepth": null,
                        "maxSizeMailboxName": crate::mailbox::MAX_NAME,
                        "maxSizeAttachmentsPerEmail": limits.max_size_upload,
                        "emailQuerySortOptions": EMAIL_SORT,
                        "mayCreateTopLevelMailbox": true,
                    },
                    crate::vacation::CAPABILITY: {},
                },
            },
        },
        "primaryAccounts": { MAIL: id, crate::vacation::CAPABILITY: id },
        "username": account.address,
        "apiUrl": format!("{base}/jmap/api"),
        "downloadUrl": format!("{base}/jmap/download/{{accountId}}/{{blobId}}/{{name}}?accept={{type}}"),
        "uploadUrl": format!("{base}/jmap/upload/{{accountId}}/"),
        "eventSourceUrl": format!("{base}/jmap/eventsource?types={{types}}&closeafter={{closeafter}}&ping={{ping}}"),
        "state": STATE,
    });
    if let Some(submitter) = submission {
        session["capabilities"][SUBMISSION] = json!({});
        session["accounts"][&id]["accountCapabilities"][SUBMISSION] =
            crate::submission::capability(&submitter.extensions(account));
        session["primaryAccounts"][SUBMISSION] = json!(id);
    }
    session
}
