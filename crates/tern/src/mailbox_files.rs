//! `tern import ADDRESS PATH` and `tern export ADDRESS DIR`: an account's
//! mail in from, and out to, the files other mail systems keep.
//!
//! Import reads a Maildir (Maildir++ `.Folder` and `.Parent.Child`
//! folders, or a directory tree of Maildirs as Dovecot's `LAYOUT=fs`
//! writes it), with its flags from the file names (`:2,DFPRST`) and
//! keywords from Dovecot's `dovecot-keywords` file; or an mbox file (an
//! mboxrd or mboxo: `>From ` lines unescaped), its flags from `Status:`
//! and `X-Status:`, into a folder named after the file (INBOX for `inbox`
//! or `mbox`). Line ends become CRLF, as IMAP serves them. A second run
//! skips what is already there (by Message-ID, or size and date), so an
//! interrupted import can be run again. Messages are stored 200 to a
//! transaction, indexed for search as delivered mail is.
//!
//! Export writes a Maildir++: INBOX at the top, each folder as `.Name`
//! (`/` becoming `.`), flags in the file names, keywords in
//! `dovecot-keywords`, each file's time its internal date.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use message::crlf::crlf;
use store::{AccountId, Delivery, Folder, NewMessage, Store};

use crate::admin::AdminError;

type Result<T> = std::result::Result<T, AdminError>;

/// Messages stored per transaction.
const BATCH: usize = 200;
/// The most octets an import holds before storing them (C-FT9: a batch of
/// large messages is stored early, so at most this and one message are
/// in memory).
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// One message found in the files (or on another server).
pub(crate) struct Found {
    pub folder: String,
    pub raw: Vec<u8>,
    pub flags: Vec<String>,
    pub date: i64,
}

/// A Maildir message file, read when its batch is stored (an import
/// holds one batch of messages in memory, whatever the size of the tree).
struct MaildirFile {
    folder: String,
    path: PathBuf,
    flags: Vec<String>,
}

fn io_err(path: &Path, e: std::io::Error) -> AdminError {
    AdminError(format!("{}: {e}", path.display()))
}

/// Maildir flag letters (the "2," info of the Maildir specification) and
/// the IMAP flags they stand for.
const MAILDIR_FLAGS: [(char, &str); 6] = [
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('P', "$Forwarded"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
    ('T', "\\Deleted"),
];

fn mtime(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or_else(message::date::unix_now)
}

/// Dovecot's `dovecot-keywords`: "N keyword" lines; letter `a`+N.
fn keywords(dir: &Path) -> BTreeMap<char, String> {
    let text = std::fs::read_to_string(dir.join("dovecot-keywords")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (n, word) = l.split_once(' ')?;
            let n: u8 = n.parse().ok().filter(|n| *n < 26)?;
            Some(((b'a' + n) as char, word.trim().to_string()))
        })
        .collect()
}

/// The flags in a Maildir file name (`...:2,FS` or `...:2,Sab`).
fn maildir_flags(name: &str, keywords: &BTreeMap<char, String>) -> Vec<String> {
    let Some((_, info)) = name.rsplit_once(":2,") else {
        return Vec::new();
    };
    info.chars()
        .filter_map(|c| {
            MAILDIR_FLAGS
                .iter()
                .find(|(l, _)| *l == c)
                .map(|(_, f)| f.to_string())
                .or_else(|| keywords.get(&c).cloned())
        })
        .collect()
}

/// One Maildir (its `cur` and `new`) as folder `name`.
fn read_maildir(dir: &Path, name: &str, out: &mut Vec<MaildirFile>) -> Result<()> {
    let keys = keywords(dir);
    for sub in ["cur", "new"] {
        let d = dir.join(sub);
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files.into_iter().filter(|f| f.is_file()) {
            let file = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if file.starts_with('.') {
                continue;
            }
            out.push(MaildirFile {
                folder: name.to_string(),
                flags: maildir_flags(&file, &keys),
                path: f,
            });
        }
    }
    Ok(())
}

