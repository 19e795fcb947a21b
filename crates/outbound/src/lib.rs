pub mod client;
pub mod dane;
pub mod dmarc_reports;
pub mod reply;
pub mod runner;
pub mod tls_policy;
pub mod tls_reports;
