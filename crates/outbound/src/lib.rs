pub mod client;
pub mod dmarc_reports;
pub mod dsn;
pub mod reply;
pub mod runner;
