//! TLS (`wss://` and `https://` on the same port) with rustls: a listener
//! that completes handshakes off the accept path (a slow client cannot
//! stall others), and certificate reload without dropping connections.

use crate::sock::SharedTcp;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The certificate and key files, and the acceptor built from them.
pub struct Certs {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
}

/// Why the files are unusable: the setting to blame (`tls_cert` or
/// `tls_key`) and what is wrong with it.
pub type CertError = (&'static str, String);

fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| ("tls_cert", format!("cannot read {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            (
                "tls_cert",
                format!("invalid certificate {}: {e}", cert.display()),
            )
        })?;
    if chain.is_empty() {
        return Err((
            "tls_cert",
            format!("{} holds no certificate", cert.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        (
            "tls_key",
            format!("invalid private key {}: {e}", key.display()),
        )
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ("tls_cert", format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ("tls_key", format!("does not match tls_cert: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}

impl Certs {
    /// Reads the files now (a bad file refuses the start).
    pub fn new(cert: &Path, key: &Path) -> Result<Arc<Self>, CertError> {
        Ok(Arc::new(Certs {
            acceptor: RwLock::new(load(cert, key)?),
            cert: cert.to_owned(),
            key: key.to_owned(),
        }))
    }

    /// Re-reads the files; new connections use the new certificate, open
    /// ones keep theirs. A bad file keeps the old certificate.
    pub fn reload(&self) {
        match load(&self.cert, &self.key) {
            Ok(a) => {
                *self.acceptor.write() = a;
                tracing::info!("tls certificate reloaded");
            }
            Err((setting, e)) => {
                tracing::error!(setting, error = %e, "tls reload failed; keeping the old certificate")
            }
        }
    }
}

/// A listener yielding TLS streams whose handshake has completed.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<SharedTcp>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Wraps a bound TCP listener; handshakes run on their own tasks and
    /// are dropped when they take longer than `handshake_timeout`; a write
    /// to a peer that takes nothing for `stall` fails ([`SharedTcp`]).
    pub fn new(
        tcp: TcpListener,
        certs: Arc<Certs>,
        handshake_timeout: Duration,
        stall: Duration,
    ) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Inherited from the listener on Linux; set it anyway.
                let _ = stream.set_nodelay(true);
                let acceptor = certs.acceptor.read().clone();
                let handed = tx.clone();
                tokio::spawn(async move {
                    let stream = SharedTcp::new(stream, stall);
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "tls handshake failed"),
                        Err(_) => tracing::debug!(%addr, "tls handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    break;
                }
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<SharedTcp>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl crate::sock::DirectSocket for TlsStream<SharedTcp> {
    /// Encrypted: every write goes through the connection's own task.
    fn wire(&self) -> Option<std::sync::Weak<crate::sock::Wire>> {
        None
    }
}
