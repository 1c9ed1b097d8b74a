//! The apply lock: one certplane at a time writes to a Vault.
//!
//! Every certplane that applies to the same Vault (CI jobs, the `run` loop,
//! a laptop) shares that Vault, so the lock lives there: a KV version 2
//! secret, `<mount>/data/lock` (mount `certplane` unless `--lock-mount`
//! says otherwise), written only with check-and-set (`options.cas`). A free
//! lock (none yet: `cas=0`; released, or its lease expired because its
//! holder died: `cas=<current version>`) is taken by the one writer whose
//! `cas` still matches; every other writer gets "check-and-set parameter did
//! not match" and sees the new holder on its next read. The holder renews
//! its lease while it applies ([`ApplyLock::hold`]) and releases it by
//! writing the record again, marked released, with `cas`.
//!
//! The record names its holder (host or pod, pid, repository, certplane
//! version), when it was taken, and when its lease ends. The mount is
//! created on first use, tagged like every mount certplane makes
//! (`managed-by: certplane`); it is a KV engine, so prune never considers
//! it. The same mount keeps the record of an intermediate whose signed
//! certificate was not yet imported (see `issuer.rs`), so that a resumed
//! apply does not ask the parent to sign again.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::observe::unix_now;
use super::{Vault, VaultError};

/// The KV v2 mount of the lock unless configured otherwise.
pub const DEFAULT_LOCK_MOUNT: &str = "certplane";

/// The key of the lock inside the mount.
pub const LOCK_KEY: &str = "lock";

/// How long a lease lasts after its last renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// The shortest and longest wait between two attempts on a held lock.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a KV mount may answer "upgrading to versioned data" (it does for
/// a moment after it is created, also when another certplane created it).
const UPGRADE_WAIT: Duration = Duration::from_secs(30);

/// Where the lock lives and how long to wait for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockSettings {
    /// The KV v2 mount (created on first use).
    pub mount: String,
    /// How long to wait for a held lock (zero: fail at once).
    pub timeout: Duration,
    /// The lease: a holder that does not renew within it is presumed dead.
    pub lease: Duration,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            mount: DEFAULT_LOCK_MOUNT.into(),
            timeout: Duration::ZERO,
            lease: DEFAULT_LEASE,
        }
    }
}

impl LockSettings {
    /// Settings from the flags: `mount` (`None`: [`DEFAULT_LOCK_MOUNT`]) and
    /// the wait. A mount path that Vault cannot take is refused here, before
    /// any request.
    pub fn new(mount: Option<&str>, timeout: Duration) -> Result<Self, LockError> {
        let mount = mount
            .map(|m| m.trim().trim_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_LOCK_MOUNT.into());
        let valid = !mount.is_empty()
            && mount
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
            && !mount
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            && !matches!(
                mount.split('/').next(),
                Some("sys" | "auth" | "identity" | "cubbyhole")
            );
        if !valid {
            return Err(LockError::BadMount { mount });
        }
        Ok(LockSettings {
            mount,
            timeout,
            ..LockSettings::default()
        })
    }

    fn data_path(&self) -> String {
        format!("{}/data/{LOCK_KEY}", self.mount)
    }

    fn metadata_path(&self) -> String {
        format!("{}/metadata/{LOCK_KEY}", self.mount)
    }
}

/// Who holds (or wants) the lock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Holder {
    /// The pod name (`POD_NAME`) or the hostname.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// What is being applied: the repository directory, or `URL@branch`.
    pub repository: String,
    /// The certplane version.
    pub version: String,
}

impl Holder {
    /// This process, applying `repository`.
    pub fn current(repository: impl Into<String>) -> Holder {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let host = env("POD_NAME")
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
            })
            .or_else(|| env("HOSTNAME"))
            .unwrap_or_else(|| "unknown-host".into());
        Holder {
            host,
            pid: std::process::id(),
            repository: repository.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pid {}, repository {}, certplane {}",
            self.host, self.pid, self.repository, self.version
        )
    }
}

