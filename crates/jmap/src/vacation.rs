//! VacationResponse (RFC 8621 §8): the account's one automatic reply,
//! kept as a Sieve script (`store::VACATION_SCRIPT`) that runs at
//! delivery after the user's own active script, so the reply logic is
//! Sieve's vacation (RFC 5230): once per sender per week, never to
//! mailing lists, robots or the null sender, only to mail addressed to
//! the user. The object itself is the script's first lines (JSON in a
//! comment); the script below them is made from it. A user may read the
//! script over ManageSieve; a script changed there that no longer starts
//! with that line reads back as a disabled response.

use serde_json::{Map, Value, json};
use store::VACATION_SCRIPT;

use crate::Context;
use crate::args::Args;
use crate::error::{MethodError, SetError};
use crate::set::{SetRequest, SetResponse, get_arguments};

/// The capability (RFC 8621 §1.3.3).
pub const CAPABILITY: &str = "urn:ietf:params:jmap:vacationresponse";

/// The first line of the script: what the object is read back from.
const MARK: &str = "# tern:vacationresponse ";

const FIELDS: [&str; 6] = [
    "isEnabled",
    "fromDate",
    "toDate",
    "subject",
    "textBody",
    "htmlBody",
];

fn disabled() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("isEnabled".into(), Value::Bool(false));
    for f in &FIELDS[1..] {
        m.insert(f.to_string(), Value::Null);
    }
    m
}

/// The object a script holds (disabled when it holds none).
fn read(script: Option<&str>) -> Map<String, Value> {
    script
        .and_then(|s| s.lines().next())
        .and_then(|l| l.strip_prefix(MARK))
        .and_then(|j| serde_json::from_str::<Map<String, Value>>(j).ok())
        .map(|mut m| {
            m.retain(|k, _| FIELDS.contains(&k.as_str()));
            let mut full = disabled();
            full.extend(m);
            full
        })
        .unwrap_or_else(disabled)
}

/// A Sieve quoted string (RFC 5228 §2.4.2).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `2026-12-01T00:00:00` of a UTCDate, as `currentdate :zone "+0000"
/// "iso8601"` starts its value (compared as text: same layout).
fn moment(value: &Value) -> Option<String> {
    let unix = value.as_str().and_then(message::date::rfc3339)?;
    Some(
        message::date::rfc3339_text(unix)
            .trim_end_matches('Z')
            .to_string(),
    )
}

/// The script for an object: the line it is read back from, then the
/// vacation action under its dates.
pub fn script(object: &Map<String, Value>) -> String {
    let mut out = format!(
        "{MARK}{}\n# The JMAP VacationResponse of this account (RFC 8621 §8), written by Tern.\n",
        Value::Object(object.clone())
    );
    if object.get("isEnabled") != Some(&Value::Bool(true)) {
        return out;
    }
    let mut conditions = Vec::new();
    if let Some(from) = object.get("fromDate").and_then(moment) {
        conditions.push(format!(
            "currentdate :zone \"+0000\" :value \"ge\" \"iso8601\" {}",
            quoted(&from)
        ));
    }
    if let Some(to) = object.get("toDate").and_then(moment) {
        conditions.push(format!(
            "currentdate :zone \"+0000\" :value \"lt\" \"iso8601\" {}",
            quoted(&to)
        ));
    }
    let text = object.get("textBody").and_then(Value::as_str);
    let html = object.get("htmlBody").and_then(Value::as_str);
    let subject = match object.get("subject").and_then(Value::as_str) {
        Some(s) => format!(":subject {} ", quoted(s)),
        None => String::new(),
    };
    let action = match html {
        Some(h) => {
            let plain = text.unwrap_or_default();
            let body = format!(
                "Content-Type: multipart/alternative; boundary=\"tern-vacation\"\r\n\r\n--tern-vacation\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{plain}\r\n--tern-vacation\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{h}\r\n--tern-vacation--\r\n"
            );
            format!("vacation :days 7 {subject}:mime {};", quoted(&body))
        }
        None => format!(
            "vacation :days 7 {subject}{};",
            quoted(text.unwrap_or("I am away."))
        ),
    };
    out.push_str("require [\"vacation\", \"date\", \"relational\"];\n");
    if conditions.is_empty() {
        out.push_str(&action);
    } else {
        out.push_str(&format!(
            "if allof ({}) {{\n    {action}\n}}",
            conditions.join(",\n    ")
        ));
    }
    out.push('\n');
    out
}

/// VacationResponse/get: the singleton.
pub async fn get(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let (ids, _) = get_arguments(args, context.jmap.limits.max_objects_in_get)?;
    let text = context
        .store()
        .sieve_get(context.account.id, VACATION_SCRIPT)
        .await?;
    let mut object = read(text.as_deref());
    object.insert("id".into(), json!("singleton"));
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    match ids {
        None => list.push(Value::Object(object)),
        Some(ids) => {
            for id in ids {
                if id == "singleton" {
                    list.push(Value::Object(object.clone()));
                } else {
                    not_found.push(id);
                }
            }
        }
    }
    Ok(json!({
        "accountId": context.account_id,
        "state": state(text.as_deref()),
        "list": list,
        "notFound": not_found,
    }))
}

