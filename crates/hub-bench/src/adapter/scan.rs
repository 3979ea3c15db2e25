//! Minimal scanning of received text: split a hub frame into its
//! `\n`-separated messages, recognise a message by its leading `"type"`,
//! find a number after a key, find the send stamp. No JSON parsing, so the
//! generator stays cheap per message.

/// The key the producers put their send stamp under: the `message` field
/// carries `t=<nanoseconds since the generator started>`.
pub const STAMP_KEY: &[u8] = b"\"message\":\"t=";

/// Iterates over the messages of a batched frame (split on `\n` with a
/// SIMD search, empty pieces skipped).
pub fn lines(frame: &str) -> impl Iterator<Item = &str> {
    let ends = memchr::memchr_iter(b'\n', frame.as_bytes()).chain(std::iter::once(frame.len()));
    let mut start = 0;
    ends.filter_map(move |end| {
        // `\n` is ASCII, so both bounds are char boundaries.
        let line = frame.get(start..end);
        start = end + 1;
        line.filter(|l| !l.is_empty())
    })
}

/// How many messages a frame holds (its non-empty `\n`-separated pieces).
pub fn count_lines(frame: &str) -> usize {
    lines(frame).count()
}

/// Whether a hub message is of type `ty` (the hub writes `"type"` first).
pub fn has_type(line: &str, ty: &str) -> bool {
    let rest = match line.strip_prefix("{\"type\":\"") {
        Some(r) => r,
        None => return false,
    };
    rest.strip_prefix(ty).is_some_and(|r| r.starts_with('"'))
}

/// The unsigned integer right after the first occurrence of `key` (e.g.
/// `"seq":`), if any.
pub fn number_after(text: &[u8], key: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(text, key)? + key.len();
    parse_u64(&text[at..])
}

/// The send stamp of a message (see [`STAMP_KEY`]), if it carries one.
pub fn stamp(text: &[u8]) -> Option<u64> {
    // The searcher for the key is built once, not for every message.
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(STAMP_KEY));
    let at = FINDER.find(text)? + STAMP_KEY.len();
    parse_u64(&text[at..])
}

/// Parses the leading decimal digits of `bytes` (None when there are none
/// or they overflow).
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    let mut any = false;
    for &b in bytes {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_batched_messages() {
        assert_eq!(count_lines("{\"a\":1}"), 1);
        assert_eq!(count_lines("{\"a\":1}\n{\"b\":2}\n{\"c\":3}"), 3);
        assert_eq!(count_lines("{\"a\":1}\n\n{\"b\":2}\n"), 2);
        assert_eq!(count_lines(""), 0);
    }

    #[test]
    fn recognises_types() {
        let line = r#"{"type":"progress_update","namespace":"b","offset":7}"#;
        assert!(has_type(line, "progress_update"));
        assert!(!has_type(line, "progress"));
        assert!(!has_type(r#"{"namespace":"b","type":"ack"}"#, "ack"));
        assert!(has_type(r#"{"type":"ack","seq":4}"#, "ack"));
    }

    #[test]
    fn numbers_and_stamps() {
        let ack = br#"{"type":"ack","namespace":"b","operation_id":"p1","seq":42,"offset":99}"#;
        assert_eq!(number_after(ack, b"\"seq\":"), Some(42));
        assert_eq!(number_after(ack, b"\"offset\":"), Some(99));
        assert_eq!(number_after(ack, b"\"missing\":"), None);
        let ev = br#"{"type":"progress_update","seq":3,"progress":3.0,"message":"t=123456789","state":{"message":"t=123456789"}}"#;
        assert_eq!(stamp(ev), Some(123_456_789));
        assert_eq!(stamp(br#"{"message":"t="}"#), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
    }
}
