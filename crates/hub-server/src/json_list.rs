//! JSON responses of HTTP listings, streamed in chunks of about
//! [`CHUNK_BYTES`] as the connection takes them.
//!
//! - [`response`]: a list of already-encoded events (`head` +
//!   `[e1,e2,...]` + `tail`). The response holds pointers to the shared
//!   encodings the retained log holds anyway while it is written, never
//!   one string copying them all (an operation's retained history can be
//!   tens of megabytes, and many readers may ask for it at once), so an
//!   unread one costs little beyond its pointers.
//! - [`encoded`]: one document encoded whole (an operations listing, whose
//!   states the hub does not keep encoded), sent in slices of it without a
//!   copy. It is held until the last slice is taken or the response is
//!   dropped, which is what `max_snapshot_bytes` counts (see
//!   `engine/snapshots.rs`).

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;

/// Bytes copied into one chunk of the body before it is handed to the
/// connection (the last item may make it larger).
pub const CHUNK_BYTES: usize = 64 * 1024;

/// A 200 `application/json` response `head` `[items joined by ","]` `tail`,
/// with its `Content-Length`.
pub fn response(head: String, items: Vec<Arc<str>>, tail: &'static str) -> Response {
    let len = head.len()
        + 2
        + items.iter().map(|i| i.len()).sum::<usize>()
        + items.len().saturating_sub(1)
        + tail.len();
    let chunks = Chunks {
        head: Some(head),
        items: items.into_iter(),
        first: true,
        tail: Some(tail),
    };
    let body = Body::from_stream(futures_util::stream::iter(
        chunks.map(Ok::<_, std::convert::Infallible>),
    ));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response()
}

/// A 200 `application/json` response of `doc`, with its `Content-Length`,
/// streamed in slices of [`CHUNK_BYTES`] that share `doc` (no copy): `doc`
/// is released once the last slice is taken, or the response dropped.
pub fn encoded(doc: Arc<str>) -> Response {
    let len = doc.len();
    let whole = Bytes::from_owner(Encoded(doc));
    let slices = (0..len).step_by(CHUNK_BYTES).map(move |at| {
        Ok::<_, std::convert::Infallible>(whole.slice(at..len.min(at + CHUNK_BYTES)))
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(futures_util::stream::iter(slices)),
    )
        .into_response()
}

/// A shared encoding as the owner of [`Bytes`].
struct Encoded(Arc<str>);

impl AsRef<[u8]> for Encoded {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The body's chunks, made as the connection asks for them.
struct Chunks {
    head: Option<String>,
    items: std::vec::IntoIter<Arc<str>>,
    first: bool,
    tail: Option<&'static str>,
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let tail = self.tail?;
        let mut out = String::with_capacity(CHUNK_BYTES + 1024);
        if let Some(head) = self.head.take() {
            out.push_str(&head);
            out.push('[');
        }
        while out.len() < CHUNK_BYTES {
            match self.items.next() {
                Some(item) => {
                    if !std::mem::take(&mut self.first) {
                        out.push(',');
                    }
                    out.push_str(&item);
                }
                None => {
                    out.push(']');
                    out.push_str(tail);
                    self.tail = None;
                    break;
                }
            }
        }
        Some(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(head: &str, items: &[String], tail: &'static str) -> (Vec<Bytes>, String) {
        let chunks: Vec<Bytes> = Chunks {
            head: Some(head.to_owned()),
            items: items
                .iter()
                .map(|s| Arc::from(s.as_str()))
                .collect::<Vec<_>>()
                .into_iter(),
            first: true,
            tail: Some(tail),
        }
        .collect();
        let text = chunks
            .iter()
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        (chunks, text)
    }

    #[test]
    fn the_chunks_make_the_joined_document() {
        for n in [0, 1, 2, 5000] {
            let items: Vec<String> = (0..n).map(|i| format!("{{\"offset\":{i}}}")).collect();
            let (chunks, text) = whole("{\"operation\":{},\"events\":", &items, "}");
            assert_eq!(
                text,
                format!("{{\"operation\":{{}},\"events\":[{}]}}", items.join(","))
            );
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["events"].as_array().unwrap().len(), n);
            assert!(
                chunks.iter().all(|c| c.len() < CHUNK_BYTES + 64),
                "chunks stay near the limit"
            );
            if n == 5000 {
                assert!(chunks.len() > 1, "a long list is more than one chunk");
            }
        }
    }

    #[tokio::test]
    async fn an_encoded_document_is_sent_in_slices_and_then_released() {
        for n in [0, 1, CHUNK_BYTES, 3 * CHUNK_BYTES + 7] {
            let doc: Arc<str> = Arc::from("x".repeat(n).as_str());
            let held = Arc::downgrade(&doc);
            let r = encoded(doc);
            assert_eq!(r.headers()[header::CONTENT_LENGTH], n.to_string());
            assert_eq!(held.strong_count(), 1, "held by the unsent response");
            let body = axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(body.len(), n);
            assert!(body.iter().all(|&b| b == b'x'));
            drop(body);
            assert_eq!(held.strong_count(), 0, "released once sent");
        }
        let doc: Arc<str> = Arc::from("y".repeat(100).as_str());
        let held = Arc::downgrade(&doc);
        drop(encoded(doc));
        assert_eq!(held.strong_count(), 0, "released when dropped unsent");
    }

    #[tokio::test]
    async fn the_length_header_matches_the_body() {
        let items: Vec<Arc<str>> = (0..3000)
            .map(|i| Arc::from(format!("{{\"offset\":{i}}}").as_str()))
            .collect();
        let r = response("{\"events\":".into(), items, "}");
        let declared: usize = r.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body.len(), declared);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["events"].as_array().unwrap().len(), 3000);
    }
}
