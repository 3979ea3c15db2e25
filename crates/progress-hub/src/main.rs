//! `progress-hub`: the single binary. Each subcommand lives in its own
//! module and delegates to a library crate.

mod ca_cert;
mod cmd_demo;
mod cmd_report;
mod cmd_run;
mod cmd_serve;
mod cmd_token;
mod cmd_top;
mod cmd_watch;
mod report_known;
mod run_lines;
mod run_output;
mod run_signals;
mod run_tree;

use clap::{Parser, Subcommand};

/// A real-time progress hub: producers report long-running operations,
/// viewers watch them live and resume exactly after a disconnect.
#[derive(Parser)]
#[command(name = "progress-hub", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the hub.
    #[command(
        after_help = "Every flag is also read from the environment as PROGRESS_HUB_<FLAG> \
(--max-message-size: PROGRESS_HUB_MAX_MESSAGE_SIZE) and from the TOML file given by --config \
or PROGRESS_HUB_CONFIG (max_message_size = 65536); precedence: flag > environment > file > \
default. The full table: docs/OPERATIONS.md."
    )]
    Serve(Box<cmd_serve::ServeArgs>),
    /// Simulated operations against a hub (started in-process when none answers).
    Demo(cmd_demo::DemoArgs),
    /// Mint a token for the hub (signed with its secret or a private key).
    Token(cmd_token::TokenArgs),
    /// Report an operation from a shell script: start, progress, complete, fail.
    Report(cmd_report::ReportArgs),
    /// Run a command and report its progress (parsed from its output) and outcome.
    ///
    /// A cancel from the hub, or a signal a process sends `run`, goes to the
    /// command's whole process tree; once the command ended, `run` waits at
    /// most 2 s more for its output to close. When `run`'s own stdout is
    /// gone, the command gets SIGPIPE, as in a pipeline without `run`.
    Run(cmd_run::RunArgs),
    /// Line-mode live view of a namespace.
    Watch(cmd_watch::WatchArgs),
    /// Full-screen terminal dashboard.
    Top(cmd_top::TopArgs),
    /// Benchmarks on loopback: fan-out, latency, idle memory, durable events (against Socket.IO too).
    Bench(hub_bench::BenchArgs),
}

/// Runs an async client subcommand to its exit code.
fn block_on(fut: impl std::future::Future<Output = anyhow::Result<i32>>) -> i32 {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => match rt.block_on(fut) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("progress-hub: {e:#}");
                1
            }
        },
        Err(e) => {
            eprintln!("progress-hub: cannot start the runtime: {e}");
            1
        }
    }
}

fn main() {
    // `run`'s trampoline first, before anything else: the command it starts
    // is waiting for it.
    let mut args = std::env::args();
    if args.nth(1).as_deref() == Some(run_signals::EXEC_SUBCOMMAND) {
        let argv: Vec<String> = args.skip_while(|a| a == "--").collect();
        std::process::exit(run_signals::exec_unblocked(&argv));
    }
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Serve(args) => cmd_serve::main(*args),
        Cmd::Demo(args) => cmd_demo::main(args),
        Cmd::Token(args) => cmd_token::main(args),
        Cmd::Report(args) => block_on(cmd_report::run(args)),
        Cmd::Run(args) => {
            // Before any thread exists, so that every one inherits it.
            run_signals::block_caught_signals();
            block_on(cmd_run::run(args))
        }
        Cmd::Watch(args) => block_on(cmd_watch::run(args)),
        Cmd::Top(args) => cmd_top::main(args),
        Cmd::Bench(args) => hub_bench::main(args),
    };
    std::process::exit(code);
}
