//! Push (RFC 8620 §7): the StateChange object (§7.1) that tells a client
//! which of its account's types moved, for the event source (§7.3) and
//! WebSocket (RFC 8887 §4.3.5) alike, and the `pushState` a WebSocket
//! client resumes from.

use serde_json::{Map, Value, json};

/// The states of an account by type name, in a fixed order
/// ([`crate::Jmap::states`]).
pub type States = Vec<(&'static str, String)>;

/// The StateChange (§7.1) from `last` to `now`, of the types asked
/// (None: every type); None when none of them moved.
pub fn state_change(
    account_id: &str,
    last: &States,
    now: &States,
    types: Option<&[String]>,
) -> Option<Value> {
    let changed: Map<String, Value> = now
        .iter()
        .filter(|(name, state)| {
            !last.iter().any(|(n, s)| n == name && s == state)
                && types.is_none_or(|t| t.iter().any(|x| x == name))
        })
        .map(|(name, state)| (name.to_string(), Value::String(state.clone())))
        .collect();
    if changed.is_empty() {
        return None;
    }
    Some(json!({
        "@type": "StateChange",
        "changed": { account_id: changed },
    }))
}

/// A `pushState` (RFC 8887 §4.3.5.1): every type's state in one opaque
/// string, so a client that reconnects is told what moved meanwhile.
pub fn push_state(states: &States) -> String {
    states
        .iter()
        .map(|(_, s)| s.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// The states a `pushState` of ours was made of (in the order of `like`,
/// the states now); None when it is not one.
pub fn parse_push_state(text: &str, like: &States) -> Option<States> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != like.len() || parts.iter().any(|p| crate::args::state(p).is_none()) {
        return None;
    }
    Some(
        like.iter()
            .zip(parts)
            .map(|((name, _), s)| (*name, s.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(m: &str, e: &str, t: &str) -> States {
        vec![
            ("Mailbox", m.to_string()),
            ("Email", e.to_string()),
            ("Thread", t.to_string()),
        ]
    }

    #[test]
    fn only_moved_and_asked_types_are_told() {
        let (a, b) = (states("1", "2", "3"), states("1", "5", "6"));
        assert_eq!(state_change("A1", &a, &a, None), None);
        let all = state_change("A1", &a, &b, None).unwrap();
        assert_eq!(all["changed"]["A1"], json!({"Email": "5", "Thread": "6"}));
        let some = state_change("A1", &a, &b, Some(&["Email".to_string()])).unwrap();
        assert_eq!(some["changed"]["A1"], json!({"Email": "5"}));
        assert_eq!(
            state_change("A1", &a, &b, Some(&["Mailbox".to_string()])),
            None
        );
    }

    #[test]
    fn push_state_round_trip() {
        let s = states("10", "20", "30");
        assert_eq!(push_state(&s), "10.20.30");
        assert_eq!(parse_push_state("1.2.3", &s), Some(states("1", "2", "3")));
        assert_eq!(parse_push_state("1.2", &s), None);
        assert_eq!(parse_push_state("1.x.3", &s), None);
    }
}
