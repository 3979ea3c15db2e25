//! The dashboard's static files (`web/` at the workspace root), embedded in
//! the binary with `rust-embed` and served by [`serve`].
//!
//! Every build, debug included (`debug-embed`), carries the files and their
//! SHA-256 hashes, so a binary never depends on where its source tree was:
//! a debug binary reading `web/` from the path it was compiled at served 404s
//! once that checkout moved (the shared build cache made it likely). Cargo
//! tracks the embedded files, so an edit to `web/` rebuilds.
//!
//! Every response carries a strict Content-Security-Policy ([`CSP`]) and the
//! usual hardening headers. Files are answered with a strong `ETag` (the
//! content hash) and `Cache-Control: no-cache`, so browsers revalidate and get
//! `304 Not Modified` while the file is unchanged.
//!
//! API boundary: this crate knows nothing about the hub. The server mounts
//! [`serve`] as the router's fallback for `GET`/`HEAD`.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use rust_embed::RustEmbed;

/// The Content-Security-Policy sent with every response: scripts, styles and
/// connections only from the hub's own origin (plus WebSocket schemes), no
/// inline code, no framing.
pub const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

#[derive(RustEmbed)]
#[folder = "../../web/"]
#[exclude = "*.md"]
struct Assets;

/// Serves one dashboard file for `uri`: `/` is `index.html`, a path ending in
/// `/` its `index.html`; an unknown path is a 404 with the hub's JSON error
/// body (`NOT_FOUND`). `If-None-Match` matching the file's ETag gives 304.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let Some(path) = asset_path(uri.path()) else {
        return not_found(uri.path());
    };
    let Some(file) = Assets::get(&path) else {
        return not_found(uri.path());
    };
    let etag = etag_of(&file.metadata.sha256_hash());
    let builder = with_security_headers(Response::builder())
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "no-cache");
    if if_none_match(&headers, &etag) {
        return finish(builder.status(StatusCode::NOT_MODIFIED), Body::empty());
    }
    let builder = builder
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type(&path))
        .header(header::CONTENT_LENGTH, file.data.len());
    finish(builder, Body::from(file.data.into_owned()))
}

/// The embedded file name for a request path, or `None` for a path that can
/// never name a file (dot segments, empty segments, backslashes, NULs).
fn asset_path(request_path: &str) -> Option<String> {
    let trimmed = request_path.strip_prefix('/').unwrap_or(request_path);
    let mut path = trimmed.to_owned();
    if path.is_empty() || path.ends_with('/') {
        path.push_str("index.html");
    }
    let bad_segment = path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == ".." || s.contains(['\\', '\0']));
    (!bad_segment).then_some(path)
}

/// A strong ETag from the content hash (128 bits of it are plenty).
fn etag_of(hash: &[u8; 32]) -> String {
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &hash[..16] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

/// Whether `If-None-Match` matches `etag` (RFC 9110 weak comparison, as the
/// RFC requires for this header: a `W/` prefix is ignored; `*` matches).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// Content-Type by extension, with `charset=utf-8` for text formats.
fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.subtype().as_str(),
            "javascript" | "json" | "manifest+json"
        )
        || mime.suffix() == Some(mime_guess::mime::XML);
    if textual && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

fn with_security_headers(builder: axum::http::response::Builder) -> axum::http::response::Builder {
    builder
        .header(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        )
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_FRAME_OPTIONS, "DENY")
}

fn not_found(path: &str) -> Response {
    let body = format!(
        r#"{{"error":{{"code":"NOT_FOUND","message":{},"details":null,"data":null}}}}"#,
        json_string(&format!("no such page: {path}"))
    );
    let builder = with_security_headers(Response::builder())
        .status(StatusCode::NOT_FOUND)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache");
    finish(builder, Body::from(body))
}

/// A JSON string literal (quotes, backslashes and control characters escaped).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn finish(builder: axum::http::response::Builder, body: Body) -> Response {
    // Every header above is a valid static or ASCII value, so this cannot fail;
    // a plain 500 keeps the signature infallible all the same.
    builder.body(body).unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

#[cfg(test)]
mod tests;
