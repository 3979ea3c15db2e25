//! hub-client: the resilient progress-hub client.

mod client;
mod config;
mod connect;
mod driver;
mod error;
mod id;
mod reporter;
mod stats;
mod subscriber;

pub mod backoff;
pub mod machine;
pub mod outbox;
pub mod progress_parse;
pub mod view;
pub mod wire;

pub use client::Client;
pub use config::{ClientConfig, TokenProvider, DEFAULT_URL};
pub use error::{ClientError, ReportError};
pub use id::{new_operation_id, uuid_v7};
pub use machine::{ConnState, StateChange};
pub use progress_parse::{Parsed, ProgressParser};
pub use reporter::{validate_id, OperationHandle, Reporter, StartBuilder};
pub use stats::ConnectionStats;
pub use subscriber::{Subscriber, Subscription};
pub use view::Update;
pub use wire::{Event, Filter, OpStatus, OperationState, Position, ProgressFields};
