//! TLS: https and wss on the same port with a certificate generated at test
//! time, and certificate reload on SIGHUP without a restart.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// A self-signed certificate and its key written to a temporary folder
/// (kept while the returned guard lives), and the certificate to trust.
fn cert_files() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    CertificateDer<'static>,
) {
    let t = hub_testkit::TlsFiles::self_signed();
    (t.dir, t.cert, t.key, CertificateDer::from(t.cert_der))
}

fn connector(trust: CertificateDer<'static>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(trust).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(cfg))
}

async fn tls_connect(
    addr: &str,
    trust: CertificateDer<'static>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector(trust)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

#[tokio::test]
async fn https_and_wss_on_one_port_and_reload() {
    let (_dir, cert_path, key_path, der) = cert_files();
    let h = hub()
        .args([
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ])
        .start()
        .await;
    assert!(!h.addr.contains("://"), "listening line has no scheme");

    let mut s = tls_connect(&h.addr, der.clone()).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    let s = tls_connect(&h.addr, der.clone()).await.unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(
        format!("wss://localhost:{}/ws", h.addr.rsplit(':').next().unwrap()),
        s,
    )
    .await
    .unwrap();
    use futures_util::{SinkExt, StreamExt};
    ws.send(hub_testkit::Message::text(r#"{"type":"ping","id":1}"#))
        .await
        .unwrap();
    let m = ws.next().await.unwrap().unwrap();
    assert!(m.to_text().unwrap().contains("pong"));

    // Rotate: new files, SIGHUP; the old connection lives on, new ones get the new certificate.
    let next = hub_testkit::TlsFiles::self_signed();
    std::fs::copy(&next.cert, &cert_path).unwrap();
    std::fs::copy(&next.key, &key_path).unwrap();
    let der2 = CertificateDer::from(next.cert_der.clone());
    h.signal(Signal::SIGHUP);
    eventually("the new certificate", DEADLINE, || {
        let addr = h.addr.clone();
        let der2 = der2.clone();
        async move { tls_connect(&addr, der2).await.ok() }
    })
    .await;
    assert!(
        tls_connect(&h.addr, der).await.is_err(),
        "old certificate no longer served"
    );
    ws.send(hub_testkit::Message::text(r#"{"type":"ping","id":2}"#))
        .await
        .unwrap();
    let m = ws.next().await.unwrap().unwrap();
    assert!(
        m.to_text().unwrap().contains("pong"),
        "open connection survives the reload"
    );
}

#[tokio::test]
async fn bad_certificate_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.pem");
    std::fs::write(&p, "not a certificate").unwrap();
    let (code, err) = hub()
        .args([
            "--tls-cert",
            p.to_str().unwrap(),
            "--tls-key",
            p.to_str().unwrap(),
        ])
        .try_start()
        .await
        .err()
        .expect("refused");
    assert_eq!(code, Some(2));
    assert!(err.contains("tls_cert"), "{err}");
}

#[tokio::test]
async fn a_wss_viewer_that_never_reads_is_dropped() {
    let (_dir, cert_path, key_path, der) = cert_files();
    let h = hub()
        .args(["--tls-cert", cert_path.to_str().unwrap()])
        .args(["--tls-key", key_path.to_str().unwrap()])
        .args(["--idle-timeout", "1s"])
        .start()
        .await;
    // A small receive buffer, a subscription, and then never a read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(h.addr.parse().unwrap()).await.unwrap();
    let tls = connector(der.clone())
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let port = h.addr.rsplit(':').next().unwrap();
    let (mut stuck, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}/ws"), tls)
        .await
        .unwrap();
    use futures_util::SinkExt;
    stuck
        .send(hub_testkit::Message::text(
            r#"{"type":"subscribe","id":1,"namespace":"default"}"#,
        ))
        .await
        .unwrap();
    // The producer also speaks TLS.
    let ptls = tls_connect(&h.addr, der.clone()).await.unwrap();
    let (pws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}/ws"), ptls)
        .await
        .unwrap();
    flood_until_slow_drops(&h, &mut TlsProducer(pws, der), 1).await;
    drop(stuck);
}

/// A producer over wss (and its trust, for scraping `/metrics` over https).
struct TlsProducer(
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    CertificateDer<'static>,
);

impl Publisher for TlsProducer {
    async fn metrics(&self, h: &Hub) -> Option<String> {
        let mut s = tls_connect(&h.addr, self.1.clone()).await.ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.ok()?;
        Some(resp)
    }

    async fn publish(&mut self, mut msg: Value, id: u64) {
        use futures_util::{SinkExt, StreamExt};
        msg["id"] = id.into();
        self.0
            .send(hub_testkit::Message::text(msg.to_string()))
            .await
            .unwrap();
        while let Some(m) = self.0.next().await {
            let m = m.unwrap();
            let Ok(text) = m.to_text() else { continue };
            if text
                .split('\n')
                .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["id"] == id))
            {
                return;
            }
        }
        panic!("the producer's connection ended");
    }
}

/// A wss peer that sends pings and never reads: the hub answers each with
/// a pong it cannot write, and must stop reading rather than queue them
/// (over plain TCP the outbox bounds them; over TLS tungstenite's own
/// buffer would grow by a byte per byte the peer sends).
#[tokio::test]
async fn a_wss_peer_flooding_pings_without_reading_is_not_queued_for() {
    let (_dir, cert_path, key_path, der) = cert_files();
    let h = hub()
        .args(["--tls-cert", cert_path.to_str().unwrap()])
        .args(["--tls-key", key_path.to_str().unwrap()])
        .start()
        .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(h.addr.parse().unwrap()).await.unwrap();
    let tls = connector(der)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let port = h.addr.rsplit(':').next().unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(format!("wss://localhost:{port}/ws"), tls)
        .await
        .unwrap();
    use futures_util::SinkExt;
    let payload = vec![7u8; 125];
    let (mut sent, limit) = (0usize, 64 << 20);
    while sent < limit {
        let ping = hub_testkit::Message::Ping(payload.clone().into());
        match tokio::time::timeout(std::time::Duration::from_secs(2), ws.send(ping)).await {
            // The hub stopped taking bytes: what it holds is bounded.
            Err(_) | Ok(Err(_)) => return,
            Ok(Ok(())) => sent += payload.len(),
        }
    }
    panic!("the hub read {sent} bytes of pings from a peer that reads nothing, queueing a pong for each");
}
