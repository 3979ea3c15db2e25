//! Wire protocol v1 of progress-hub.
