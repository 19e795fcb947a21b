//! NOTIFY (RFC 5465 §3.1, §8): `NOTIFY NONE`, or `NOTIFY SET [(STATUS)]`
//! and groups of a mailbox filter with the events wanted for it.

use super::{FetchItem, PResult, Parser, parse_fetch};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyFilter {
    Selected,
    SelectedDelayed,
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyEvent {
    /// With what to FETCH for each new message of the selected mailbox.
    MessageNew(Vec<FetchItem>),
    MessageExpunge,
    FlagChange,
    AnnotationChange,
    MailboxName,
    SubscriptionChange,
    MailboxMetadataChange,
    ServerMetadataChange,
    /// An event this server does not know (answered with BADEVENT).
    Other(String),
}

/// One filter and its events (none: NONE, tell nothing about these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyGroup {
    pub filter: NotifyFilter,
    pub events: Vec<NotifyEvent>,
}

/// `NONE` (None), or `SET`: whether STATUS is asked, and the groups.
pub fn parse_notify(p: &mut Parser<'_>) -> PResult<Option<(bool, Vec<NotifyGroup>)>> {
    p.sp()?;
    if p.eat_word("NONE") {
        return Ok(None);
    }
    if !p.eat_word("SET") {
        return Err("NOTIFY takes SET or NONE".into());
    }
    // status-indicator = SP "STATUS"
    let status = p.rest().len() >= 7 && p.rest()[..7].eq_ignore_ascii_case(b" STATUS");
    if status {
        p.sp()?;
        p.atom()?;
    }
    let mut groups = Vec::new();
    while p.eat(b' ') {
        p.expect(b'(')?;
        p.enter()?;
        let filter = filter(p)?;
        p.sp()?;
        let events = if p.eat_word("NONE") {
            Vec::new()
        } else {
            p.list(false, event)?
        };
        p.leave();
        p.expect(b')')?;
        groups.push(NotifyGroup { filter, events });
    }
    if groups.is_empty() {
        return Err("NOTIFY SET needs at least one event group".into());
    }
    Ok(Some((status, groups)))
}

fn mailboxes(p: &mut Parser<'_>) -> PResult<Vec<String>> {
    p.sp()?;
    if p.peek() == Some(b'(') {
        p.list(false, |p| p.astring_utf8())
    } else {
        Ok(vec![p.astring_utf8()?])
    }
}

fn filter(p: &mut Parser<'_>) -> PResult<NotifyFilter> {
    Ok(match p.atom()?.to_ascii_uppercase().as_str() {
        "SELECTED" => NotifyFilter::Selected,
        "SELECTED-DELAYED" => NotifyFilter::SelectedDelayed,
        "INBOXES" => NotifyFilter::Inboxes,
        "PERSONAL" => NotifyFilter::Personal,
        "SUBSCRIBED" => NotifyFilter::Subscribed,
        "SUBTREE" => NotifyFilter::Subtree(mailboxes(p)?),
        "MAILBOXES" => NotifyFilter::Mailboxes(mailboxes(p)?),
        other => return Err(format!("unknown NOTIFY filter {other}")),
    })
}

fn event(p: &mut Parser<'_>) -> PResult<NotifyEvent> {
    let name = p.atom()?;
    Ok(match name.to_ascii_uppercase().as_str() {
        "MESSAGENEW" => {
            let mut items = Vec::new();
            if p.rest().starts_with(b" (") {
                p.sp()?;
                items = parse_fetch(p)?;
            }
            NotifyEvent::MessageNew(items)
        }
        "MESSAGEEXPUNGE" => NotifyEvent::MessageExpunge,
        "FLAGCHANGE" => NotifyEvent::FlagChange,
        "ANNOTATIONCHANGE" => NotifyEvent::AnnotationChange,
        "MAILBOXNAME" => NotifyEvent::MailboxName,
        "SUBSCRIPTIONCHANGE" => NotifyEvent::SubscriptionChange,
        "MAILBOXMETADATACHANGE" => NotifyEvent::MailboxMetadataChange,
        "SERVERMETADATACHANGE" => NotifyEvent::ServerMetadataChange,
        _ => NotifyEvent::Other(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> PResult<Option<(bool, Vec<NotifyGroup>)>> {
        let mut p = Parser::new(s.as_bytes());
        let r = parse_notify(&mut p)?;
        p.end()?;
        Ok(r)
    }

    #[test]
    fn the_rfc_examples() {
        assert_eq!(parse(" NONE").unwrap(), None);
        let (status, groups) = parse(
            " SET STATUS (selected (MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge)) (subtree (Lists Archive) (MessageNew MessageExpunge)) (mailboxes INBOX NONE)",
        )
        .map(Option::unwrap)
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(status);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].filter, NotifyFilter::Selected);
        assert!(matches!(&groups[0].events[0], NotifyEvent::MessageNew(items) if items.len() == 2));
        assert_eq!(
            groups[1].filter,
            NotifyFilter::Subtree(vec!["Lists".into(), "Archive".into()])
        );
        assert_eq!(groups[2].events, vec![]);
        let (status, groups) = parse(" SET (personal (MailboxName SubscriptionChange Bogus))")
            .map(Option::unwrap)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!status);
        assert_eq!(groups[0].events[2], NotifyEvent::Other("Bogus".into()));
        assert!(parse(" SET").is_err());
        assert!(parse(" SET (nowhere (MessageNew))").is_err());
    }
}
