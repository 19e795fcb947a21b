//! What the in-memory IMAP tests share: a store holding the fixture world
//! in a directory of its own, and the services a session runs on.

use std::sync::Arc;

use imap::Services;
use testkit::fixture;

/// The store (in `dir`, kept by the caller) and the session's services.
pub async fn world() -> (tempfile::TempDir, Arc<dyn store::Store>, Arc<Services>) {
    let (dir, store, auth) = fixture::world().await;
    let services = Arc::new(Services {
        store: store.clone(),
        auth,
        user_ip: Arc::default(),
        index: Arc::default(),
        events: Arc::default(),
        spool: message::spool::Spool::memory(),
    });
    (dir, store, services)
}
