//! IMAP commands with their literals as a session takes them from its
//! input (`imap::reader`, whose lines come from `net::line`, the line
//! reader of SMTP and POP3 too): any input, arriving in any pieces, gives
//! the same commands, errors and continuation requests, whatever the line
//! limit (C-SM6, C-IM2). A long line whose LF came in the same read once
//! took the commands behind it along.
#![no_main]
use bytes::BytesMut;
use imap::reader::{CommandReader, Limits, Read};

fn commands(pieces: &[&[u8]], limits: &Limits, authenticated: bool) -> (Vec<Read>, Vec<u8>) {
    let mut reader = CommandReader::default();
    let mut input = BytesMut::new();
    let (mut seen, mut continuations) = (Vec::new(), Vec::new());
    for piece in pieces {
        input.extend_from_slice(piece);
        while let Some(read) = reader.next(&mut input, authenticated, limits, &mut continuations) {
            seen.push(read);
        }
    }
    (seen, continuations)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    // The line limit of the readers (`net::line` under IMAP's) from 4 to 64.
    let limits = Limits {
        max_line: usize::from(first % 61) + 4,
        max_literal_before_auth: 16,
        max_literals: 128,
        max_append: 1 << 20,
    };
    let authenticated = first & 0x80 != 0;
    let split = (usize::from(first) * 13) % (input.len() + 1);
    let expected = commands(&[input], &limits, authenticated);
    let halves = [&input[..split], &input[split..]];
    assert_eq!(
        commands(&halves, &limits, authenticated),
        expected,
        "split at {split}"
    );
    let small: Vec<&[u8]> = input.chunks(usize::from(first % 7) + 1).collect();
    assert_eq!(
        commands(&small, &limits, authenticated),
        expected,
        "in small pieces"
    );
});
