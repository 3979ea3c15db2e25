//! `progress-hub`: the single binary. Each subcommand lives in its own
//! module and delegates to a library crate.

mod cmd_demo;
mod cmd_serve;
mod cmd_token;

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
    Serve(Box<cmd_serve::ServeArgs>),
    /// Simulated operations against a hub (started in-process when none answers).
    Demo(cmd_demo::DemoArgs),
    /// Mint a token for the hub (signed with its secret or a private key).
    Token(cmd_token::TokenArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Serve(args) => cmd_serve::main(*args),
        Cmd::Demo(args) => cmd_demo::main(args),
        Cmd::Token(args) => cmd_token::main(args),
    };
    std::process::exit(code);
}
