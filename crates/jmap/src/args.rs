//! Reading method arguments (RFC 8620 §5): each wrong type or missing
//! required argument is `invalidArguments` naming the argument.

use serde_json::{Map, Value};

use crate::error::MethodError;

pub type Args = Map<String, Value>;

fn invalid(name: &str, why: &str) -> MethodError {
    MethodError::InvalidArguments(format!("{name}: {why}"))
}

/// An optional string argument.
pub fn string(args: &Args, name: &str) -> Result<Option<String>, MethodError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(name, "not a string")),
    }
}

/// An optional list of strings (`ids`, `properties`): None when null or absent.
pub fn strings(args: &Args, name: &str) -> Result<Option<Vec<String>>, MethodError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(invalid(name, "holds a non-string")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(name, "not a list")),
    }
}

pub fn boolean(args: &Args, name: &str, default: bool) -> Result<bool, MethodError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(name, "not a boolean")),
    }
}

/// An optional UnsignedInt (§1.3: 0 ≤ n ≤ 2^53−1).
pub fn unsigned(args: &Args, name: &str) -> Result<Option<u64>, MethodError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| *n < 1 << 53)
            .map(Some)
            .ok_or_else(|| invalid(name, "not an unsigned integer")),
    }
}

/// An optional Int (§1.3).
pub fn signed(args: &Args, name: &str) -> Result<Option<i64>, MethodError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .filter(|n| n.unsigned_abs() < 1 << 53)
            .map(Some)
            .ok_or_else(|| invalid(name, "not an integer")),
    }
}

/// An optional object argument.
pub fn object<'a>(args: &'a Args, name: &str) -> Result<Option<&'a Args>, MethodError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(invalid(name, "not an object")),
    }
}

/// A state argument (`sinceState`, `ifInState`): our states are numbers;
/// anything else is a state this server never gave.
pub fn state(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) || value.len() > 19 {
        return None;
    }
    value.parse().ok()
}
