//! `progress-hub report start|progress|complete|fail`: report an operation
//! from shell scripts, one command per event.
//!
//! Each invocation is a short-lived [`hub_client::Reporter`]: it queues the
//! event, waits (at most `--timeout`) until the hub acknowledged it, and
//! exits. `start` prints the operation id for the later commands; those
//! learn the operation's next sequence number from the hub itself, so any
//! number of processes can report on one operation. An update without a
//! value (only `--step`, `--message`, `--details`) repeats the one the hub
//! holds ([`crate::report_known`]). Any message the hub refuses makes it
//! print the hub's words and exit 1; values out of range are usage errors
//! (exit 2) before anything is sent. Also home of
//! [`HubArgs`], the connection flags every client subcommand shares, and
//! [`hub_gave_up`], which ends their waits once the hub refused them.

use std::time::Duration;

use anyhow::Context;
use hub_bench::args::parse_duration;
use hub_client::outbox::OPERATION_EXISTS;
use hub_client::{ClientConfig, OperationHandle, ProgressFields, Reporter};
use serde_json::Value;

/// Where the hub is and how to authenticate (shared by `report`, `run`, `watch`).
#[derive(clap::Args, Debug, Clone)]
pub struct HubArgs {
    /// WebSocket URL of the hub.
    #[arg(long, env = "PROGRESS_HUB_URL", default_value = hub_client::DEFAULT_URL)]
    pub url: String,
    /// Bearer token (a JWT), if the hub requires one.
    #[arg(long, env = "PROGRESS_HUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Namespace of the operations.
    #[arg(long, env = "PROGRESS_HUB_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// PEM file of extra root certificates to trust for `wss://` (a private
    /// CA, or the hub's self-signed certificate); default: `SSL_CERT_FILE`
    /// when set.
    #[arg(long, env = "PROGRESS_HUB_CA_CERT", value_parser = crate::ca_cert::parse_ca_cert)]
    pub ca_cert: Option<crate::ca_cert::CaCert>,
}

impl HubArgs {
    /// The client configuration these flags describe.
    pub fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new(&self.url).namespace(&self.namespace);
        if let Some(t) = self.token.as_deref().filter(|t| !t.is_empty()) {
            c = c.token(t);
        }
        if let Some(pem) = crate::ca_cert::extra_roots(self.ca_cert.as_ref()) {
            c = c.tls_root_pem(pem);
        }
        c
    }
}

/// Report one event of an operation.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    hub: HubArgs,
    /// How long to wait for the hub to acknowledge (e.g. 10s, 500ms; more than 0).
    #[arg(long, default_value = "10s", value_parser = parse_wait)]
    timeout: Duration,
    #[command(subcommand)]
    event: ReportEvent,
}

/// The event to report.
#[derive(clap::Subcommand, Debug)]
enum ReportEvent {
    /// Start an operation; prints its id.
    Start {
        /// Display name (1 to 256 characters).
        #[arg(value_parser = parse_name)]
        name: String,
        /// Kind, for grouping and ETA history (1 to 128 characters).
        #[arg(long, value_parser = parse_kind)]
        kind: Option<String>,
        /// Total units of work, a positive number (then `progress --current` gives the percentage).
        #[arg(long, value_parser = parse_total)]
        total: Option<f64>,
        /// Parent operation id.
        #[arg(long, value_parser = parse_id)]
        parent: Option<String>,
        /// Choose the operation id (default: a new time-ordered id). An id
        /// the hub already has is refused (exit 1) unless that operation
        /// is still running: then this is taken as a retry of its start.
        #[arg(long, value_parser = parse_id)]
        id: Option<String>,
        /// Metadata, a JSON object.
        #[arg(long, value_parser = parse_json)]
        metadata: Option<Value>,
    },
    /// Report progress. Without a percentage or `--current` (only `--step`,
    /// `--message` or `--details`), the operation's progress is first read
    /// from the hub and sent again unchanged with them. With none of them
    /// it is a usage error (exit 2).
    #[command(group(
        clap::ArgGroup::new("what")
            .required(true)
            .multiple(true)
            .args(["percent", "current", "step", "message", "details"])
    ))]
    #[command(
        override_usage = "progress-hub report progress [OPTIONS] <ID> <PERCENT|--current <CURRENT>|--step <STEP>|--message <MESSAGE>|--details <DETAILS>>"
    )]
    Progress {
        /// Operation id (printed by `start`).
        #[arg(value_parser = parse_id)]
        id: String,
        /// Percentage done (0-100).
        #[arg(value_parser = parse_percent)]
        percent: Option<f64>,
        /// Units done (of `--total`), a number >= 0.
        #[arg(long, value_parser = parse_current)]
        current: Option<f64>,
        /// Current step.
        #[arg(long)]
        step: Option<String>,
        /// A human message.
        #[arg(long)]
        message: Option<String>,
        /// Details, a JSON object.
        #[arg(long, value_parser = parse_json)]
        details: Option<Value>,
    },
    /// Report success.
    Complete {
        /// Operation id.
        #[arg(value_parser = parse_id)]
        id: String,
        /// Details, a JSON object.
        #[arg(long, value_parser = parse_json)]
        details: Option<Value>,
    },
    /// Report failure.
    Fail {
        /// Operation id.
        #[arg(value_parser = parse_id)]
        id: String,
        /// What went wrong.
        error: String,
        /// Details, a JSON object.
        #[arg(long, value_parser = parse_json)]
        details: Option<Value>,
    },
}

