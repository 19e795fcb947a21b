//! Password verification on a fixed set of threads that keep their Argon2
//! working memory (hardening.md C-AU4): at most [`THREADS`] hashes run at once,
//! and the memory they need is allocated once per thread instead of on every
//! login (a fresh 7-19 MiB allocation per login on varying blocking threads made
//! the allocator keep tens of megabytes per thread).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

pub const THREADS: usize = 2;

struct Job {
    password: String,
    phc: String,
    reply: oneshot::Sender<bool>,
}

pub struct Hasher {
    jobs: SyncSender<Job>,
}

impl Hasher {
    pub fn new() -> Hasher {
        let (jobs, rx) = sync_channel::<Job>(1024);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&rx));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Hasher { jobs }
    }

    /// Check a password against an Argon2 PHC string.
    pub async fn verify(&self, password: &str, phc: &str) -> bool {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password: password.to_string(),
            phc: phc.to_string(),
            reply,
        };
        let jobs = self.jobs.clone();
        // The queue is bounded: a flood of logins waits here, not in memory.
        if tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .ok()
            .and_then(Result::ok)
            .is_none()
        {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let ok = verify_with(&mut memory, &job.password, &job.phc);
        let _ = job.reply.send(ok);
    }
}

/// Argon2 verification into a reused memory buffer, constant-time comparison.
pub fn verify_with(memory: &mut Vec<Block>, password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = hash.algorithm.as_str().parse::<Algorithm>() else {
        return false;
    };
    let version = hash
        .version
        .map(Version::try_from)
        .unwrap_or(Ok(Version::V0x13));
    let (Ok(version), Ok(params)) = (version, Params::try_from(&hash)) else {
        return false;
    };
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    let mut out = vec![0u8; expected.as_bytes().len()];
    let argon = Argon2::new(algorithm, version, params);
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..needed],
        )
        .is_ok()
        && bool::from(out.ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_what_derive_made() {
        let creds = crate::derive("s3cret");
        let mut memory = Vec::new();
        assert!(verify_with(&mut memory, "s3cret", &creds.password_hash));
        assert!(!verify_with(&mut memory, "s3cre", &creds.password_hash));
        // Hashes made with the crate's default parameters (19 MiB) verify too.
        let old = argon2::PasswordHasher::hash_password_with_salt(
            &Argon2::default(),
            b"pw",
            b"0123456789abcdef",
        )
        .unwrap()
        .to_string();
        assert!(verify_with(&mut memory, "pw", &old));
        assert!(!verify_with(&mut memory, "pw", "garbage"));
    }
}
