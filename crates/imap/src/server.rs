//! IMAP as a [`net::Protocol`]: one session per connection.

use std::sync::Arc;

use net::{ConnInfo, Protocol};

use crate::session::{ImapConfig, ImapSession, Services};

pub struct ImapProtocol {
    config: Arc<ImapConfig>,
    services: Arc<Services>,
}

impl ImapProtocol {
    pub fn new(config: ImapConfig, services: Arc<Services>) -> ImapProtocol {
        ImapProtocol {
            config: Arc::new(config),
            services,
        }
    }
}

impl Protocol for ImapProtocol {
    type Session = ImapSession;

    fn name(&self) -> &'static str {
        "imap"
    }

    fn new_session(&self, conn: &ConnInfo) -> ImapSession {
        ImapSession::new(self.config.clone(), self.services.clone(), conn)
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"* BYE [UNAVAILABLE] Too many connections; try again later\r\n"
    }

    fn alpn(&self) -> &'static [&'static [u8]] {
        &[b"imap"]
    }
}
