//! Event chunks: how the redb engine packs a run of one namespace's events
//! into one value, so that a commit of thousands of events writes a few
//! B-tree entries instead of one per event.
//!
//! A chunk is the concatenation, in ascending offset order, of
//! `offset: u64 LE | length: u32 LE | bytes`. It is stored under the key
//! `(namespace, offset of its last event)`, so the largest key of a
//! namespace is its last offset and a range delete below a floor removes
//! only chunks whose every event is below it.

use std::sync::Arc;

use crate::{EventRecord, StoreError};

/// A chunk is closed once it holds about this many payload bytes; a
/// namespace's events of one commit beyond that go into further chunks.
pub const MAX_CHUNK_BYTES: usize = 1 << 20;

const HEADER: usize = 8 + 4;

/// Splits one namespace's events (ascending offsets) into encoded chunks of
/// about [`MAX_CHUNK_BYTES`] each, returning `(last offset, bytes)` per chunk.
pub fn encode<'a>(events: impl IntoIterator<Item = &'a EventRecord>) -> Vec<(u64, Vec<u8>)> {
    let mut chunks = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut last = 0;
    for e in events {
        if !buf.is_empty() && buf.len() + HEADER + e.data.len() > MAX_CHUNK_BYTES {
            chunks.push((last, std::mem::take(&mut buf)));
        }
        let len = u32::try_from(e.data.len()).expect("an event is smaller than 4 GiB");
        buf.extend_from_slice(&e.offset.to_le_bytes());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&e.data);
        last = e.offset;
    }
    if !buf.is_empty() {
        chunks.push((last, buf));
    }
    chunks
}

/// Decodes a chunk of `namespace` stored under `key` (its last offset),
/// appending its events to `out`. A chunk that is truncated, out of order
/// or whose last offset is not `key` is [`StoreError::Corrupt`].
pub fn decode(
    namespace: &str,
    key: u64,
    mut bytes: &[u8],
    out: &mut Vec<EventRecord>,
) -> Result<(), StoreError> {
    let corrupt = |why: &str| {
        StoreError::Corrupt(format!(
            "event chunk ({namespace:?}, {key}) is damaged: {why}"
        ))
    };
    let mut prev = None;
    while !bytes.is_empty() {
        if bytes.len() < HEADER {
            return Err(corrupt("truncated header"));
        }
        let (head, rest) = bytes.split_at(HEADER);
        let offset = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        if rest.len() < len {
            return Err(corrupt("truncated event"));
        }
        if prev.is_some_and(|p| offset <= p) {
            return Err(corrupt("offsets not increasing"));
        }
        let (data, rest) = rest.split_at(len);
        out.push(EventRecord {
            namespace: namespace.to_owned(),
            offset,
            data: Arc::from(data),
        });
        prev = Some(offset);
        bytes = rest;
    }
    match prev {
        Some(last) if last == key => Ok(()),
        Some(_) => Err(corrupt("its last offset is not its key")),
        None => Err(corrupt("empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(offset: u64, len: usize) -> EventRecord {
        EventRecord {
            namespace: "ns".into(),
            offset,
            data: Arc::from(vec![(offset % 251) as u8; len]),
        }
    }

    proptest! {
        #[test]
        fn round_trips_in_bounded_chunks(
            gaps in proptest::collection::vec((1u64..5, 0usize..300_000), 1..40)
        ) {
            let mut offset = 0;
            let events: Vec<EventRecord> = gaps
                .iter()
                .map(|(gap, len)| { offset += gap; ev(offset, *len) })
                .collect();
            let chunks = encode(&events);
            let mut back = Vec::new();
            let mut prev_key = 0;
            for (key, bytes) in &chunks {
                prop_assert!(*key > prev_key);
                prev_key = *key;
                // Only a single event larger than the cap may exceed it.
                prop_assert!(bytes.len() <= MAX_CHUNK_BYTES || bytes.len() < HEADER + 300_000);
                decode("ns", *key, bytes, &mut back).unwrap();
            }
            prop_assert_eq!(back, events);
        }
    }

    #[test]
    fn damage_is_reported_not_misread() {
        let chunks = encode(&[ev(1, 10), ev(2, 10)]);
        let (key, bytes) = &chunks[0];
        let mut out = Vec::new();
        for (bytes, key, why) in [
            (&bytes[..bytes.len() - 1], *key, "truncated event"),
            (&bytes[..5], *key, "truncated header"),
            (&bytes[..], 7, "last offset is not its key"),
            (&[][..], 2, "empty"),
        ] {
            let err = decode("ns", key, bytes, &mut out).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
            assert!(err.contains("\"ns\""), "{err}");
        }
        let mut swapped = encode(&[ev(2, 1)])[0].1.clone();
        swapped.extend(&encode(&[ev(1, 1)])[0].1);
        let err = decode("ns", 1, &swapped, &mut out).unwrap_err().to_string();
        assert!(err.contains("not increasing"), "{err}");
    }
}
