//! The network side shared by every protocol: listeners with connection
//! limits (`listener`), the loop that runs a session over a socket (`driver`),
//! TLS setup (`tls`), graceful stop (`shutdown`), command lines of bounded
//! length (`line`), and the [`Session`] /
//! [`Protocol`] contract the protocol crates implement (`session`).

pub mod cidr;
pub mod deflate;
mod driver;
mod gauge;
pub mod line;
pub mod listener;
pub mod session;
pub mod shutdown;
mod stream;
pub mod tls;

pub use cidr::Cidr;
pub use gauge::Gauged;
pub use listener::{ConnLimiter, Limits, TlsMode, serve};
pub use session::{ConnInfo, Flow, Protocol, Session, TlsInfo};
pub use shutdown::{Phase, Shutdown};
pub use tokio_rustls::TlsAcceptor;
