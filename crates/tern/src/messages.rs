//! Messages from files an operator points at: one message in a file, a
//! directory of such files, a Maildir (its `cur` and `new`), or an mbox
//! (a file that starts with "From ", read by `message::mbox`).

use std::path::{Path, PathBuf};

/// A message read from disk, with where it came from (for what is printed).
pub struct FileMessage {
    pub origin: String,
    pub raw: Vec<u8>,
}

/// Every message under `path`, in a stable order.
pub fn read(path: &Path) -> Result<Vec<FileMessage>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_dir() {
        return read_dir(path);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.starts_with(b"From ") {
        let mut reader = message::mbox::MboxReader::new(std::io::Cursor::new(bytes));
        let mut out = Vec::new();
        while let Some(m) = reader
            .next_message()
            .map_err(|e| format!("{}: {e}", path.display()))?
        {
            out.push(FileMessage {
                origin: format!("{}#{}", path.display(), out.len() + 1),
                raw: m.raw,
            });
        }
        return Ok(out);
    }
    Ok(vec![FileMessage {
        origin: path.display().to_string(),
        raw: bytes,
    }])
}

fn read_dir(path: &Path) -> Result<Vec<FileMessage>, String> {
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
    let mut out = Vec::new();
    for f in files {
        out.extend(read(&f)?);
    }
    Ok(out)
}
