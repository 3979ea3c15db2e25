//! Unit tests of [`serve`](crate::serve), called directly (no server).

use super::*;
use axum::body::to_bytes;

async fn get(path: &str, headers: HeaderMap) -> Response {
    serve(path.parse().expect("uri"), headers).await
}

async fn body_of(resp: Response) -> Vec<u8> {
    to_bytes(resp.into_body(), 16 << 20)
        .await
        .expect("body")
        .to_vec()
}

fn header_of(resp: &Response, name: header::HeaderName) -> &str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn root_is_index_html_with_security_headers() {
    let resp = get("/", HeaderMap::new()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header_of(&resp, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_of(&resp, header::CACHE_CONTROL), "no-cache");
    assert_eq!(header_of(&resp, header::CONTENT_SECURITY_POLICY), CSP);
    assert!(CSP.contains("script-src 'self'") && CSP.contains("frame-ancestors 'none'"));
    assert_eq!(header_of(&resp, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(header_of(&resp, header::REFERRER_POLICY), "no-referrer");
    assert_eq!(header_of(&resp, header::X_FRAME_OPTIONS), "DENY");
    let etag = header_of(&resp, header::ETAG).to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    let body = String::from_utf8(body_of(resp).await).expect("utf-8");
    assert!(body.contains("<!doctype html>"), "index.html served");
    assert_eq!(
        get("/index.html", HeaderMap::new())
            .await
            .headers()
            .get(header::ETAG)
            .map(|v| v.to_str().unwrap_or("")),
        Some(etag.as_str()),
        "same file, same ETag"
    );
}

#[tokio::test]
async fn modules_and_styles_have_their_content_types() {
    let js = get("/client.js", HeaderMap::new()).await;
    assert_eq!(js.status(), StatusCode::OK);
    let ct = header_of(&js, header::CONTENT_TYPE);
    assert!(
        ct.contains("javascript") && ct.ends_with("charset=utf-8"),
        "{ct}"
    );
    let css = get("/style.css", HeaderMap::new()).await;
    assert_eq!(
        header_of(&css, header::CONTENT_TYPE),
        "text/css; charset=utf-8"
    );
    assert_ne!(header_of(&js, header::ETAG), header_of(&css, header::ETAG));
}

#[tokio::test]
async fn if_none_match_gives_304_without_body() {
    let etag = get("/app.js", HeaderMap::new()).await.headers()[header::ETAG].clone();
    for value in [
        etag.to_str().expect("ascii").to_owned(),
        format!("\"x\", W/{}", etag.to_str().expect("ascii")),
        "*".to_owned(),
    ] {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, value.parse().expect("header"));
        let resp = get("/app.js", h).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{value}");
        assert_eq!(resp.headers()[header::ETAG], etag);
        assert_eq!(header_of(&resp, header::CONTENT_SECURITY_POLICY), CSP);
        assert!(body_of(resp).await.is_empty());
    }
    let mut h = HeaderMap::new();
    h.insert(header::IF_NONE_MATCH, "\"stale\"".parse().expect("header"));
    assert_eq!(get("/app.js", h).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_paths_are_404_json() {
    for path in [
        "/nope.js",
        "/../Cargo.toml",
        "/a//b",
        "/./index.html",
        "/dir/",
        "/%2e%2e/Cargo.toml",
    ] {
        let resp = get(path, HeaderMap::new()).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header_of(&resp, header::CONTENT_TYPE), "application/json");
        assert_eq!(header_of(&resp, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        let body = String::from_utf8(body_of(resp).await).expect("utf-8");
        assert!(
            body.starts_with(r#"{"error":{"code":"NOT_FOUND","message":""#)
                && body.ends_with(r#"","details":null,"data":null}}"#),
            "{body}"
        );
    }
}

#[test]
fn helpers() {
    assert_eq!(asset_path("/").as_deref(), Some("index.html"));
    assert_eq!(asset_path("/a/").as_deref(), Some("a/index.html"));
    assert_eq!(asset_path("/a/b.js").as_deref(), Some("a/b.js"));
    assert_eq!(asset_path("/a/../b"), None);
    assert_eq!(asset_path("/a\\b"), None);
    assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    assert_eq!(content_type("x.png"), "image/png");
    assert_eq!(content_type("x.svg"), "image/svg+xml; charset=utf-8");
    assert_eq!(content_type("x.json"), "application/json; charset=utf-8");
}
