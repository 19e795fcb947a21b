//! Messages from files an operator points at: one message in a file, a
//! directory of such files, a Maildir (its `cur` and `new`), or an mbox
//! (a file that starts with "From ", read by `message::mbox`).

use std::path::{Path, PathBuf};

/// A message read from disk (bare LF line ends made CRLF, as mail has
/// them), with where it came from (for what is printed).
pub struct FileMessage {
    pub origin: String,
    pub raw: Vec<u8>,
}

/// Every message under `path`, in a stable order, read one at a time as
/// the caller asks for the next (an mbox of gigabytes is never held whole).
pub fn read(path: &Path) -> Result<Messages, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let files = match meta.is_dir() {
        true => files_in(path)?,
        false => vec![path.to_path_buf()],
    };
    Ok(Messages {
        files: files.into_iter(),
        mbox: None,
    })
}

/// The messages of [`read`]: each file in turn, an mbox file message by
/// message.
pub struct Messages {
    files: std::vec::IntoIter<PathBuf>,
    /// The mbox being read, its path and how many messages it gave.
    mbox: Option<(Mbox, PathBuf, usize)>,
}

type Mbox = message::mbox::MboxReader<std::io::BufReader<std::fs::File>>;

impl Iterator for Messages {
    type Item = Result<FileMessage, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((reader, path, n)) = self.mbox.as_mut() {
                match reader.next_message() {
                    Ok(Some(m)) => {
                        *n += 1;
                        let origin = format!("{}#{n}", path.display());
                        let raw = message::crlf::crlf(m.raw);
                        return Some(Ok(FileMessage { origin, raw }));
                    }
                    Ok(None) => self.mbox = None,
                    Err(e) => {
                        let failed = format!("{}: {e}", path.display());
                        self.mbox = None;
                        return Some(Err(failed));
                    }
                }
            }
            let path = self.files.next()?;
            match open(&path) {
                Ok(Opened::Mbox(reader)) => self.mbox = Some((reader, path, 0)),
                Ok(Opened::Message(raw)) => {
                    let origin = path.display().to_string();
                    let raw = message::crlf::crlf(raw);
                    return Some(Ok(FileMessage { origin, raw }));
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

enum Opened {
    Mbox(Mbox),
    Message(Vec<u8>),
}

/// A file that starts with "From " is an mbox; any other is one message.
fn open(path: &Path) -> Result<Opened, String> {
    use std::io::{BufRead, Read};
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut input = std::io::BufReader::new(file);
    if input.fill_buf().map_err(failed)?.starts_with(b"From ") {
        return Ok(Opened::Mbox(message::mbox::MboxReader::new(input)));
    }
    let mut raw = Vec::new();
    input.read_to_end(&mut raw).map_err(failed)?;
    Ok(Opened::Message(raw))
}

/// The message files of a directory (a Maildir's `cur` and `new`), sorted.
fn files_in(path: &Path) -> Result<Vec<PathBuf>, String> {
    // A Maildir: its messages are in cur/ and new/.
    let maildir = path.join("cur").is_dir() || path.join("new").is_dir();
    let dirs: Vec<PathBuf> = if maildir {
        ["cur", "new"]
            .iter()
            .map(|d| path.join(d))
            .filter(|d| d.is_dir())
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    let mut files = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}
