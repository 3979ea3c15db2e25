//! A JSON response around a list of already-encoded events (`head` +
//! `[e1,e2,...]` + `tail`), streamed in chunks of about
//! [`CHUNK_BYTES`]: the response holds pointers to the shared encodings
//! while it is written, never one string copying them all (an operation's
//! retained history can be tens of megabytes, and many readers may ask
//! for it at once).

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
