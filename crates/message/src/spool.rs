//! A message's content on its way in: in memory while small, in a spool
//! file once it grows, so a session costs a bounded amount of memory
//! whatever the size of the message (hardening.md C-FT9).
//!
//! - [`SpoolWriter`] takes the content as it arrives. The first
//!   [`MEMORY_LIMIT`] octets, and the whole header section up to
//!   [`HEADER_IN_MEMORY`] (SMTP bounds it far below), stay in memory. Past that, the content goes
//!   to an anonymous file in the spool directory (`O_TMPFILE`: it has no
//!   name, so a crash leaves nothing behind) through a buffer of
//!   [`MEMORY_LIMIT`] octets.
//! - [`Spooled`] is the finished content. Its head (the header section and
//!   the first octets of the body) is always in memory; the rest is read
//!   from the file in blocks when someone needs it: [`Spooled::chunks`]
//!   streams it (DKIM body hashes, the store's copy), [`Spooled::view`]
//!   gives a bounded beginning (spam rules, the search index), and
//!   [`Spooled::read_all`] the whole of it, for the few consumers that
//!   need every octet at once.
//! - The lines Tern adds in front of a message (Authentication-Results,
//!   Received, DKIM-Signature) are known only once the content has been
//!   checked. A spool file therefore begins with [`ROOM`] octets left free
//!   (a hole: no disk used); [`Spooled::with_prefix`] writes the lines at
//!   the end of that room: nothing is copied.
//!
//! The spool is not durable and needs not be: a message is acknowledged
//! only after the store committed its own copy. Writes go to the page
//! cache, a block at a time, from the session's task.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

/// Content kept in memory before it moves to a file; the file's write
/// buffer and read block.
pub const MEMORY_LIMIT: usize = 64 * 1024;

/// A header section longer than this (an IMAP APPEND of a message with
/// no blank line, say) is not kept in memory past it: the head ends there.
pub const HEADER_IN_MEMORY: usize = 1 << 20;

/// Room left at the start of a spool file for the lines Tern adds.
pub const ROOM: u64 = 64 * 1024;

/// Where large content goes. `Spool::memory()` keeps everything in memory
/// (tests, tools).
#[derive(Debug, Clone, Default)]
pub struct Spool {
    dir: Option<Arc<PathBuf>>,
}

impl Spool {
    /// Large content goes to unnamed files in `dir`, created when missing.
    pub fn in_dir(dir: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool {
            dir: Some(Arc::new(dir.to_path_buf())),
        })
    }

    pub fn memory() -> Spool {
        Spool::default()
    }

    pub fn writer(&self) -> SpoolWriter {
        SpoolWriter {
            spool: self.clone(),
            head: Vec::new(),
            ends: HeaderEnd::default(),
            buffer: Vec::new(),
            file: None,
            len: 0,
        }
    }
}

/// Finds the empty line that ends the header section (RFC 5322 §2.1)
/// across writes split anywhere.
#[derive(Debug, Default)]
struct HeaderEnd {
    /// How much of CR LF CR LF was just seen.
    matched: usize,
    found: bool,
}

impl HeaderEnd {
    /// How many octets of `bytes` belong to the header section, if it ends in them.
    fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        if self.found {
            return None;
        }
        const END: &[u8; 4] = b"\r\n\r\n";
        for (i, &b) in bytes.iter().enumerate() {
            self.matched = match b {
                _ if b == END[self.matched] => self.matched + 1,
                b'\r' => 1,
                _ => 0,
            };
            if self.matched == END.len() {
                self.found = true;
                return Some(i + 1);
            }
        }
        None
    }
}

/// Content being received.
#[derive(Debug)]
pub struct SpoolWriter {
    spool: Spool,
    /// What stays in memory: at least the header section.
    head: Vec<u8>,
    ends: HeaderEnd,
    /// File mode: octets not yet written.
    buffer: Vec<u8>,
    file: Option<File>,
    len: u64,
}

