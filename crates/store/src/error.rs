//! The one error type of the store. Protocol crates map it to their replies:
//! `Full` to "insufficient storage" (452 4.3.1), `Busy`/`Io` to "try again"
//! (451 4.3.0), the rest to the admin's error line.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("{0}")]
    InUse(String),
    #[error("invalid: {0}")]
    Invalid(String),
    /// The disk is full (hardening.md C-FT5).
    #[error("insufficient storage")]
    Full,
    /// The database stayed locked past the busy timeout (C-FT7).
    #[error("store busy")]
    Busy,
    /// An I/O or database failure (C-FT6); the text is for logs.
    #[error("store failure: {0}")]
    Io(String),
}

impl StoreError {
    /// Whether the operation may succeed if tried again later.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            StoreError::Full | StoreError::Busy | StoreError::Io(_)
        )
    }
}

impl From<std::io::Error> for StoreError {
    /// A full disk (ENOSPC, EDQUOT) is `Full`; anything else `Io`.
    fn from(e: std::io::Error) -> StoreError {
        match e.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => StoreError::Full,
            _ => StoreError::Io(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;
