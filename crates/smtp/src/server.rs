//! SMTP as a [`net::Protocol`]: one session per connection.

use std::sync::Arc;

use net::{ConnInfo, Protocol};

use crate::config::{Role, SmtpConfig};
use crate::session::{Services, SmtpSession};

pub struct SmtpProtocol {
    config: Arc<SmtpConfig>,
    services: Arc<Services>,
}

impl SmtpProtocol {
    pub fn new(config: SmtpConfig, services: Arc<Services>) -> SmtpProtocol {
        SmtpProtocol {
            config: Arc::new(config),
            services,
        }
    }
}

impl Protocol for SmtpProtocol {
    type Session = SmtpSession;

    fn name(&self) -> &'static str {
        match self.config.role {
            Role::Mx => "smtp",
            Role::Submission => "submission",
        }
    }

    fn new_session(&self, conn: &ConnInfo) -> SmtpSession {
        SmtpSession::new(self.config.clone(), self.services.clone(), conn)
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"421 4.7.0 Too many connections; try again later\r\n"
    }

    fn alpn(&self) -> &'static [&'static [u8]] {
        &[b"smtp"]
    }
}
