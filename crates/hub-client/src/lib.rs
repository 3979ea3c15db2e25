//! hub-client
