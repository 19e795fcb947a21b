//! JMAP request bodies (RFC 8620 §3.3) as clients send them: the envelope,
//! result references against the responses so far, JSON pointers (§3.7).
#![no_main]
use serde_json::{Value, json};

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    let Ok(request) = jmap::request::parse(body, 32) else {
        return;
    };
    assert!(request.calls.len() <= 32);
    let mut responses = vec![(
        "Email/query".to_string(),
        json!({"ids": ["E1", "E2"], "list": [{"id": "E1", "threadId": "T1"}]}),
        "q".to_string(),
    )];
    for call in request.calls {
        if let Ok(args) = jmap::request::resolve_references(call.arguments.clone(), &responses) {
            responses.push((call.name.clone(), Value::Object(args), call.call_id.clone()));
        }
        for (_, v) in &call.arguments {
            if let Some(path) = v.get("path").and_then(Value::as_str) {
                let _ = jmap::request::evaluate_pointer(&responses[0].1, path);
            }
        }
    }
});
