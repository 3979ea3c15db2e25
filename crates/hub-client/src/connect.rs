//! Opening a socket to the hub: URL checks, TLS (rustls with the webpki
//! roots plus optional extra PEM roots), the bearer header, and the
//! optional `GET /ready` probe.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::config::ClientConfig;
use crate::error::ClientError;

/// An open WebSocket to the hub.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub(crate) struct ConnectError {
    /// HTTP status of a refused upgrade (or of `/ready`).
    pub http_status: Option<u16>,
    /// What happened.
    pub message: String,
    /// The hub's error code, when its refusal said one (`TOKEN_EXPIRED`).
    pub code: Option<String>,
}

impl ConnectError {
    fn io(message: impl ToString) -> Self {
        ConnectError {
            http_status: None,
            message: message.to_string(),
            code: None,
        }
    }

    /// A failed attempt; a refused TLS certificate is said in words that
    /// say what to do (not rustls' debug text).
    fn attempt(e: &(dyn std::error::Error + 'static), host: &str) -> Self {
        let mut source = Some(e);
        while let Some(err) = source {
            // An `io::Error`'s `source()` skips the error it wraps.
            let inner = err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|i| i as &(dyn std::error::Error + 'static));
            if let Some(words) = crate::trust::explain(inner.unwrap_or(err), host) {
                return ConnectError {
                    code: Some(crate::trust::TLS_CERTIFICATE.to_owned()),
                    ..ConnectError::io(words)
                };
            }
            source = err.source();
        }
        ConnectError::io(e)
    }
}

/// A validated hub address.
#[derive(Clone)]
pub(crate) struct Endpoint {
    url: String,
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Largest frame and message accepted from the hub.
    max_incoming_bytes: usize,
}

impl Endpoint {
    pub fn new(config: &ClientConfig) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::InvalidUrl(config.url.clone(), why.to_owned());
        let uri: Uri = config.url.parse().map_err(|_| bad("not a URL"))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            Some("http") => {
                return Err(bad(
                    "the scheme must be ws:// or wss://: use ws://HOST:PORT/ws",
                ))
            }
            Some("https") => {
                return Err(bad(
                    "the scheme must be ws:// or wss://: use wss://HOST:PORT/ws",
                ))
            }
            _ => return Err(bad("the scheme must be ws:// or wss://")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?.to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tls = if secure {
            Some(Arc::new(tls_config(config.tls_root_pem.as_deref())?))
        } else {
            None
        };
        Ok(Endpoint {
            max_incoming_bytes: config.max_incoming_bytes.max(1),
            url: config.url.clone(),
            host,
            port,
            tls,
        })
    }

    /// Open the WebSocket, presenting `token` as a bearer token.
    pub async fn connect(&self, token: Option<&str>) -> Result<Ws, ConnectError> {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(ConnectError::io)?;
        if let Some(t) = token {
            let v = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| ConnectError::io("the token is not a valid header value"))?;
            request.headers_mut().insert(header::AUTHORIZATION, v);
        }
        let connector = match &self.tls {
            Some(cfg) => Connector::Rustls(cfg.clone()),
            None => Connector::Plain,
        };
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(self.max_incoming_bytes))
            .max_frame_size(Some(self.max_incoming_bytes));
        match tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(ws_config),
            true,
            Some(connector),
        )
        .await
        {
            Ok((ws, _response)) => Ok(ws),
            Err(WsError::Http(resp)) => {
                let (code, message) = refusal(resp.body().as_deref());
                let status = resp.status().as_u16();
                let message = match &code {
                    _ if status == 404 => {
                        "no progress-hub WebSocket at this URL (HTTP 404): is the path /ws?"
                            .to_owned()
                    }
                    Some(code) => {
                        format!("upgrade refused: HTTP {}: {code}: {message}", resp.status())
                    }
                    None => format!("upgrade refused: HTTP {}", resp.status()),
                };
                Err(ConnectError {
                    http_status: Some(resp.status().as_u16()),
                    message,
                    code,
                })
            }
            Err(WsError::Io(e)) => Err(ConnectError::attempt(&e, &self.host)),
            Err(e) => Err(ConnectError::attempt(&e, &self.host)),
        }
    }

    /// `GET /ready` on the same host: Ok on 200.
    pub async fn ready(&self, token: Option<&str>) -> Result<(), ConnectError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(ConnectError::io)?;
        let status = match &self.tls {
            None => http_get_status(tcp, &self.host, "/ready", token).await?,
            Some(cfg) => {
                let name = ServerName::try_from(self.host.clone()).map_err(ConnectError::io)?;
                let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| ConnectError::attempt(&e, &self.host))?;
                http_get_status(tls, &self.host, "/ready", token).await?
            }
        };
        if status == 200 {
            Ok(())
        } else {
            Err(ConnectError {
                http_status: Some(status),
                message: format!("/ready answered {status}"),
                code: None,
            })
        }
    }
}

