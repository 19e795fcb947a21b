//! SearchSnippet/get (RFC 8621 §5): the subject and preview of emails
//! found by a text search, HTML-escaped, the searched text in `<mark>`.
//! The preview is the stored one (the start of the text, RFC 8970);
//! when the match is not in it, `preview` is null, as for a subject
//! without a match (§5.1).

use serde_json::{Value, json};

use crate::Context;
use crate::args::{self, Args};
use crate::error::MethodError;

/// The text a filter searches for (text, subject, body conditions, at
/// any depth).
fn needles(filter: &Value, out: &mut Vec<String>) {
    let Some(o) = filter.as_object() else { return };
    if let Some(c) = o.get("conditions").and_then(Value::as_array) {
        c.iter().for_each(|f| needles(f, out));
        return;
    }
    for key in ["text", "subject", "body"] {
        if let Some(n) = o.get(key).and_then(Value::as_str).filter(|n| !n.is_empty()) {
            out.push(n.to_string());
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `text` HTML-escaped with each case-insensitive occurrence of a needle
/// marked; None when there is none.
pub fn highlight(text: &str, needles: &[String]) -> Option<String> {
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        // Case folding changed lengths (rare scripts): mark nothing
        // rather than cut a character.
        return needles
            .iter()
            .any(|n| lower.contains(&n.to_lowercase()))
            .then(|| escape(text));
    }
    let mut marks: Vec<(usize, usize)> = Vec::new();
    for n in needles {
        let n = n.to_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find(&n) {
            marks.push((from + i, from + i + n.len()));
            from += i + n.len().max(1);
        }
    }
    if marks.is_empty() {
        return None;
    }
    marks.sort();
    let mut out = String::new();
    let mut at = 0;
    for (start, end) in marks {
        if start < at {
            continue;
        }
        out.push_str(&escape(&text[at..start]));
        out.push_str("<mark>");
        out.push_str(&escape(&text[start..end]));
        out.push_str("</mark>");
        at = end;
    }
    out.push_str(&escape(&text[at..]));
    Some(out)
}

/// SearchSnippet/get.
pub async fn get(context: &Context<'_>, args: &Args) -> Result<Value, MethodError> {
    let ids = args::strings(args, "emailIds")?
        .ok_or_else(|| MethodError::InvalidArguments("emailIds is required".into()))?;
    if ids.len() as u64 > context.jmap.limits.max_objects_in_get {
        return Err(MethodError::RequestTooLarge);
    }
    let mut wanted = Vec::new();
    if let Some(filter) = args.get("filter") {
        needles(filter, &mut wanted);
    }
    let view = context.view().await?;
    let (mut list, mut not_found) = (Vec::new(), Vec::new());
    for id in ids {
        let Some(email) = context
            .resolve_id(&id)
            .and_then(|r| view.email_by_jmap_id(&r))
        else {
            not_found.push(id);
            continue;
        };
        let preview = match email.entries.first() {
            Some((mailbox, uid)) => context
                .store()
                .previews(*mailbox, vec![*uid])
                .await?
                .into_iter()
                .next()
                .map(|(_, p)| p)
                .unwrap_or_default(),
            None => String::new(),
        };
        list.push(json!({
            "emailId": id,
            "subject": highlight(&email.index.subject, &wanted),
            "preview": highlight(&preview, &wanted),
        }));
    }
    Ok(json!({
        "accountId": context.account_id,
        "list": list,
        "notFound": if not_found.is_empty() { Value::Null } else { json!(not_found) },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_every_match_and_escapes_the_rest() {
        let n = vec!["plan".to_string()];
        assert_eq!(
            highlight("The <Plan> & the plan", &n).as_deref(),
            Some("The &lt;<mark>Plan</mark>&gt; &amp; the <mark>plan</mark>")
        );
        assert_eq!(highlight("nothing here", &n), None);
        assert_eq!(highlight("x", &[]), None);
    }
}
