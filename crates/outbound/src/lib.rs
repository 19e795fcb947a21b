pub mod client;
pub mod dsn;
pub mod reply;
pub mod runner;
