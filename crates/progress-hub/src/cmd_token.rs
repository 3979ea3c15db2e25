//! `progress-hub token`: mints a JWT for the hub, signed with the hub's
//! HS256 secret (`--jwt-secret` / `PROGRESS_HUB_JWT_SECRET`) or with a
//! private key PEM whose public half the hub trusts (`--private-key`, and
//! `--kid` for a hub using a JWKS). Prints the token on stdout.
//!
//! ```text
//! progress-hub token --sub alice --role viewer --namespace 'team-*' --ttl 1h
//! ```

use clap::Args;
use hub_auth::{mint_hs256, mint_with_private_key, Claims, Role};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Flags of `token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Who the token is for (the `sub` claim).
    #[arg(long)]
    sub: String,
    /// A role: viewer, operator, reporter or admin (repeatable; default: viewer).
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// A namespace glob the token may touch (repeatable; default: default).
    #[arg(long = "namespace", value_name = "GLOB")]
    namespaces: Vec<String>,
    /// Lifetime, e.g. 15m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = hub_bench::args::parse_duration)]
    ttl: Duration,
    /// HS256 secret (the hub's --jwt-secret).
    #[arg(long, env = "PROGRESS_HUB_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Private key PEM (PKCS#8 RSA, P-256/P-384 or Ed25519) instead of a secret.
    #[arg(long, conflicts_with = "jwt_secret")]
    private_key: Option<PathBuf>,
    /// `kid` header, for a hub that trusts a JWKS (with --private-key only:
    /// a hub's HS256 secret has no kid, and it refuses a token naming one).
    #[arg(long, requires = "private_key")]
    kid: Option<String>,
}

/// Runs `token`; returns the exit code.
pub fn main(args: TokenArgs) -> i32 {
    match mint(&args, SystemTime::now()) {
        Ok(token) => {
            println!("{token}");
            0
        }
        Err(e) => {
            eprintln!("progress-hub token: {e}");
            2
        }
    }
}

fn mint(args: &TokenArgs, now: SystemTime) -> Result<String, String> {
    if args.sub.is_empty() {
        return Err("--sub must not be empty".into());
    }
    for r in &args.roles {
        if Role::parse(r).is_none() {
            return Err(format!(
                "unknown role `{r}`: expected viewer, operator, reporter or admin"
            ));
        }
    }
    if args.namespaces.iter().any(String::is_empty) {
        return Err("--namespace must not be empty".into());
    }
    if args.ttl.is_zero() {
        return Err("--ttl must be greater than zero".into());
    }
    // clap's `requires` is dropped when the required flag conflicts with a
    // present one (--jwt-secret, also from the environment): checked here.
    if args.kid.is_some() && args.private_key.is_none() {
        return Err(
            "--kid goes with --private-key (a key of the hub's JWKS): a token \
                    signed with the hub's secret must not name a kid, the hub would \
                    refuse it as naming an unknown key"
                .into(),
        );
    }
    let iat = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970")?
        .as_secs();
    let mut claims = Claims::new(&args.sub, iat.saturating_add(args.ttl.as_secs().max(1)));
    claims.iat = Some(iat);
    claims.roles = (!args.roles.is_empty()).then(|| args.roles.clone());
    claims.namespaces = (!args.namespaces.is_empty()).then(|| args.namespaces.clone());
    match (&args.private_key, &args.jwt_secret) {
        (Some(path), _) => mint_with_private_key(path, args.kid.as_deref(), &claims),
        (None, Some(secret)) => mint_hs256(secret, &claims),
        (None, None) => {
            return Err(
                "give --jwt-secret (or PROGRESS_HUB_JWT_SECRET) or --private-key to sign with"
                    .into(),
            )
        }
    }
    .map_err(|e| e.to_string())
}
