//! The command's whole process tree, for what `run` passes on: a cancel
//! from the hub (SIGTERM) or a signal a process sent `run` goes to the
//! command and to every process it started (`sh -c 'a; b'` runs `b` as a
//! grandchild, which would otherwise keep running, and keep the output
//! pipes open, after the shell died).
//!
//! The tree is read from `/proc` (each process's parent), not from a
//! process group: the command stays in `run`'s group, so a terminal's
//! job control (Ctrl-C to the foreground group, reading the tty without
//! SIGTTIN) works as without `run`. What this cannot reach: a process that
//! already left the tree (a daemon that double-forked, reparented to
//! init) — `run` does not wait long for the output it holds open
//! (`cmd_run::OUTPUT_GRACE`). The read is bounded ([`MAX_SCANNED`]
//! processes looked at, [`MAX_TREE`] signalled).

use std::collections::{HashMap, HashSet};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Processes of `/proc` looked at, at most.
pub const MAX_SCANNED: usize = 65_536;

/// Descendants signalled, at most.
pub const MAX_TREE: usize = 4_096;

/// Sends `signal` to `root` and to every descendant of it found in `/proc`
/// (collected first, so that one reparented as its parent dies is still
/// reached).
pub fn signal_tree(root: Pid, signal: Signal) {
    let tree = descendants(root.as_raw(), &processes());
    let _ = kill(root, signal);
    for pid in tree {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// `(pid, parent pid)` of the processes in `/proc` (at most [`MAX_SCANNED`]).
fn processes() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .take(MAX_SCANNED)
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parent_of(&stat)?))
        })
        .collect()
}

/// The parent pid in a `/proc/<pid>/stat` line: the second field after
/// the command name, which is in parentheses and may hold anything.
fn parent_of(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Every descendant of `root` (not `root` itself), parents before their
/// children, at most [`MAX_TREE`].
fn descendants(root: i32, procs: &[(i32, i32)]) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for &(pid, ppid) in procs {
        children.entry(ppid).or_default().push(pid);
    }
    let mut found = Vec::new();
    let mut seen = HashSet::from([root]);
    let mut next = 0;
    let mut parent = root;
    loop {
        for &c in children.get(&parent).map(Vec::as_slice).unwrap_or(&[]) {
            if found.len() >= MAX_TREE {
                return found;
            }
            if seen.insert(c) {
                found.push(c);
            }
        }
        let Some(&p) = found.get(next) else {
            return found;
        };
        parent = p;
        next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_past_any_command_name() {
        assert_eq!(parent_of("42 (sleep) S 7 42 7 0"), Some(7));
        assert_eq!(parent_of("42 (a) b) (c) R 9 1 1"), Some(9));
        assert_eq!(parent_of("42 (x"), None);
    }

    #[test]
    fn the_whole_tree_and_nothing_else() {
        let procs = [
            (1, 0),
            (10, 1),
            (11, 10),
            (12, 11),
            (13, 10),
            (20, 1),
            (21, 20),
        ];
        assert_eq!(descendants(10, &procs), vec![11, 13, 12]);
        assert_eq!(descendants(12, &procs), Vec::<i32>::new());
        assert_eq!(descendants(99, &procs), Vec::<i32>::new());
    }

    #[test]
    fn a_cycle_does_not_loop() {
        // /proc read while pids were reused: never loop on it.
        let procs = [(10, 11), (11, 10)];
        assert_eq!(descendants(10, &procs), vec![11]);
    }

    #[test]
    fn the_tree_is_bounded() {
        let procs: Vec<(i32, i32)> = (2..MAX_TREE as i32 + 100).map(|p| (p, 1)).collect();
        assert_eq!(descendants(1, &procs).len(), MAX_TREE);
    }

    #[test]
    fn this_process_has_no_descendants_but_its_children() {
        let procs = processes();
        let me = std::process::id() as i32;
        assert!(procs.iter().any(|&(p, _)| p == me));
        assert!(descendants(me, &procs).iter().all(|&p| p != me));
    }
}
