//! The JMAP request envelope (RFC 8620 §3.3–§3.7): parsing a Request,
//! result references between calls, and the Response.
//!
//! Pure: no store, no I/O. The API layer runs the calls in order and feeds
//! each call's output back here so that later calls can refer to it.

use serde_json::{Map, Value};

use crate::error::{MethodError, RequestError};

/// One method call: name, arguments, call id (§3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub name: String,
    pub arguments: Map<String, Value>,
    pub call_id: String,
}

/// A parsed Request (§3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub using: Vec<String>,
    pub calls: Vec<Invocation>,
    /// Creation ids the client already knows (`createdIds`), if it sent them.
    pub created_ids: Option<Map<String, Value>>,
}

/// Parse a request body, checking the shape (§3.3) and the call limit.
pub fn parse(body: &[u8], max_calls: usize) -> Result<Request, RequestError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| RequestError::NotJson)?;
    from_value(value, max_calls)
}

/// A Request from JSON already parsed (RFC 8887 §4.3.2: a WebSocket
/// message is read before its `@type` says it is a Request). Other
/// members (`@type`, `id`) are left alone.
pub fn from_value(value: Value, max_calls: usize) -> Result<Request, RequestError> {
    let Value::Object(mut object) = value else {
        return Err(RequestError::NotRequest("not an object".into()));
    };
    let using = match object.remove("using") {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(RequestError::NotRequest("using holds a non-string".into())),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(RequestError::NotRequest("using is missing".into())),
    };
    let Some(Value::Array(raw_calls)) = object.remove("methodCalls") else {
        return Err(RequestError::NotRequest("methodCalls is missing".into()));
    };
    if raw_calls.len() > max_calls {
        return Err(RequestError::Limit("maxCallsInRequest"));
    }
    let calls = raw_calls
        .into_iter()
        .map(invocation)
        .collect::<Result<Vec<_>, _>>()?;
    let created_ids = match object.remove("createdIds") {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => {
            return Err(RequestError::NotRequest(
                "createdIds is not an object".into(),
            ));
        }
    };
    Ok(Request {
        using,
        calls,
        created_ids,
    })
}

fn invocation(value: Value) -> Result<Invocation, RequestError> {
    let bad = || RequestError::NotRequest("a method call is not [name, arguments, id]".into());
    let Value::Array(parts) = value else {
        return Err(bad());
    };
    let [
        Value::String(name),
        Value::Object(arguments),
        Value::String(call_id),
    ] = <[Value; 3]>::try_from(parts).map_err(|_| bad())?
    else {
        return Err(bad());
    };
    Ok(Invocation {
        name,
        arguments,
        call_id,
    })
}

/// Replace every `#name` argument by the value its ResultReference points
/// at in an earlier response of this request (§3.7). `responses` are the
/// method responses so far, as `(name, arguments, call id)`.
pub fn resolve_references(
    arguments: Map<String, Value>,
    responses: &[(String, Value, String)],
) -> Result<Map<String, Value>, MethodError> {
    let mut out = Map::new();
    for (key, value) in arguments {
        let Some(plain) = key.strip_prefix('#') else {
            out.insert(key, value);
            continue;
        };
        let invalid = |why: &str| MethodError::InvalidResultReference(format!("#{plain}: {why}"));
        let Value::Object(reference) = value else {
            return Err(invalid("not a ResultReference"));
        };
        let (Some(Value::String(of)), Some(Value::String(name)), Some(Value::String(path))) = (
            reference.get("resultOf"),
            reference.get("name"),
            reference.get("path"),
        ) else {
            return Err(invalid("resultOf, name and path are needed"));
        };
        // The first response with that call id (§3.7: "the first").
        let Some((response_name, result, _)) = responses.iter().find(|(_, _, id)| id == of) else {
            return Err(invalid("no earlier call has that id"));
        };
        if response_name != name {
            return Err(invalid("that call's response has another name"));
        }
        let resolved = evaluate_pointer(result, path).ok_or_else(|| invalid("path not found"))?;
        if out.contains_key(plain) {
            return Err(MethodError::InvalidArguments(format!(
                "{plain} given both plainly and by reference"
            )));
        }
        out.insert(plain.to_string(), resolved);
    }
    Ok(out)
}

/// A JSON Pointer (RFC 6901) with JMAP's `*` (RFC 8620 §3.7): applied to
/// each item of an array, the results flattened one level into one array.
pub fn evaluate_pointer(value: &Value, path: &str) -> Option<Value> {
    if path.is_empty() {
        return Some(value.clone());
    }
    let rest = path.strip_prefix('/')?;
    let (token, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let token = token.replace("~1", "/").replace("~0", "~");
    match value {
        Value::Array(items) if token == "*" => {
            let mut out = Vec::new();
            for item in items {
                match evaluate_pointer(item, tail)? {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Some(Value::Array(out))
        }
        Value::Array(items) => {
            let index: usize = token.parse().ok()?;
            evaluate_pointer(items.get(index)?, tail)
        }
        Value::Object(map) => evaluate_pointer(map.get(&token)?, tail),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_request_and_refuses_malformed_ones() {
        let r = parse(
            br#"{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"a":1},"c1"]]}"#,
            16,
        )
        .unwrap();
        assert_eq!(r.calls[0].name, "Core/echo");
        assert_eq!(r.calls[0].call_id, "c1");
        assert_eq!(parse(b"{nope", 16), Err(RequestError::NotJson));
        assert!(matches!(parse(b"[]", 16), Err(RequestError::NotRequest(_))));
        assert!(matches!(
            parse(br#"{"using":[],"methodCalls":[["x",{},1]]}"#, 16),
            Err(RequestError::NotRequest(_))
        ));
        assert_eq!(
            parse(
                br#"{"using":[],"methodCalls":[["a",{},"1"],["b",{},"2"]]}"#,
                1
            ),
            Err(RequestError::Limit("maxCallsInRequest"))
        );
    }

    #[test]
    fn pointers_with_wildcards() {
        let v = json!({"list": [{"id": "a", "ids": ["x", "y"]}, {"id": "b", "ids": ["z"]}]});
        assert_eq!(evaluate_pointer(&v, "/list/*/id"), Some(json!(["a", "b"])));
        assert_eq!(
            evaluate_pointer(&v, "/list/*/ids"),
            Some(json!(["x", "y", "z"]))
        );
        assert_eq!(evaluate_pointer(&v, "/list/1/id"), Some(json!("b")));
        assert_eq!(evaluate_pointer(&v, "/list/7/id"), None);
        assert_eq!(
            evaluate_pointer(&json!({"a/b": 1}), "/a~1b"),
            Some(json!(1))
        );
    }

    #[test]
    fn references_resolve_against_earlier_responses() {
        let responses = vec![(
            "Email/query".to_string(),
            json!({"ids": ["E1", "E2"]}),
            "q".to_string(),
        )];
        let args = json!({"#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"}});
        let Value::Object(args) = args else { panic!() };
        let resolved = resolve_references(args.clone(), &responses).unwrap();
        assert_eq!(resolved["ids"], json!(["E1", "E2"]));
        let wrong = json!({"#ids": {"resultOf": "q", "name": "Email/get", "path": "/ids"}});
        let Value::Object(wrong) = wrong else {
            panic!()
        };
        assert!(matches!(
            resolve_references(wrong, &responses),
            Err(MethodError::InvalidResultReference(_))
        ));
    }
}
