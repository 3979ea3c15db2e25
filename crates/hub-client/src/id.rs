//! Client-chosen operation ids: UUIDv7 (48-bit millisecond timestamp, then
//! random bits), so ids sort by creation time and a resend is idempotent.

use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh UUIDv7 string, e.g. `0190b6f2-3c4d-7e8f-9a0b-1c2d3e4f5a6b`.
pub fn new_operation_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid_v7(ms, rand::random::<u128>())
}

/// The UUIDv7 for `unix_ms` with the given random bits (pure).
pub fn uuid_v7(unix_ms: u64, random: u128) -> String {
    let mut v: u128 = u128::from(unix_ms & 0xFFFF_FFFF_FFFF) << 80;
    v |= 0x7 << 76; // version
    v |= ((random >> 64) & 0xFFF) << 64; // rand_a (12 bits)
    v |= 0b10 << 62; // variant
    v |= random & 0x3FFF_FFFF_FFFF_FFFF; // rand_b (62 bits)
    let h = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_order() {
        let a = uuid_v7(0x0190_b6f2_3c4d, u128::MAX);
        assert_eq!(a, "0190b6f2-3c4d-7fff-bfff-ffffffffffff");
        let b = uuid_v7(1, 0);
        assert_eq!(b, "00000000-0001-7000-8000-000000000000");
        assert!(uuid_v7(2, u128::MAX) < uuid_v7(3, 0), "time-ordered");
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| new_operation_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|i| crate::reporter::validate_id(i).is_ok()));
    }
}
