//! POP3 as a [`net::Protocol`]: one session per connection.

use std::sync::Arc;

use net::{ConnInfo, Protocol};

use crate::session::{Pop3Config, Pop3Session, Services};

pub struct Pop3Protocol {
    config: Arc<Pop3Config>,
    services: Arc<Services>,
}

impl Pop3Protocol {
    pub fn new(config: Pop3Config, services: Arc<Services>) -> Pop3Protocol {
        Pop3Protocol {
            config: Arc::new(config),
            services,
        }
    }
}

impl Protocol for Pop3Protocol {
    type Session = Pop3Session;

    fn name(&self) -> &'static str {
        "pop3"
    }

    fn new_session(&self, conn: &ConnInfo) -> Pop3Session {
        Pop3Session::new(self.config.clone(), self.services.clone(), conn)
    }

    fn busy_reply(&self) -> &'static [u8] {
        b"-ERR [SYS/TEMP] Too many connections; try again later\r\n"
    }

    fn alpn(&self) -> &'static [&'static [u8]] {
        &[b"pop3"]
    }
}