/// The lock as stored in Vault. `expires` and `released` are the contract
/// every certplane version keeps (a record without `expires` is not a lock
/// and is taken over); the rest is for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Who took it.
    #[serde(default)]
    pub holder: Holder,
    /// When it was taken (Unix seconds).
    #[serde(default)]
    pub since: i64,
    /// When the lease ends unless renewed (Unix seconds).
    pub expires: i64,
    /// Whether its holder released it (or `force-unlock` removed it).
    #[serde(default)]
    pub released: bool,
    /// Who removed it with `force-unlock`, if someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_by: Option<String>,
}

/// An RFC 3339 UTC time, for messages.
pub fn rfc3339(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("@{unix}"))
}

/// Why the lock could not be taken, kept or given back.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another certplane holds the lock.
    #[error(
        "another certplane is applying (holder {holder}, since {}); wait for it and run again, \
         pass --lock-timeout 2m to wait, or, if that process is gone, run `certplane force-unlock` \
         (its lease also expires by itself at {})",
        rfc3339(*since),
        rfc3339(*expires)
    )]
    Held {
        /// The holder.
        holder: Holder,
        /// When it took the lock.
        since: i64,
        /// When its lease ends unless renewed.
        expires: i64,
    },
    /// The lock was lost while applying: its lease could not be renewed in
    /// time, or someone else took it.
    #[error(
        "the apply lock on {mount} was lost while applying ({why}); stopped before the next change"
    )]
    Lost {
        /// The lock mount.
        mount: String,
        /// What happened.
        why: String,
    },
    /// The mount path cannot hold the lock.
    #[error(
        "invalid lock mount {mount:?}: use a path such as certplane (letters, digits, '-', '_', '.', '/'; not under sys/, auth/, identity/ or cubbyhole/)"
    )]
    BadMount {
        /// The mount as given.
        mount: String,
    },
    /// The mount exists and is not a KV version 2 engine.
    #[error(
        "the lock mount {mount} is a {kind} engine, not KV version 2; pass --lock-mount with a path certplane may create"
    )]
    NotKv2 {
        /// The mount.
        mount: String,
        /// What it is.
        kind: String,
    },
    /// Stopped (SIGTERM, Ctrl-C) while waiting for the lock.
    #[error("interrupted while waiting for the apply lock")]
    Interrupted,
    /// Vault refused or failed a lock call.
    #[error("apply lock on {mount}")]
    Vault {
        /// The lock mount.
        mount: String,
        /// Why.
        #[source]
        source: Box<VaultError>,
    },
}

impl LockError {
    fn vault(mount: &str) -> impl FnOnce(VaultError) -> LockError + '_ {
        move |source| LockError::Vault {
            mount: mount.to_string(),
            source: Box::new(source),
        }
    }
}

/// What a read of the lock found, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it: take it with this `cas`.
    Free {
        /// The version to check-and-set against (0: none yet).
        cas: u64,
    },
    /// Its holder's lease expired without a release (the holder crashed):
    /// break it with this `cas`.
    Stale {
        /// The version to check-and-set against.
        cas: u64,
        /// The dead holder's record.
        record: LockRecord,
    },
    /// Someone holds it.
    Held {
        /// The version.
        version: u64,
        /// The holder's record.
        record: LockRecord,
    },
}

/// Decides what to do about the lock as read: `current` is the latest
/// version and its record (`None`: no record, or its latest version was
/// deleted by hand), `latest` the current version number from the metadata.
pub fn decide(current: Option<(u64, Option<LockRecord>)>, latest: u64, now: i64) -> LockState {
    match current {
        None => LockState::Free { cas: latest },
        // Not a lock record (no `expires`): nobody holds it.
        Some((v, None)) => LockState::Free { cas: v },
        Some((v, Some(r))) if r.released => LockState::Free { cas: v },
        Some((v, Some(r))) if r.expires <= now => LockState::Stale { cas: v, record: r },
        Some((v, Some(r))) => LockState::Held {
            version: v,
            record: r,
        },
    }
}

