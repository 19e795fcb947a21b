//! The DATA and BDAT byte machine (RFC 5321 §4.1.1.4, RFC 3030): any input,
//! split anywhere, gives the same end and the same message (C-SM1..C-SM3).
#![no_main]
use message::spool::Spool;
use smtp::data::{DataLimits, DataReader};

const LIMITS: DataLimits = DataLimits {
    max_size: 1 << 16,
    max_line: Some(1000),
    max_header: 1 << 12,
};

fn read(parts: &[&[u8]], dot_mode: bool) -> (Option<usize>, Result<Vec<u8>, String>) {
    let mut r = DataReader::new(LIMITS, dot_mode, &Spool::memory());
    let mut seen = 0;
    for part in parts {
        if let Some(n) = r.feed(part) {
            return (Some(seen + n), finish(r));
        }
        seen += part.len();
    }
    (None, finish(r))
}

fn finish(r: DataReader) -> Result<Vec<u8>, String> {
    r.finish()
        .map(|s| s.read_all().map(|b| b.to_vec()).unwrap_or_default())
        .map_err(|e| format!("{e:?}"))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let dot_mode = first & 1 == 0;
    let split = (first as usize * 7) % (input.len() + 1);
    let whole = read(&[input], dot_mode);
    let halves = read(&[&input[..split], &input[split..]], dot_mode);
    assert_eq!(whole, halves, "split at {split}");
});
