//! Where `run` sends the command's output. When `run`'s own stdout and
//! stderr are one destination (`2>&1`, or both the same terminal), the
//! command gets one pipe for both, so its lines keep the order it wrote
//! them in (two pipes read apart would shuffle them), and everything goes
//! to our stdout. Otherwise it gets two pipes, passed to stdout and
//! stderr as they are. Also: whether the command can be executed at all
//! ([`cannot_run`]), checked before `run` starts it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Stdio;

use tokio::net::unix::pipe::Receiver;

/// The identity of an open file: device and inode, and for a terminal
/// (or other character device) the device it stands for.
fn identity(fd: impl AsFd) -> Option<(u64, u64, Option<u64>)> {
    let file = File::from(fd.as_fd().try_clone_to_owned().ok()?);
    let meta = file.metadata().ok()?;
    let rdev = meta.file_type().is_char_device().then(|| meta.rdev());
    Some((meta.dev(), meta.ino(), rdev))
}

/// Whether our stdout and stderr are the same file (or open file
/// description), or two openings of the same terminal.
pub fn one_destination() -> bool {
    match (identity(io::stdout()), identity(io::stderr())) {
        (Some((d1, i1, r1)), Some((d2, i2, r2))) => {
            (d1, i1) == (d2, i2) || (r1.is_some() && r1 == r2)
        }
        _ => false,
    }
}

/// One pipe for the command's stdout and stderr: the reading end, and
/// the writing end twice (for `Command::stdout` and `Command::stderr`;
/// drop the command after spawning it so that the reader sees EOF).
pub fn merged_pipe() -> io::Result<(Receiver, Stdio, Stdio)> {
    let (reader, writer) = io::pipe()?;
    let second = writer.try_clone()?;
    let receiver = Receiver::from_owned_fd(OwnedFd::from(reader))?;
    Ok((receiver, Stdio::from(writer), Stdio::from(second)))
}

/// Why `program` cannot be executed, looked up like `execvp` does (in
/// `PATH` unless it names a path): `NotFound` (exit 127) or
/// `PermissionDenied` (exit 126); `None` when it can be.
pub fn cannot_run(program: &str) -> Option<io::Error> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| match std::fs::metadata(p) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => Err(io::ErrorKind::PermissionDenied),
        Err(e) => Err(e.kind()),
    };
    if program.contains('/') {
        return executable(std::path::Path::new(program)).err().map(|k| {
            io::Error::from(if k == io::ErrorKind::PermissionDenied {
                k
            } else {
                io::ErrorKind::NotFound
            })
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = false;
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            ".".into()
        } else {
            dir
        };
        match executable(&dir.join(program)) {
            Ok(()) => return None,
            Err(io::ErrorKind::PermissionDenied) => denied = true,
            Err(_) => {}
        }
    }
    Some(io::Error::from(if denied {
        io::ErrorKind::PermissionDenied
    } else {
        io::ErrorKind::NotFound
    }))
}

/// "not found", "permission denied", else the error as the OS says it.
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "not found".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_that_cannot_run_are_found() {
        assert!(cannot_run("sh").is_none());
        assert!(cannot_run("/bin/sh").is_none());
        let e = cannot_run("no-such-command-xyz").unwrap();
        assert_eq!(describe(&e), "not found");
        assert_eq!(describe(&cannot_run("/no/such/file").unwrap()), "not found");
        let plain = std::env::temp_dir().join(format!("ph-not-exec-{}", std::process::id()));
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        let e = cannot_run(plain.to_str().unwrap());
        std::fs::remove_file(&plain).unwrap();
        assert_eq!(describe(&e.unwrap()), "permission denied");
        assert_eq!(describe(&cannot_run("/tmp").unwrap()), "permission denied");
    }
}
