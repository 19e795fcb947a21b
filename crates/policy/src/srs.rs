//! The Sender Rewriting Scheme (Shevek's SRS, as libsrs2 and Postfix's
//! postsrsd write it): a forwarded message's envelope sender becomes an
//! address of ours, so that SPF at the next hop judges us, and a bounce to it
//! comes back here and goes on to the original sender.
//!
//!     SRS0=HHHH=TT=orig-domain=orig-local@our-domain
//!     SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@our-domain
//!
//! HHHH: the first 4 characters (base32) of an HMAC-SHA256 over the rest,
//! lowercased, with the installation's key; TT: the day (base32, mod 1024).
//! Base32, not libsrs2's base64: a `+` in the hash would be read as a
//! sub-address, and receivers may lowercase local parts.

use hmac::{Hmac, KeyInit, Mac};
pub use message::address::is_srs;
use message::address::{Mailbox, parse_forward_path, quote_local_if_needed, strip_srs_tag};
use sha2::Sha256;

/// How long a rewritten address stays valid for bounces.
pub const MAX_AGE_DAYS: u32 = 21;
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrsError {
    #[error("not an SRS address")]
    NotSrs,
    #[error("malformed SRS address")]
    Malformed,
    #[error("SRS address with a wrong hash (forged)")]
    BadHash,
    #[error("SRS address older than {MAX_AGE_DAYS} days")]
    Expired,
}

pub struct Srs {
    key: Vec<u8>,
}

impl Srs {
    pub fn new(key: Vec<u8>) -> Srs {
        Srs { key }
    }

    /// The envelope sender for a message `sender` sent that `our_domain`
    /// forwards; `now` in Unix seconds. Written as a path other servers
    /// accept: quoted when the local part needs it (RFC 5321 §4.1.2). A
    /// sender so long that its SRS address would be longer than a path may
    /// be (256 octets) keeps its own address.
    pub fn forward(&self, sender: &str, our_domain: &str, now: i64) -> String {
        let Ok(mailbox) = Mailbox::parse(sender) else {
            return sender.to_string();
        };
        let (local, domain) = (mailbox.local(), mailbox.domain().to_string());
        let srs_local = if let Some(rest) = strip_srs_tag(local, "SRS0") {
            // Forwarding an SRS0 address: point back to its forwarder.
            let tail = format!("{domain}=={rest}");
            format!("SRS1={}={tail}", self.hash(&tail))
        } else if let Some((_, tail)) =
            strip_srs_tag(local, "SRS1").and_then(|rest| rest.split_once('='))
        {
            // Forwarding an SRS1 address: keep its first forwarder.
            format!("SRS1={}={tail}", self.hash(tail))
        } else {
            let tail = format!("{}={domain}={local}", timestamp(now));
            format!("SRS0={}={tail}", self.hash(&tail))
        };
        let rewritten = format!("{}@{our_domain}", quote_local_if_needed(&srs_local));
        match parse_forward_path(&format!("<{rewritten}>"), true) {
            Ok(_) => rewritten,
            Err(_) => sender.to_string(),
        }
    }

    /// Where a bounce to the local part `local` of one of our addresses goes:
    /// the original sender (SRS0), or the forwarder before us (SRS1).
    pub fn reverse(&self, local: &str, now: i64) -> Result<String, SrsError> {
        if let Some(rest) = strip_srs_tag(local, "SRS0") {
            let (hash, tail) = rest.split_once('=').ok_or(SrsError::Malformed)?;
            self.check(hash, tail)?;
            let mut parts = tail.splitn(3, '=');
            let (Some(tt), Some(domain), Some(orig)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(SrsError::Malformed);
            };
            if domain.is_empty() {
                return Err(SrsError::Malformed);
            }
            check_age(tt, now)?;
            return Ok(format!("{}@{domain}", quote_local_if_needed(orig)));
        }
        if let Some(rest) = strip_srs_tag(local, "SRS1") {
            let (hash, tail) = rest.split_once('=').ok_or(SrsError::Malformed)?;
            self.check(hash, tail)?;
            let (forwarder, srs0_rest) = tail.split_once("==").ok_or(SrsError::Malformed)?;
            if forwarder.is_empty() {
                return Err(SrsError::Malformed);
            }
            let srs0 = format!("SRS0={srs0_rest}");
            return Ok(format!("{}@{forwarder}", quote_local_if_needed(&srs0)));
        }
        Err(SrsError::NotSrs)
    }

    fn hash(&self, data: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(data.to_ascii_lowercase().as_bytes());
        base32(&mac.finalize().into_bytes())[..4].to_string()
    }

    fn check(&self, hash: &str, tail: &str) -> Result<(), SrsError> {
        // Compared as the hash is made: lowercase (receivers may change case).
        if hash.to_ascii_lowercase() == self.hash(tail) {
            Ok(())
        } else {
            Err(SrsError::BadHash)
        }
    }
}

/// Days since the epoch, mod 1024, as two base32 characters.
fn timestamp(now: i64) -> String {
    let day = (now.div_euclid(86_400) as u64 % 1024) as usize;
    let a = ALPHABET[day >> 5] as char;
    let b = ALPHABET[day & 31] as char;
    format!("{a}{b}")
}

