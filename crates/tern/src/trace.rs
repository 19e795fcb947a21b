//! `tern trace MESSAGE [--json]`: explain a message the way it is taught.
//! MESSAGE is a file, or a stored message's EMAILID (`E123`, as IMAP
//! FETCH EMAILID shows it). Printed: the hops from the first server to the
//! last (host, HELO, address, protocol and TLS, the delay since the hop
//! before); the envelope beside the header (Return-Path and Delivered-To
//! against From and To); the SPF/DKIM/DMARC/ARC/iprev verdicts as the
//! receiving servers recorded them (Authentication-Results) and as they
//! come out now (today's DNS, unless `--no-recheck`); the spam verdict;
//! where the message is stored, with which flags, and its delivery history
//! (why it went there).

use std::path::Path;
use std::sync::Arc;

use mail_parser::{HeaderValue, MessageParser};
use serde_json::json;
use store::Store;

use crate::admin::AdminError;
use crate::config::Config;

type Result<T> = std::result::Result<T, AdminError>;

/// One Received field, the oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hop {
    from: Option<String>,
    helo: Option<String>,
    ip: Option<String>,
    by: Option<String>,
    with: Option<String>,
    tls: Option<String>,
    date: Option<i64>,
    /// Seconds since the hop before (None for the first, or without dates).
    delay: Option<i64>,
}

fn hops(raw: &[u8]) -> Vec<Hop> {
    let Some(m) = MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    let mut hops: Vec<Hop> = m
        .header_values("Received")
        .filter_map(|v| match v {
            HeaderValue::Received(r) => Some(Hop {
                from: r.from().map(|h| h.to_string()),
                helo: r.helo().map(|h| h.to_string()),
                ip: r.from_ip().map(|ip| ip.to_string()),
                by: r.by().map(|h| h.to_string()),
                with: r.with().map(|p| p.to_string()),
                tls: r.tls_version().map(|t| t.to_string()),
                date: r.date().map(|d| d.to_timestamp()),
                delay: None,
            }),
            _ => None,
        })
        .collect();
    // Each server adds its field on top: the last one is the first hop.
    hops.reverse();
    for i in 1..hops.len() {
        if let (Some(a), Some(b)) = (hops[i - 1].date, hops[i].date) {
            hops[i].delay = Some(b - a);
        }
    }
    hops
}

/// The unfolded values of a header field.
fn values(raw: &[u8], name: &str) -> Vec<String> {
    message::header::fields_named(raw, name)
        .iter()
        .map(|f| message::header::decoded(f.value))
        .collect()
}

/// What to trace: the file's bytes, or every stored copy of an EMAILID.
async fn load(store: &Arc<dyn Store>, what: &str) -> Result<(Vec<u8>, Vec<store::EmailCopy>)> {
    if let Some(id) = store::object_id::parse(what, 'E') {
        let copies = store.email_copies(id).await?;
        let first = copies
            .first()
            .ok_or_else(|| AdminError(format!("no stored message {what}")))?;
        return Ok((first.content.clone(), copies));
    }
    let raw = std::fs::read(Path::new(what))
        .map_err(|e| AdminError(format!("{what}: {e} (a file, or an EMAILID such as E12)")))?;
    Ok((raw, Vec::new()))
}

