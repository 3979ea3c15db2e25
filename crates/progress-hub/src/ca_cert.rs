//! Extra trusted root certificates for the client subcommands (`report`,
//! `run`, `watch`, `top`, `demo`): a hub whose TLS certificate comes from a
//! private CA, or is self-signed, is trusted when its certificate (or its
//! CA's) is given with `--ca-cert FILE` (`PROGRESS_HUB_CA_CERT`), or else
//! found in `SSL_CERT_FILE` (the OpenSSL convention). The webpki roots
//! are trusted either way.

use std::path::Path;

/// A PEM file of root certificates, read when the flags are parsed.
#[derive(Debug, Clone)]
pub struct CaCert {
    /// Its contents (at least one PEM certificate).
    pub pem: Vec<u8>,
}

/// Reads a PEM file of certificates; the error names the file and says
/// what is wrong with it.
pub fn read_ca_cert(path: &Path) -> Result<CaCert, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the CA certificate file {}: {e}",
            path.display()
        )
    })?;
    let marker = b"-----BEGIN CERTIFICATE-----";
    if !pem.windows(marker.len()).any(|w| w == marker) {
        return Err(format!(
            "the CA certificate file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(CaCert { pem })
}

/// `--ca-cert`'s value parser: a bad file is a usage error naming it.
pub fn parse_ca_cert(s: &str) -> Result<CaCert, String> {
    read_ca_cert(Path::new(s))
}

/// The extra roots to trust: `--ca-cert`'s, else `SSL_CERT_FILE`'s when
/// that is set (a file that cannot be used is said once on stderr and
/// left out: the webpki roots still apply).
pub fn extra_roots(explicit: Option<&CaCert>) -> Option<Vec<u8>> {
    if let Some(c) = explicit {
        return Some(c.pem.clone());
    }
    let path = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty())?;
    match read_ca_cert(Path::new(&path)) {
        Ok(c) => Some(c.pem),
        Err(e) => {
            eprintln!("progress-hub: SSL_CERT_FILE: {e}; not using it");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_checked_and_named() {
        let e = parse_ca_cert("/no/such/ca.pem").unwrap_err();
        assert!(e.contains("/no/such/ca.pem"), "{e}");
        let plain = std::env::temp_dir().join(format!("ph-ca-{}.pem", std::process::id()));
        std::fs::write(&plain, "not a certificate").unwrap();
        let e = read_ca_cert(&plain).unwrap_err();
        std::fs::remove_file(&plain).unwrap();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }
}
