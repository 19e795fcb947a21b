//! Every SMTP transcript of `tests/transcripts/smtp/`, played in memory against
//! the session state machine (no socket). `crates/tern/tests/smtp_transcripts.rs`
//! plays the same files over TCP against a real `tern serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use delivery::{Mda, MdaConfig};
use net::{ConnInfo, Flow, Session, TlsInfo};
use smtp::{Role, Services, SmtpConfig, SmtpSession};
use store::Store;
use testkit::fixture::{self, inbox_count};
use testkit::{Transcript, Wire};

struct MemoryWire {
    session: SmtpSession,
    input: BytesMut,
    output: VecDeque<u8>,
    closed: bool,
    tls_pending: bool,
    store: Arc<dyn Store>,
}

impl Wire for MemoryWire {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.closed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "closed",
            ));
        }
        self.input.extend_from_slice(bytes);
        let mut out = Vec::new();
        let flow = self.session.receive(&mut self.input, &mut out).await;
        self.output.extend(out);
        match flow {
            Flow::Continue => {}
            Flow::Close => self.closed = true,
            Flow::StartTls => {
                // As the driver does (C-TLS1): what followed the command is dropped.
                self.input.clear();
                self.tls_pending = true;
            }
        }
        Ok(())
    }

    async fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let bytes: Vec<u8> = self.output.iter().copied().collect();
        match bytes.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                self.output.drain(..i + 2);
                Ok(Some(String::from_utf8_lossy(&bytes[..i]).into_owned()))
            }
            None if self.closed => Ok(None),
            None => Err(std::io::Error::other(format!(
                "no reply; pending output {:?}",
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }

    async fn starttls(&mut self) -> std::io::Result<()> {
        if !std::mem::take(&mut self.tls_pending) {
            return Err(std::io::Error::other("the session did not ask for TLS"));
        }
        self.session.tls_started(TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
        });
        Ok(())
    }

    async fn inbox_count(&mut self, address: &str) -> Result<usize, String> {
        inbox_count(&self.store, address).await
    }

    async fn queue_count(&mut self) -> Result<usize, String> {
        self.store
            .queue_list()
            .await
            .map(|q| q.len())
            .map_err(|e| e.to_string())
    }
}

async fn play(name: &str, text: &str) -> Result<(), String> {
    let transcript = Transcript::parse(name, text, &fixture::vars())?;
    let listener = transcript
        .headers
        .get("listener")
        .map(String::as_str)
        .unwrap_or("smtp");
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&store::Backend::Sqlite(dir.path().into())).unwrap();
    fixture::populate_store(&store).await;
    let throttle = auth::ThrottleConfig {
        failure_delay: Duration::ZERO,
        ..Default::default()
    };
    let services = Arc::new(Services {
        mda: Arc::new(Mda::new(store.clone(), MdaConfig::default())),
        auth: Arc::new(auth::Authenticator::new(store.clone(), throttle)),
    });
    let role = if listener == "smtp" {
        Role::Mx
    } else {
        Role::Submission
    };
    let mut config = SmtpConfig::new(fixture::HOST, role);
    config.starttls = true;
    config.error_delay = Duration::ZERO;
    let tls = (listener == "submissions").then(|| TlsInfo {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_256_GCM_SHA384".into(),
    });
    let conn = ConnInfo {
        id: 1,
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        local: SocketAddr::from(([127, 0, 0, 1], 25)),
        tls,
    };
    let mut session = SmtpSession::new(Arc::new(config), services, &conn);
    let mut greeting = Vec::new();
    session.greeting(&mut greeting);
    let mut wire = MemoryWire {
        session,
        input: BytesMut::new(),
        output: greeting.into_iter().collect(),
        closed: false,
        tls_pending: false,
        store,
    };
    transcript.play(&mut wire).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_transcripts_in_memory() {
    testkit::transcript::run_all(
        "smtp",
        1,
        |name, text| async move { play(&name, &text).await },
    )
    .await;
}
