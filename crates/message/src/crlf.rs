//! Line ends as mail carries them (RFC 5322 §2.1, RFC 5321 §2.3.8: CRLF):
//! a bare LF, as in a file on disk or an uploaded draft, becomes CRLF.

/// Converts a message fed in pieces: a CR ending one piece goes with the
/// LF beginning the next.
#[derive(Debug, Default)]
pub struct Crlf {
    last: u8,
}

impl Crlf {
    /// The next piece, each bare LF made CRLF.
    pub fn convert(&mut self, piece: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(piece.len() + piece.len() / 40);
        for &b in piece {
            if b == b'\n' && self.last != b'\r' {
                out.push(b'\r');
            }
            out.push(b);
            self.last = b;
        }
        out
    }
}

/// A message held whole, each bare LF made CRLF (as it was when it has
/// none).
pub fn crlf(raw: Vec<u8>) -> Vec<u8> {
    let bare = |(i, b): (usize, &u8)| *b == b'\n' && (i == 0 || raw[i - 1] != b'\r');
    if !raw.iter().enumerate().any(bare) {
        return raw;
    }
    Crlf::default().convert(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_becomes_crlf_across_pieces() {
        assert_eq!(crlf(b"a\nb\r\nc\n".to_vec()), b"a\r\nb\r\nc\r\n");
        assert_eq!(crlf(b"a\r\n".to_vec()), b"a\r\n");
        assert_eq!(crlf(b"\n".to_vec()), b"\r\n");
        let mut c = Crlf::default();
        let pieces: Vec<u8> = [&b"a\r"[..], b"\nb", b"\n", b"\nc"]
            .iter()
            .flat_map(|p| c.convert(p))
            .collect();
        assert_eq!(pieces, b"a\r\nb\r\n\r\nc");
    }
}
