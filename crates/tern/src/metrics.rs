//! The server's metrics: every crate records its counters, gauges and
//! histograms through the `metrics` facade; `tern serve` installs the one
//! Prometheus recorder here, and `/metrics` on the http listener renders
//! it (with the queue's gauges read from the store at that moment).

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use store::Store;

/// Buckets of the latency histograms (`*_seconds`): from a fast fsync to a
/// DNS timeout.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the jobs-per-commit histogram (group commit batch sizes).
const JOBS_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// What `/metrics` renders from.
pub struct ServerMetrics {
    handle: PrometheusHandle,
    store: Arc<dyn Store>,
}

impl ServerMetrics {
    /// Install the process's recorder (once: a second server in the same
    /// process gets None and serves no metrics) and start its upkeep.
    pub fn install(store: Arc<dyn Store>) -> Option<Arc<ServerMetrics>> {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_jobs".into()), JOBS_BUCKETS));
        let handle = match builder.and_then(PrometheusBuilder::install_recorder) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: no recorder installed");
                return None;
            }
        };
        describe();
        metrics::gauge!("tern_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        let upkeep = handle.clone();
        tokio::spawn(async move {
            // Histograms are drained into their buckets here, so memory stays
            // bounded between scrapes.
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        Some(Arc::new(ServerMetrics { handle, store }))
    }

    /// The queue's size and age, read from the store now.
    async fn refresh_queue(&self) {
        let Ok(queue) = self.store.queue_list().await else {
            metrics::counter!("tern_metrics_store_errors_total").increment(1);
            return;
        };
        let now = clock::system().now();
        let oldest = queue.iter().map(|q| q.created).min().unwrap_or(now);
        let recipients: usize = queue.iter().map(|q| q.recipients.len()).sum();
        metrics::gauge!("tern_queue_messages").set(queue.len() as f64);
        metrics::gauge!("tern_queue_recipients").set(recipients as f64);
        metrics::gauge!("tern_queue_oldest_age_seconds").set((now - oldest).max(0) as f64);
    }
}

#[async_trait::async_trait]
impl web::MetricsSource for ServerMetrics {
    async fn render(&self) -> String {
        self.refresh_queue().await;
        self.handle.render()
    }
}

/// The HELP text of each metric (docs/operations.md lists them too).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "tern_connections_total",
        "Connections accepted, by listener"
    );
    describe_counter!(
        "tern_connections_refused_total",
        "Connections refused by the connection limits, by listener"
    );
    describe_gauge!("tern_connections_open", "Connections open now, by listener");
    describe_counter!(
        "tern_accept_errors_total",
        "accept() errors (EMFILE...), by listener"
    );
    describe_counter!(
        "tern_smtp_messages_accepted_total",
        "Messages accepted (250 after DATA or BDAT LAST), by role"
    );
    describe_counter!(
        "tern_smtp_recipients_accepted_total",
        "Recipients of accepted messages"
    );
    describe_counter!(
        "tern_smtp_refused_total",
        "SMTP error replies, by role and enhanced status code"
    );
    describe_gauge!("tern_queue_messages", "Messages in the outbound queue");
    describe_gauge!(
        "tern_queue_recipients",
        "Recipients still to deliver in the queue"
    );
    describe_gauge!(
        "tern_queue_oldest_age_seconds",
        Unit::Seconds,
        "Age of the oldest message in the queue"
    );
    describe_counter!(
        "tern_delivery_attempts_total",
        "Delivery attempts from the queue, by TLS: local, none, opportunistic, mta-sts, mta-sts-testing"
    );
    describe_counter!(
        "tern_deliveries_total",
        "Recipient outcomes of queue runs: delivered, deferred, failed"
    );
    describe_histogram!(
        "tern_store_commit_seconds",
        Unit::Seconds,
        "Time of one group commit, BEGIN to durable COMMIT"
    );
    describe_histogram!(
        "tern_store_commit_jobs",
        "Writes carried by one group commit"
    );
    describe_histogram!(
        "tern_dns_lookup_seconds",
        Unit::Seconds,
        "DNS lookups, by record type"
    );
    describe_counter!(
        "tern_dns_failures_total",
        "DNS lookups that failed temporarily (timeout, SERVFAIL), by record type"
    );
    describe_counter!(
        "tern_auth_total",
        "Authentication attempts: success, failure, blocked"
    );
    describe_gauge!("tern_imap_sessions", "IMAP sessions logged in now");
    describe_gauge!("tern_imap_idle", "IMAP sessions in IDLE now");
    describe_counter!(
        "tern_http_requests_total",
        "HTTP requests, by route and status"
    );
}
