//! Leader election with a Kubernetes `coordination.k8s.io/v1` Lease, so that
//! when several replicas of `certplane run` are deployed only one applies.
//!
//! The core is pure: [`decide`] looks at the Lease as read (or its absence),
//! my identity and the time, and says [`Decision::Acquire`],
//! [`Decision::Renew`], [`Decision::Follow`] or [`Decision::Takeover`];
//! [`claimed`] and [`released`] build the object to write. [`LeaderElector`]
//! does the I/O: GET the Lease (404: create it), then create or replace it
//! with optimistic concurrency (`metadata.resourceVersion`; a 409 Conflict
//! means another replica won the race: follow). [`LeaderElector::run`] keeps
//! doing that every retry period and publishes a [`Leadership`] the run loop
//! reads before each reconcile; on shutdown it releases the Lease it holds.
//!
//! Every API call is bounded by the cluster's per-call time limit
//! ([`Cluster::timeout`](crate::cluster::Cluster::timeout)), which the run
//! loop caps at the renew deadline; a leader that could not renew within
//! the renew deadline stops acting as one before its Lease expires for the
//! others.
//!
//! # Why not kube-lease-manager or kube-runtime
//!
//! Checked against this tree (kube 5.0.0, k8s-openapi 0.29.0) on the
//! versions built for it: kube-lease-manager 0.13.1 (kube 5 / k8s-openapi
//! 0.29, MSRV 1.89; it would add rand 0.10) and kube-runtime 5.0.0.
//!
//! kube-runtime 5.0.0 has no leader election (no Lease code at all; kube-rs
//! issue 485, "Support Leaderelection like client-go", is open). Its
//! `watcher` could replace a follower's GET every retry period, but a
//! crashed holder writes nothing, so expiry must still be checked on a
//! timer, and a watch is a long-lived request that the per-call time limit
//! cannot bound. The Lease calls here are plain `kube::Api<Lease>` calls.
//!
//! kube-lease-manager 0.13.1 would replace [`decide`], [`claimed`] and
//! [`released`] (about 150 lines), but misses what certplane needs:
//!
//! 1. **No time limit on any call.** `LeaseState::get`, `patch` and `create`
//!    (src/state.rs) await the API server directly. A hung API server blocks
//!    `LeaseManager::changed()` and `release()` forever, so SIGTERM would
//!    hang on the release. A timeout around `changed()` from outside cannot
//!    tell a hung call from the sleeps inside the same future (it sleeps
//!    until `expiry - grace`). Here every call is bounded
//!    (tests/lease_requests.rs `a_hung_api_server_times_out`).
//! 2. **No renew deadline.** Its leadership is a `bool` in a watch channel;
//!    when renewals fail, `LeaseManager::watch()` logs the error and backs
//!    off (1 s to 30 s) without sending `false`, so a leader cut off from
//!    the API server keeps applying after its Lease expired and another
//!    replica took it over: two writers. Here [`Leadership::Leader`] carries
//!    `until` (last successful renewal's start + renew deadline, 10 s of a
//!    15 s Lease) and the run loop checks it before each reconcile.
//! 3. **Writes without optimistic concurrency.** Renewal and forced takeover
//!    are strategic-merge PATCHes without `resourceVersion`; taking a free
//!    Lease is a server-side apply plus a patch of `leaseTransitions`, and
//!    taking over an expired one adds a forced release and a random
//!    100-1000 ms sleep before those. Here each write is one PUT or POST
//!    carrying the `resourceVersion` read, and a 409 means another replica
//!    won (tests/lease_requests.rs checks method, path and body of each
//!    request; tests/lease_run.rs runs the binary against a loopback API
//!    server with GET/POST/PUT and 409 on a stale `resourceVersion`).
//!    Adopting it means a fake of server-side apply field ownership
//!    instead, which a loopback fake cannot model faithfully, and losing
//!    those request-level guarantees.
//! 4. **A panic on a server reply.** `LeaseManager::release()` maps a 409
//!    `Conflict` from its patch through `From<LeaseStateError> for
//!    LeaseManagerError`, whose `LockConflict` arm is `unreachable!()`
//!    (src/error.rs). certplane never panics on what a server sends
//!    (tests/lease_requests.rs `a_garbage_reply_is_an_error_not_a_panic`).
//! 5. **Whole seconds, panicking parameters, I/O in the constructor.**
//!    Durations are `u64` seconds and `LeaseParams::new` panics when the
//!    grace is zero or not below the duration; there is no retry period (the
//!    tests here use 50 ms and 300 ms). `LeaseManagerBuilder::build()` GETs
//!    and POSTs an empty Lease before any election, so an API server that is
//!    down at start-up fails the start instead of being retried, and the
//!    Lease is created without a holder and claimed by a second write.
//!
//! It would take the identity made here from `POD_NAME`
//! ([`LeaseConfig::from_env`], through `with_identity`) and it releases on
//! shutdown (when its channel closes); items 1 to 4 decide.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::cluster::{Cluster, ClusterError};

