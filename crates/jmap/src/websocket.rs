//! JMAP over WebSocket (RFC 8887): what one connection's messages mean,
//! as a state machine that owns no socket (the web crate moves the
//! frames). A text message is a Request (answered by a Response with its
//! `requestId`, or a RequestError), a WebSocketPushEnable or a
//! WebSocketPushDisable (§4.3); while push is on, every change of the
//! account's types the client asked for is told as a StateChange with a
//! `pushState` (§4.3.5.1), which a client may give back when it enables
//! push on a new connection to hear what moved meanwhile.

use serde_json::{Value, json};
use store::AccountRecord;

use crate::error::RequestError;
use crate::push::{self, States};
use crate::{Jmap, account_id};

/// The capability in the session resource (RFC 8887 §3).
pub const CAPABILITY: &str = "urn:ietf:params:jmap:websocket";
/// The subprotocol the handshake agrees on (RFC 8887 §4.2).
pub const SUBPROTOCOL: &str = "jmap";

/// One WebSocket connection of an authenticated account.
pub struct WsSession {
    account: AccountRecord,
    client: std::net::IpAddr,
    push: Option<Push>,
}

/// What push sends (§4.3.5.2): the types asked (None: all), and the
/// states the client was last told.
struct Push {
    types: Option<Vec<String>>,
    told: States,
}

impl WsSession {
    pub fn new(account: AccountRecord, client: std::net::IpAddr) -> WsSession {
        WsSession {
            account,
            client,
            push: None,
        }
    }

    /// Whether push is on (the connection then listens for changes).
    pub fn pushing(&self) -> bool {
        self.push.is_some()
    }

    /// The messages to send back for one text message from the client.
    pub async fn on_message(&mut self, jmap: &Jmap, text: &str) -> Vec<String> {
        if text.len() as u64 > jmap.limits.max_size_request {
            return vec![request_error(None, &RequestError::Limit("maxSizeRequest"))];
        }
        let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
            return vec![request_error(None, &RequestError::NotJson)];
        };
        let id = match message.remove("id") {
            Some(Value::String(id)) => Some(id),
            _ => None,
        };
        match message.get("@type").and_then(Value::as_str) {
            Some("Request") => vec![self.request(jmap, id, Value::Object(message)).await],
            Some("WebSocketPushEnable") => self.enable(jmap, &message).await,
            Some("WebSocketPushDisable") => {
                self.push = None;
                Vec::new()
            }
            _ => vec![request_error(
                id.as_deref(),
                &RequestError::NotRequest(
                    "@type is not Request or WebSocketPushEnable/Disable".into(),
                ),
            )],
        }
    }

    /// A binary message: JMAP over WebSocket is text (§4.3).
    pub fn on_binary(&self) -> String {
        request_error(None, &RequestError::NotJson)
    }

    /// After the store announced a change: the StateChange to send, if
    /// push is on and a type the client asked for moved.
    pub async fn on_change(&mut self, jmap: &Jmap) -> Option<String> {
        let push = self.push.as_mut()?;
        let now = jmap.states(&self.account).await.ok()?;
        state_change(&self.account, push, now)
    }

    async fn request(&mut self, jmap: &Jmap, id: Option<String>, message: Value) -> String {
        let outcome =
            match crate::request::from_value(message, jmap.limits.max_calls_in_request as usize) {
                Ok(request) => jmap.run(&self.account, self.client, request).await,
                Err(e) => Err(e),
            };
        match outcome {
            Ok(mut response) => {
                response["@type"] = json!("Response");
                response["requestId"] = json!(id);
                response.to_string()
            }
            Err(e) => request_error(id.as_deref(), &e),
        }
    }

    /// WebSocketPushEnable (§4.3.5.2): `dataTypes` (null: all) and, if
    /// given, a `pushState` whose changes since are told at once.
    async fn enable(
        &mut self,
        jmap: &Jmap,
        message: &serde_json::Map<String, Value>,
    ) -> Vec<String> {
        let types = match message.get("dataTypes") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => Some(
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            Some(_) => {
                return vec![request_error(
                    None,
                    &RequestError::NotRequest("dataTypes is not a list".into()),
                )];
            }
        };
        let Ok(now) = jmap.states(&self.account).await else {
            return Vec::new();
        };
        let told = message
            .get("pushState")
            .and_then(Value::as_str)
            .and_then(|s| push::parse_push_state(s, &now));
        let mut push = Push {
            types,
            told: told.clone().unwrap_or_else(|| now.clone()),
        };
        let out = match told {
            Some(_) => state_change(&self.account, &mut push, now)
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        self.push = Some(push);
        out
    }
}

/// The StateChange with its `pushState`, if a type asked for moved.
fn state_change(account: &AccountRecord, push: &mut Push, now: States) -> Option<String> {
    let change = push::state_change(
        &account_id(account),
        &push.told,
        &now,
        push.types.as_deref(),
    );
    push.told = now;
    let mut change = change?;
    change["pushState"] = json!(push::push_state(&push.told));
    Some(change.to_string())
}

/// A RequestError (§4.3.4): the problem details of the HTTP binding with
/// `@type` and the `requestId` of the request, when it had one.
fn request_error(id: Option<&str>, e: &RequestError) -> String {
    let mut problem = e.to_problem();
    problem["@type"] = json!("RequestError");
    problem["requestId"] = json!(id);
    problem.to_string()
}