impl SpoolWriter {
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        self.len += bytes.len() as u64;
        if self.file.is_none() {
            let in_header = !self.ends.found;
            let header_part = match self.ends.scan(bytes) {
                Some(n) => n,
                None if in_header => bytes.len(),
                None => 0,
            };
            let header_part = header_part.min(HEADER_IN_MEMORY.saturating_sub(self.head.len()));
            let room = MEMORY_LIMIT.saturating_sub(self.head.len());
            let keep = header_part.max(room.min(bytes.len()));
            self.head.extend_from_slice(&bytes[..keep]);
            bytes = &bytes[keep..];
            if bytes.is_empty() {
                return Ok(());
            }
            let Some(dir) = self.spool.dir.clone() else {
                self.head.extend_from_slice(bytes);
                return Ok(());
            };
            self.open_file(&dir)?;
        }
        if self.buffer.len() + bytes.len() < MEMORY_LIMIT {
            self.buffer.extend_from_slice(bytes);
            return Ok(());
        }
        let file = self.file.as_mut().ok_or_else(no_file)?;
        file.write_all(&self.buffer)?;
        self.buffer.clear();
        file.write_all(bytes)
    }

    /// Moves to file mode: the head so far goes to the file after the room.
    fn open_file(&mut self, dir: &Path) -> io::Result<()> {
        let mut file = tempfile::tempfile_in(dir)?;
        file.set_len(ROOM)?;
        file.seek(io::SeekFrom::End(0))?;
        file.write_all(&self.head)?;
        self.file = Some(file);
        Ok(())
    }

    /// Octets written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(mut self) -> io::Result<Spooled> {
        let (Some(mut file), Some(dir)) = (self.file.take(), self.spool.dir.clone()) else {
            self.head.extend_from_slice(&self.buffer);
            return Ok(Spooled::from_vec(self.head));
        };
        file.write_all(&self.buffer)?;
        Ok(Spooled {
            head: Bytes::from(self.head),
            file: Some(Arc::new(SpoolFile::new(file, dir, ROOM))),
            start: ROOM,
            len: self.len,
        })
    }
}

fn no_file() -> io::Error {
    io::Error::other("spool: no file")
}

/// A spool file and how much of the room in front is still free: the room
/// below `free_to` is unused. Clones of a [`Spooled`] share the file; only
/// a prefix that ends exactly at `free_to` may go into the room (one
/// writer wins, the others copy), so no two versions overwrite each other.
#[derive(Debug)]
struct SpoolFile {
    file: File,
    /// The spool directory, for copies.
    dir: Arc<PathBuf>,
    free_to: AtomicU64,
}

impl SpoolFile {
    fn new(file: File, dir: Arc<PathBuf>, free_to: u64) -> SpoolFile {
        SpoolFile {
            file,
            dir,
            free_to: AtomicU64::new(free_to),
        }
    }

