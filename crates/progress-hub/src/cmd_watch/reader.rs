//! Noticing that stdout's reader went away without writing to it.
//!
//! `watch` learns of a closed pipe from a failed write, but a quiet
//! namespace (or `--json`, whose status lines go to stderr) may write
//! nothing for hours: `watch --json | head -1` would never end. A thread
//! waits in `poll(2)` on fd 1 with no events asked for: the kernel still
//! reports `POLLERR` (a pipe whose read end closed) and `POLLHUP` (a socket
//! whose peer is gone). Only pipes and sockets are watched; a regular file,
//! `/dev/null` or a terminal never ends `watch` this way.

use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use tokio::sync::oneshot;

/// Whether `revents` (from `poll` on a writer's fd) says the reader is gone.
pub fn reader_gone(revents: PollFlags) -> bool {
    revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)
}

/// Whether stdout is a pipe or a socket (something a reader can leave).
fn stdout_has_reader() -> bool {
    let Ok(fd) = std::io::stdout().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
}

/// Resolves once stdout's reader has gone away; never when stdout is not a
/// pipe or socket, or when `poll` cannot be used.
pub async fn stdout_closed() {
    if !stdout_has_reader() {
        return std::future::pending().await;
    }
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("stdout-reader".into())
        .spawn(move || {
            let stdout = std::io::stdout();
            loop {
                let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {
                        if fds[0].revents().is_some_and(reader_gone) {
                            let _ = tx.send(());
                            return;
                        }
                    }
                    Err(Errno::EINTR) => {}
                    // Not pollable after all: say nothing (writes still
                    // notice a closed pipe).
                    Err(_) => return,
                }
            }
        });
    if spawned.is_ok() && rx.await.is_ok() {
        return;
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn err_or_hup_is_gone() {
        assert!(reader_gone(PollFlags::POLLERR));
        assert!(reader_gone(PollFlags::POLLHUP | PollFlags::POLLOUT));
        assert!(!reader_gone(PollFlags::POLLOUT));
        assert!(!reader_gone(PollFlags::empty()));
    }

    #[test]
    fn a_pipe_whose_read_end_closed_polls_as_gone() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut fds = [PollFd::new(w.as_fd(), PollFlags::empty())];
        assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 0, "open pipe");
        drop(r);
        let mut fds = [PollFd::new(w.as_fd(), PollFlags::empty())];
        assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 1);
        assert!(fds[0].revents().is_some_and(reader_gone));
    }
}
