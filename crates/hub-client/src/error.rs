//! Errors returned to callers of the reporter and subscriber APIs.

/// Why a reporter call was refused. Calls never fail because the network is
/// down: messages wait in the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The queue is full (the hub has been unreachable for long): the new
    /// operation was not queued. Only starts are refused: the end of an
    /// operation already queued is always taken. Counted in
    /// `ConnectionStats::queue_full`.
    #[error("the outgoing queue is full; the event was not queued")]
    QueueFull,
    /// The operation already finished.
    #[error("the operation has already finished")]
    Finished,
    /// The hub refused the operation for good (`FORBIDDEN`,
    /// `OPERATION_FINISHED`, ...: the code); nothing more of it is sent.
    #[error("the hub refused the operation ({0})")]
    Refused(String),
    /// An argument breaks the protocol's rules (name length, id characters...).
    #[error("invalid report: {0}")]
    Invalid(String),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("invalid hub URL {0:?}: {1}")]
    InvalidUrl(String, String),
    /// A custom CA certificate could not be read.
    #[error("invalid TLS root certificate: {0}")]
    Tls(String),
    /// The background runtime could not be started.
    #[error("cannot start the client runtime: {0}")]
    Runtime(String),
    /// A pattern did not compile.
    #[error("invalid pattern: {0}")]
    Pattern(#[from] regex::Error),
}