/// The Lease's name unless configured otherwise.
pub const DEFAULT_LEASE_NAME: &str = "certplane-leader";

/// The Lease's namespace when neither a flag nor `POD_NAMESPACE` names one.
pub const DEFAULT_LEASE_NAMESPACE: &str = "certplane-system";

/// How long a Lease stays valid after its last renewal (client-go's default).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// How long the leader keeps acting without a successful renewal.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);

/// How often the Lease is acquired or renewed.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// Which Lease, who I am, and the timings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The Lease's name.
    pub name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// My `holderIdentity`, unique per process.
    pub identity: String,
    /// `leaseDurationSeconds` written into the Lease.
    pub lease_duration: Duration,
    /// The leader stops acting as one when it could not renew for this long
    /// (shorter than `lease_duration`, so it stops before another can take
    /// over).
    pub renew_deadline: Duration,
    /// The time between two attempts.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// The configuration for this process: `name` or [`DEFAULT_LEASE_NAME`];
    /// `namespace`, else `POD_NAMESPACE`, else [`DEFAULT_LEASE_NAMESPACE`];
    /// identity from `POD_NAME` or the hostname, plus a random suffix.
    pub fn from_env(name: Option<String>, namespace: Option<String>) -> LeaseConfig {
        let env = |k: &str| std::env::var(k).ok();
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| env("HOSTNAME"));
        LeaseConfig {
            name: name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_LEASE_NAME.to_string()),
            namespace: lease_namespace(namespace, env("POD_NAMESPACE")),
            identity: identity(env("POD_NAME"), hostname, random_suffix()),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// `namespace/name`, for messages.
    pub fn object(&self) -> String {
        format!("coordination.k8s.io/Lease/{}/{}", self.namespace, self.name)
    }
}

/// The namespace of the Lease: the flag, else the pod's, else the default.
pub fn lease_namespace(flag: Option<String>, pod_namespace: Option<String>) -> String {
    [flag, pod_namespace]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_LEASE_NAMESPACE.to_string())
}

/// A holder identity: the pod's name (else the hostname, else `certplane`)
/// and a random suffix, so that two processes never share one.
pub fn identity(pod_name: Option<String>, hostname: Option<String>, suffix: u32) -> String {
    let base = [pod_name, hostname]
        .into_iter()
        .flatten()
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "certplane".to_string());
    format!("{base}_{suffix:08x}")
}

fn random_suffix() -> u32 {
    use rand_core::RngCore as _;
    rand_core::OsRng.next_u32()
}

/// What to do about the Lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create it, held by me.
    Acquire,
    /// I hold it: renew it.
    Renew,
    /// Another holder renewed it in time: follow it.
    Follow(String),
    /// It is expired, released or has no usable renewTime: take it over
    /// (leaseTransitions + 1).
    Takeover,
}

/// The pure decision. A Lease is expired when `renewTime + duration < now`
/// (its own `leaseDurationSeconds`, else `default_duration`); one without a
/// `renewTime` or without a holder is free.
pub fn decide(
    current: Option<&Lease>,
    me: &str,
    now: Timestamp,
    default_duration: Duration,
) -> Decision {
    let Some(lease) = current else {
        return Decision::Acquire;
    };
    let spec = lease.spec.as_ref();
    let holder = spec
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty());
    let Some(holder) = holder else {
        return Decision::Takeover;
    };
    if holder == me {
        return Decision::Renew;
    }
    let Some(renewed) = spec.and_then(|s| s.renew_time.as_ref()) else {
        return Decision::Takeover;
    };
    let secs = spec
        .and_then(|s| s.lease_duration_seconds)
        .filter(|d| *d > 0)
        .map(i64::from)
        .unwrap_or_else(|| i64::try_from(default_duration.as_secs()).unwrap_or(i64::MAX));
    match renewed.0.checked_add(SignedDuration::from_secs(secs)) {
        Ok(valid_until) if valid_until >= now => Decision::Follow(holder.to_string()),
        // Overflow: so far in the future that it is still valid.
        Err(_) if renewed.0 >= now => Decision::Follow(holder.to_string()),
        _ => Decision::Takeover,
    }
}

