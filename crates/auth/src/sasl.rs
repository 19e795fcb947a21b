//! SASL server exchanges (RFC 4422) for PLAIN (RFC 4616), LOGIN
//! (draft-murchison-sasl-login) and SCRAM-SHA-256 (RFC 5802, RFC 7677),
//! with channel binding (SCRAM-SHA-256-PLUS) to the TLS connection.
//!
//! An [`Exchange`] is a pure state machine: it takes the client's decoded
//! responses and says what to do next. The protocol crates carry the base64
//! and the `334`/`+` framing; the [`crate::Authenticator`] checks passwords.
//!
//! Channel binding: the `tls-exporter` type of RFC 9266, offered on TLS 1.3
//! connections only (RFC 9266 §3 allows it on TLS 1.2 only with the
//! extended master secret, which rustls does not let a server confirm, and
//! rustls does not expose `tls-unique`): -PLUS is advertised exactly where
//! it works. User names and passwords are SASLprepped (RFC 4013) by the
//! [`crate::Authenticator`] and [`crate::credentials`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::credentials::{ScramKeys, hmac};

/// The longest client response any mechanism needs (C-AU5: 1 MB of base64 is refused).
pub const MAX_RESPONSE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    ScramSha256,
    /// SCRAM with channel binding (RFC 5802 §6, `tls-exporter`, RFC 9266).
    ScramSha256Plus,
}

/// The channel-binding type Tern offers (RFC 9266).
pub const CHANNEL_BINDING: &str = "tls-exporter";

impl Mechanism {
    /// Every mechanism Tern knows, in the order it advertises them.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha256,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// The mechanisms to advertise on a connection: -PLUS only when it has
    /// channel-binding data (TLS 1.3).
    pub fn offered(channel_binding: bool) -> impl Iterator<Item = Mechanism> {
        Mechanism::ALL
            .into_iter()
            .filter(move |m| channel_binding || *m != Mechanism::ScramSha256Plus)
    }

    /// A mechanism by name, if it is offered on this connection.
    pub fn parse(name: &str, channel_binding: bool) -> Option<Mechanism> {
        Mechanism::offered(channel_binding).find(|m| m.name().eq_ignore_ascii_case(name))
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("malformed SASL response")]
    Malformed,
    #[error("authentication cancelled")]
    Cancelled,
    #[error("authentication failed")]
    Failed,
    #[error("authorization identity differs from the authentication identity")]
    AuthzidMismatch,
}

/// What the protocol must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (raw; the protocol base64-encodes it) and wait for a response.
    Challenge(Vec<u8>),
    /// Check this password; the exchange ends with that check.
    CheckPassword {
        username: String,
        password: String,
    },
    /// Look up the user's SCRAM keys and call [`Exchange::scram_keys`].
    NeedScramKeys {
        username: String,
    },
    /// Authenticated.
    Success {
        username: String,
    },
    Failed(SaslError),
}

#[derive(Debug)]
enum State {
    Start,
    LoginUser,
    LoginPassword {
        username: String,
    },
    ScramKeysPending {
        username: String,
        client_first_bare: String,
        /// What the client's `c=` must decode to: the GS2 header, and the
        /// channel-binding data when it asked for binding.
        binding: Vec<u8>,
        client_nonce: String,
    },
    ScramFinal {
        username: String,
        auth_prefix: String,
        nonce: String,
        binding: Vec<u8>,
        keys: Option<ScramKeys>,
    },
    ScramAck {
        username: String,
    },
    Done,
}

/// One SASL exchange on the server side.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    state: State,
    server_nonce: String,
    /// SCRAM: the user named in the first message (for the failure record).
    user: Option<String>,
    /// The connection's `tls-exporter` data (None: no channel binding here).
    channel_binding: Option<Vec<u8>>,
}

impl Exchange {
    /// An exchange on a connection whose channel-binding data (RFC 9266
    /// `tls-exporter`) is `channel_binding`, if it has any.
    pub fn new(mechanism: Mechanism, channel_binding: Option<&[u8]>) -> Exchange {
        let mut nonce = [0u8; 18];
        rand::fill(&mut nonce[..]);
        Exchange::with_nonce(mechanism, &B64.encode(nonce), channel_binding)
    }

