//! How `run` takes signals and passes them on: SIGINT, SIGTERM, SIGHUP and
//! SIGQUIT are blocked in every thread (from `main`, before the runtime
//! starts) and read from a signalfd, which says who sent each one (a
//! process, or the kernel for a terminal's Ctrl-C that the command got
//! too); the user's command is started through a hidden subcommand that
//! clears the inherited mask and `exec`s it in place.

use std::time::Duration;

use futures_util::FutureExt;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::mpsc;

/// The signals the tool catches instead of dying of them.
const CAUGHT: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Who sent a caught signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A process (`kill`, `sigqueue`), with its pid: only the tool got it.
    Process(u32),
    /// The kernel: a terminal's Ctrl-C, sent to the whole foreground
    /// process group, so the child got it too.
    Kernel,
    /// Not known (tokio's handlers, the fallback): treated as a process.
    Unknown,
}

/// A signal of [`CAUGHT`] the tool received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caught {
    pub(crate) signal: Signal,
    origin: Origin,
}

impl Caught {
    /// From a signalfd record: `si_code` <= 0 (`SI_USER`, `SI_QUEUE`,
    /// `SI_TKILL`...) was sent by a process, > 0 (`SI_KERNEL`) by the kernel.
    fn from_siginfo(info: &nix::sys::signalfd::siginfo) -> Option<Caught> {
        let signal = Signal::try_from(i32::try_from(info.ssi_signo).ok()?).ok()?;
        let origin = if info.ssi_code <= 0 {
            Origin::Process(info.ssi_pid)
        } else {
            Origin::Kernel
        };
        Some(Caught { signal, origin })
    }

    /// Whether the child still has to be sent this signal.
    pub(crate) fn must_pass_on(&self) -> bool {
        self.origin != Origin::Kernel
    }

    pub(crate) fn describe(&self) -> String {
        let name = self.signal.as_str();
        match self.origin {
            Origin::Process(pid) => format!("{name} from pid {pid}"),
            Origin::Kernel => format!("{name} from the terminal"),
            Origin::Unknown => name.to_owned(),
        }
    }
}

/// Where the signals of [`CAUGHT`] are read (tokio's fallback handlers take SIGINT and SIGTERM only).
pub(crate) enum Signals {
    /// Blocked in every thread and read from a signalfd, with their origin.
    Fd(mpsc::UnboundedReceiver<Caught>),
    /// tokio's handlers: the origin is unknown.
    Handlers(tokio::signal::unix::Signal, tokio::signal::unix::Signal),
    /// Not caught (their default action stays).
    Default,
}

impl Signals {
    pub(crate) fn install() -> Signals {
        let set = SigSet::from_iter(CAUGHT);
        if caught_signals_blocked() {
            if let Ok(fd) = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC) {
                // A thread of its own reads them (it starts with this
                // thread's mask, blocking them too).
                let (tx, rx) = mpsc::unbounded_channel();
                let reader = std::thread::Builder::new()
                    .name("signals".into())
                    .spawn(move || {
                        while let Ok(Some(info)) = fd.read_signal() {
                            if let Some(caught) = Caught::from_siginfo(&info) {
                                if tx.send(caught).is_err() {
                                    return;
                                }
                            }
                        }
                    });
                if reader.is_ok() {
                    return Signals::Fd(rx);
                }
            }
        }
        // The handlers first, then unblock: a signal is never left to its
        // default action in between.
        use tokio::signal::unix::{signal, SignalKind};
        let caught = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(int), Ok(term)) => Signals::Handlers(int, term),
            _ => Signals::Default,
        };
        let _ = set.thread_unblock();
        caught
    }

    /// The next caught signal (never resolves when none can come).
    pub(crate) async fn recv(&mut self) -> Caught {
        match self {
            Signals::Fd(rx) => match rx.recv().await {
                Some(caught) => caught,
                None => std::future::pending().await,
            },
            Signals::Handlers(int, term) => {
                let signal = tokio::select! {
                    Some(()) = int.recv() => Signal::SIGINT,
                    Some(()) = term.recv() => Signal::SIGTERM,
                    else => std::future::pending().await,
                };
                Caught {
                    signal,
                    origin: Origin::Unknown,
                }
            }
            Signals::Default => std::future::pending().await,
        }
    }

    /// A signal already received and not read yet.
    pub(crate) fn try_recv(&mut self) -> Option<Caught> {
        match self {
            Signals::Fd(rx) => rx.try_recv().ok(),
            Signals::Handlers(..) => self.recv().now_or_never(),
            Signals::Default => None,
        }
    }
}

/// Blocks the signals of [`CAUGHT`] in the calling thread; `main` calls it for
/// `run` before it starts the runtime, so every thread inherits the mask
/// and the signals wait for the signalfd instead of going to whichever
/// thread does not block them. (A child inherits the mask: the command is
/// started through [`command_with_clean_signals`].)
pub fn block_caught_signals() {
    let _ = SigSet::from_iter(CAUGHT).thread_block();
}

/// The hidden subcommand that starts the user's command with no signal
/// blocked: see [`command_with_clean_signals`].
pub const EXEC_SUBCOMMAND: &str = "__exec-unblocked";

/// The user's command, started so that it begins with no signal blocked.
/// Every thread of `run` blocks the caught signals (for the signalfd), a
/// child inherits its parent's mask across `exec`, and the standard
/// library does not reset it: started directly, the command would never
/// see SIGINT or SIGTERM. So it is started through this binary's
/// [`EXEC_SUBCOMMAND`] ([`exec_unblocked`]), which clears the mask and
/// `exec`s it in place (same pid). Without a path to this binary it is
/// started directly.
pub(crate) fn command_with_clean_signals(argv: &[String]) -> Command {
    match std::env::current_exe() {
        Ok(me) => {
            let mut c = Command::new(me);
            c.arg(EXEC_SUBCOMMAND).arg("--").args(argv);
            c
        }
        Err(_) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
    }
}

/// Waits (at most 2 s) until the child started through [`EXEC_SUBCOMMAND`]
/// has become the user's command, so that a signal or cancel passed on
/// meets the command (with its own handlers), not this binary in between,
/// which would die of it before the command ever ran. Signals caught
/// meanwhile wait in the signalfd's queue.
pub(crate) async fn until_execd(pid: Pid) {
    let (Ok(me), exe) = (std::env::current_exe(), format!("/proc/{pid}/exe")) else {
        return;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        match std::fs::read_link(&exe) {
            Ok(now) if now != me => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            // Gone already (it exited or failed to exec), or no /proc.
            Err(_) => return,
        }
    }
}

/// [`EXEC_SUBCOMMAND`]: unblocks every signal and replaces this process
/// with `argv` (returns only when that fails: 127 when the command is not
/// found, else 126, as shells do).
pub fn exec_unblocked(argv: &[String]) -> i32 {
    use std::os::unix::process::CommandExt;
    let Some((program, rest)) = argv.split_first() else {
        eprintln!("progress-hub: nothing to run");
        return 127;
    };
    let _ = SigSet::all().thread_unblock();
    let e = std::process::Command::new(program).args(rest).exec();
    eprintln!("progress-hub: cannot run {program:?}: {e}");
    if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

/// Whether this thread (and so, as `main` arranged, every thread) blocks
/// the caught signals.
fn caught_signals_blocked() -> bool {
    SigSet::thread_get_mask().is_ok_and(|m| CAUGHT.iter().all(|s| m.contains(*s)))
}
