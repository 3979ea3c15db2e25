//! progress-hub core: everything the hub decides, with no IO.
//!
//! Architecture invariant: nothing in this crate reads a clock, opens a
//! socket or spawns a task. Time is passed in as milliseconds since the Unix
//! epoch (`now: u64`), so every rule here is deterministic and testable.

pub mod budget;
pub mod config;
pub mod eta;
pub mod glob;
pub mod namespace;
pub mod operation;
pub mod outqueue;
pub mod resume;

pub use config::CoreConfig;
pub use namespace::{
    Applied, CancelNotice, CancelRequested, Namespace, Producer, TickOutput, Tombstone,
};
pub use operation::Operation;
pub use resume::{plan_resume, ResumePlan, SnapshotReason};
