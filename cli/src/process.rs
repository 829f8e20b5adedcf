//! What one `ferry` worker process owns: its database (one worker process per
//! database) and how it is asked to stop (Ctrl-C or SIGTERM).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Holds the advisory lock on `<db>.lock` while the process runs workers on
/// `<db>`. The operating system releases it when the process ends, however it
/// ends, so a crash never leaves the database locked.
#[derive(Debug)]
pub struct WorkerLock {
    _file: File,
    pub path: PathBuf,
}

/// Why a worker lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{db} is in use by another ferry process{}; one process works on a database at a \
         time (give each tenant or demo its own --db), or stop the other process first",
        pid.as_deref().map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    InUse { db: String, pid: Option<String> },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl WorkerLock {
    /// Takes the lock at once or says who holds it; never waits.
    pub fn acquire(db: &Path) -> Result<WorkerLock, LockError> {
        let path = PathBuf::from(format!("{}.lock", db.display()));
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                file.rewind().map_err(io)?;
                write!(file, "{}", std::process::id()).map_err(io)?;
                file.flush().map_err(io)?;
                Ok(WorkerLock { _file: file, path })
            }
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                Err(LockError::InUse {
                    db: db.display().to_string(),
                    pid: (!pid.is_empty()).then(|| pid.to_string()),
                })
            }
            Err(TryLockError::Error(e)) => Err(io(e)),
        }
    }
}

/// Resolves when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM.
/// Returns the signal's name.
pub async fn stop_requested() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// A reader that stopped reading (`ferry … --json | head`) ends the process
/// quietly, as it ends any Unix tool, instead of a panic with a backtrace:
/// Rust ignores SIGPIPE, so a print to a closed pipe panics, and this hook
/// turns exactly that panic into the exit status a SIGPIPE would give (141).
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_worker_on_one_database_is_refused_and_told_who_holds_it() {
        let dir = std::env::temp_dir().join(format!("ferry-lock-{}", std::process::id()));
        let db = dir.join("one.db");
        let first = WorkerLock::acquire(&db).expect("the first worker takes the lock");
        match WorkerLock::acquire(&db) {
            Err(LockError::InUse { pid, .. }) => {
                assert_eq!(pid, Some(std::process::id().to_string()))
            }
            other => panic!("a second worker must be refused, got {other:?}"),
        }
        let other_db = dir.join("two.db");
        let _second = WorkerLock::acquire(&other_db).expect("another database is free");
        drop(first);
        let _again = WorkerLock::acquire(&db).expect("the lock is free once the holder ends");
        let _ = std::fs::remove_dir_all(dir);
    }
}