fn check_age(tt: &str, now: i64) -> Result<(), SrsError> {
    let digits: Vec<usize> = tt
        .bytes()
        .map(|c| ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase()))
        .collect::<Option<_>>()
        .ok_or(SrsError::Malformed)?;
    let [hi, lo] = digits[..] else {
        return Err(SrsError::Malformed);
    };
    let then = (hi << 5 | lo) as i64;
    let today = now.div_euclid(86_400) % 1024;
    // Days elapsed, modulo the 1024-day wrap.
    let age = (today - then).rem_euclid(1024);
    if age > i64::from(MAX_AGE_DAYS) {
        return Err(SrsError::Expired);
    }
    Ok(())
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for &b in bytes {
        buffer = buffer << 8 | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_443_664;

    /// Found reading for C-FZ3: a UTF-8 local part (SMTPUTF8) with a
    /// character across its fourth octet panicked the SRS check.
    #[test]
    fn a_multibyte_local_part_is_not_cut_inside_a_character() {
        assert!(!is_srs("SRS\u{e9}=x"));
        assert!(!is_srs("SR\u{e9}0=x"));
        assert!(is_srs("srs0=x"));
    }

    #[test]
    fn srs0_round_trip() {
        let srs = Srs::new(b"secret".to_vec());
        let fwd = srs.forward("alice@a.test", "b.test", NOW);
        assert!(
            fwd.starts_with("SRS0=") && fwd.ends_with("=a.test=alice@b.test"),
            "{fwd}"
        );
        let local = fwd.split('@').next().unwrap();
        assert_eq!(srs.reverse(local, NOW).unwrap(), "alice@a.test");
        // Receivers may change the case of the local part.
        assert_eq!(
            srs.reverse(&local.to_uppercase(), NOW).unwrap(),
            "ALICE@A.TEST"
        );
        assert_eq!(
            srs.reverse(local, NOW + 21 * 86_400).unwrap(),
            "alice@a.test"
        );
        assert_eq!(
            srs.reverse(local, NOW + 22 * 86_400),
            Err(SrsError::Expired)
        );
    }

    #[test]
    fn forged_and_foreign() {
        let srs = Srs::new(b"secret".to_vec());
        let other = Srs::new(b"other".to_vec());
        let fwd = other.forward("alice@a.test", "b.test", NOW);
        let local = fwd.split('@').next().unwrap();
        assert_eq!(srs.reverse(local, NOW), Err(SrsError::BadHash));
        assert_eq!(srs.reverse("alice", NOW), Err(SrsError::NotSrs));
        assert_eq!(srs.reverse("SRS0=abcd", NOW), Err(SrsError::Malformed));
    }

    #[test]
    fn srs1_points_back_to_the_first_forwarder() {
        let b = Srs::new(b"b-key".to_vec());
        let c = Srs::new(b"c-key".to_vec());
        let at_b = b.forward("alice@a.test", "b.test", NOW);
        let at_c = c.forward(&at_b, "c.test", NOW);
        assert!(
            at_c.starts_with("SRS1=") && at_c.contains("=b.test==") && at_c.ends_with("@c.test"),
            "{at_c}"
        );
        // A third forwarder keeps b.test as the first one.
        let d = Srs::new(b"d-key".to_vec());
        let at_d = d.forward(&at_c, "d.test", NOW);
        assert!(
            at_d.contains("=b.test==") && at_d.ends_with("@d.test"),
            "{at_d}"
        );
        // The bounce goes d -> b (b's SRS0) -> alice.
        let back = d.reverse(at_d.split('@').next().unwrap(), NOW).unwrap();
        assert_eq!(back, at_b);
        let (local, domain) = back.split_once('@').unwrap();
        assert_eq!(domain, "b.test");
        assert_eq!(b.reverse(local, NOW).unwrap(), "alice@a.test");
    }

    /// The SRS address of any sender the MX accepts is a path servers
    /// accept, ours included, and a bounce to it finds the sender again:
    /// a quoted local part stays quoted (found by fuzzing `address`: it
    /// made `SRS0=...=a.test=""@b.test`), and a long one may make the SRS
    /// local part longer than 64 octets, which our MX takes for an SRS
    /// address (it refused the bounce: C-SM8 without an exception).
    #[test]
    fn any_accepted_sender_round_trips_through_a_path() {
        use message::address::{ForwardPath, parse_forward_path};
        let srs = Srs::new(b"secret".to_vec());
        for sender in [
            "\"john smith\"@a.test",
            "\"\"@a.test",
            "\"a\\\"b\"@a.test",
            "newsletter-bounces-0123456789-abcdefghijklmn@mail.some-company.example",
        ] {
            let fwd = srs.forward(sender, "b.test", NOW);
            let Ok(ForwardPath::Mailbox(bounce)) = parse_forward_path(&format!("<{fwd}>"), true)
            else {
                panic!("{sender} made {fwd}: not a path");
            };
            assert_eq!(
                srs.reverse(bounce.local(), NOW).as_deref(),
                Ok(sender),
                "{fwd}"
            );
        }
    }

    #[test]
    fn a_sender_whose_srs_address_would_be_no_path_is_kept() {
        let srs = Srs::new(b"secret".to_vec());
        let long = format!(
            "{}@{}.{}.{}.test",
            "a".repeat(60),
            "d".repeat(60),
            "e".repeat(60),
            "f".repeat(50)
        );
        assert_eq!(srs.forward(&long, "b.test", NOW), long);
    }
}