fn parse_number(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("{s:?} is not a finite number"))
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v = parse_number(s)?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("a percentage is 0 to 100, not {v}"))
    }
}

fn parse_current(s: &str) -> Result<f64, String> {
    let v = parse_number(s)?;
    if v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("units done cannot be negative ({v})"))
    }
}

fn parse_total(s: &str) -> Result<f64, String> {
    let v = parse_number(s)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(format!("the total must be positive, not {v}"))
    }
}

/// An operation id the hub takes (checked before anything is sent: a
/// usage error, exit 2).
impl HubArgs {
    /// A usage error (said, exit 2) for a namespace the protocol does not
    /// allow, for the commands that would only learn it from the hub's
    /// refusal (`run` runs its command anyway, unreported, and says so).
    pub fn namespace_usage_error(&self) -> Option<i32> {
        let e = hub_proto::validate_namespace(&self.namespace).err()?;
        eprintln!(
            "progress-hub: invalid --namespace / PROGRESS_HUB_NAMESPACE {:?}: {}",
            self.namespace, e.message
        );
        Some(2)
    }
}

/// A wait longer than zero.
fn parse_wait(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than 0".into()),
        d => Ok(d),
    }
}

fn parse_id(s: &str) -> Result<String, String> {
    hub_proto::validate_operation_id(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.message)
}

/// Text of 1 to `max` characters.
fn parse_text(s: &str, what: &str, max: usize) -> Result<String, String> {
    let n = s.chars().count();
    if (1..=max).contains(&n) {
        Ok(s.to_owned())
    } else {
        Err(format!("{what} must have 1 to {max} characters, not {n}"))
    }
}

fn parse_name(s: &str) -> Result<String, String> {
    parse_text(s, "the name", hub_proto::decode::MAX_NAME_LEN)
}

fn parse_kind(s: &str) -> Result<String, String> {
    parse_text(s, "the kind", hub_proto::decode::MAX_KIND_LEN)
}

fn parse_json(s: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err("expected a JSON object".into())
    }
}

