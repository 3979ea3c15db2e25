//! progress-hub core: everything the hub decides, with no IO.
//!
//! Architecture invariant: nothing in this crate reads a clock, opens a
//! socket or spawns a task. Time is passed in as milliseconds since the Unix
//! epoch (`now: u64`), so every rule here is deterministic and testable.

pub mod eta;
pub mod glob;
pub mod outqueue;
