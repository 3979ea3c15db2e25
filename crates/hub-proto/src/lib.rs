//! Wire protocol v1 of progress-hub: every message of `PROTOCOL.md` as Rust
//! types, their validation, error codes and WebSocket close codes.
//!
//! API boundary: this crate does no IO and knows nothing of tokio. Decoding
//! is total: any input yields either a valid message or a [`ProtoError`]
//! carrying the code the contract names, never a panic.

pub mod close;
pub mod decode;
pub mod error;
pub mod event;
pub mod fields;
pub mod ids;
pub mod json_object;
pub mod message;
pub mod server;
pub mod state;

pub use close::CloseCode;
pub use decode::{decode_client, decode_http_producer};
pub use error::{Component, ErrorCode, ProtoError, Severity};
pub use event::{Event, EventType};
pub use ids::{validate_namespace, validate_operation_id, DEFAULT_NAMESPACE};
pub use json_object::JsonObject;
pub use message::{ClientMessage, FilterSpec, Position, ProducerBody, ProducerMessage};
pub use server::{Ack, ErrorMessage, ServerMessage};
pub use state::{OperationState, OperationStatus};