fn is_cas_mismatch(e: &VaultError) -> bool {
    matches!(e, VaultError::Api { status: 400, message, .. } if message.contains("check-and-set"))
}

fn is_no_route(e: &VaultError) -> bool {
    matches!(e, VaultError::Api { status: 404, .. })
}

/// Whether Vault refused a call because a KV mount made moments ago is still
/// being upgraded to version 2 (a 400, although it is a moment's wait).
fn is_upgrading(e: &VaultError) -> bool {
    matches!(e, VaultError::Api { status: 400, message, .. }
        if message.contains("Upgrading from non-versioned to versioned data"))
}

/// `call`, again while the lock mount is [upgrading](is_upgrading), for at
/// most [`UPGRADE_WAIT`].
async fn when_ready<T, F, Fut>(mut call: F) -> Result<T, VaultError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, VaultError>>,
{
    let deadline = Instant::now() + UPGRADE_WAIT;
    loop {
        match call().await {
            Err(e) if is_upgrading(&e) && Instant::now() < deadline => {
                tracing::debug!("the lock mount is being upgraded to kv version 2; waiting");
                tokio::time::sleep(BACKOFF_MIN).await;
            }
            other => return other,
        }
    }
}

/// Reads the lock: its version and record, if any.
async fn read(
    vault: &Vault,
    settings: &LockSettings,
) -> Result<(Option<(u64, Option<LockRecord>)>, u64), LockError> {
    let err = LockError::vault(&settings.mount);
    let data_path = settings.data_path();
    match when_ready(|| vault.read(&data_path)).await.map_err(err)? {
        Some(d) => {
            let version = d
                .pointer("/metadata/version")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let record = d
                .get("data")
                .cloned()
                .and_then(|r| serde_json::from_value::<LockRecord>(r).ok());
            Ok((Some((version, record)), version))
        }
        None => {
            // No record, or its latest version was deleted: the metadata has
            // the version number a write must check against.
            let err = LockError::vault(&settings.mount);
            let metadata_path = settings.metadata_path();
            let latest = when_ready(|| vault.read(&metadata_path))
                .await
                .map_err(err)?
                .and_then(|m| m.get("current_version").and_then(Value::as_u64))
                .unwrap_or(0);
            Ok((None, latest))
        }
    }
}

/// The lock as it is now, for messages (`None`: nobody holds it).
pub async fn holder(
    vault: &Vault,
    settings: &LockSettings,
) -> Result<Option<LockRecord>, LockError> {
    let (current, latest) = read(vault, settings).await?;
    Ok(match decide(current, latest, unix_now()) {
        LockState::Held { record, .. } | LockState::Stale { record, .. } => Some(record),
        LockState::Free { .. } => None,
    })
}

/// Writes `record` with check-and-set `cas`: the new version.
async fn write(
    vault: &Vault,
    settings: &LockSettings,
    cas: u64,
    record: &LockRecord,
) -> Result<u64, VaultError> {
    let path = settings.data_path();
    let body = json!({"options": {"cas": cas}, "data": record});
    let data = when_ready(|| vault.write(&path, &body)).await?;
    data.as_ref()
        .and_then(|d| d.get("version"))
        .and_then(Value::as_u64)
        .ok_or_else(|| VaultError::BadReply {
            op: "write",
            path,
            why: "no version in the reply: the lock mount is not a KV version 2 engine".into(),
        })
}

