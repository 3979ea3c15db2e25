//! hub-client: the resilient progress-hub client.

pub mod backoff;
pub mod error;
pub mod machine;
pub mod outbox;
pub mod wire;

pub use error::{ClientError, ReportError};
