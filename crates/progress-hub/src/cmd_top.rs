//! `progress-hub top`: the live terminal dashboard (ratatui). All of it lives
//! in the `hub-tui` crate; this module only maps flags onto it.

use clap::Args;

/// Flags of `top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Hub WebSocket URL.
    #[arg(
        long,
        env = "PROGRESS_HUB_URL",
        default_value = "ws://127.0.0.1:8765/ws"
    )]
    pub url: String,
    /// Bearer token (JWT) when the hub requires one; `c` (cancel) is offered
    /// only when its roles allow it.
    #[arg(long, env = "PROGRESS_HUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Namespace to watch.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// PEM file of extra root certificates to trust for `wss://` (a private
    /// CA, or the hub's self-signed certificate); default: `SSL_CERT_FILE`
    /// when set.
    #[arg(long, env = "PROGRESS_HUB_CA_CERT", value_parser = crate::ca_cert::parse_ca_cert)]
    pub ca_cert: Option<crate::ca_cert::CaCert>,
}

/// Runs the dashboard until `q`; returns the exit code. Network errors never
/// end it (it shows them and keeps retrying); only a terminal it cannot use does.
pub fn main(args: TopArgs) -> i32 {
    if !args.url.starts_with("ws://") && !args.url.starts_with("wss://") {
        eprintln!(
            "progress-hub top: --url must start with ws:// or wss:// (got {:?})",
            args.url
        );
        return 2;
    }
    let config = hub_tui::TopConfig {
        url: args.url,
        token: args.token.filter(|t| !t.is_empty()),
        namespace: args.namespace,
        tls_root_pem: crate::ca_cert::extra_roots(args.ca_cert.as_ref()),
    };
    match hub_tui::run(config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("progress-hub top: {e} (top needs an interactive terminal)");
            1
        }
    }
}
