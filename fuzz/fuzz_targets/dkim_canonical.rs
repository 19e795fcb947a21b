//! DKIM body canonicalization (RFC 6376 §3.4.3, §3.4.4) as Tern streams it:
//! any body, split anywhere, canonicalizes the same, and the relaxed form
//! never holds a space before a line end.
#![no_main]
use policy::body_hash::Canonicalizer;

fn canonical(parts: &[&[u8]], relaxed: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut c = Canonicalizer::new(relaxed, 0);
    for p in parts {
        c.feed(p, &mut |b| out.extend_from_slice(b));
    }
    c.finish(&mut |b| out.extend_from_slice(b));
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let split = (first as usize * 13) % (body.len() + 1);
    for relaxed in [false, true] {
        let whole = canonical(&[body], relaxed);
        assert_eq!(whole, canonical(&[&body[..split], &body[split..]], relaxed));
        if relaxed {
            assert!(!whole.windows(3).any(|w| w == b" \r\n"));
        }
    }
});
