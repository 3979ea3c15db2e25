//! The client subcommands against a hub whose TLS certificate is
//! self-signed (as with a private CA): trusted with `--ca-cert FILE` or
//! `SSL_CERT_FILE`, refused without.

mod common;
use common::*;
use std::process::Output;

/// A hub serving TLS with a self-signed certificate for `localhost`; the
/// certificate's file (kept while the guard lives).
async fn tls_hub() -> (Hub, hub_testkit::TlsFiles) {
    let tls = hub_testkit::TlsFiles::self_signed();
    let h = hub().args(tls.args()).start().await;
    (h, tls)
}

async fn report(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"));
    cmd.kill_on_drop(true)
        .arg("report")
        .args(args)
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .env_remove("PROGRESS_HUB_CA_CERT")
        .env_remove("SSL_CERT_FILE")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("finished")
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_self_signed_hub_is_trusted_with_its_certificate() {
    let (h, tls) = tls_hub().await;
    let cert = &tls.cert;
    let port = h.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("wss://localhost:{port}/ws");
    let cert = cert.to_str().unwrap();

    // Without the certificate: the TLS handshake fails, nothing lands, and
    // `report` says so at once instead of retrying until its timeout (far
    // past the test's own deadline).
    let out = report(
        &[
            "--url",
            &url,
            "--timeout",
            "300s",
            "start",
            "--id",
            "t0",
            "n",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not signed by a CA this client trusts"),
        "{}",
        stderr(&out)
    );

    let out = report(
        &["--url", &url, "--ca-cert", cert, "start", "--id", "t1", "n"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = report(
        &["--url", &url, "complete", "t1"],
        &[("PROGRESS_HUB_CA_CERT", cert)],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = report(
        &["--url", &url, "start", "--id", "t2", "n"],
        &[("SSL_CERT_FILE", cert)],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A file that cannot be used is a usage error naming it.
    let out = report(
        &["--url", &url, "--ca-cert", "/no/such/ca.pem", "start", "n"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("/no/such/ca.pem"), "{}", stderr(&out));
}

/// `demo` reaches a self-signed hub with `--ca-cert` (its probe and its
/// reporter both trust the file).
#[tokio::test]
async fn demo_trusts_the_ca_cert_too() {
    let (h, tls) = tls_hub().await;
    let cert = &tls.cert;
    let port = h.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("wss://localhost:{port}/ws");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .args(["demo", "--rounds", "1", "--speed", "40", "--url", &url])
        .args(["--ca-cert", cert.to_str().unwrap()])
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_TOKEN")
        .env_remove("SSL_CERT_FILE")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("demo finished")
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reporting to the hub at wss://"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A self-signed certificate marked as a CA (what `openssl req -x509`
/// makes): given with `--ca-cert`, it is trusted as the hub's own (webpki
/// refused it as `CaUsedAsEndEntity`, said in rustls' debug text); not
/// given, the refusal says what to do.
#[tokio::test]
async fn a_self_signed_ca_certificate_is_trusted_as_the_hubs_own() {
    let tls = hub_testkit::TlsFiles::self_signed_ca();
    let h = hub().args(tls.args()).start().await;
    let port = h.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("wss://localhost:{port}/ws");
    let cert = tls.cert.to_str().unwrap();
    let out = report(
        &[
            "--url",
            &url,
            "--ca-cert",
            cert,
            "start",
            "--id",
            "ca1",
            "n",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = report(
        &[
            "--url",
            &url,
            "--timeout",
            "2s",
            "start",
            "--id",
            "ca2",
            "n",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the hub's TLS certificate is a CA certificate"),
        "{err}"
    );
    assert!(err.contains("--ca-cert"), "{err}");
    assert!(!err.contains("CaUsedAsEndEntity"), "no debug text: {err}");
}

/// Only a self-signed certificate is trusted as itself, and still for its
/// names and dates: one for `localhost` reached as 127.0.0.1, or expired,
/// is refused saying why; a server certificate from a full-chain file
/// given as the CA file is trusted through its CA, for its own names
/// only (pinned as such, it was trusted for any host).
#[tokio::test]
async fn a_pinned_certificate_is_still_checked_for_its_names_and_dates() {
    let tls = hub_testkit::TlsFiles::self_signed();
    let h = hub().args(tls.args()).start().await;
    let port = h.addr.rsplit(':').next().unwrap().to_owned();
    let cert = tls.cert.to_str().unwrap();
    let by_ip = format!("wss://127.0.0.1:{port}/ws");
    let args = ["--url", &by_ip, "--ca-cert", cert, "--timeout", "2s"];
    let out = report(&[&args[..], &["start", "--id", "ip", "n"]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not valid for 127.0.0.1"),
        "{}",
        stderr(&out)
    );

    let expired = hub_testkit::TlsFiles::self_signed_expired();
    let h = hub().args(expired.args()).start().await;
    let port = h.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("wss://localhost:{port}/ws");
    let cert = expired.cert.to_str().unwrap();
    let args = ["--url", &url, "--ca-cert", cert, "--timeout", "2s"];
    let out = report(&[&args[..], &["start", "--id", "old", "n"]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("has expired"), "{}", stderr(&out));

    let other = hub_testkit::TlsFiles::issued_for("other.example");
    let h = hub().args(other.args()).start().await;
    let port = h.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("wss://localhost:{port}/ws");
    let chain = other.cert.to_str().unwrap();
    let args = ["--url", &url, "--ca-cert", chain, "--timeout", "2s"];
    let out = report(&[&args[..], &["start", "--id", "far", "n"]].concat(), &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not valid for localhost"),
        "{}",
        stderr(&out)
    );
}

/// `run` against a hub whose certificate is not trusted runs its command,
/// says why nothing is reported, and does not wait out `--flush-timeout`
/// (far past the test's own deadline) for a certificate that will not
/// change meanwhile.
#[tokio::test]
async fn run_says_at_once_that_the_hubs_certificate_is_not_trusted() {
    let (h, _tls) = tls_hub().await;
    let port = h.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("wss://localhost:{port}/ws");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_progress-hub"))
        .kill_on_drop(true)
        .args(["run", "--url", &url, "--flush-timeout", "300s", "--"])
        .args(["sh", "-c", "echo ran; exit 3"])
        .env_remove("PROGRESS_HUB_URL")
        .env_remove("PROGRESS_HUB_CA_CERT")
        .env_remove("SSL_CERT_FILE")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("run ended without waiting for its flush timeout")
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    let err = stderr(&out);
    assert!(
        err.contains("is not trusted") && err.contains("not reported"),
        "{err}"
    );
}
