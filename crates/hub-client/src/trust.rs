//! Which hub certificates the client trusts: the webpki roots and the
//! certificates given in PEM (`ClientConfig::tls_root_pem`, the commands'
//! `--ca-cert`), checked the usual way (chain, name, dates) — and, for a
//! certificate given there that is the hub's own, that very certificate
//! as it is (pinned). `openssl req -x509` makes a self-signed certificate
//! marked as a CA, which webpki refuses as a server's own
//! (`CaUsedAsEndEntity`) however it is trusted; `curl --cacert` takes it,
//! and so does this client. The handshake's signature is still checked
//! against the certificate, so only the holder of its key passes.
//!
//! Also [`explain`]: a refused certificate in words that say what to do.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The webpki verifier, plus exact matches of the given certificates.
#[derive(Debug)]
pub(crate) struct Trust {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl Trust {
    /// `pinned` are the certificates given by the user (also in `webpki`'s roots).
    pub(crate) fn new(
        webpki: Arc<WebPkiServerVerifier>,
        pinned: Vec<CertificateDer<'static>>,
    ) -> Self {
        Trust { webpki, pinned }
    }
}

impl ServerCertVerifier for Trust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(v) => Ok(v),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// What to tell the user when the TLS handshake failed on the hub's
/// certificate (`None` for any other error). `host` is the URL's.
pub(crate) fn explain(error: &(dyn std::error::Error + 'static), host: &str) -> Option<String> {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(rustls::Error::InvalidCertificate(c)) = e.downcast_ref::<rustls::Error>() {
            return Some(certificate_words(c, host));
        }
        source = e.source();
    }
    None
}

fn certificate_words(c: &CertificateError, host: &str) -> String {
    const GIVE: &str = "give it (or the CA that signed it) with --ca-cert FILE \
                        (PROGRESS_HUB_CA_CERT; ClientConfig::tls_root_pem in the library)";
    match c {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
            "the hub's TLS certificate is not signed by a CA this client trusts \
             (a private CA or a self-signed certificate): {GIVE}"
        ),
        // webpki's own error, wrapped by rustls.
        CertificateError::Other(o) if format!("{o:?}").contains("CaUsedAsEndEntity") => format!(
            "the hub's TLS certificate is a CA certificate used as its own \
             (as `openssl req -x509` makes them): {GIVE}"
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the hub's TLS certificate is not valid for {host}: use a host name it names")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the hub's TLS certificate has expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the hub's TLS certificate is not valid yet (is this machine's clock right?)".to_owned()
        }
        CertificateError::Revoked => "the hub's TLS certificate was revoked".to_owned(),
        other => format!("the hub's TLS certificate was refused ({other})"),
    }
}
