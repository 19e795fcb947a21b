//! Shared by the tern integration tests: a server with the standard test world.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use testkit::fixture::{self, StoreProbe};
use testkit::{TernServer, ephemeral_listeners};

pub const BIN: &str = env!("CARGO_BIN_EXE_tern");

/// Test settings: no deliberate delays, so error paths run fast.
pub const FAST: &str = "[auth]\nfailure_delay = \"0s\"\n[smtp]\nerror_delay = \"0s\"\n";

/// A server with the SMTP listeners and the fixture world (created through the CLI).
/// `extra` is TOML merged over the test defaults.
pub fn smtp_server(extra: &str) -> TernServer {
    let listeners = ephemeral_listeners(&["smtp", "submission", "submissions"]);
    let config = merge_toml(&[&listeners, FAST, extra]);
    let server = TernServer::start(BIN.as_ref(), fixture::HOST, &config);
    fixture::populate_cli(&server);
    server
}

/// A server with every listener built so far and the fixture world.
pub fn full_server(extra: &str) -> TernServer {
    let listeners = ephemeral_listeners(&[
        "smtp",
        "submission",
        "submissions",
        "imap",
        "imaps",
        "pop3",
        "pop3s",
    ]);
    let config = merge_toml(&[&listeners, FAST, extra]);
    let server = TernServer::start(BIN.as_ref(), fixture::HOST, &config);
    fixture::populate_cli(&server);
    server
}

/// The server's store, opened from the test process as a second writer would.
pub fn probe(server: &TernServer) -> Arc<StoreProbe> {
    let store = store::open(&store::Backend::Sqlite(server.data_dir())).unwrap();
    Arc::new(StoreProbe(store))
}

/// Merge TOML documents, later keys winning, tables merged key by key.
pub fn merge_toml(parts: &[&str]) -> String {
    fn merge(into: &mut toml::Table, from: toml::Table) {
        for (k, v) in from {
            match (into.get_mut(&k), v) {
                (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
                (_, v) => {
                    into.insert(k, v);
                }
            }
        }
    }
    let mut out = toml::Table::new();
    for p in parts {
        merge(&mut out, p.parse::<toml::Table>().unwrap());
    }
    // Plain keys first, then tables, so the result reads as a config file.
    let (plain, tables): (Vec<_>, Vec<_>) = out.into_iter().partition(|(_, v)| !v.is_table());
    let mut text = String::new();
    for (k, v) in plain {
        text.push_str(&format!("{k} = {v}\n"));
    }
    for (k, v) in tables {
        text.push_str(&format!("[{k}]\n{}", toml::to_string(&v).unwrap()));
    }
    text
}