/// The Lease to write for `decision` (`None` for [`Decision::Follow`]): held
/// by `me`, renewed `now`. Takeover keeps the resourceVersion read and counts
/// one more transition; a renewal keeps everything but renewTime and the
/// duration.
pub fn claimed(
    current: Option<&Lease>,
    decision: &Decision,
    config: &LeaseConfig,
    now: Timestamp,
) -> Option<Lease> {
    let duration = i32::try_from(config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let now = MicroTime(now);
    match decision {
        Decision::Follow(_) => None,
        Decision::Acquire => Some(Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        }),
        Decision::Renew | Decision::Takeover => {
            let mut lease = current.cloned().unwrap_or_default();
            lease.metadata.managed_fields = None;
            let spec = lease.spec.get_or_insert_with(Default::default);
            if *decision == Decision::Takeover {
                spec.holder_identity = Some(config.identity.clone());
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).max(0).saturating_add(1));
            }
            spec.lease_duration_seconds = Some(duration);
            spec.renew_time = Some(now);
            Some(lease)
        }
    }
}

/// The Lease I hold, released: no holder, so the next candidate takes it
/// over at once (the 1-second duration tells clients that only look at the
/// time, as client-go does on release).
pub fn released(held: &Lease, now: Timestamp) -> Lease {
    let mut lease = held.clone();
    lease.metadata.managed_fields = None;
    let spec = lease.spec.get_or_insert_with(Default::default);
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(now));
    lease
}

/// The result of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// I hold the Lease now.
    Leader,
    /// Another replica does (`None`: it won a race and is not known yet).
    Follower(Option<String>),
}

/// What the run loop sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leadership {
    /// No attempt has finished yet.
    Pending,
    /// I lead until `until` unless renewed before (the last successful
    /// renewal's start plus the renew deadline).
    Leader {
        /// When to stop acting as the leader without a newer renewal.
        until: Instant,
    },
    /// Another replica leads (`None`: unknown, e.g. the API server could not
    /// be reached).
    Follower(Option<String>),
}

impl Leadership {
    /// Whether to apply at `now`.
    pub fn is_leader(&self, now: Instant) -> bool {
        matches!(self, Leadership::Leader { until } if now < *until)
    }

    /// Who leads, as a log line says it.
    pub fn holder(&self) -> String {
        match self {
            Leadership::Follower(Some(h)) => h.clone(),
            Leadership::Pending => "(no answer from the api server yet)".into(),
            Leadership::Leader { .. } => "(my lease is not renewed)".into(),
            Leadership::Follower(None) => "(unknown leader)".into(),
        }
    }
}

/// Acquires, renews and releases one Lease for one identity.
#[derive(Debug)]
pub struct LeaderElector {
    cluster: Cluster,
    config: LeaseConfig,
    /// The Lease as I last wrote it, while I hold it.
    held: Option<Lease>,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 || s.is_conflict() || s.is_already_exists())
}