/// Run the subcommand; returns the exit code (0 delivered, 1 not delivered
/// or any of it refused by the hub).
pub async fn run(mut args: ReportArgs) -> anyhow::Result<i32> {
    if let Some(code) = args.hub.namespace_usage_error() {
        return Ok(code);
    }
    // A start's id is chosen here, so that it can be printed whatever
    // becomes of the report.
    if let ReportEvent::Start { id, .. } = &mut args.event {
        let chosen = id.get_or_insert_with(hub_client::new_operation_id);
        hub_client::validate_id(chosen)?;
        println!("{chosen}");
    }
    let reporter = Reporter::connect(args.hub.config()).context("invalid hub settings")?;
    let ns = args.hub.namespace.clone();
    // The terminal state this call reports, if it is one.
    let mut ends_as: Option<&str> = None;
    let handle = match args.event {
        ReportEvent::Start {
            name,
            kind,
            total,
            parent,
            id,
            metadata,
        } => {
            let mut b = reporter.start(name);
            if let Some(k) = kind {
                b = b.kind(k);
            }
            if let Some(t) = total {
                b = b.total(t);
            }
            if let Some(p) = parent {
                b = b.parent(p);
            }
            if let Some(i) = id {
                b = b.id(i);
            }
            if let Some(m) = metadata {
                b = b.metadata(m);
            }
            b.begin()?
        }
        ReportEvent::Progress {
            id,
            percent,
            current,
            step,
            message,
            details,
        } => {
            let fields = ProgressFields {
                progress: percent,
                current,
                step,
                message,
                details,
            };
            // Not empty: clap's `what` group requires one of them.
            let fields =
                crate::report_known::with_hub_progress(&reporter, &ns, &id, fields, args.timeout)
                    .await?;
            let op = reporter.attach(&ns, &id)?;
            op.update(fields)?;
            op
        }
        ReportEvent::Complete { id, details } => {
            let op = reporter.attach(&ns, &id)?;
            match details {
                Some(d) => op.complete_with(d)?,
                None => op.complete()?,
            }
            ends_as = Some("completed");
            op
        }
        ReportEvent::Fail { id, error, details } => {
            let op = reporter.attach(&ns, &id)?;
            match details {
                Some(d) => op.fail_with(error, d)?,
                None => op.fail(error)?,
            }
            ends_as = Some("failed");
            op
        }
    };
    // Waits for the ack, but not for a hub that refused the token: the
    // client gives up on it at once (said by `finish`).
    let delivered = tokio::select! {
        d = reporter.flush(args.timeout) => d,
        () = hub_gave_up(reporter.client()) => false,
    };
    let refusal = handle.refusal();
    if let Some(r) = refusal.as_ref().filter(|r| r.code == OPERATION_EXISTS) {
        // Our start was acked as a duplicate: someone else's operation has
        // this id, or it is our own earlier attempt whose answer was lost.
        let id = handle.detach();
        return Ok(start_retried(&reporter, &ns, &id, r, args.timeout).await);
    }
    if let Some(r) = refusal.as_ref().filter(|r| r.code == "OPERATION_FINISHED") {
        let id = handle.detach();
        return Ok(already_ended(&id, r, ends_as));
    }
    Ok(finish(handle, delivered, &reporter))
}

/// `report start --id X` whose start the hub already had: a retry (after a
/// timeout, the ack lost) while X still runs is taken as ours (0); an X
/// that has ended is another run's, refused with its state (1).
async fn start_retried(
    reporter: &Reporter,
    namespace: &str,
    id: &str,
    refusal: &hub_client::outbox::Refusal,
    timeout: Duration,
) -> i32 {
    let state = tokio::time::timeout(
        timeout,
        crate::report_known::state_on_hub(reporter, namespace, id),
    )
    .await;
    match state {
        Ok(Ok(s)) if !s.state.is_terminal() => {
            eprintln!(
                "progress-hub: operation {id} is already on the hub and {}: taken as a retry of its start",
                s.state.as_str()
            );
            0
        }
        Ok(Ok(s)) => {
            eprintln!(
                "progress-hub: operation {id} already exists on the hub and ended {}; pick another id",
                s.state.as_str()
            );
            1
        }
        _ => {
            eprintln!(
                "progress-hub: the hub refused the report for {id}: {}",
                refusal.message
            );
            1
        }
    }
}

/// `OPERATION_FINISHED` for a `complete` or `fail`: fine (0) when the
/// operation had ended the way this call asks (a retry whose first ack was
/// lost); otherwise 1, naming the state it ended in.
fn already_ended(id: &str, refusal: &hub_client::outbox::Refusal, ends_as: Option<&str>) -> i32 {
    match (refusal.state.as_deref(), ends_as) {
        (Some(state), Some(wanted)) if state == wanted => {
            eprintln!("progress-hub: operation {id} had already ended {state}");
            0
        }
        (Some(state), _) => {
            eprintln!(
                "progress-hub: the hub refused the report for {id}: it had already ended {state}"
            );
            1
        }
        (None, _) => {
            eprintln!("progress-hub: the hub refused the report for {id}: {refusal}");
            1
        }
    }
}

