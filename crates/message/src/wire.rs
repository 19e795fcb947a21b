//! The form a message takes on the wire (RFC 5321 §4.5.2, RFC 1939 §3),
//! made a piece at a time so that a large message is never needed whole
//! (hardening.md C-FT9): the outbound client's DATA and BDAT, POP3's RETR
//! and TOP.

/// Every line ending CRLF (a lone CR or LF becomes CRLF: hardening.md
/// C-SM4), ending with CRLF, and with `stuff` a dot doubled at the start of
/// a line. The same octets whatever the boundaries of the pieces fed.
#[derive(Debug)]
pub struct WireForm {
    stuff: bool,
    at_line_start: bool,
    /// A CR was just written as CRLF: an LF right after it is part of it.
    after_cr: bool,
    /// What was written last ends with CRLF (nothing written: no).
    ends_crlf: bool,
}

impl WireForm {
    pub fn new(stuff: bool) -> WireForm {
        WireForm {
            stuff,
            at_line_start: true,
            after_cr: false,
            ends_crlf: false,
        }
    }

    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        out.reserve(data.len() + data.len() / 50);
        for &b in data {
            let after_cr = std::mem::take(&mut self.after_cr);
            match b {
                // CRLF counts once.
                b'\n' if after_cr => continue,
                b'\r' | b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.after_cr = b == b'\r';
                    self.at_line_start = true;
                    self.ends_crlf = true;
                    continue;
                }
                b'.' if self.stuff && self.at_line_start => out.extend_from_slice(b".."),
                _ => out.push(b),
            }
            self.at_line_start = false;
            self.ends_crlf = false;
        }
    }

    /// The CRLF a message that did not end with one gets.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.ends_crlf {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// The whole message in wire form.
pub fn wire_form(data: &[u8], stuff: bool) -> Vec<u8> {
    let mut form = WireForm::new(stuff);
    let mut out = Vec::new();
    form.feed(data, &mut out);
    form.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire form made in pieces is the wire form made whole, whatever
    /// the boundaries (a CR LF split between two pieces counts once).
    #[test]
    fn wire_form_in_pieces() {
        let data = b"a\r\n.b\n.\n\rc\r\r\n\n.x\r";
        for stuff in [false, true] {
            let whole = wire_form(data, stuff);
            for n in 1..data.len() {
                let mut form = WireForm::new(stuff);
                let mut out = Vec::new();
                for piece in data.chunks(n) {
                    form.feed(piece, &mut out);
                }
                form.finish(&mut out);
                assert_eq!(out, whole, "pieces of {n}, stuff {stuff}");
            }
        }
        assert_eq!(
            wire_form(b"a\r\n.b\n.\n\rc", true),
            b"a\r\n..b\r\n..\r\n\r\nc\r\n"
        );
        assert_eq!(wire_form(b"", true), b"\r\n");
    }
}
