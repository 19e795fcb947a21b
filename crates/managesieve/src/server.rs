//! ManageSieve as a [`net::Protocol`]: one session per connection.

use std::sync::Arc;

use net::{ConnInfo, Protocol};

use crate::session::{ManageSieveConfig, ManageSieveSession, Services};

pub struct ManageSieveProtocol {
    config: Arc<ManageSieveConfig>,
    services: Arc<Services>,
}

impl ManageSieveProtocol {
    pub fn new(config: ManageSieveConfig, services: Arc<Services>) -> ManageSieveProtocol {
        ManageSieveProtocol {
            config: Arc::new(config),
            services,
        }
    }
}

impl Protocol for ManageSieveProtocol {
    type Session = ManageSieveSession;

    fn name(&self) -> &'static str {
        "managesieve"
    }

    fn new_session(&self, conn: &ConnInfo) -> ManageSieveSession {
        ManageSieveSession::new(self.config.clone(), self.services.clone(), conn)
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"BYE (TRYLATER) \"Too many connections; try again later\"\r\n"
    }

    fn alpn(&self) -> &'static [&'static [u8]] {
        &[b"managesieve"]
    }
}