/// The code and message of a refused upgrade's body when it is the hub's
/// JSON error (`{"error": {code, message}}`), so a caller can tell a
/// missing token from an expired one.
fn refusal(body: Option<&[u8]>) -> (Option<String>, String) {
    let error = body.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
    let error = error.as_ref().and_then(|v| v.get("error"));
    let text = |key: &str| error.and_then(|e| e.get(key)?.as_str()).map(str::to_owned);
    (text("code"), text("message").unwrap_or_default())
}

/// A minimal HTTP/1.1 GET returning the status code.
async fn http_get_status<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    path: &str,
    token: Option<&str>,
) -> Result<u16, ConnectError> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(ConnectError::io)?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.windows(2).any(|w| w == b"\r\n") && buf.len() < 4096 {
        let n = s.read(&mut chunk).await.map_err(ConnectError::io)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| ConnectError::io("not an HTTP answer"))
}

/// The TLS settings the client connects with: the webpki roots plus
/// `extra_pem`'s certificates (e.g. a private CA), for callers that open
/// their own connection to the hub (a `tokio_tungstenite::Connector`).
pub fn tls_client_config(
    extra_pem: Option<&[u8]>,
) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    tls_config(extra_pem).map(Arc::new)
}

fn tls_config(extra_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, ClientError> {
    let tls = |e: &dyn std::fmt::Display| ClientError::Tls(e.to_string());
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut given = Vec::new();
    if let Some(pem) = extra_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| tls(&e))?;
            roots.add(cert.clone()).map_err(|e| tls(&e))?;
            given.push(cert);
        }
        if given.is_empty() {
            return Err(ClientError::Tls("no certificate in the PEM data".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| tls(&e))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::trust::Trust::new(webpki, given)))
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(Endpoint::new(&ClientConfig::new("ws://127.0.0.1:8765/ws")).is_ok());
        let e = Endpoint::new(&ClientConfig::new("wss://hub.example:9443/ws")).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls.is_some()),
            ("hub.example", 9443, true)
        );
        assert_eq!(
            Endpoint::new(&ClientConfig::new("wss://hub.example/ws"))
                .unwrap()
                .port,
            443
        );
        assert!(Endpoint::new(&ClientConfig::new("http://127.0.0.1/ws")).is_err());
        assert!(Endpoint::new(&ClientConfig::new("not a url")).is_err());
        let bad_pem = ClientConfig::new("wss://h/ws").tls_root_pem(b"nothing".to_vec());
        assert!(Endpoint::new(&bad_pem).is_err());
    }

    #[tokio::test]
    async fn ready_probe_reads_the_status() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for status in ["503 Service Unavailable", "200 OK"] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /ready HTTP/1.1\r\n"));
                s.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                    .await
                    .unwrap();
            }
        });
        let e = Endpoint::new(&ClientConfig::new(format!("ws://127.0.0.1:{port}/ws"))).unwrap();
        assert_eq!(e.ready(None).await.unwrap_err().http_status, Some(503));
        assert!(e.ready(Some("t")).await.is_ok());
        server.await.unwrap();
    }
}
