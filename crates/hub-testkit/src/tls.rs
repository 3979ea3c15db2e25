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

    /// A self-signed certificate for `localhost` that expired in 2021.
    pub fn self_signed_expired() -> Self {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self::write(&cert, &key)
    }

    /// A certificate for `name` issued by a new private CA: `cert.pem` is
    /// the full chain (the certificate, then the CA's), as servers are
    /// given it; `cert_pem` / `cert_der` are the server's certificate.
    pub fn issued_for(name: &str) -> Self {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let files = Self::write(&leaf, &key);
        std::fs::write(&files.cert, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
        files
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
