//! The common shape of `Foo/set` (RFC 8620 §5.3): create, update and
//! destroy maps read and bounded, `ifInState` checked, and the response
//! with its created / updated / destroyed and not-* maps.

use serde_json::{Map, Value, json};

use crate::args::{self, Args};
use crate::error::{MethodError, SetError};

/// The parts of a `/set` call.
#[derive(Debug, Default)]
pub struct SetRequest {
    pub create: Vec<(String, Args)>,
    pub update: Vec<(String, Args)>,
    pub destroy: Vec<String>,
}

impl SetRequest {
    /// Read the call; `state` is the type's current state, checked
    /// against `ifInState` (`stateMismatch`; states are opaque strings).
    pub fn parse(args: &Args, max_objects: u64, state: &str) -> Result<SetRequest, MethodError> {
        if let Some(wanted) = args::string(args, "ifInState")?
            && wanted != state
        {
            return Err(MethodError::StateMismatch);
        }
        let objects = |name: &str| -> Result<Vec<(String, Args)>, MethodError> {
            Ok(args::object(args, name)?
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| match v {
                            Value::Object(o) => Ok((k.clone(), o.clone())),
                            _ => Err(MethodError::InvalidArguments(format!(
                                "{name}/{k} is not an object"
                            ))),
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default())
        };
        let request = SetRequest {
            create: objects("create")?,
            update: objects("update")?,
            destroy: args::strings(args, "destroy")?.unwrap_or_default(),
        };
        let n = request.create.len() + request.update.len() + request.destroy.len();
        if n as u64 > max_objects {
            return Err(MethodError::RequestTooLarge);
        }
        Ok(request)
    }
}

/// What a `/set` call did, object by object.
#[derive(Debug, Default)]
pub struct SetResponse {
    pub created: Map<String, Value>,
    pub not_created: Map<String, Value>,
    pub updated: Map<String, Value>,
    pub not_updated: Map<String, Value>,
    pub destroyed: Vec<String>,
    pub not_destroyed: Map<String, Value>,
}

impl SetResponse {
    pub fn created(&mut self, creation: String, object: Value) {
        self.created.insert(creation, object);
    }
    pub fn not_created(&mut self, creation: String, e: SetError) {
        self.not_created.insert(creation, e.to_value());
    }
    pub fn updated(&mut self, id: String) {
        self.updated.insert(id, Value::Null);
    }
    pub fn not_updated(&mut self, id: String, e: SetError) {
        self.not_updated.insert(id, e.to_value());
    }
    pub fn not_destroyed(&mut self, id: String, e: SetError) {
        self.not_destroyed.insert(id, e.to_value());
    }

    /// The response arguments.
    pub fn into_value(self, account_id: &str, old_state: &str, new_state: &str) -> Value {
        let or_null = |m: Map<String, Value>| {
            if m.is_empty() {
                Value::Null
            } else {
                Value::Object(m)
            }
        };
        json!({
            "accountId": account_id,
            "oldState": old_state,
            "newState": new_state,
            "created": or_null(self.created),
            "updated": or_null(self.updated),
            "destroyed": if self.destroyed.is_empty() { Value::Null } else { json!(self.destroyed) },
            "notCreated": or_null(self.not_created),
            "notUpdated": or_null(self.not_updated),
            "notDestroyed": or_null(self.not_destroyed),
        })
    }
}

/// `ids` and `properties` of a `/get` call; None: all, the default.
pub type GetArguments = (Option<Vec<String>>, Option<Vec<String>>);

/// A `/get` call's `ids` (null: all) and `properties` (null: the
/// default), `ids` bounded by `maxObjectsInGet` (RFC 8620 §5.1).
pub fn get_arguments(args: &Args, max_objects: u64) -> Result<GetArguments, MethodError> {
    let ids = args::strings(args, "ids")?;
    if ids
        .as_ref()
        .is_some_and(|ids| ids.len() as u64 > max_objects)
    {
        return Err(MethodError::RequestTooLarge);
    }
    Ok((ids, args::strings(args, "properties")?))
}

/// A state made from what a type's objects are (identities, the vacation
/// response), for types without a change log: FNV-1a, short and stable,
/// not a secret.
pub fn digest(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:x}")
}

/// The most ids one `/query` answer holds when the client sets no smaller
/// limit (said in the answer's `limit`, RFC 8620 §5.5).
pub const MAX_QUERY_LIMIT: usize = 10_000;

/// The page of a `/query` answer (RFC 8620 §5.5): `position` (negative:
/// from the end) or `anchor` with `anchorOffset`, `limit`,
/// `calculateTotal`; `ids` are every result in order. `changes`: whether
/// `/queryChanges` can answer from this `queryState`.
pub fn query_page(
    context: &crate::Context<'_>,
    args: &Args,
    ids: Vec<String>,
    query_state: &str,
    changes: bool,
) -> Result<Value, MethodError> {
    let total = ids.len();
    let start = match args::string(args, "anchor")? {
        Some(anchor) => {
            let at = ids
                .iter()
                .position(|i| *i == anchor)
                .ok_or(MethodError::AnchorNotFound)? as i64;
            let offset = args::signed(args, "anchorOffset")?.unwrap_or(0);
            (at + offset).clamp(0, total as i64) as usize
        }
        None => {
            let position = args::signed(args, "position")?.unwrap_or(0);
            if position < 0 {
                total.saturating_sub(position.unsigned_abs() as usize)
            } else {
                (position as usize).min(total)
            }
        }
    };
    let asked = args::unsigned(args, "limit")?.map(|l| l as usize);
    let limit = asked.unwrap_or(MAX_QUERY_LIMIT).min(MAX_QUERY_LIMIT);
    let page: Vec<&String> = ids.iter().skip(start).take(limit).collect();
    let mut out = json!({
        "accountId": context.account_id,
        "queryState": query_state,
        "canCalculateChanges": changes,
        "position": start,
        "ids": page,
    });
    if args::boolean(args, "calculateTotal", false)? {
        out["total"] = json!(total);
    }
    if asked.is_none_or(|a| a > MAX_QUERY_LIMIT) && total > start + MAX_QUERY_LIMIT {
        out["limit"] = json!(MAX_QUERY_LIMIT);
    }
    Ok(out)
}
