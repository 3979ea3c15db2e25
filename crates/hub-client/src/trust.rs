//! Which hub certificates the client trusts: the webpki roots and the
//! certificates given in PEM (`ClientConfig::tls_root_pem`, the commands'
//! `--ca-cert`), checked the usual way (chain, name, dates) — and a
//! self-signed certificate given there that is the hub's own, as itself
//! (pinned). `openssl req -x509` makes self-signed certificates marked as
//! CAs, which webpki refuses as a server's own (`CaUsedAsEndEntity`)
//! however they are trusted; `curl --cacert` takes them, and so does this
//! client, still checking the host name and the dates. Only self-signed
//! certificates are pinned: a server certificate from a bundle (a
//! `fullchain.pem` given as the CA file) is trusted through its CA, for
//! the names it holds. The handshake's signature is checked against the
//! certificate either way, so only the holder of its key passes.
//!
//! Also [`explain`]: a refused certificate in words that say what to do.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The client-side error code ([`crate::ConnectionStats::last_error_code`])
/// of an attempt that failed on the hub's TLS certificate: retrying will
/// not help until the certificate, or what the client trusts, changes.
pub const TLS_CERTIFICATE: &str = "TLS_CERTIFICATE";

/// The webpki verifier, plus the given self-signed certificates as themselves.
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

    /// Whether webpki's refusal of `end_entity` is only that no chain
    /// leads to it (its own issuer, or a CA used as its own certificate)
    /// and the user gave exactly that certificate.
    fn may_pin(&self, end_entity: &CertificateDer<'_>, e: &rustls::Error) -> bool {
        let no_chain = match e {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => true,
            rustls::Error::InvalidCertificate(c) => ca_used_as_end_entity(c),
            _ => false,
        };
        no_chain
            && self
                .pinned
                .iter()
                .any(|p| p.as_ref() == end_entity.as_ref())
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
        let refused =
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
        if !self.may_pin(end_entity, &refused) {
            return Err(refused);
        }
        match pinned_checks(end_entity, server_name, now) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(PinRefusal::Keep) => Err(refused),
            Err(PinRefusal::Because(c)) => Err(rustls::Error::InvalidCertificate(c)),
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

/// Why a certificate given by the user is not taken as itself.
enum PinRefusal {
    /// It is not one to pin (not self-signed, not readable): webpki's
    /// refusal stands.
    Keep,
    /// It is, but fails this check.
    Because(CertificateError),
}

/// What a pinned certificate must still be: self-signed, valid now, and
/// for the host the client asked for.
fn pinned_checks(
    der: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), PinRefusal> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Err(PinRefusal::Keep);
    };
    if cert.issuer() != cert.subject() {
        return Err(PinRefusal::Keep);
    }
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if secs < validity.not_before.timestamp() {
        return Err(PinRefusal::Because(CertificateError::NotValidYet));
    }
    if secs > validity.not_after.timestamp() {
        return Err(PinRefusal::Because(CertificateError::Expired));
    }
    let named = webpki::EndEntityCert::try_from(der)
        .is_ok_and(|c| c.verify_is_valid_for_subject_name(server_name).is_ok());
    if !named {
        return Err(PinRefusal::Because(CertificateError::NotValidForName));
    }
    Ok(())
}

/// webpki's `CaUsedAsEndEntity`, which rustls passes on wrapped as
/// `Other` (no variant of its own).
fn ca_used_as_end_entity(c: &CertificateError) -> bool {
    matches!(c, CertificateError::Other(o) if format!("{o:?}").contains("CaUsedAsEndEntity"))
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
        CertificateError::UnknownIssuer => format!(
            "the hub's TLS certificate is not signed by a CA this client trusts \
             (a private CA or a self-signed certificate): {GIVE}"
        ),
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "the hub's TLS certificate is not signed by the key of the certificate or CA \
             given for it (is it the right file?): {GIVE}"
        ),
        c if ca_used_as_end_entity(c) => format!(
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
        other => {
            // The kind of refusal, without rustls' debug fields.
            let kind = format!("{other:?}");
            let kind = kind.split([' ', '(', '{']).next().unwrap_or_default();
            format!("the hub's TLS certificate was refused ({kind})")
        }
    }
}