/// The state: a digest of the script (it changes when the object does).
fn state(text: Option<&str>) -> String {
    crate::set::digest(text.unwrap_or_default())
}

/// VacationResponse/set: only the singleton, only updated (§8.2).
pub async fn set(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let store = context.store();
    let text = store.sieve_get(context.account.id, VACATION_SCRIPT).await?;
    let old = state(text.as_deref());
    let request = SetRequest::parse(args, context.jmap.limits.max_objects_in_set, &old)?;
    let singleton = || json!({"type": "singleton", "description": "there is one VacationResponse, \"singleton\", to update"});
    let mut response = SetResponse::default();
    for (creation, _) in request.create {
        response.not_created.insert(creation, singleton());
    }
    for id in request.destroy {
        response.not_destroyed.insert(id, singleton());
    }
    for (id, patch) in request.update {
        if id != "singleton" {
            response.not_updated(id, SetError::NotFound);
            continue;
        }
        let mut object = read(text.as_deref());
        match apply(&mut object, &patch) {
            Ok(()) => {
                let new = script(&object);
                if let Err(e) = sieve::compile(&new) {
                    tracing::warn!(error = %e, "jmap: a vacation script did not compile");
                    response
                        .not_updated(id, SetError::invalid("textBody", "cannot be sent as given"));
                    continue;
                }
                store
                    .sieve_put(context.account.id, VACATION_SCRIPT, &new)
                    .await?;
                response.updated(id);
            }
            Err(e) => response.not_updated(id, e),
        }
    }
    let new_text = store.sieve_get(context.account.id, VACATION_SCRIPT).await?;
    Ok(response.into_value(&context.account_id, &old, &state(new_text.as_deref())))
}

/// A patch of the object's properties, each checked for its type.
fn apply(object: &mut Map<String, Value>, patch: &Args) -> Result<(), SetError> {
    for (k, v) in patch {
        let ok = match k.as_str() {
            "isEnabled" => v.is_boolean(),
            "fromDate" | "toDate" => {
                v.is_null() || v.as_str().and_then(message::date::rfc3339).is_some()
            }
            // A Sieve script holds no NUL (RFC 5228 §8.1), and the
            // response is one.
            "subject" => {
                v.is_null()
                    || v.as_str()
                        .is_some_and(|s| !s.contains(['\r', '\n', '\0']) && s.len() <= 998)
            }
            "textBody" | "htmlBody" => {
                v.is_null()
                    || v.as_str()
                        .is_some_and(|s| !s.contains('\0') && s.len() <= 64 * 1024)
            }
            "id" => v.as_str() == Some("singleton"),
            _ => return Err(SetError::invalid(k, "not a VacationResponse property")),
        };
        if !ok {
            return Err(SetError::invalid(k, "not a valid value"));
        }
        if k != "id" {
            object.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_compile_and_read_back() {
        let mut o = disabled();
        assert!(sieve::compile(&script(&o)).is_ok());
        assert!(!script(&o).contains("vacation :days"), "disabled: no reply");
        o.insert("isEnabled".into(), json!(true));
        o.insert("fromDate".into(), json!("2026-12-20T00:00:00Z"));
        o.insert("toDate".into(), json!("2027-01-04T00:00:00Z"));
        o.insert("subject".into(), json!("Away \"until\" January"));
        o.insert("textBody".into(), json!("Back on the 4th.\nC:\\path"));
        let text = script(&o);
        assert!(sieve::compile(&text).is_ok(), "{text}");
        assert!(text.contains("\"2026-12-20T00:00:00\""));
        assert_eq!(read(Some(&text)), o);
        o.insert("htmlBody".into(), json!("<p>Back on the 4th.</p>"));
        assert!(sieve::compile(&script(&o)).is_ok());
        assert_eq!(read(Some("require \"fileinto\";")), disabled());
        assert_eq!(read(None), disabled());
    }

    /// A NUL cannot be in the script the response is kept as: the property
    /// that holds it is named, as RFC 8620 §5.3 invalidProperties asks.
    #[test]
    fn a_nul_is_refused_in_the_property_that_holds_it() {
        for property in ["subject", "textBody", "htmlBody"] {
            let mut patch = Args::new();
            patch.insert(property.into(), json!("away\u{0}"));
            match apply(&mut disabled(), &patch) {
                Err(SetError::InvalidProperties(names, _)) => assert_eq!(names, [property]),
                other => panic!("{property}: {other:?}"),
            }
        }
    }
}
