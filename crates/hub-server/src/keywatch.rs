//! Key rotation without a signal: polls the `--jwks-file` (or
//! `--jwt-public-key`) file's modification time and size every
//! [`POLL_EVERY`] and reloads the keys when they change. SIGHUP
//! ([`crate::Running::reload`]) still reloads at once.
//!
//! A file caught half-written fails to parse: the old keys stay in use and
//! the reload is retried at the next poll until the file parses (the error
//! is logged once per change, not once per poll).

use crate::app::Shared;
use crate::auth::Authn;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How often the key file is looked at.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// What identifies a version of the file: modification time and size.
type Signature = Option<(SystemTime, u64)>;

fn signature(path: &Path) -> Signature {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Runs until the hub stops (does nothing without a key file).
pub async fn watch(app: Shared) {
    let Authn::Jwt { verifier, .. } = &app.authn else {
        return;
    };
    let Some(path) = app
        .cfg
        .jwks_file
        .clone()
        .or_else(|| app.cfg.jwt_public_key.clone())
    else {
        return;
    };
    let mut loaded = signature(&path);
    let mut failed: Signature = None;
    let mut every = tokio::time::interval(POLL_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let now = signature(&path);
        if now.is_none() || now == loaded {
            continue;
        }
        match verifier.reload() {
            Ok(()) => {
                loaded = now;
                failed = None;
                tracing::info!(file = %path.display(), keys = ?verifier.key_summary(), "key file changed; keys reloaded");
            }
            Err(e) => {
                if failed != now {
                    tracing::error!(file = %path.display(), error = %e, "key file changed but cannot be loaded; keeping the old keys");
                    failed = now;
                }
            }
        }
    }
}
