//! HTTP on the `http` and `https` listeners: what a mail server answers over
//! the web. Today that is the operator's `/metrics` (Prometheus text format,
//! from `[http] metrics_allow` only) and client autoconfiguration
//! (Thunderbird autoconfig, Microsoft autodiscover, Apple profiles), our
//! MTA-STS policy at `mta-sts.DOMAIN` (RFC 8461), JMAP (RFC 8620, `jmap`:
//! HTTP, WebSocket (RFC 8887) and authentication here, the methods in the `jmap` crate); the
//! webmail comes on the same routes table.
//!
//! [`Web::respond`] is the whole of what a request gets: a pure function of
//! the request, its client address and the store, which owns no socket (so
//! tests call it directly). [`serve`] runs it under hyper on a listener,
//! with the connection limits, TLS and graceful stop every listener shares.

pub mod admin;
pub mod autoconfig;
pub mod eventsource;
pub mod filters;
pub mod jmap;
mod query;
mod routes;
pub mod sanitize;
mod server;
pub mod session;
mod settings;
pub mod webmail;
pub mod websocket;

pub use autoconfig::{ClientService, ServiceKind, ServiceTls};
pub use jmap::JmapRoutes;
/// `%XX` escapes of a URL part (RFC 3986 §2.1) decoded.
pub use query::percent_decode;
pub use routes::{Http01, MetricsSource, Web, WebConfig};
pub use server::serve;
