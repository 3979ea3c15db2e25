//! A damaged store file can make the storage engine panic (redb asserts its
//! file layout in places instead of returning an error). [`no_panic`] turns
//! such a panic into [`StoreError::Corrupt`] naming the file, so a hub on a
//! damaged file refuses to start with a message that says what to do, and a
//! commit on one fails (`STORE_UNAVAILABLE`) instead of killing the writer
//! thread.

use crate::{StoreError, DAMAGED_ADVICE};
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

/// Runs `f`; a panic inside it, or a corruption it reports, becomes
/// [`StoreError::Corrupt`] naming `path` and saying what to do. With
/// `quiet`, the panic is not printed when it happens on this thread (at
/// start-up, where the error says it all); other threads' panics are
/// printed as usual.
pub(crate) fn no_panic<T>(
    path: &Path,
    what: &str,
    quiet: bool,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let result = if quiet {
        quietly(|| panic::catch_unwind(AssertUnwindSafe(f)))
    } else {
        panic::catch_unwind(AssertUnwindSafe(f))
    };
    match result {
        Ok(Err(StoreError::Corrupt(detail))) => Err(damaged(path, what, &detail)),
        Ok(other) => other,
        Err(payload) => Err(damaged(path, what, &message(&*payload))),
    }
}

/// An error met opening the store file, told about that file: redb reports
/// some damage (a file too short, a header that does not parse) as I/O
/// errors of these kinds; other I/O errors (a directory in its place, no
/// permission) name the file.
pub(crate) fn on_open(path: &Path, e: StoreError) -> StoreError {
    match e {
        StoreError::Io { source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            damaged(path, "opening it", &source.to_string())
        }
        StoreError::Io { source, .. } => StoreError::Open {
            path: path.to_owned(),
            source,
        },
        other => other,
    }
}

fn damaged(path: &Path, what: &str, detail: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the store file {} is damaged (found while {what}: {detail}). {DAMAGED_ADVICE}",
        path.display()
    ))
}

/// Runs `f` with panics on this thread not printed.
fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let me = std::thread::current().id();
    let previous = std::sync::Arc::new(panic::take_hook());
    let forward = previous.clone();
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != me {
            forward(info);
        }
    }));
    let out = f();
    drop(panic::take_hook());
    match std::sync::Arc::try_unwrap(previous) {
        Ok(hook) => panic::set_hook(hook),
        // Another thread is inside our hook right now: keep forwarding.
        Err(shared) => panic::set_hook(Box::new(move |info| shared(info))),
    }
    out
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_corrupt_error_naming_the_file() {
        let err = no_panic(
            Path::new("/d/events.redb"),
            "loading",
            true,
            || -> Result<(), _> { panic!("assertion failed: layout") },
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        assert!(
            text.contains("/d/events.redb") && text.contains("assertion failed: layout"),
            "{text}"
        );
    }

    #[test]
    fn a_reported_corruption_is_told_the_same_way() {
        let err = no_panic(
            Path::new("/d/events.redb"),
            "opening it",
            false,
            || -> Result<(), _> { Err(StoreError::Corrupt("all roots are corrupted".into())) },
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/d/events.redb is damaged") && text.contains("all roots"),
            "{text}"
        );
    }

    #[test]
    fn results_pass_through() {
        let ok = no_panic(Path::new("f"), "x", false, || Ok::<_, StoreError>(7));
        assert_eq!(ok.unwrap(), 7);
        let err = no_panic(Path::new("f"), "x", false, || {
            Err::<(), _>(StoreError::Closed)
        });
        assert!(matches!(err, Err(StoreError::Closed)));
        // A commit's I/O error (a full disk) stays what it is.
        let full = || StoreError::Io {
            context: "committing",
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        let err = no_panic(Path::new("f"), "committing", false, || Err::<(), _>(full()));
        assert!(matches!(err, Err(StoreError::Io { .. })), "{err:?}");
        // Opening, it names the file; redb's "invalid data" is damage.
        let err = on_open(Path::new("/d/events.redb"), full()).to_string();
        assert!(
            err.starts_with("cannot open the store file /d/events.redb"),
            "{err}"
        );
        let bad = StoreError::Io {
            context: "opening the database",
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        };
        let err = on_open(Path::new("/d/events.redb"), bad).to_string();
        assert!(err.contains("/d/events.redb is damaged"), "{err}");
    }
}
