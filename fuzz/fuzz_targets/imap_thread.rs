//! IMAP THREAD (RFC 5256) over any mailbox: the Message-IDs, References,
//! dates and subjects are what senders wrote, so ids repeat, references
//! loop and conversations run deep. Both algorithms answer with every
//! message exactly once, in balanced parentheses, and REFERENCES gives the
//! same answer for the same mailbox (it is a function of its input).
//! Input: one message per line, `DATE ID REF REF ...` (the first octet of
//! a line is the date; an empty ID is none), with a subject picked by the
//! date among a few that are replies of each other.
#![no_main]
use imap::thread::{self, Item};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    const SUBJECTS: [&str; 4] = ["plan", "Re: plan", "Fwd: [x] plan (fwd)", "other"];
    let items: Vec<Item> = data
        .split(|&b| b == b'\n')
        .take(2000)
        .enumerate()
        .filter_map(|(n, line)| {
            let (&date, rest) = line.split_first()?;
            let text = String::from_utf8_lossy(rest);
            let mut words = text.split(' ');
            let id = words.next().filter(|w| !w.is_empty()).map(str::to_string);
            let subject = SUBJECTS[usize::from(date) % SUBJECTS.len()];
            Some(Item {
                number: n as u32 + 1,
                message_id: id,
                references: words
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect(),
                date: i64::from(date / 4),
                base_subject: message::subject::base_subject(subject),
                reply: message::subject::is_reply_or_forward(subject),
            })
        })
        .collect();
    for forest in [thread::references(&items), thread::ordered_subject(&items)] {
        let text = thread::render(&forest, &items);
        each_message_once(&text, &items);
    }
    assert_eq!(
        thread::render(&thread::references(&items), &items),
        thread::render(&thread::references(&items), &items)
    );
});

fn each_message_once(text: &str, items: &[Item]) {
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).expect("balanced"),
            _ => {}
        }
    }
    assert_eq!(depth, 0, "balanced: {text}");
    let mut seen: Vec<u32> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().expect("a number"))
        .collect();
    seen.sort_unstable();
    let mut all: Vec<u32> = items.iter().map(|i| i.number).collect();
    all.sort_unstable();
    assert_eq!(seen, all, "{text}");
}
