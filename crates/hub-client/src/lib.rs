//! hub-client: the resilient progress-hub client.

pub mod backoff;
pub mod machine;
