//! Named leases every node sees: which process holds a piece of work that
//! must not run twice at once (a POP3 maildrop, RFC 1939 §8's exclusive
//! access; one period's DMARC or TLS reports) and until when. A lease
//! that ran out is free: a dead holder's work is taken over then.
//!
//! A holder names one process and what in it holds the lease
//! ([`this_node`] and a suffix); a restarted process is a new holder, so
//! it never mistakes a dead predecessor's lease for its own.

use std::sync::OnceLock;

use crate::error::Result;

#[async_trait::async_trait]
pub trait LeaseStore: Send + Sync {
    /// Take lease `name` for `holder` until `until` (Unix seconds) when
    /// nobody holds it, its holder's time ran out by `now`, or `holder`
    /// holds it already (then it is renewed). Whether `holder` holds it.
    async fn take_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool>;
    /// Give lease `name` up, if `holder` holds it.
    async fn drop_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// Drop every lease. Only for a node that knows nobody else shares the
    /// store (one node starting on SQLite): what a crashed run held is free
    /// at once instead of when it runs out.
    async fn clear_leases(&self) -> Result<()>;
}

/// This process among the nodes: its host name, process id and start
/// time.
pub fn this_node() -> &'static str {
    static NODE: OnceLock<String> = OnceLock::new();
    NODE.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "node".into());
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        format!("{host}/{}/{started}", std::process::id())
    })
}
