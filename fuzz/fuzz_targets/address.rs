//! MAIL FROM and RCPT TO paths (RFC 5321 §4.1.2, RFC 6531), and the SRS
//! addresses forwarding makes of a sender: the SRS address of any sender
//! the MX accepts is a path other servers accept too, and a bounce to it
//! reverses to that sender (any case, as receivers may change it), unless
//! the sender is so long that it keeps its own address.
#![no_main]
use message::address::{ForwardPath, ReversePath, parse_forward_path, parse_reverse_path};
use policy::srs::Srs;

const NOW: i64 = 1_750_000_000;

libfuzzer_sys::fuzz_target!(|input: &str| {
    let _ = parse_forward_path(input, false);
    let Ok(ReversePath::Mailbox(mailbox)) = parse_reverse_path(input, true) else {
        return;
    };
    let sender = mailbox.to_string();
    let srs = Srs::new(b"fuzz".to_vec());
    let forwarded = srs.forward(&sender, "fwd.test", NOW);
    let path = format!("<{forwarded}>");
    let Ok(ForwardPath::Mailbox(bounce)) = parse_forward_path(&path, true) else {
        panic!("{sender} forwarded as {forwarded}: not a path");
    };
    // A sender whose SRS address would pass the path limit keeps its own;
    // an SRS sender (its local part unquoted, as SRS reads it) is pointed
    // back to its forwarder instead.
    let kept = forwarded == sender;
    if !kept && !policy::srs::is_srs(mailbox.local()) {
        assert_eq!(
            srs.reverse(bounce.local(), NOW).as_deref(),
            Ok(sender.as_str())
        );
        let upper = bounce.local().to_ascii_uppercase();
        assert!(srs.reverse(&upper, NOW).is_ok(), "{upper}");
    }
});