/// Creates the lock mount (KV version 2, tagged as certplane's), or checks
/// that the one there is KV version 2.
async fn ensure_mount(vault: &Vault, settings: &LockSettings) -> Result<(), LockError> {
    let mount = &settings.mount;
    let err = LockError::vault(mount);
    let (k, v) = super::prune::MANAGED_OPTION;
    let body = json!({
        "type": "kv",
        "description": "certplane: apply lock and interrupted-CA records",
        "options": {"version": "2", k: v},
    });
    match vault.write(&format!("sys/mounts/{mount}"), &body).await {
        Ok(_) => {
            tracing::info!(%mount, "created the apply lock mount (kv version 2)");
            Ok(())
        }
        Err(VaultError::Api {
            status: 400,
            message,
            ..
        }) if message.contains("already in use") => {
            let entry = vault
                .read(&format!("sys/mounts/{mount}"))
                .await
                .map_err(err)?
                .unwrap_or(Value::Null);
            let kind = entry["type"].as_str().unwrap_or("unknown").to_string();
            let version = entry["options"]["version"].as_str().unwrap_or("1");
            if kind == "kv" && version == "2" {
                Ok(())
            } else {
                Err(LockError::NotKv2 {
                    mount: mount.clone(),
                    kind: if kind == "kv" {
                        format!("kv version {version}")
                    } else {
                        kind
                    },
                })
            }
        }
        Err(e) => Err(err(e)),
    }
}

/// A lock this process holds. Renewed by [`ApplyLock::hold`], given back by
/// [`ApplyLock::release`]; a holder that crashes leaves it to expire.
#[derive(Debug)]
pub struct ApplyLock {
    settings: LockSettings,
    record: Mutex<LockRecord>,
    version: AtomicU64,
    lost: AtomicBool,
}

