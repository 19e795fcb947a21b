//! Sender authentication (design.md `policy`).
pub mod aggregate;
pub mod body_hash;
pub mod dmarc;
pub mod feedback;
pub mod keys;
pub mod openpgp;
pub mod pgp_mime;
pub mod psl;
pub mod publish;
pub mod results;
pub mod sender_keys;
pub mod sign;
pub mod smime;
pub mod smime_mime;
pub mod spf;
pub mod srs;
pub mod verify;
