//! The rules the core enforces, as numbers (the server fills them from its config).

/// Core limits and timeouts. Durations in milliseconds.
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// Silence from a producer after which its operation is `stalled`.
    pub stall_timeout_ms: u64,
    /// How long finished operations stay in snapshots and history.
    pub finished_retention_ms: u64,
    /// Silence from a producer after which the hub fails its operation as
    /// abandoned (0: never), so crashed jobs do not hold places forever.
    pub abandon_timeout_ms: u64,
    /// Most operations (live + retained finished) one namespace may hold.
    pub max_operations_per_namespace: usize,
    /// How many recent (seq, offset) pairs an operation remembers to re-ack
    /// resends with the offset the original got.
    pub seq_memory: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            stall_timeout_ms: 60_000,
            finished_retention_ms: 3_600_000,
            abandon_timeout_ms: 86_400_000,
            max_operations_per_namespace: 100_000,
            seq_memory: 256,
        }
    }
}