    /// With a chosen server nonce (tests use the RFC 7677 example).
    pub fn with_nonce(
        mechanism: Mechanism,
        server_nonce: &str,
        channel_binding: Option<&[u8]>,
    ) -> Exchange {
        Exchange {
            mechanism,
            state: State::Start,
            server_nonce: server_nonce.to_string(),
            user: None,
            channel_binding: channel_binding.map(<[u8]>::to_vec),
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The user a SCRAM exchange named, once known.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Feed the client's next response, already base64-decoded. `None` at the start
    /// means the client sent no initial response (RFC 4954 §4, RFC 4959).
    pub fn respond(&mut self, response: Option<&[u8]>) -> Step {
        let step = self.advance(response);
        if matches!(
            step,
            Step::Failed(_) | Step::Success { .. } | Step::CheckPassword { .. }
        ) {
            self.state = State::Done;
        }
        step
    }

    fn advance(&mut self, response: Option<&[u8]>) -> Step {
        if response.is_some_and(|r| r.len() > MAX_RESPONSE) {
            return Step::Failed(SaslError::Malformed);
        }
        match (std::mem::replace(&mut self.state, State::Done), response) {
            (State::Start, None) if self.mechanism == Mechanism::Login => {
                self.state = State::LoginUser;
                Step::Challenge(b"Username:".to_vec())
            }
            (State::Start, None) => {
                self.state = State::Start;
                Step::Challenge(Vec::new())
            }
            (State::Start, Some(r)) => match self.mechanism {
                Mechanism::Plain => plain(r),
                Mechanism::Login => self.login_user(r),
                Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => self.scram_client_first(r),
            },
            (State::LoginUser, Some(r)) => self.login_user(r),
            (State::LoginPassword { username }, Some(r)) => match String::from_utf8(r.to_vec()) {
                Ok(password) => Step::CheckPassword { username, password },
                Err(_) => Step::Failed(SaslError::Malformed),
            },
            (
                State::ScramFinal {
                    username,
                    auth_prefix,
                    nonce,
                    binding,
                    keys,
                },
                Some(r),
            ) => self.scram_client_final(r, username, &auth_prefix, &nonce, &binding, keys),
            (State::ScramAck { username }, Some(_)) => Step::Success { username },
            _ => Step::Failed(SaslError::Malformed),
        }
    }

    fn login_user(&mut self, r: &[u8]) -> Step {
        match String::from_utf8(r.to_vec()) {
            Ok(username) if !username.is_empty() => {
                self.state = State::LoginPassword { username };
                Step::Challenge(b"Password:".to_vec())
            }
            _ => Step::Failed(SaslError::Malformed),
        }
    }

    /// RFC 5802 §7: client-first-message = gs2-header client-first-message-bare.
    fn scram_client_first(&mut self, r: &[u8]) -> Step {
        let Ok(text) = std::str::from_utf8(r) else {
            return Step::Failed(SaslError::Malformed);
        };
        let mut parts = text.splitn(3, ',');
        let (Some(cbind), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Step::Failed(SaslError::Malformed);
        };
        let gs2_header = format!("{cbind},{authzid},");
        let Some(binding) = self.binding(cbind, gs2_header.as_bytes()) else {
            return Step::Failed(SaslError::Malformed);
        };
        let mut username = None;
        let mut client_nonce = None;
        for (i, attr) in bare.split(',').enumerate() {
            match (i, attr.split_at_checked(2)) {
                (0, Some(("n=", v))) => username = decode_saslname(v),
                (1, Some(("r=", v))) if !v.is_empty() => client_nonce = Some(v.to_string()),
                // RFC 5802 §5.1: a mandatory extension ("m=") we do not know must fail.
                (_, Some(("m=", _))) => return Step::Failed(SaslError::Malformed),
                (i, _) if i >= 2 => {}
                _ => return Step::Failed(SaslError::Malformed),
            }
        }
        let (Some(username), Some(client_nonce)) = (username, client_nonce) else {
            return Step::Failed(SaslError::Malformed);
        };
        if let Some(a) = authzid.strip_prefix("a=") {
            if decode_saslname(a).as_deref() != Some(username.as_str()) {
                return Step::Failed(SaslError::AuthzidMismatch);
            }
        } else if !authzid.is_empty() {
            return Step::Failed(SaslError::Malformed);
        }
        self.user = Some(username.clone());
        self.state = State::ScramKeysPending {
            username: username.clone(),
            client_first_bare: bare.to_string(),
            binding,
            client_nonce,
        };
        Step::NeedScramKeys { username }
    }

    /// RFC 5802 §6 and §7 `gs2-cbind-flag`: what `c=` must carry, or None
    /// when the flag does not fit the mechanism and the connection.
    /// - `n`: the client does not bind; fine for SCRAM-SHA-256.
    /// - `y`: the client could bind but thinks we cannot. If we offered
    ///   -PLUS, someone removed it on the way: fail (downgrade protection).
    /// - `p=tls-exporter`: binding, for SCRAM-SHA-256-PLUS only.
    fn binding(&self, cbind: &str, gs2_header: &[u8]) -> Option<Vec<u8>> {
        let plus = self.mechanism == Mechanism::ScramSha256Plus;
        match (cbind, plus, &self.channel_binding) {
            ("n", false, _) | ("y", false, None) => Some(gs2_header.to_vec()),
            (p, true, Some(data)) if p.strip_prefix("p=") == Some(CHANNEL_BINDING) => {
                Some([gs2_header, data].concat())
            }
            _ => None,
        }
    }

    /// Continue a SCRAM exchange with the user's keys (None: no such user; the exchange
    /// then goes on with made-up keys and fails at the proof, so the reply does not tell
    /// whether the user exists: hardening.md C-AU3).
    pub fn scram_keys(&mut self, keys: Option<ScramKeys>, fake_salt: [u8; 16]) -> Step {
        let State::ScramKeysPending {
            username,
            client_first_bare,
            binding,
            client_nonce,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Step::Failed(SaslError::Malformed);
        };
        let (salt, iterations) = match &keys {
            Some(k) => (k.salt.clone(), k.iterations),
            None => (fake_salt.to_vec(), crate::credentials::SCRAM_ITERATIONS),
        };
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        let auth_prefix = format!("{client_first_bare},{server_first},");
        self.state = State::ScramFinal {
            username,
            auth_prefix,
            nonce,
            binding,
            keys,
        };
        Step::Challenge(server_first.into_bytes())
    }

    /// RFC 5802 §3: verify ClientProof against StoredKey, answer with ServerSignature.
    fn scram_client_final(
        &mut self,
        r: &[u8],
        username: String,
        auth_prefix: &str,
        nonce: &str,
        binding: &[u8],
        keys: Option<ScramKeys>,
    ) -> Step {
        let Ok(text) = std::str::from_utf8(r) else {
            return Step::Failed(SaslError::Malformed);
        };
        let Some((without_proof, proof)) = text.rsplit_once(",p=") else {
            return Step::Failed(SaslError::Malformed);
        };
        let mut attrs = without_proof.split(',');
        let channel_ok = attrs
            .next()
            .and_then(|c| c.strip_prefix("c="))
            .and_then(|c| B64.decode(c).ok())
            .is_some_and(|c| bool::from(c.as_slice().ct_eq(binding)));
        let nonce_ok = attrs.next().and_then(|n| n.strip_prefix("r=")) == Some(nonce);
        let Ok(proof) = B64.decode(proof) else {
            return Step::Failed(SaslError::Malformed);
        };
        if !channel_ok || !nonce_ok || proof.len() != 32 {
            return Step::Failed(SaslError::Malformed);
        }
        let Some(keys) = keys else {
            return Step::Failed(SaslError::Failed);
        };
        let auth_message = format!("{auth_prefix}{without_proof}");
        let client_signature = hmac(&keys.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let stored: [u8; 32] = Sha256::digest(&client_key).into();
        if !bool::from(stored.ct_eq(&keys.stored_key)) {
            return Step::Failed(SaslError::Failed);
        }
        let server_signature = hmac(&keys.server_key, auth_message.as_bytes());
        self.state = State::ScramAck { username };
        Step::Challenge(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd.
fn plain(r: &[u8]) -> Step {
    let mut parts = r.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Step::Failed(SaslError::Malformed);
    };
    let (Ok(authzid), Ok(username), Ok(password)) = (
        std::str::from_utf8(authzid),
        std::str::from_utf8(authcid),
        std::str::from_utf8(password),
    ) else {
        return Step::Failed(SaslError::Malformed);
    };
    if username.is_empty() {
        return Step::Failed(SaslError::Malformed);
    }
    // Tern does not let one user act for another: an authzid must name the same user.
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(username) {
        return Step::Failed(SaslError::AuthzidMismatch);
    }
    Step::CheckPassword {
        username: username.to_string(),
        password: password.to_string(),
    }
}

/// RFC 5802 §5.1: saslname escapes ',' as "=2C" and '=' as "=3D"; any other '=' is an error.
fn decode_saslname(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i..i + 3)?;
        out.push(match code {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_forms() {
        let mut e = Exchange::new(Mechanism::Plain, None);
        assert_eq!(e.respond(None), Step::Challenge(vec![]));
        assert_eq!(
            e.respond(Some(b"\0alice@a.test\0pw")),
            Step::CheckPassword {
                username: "alice@a.test".into(),
                password: "pw".into()
            }
        );
        let mut e = Exchange::new(Mechanism::Plain, None);
        assert_eq!(
            e.respond(Some(b"bob\0alice\0pw")),
            Step::Failed(SaslError::AuthzidMismatch)
        );
        for bad in [&b"alice\0pw"[..], b"\0\0pw", b"a\0b\0c\0d"] {
            assert_eq!(
                Exchange::new(Mechanism::Plain, None).respond(Some(bad)),
                Step::Failed(SaslError::Malformed)
            );
        }
        let mut e = Exchange::new(Mechanism::Plain, None);
        assert_eq!(
            e.respond(Some(&vec![b'a'; MAX_RESPONSE + 1])),
            Step::Failed(SaslError::Malformed)
        );
    }

    #[test]
    fn login_forms() {
        let mut e = Exchange::new(Mechanism::Login, None);
        assert_eq!(e.respond(None), Step::Challenge(b"Username:".to_vec()));
        assert_eq!(
            e.respond(Some(b"alice")),
            Step::Challenge(b"Password:".to_vec())
        );
        assert_eq!(
            e.respond(Some(b"pw")),
            Step::CheckPassword {
                username: "alice".into(),
                password: "pw".into()
            }
        );
        let mut e = Exchange::new(Mechanism::Login, None);
        assert_eq!(
            e.respond(Some(b"alice")),
            Step::Challenge(b"Password:".to_vec())
        );
    }

    /// The example exchange of RFC 7677 §3.
    #[test]
    fn scram_sha256_rfc7677_example() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let keys = ScramKeys::derive("pencil", &salt, 4096);
        let mut e = Exchange::with_nonce(
            Mechanism::ScramSha256,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            None,
        );
        assert_eq!(
            e.respond(Some(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")),
            Step::NeedScramKeys {
                username: "user".into()
            }
        );
        let first = e.scram_keys(Some(keys), [0; 16]);
        assert_eq!(first, Step::Challenge(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec()));
        let fin = e.respond(Some(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
        assert_eq!(
            fin,
            Step::Challenge(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec())
        );
        assert_eq!(
            e.respond(Some(b"")),
            Step::Success {
                username: "user".into()
            }
        );
    }

    #[test]
    fn scram_wrong_proof_and_unknown_user_fail_alike() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let final_msg = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for keys in [Some(ScramKeys::derive("pencil", &salt, 4096)), None] {
            let mut e = Exchange::with_nonce(
                Mechanism::ScramSha256,
                "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                None,
            );
            e.respond(Some(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
            assert!(matches!(e.scram_keys(keys, [7; 16]), Step::Challenge(_)));
            assert_eq!(e.respond(Some(final_msg)), Step::Failed(SaslError::Failed));
        }
    }

    #[test]
    fn scram_refuses_channel_binding_and_bad_messages() {
        for bad in [
            &b"p=tls-unique,,n=user,r=abc"[..],
            b"n,,m=ext,n=user,r=abc",
            b"n,,r=abc",
            b"n,,n=us=er,r=abc",
            b"n,a=other,n=user,r=x",
        ] {
            let mut e = Exchange::new(Mechanism::ScramSha256, None);
            assert!(
                matches!(e.respond(Some(bad)), Step::Failed(_)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
    }

    /// SCRAM-SHA-256-PLUS: the proof covers the channel-binding data, so a
    /// client bound to another TLS connection (a man in the middle) fails;
    /// "y" on a connection that offers -PLUS is a downgrade and fails.
    #[test]
    fn scram_channel_binding() {
        let salt = [9u8; 16];
        let keys = ScramKeys::derive("pencil", &salt, 4096);
        let cb = [0x5au8; 32];
        let run = |mechanism, client_cb: &[u8], gs2: &str, server_cb: Option<&[u8]>| {
            let mut e = Exchange::with_nonce(mechanism, "srv", server_cb);
            let first_bare = "n=user,r=cli";
            let step = e.respond(Some(format!("{gs2}{first_bare}").as_bytes()));
            if !matches!(step, Step::NeedScramKeys { .. }) {
                return step;
            }
            let Step::Challenge(server_first) = e.scram_keys(Some(keys.clone()), [0; 16]) else {
                panic!("no server-first");
            };
            let server_first = String::from_utf8(server_first).unwrap();
            let c = B64.encode([gs2.as_bytes(), client_cb].concat());
            let without_proof = format!("c={c},r=clisrv");
            let auth = format!("{first_bare},{server_first},{without_proof}");
            let mut salted = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(b"pencil", &salt, 4096, &mut salted);
            let client_key = hmac(&salted, b"Client Key");
            let stored: [u8; 32] = Sha256::digest(client_key).into();
            let sig = hmac(&stored, auth.as_bytes());
            let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
            e.respond(Some(
                format!("{without_proof},p={}", B64.encode(proof)).as_bytes(),
            ))
        };
        let plus = Mechanism::ScramSha256Plus;
        let ok = run(plus, &cb, "p=tls-exporter,,", Some(&cb));
        assert!(
            matches!(ok, Step::Challenge(ref v) if v.starts_with(b"v=")),
            "{ok:?}"
        );
        let mitm = run(plus, &[0x11; 32], "p=tls-exporter,,", Some(&cb));
        assert_eq!(mitm, Step::Failed(SaslError::Malformed));
        assert_eq!(
            run(plus, b"", "p=tls-unique,,", Some(&cb)),
            Step::Failed(SaslError::Malformed)
        );
        assert_eq!(
            run(plus, b"", "n,,", Some(&cb)),
            Step::Failed(SaslError::Malformed)
        );
        let plain = Mechanism::ScramSha256;
        assert_eq!(
            run(plain, b"", "y,,", Some(&cb)),
            Step::Failed(SaslError::Malformed),
            "downgrade"
        );
        assert!(matches!(run(plain, b"", "y,,", None), Step::Challenge(_)));
        assert!(matches!(
            run(plain, b"", "n,,", Some(&cb)),
            Step::Challenge(_)
        ));
        assert_eq!(Mechanism::offered(false).count(), 3);
        assert_eq!(Mechanism::parse("scram-sha-256-plus", false), None);
        assert_eq!(Mechanism::parse("SCRAM-SHA-256-PLUS", true), Some(plus));
    }
}
