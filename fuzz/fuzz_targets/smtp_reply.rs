//! SMTP replies from a server we do not trust, as the outbound client reads
//! them (`outbound::reply::ReplyReader`, then `Extensions::parse` for an
//! EHLO reply): any input, arriving in any pieces, gives the same replies
//! and the same error, each line within RFC 5321's 512 octets and each
//! reply within its line count (C-OB1, C-OB2).
#![no_main]
use std::pin::Pin;
use std::task::{Context, Poll};

use outbound::client::Extensions;
use outbound::reply::{MAX_LINE, MAX_LINES, Reply, ReplyError, ReplyReader};
use tokio::io::{AsyncRead, ReadBuf};

/// A server's octets, at most `piece` of them per read.
struct Pieces<'a> {
    rest: &'a [u8],
    piece: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let n = self.piece.min(self.rest.len()).min(buf.remaining());
        buf.put_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Poll::Ready(Ok(()))
    }
}

/// Every reply until the connection closes or a reply is refused.
fn replies(input: &[u8], piece: usize) -> Vec<Result<Reply, ReplyError>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut reader = ReplyReader::default();
        let mut stream = Pieces { rest: input, piece };
        let mut seen = Vec::new();
        loop {
            match reader.read(&mut stream).await {
                Err(ReplyError::Closed) => return seen,
                other => {
                    let refused = other.is_err();
                    seen.push(other);
                    if refused {
                        return seen;
                    }
                }
            }
        }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let expected = replies(input, input.len().max(1));
    let piece = usize::from(first % 16) + 1;
    assert_eq!(replies(input, piece), expected, "in pieces of {piece}");
    for reply in expected.iter().flatten() {
        assert!((200..600).contains(&reply.code), "code {}", reply.code);
        // At most MAX_LINES lines of MAX_LINE octets (an invalid UTF-8
        // octet is read as three: U+FFFD).
        let octets = reply.text.len();
        assert!(octets <= MAX_LINES * MAX_LINE * 3, "{octets} octets");
        let _ = Extensions::parse(reply);
        assert!(
            !reply.one_line().contains(['\r', '\n']),
            "one line is one line"
        );
        let _ = reply.status();
    }
});
