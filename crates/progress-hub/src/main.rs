//! progress-hub binary
fn main() {}
