//! ManageSieve commands (atoms, quoted strings, literals) as a session takes
//! them from its input (`managesieve::command::Reader`): any input, arriving
//! in any pieces, gives the same commands and errors, whatever the line and
//! literal limits, and what the reader holds between reads stays bounded by
//! them (C-SM6, C-IM1, C-IM2).
#![no_main]
use bytes::BytesMut;
use managesieve::command::{Read, Reader};

struct Limits {
    max_line: usize,
    max_literal: u64,
}

/// What the reader takes from `pieces`, and the most it held after a piece.
fn commands(pieces: &[&[u8]], limits: &Limits) -> (Vec<Read>, usize) {
    let mut reader = Reader::new(limits.max_line);
    let mut input = BytesMut::new();
    let (mut seen, mut held) = (Vec::new(), 0);
    for piece in pieces {
        input.extend_from_slice(piece);
        while let Some(read) = reader.next(&mut input, limits.max_literal) {
            seen.push(read);
        }
        held = held.max(input.len());
    }
    (seen, held)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_line: usize::from(first % 61) + 4,
        max_literal: u64::from(first >> 3),
    };
    let split = (usize::from(first) * 13) % (input.len() + 1);
    let (expected, _) = commands(&[input], &limits);
    let halves = [&input[..split], &input[split..]];
    assert_eq!(commands(&halves, &limits).0, expected, "split at {split}");
    let small: Vec<&[u8]> = input.chunks(usize::from(first % 7) + 1).collect();
    let (seen, held) = commands(&small, &limits);
    assert_eq!(seen, expected, "in small pieces");
    // A line's words outside literals, and at most one literal per three
    // octets of it, each within the limit.
    let m = limits.max_line;
    let bound = 5 * m + (m / 3 + 1) * (limits.max_literal as usize + 32) + 8;
    assert!(held <= bound, "held {held} octets, more than {bound}");
});
