//! When a vacation response goes out (RFC 5230 §4.5, §4.6; RFC 3834 §2):
//! never to `<>`, to the user's own addresses, to lists, bulk or automatic
//! mail, nor when the user was not a visible recipient. What answered
//! means (§4.2) is the tracking key the MDA checks and records.

use crate::action::{Context, VacationReply};
use crate::mail::{self, Mail};

/// A `vacation` command with its strings expanded.
#[derive(Debug, Clone)]
pub struct Request {
    pub seconds: u64,
    pub subject: Option<String>,
    pub from: Option<String>,
    pub addresses: Vec<String>,
    pub mime: bool,
    pub handle: Option<String>,
    pub reason: String,
}

/// Header fields that mark mailing list mail (RFC 2369, RFC 2919).
const LIST_FIELDS: &[&str] = &[
    "list-id",
    "list-help",
    "list-subscribe",
    "list-unsubscribe",
    "list-post",
    "list-owner",
    "list-archive",
];

/// Recipient fields where the user must appear (RFC 5230 §4.5).
const RECIPIENT_FIELDS: &[&str] = &["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"];

/// RFC 3834 §2 and RFC 5230 §4.6: mail that an automaton sent, or a list.
pub fn is_automatic(m: &Mail) -> bool {
    let auto = m.raw_values("Auto-Submitted").iter().any(|v| {
        !mail::decoded(v)
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("no")
    });
    let list = LIST_FIELDS.iter().any(|f| !m.raw_values(f).is_empty());
    let bulk = m.raw_values("Precedence").iter().any(|v| {
        let p = mail::decoded(v).to_ascii_lowercase();
        matches!(p.as_str(), "bulk" | "list" | "junk")
    });
    auto || list || bulk
}

/// RFC 5230 §4.6: senders that are programs.
fn is_robot(sender_local: &str) -> bool {
    let l = sender_local.to_ascii_lowercase();
    matches!(
        l.as_str(),
        "mailer-daemon" | "listserv" | "majordomo" | "postmaster"
    ) || l.starts_with("owner-")
        || l.ends_with("-request")
        || l.starts_with("noreply")
        || l.starts_with("no-reply")
}

/// Same address, the sub-address of the candidate ignored.
fn same_address(own: &str, candidate: &str, sep: Option<char>) -> bool {
    if own.eq_ignore_ascii_case(candidate) {
        return true;
    }
    let (l, d) = mail::split_address(candidate);
    let base = sep.and_then(|s| l.split_once(s)).map(|(u, _)| u);
    base.is_some_and(|u| own.eq_ignore_ascii_case(&format!("{u}@{d}")))
}

/// The reply to send, or None when the rules say not to answer.
pub fn decide(v: &Request, ctx: &Context, m: &Mail) -> Option<VacationReply> {
    let sender = ctx.envelope_from.trim();
    if sender.is_empty() {
        return None;
    }
    let mut own: Vec<String> = vec![ctx.user.clone(), ctx.envelope_to.clone()];
    own.extend(v.addresses.iter().map(|a| a.trim().to_string()));
    own.retain(|a| !a.is_empty());
    if own.iter().any(|a| same_address(a, sender, ctx.separator)) {
        return None;
    }
    if is_robot(&mail::split_address(sender).0) || is_automatic(m) {
        return None;
    }
    // §4.5: the user among the visible recipients; the address that matched
    // answers (unless :from says otherwise).
    let mut matched = None;
    'fields: for f in RECIPIENT_FIELDS {
        for raw in m.raw_values(f) {
            for (l, d) in mail::addresses(raw) {
                let a = format!("{l}@{d}");
                if let Some(o) = own.iter().find(|o| same_address(o, &a, ctx.separator)) {
                    matched = Some(o.clone());
                    break 'fields;
                }
            }
        }
    }
    let matched = matched?;
    let from = v
        .from
        .as_ref()
        .filter(|f| {
            let a = f
                .rsplit_once('<')
                .map_or(f.as_str(), |(_, r)| r.trim_end_matches('>'));
            message::Mailbox::parse(a.trim()).is_ok()
        })
        .cloned()
        .unwrap_or(matched);
    let original_subject = m.raw_values("Subject").first().map(|s| mail::decoded(s));
    let subject = match (&v.subject, original_subject) {
        (Some(s), _) => s.clone(),
        (None, Some(s)) if !s.is_empty() => format!("Auto: {s}"),
        (None, _) => "Automated reply".to_string(),
    };
    // §4.2: without :handle, the response's own arguments make the handle.
    let handle = v.handle.clone().unwrap_or_else(|| {
        crate::interp::tracking_key(&[
            &v.reason,
            v.subject.as_deref().unwrap_or(""),
            v.from.as_deref().unwrap_or(""),
            if v.mime { "mime" } else { "" },
        ])
    });
    let message_id = m.raw_values("Message-ID").first().map(|s| mail::decoded(s));
    let references = m.raw_values("References").first().map(|s| mail::decoded(s));
    Some(VacationReply {
        to: sender.to_string(),
        from,
        subject,
        reason: v.reason.clone(),
        mime: v.mime,
        period: v.seconds,
        tracking: crate::interp::tracking_key(&["vacation", &handle, &sender.to_ascii_lowercase()]),
        references: match (&references, &message_id) {
            (Some(r), Some(id)) => Some(format!("{r} {id}")),
            (None, Some(id)) => Some(id.clone()),
            _ => references.clone(),
        },
        in_reply_to: message_id,
    })
}
