//! The MIME tree of a message read as a stream (C-FT9): any message, fed in
//! pieces cut anywhere, gives the tree, header sections and line counts of
//! the whole-message parse; a part decoded in pieces gives what it gives
//! decoded whole (IMAP BINARY of a large message).
#![no_main]
use message::mime::{self, Decoder, Source};
use message::outline::OutlineBuilder;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&step, raw)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 31) + 1;
    let whole = mime::parse(raw);
    let mut builder = OutlineBuilder::new();
    for piece in raw.chunks(step) {
        builder.feed(piece);
    }
    let outline = builder.finish();
    assert_eq!(outline.root, whole);
    let mut entities = vec![&whole];
    while let Some(e) = entities.pop() {
        assert_eq!(outline.head(e), raw.head(e));
        assert_eq!(outline.lines(e), raw.lines(e));
        let body = &raw[e.body.clone()];
        for encoding in ["base64", "quoted-printable"] {
            let all = mime::decode_body(Some(encoding), body);
            let mut d = Decoder::new(Some(encoding)).expect("known");
            let mut pieces = Vec::new();
            for piece in body.chunks(step) {
                d.feed(piece, &mut pieces);
            }
            d.finish(&mut pieces);
            assert_eq!(all, Some(pieces));
        }
        entities.extend(e.children.iter());
        entities.extend(e.message.as_deref());
    }
});