impl LeaderElector {
    /// An elector over `cluster` (its time limit bounds every call).
    pub fn new(cluster: Cluster, config: LeaseConfig) -> LeaderElector {
        LeaderElector {
            cluster,
            config,
            held: None,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Whether I hold the Lease as far as I know.
    pub fn holds(&self) -> bool {
        self.held.is_some()
    }

    fn api(&self) -> Api<Lease> {
        Api::namespaced(self.cluster.client().clone(), &self.config.namespace)
    }

    fn request_error(&self, op: &'static str, source: kube::Error) -> ClusterError {
        ClusterError::Request {
            op,
            object: self.config.object(),
            error: source,
        }
    }

    /// One attempt: GET the Lease, decide, and create or replace it when I
    /// should hold it. A conflict means another replica wrote first: follow.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Role, ClusterError> {
        let current = self.read().await?;
        let now = Timestamp::now();
        let decision = decide(
            current.as_ref(),
            &self.config.identity,
            now,
            self.config.lease_duration,
        );
        let Some(wanted) = claimed(current.as_ref(), &decision, &self.config, now) else {
            self.held = None;
            let Decision::Follow(holder) = decision else {
                return Ok(Role::Follower(None));
            };
            return Ok(Role::Follower(Some(holder)));
        };
        let (op, reply) = self.write(&decision, &wanted).await?;
        self.accept(&decision, op, reply)
    }

    /// GETs the Lease (`None`: there is none). A reply about another object
    /// is an error, not a Lease to decide on.
    async fn read(&self) -> Result<Option<Lease>, ClusterError> {
        let object = self.config.object();
        let name = self.config.name.as_str();
        let current = match self
            .cluster
            .timed("get", &object, self.api().get(name))
            .await?
        {
            Ok(lease) => Some(lease),
            Err(kube::Error::Api(s)) if crate::cluster::client::is_404(&s) => None,
            Err(e) => return Err(self.request_error("get", e)),
        };
        if let Some(lease) = &current
            && lease.metadata.name.as_deref() != Some(name)
        {
            return Err(ClusterError::BadReply {
                op: "get",
                object,
                reason: format!(
                    "the reply is about {:?}",
                    lease.metadata.name.as_deref().unwrap_or("")
                ),
            });
        }
        Ok(current)
    }

    /// Creates the Lease ([`Decision::Acquire`]) or replaces it with the
    /// resourceVersion read (renewal, takeover); the operation and the API
    /// server's reply.
    async fn write(
        &self,
        decision: &Decision,
        wanted: &Lease,
    ) -> Result<(&'static str, kube::Result<Lease>), ClusterError> {
        let api = self.api();
        let object = self.config.object();
        let pp = PostParams::default();
        if *decision == Decision::Acquire {
            let reply = self
                .cluster
                .timed("create", &object, api.create(&pp, wanted))
                .await?;
            return Ok(("create", reply));
        }
        let fut = api.replace(&self.config.name, &pp, wanted);
        let reply = self.cluster.timed("replace", &object, fut).await?;
        Ok(("replace", reply))
    }

    /// What the reply to a write means: the Lease written and held by me,
    /// I lead; a conflict, another replica wrote first and I follow; else
    /// an error (and I hold nothing).
    fn accept(
        &mut self,
        decision: &Decision,
        op: &'static str,
        reply: kube::Result<Lease>,
    ) -> Result<Role, ClusterError> {
        let object = self.config.object();
        self.held = None;
        let written = match reply {
            Ok(written) => written,
            Err(e) if is_conflict(&e) => {
                tracing::debug!(lease = %object, "another replica wrote the lease first");
                return Ok(Role::Follower(None));
            }
            Err(e) => return Err(self.request_error(op, e)),
        };
        let holder = written
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone());
        if holder.as_deref() != Some(self.config.identity.as_str()) {
            return Err(ClusterError::BadReply {
                op,
                object,
                reason: format!("the lease written is held by {holder:?}, not by me"),
            });
        }
        if *decision == Decision::Takeover {
            tracing::info!(lease = %object, identity = %self.config.identity, "took over the lease");
        }
        self.held = Some(written);
        Ok(Role::Leader)
    }

