//! The compression layer of RFC 4978 (IMAP COMPRESS=DEFLATE): raw DEFLATE
//! (RFC 1951) each way, under TLS when there is TLS.
//!
//! Memory (hardening.md C-IM11): the inflater keeps the 32 KiB window the
//! client's compressor may refer back to, so it lives as long as the
//! connection; the deflater exists only while a batch of replies is being
//! written. After each batch it is flushed (RFC 4978 §4: the client must
//! be able to read all of it) and dropped. A fresh deflater never refers
//! back to bytes it did not see, and a raw DEFLATE stream is a sequence of
//! blocks, so starting another one continues the same stream: an idle
//! compressed connection costs the inflater alone.

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// Output produced per inflate step; a session never needs more at once.
const STEP: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DeflateError {
    #[error("corrupt compressed data: {0}")]
    Corrupt(String),
    #[error("compressed input expands past {0} bytes")]
    TooLarge(usize),
    #[error("compressed stream ended")]
    Ended,
}

pub struct Deflate {
    inflater: Decompress,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate::new()
    }
}

impl Deflate {
    pub fn new() -> Deflate {
        Deflate {
            inflater: Decompress::new(false),
        }
    }

    /// Inflate `raw` (what the client sent) onto the end of `input`,
    /// refusing to let `input` grow past `limit` (a compression bomb).
    pub fn inflate(
        &mut self,
        mut raw: &[u8],
        input: &mut BytesMut,
        limit: usize,
    ) -> Result<(), DeflateError> {
        while !raw.is_empty() {
            let start = input.len();
            input.resize(start + STEP, 0);
            let (before_in, before_out) = (self.inflater.total_in(), self.inflater.total_out());
            let status = self
                .inflater
                .decompress(raw, &mut input[start..], FlushDecompress::None)
                .map_err(|e| DeflateError::Corrupt(e.to_string()));
            let used = (self.inflater.total_in() - before_in) as usize;
            let made = (self.inflater.total_out() - before_out) as usize;
            input.truncate(start + made);
            raw = &raw[used..];
            match status? {
                Status::StreamEnd => return Err(DeflateError::Ended),
                Status::Ok | Status::BufError => {}
            }
            if input.len() > limit {
                return Err(DeflateError::TooLarge(limit));
            }
            if used == 0 && made == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Compress one batch of replies, flushed so that the client can read
    /// every byte of it now.
    pub fn deflate(out: &[u8]) -> Vec<u8> {
        let mut deflater = Compress::new(Compression::default(), false);
        let mut packed = Vec::with_capacity(out.len() / 2 + 64);
        let mut rest = out;
        loop {
            if packed.capacity() - packed.len() < 64 {
                packed.reserve(packed.capacity().max(256));
            }
            let before = deflater.total_in();
            // Writing to a Vec's spare capacity cannot fail.
            let _ = deflater.compress_vec(rest, &mut packed, FlushCompress::Sync);
            rest = &rest[(deflater.total_in() - before) as usize..];
            // Done when all input is taken and the flush fitted with room to spare.
            if rest.is_empty() && packed.capacity() - packed.len() >= 64 {
                break;
            }
        }
        packed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Decompress;

    fn inflate_all(d: &mut Decompress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(data, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    #[test]
    fn batches_from_fresh_deflaters_make_one_stream() {
        let mut client = Decompress::new(false);
        let a = Deflate::deflate(b"* OK first reply\r\n");
        let b = Deflate::deflate(&b"* 1 FETCH (FLAGS (\\Seen))\r\n".repeat(5000));
        assert_eq!(inflate_all(&mut client, &a), b"* OK first reply\r\n");
        let got = inflate_all(&mut client, &b);
        assert!(
            got == b"* 1 FETCH (FLAGS (\\Seen))\r\n".repeat(5000),
            "{} bytes",
            got.len()
        );
        assert!(b.len() < 2000, "compressed {} bytes", b.len());
    }

    #[test]
    fn inflate_in_pieces_and_refuse_a_bomb() {
        let mut c = Compress::new(Compression::default(), false);
        let mut packed = Vec::with_capacity(1 << 20);
        c.compress_vec(&b"a NOOP\r\n".repeat(3), &mut packed, FlushCompress::Sync)
            .unwrap();
        let mut d = Deflate::new();
        let mut input = BytesMut::new();
        for piece in packed.chunks(3) {
            d.inflate(piece, &mut input, 1 << 20).unwrap();
        }
        assert!(&input[..] == b"a NOOP\r\n".repeat(3).as_slice());

        let mut bomb = Vec::with_capacity(1 << 20);
        c.compress_vec(&vec![b'x'; 8 << 20], &mut bomb, FlushCompress::Sync)
            .unwrap();
        let mut input = BytesMut::new();
        assert!(matches!(
            d.inflate(&bomb, &mut input, 1 << 20),
            Err(DeflateError::TooLarge(_))
        ));
        assert!(input.len() <= (1 << 20) + STEP);
    }

    #[test]
    fn garbage_is_refused() {
        let mut d = Deflate::new();
        let mut input = BytesMut::new();
        assert!(d.inflate(&[0xff; 64], &mut input, 1 << 20).is_err());
    }
}
