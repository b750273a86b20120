//! DomainError: what an operation can fail with; its text is minimega's where scripts depend on it.

/// An operation's failure. The variant picks the HTTP status (in `http`, in one
/// function); the message is what the CLI prints after `E: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Malformed input: a bad value, name, path or command.
    #[error("{0}")]
    Invalid(String),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with current state (duplicate name, wrong VM state).
    #[error("{0}")]
    Conflict(String),
    /// A host program or resource failed.
    #[error("{0}")]
    Host(String),
    /// The caller may not run this (the session's gate refused it).
    #[error("{0}")]
    Forbidden(String),
}

impl DomainError {
    /// An `Invalid` error from anything printable.
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        DomainError::Invalid(msg.to_string())
    }
}

/// Result of an operation.
pub type DomainResult<T> = Result<T, DomainError>;
