//! The apply lock on the command line: the flags every applying command
//! shares (`--lock-timeout`, `--lock-mount`), turning SIGTERM/SIGINT into a
//! stop between two changes (so the lock is released, not left to expire),
//! and `certplane force-unlock`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use super::ExitStatus;
use super::commands::fail;
use crate::pipeline::Locking;
use crate::vault::lock::{Holder, LockSettings, rfc3339};

/// Flags of the apply lock.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// How long to wait when another certplane holds the apply lock
    /// (Go-style: 0s fails at once, 2m waits up to two minutes).
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: crate::model::Duration,
    /// The KV version 2 mount holding the apply lock (created on first use).
    #[arg(long, value_name = "PATH")]
    pub lock_mount: Option<String>,
}

impl LockArgs {
    /// The lock settings; a bad mount path is printed and refused.
    pub fn settings(&self) -> Result<LockSettings, ExitStatus> {
        LockSettings::new(
            self.lock_mount.as_deref(),
            std::time::Duration::from_secs(self.lock_timeout.as_secs()),
        )
        .map_err(|e| fail(&e))
    }

    /// How this process takes the lock to apply `repository`.
    pub fn locking(&self, repository: &str) -> Result<Locking, ExitStatus> {
        Ok(Locking {
            settings: self.settings()?,
            holder: Holder::current(repository),
        })
    }
}

/// The repository as the lock record names it: its absolute path.
pub fn repository_name(dir: &Path) -> String {
    dir.canonicalize()
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// A stop requested by SIGTERM or SIGINT, from the moment it is installed:
/// the apply stops before its next change and releases the lock.
#[derive(Clone, Debug)]
pub struct StopOnSignal {
    flag: Arc<AtomicBool>,
}

impl StopOnSignal {
    /// Installs the handlers (replacing the default: being killed).
    pub fn install() -> Result<StopOnSignal, std::io::Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let flag = Arc::new(AtomicBool::new(false));
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let set = flag.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("stop requested: stopping before the next change");
            set.store(true, Ordering::SeqCst);
        });
        Ok(StopOnSignal { flag })
    }

    /// Why to stop, once a signal came.
    pub fn reason(&self) -> Option<String> {
        self.flag
            .load(Ordering::SeqCst)
            .then(|| "interrupted by a signal (SIGTERM or SIGINT)".to_string())
    }
}

/// `certplane force-unlock [DIR]`: removes the apply lock whoever holds it,
/// and says whose it was. Connects like `apply` (the repository's
/// `certplane.yaml` and the environment); the repository need not be valid.
pub async fn force_unlock(dir: &Path, lock_mount: Option<&str>) -> ExitStatus {
    let settings = match LockSettings::new(lock_mount, std::time::Duration::ZERO) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let mut driver = super::commands::driver(None, Default::default());
    let me = Holder::current(repository_name(dir));
    match driver.force_unlock(dir, &settings, &me).await {
        Ok(Some(r)) => {
            let state = if r.expires <= crate::vault::observe::unix_now() {
                format!("lease expired at {}", rfc3339(r.expires))
            } else {
                format!("lease until {}", rfc3339(r.expires))
            };
            println!(
                "Removed the apply lock on {} held by {} since {} ({state}).",
                settings.mount,
                r.holder,
                rfc3339(r.since)
            );
            ExitStatus::Clean
        }
        Ok(None) => {
            println!("No certplane holds the apply lock on {}.", settings.mount);
            ExitStatus::Clean
        }
        Err(e) => super::commands::report(&e),
    }
}
