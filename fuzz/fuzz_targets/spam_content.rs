//! What the spam filter reads of every message the MX receives: the
//! Bayesian tokens (bounded, sorted, distinct), the content rules (header
//! fields, the Subject, the Date, the From, the HTML links and the text they
//! show, attachment names, the names inside ZIP archives), and the session
//! rules on a HELO name. Any input: no panic, the bounds hold.
#![no_main]
use std::net::{IpAddr, Ipv4Addr};

use antispam::{html, rules, tokens};

libfuzzer_sys::fuzz_target!(|raw: &[u8]| {
    let seen = tokens::tokenize(raw);
    assert!(seen.len() <= tokens::MAX_TOKENS, "{} tokens", seen.len());
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "tokens not sorted and distinct"
    );
    let local_domains = ["a.test".to_string(), "b.test".to_string()];
    let ctx = rules::Context {
        hostname: "mx.a.test",
        local_domains: &local_domains,
        now: 1_750_000_000,
    };
    for hit in rules::content(raw, &ctx) {
        assert!(hit.points.is_finite(), "{}", hit.rule);
    }
    // The raw input as HTML, as a ZIP archive and as a HELO name.
    let text = String::from_utf8_lossy(raw);
    for link in html::links(&text) {
        let _ = html::host_in_text(&link.text);
    }
    let _ = rules::zip_names(raw);
    let helo = text.lines().next().unwrap_or("");
    let _ = rules::session(
        helo,
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        "mx.a.test",
        &local_domains,
    );
});