    /// Gives the Lease up if I hold it (no holder, expired), so another
    /// replica takes over without waiting for it to expire. `Ok(false)`: I
    /// did not hold it (any more).
    pub async fn release(&mut self) -> Result<bool, ClusterError> {
        let Some(held) = self.held.take() else {
            return Ok(false);
        };
        let api = self.api();
        let object = self.config.object();
        let lease = released(&held, Timestamp::now());
        let pp = PostParams::default();
        let fut = api.replace(&self.config.name, &pp, &lease);
        match self.cluster.timed("release", &object, fut).await? {
            Ok(_) => {
                tracing::info!(lease = %object, "released the lease");
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 || crate::cluster::client::is_404(&s) => {
                Ok(false)
            }
            Err(e) => Err(self.request_error("release", e)),
        }
    }

    /// Tries every retry period until `stop` turns true, publishing the
    /// result to `tx`; then releases the Lease if it holds it.
    pub async fn run(mut self, tx: watch::Sender<Leadership>, mut stop: watch::Receiver<bool>) {
        loop {
            let started = Instant::now();
            let attempt = tokio::select! {
                a = self.try_acquire_or_renew() => a,
                _ = stop.wait_for(|s| *s) => break,
            };
            self.publish(&tx, attempt, started);
            tokio::select! {
                _ = tokio::time::sleep(self.config.retry_period) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        tx.send_replace(Leadership::Follower(None));
        if let Err(e) = self.release().await {
            let object = self.config.object();
            tracing::warn!(lease = %object, error = %crate::vault::error_chain(&e), "cannot release the lease");
        }
    }

    /// Publishes what the attempt begun at `started` means for the run
    /// loop. A leader leads until `started` plus the renew deadline, so it
    /// stops before its Lease (renewed no earlier than `started`) expires
    /// for the others; a failed attempt leaves that deadline as it was.
    fn publish(
        &self,
        tx: &watch::Sender<Leadership>,
        attempt: Result<Role, ClusterError>,
        started: Instant,
    ) {
        let object = self.config.object();
        let was_leader = matches!(*tx.borrow(), Leadership::Leader { .. });
        match attempt {
            Ok(Role::Leader) => {
                if !was_leader {
                    tracing::info!(lease = %object, identity = %self.config.identity, "became the leader");
                }
                tx.send_replace(Leadership::Leader {
                    until: started + self.config.renew_deadline,
                });
            }
            Ok(Role::Follower(holder)) => {
                if was_leader {
                    tracing::warn!(lease = %object, holder = ?holder, "lost the lease");
                }
                tx.send_replace(Leadership::Follower(holder));
            }
            Err(e) => {
                tracing::warn!(lease = %object, error = %crate::vault::error_chain(&e), "cannot acquire or renew the lease");
                // A leader keeps its deadline (it expires by itself);
                // anyone else follows an unknown leader.
                if !was_leader {
                    tx.send_replace(Leadership::Follower(None));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "certplane-0_0000abcd";
    const OTHER: &str = "certplane-1_0000beef";

    fn config() -> LeaseConfig {
        LeaseConfig {
            name: DEFAULT_LEASE_NAME.into(),
            namespace: DEFAULT_LEASE_NAMESPACE.into(),
            identity: ME.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn lease(holder: Option<&str>, renewed: Option<i64>, duration: Option<i32>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(DEFAULT_LEASE_NAME.into()),
                namespace: Some(DEFAULT_LEASE_NAMESPACE.into()),
                resource_version: Some("41".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(String::from),
                renew_time: renewed.map(|s| MicroTime(at(s))),
                acquire_time: Some(MicroTime(at(-100))),
                lease_duration_seconds: duration,
                lease_transitions: Some(3),
                ..Default::default()
            }),
        }
    }

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn no_lease_is_acquired() {
        assert_eq!(decide(None, ME, at(0), D), Decision::Acquire);
        let l = claimed(None, &Decision::Acquire, &config(), at(0)).unwrap();
        let s = l.spec.unwrap();
        assert_eq!(s.holder_identity.as_deref(), Some(ME));
        assert_eq!(s.lease_duration_seconds, Some(15));
        assert_eq!(s.renew_time, Some(MicroTime(at(0))));
        assert_eq!(s.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(s.lease_transitions, Some(0));
        assert_eq!(l.metadata.name.as_deref(), Some(DEFAULT_LEASE_NAME));
        assert_eq!(l.metadata.resource_version, None);
    }

    #[test]
    fn a_fresh_lease_of_another_is_followed() {
        let l = lease(Some(OTHER), Some(0), Some(15));
        assert_eq!(
            decide(Some(&l), ME, at(15), D),
            Decision::Follow(OTHER.into())
        );
        assert_eq!(
            claimed(Some(&l), &Decision::Follow(OTHER.into()), &config(), at(15)),
            None
        );
    }

    #[test]
    fn an_expired_lease_is_taken_over_with_one_more_transition() {
        let l = lease(Some(OTHER), Some(0), Some(15));
        assert_eq!(decide(Some(&l), ME, at(16), D), Decision::Takeover);
        let w = claimed(Some(&l), &Decision::Takeover, &config(), at(16)).unwrap();
        assert_eq!(w.metadata.resource_version.as_deref(), Some("41"));
        let s = w.spec.unwrap();
        assert_eq!(s.holder_identity.as_deref(), Some(ME));
        assert_eq!(s.lease_transitions, Some(4));
        assert_eq!(s.renew_time, Some(MicroTime(at(16))));
        assert_eq!(s.acquire_time, Some(MicroTime(at(16))));
    }

    #[test]
    fn the_lease_own_duration_counts_else_mine() {
        // 60 s in the lease: still valid at +30 although mine is 15.
        let l = lease(Some(OTHER), Some(0), Some(60));
        assert_eq!(
            decide(Some(&l), ME, at(30), D),
            Decision::Follow(OTHER.into())
        );
        // None (or nonsense) in the lease: mine.
        for d in [None, Some(0), Some(-5)] {
            let l = lease(Some(OTHER), Some(0), d);
            assert_eq!(
                decide(Some(&l), ME, at(10), D),
                Decision::Follow(OTHER.into())
            );
            assert_eq!(decide(Some(&l), ME, at(16), D), Decision::Takeover);
        }
    }

    #[test]
    fn my_lease_is_renewed_even_when_expired() {
        for t in [1, 100] {
            let l = lease(Some(ME), Some(0), Some(15));
            assert_eq!(decide(Some(&l), ME, at(t), D), Decision::Renew);
            let w = claimed(Some(&l), &Decision::Renew, &config(), at(t)).unwrap();
            let s = w.spec.unwrap();
            assert_eq!(s.lease_transitions, Some(3), "a renewal is no transition");
            assert_eq!(s.acquire_time, Some(MicroTime(at(-100))));
            assert_eq!(s.renew_time, Some(MicroTime(at(t))));
            assert_eq!(w.metadata.resource_version.as_deref(), Some("41"));
        }
    }

    #[test]
    fn a_lease_without_renew_time_or_holder_is_free() {
        let l = lease(Some(OTHER), None, Some(15));
        assert_eq!(decide(Some(&l), ME, at(0), D), Decision::Takeover);
        for holder in [None, Some("")] {
            let l = lease(holder, Some(0), Some(15));
            assert_eq!(decide(Some(&l), ME, at(1), D), Decision::Takeover);
        }
        let empty = Lease::default();
        assert_eq!(decide(Some(&empty), ME, at(0), D), Decision::Takeover);
        let w = claimed(Some(&empty), &Decision::Takeover, &config(), at(0)).unwrap();
        assert_eq!(w.spec.unwrap().lease_transitions, Some(1));
    }

    #[test]
    fn a_released_lease_has_no_holder_and_is_taken_over() {
        let mine = lease(Some(ME), Some(0), Some(15));
        let r = released(&mine, at(1));
        let s = r.spec.as_ref().unwrap();
        assert_eq!(s.holder_identity, None);
        assert_eq!(s.lease_duration_seconds, Some(1));
        assert_eq!(r.metadata.resource_version.as_deref(), Some("41"));
        assert_eq!(decide(Some(&r), OTHER, at(1), D), Decision::Takeover);
    }

    #[test]
    fn identity_and_namespace_defaults() {
        assert_eq!(
            identity(Some("certplane-7d9f".into()), Some("host".into()), 0xab),
            "certplane-7d9f_000000ab"
        );
        assert_eq!(
            identity(Some(" ".into()), Some("host\n".into()), 1),
            "host_00000001"
        );
        assert_eq!(identity(None, None, 2), "certplane_00000002");
        assert_eq!(lease_namespace(Some("ns".into()), Some("pod".into())), "ns");
        assert_eq!(lease_namespace(None, Some("pod".into())), "pod");
        assert_eq!(
            lease_namespace(Some(String::new()), None),
            "certplane-system"
        );
        let c = LeaseConfig::from_env(None, Some("x".into()));
        assert_eq!(
            (c.name.as_str(), c.namespace.as_str()),
            ("certplane-leader", "x")
        );
        assert_ne!(c.identity, LeaseConfig::from_env(None, None).identity);
    }

    #[test]
    fn leadership_expires_at_its_deadline() {
        let now = Instant::now();
        let l = Leadership::Leader {
            until: now + Duration::from_secs(1),
        };
        assert!(l.is_leader(now));
        assert!(!l.is_leader(now + Duration::from_secs(1)));
        assert!(!Leadership::Follower(Some(OTHER.into())).is_leader(now));
        assert!(!Leadership::Pending.is_leader(now));
        assert_eq!(Leadership::Follower(Some(OTHER.into())).holder(), OTHER);
    }
}