fn finish(handle: OperationHandle, delivered: bool, reporter: &Reporter) -> i32 {
    // A message cut to the hub's size limit was delivered, cut: said, not
    // a failure (a script retrying on exit 1 would report it twice).
    let cut = handle
        .refusal()
        .filter(|r| r.code == hub_client::outbox::MESSAGE_TOO_LARGE);
    if let (Some(r), true) = (&cut, delivered) {
        eprintln!(
            "progress-hub: warning: the report for {} was {}",
            handle.id(),
            r.message
        );
        handle.detach();
        return 0;
    }
    // A refused message is dropped by the client, which then counts as
    // delivered: the refusal decides.
    let refused = handle
        .refusal()
        .map(|r| r.to_string())
        .or_else(|| handle.rejection());
    if let Some(why) = refused {
        eprintln!(
            "progress-hub: the hub refused the report for {}: {why}",
            handle.id()
        );
        handle.detach();
        return 1;
    }
    handle.detach();
    if !delivered {
        if refused_for_good(reporter.client()) {
            eprintln!(
                "progress-hub: nothing was reported: {}",
                connection_refused(reporter)
            );
        } else {
            eprintln!(
                "progress-hub: not acknowledged by {} in time",
                where_things_stand(reporter)
            );
        }
        return 1;
    }
    0
}

/// Why the client gave up on the hub (state `failed`), in words:
/// `the hub at ws://… refused the connection: upgrade refused: HTTP 401 …`.
pub(crate) fn connection_refused(reporter: &Reporter) -> String {
    let stats = reporter.connection_stats();
    let why = match reporter.client().state().reason {
        hub_client::machine::Reason::PolicyViolation => {
            "closed the connection for a policy violation (close code 1008)".to_owned()
        }
        hub_client::machine::Reason::AuthRejected => "refused the credentials".to_owned(),
        _ if stats.last_error_code.as_deref() == Some(hub_client::TLS_CERTIFICATE) => {
            "is not trusted".to_owned()
        }
        _ => "refused the connection".to_owned(),
    };
    match stats.last_error {
        Some(e) => format!("the hub at {} {why}: {e}", stats.url),
        None => format!("the hub at {} {why}", stats.url),
    }
}

/// Resolves when the client gave up on the hub (state `failed`: it refused
/// the token or closed for a policy violation), or when the hub's TLS
/// certificate was refused (the client would retry, and a short-lived
/// command would only wait out its timeout for a certificate that will
/// not change meanwhile).
pub(crate) async fn hub_gave_up(client: &hub_client::Client) {
    let mut states = client.state_changes();
    loop {
        states.borrow_and_update();
        if refused_for_good(client) {
            return;
        }
        if states.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Whether the client gave up on the hub, or the hub's TLS certificate was
/// refused on the last attempt.
pub(crate) fn refused_for_good(client: &hub_client::Client) -> bool {
    client.state().state == hub_client::ConnState::Failed
        || client.connection_stats().last_error_code.as_deref() == Some(hub_client::TLS_CERTIFICATE)
}

/// The hub's URL and the connection's state, with its last error:
/// `ws://… (reconnecting: connection refused)`.
pub(crate) fn where_things_stand(reporter: &Reporter) -> String {
    let stats = reporter.connection_stats();
    let error = stats
        .last_error
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    format!("{} ({}{error})", stats.url, stats.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_must_be_an_object() {
        assert!(parse_json(r#"{"a":1}"#).is_ok());
        assert!(parse_json("[1]").is_err());
        assert!(parse_json("nope").is_err());
    }

    #[test]
    fn numbers_out_of_range_are_usage_errors() {
        assert_eq!(parse_percent("42.5"), Ok(42.5));
        for bad in ["nan", "inf", "-1", "100.5", "x"] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
        assert!(parse_current("0").is_ok());
        assert!(parse_current("-0.5").is_err());
        assert!(parse_current("NaN").is_err());
        assert!(parse_total("0").is_err());
        assert!(parse_total("12").is_ok());
    }
}
