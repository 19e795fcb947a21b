//! Command lines (`net::line`: SMTP, POP3, IMAP) and IMAP commands with
//! their literals (`imap::reader`) as a session takes them from its input:
//! any input, arriving in any pieces, gives the same lines, commands,
//! errors and continuation requests (C-SM6, C-IM2). A long line whose LF
//! came in the same read once took the commands behind it along.
#![no_main]
use bytes::BytesMut;
use imap::reader::{CommandReader, Limits, Read};
use net::line::{Line, LineReader};

const LIMITS: Limits = Limits {
    max_line: 64,
    max_literal_before_auth: 16,
    max_literals: 128,
    max_append: 1 << 20,
};

/// What a session sees of `pieces` fed in order.
fn lines(pieces: &[&[u8]], limit: usize) -> Vec<Option<Vec<u8>>> {
    let mut reader = LineReader::default();
    let mut input = BytesMut::new();
    let mut seen = Vec::new();
    for piece in pieces {
        input.extend_from_slice(piece);
        while let Some(line) = reader.next(&mut input, limit) {
            seen.push(match line {
                Line::Complete(l) => Some(l.to_vec()),
                Line::TooLong => None,
            });
        }
        assert!(input.len() < limit, "at most a line is held");
    }
    seen
}

fn commands(pieces: &[&[u8]], authenticated: bool) -> (Vec<Read>, Vec<u8>) {
    let mut reader = CommandReader::default();
    let mut input = BytesMut::new();
    let (mut seen, mut continuations) = (Vec::new(), Vec::new());
    for piece in pieces {
        input.extend_from_slice(piece);
        while let Some(read) = reader.next(&mut input, authenticated, &LIMITS, &mut continuations) {
            seen.push(read);
        }
    }
    (seen, continuations)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let limit = usize::from(first % 61) + 4;
    let authenticated = first & 0x80 != 0;
    let whole: [&[u8]; 1] = [input];
    let split = (usize::from(first) * 13) % (input.len() + 1);
    let halves = [&input[..split], &input[split..]];
    let small: Vec<&[u8]> = input.chunks(usize::from(first % 7) + 1).collect();
    let expected = lines(&whole, limit);
    assert_eq!(lines(&halves, limit), expected, "lines split at {split}");
    assert_eq!(lines(&small, limit), expected, "lines in small pieces");
    let expected = commands(&whole, authenticated);
    assert_eq!(commands(&halves, authenticated), expected, "commands split at {split}");
    assert_eq!(commands(&small, authenticated), expected, "commands in small pieces");
});