/// Takes the lock, waiting up to `settings.timeout` (with backoff) while
/// another certplane holds it. A lock whose lease expired is broken (with
/// a warning naming the dead holder). `stop` aborts the wait.
pub async fn acquire(
    vault: &Vault,
    settings: &LockSettings,
    holder: &Holder,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<ApplyLock, LockError> {
    let started = Instant::now();
    let mut backoff = BACKOFF_MIN;
    let mut announced = false;
    let mut mount_checked = false;
    loop {
        if stop() {
            return Err(LockError::Interrupted);
        }
        let (current, latest) = read(vault, settings).await?;
        let now = unix_now();
        let cas = match decide(current, latest, now) {
            LockState::Held { record, .. } => {
                let waited = started.elapsed();
                if waited >= settings.timeout {
                    return Err(LockError::Held {
                        holder: record.holder,
                        since: record.since,
                        expires: record.expires,
                    });
                }
                if !announced {
                    announced = true;
                    tracing::warn!(
                        holder = %record.holder,
                        since = %rfc3339(record.since),
                        "waiting up to {}s for the apply lock held by {}",
                        settings.timeout.as_secs(),
                        record.holder
                    );
                }
                let left = settings.timeout - waited;
                let jitter = Duration::from_millis(u64::from(rand_jitter()) % 100);
                tokio::time::sleep((backoff + jitter).min(left)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            LockState::Stale { cas, record } => {
                tracing::warn!(
                    holder = %record.holder,
                    expired = %rfc3339(record.expires),
                    "breaking a stale apply lock: its holder ({}) did not renew it and its lease ended at {}",
                    record.holder,
                    rfc3339(record.expires)
                );
                cas
            }
            LockState::Free { cas } => cas,
        };
        let record = LockRecord {
            holder: holder.clone(),
            since: now,
            expires: now + settings.lease.as_secs() as i64,
            released: false,
            removed_by: None,
        };
        match write(vault, settings, cas, &record).await {
            Ok(version) => {
                tracing::info!(mount = %settings.mount, version, "apply lock taken");
                return Ok(ApplyLock {
                    settings: settings.clone(),
                    record: Mutex::new(record),
                    version: AtomicU64::new(version),
                    lost: AtomicBool::new(false),
                });
            }
            // Another certplane took it between the read and the write: the
            // next read shows it.
            Err(e) if is_cas_mismatch(&e) => continue,
            Err(e) if is_no_route(&e) && !mount_checked => {
                mount_checked = true;
                ensure_mount(vault, settings).await?;
            }
            // A write without a version in its reply: KV version 1.
            Err(VaultError::BadReply { .. }) => {
                return Err(LockError::NotKv2 {
                    mount: settings.mount.clone(),
                    kind: "kv version 1".into(),
                });
            }
            Err(e) => return Err(LockError::vault(&settings.mount)(e)),
        }
    }
}

fn rand_jitter() -> u32 {
    use rand_core::RngCore as _;
    rand_core::OsRng.next_u32()
}

impl ApplyLock {
    /// The lock's mount.
    pub fn mount(&self) -> &str {
        &self.settings.mount
    }

    /// Why the lock can no longer be trusted (lost to another holder, or
    /// its lease ran out without a renewal), if so. Apply checks this
    /// before every change.
    pub fn lost(&self) -> Option<String> {
        if self.lost.load(Ordering::SeqCst) {
            return Some("another process took it over (force-unlock?)".into());
        }
        let expires = self.record.lock().map(|r| r.expires).unwrap_or(0);
        if unix_now() >= expires {
            return Some(format!(
                "its lease ended at {} without a renewal",
                rfc3339(expires)
            ));
        }
        None
    }

    /// Renews the lease once.
    async fn renew(&self, vault: &Vault) -> Result<(), VaultError> {
        let mut record = match self.record.lock() {
            Ok(r) => r.clone(),
            Err(_) => return Ok(()),
        };
        record.expires = unix_now() + self.settings.lease.as_secs() as i64;
        let cas = self.version.load(Ordering::SeqCst);
        let version = write(vault, &self.settings, cas, &record).await?;
        self.version.store(version, Ordering::SeqCst);
        if let Ok(mut r) = self.record.lock() {
            *r = record;
        }
        Ok(())
    }

    /// Runs `work` while renewing the lease every quarter of it, so that a
    /// long apply keeps the lock. A renewal that finds another version
    /// marks the lock lost ([`ApplyLock::lost`]).
    pub async fn hold<F: Future>(&self, vault: &Vault, work: F) -> F::Output {
        let done = tokio::sync::Notify::new();
        let period = (self.settings.lease / 4).max(Duration::from_secs(1));
        let work = async {
            let out = work.await;
            done.notify_one();
            out
        };
        let beat = async {
            let mut next = period;
            loop {
                tokio::select! {
                    _ = done.notified() => break,
                    _ = tokio::time::sleep(next) => {}
                }
                match self.renew(vault).await {
                    Ok(()) => next = period,
                    Err(e) if is_cas_mismatch(&e) => {
                        tracing::error!(mount = %self.settings.mount, "the apply lock was taken over by another process");
                        self.lost.store(true, Ordering::SeqCst);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the apply lock; retrying");
                        next = Duration::from_secs(2).min(period);
                    }
                }
            }
        };
        let (out, ()) = tokio::join!(work, beat);
        out
    }

    /// Gives the lock back (marks the record released, with check-and-set).
    pub async fn release(self, vault: &Vault) -> Result<(), LockError> {
        let mut record = match self.record.into_inner() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        record.released = true;
        record.expires = unix_now();
        let cas = self.version.load(Ordering::SeqCst);
        match write(vault, &self.settings, cas, &record).await {
            Ok(_) => {
                tracing::info!(mount = %self.settings.mount, "apply lock released");
                Ok(())
            }
            Err(e) if is_cas_mismatch(&e) => Err(LockError::Lost {
                mount: self.settings.mount.clone(),
                why: "another process took it over before it was released".into(),
            }),
            Err(e) => Err(LockError::vault(&self.settings.mount)(e)),
        }
    }
}

/// Removes the lock whoever holds it (`certplane force-unlock`): the
/// removed record, or `None` when nobody held it.
pub async fn force_unlock(
    vault: &Vault,
    settings: &LockSettings,
    by: &Holder,
) -> Result<Option<LockRecord>, LockError> {
    for _ in 0..5 {
        let (current, latest) = read(vault, settings).await?;
        let (cas, mut record) = match decide(current, latest, unix_now()) {
            LockState::Free { .. } => return Ok(None),
            LockState::Held { version, record } => (version, record),
            LockState::Stale { cas, record } => (cas, record),
        };
        let removed = record.clone();
        record.released = true;
        record.removed_by = Some(by.to_string());
        match write(vault, settings, cas, &record).await {
            Ok(_) => return Ok(Some(removed)),
            Err(e) if is_cas_mismatch(&e) => continue,
            Err(e) => return Err(LockError::vault(&settings.mount)(e)),
        }
    }
    Err(LockError::Lost {
        mount: settings.mount.clone(),
        why: "the lock kept changing while force-unlock tried to remove it".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(expires: i64, released: bool) -> LockRecord {
        LockRecord {
            holder: Holder {
                host: "ci-7".into(),
                pid: 42,
                repository: "/repo".into(),
                version: "0.1.0".into(),
            },
            since: 100,
            expires,
            released,
            removed_by: None,
        }
    }

    #[test]
    fn free_stale_and_held() {
        assert_eq!(decide(None, 0, 500), LockState::Free { cas: 0 });
        // The latest version was deleted by hand: check against it.
        assert_eq!(decide(None, 7, 500), LockState::Free { cas: 7 });
        assert_eq!(
            decide(Some((3, Some(record(900, true)))), 3, 500),
            LockState::Free { cas: 3 }
        );
        assert_eq!(
            decide(Some((3, Some(record(400, false)))), 3, 500),
            LockState::Stale {
                cas: 3,
                record: record(400, false)
            }
        );
        assert_eq!(
            decide(Some((3, Some(record(900, false)))), 3, 500),
            LockState::Held {
                version: 3,
                record: record(900, false)
            }
        );
        assert_eq!(decide(Some((4, None)), 4, 500), LockState::Free { cas: 4 });
    }

    #[test]
    fn a_record_needs_only_its_lease_to_be_a_lock() {
        let r: LockRecord =
            serde_json::from_value(json!({"expires": 900, "future_field": 1})).unwrap();
        assert_eq!(
            decide(Some((2, Some(r))), 2, 500),
            LockState::Held {
                version: 2,
                record: LockRecord {
                    holder: Holder::default(),
                    since: 0,
                    expires: 900,
                    released: false,
                    removed_by: None
                }
            }
        );
        assert!(serde_json::from_value::<LockRecord>(json!({"note": "by hand"})).is_err());
    }

    #[test]
    fn the_held_message_names_the_holder_and_the_way_out() {
        let e = LockError::Held {
            holder: record(0, false).holder,
            since: 1_700_000_000,
            expires: 1_700_000_120,
        };
        let text = e.to_string();
        assert!(text.starts_with("another certplane is applying (holder ci-7 pid 42, repository /repo, certplane 0.1.0, since 2023-11-14T22:13:20Z)"), "{text}");
        assert!(text.contains("--lock-timeout"), "{text}");
        assert!(text.contains("certplane force-unlock"), "{text}");
    }

    #[test]
    fn lock_mounts_are_checked() {
        assert_eq!(
            LockSettings::new(None, Duration::ZERO).unwrap().mount,
            "certplane"
        );
        assert_eq!(
            LockSettings::new(Some("/ops/locks/"), Duration::ZERO)
                .unwrap()
                .mount,
            "ops/locks"
        );
        for bad in ["", "sys", "auth/x", "a b", "a//b", "../x"] {
            assert!(
                LockSettings::new(Some(bad), Duration::ZERO).is_err(),
                "{bad:?}"
            );
        }
    }
}
