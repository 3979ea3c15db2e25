//! A self-signed certificate for `localhost`, written to a temporary folder
//! for a hub started with `--tls-cert` / `--tls-key`.

use std::path::PathBuf;

/// The certificate and key files (kept while `dir` lives) and the
/// certificate itself, to trust in clients.
pub struct TlsFiles {
    /// The temporary folder holding both files.
    pub dir: tempfile::TempDir,
    /// `cert.pem`.
    pub cert: PathBuf,
    /// `key.pem`.
    pub key: PathBuf,
    /// The certificate in PEM.
    pub cert_pem: String,
    /// The certificate in DER.
    pub cert_der: Vec<u8>,
}

impl TlsFiles {
    /// A new self-signed certificate for `localhost`.
    pub fn self_signed() -> Self {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        Self::write(&c.cert, &c.signing_key)
    }

    /// A new self-signed certificate for `localhost` marked as a CA
    /// (`basicConstraints CA:TRUE`), as `openssl req -x509` makes them.
    pub fn self_signed_ca() -> Self {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self::write(&cert, &key)
    }

    fn write(c: &rcgen::Certificate, k: &rcgen::KeyPair) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, c.pem()).unwrap();
        std::fs::write(&key, k.serialize_pem()).unwrap();
        TlsFiles {
            dir,
            cert,
            key,
            cert_pem: c.pem(),
            cert_der: c.der().to_vec(),
        }
    }

    /// The `serve` arguments that use them.
    pub fn args(&self) -> [&str; 4] {
        [
            "--tls-cert",
            self.cert.to_str().unwrap(),
            "--tls-key",
            self.key.to_str().unwrap(),
        ]
    }
}