fn is_maildir(dir: &Path) -> bool {
    dir.join("cur").is_dir()
}

/// Every folder of a Maildir tree: Maildir++ dot-folders, and
/// subdirectories that are Maildirs themselves (LAYOUT=fs).
fn read_maildir_tree(root: &Path, prefix: &str, out: &mut Vec<MaildirFile>) -> Result<()> {
    let here = if prefix.is_empty() { "INBOX" } else { prefix };
    if is_maildir(root) {
        read_maildir(root, here, out)?;
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| io_err(root, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    for sub in subs {
        let name = sub
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if ["cur", "new", "tmp"].contains(&name.as_str()) {
            continue;
        }
        let folder = match name.strip_prefix('.') {
            // Maildir++: ".Parent.Child" at the top level.
            Some(dotted) if prefix.is_empty() && !dotted.is_empty() => dotted.replace('.', "/"),
            Some(_) => continue,
            None if prefix.is_empty() => name.clone(),
            None => format!("{prefix}/{name}"),
        };
        if name.starts_with('.') {
            if is_maildir(&sub) {
                read_maildir(&sub, &folder, out)?;
            }
        } else {
            read_maildir_tree(&sub, &folder, out)?;
        }
    }
    Ok(())
}

/// `Status: RO` and `X-Status: AFD` of mbox writers (mutt, Thunderbird).
fn mbox_flags(raw: &[u8]) -> Vec<String> {
    let mut flags = Vec::new();
    for f in message::header::fields_named(raw, "Status") {
        if f.unfolded().contains('R') {
            flags.push("\\Seen".to_string());
        }
    }
    for f in message::header::fields_named(raw, "X-Status") {
        let v = f.unfolded();
        for (c, flag) in [
            ('A', "\\Answered"),
            ('F', "\\Flagged"),
            ('D', "\\Deleted"),
            ('T', "\\Draft"),
        ] {
            if v.contains(c) {
                flags.push(flag.to_string());
            }
        }
    }
    flags
}

async fn import_mbox(path: &Path, into: &mut Importer) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let folder = if ["inbox", "mbox"].contains(&stem.to_ascii_lowercase().as_str()) {
        "INBOX".to_string()
    } else {
        stem
    };
    let mut reader = message::mbox::MboxReader::new(std::io::BufReader::new(file));
    while let Some(m) = reader
        .next_message()
        .map_err(|e| AdminError(format!("{}: {e}", path.display())))?
    {
        let raw = crlf(m.raw);
        into.add(Found {
            folder: folder.clone(),
            flags: mbox_flags(&raw),
            raw,
            date: m.date.unwrap_or_else(message::date::unix_now),
        })
        .await?;
    }
    Ok(())
}

/// What identifies a message already in a folder: its Message-ID, or
/// (without one) its size and internal date.
fn identity(raw: &[u8], size: u64, date: i64) -> String {
    let id = message::header::fields_named(raw, "Message-ID")
        .first()
        .and_then(|f| message::header::message_ids(f.value).into_iter().next());
    match id {
        Some(id) => format!("id:{id}"),
        None => format!("size:{size}:{date}"),
    }
}

async fn existing(store: &Arc<dyn Store>, account: AccountId) -> Result<HashSet<(String, String)>> {
    let mut known = HashSet::new();
    for m in store.mailboxes(account).await? {
        let ids: std::collections::HashMap<u32, Option<String>> = store
            .index_rows(m.id, 0)
            .await?
            .into_iter()
            .map(|r| (r.uid, r.message_id))
            .collect();
        for e in store.messages(m.id).await? {
            let key = match ids.get(&e.uid).cloned().flatten() {
                Some(id) => format!("id:{id}"),
                None => format!("size:{}:{}", e.size, e.internal_date),
            };
            known.insert((m.name.clone(), key));
        }
    }
    Ok(known)
}

/// Stores what it is given, a batch at a time, skipping what is there.
pub(crate) struct Importer {
    store: Arc<dyn Store>,
    address: String,
    account: AccountId,
    known: HashSet<(String, String)>,
    batch: Vec<NewMessage>,
    /// The octets of the batch: it is stored when it reaches [`BATCH_BYTES`].
    batch_bytes: u64,
    folders: std::collections::BTreeSet<String>,
    stored: usize,
    skipped: usize,
    /// How many there are in all, when known first (Maildir).
    total: Option<usize>,
}

impl Importer {
    /// An import into `address`'s account; what it holds is read first.
    pub async fn start(store: Arc<dyn Store>, address: &str) -> Result<Importer> {
        let account = crate::admin::account_by_address(&store, address).await?;
        let known = existing(&store, account.id).await?;
        Ok(Importer {
            store,
            address: account.address,
            account: account.id,
            known,
            batch: Vec::with_capacity(BATCH),
            batch_bytes: 0,
            folders: Default::default(),
            stored: 0,
            skipped: 0,
            total: None,
        })
    }

    pub fn account(&self) -> AccountId {
        self.account
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Store the last batch and say what was done.
    pub async fn finish(mut self) -> Result<()> {
        self.flush().await?;
        eprintln!();
        println!(
            "imported {} message(s) into {} folder(s) of {}; {} already there",
            self.stored,
            self.folders.len(),
            self.address,
            self.skipped
        );
        Ok(())
    }

    pub async fn add(&mut self, f: Found) -> Result<()> {
        let key = identity(&f.raw, f.raw.len() as u64, f.date);
        if self.known.contains(&(f.folder.clone(), key)) {
            self.skipped += 1;
            return Ok(());
        }
        self.folders.insert(f.folder.clone());
        let folder = if f.folder == "INBOX" {
            Folder::Inbox
        } else {
            Folder::Create(f.folder)
        };
        self.batch_bytes += f.raw.len() as u64;
        self.batch.push(NewMessage {
            data: message::spool::Spooled::from_vec(f.raw),
            received_at: f.date,
            deliveries: vec![Delivery {
                account: self.account,
                folder,
                prefix: Vec::new(),
                flags: f.flags,
            }],
            queue: None,
        });
        if self.batch.len() == BATCH || self.batch_bytes >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if !self.batch.is_empty() {
            self.stored += self.batch.len();
            self.batch_bytes = 0;
            self.store
                .store_messages(std::mem::take(&mut self.batch))
                .await?;
        }
        progress(self.stored + self.skipped, self.total);
        Ok(())
    }
}

pub async fn import(store: Arc<dyn Store>, address: &str, path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    let mut importer = Importer::start(store, address).await?;
    if meta.is_dir() {
        let mut files = Vec::new();
        read_maildir_tree(path, "", &mut files)?;
        if files.is_empty() && !is_maildir(path) {
            return Err(AdminError(format!(
                "{}: not a Maildir (no cur/ here or in its folders)",
                path.display()
            )));
        }
        importer.total = Some(files.len());
        for f in files {
            let raw = std::fs::read(&f.path).map_err(|e| io_err(&f.path, e))?;
            importer
                .add(Found {
                    folder: f.folder,
                    raw: crlf(raw),
                    flags: f.flags,
                    date: mtime(&f.path),
                })
                .await?;
        }
    } else {
        import_mbox(path, &mut importer).await?;
    }
    importer.finish().await
}

fn progress(n: usize, total: Option<usize>) {
    match total {
        Some(t) => eprint!("\r{n}/{t} messages"),
        None => eprint!("\r{n} messages"),
    }
    let _ = std::io::stderr().flush();
}

/// Messages up to this size are read whole, a batch at a time, to export.
const WHOLE_UP_TO: u64 = 256 * 1024;

/// Copy a message from the store into the file `path` a piece at a time;
/// false (and no file) if it is gone.
async fn copy_out(
    store: &dyn Store,
    mailbox: store::MailboxId,
    entry: &store::MessageEntry,
    path: &Path,
) -> Result<bool> {
    let mut file = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
    let mut next = 0;
    while next < entry.size {
        let piece = store::stream::scan_piece(store, mailbox, entry.uid, next, entry.size).await?;
        let Some(got) = piece else {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Ok(false);
        };
        file.write_all(&got).map_err(|e| io_err(path, e))?;
        next += got.len() as u64;
    }
    Ok(true)
}

pub async fn export(store: Arc<dyn Store>, address: &str, dir: &Path) -> Result<()> {
    let account = crate::admin::account_by_address(&store, address).await?;
    let mut count = 0;
    let mailboxes = store.mailboxes(account.id).await?;
    for m in &mailboxes {
        let target = if m.name == "INBOX" {
            dir.to_path_buf()
        } else {
            dir.join(format!(".{}", m.name.replace('/', ".")))
        };
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(target.join(sub)).map_err(|e| io_err(&target, e))?;
        }
        let entries = store.messages(m.id).await?;
        // Keywords (flags without a backslash, other than $Forwarded) get letters.
        let mut keys: Vec<String> = Vec::new();
        for e in &entries {
            for f in &e.flags {
                if !f.starts_with('\\') && f != "$Forwarded" && !keys.contains(f) && keys.len() < 26
                {
                    keys.push(f.clone());
                }
            }
        }
        if !keys.is_empty() {
            let text: String = keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{i} {k}\n"))
                .collect();
            let path = target.join("dovecot-keywords");
            std::fs::write(&path, text).map_err(|e| io_err(&path, e))?;
        }
        for chunk in entries.chunks(BATCH) {
            // Small messages a batch at a time; a large one is copied a
            // piece at a time into its file below (never held whole).
            let uids: Vec<u32> = chunk
                .iter()
                .filter(|e| e.size <= WHOLE_UP_TO)
                .map(|e| e.uid)
                .collect();
            let contents: std::collections::HashMap<u32, Vec<u8>> =
                store.contents(m.id, uids).await?.into_iter().collect();
            for e in chunk {
                let raw = contents.get(&e.uid);
                if raw.is_none() && e.size <= WHOLE_UP_TO {
                    continue;
                }
                let mut info: Vec<char> = MAILDIR_FLAGS
                    .iter()
                    .filter(|(_, f)| store::flags::contains(&e.flags, f))
                    .map(|(c, _)| *c)
                    .collect();
                info.extend(
                    keys.iter()
                        .enumerate()
                        .filter(|(_, k)| store::flags::contains(&e.flags, k))
                        .map(|(i, _)| (b'a' + i as u8) as char),
                );
                let info: String = info.into_iter().collect();
                let name = format!(
                    "{}.U{}V{}.tern:2,{info}",
                    e.internal_date, e.uid, m.uid_validity
                );
                let path = target.join("cur").join(name);
                match raw {
                    Some(raw) => std::fs::write(&path, raw).map_err(|e| io_err(&path, e))?,
                    None if !copy_out(store.as_ref(), m.id, e, &path).await? => continue,
                    None => {}
                }
                if let Ok(file) = std::fs::File::options().write(true).open(&path) {
                    let when = std::time::UNIX_EPOCH
                        + std::time::Duration::from_secs(e.internal_date.max(0) as u64);
                    let _ = file.set_modified(when);
                }
                count += 1;
            }
        }
    }
    println!(
        "exported {count} message(s) in {} folder(s) of {} to {}",
        mailboxes.len(),
        account.address,
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_names() {
        let keys: BTreeMap<char, String> = [('a', "$Junk".to_string())].into();
        assert_eq!(
            maildir_flags("1700000000.M1.host:2,FRSa", &keys),
            vec!["\\Flagged", "\\Answered", "\\Seen", "$Junk"]
        );
        assert!(maildir_flags("1700000000.M1.host", &keys).is_empty());
    }

    #[test]
    fn mbox_status() {
        let raw = b"Status: RO\r\nX-Status: AF\r\nSubject: x\r\n\r\nbody\r\n";
        assert_eq!(mbox_flags(raw), vec!["\\Seen", "\\Answered", "\\Flagged"]);
    }
}