/// How long re-checking may take before the trace is printed without it.
const RECHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The SPF, DKIM, DMARC and ARC verdicts as they come out now, from the
/// last hop's client address and HELO and the Return-Path: keys rotate
/// and records change, so this can differ from what was recorded. None
/// when the message does not say who handed it to the last server.
async fn recheck(config: &Config, raw: &[u8], hops: &[Hop]) -> Result<Option<String>> {
    let Some(last) = hops.last() else {
        return Ok(None);
    };
    let Some(ip) = last.ip.as_deref().and_then(|ip| ip.parse().ok()) else {
        return Ok(None);
    };
    let helo = last.helo.clone().or(last.from.clone()).unwrap_or_default();
    let mail_from = values(raw, "Return-Path")
        .first()
        .map(|p| {
            p.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .unwrap_or_default();
    let err = |e: crate::serve::ServeError| AdminError(e.0);
    let resolver = crate::serve::resolver(config).map_err(err)?;
    let psl = Arc::new(crate::serve::public_suffix_list(config).map_err(err)?);
    let verifier = crate::serve::any_verifier(config, &resolver, &psl);
    let checks = async {
        let sender = verifier.sender(ip, &helo, &mail_from).await;
        verifier
            .message(
                &sender,
                &message::spool::Spooled::from_vec(raw.to_vec()),
                None,
            )
            .await
    };
    let Ok(verdict) = tokio::time::timeout(RECHECK_TIMEOUT, checks).await else {
        return Ok(Some(format!(
            "(the DNS did not answer within {}s: nothing re-checked)",
            RECHECK_TIMEOUT.as_secs()
        )));
    };
    let header = verdict.header.trim_end();
    let value = header
        .strip_prefix("Authentication-Results:")
        .unwrap_or(header);
    Ok(Some(value.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// The delivery history of the message (by its Message-ID): why it went
/// where it went.
async fn history_of(store: &Arc<dyn Store>, raw: &[u8]) -> Vec<store::HistoryEvent> {
    let Some(id) = message::header::fields_named(raw, "Message-ID")
        .first()
        .and_then(|f| message::header::message_ids(f.value).into_iter().next())
    else {
        return Vec::new();
    };
    store
        .history(store::HistoryQuery::MessageId(id), 5)
        .await
        .unwrap_or_default()
}

pub async fn trace(
    store: Arc<dyn Store>,
    config: &Config,
    what: &str,
    as_json: bool,
    recheck_now: bool,
) -> Result<()> {
    let (raw, copies) = load(&store, what).await?;
    let hops = hops(&raw);
    let rechecked = match recheck_now {
        true => recheck(config, &raw, &hops).await?,
        false => None,
    };
    let history = history_of(&store, &raw).await;
    let one = |name: &str| values(&raw, name).into_iter().next();
    let report = json!({
        "message_id": one("Message-ID"),
        "subject": one("Subject"),
        "date": one("Date"),
        "header": { "from": one("From"), "to": values(&raw, "To"), "reply_to": one("Reply-To") },
        "envelope": { "return_path": values(&raw, "Return-Path"), "delivered_to": values(&raw, "Delivered-To") },
        "hops": hops.iter().map(|h| json!({
            "from": h.from, "helo": h.helo, "ip": h.ip, "by": h.by, "with": h.with,
            "tls": h.tls, "date": h.date, "delay_seconds": h.delay,
        })).collect::<Vec<_>>(),
        "authentication_results": values(&raw, "Authentication-Results"),
        "arc_authentication_results": values(&raw, "ARC-Authentication-Results"),
        "spam": one("X-Spam-Status"),
        "rechecked_now": rechecked,
        "stored": copies.iter().map(|c| json!({
            "account": c.account, "mailbox": c.mailbox, "uid": c.uid, "flags": c.flags,
        })).collect::<Vec<_>>(),
        "history": history.iter().map(crate::history::event_json).collect::<Vec<_>>(),
    });
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return Ok(());
    }
    print_report(&raw, &hops, &copies);
    if let Some(now) = rechecked {
        println!();
        println!("Verdicts re-checked now (today's DNS: keys rotate, records change):");
        println!("  {now}");
    }
    if !history.is_empty() {
        println!();
        println!("Delivery history (tern history):");
        for e in &history {
            println!("  {}", crate::history::line(e));
        }
    }
    Ok(())
}

fn print_report(raw: &[u8], hops: &[Hop], copies: &[store::EmailCopy]) {
    let one = |name: &str| {
        values(raw, name)
            .into_iter()
            .next()
            .unwrap_or_else(|| "(none)".into())
    };
    println!("Message {}", one("Message-ID"));
    println!("  Subject: {}", one("Subject"));
    println!("  Date:    {}", one("Date"));
    println!();
    println!("Envelope (what the servers used) and header (what the reader sees):");
    println!(
        "  Return-Path:  {}   (the envelope sender: where bounces go, what SPF checks)",
        values(raw, "Return-Path").join(", ")
    );
    println!(
        "  From:         {}   (the author: what DMARC protects)",
        one("From")
    );
    println!(
        "  Delivered-To: {}   (the envelope recipient at the last server)",
        values(raw, "Delivered-To").join(", ")
    );
    println!("  To:           {}", values(raw, "To").join(", "));
    println!();
    println!(
        "Hops, from the first server to the last ({} Received fields):",
        hops.len()
    );
    for (i, h) in hops.iter().enumerate() {
        let when = h
            .date
            .map(message::date::rfc5322)
            .unwrap_or_else(|| "(no date)".into());
        let delay = h.delay.map(|d| format!("  +{d}s")).unwrap_or_default();
        let from = h
            .from
            .clone()
            .or(h.helo.clone())
            .unwrap_or_else(|| "(unknown)".into());
        let ip =
            h.ip.as_ref()
                .map(|ip| format!(" [{ip}]"))
                .unwrap_or_default();
        let by = h.by.clone().unwrap_or_else(|| "(unknown)".into());
        let with = h.with.clone().unwrap_or_default();
        let tls = h.tls.as_ref().map(|t| format!(" {t}")).unwrap_or_default();
        println!("  {}. {when}{delay}", i + 1);
        println!("     {from}{ip} -> {by}  {with}{tls}");
    }
    println!();
    println!("Verdicts as recorded by the receiving servers:");
    let results = values(raw, "Authentication-Results");
    if results.is_empty() {
        println!("  (no Authentication-Results: no server on the way checked SPF, DKIM or DMARC)");
    }
    for v in results {
        println!("  Authentication-Results: {v}");
    }
    for v in values(raw, "ARC-Authentication-Results") {
        println!("  ARC-Authentication-Results: {v}");
    }
    if let Some(spam) = values(raw, "X-Spam-Status").into_iter().next() {
        println!("  X-Spam-Status: {spam}");
    }
    if !copies.is_empty() {
        println!();
        println!("Stored:");
        for c in copies {
            println!(
                "  {} {} UID {} ({})",
                c.account,
                c.mailbox,
                c.uid,
                c.flags.join(" ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_oldest_first_with_delays() {
        let raw = b"Received: from mx.b.test (mx.b.test [192.0.2.2]) by mx.a.test with ESMTPS id 1; Mon, 23 Nov 2026 12:00:05 +0000\r\n\
Received: from laptop (laptop [198.51.100.7]) by mx.b.test with ESMTPSA id 2; Mon, 23 Nov 2026 12:00:00 +0000\r\n\
Subject: x\r\n\r\nbody\r\n";
        let h = hops(raw);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].by.as_deref(), Some("mx.b.test"));
        assert_eq!(h[0].ip.as_deref(), Some("198.51.100.7"));
        assert_eq!(h[0].delay, None);
        assert_eq!(h[1].by.as_deref(), Some("mx.a.test"));
        assert_eq!(h[1].delay, Some(5));
    }
}
