//! Shared by the tern integration tests: a server with the standard test world.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use testkit::fixture::{self, StoreProbe};
use testkit::{TernServer, ephemeral_listeners};

pub const BIN: &str = env!("CARGO_BIN_EXE_tern");

/// Test settings: no deliberate delays, so error paths run fast.
pub const FAST: &str = "[auth]\nfailure_delay = \"0s\"\n[smtp]\nerror_delay = \"0s\"\n";

/// A server with the SMTP listeners and the fixture world (created through the CLI).
pub fn smtp_server(extra: &str) -> TernServer {
    let config = format!(
        "{}{FAST}{extra}",
        ephemeral_listeners(&["smtp", "submission", "submissions"])
    );
    let server = TernServer::start(BIN.as_ref(), fixture::HOST, &config);
    fixture::populate_cli(&server);
    server
}

/// The server's store, opened from the test process as a second writer would.
pub fn probe(server: &TernServer) -> Arc<StoreProbe> {
    let store = store::open(&store::Backend::Sqlite(server.data_dir())).unwrap();
    Arc::new(StoreProbe(store))
}
