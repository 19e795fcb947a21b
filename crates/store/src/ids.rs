//! The store's ids, each a type of its own: a mailbox id cannot be passed
//! where an account id is expected, and neither is a bare number. The
//! number inside is the backend's row id, stable for the object's life and
//! never reused; outside the store it is opaque except where a protocol
//! shows it (JMAP ids are built from it, see `object_id`).

use std::fmt;

macro_rules! store_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

store_id!(
    /// A domain Tern receives mail for.
    DomainId
);
store_id!(
    /// An account (one address that signs in and has mailboxes).
    AccountId
);
store_id!(
    /// A mailbox of an account.
    MailboxId
);