    /// Claims `[start - len, start)` of the room, if it is free.
    fn claim(&self, start: u64, len: u64) -> bool {
        len <= start
            && self
                .free_to
                .compare_exchange(start, start - len, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

/// Finished content: the head in memory, the rest (if any) in a spool file.
/// Cloning shares the file.
#[derive(Debug, Clone)]
pub struct Spooled {
    /// The first octets of the content (all of it without a file); the
    /// header section always.
    head: Bytes,
    file: Option<Arc<SpoolFile>>,
    /// Where the content starts in the file (after the room left free).
    start: u64,
    len: u64,
}

/// [`Spooled::reader`]: `std::io::Read` over spooled content.
#[derive(Debug)]
pub struct SpooledReader {
    spooled: Spooled,
    at: u64,
    end: u64,
}

impl io::Read for SpooledReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = (self.end.saturating_sub(self.at)).min(buf.len() as u64) as usize;
        let n = self.spooled.read_at(self.at, &mut buf[..room])?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Spooled {
    /// Content already in memory (a message Tern made, a test).
    pub fn from_vec(content: Vec<u8>) -> Spooled {
        let len = content.len() as u64;
        Spooled {
            head: Bytes::from(content),
            file: None,
            start: 0,
            len,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether part of the content lives in a file.
    pub fn is_spooled(&self) -> bool {
        self.file.is_some()
    }

    /// The octets in memory: the header section and the start of the body.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The header section, with the empty line that ends it.
    pub fn header(&self) -> &[u8] {
        &self.head[..crate::header::header_end(&self.head)]
    }

    /// The content, in blocks of at most [`MEMORY_LIMIT`] octets past the head.
    pub fn chunks(&self, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        self.chunks_until(self.len, |c| {
            each(c);
            true
        })
    }

    /// Like [`Spooled::chunks`], stopping after `limit` octets or when
    /// `each` returns false.
    fn chunks_until(&self, limit: u64, mut each: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
        let limit = limit.min(self.len);
        let head = &self.head[..(self.head.len() as u64).min(limit) as usize];
        if !each(head) {
            return Ok(());
        }
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut done = head.len() as u64;
        let mut block = vec![0; MEMORY_LIMIT];
        while done < limit {
            let want = ((limit - done) as usize).min(MEMORY_LIMIT);
            let n = file.file.read_at(&mut block[..want], self.start + done)?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            if !each(&block[..n]) {
                return Ok(());
            }
            done += n as u64;
        }
        Ok(())
    }

    /// Octets from `offset` into `buf`, as many as fit and are left (0 at
    /// the end): for a reader that awaits between pieces (the outbound
    /// client writing to a socket).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.len - offset) as usize;
        let head = self.head.len() as u64;
        if offset < head {
            let n = want.min((head - offset) as usize);
            buf[..n].copy_from_slice(&self.head[offset as usize..offset as usize + n]);
            return Ok(n);
        }
        let file = self.file.as_ref().ok_or_else(no_file)?;
        file.file.read_at(&mut buf[..want], self.start + offset)
    }

    /// A reader of the octets from the first (for a library that reads
    /// its input as a stream: encryption at rest).
    pub fn reader(&self) -> SpooledReader {
        self.reader_of(0..self.len)
    }

    /// A reader of the octets `range` (a part of the message).
    pub fn reader_of(&self, range: std::ops::Range<u64>) -> SpooledReader {
        SpooledReader {
            spooled: self.clone(),
            at: range.start,
            end: range.end.min(self.len),
        }
    }

    /// The octets `range` in memory (a small part of a large message).
    pub fn read_range(&self, range: std::ops::Range<u64>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        io::Read::read_to_end(&mut self.reader_of(range), &mut out)?;
        Ok(out)
    }

    /// The first `limit` octets (all of them when shorter).
    pub fn view(&self, limit: usize) -> io::Result<Bytes> {
        if self.file.is_none() || limit <= self.head.len() {
            return Ok(self.head.slice(..limit.min(self.head.len())));
        }
        let mut out = Vec::with_capacity((self.len as usize).min(limit));
        self.chunks_until(limit as u64, |c| {
            out.extend_from_slice(c);
            true
        })?;
        Ok(Bytes::from(out))
    }

    /// The whole content in memory: for the consumers that need every octet
    /// at once (Sieve scripts, a header edit).
    pub fn read_all(&self) -> io::Result<Bytes> {
        self.view(self.len as usize)
    }

    /// This content without its first `n` octets, which must be in the head
    /// (a header field removed: followed by [`Spooled::with_prefix`] with the
    /// header section that replaces it).
    pub fn skip(&self, n: usize) -> Spooled {
        let n = n.min(self.head.len());
        Spooled {
            head: self.head.slice(n..),
            file: self.file.clone(),
            start: self.start + n as u64,
            len: self.len - n as u64,
        }
    }

    /// `prefix` followed by this content. A spool file keeps its content
    /// where it is: the prefix goes into the free room in front of it. When
    /// the room is taken (another version of the message claimed it) or too
    /// small, the content is copied to a new spool file.
    pub fn with_prefix(&self, prefix: &[u8]) -> io::Result<Spooled> {
        let mut head = Vec::with_capacity(prefix.len() + self.head.len());
        head.extend_from_slice(prefix);
        head.extend_from_slice(&self.head);
        let len = self.len + prefix.len() as u64;
        let Some(file) = &self.file else {
            return Ok(Spooled::from_vec(head));
        };
        let plen = prefix.len() as u64;
        if file.claim(self.start, plen) {
            let start = self.start - plen;
            file.file.write_all_at(prefix, start)?;
            return Ok(Spooled {
                head: Bytes::from(head),
                file: Some(file.clone()),
                start,
                len,
            });
        }
        let copy = tempfile::tempfile_in(file.dir.as_path())?;
        copy.write_all_at(prefix, 0)?;
        let mut at = plen;
        let mut failed = None;
        self.chunks(|c| {
            if failed.is_none() {
                match copy.write_all_at(c, at) {
                    Ok(()) => at += c.len() as u64,
                    Err(e) => failed = Some(e),
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(Spooled {
            head: Bytes::from(head),
            file: Some(Arc::new(SpoolFile::new(copy, file.dir.clone(), 0))),
            start: 0,
            len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all(spool: &Spool, parts: &[&[u8]]) -> Spooled {
        let mut w = spool.writer();
        for p in parts {
            w.write(p).unwrap();
        }
        w.finish().unwrap()
    }

    fn collect(s: &Spooled) -> Vec<u8> {
        let mut out = Vec::new();
        s.chunks(|c| out.extend_from_slice(c)).unwrap();
        out
    }

    #[test]
    fn small_content_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::in_dir(dir.path()).unwrap();
        let s = write_all(&spool, &[b"Subject: x\r\n", b"\r\nbody\r\n"]);
        assert!(!s.is_spooled());
        assert_eq!(s.header(), b"Subject: x\r\n\r\n");
        assert_eq!(collect(&s), b"Subject: x\r\n\r\nbody\r\n");
        let whole = s.with_prefix(b"A: 1\r\n").unwrap();
        assert_eq!(
            &whole.read_all().unwrap()[..],
            b"A: 1\r\nSubject: x\r\n\r\nbody\r\n"
        );
    }

    fn large_message() -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut pieces = vec![b"Subject: big\r\nFrom: a@b.test\r\n\r\n".to_vec()];
        // Odd-sized pieces, some larger than the buffer.
        for i in 0..300usize {
            pieces.push(vec![
                b'a' + (i % 26) as u8;
                (i * 997) % (3 * MEMORY_LIMIT) + 1
            ]);
        }
        (pieces.concat(), pieces)
    }

    /// The large message, spooled (the directory lives as long as it is kept).
    fn large_spooled() -> (tempfile::TempDir, Spooled, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::in_dir(dir.path()).unwrap();
        let (expected, pieces) = large_message();
        let parts: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        (dir, write_all(&spool, &parts), expected)
    }

    /// A range across the head and the file, one inside the file, one
    /// past the end: each reads exactly its octets.
    #[test]
    fn ranges_read_exactly_their_octets() {
        let (_dir, s, expected) = large_spooled();
        let len = expected.len() as u64;
        let head = s.head().len() as u64;
        for range in [
            0..10,
            head - 5..head + 70_000,
            200_000..200_001,
            len - 3..len + 9,
        ] {
            let end = range.end.min(len) as usize;
            assert_eq!(
                s.read_range(range.clone()).unwrap(),
                &expected[range.start as usize..end],
                "{range:?}"
            );
        }
    }

    #[test]
    fn large_content_goes_to_a_file_and_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::in_dir(dir.path()).unwrap();
        let (expected, pieces) = large_message();
        let mut w = spool.writer();
        for p in &pieces {
            w.write(p).unwrap();
        }
        assert_eq!(w.len(), expected.len() as u64);
        let s = w.finish().unwrap();
        assert!(s.is_spooled());
        assert!(s.head().len() <= MEMORY_LIMIT);
        assert_eq!(s.header(), b"Subject: big\r\nFrom: a@b.test\r\n\r\n");
        assert_eq!(collect(&s), expected);
        assert_eq!(&s.view(100_000).unwrap()[..], &expected[..100_000]);
        assert_eq!(&s.read_all().unwrap()[..], &expected[..]);
        let whole = s.with_prefix(b"Received: here\r\n").unwrap();
        assert_eq!(whole.len(), expected.len() as u64 + 16);
        assert_eq!(
            whole.header(),
            b"Received: here\r\nSubject: big\r\nFrom: a@b.test\r\n\r\n"
        );
        let all = collect(&whole);
        assert_eq!(&all[..16], b"Received: here\r\n");
        assert_eq!(&all[16..], &expected[..]);
        // Unnamed: nothing is left in the directory, even while it lives.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_header_end_is_found_across_any_split() {
        let message = b"A: b\r\nC: d\r\n\r\nbody\r\n\r\nmore";
        for split in 0..message.len() {
            let mut ends = HeaderEnd::default();
            let first = ends.scan(&message[..split]);
            let second = ends.scan(&message[split..]).map(|n| n + split);
            assert_eq!(first.or(second), Some(14), "split {split}");
        }
        // "\r\r\n\r\n" still ends it.
        assert_eq!(HeaderEnd::default().scan(b"A: b\r\r\n\r\nx"), Some(9));
    }

    #[test]
    fn a_long_header_section_stays_in_memory_whole() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::in_dir(dir.path()).unwrap();
        let mut header = Vec::new();
        while header.len() < 2 * MEMORY_LIMIT {
            header.extend_from_slice(b"X-Long: 0123456789012345678901234567890123456789\r\n");
        }
        header.extend_from_slice(b"\r\n");
        let body = vec![b'z'; 3 * MEMORY_LIMIT];
        let s = write_all(&spool, &[&header, &body]);
        assert!(s.is_spooled());
        assert_eq!(s.header(), &header[..]);
        assert_eq!(collect(&s), [header, body].concat());
    }

    /// An APPEND of a message without a blank line: its "header section"
    /// is the whole message, and only [`HEADER_IN_MEMORY`] of it is held.
    #[test]
    fn a_header_section_without_end_is_held_only_so_far() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::in_dir(dir.path()).unwrap();
        let line = b"X-Endless: 0123456789012345678901234567890123456789\r\n";
        let endless: Vec<u8> = line.repeat(3 * HEADER_IN_MEMORY / line.len());
        let pieces: Vec<&[u8]> = endless.chunks(10_000).collect();
        let s = write_all(&spool, &pieces);
        assert!(s.is_spooled());
        assert_eq!(s.head().len(), HEADER_IN_MEMORY);
        assert_eq!(collect(&s), endless);
    }

    #[test]
    fn read_at_reads_any_piece() {
        let (_dir, s, expected) = large_spooled();
        let mut got = Vec::new();
        let mut buf = vec![0; 10_007];
        loop {
            let n = s.read_at(got.len() as u64, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, expected);
        let small = Spooled::from_vec(b"abc".to_vec());
        assert_eq!(small.read_at(1, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"bc");
        assert_eq!(small.read_at(3, &mut buf).unwrap(), 0);
    }

    #[test]
    fn a_prefix_larger_than_the_room_is_copied() {
        let (_dir, s, expected) = large_spooled();
        let prefix = [b"X: ".to_vec(), vec![b'p'; ROOM as usize], b"\r\n".to_vec()].concat();
        let whole = s.with_prefix(&prefix).unwrap();
        assert_eq!(collect(&whole), [prefix, expected.clone()].concat());
    }

    #[test]
    fn a_header_replaced_in_front_of_a_spooled_body() {
        let (_dir, s, expected) = large_spooled();
        let old = s.header().len();
        let replaced = s.skip(old).with_prefix(b"Subject: new\r\n\r\n").unwrap();
        assert_eq!(replaced.header(), b"Subject: new\r\n\r\n");
        assert_eq!(
            collect(&replaced),
            [&b"Subject: new\r\n\r\n"[..], &expected[old..]].concat()
        );
        assert_eq!(collect(&s), expected);
    }

    /// Two versions of one message (two redirects) never share room.
    #[test]
    fn two_prefixes_on_one_content_do_not_overwrite_each_other() {
        let (_dir, s, expected) = large_spooled();
        let base = s.with_prefix(b"Received: x\r\n").unwrap();
        let a = base.with_prefix(b"Delivered-To: a@d.test\r\n").unwrap();
        let b = base.with_prefix(b"Delivered-To: bb@d.test\r\n").unwrap();
        let original = [b"Received: x\r\n".to_vec(), expected].concat();
        assert_eq!(collect(&base), original);
        assert_eq!(
            collect(&a),
            [b"Delivered-To: a@d.test\r\n".to_vec(), original.clone()].concat()
        );
        assert_eq!(
            collect(&b),
            [b"Delivered-To: bb@d.test\r\n".to_vec(), original].concat()
        );
    }

    #[test]
    fn a_memory_spool_never_makes_a_file() {
        let (expected, pieces) = large_message();
        let parts: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        let s = write_all(&Spool::memory(), &parts);
        assert!(!s.is_spooled());
        assert_eq!(collect(&s), expected);
    }
}
