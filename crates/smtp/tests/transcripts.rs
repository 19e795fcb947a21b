//! Every SMTP transcript of `tests/transcripts/smtp/`, played in memory against
//! the session state machine (no socket). `crates/tern/tests/smtp_transcripts.rs`
//! plays the same files over TCP against a real `tern serve`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use delivery::{Mda, MdaConfig};
use smtp::{Role, Services, SmtpConfig, SmtpSession};
use testkit::Transcript;
use testkit::fixture;
use testkit::memory::{MemoryWire, conn_info};

async fn play(name: &str, text: &str) -> Result<(), String> {
    let transcript = Transcript::parse(name, text, &fixture::all_vars())?;
    let listener = transcript
        .headers
        .get("listener")
        .map(String::as_str)
        .unwrap_or("smtp");
    let (dir, store, auth) = fixture::world().await;
    // Sender authentication and DNS lists need DNS: tern's MailNet tests
    // cover them; here the pipeline runs its rules and scores.
    let resolver = dns::Resolver::new(&dns::DnsConfig {
        nameservers: vec!["127.0.0.1:9".parse().unwrap()],
        timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .unwrap();
    let checks = antispam::Checks::new(
        antispam::AntispamConfig {
            hostname: fixture::HOST.into(),
            ..Default::default()
        },
        None,
        resolver,
        store.clone(),
        clock::system(),
    );
    let services = Arc::new(Services {
        mda: Arc::new(Mda::new(store.clone(), MdaConfig::default())),
        auth,
        checks: Arc::new(checks),
        signer: None,
        spool: message::spool::Spool::in_dir(&dir.path().join("spool")).unwrap(),
    });
    let role = if listener == "smtp" {
        Role::Mx
    } else {
        Role::Submission
    };
    let mut config = SmtpConfig::new(fixture::HOST, role);
    config.starttls = true;
    config.error_delay = Duration::ZERO;

    let conn = conn_info(listener == "submissions");
    let session = SmtpSession::new(Arc::new(config), services, &conn);
    let mut wire = MemoryWire::new(session, store);
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
