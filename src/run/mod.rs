//! `certplane run`: the pull loop. It only decides *when* the one
//! [`crate::pipeline`] runs: on every interval it fetches the
//! branch ([`git`]), prepares a new commit once (a commit that fails
//! validation or signature verification is refused and the last good one
//! stays in force), then plans and applies the commit in force, so drift made
//! out of band is repaired without a commit. One [`Driver`] for the life of
//! the loop: one Vault login, renewed, replaced when it expires or is
//! revoked ([`crate::pipeline::session`]); its state is served on
//! `/healthz`, `/readyz` and `/metrics` ([`http`], [`metrics`]). With leader election
//! ([`lease`]) only the leader plans and applies; a follower still
//! fetches and validates, so it is ready to take over.

pub mod git;
pub mod http;
pub mod lease;
pub mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::pipeline::{
    Approval, Driver, DriverSettings, LockedApply, Locking, Prepared, SessionStats, StepError,
};
use crate::plan::{Action, Plan};
use crate::run::lease::{LeaderElector, Leadership, LeaseConfig};
use crate::state::ResourceKind;
use crate::vault::ApplyEvent;

use git::{GitSettings, GitSource};
use metrics::Shared;

/// How the loop runs.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// The repository to follow.
    pub git: GitSettings,
    /// The certplane repository inside it (default: its root).
    pub path: Option<PathBuf>,
    /// How often to fetch and re-plan.
    pub interval: Duration,
    /// How long one reconcile may run before `/readyz` turns 503 (it goes
    /// on until Vault's and the cluster's own timeouts end it).
    pub reconcile_timeout: Duration,
    /// Apply changes (`false`: plan only, report what would change).
    pub apply: bool,
    /// Apply only commits signed by a key of this SSH allowed-signers file.
    pub allowed_signers: Option<PathBuf>,
    /// Write the cluster manifests here (for Flux/Argo) instead of a cluster.
    pub render: Option<PathBuf>,
    /// Where to serve `/healthz`, `/readyz`, `/metrics`.
    pub listen: Option<SocketAddr>,
    /// Elect a leader with this Lease (in the cluster the kubeconfig or the
    /// pod's service account points to); only the leader applies.
    pub leader_elect: Option<LeaseConfig>,
    /// The apply lock shared with every other certplane writing to the same
    /// Vault: a plan with changes is applied under it.
    pub locking: Locking,
}

/// Why the loop could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The cache directory could not be made.
    #[error(transparent)]
    Git(#[from] git::GitError),
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No cluster to hold the leader Lease in.
    #[error("leader election needs a cluster")]
    LeaderElection(#[source] crate::cluster::ClusterError),
}

/// The commit in force.
struct Good {
    commit: String,
    prepared: Prepared,
}

/// Why a new head commit is not taken (one line, for `/readyz`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

/// Why a reconcile failed (one line, for `/readyz`: what failed, then why).
#[derive(Debug, thiserror::Error)]
enum ReconcileError {
    /// A step of the pipeline failed.
    #[error("{}: {}", .0.target(), crate::vault::error_chain(.0))]
    Step(StepError),
    /// The plan is errored: nothing was applied.
    #[error("commit {commit}: the plan has {count} error(s); first: {first}")]
    Errored {
        /// The commit (short).
        commit: String,
        /// How many errors.
        count: usize,
        /// The first, with its address.
        first: String,
    },
}

/// The log target of the one line per reconcile and of every refused
/// commit: shown at the default verbosity (see `cli::log_filter`), one
/// record each with `--log-format json`.
pub const REPORT_TARGET: &str = "certplane::reconcile";

/// What one reconcile of the commit in force did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Outcome {
    /// Changes applied (or pending, when plan only).
    changes: u64,
    /// Of those, drift repaired (changed out of band).
    drift: u64,
    /// In one word.
    result: Verdict,
}

/// The result of a reconcile, as the report line names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Verdict {
    /// Nothing to do.
    #[default]
    InSync,
    /// Changes of a commit applied.
    Applied,
    /// Drift repaired (changes found for a commit already applied).
    DriftRepaired,
    /// Plan only: changes found, nothing applied.
    Pending,
    /// The plan or a step failed: nothing (more) applied.
    Failed,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::InSync => "in-sync",
            Verdict::Applied => "applied",
            Verdict::DriftRepaired => "drift-repaired",
            Verdict::Pending => "pending",
            Verdict::Failed => "failed",
        }
    }
}

/// Logs the one line of a reconcile (target [`REPORT_TARGET`]).
fn report(commit: &str, outcome: Outcome, took: Duration, error: Option<&str>) {
    let duration = format!("{:.1}s", took.as_secs_f64());
    let result = outcome.result.as_str();
    let (changes, drift) = (outcome.changes, outcome.drift);
    match error {
        None => tracing::info!(
            target: REPORT_TARGET,
            commit = %short(commit),
            changes,
            drift,
            duration = %duration,
            result = %result,
            "reconcile"
        ),
        Some(error) => tracing::error!(
            target: REPORT_TARGET,
            commit = %short(commit),
            changes,
            drift,
            duration = %duration,
            result = %result,
            error = %error,
            "reconcile"
        ),
    }
}

struct Loop {
    settings: RunSettings,
    source: GitSource,
    status: Shared,
    /// The pipeline, with the Vault session and cluster connection.
    driver: Driver,
    /// The session's logins and renewals already counted in the metrics.
    counted: SessionStats,
    good: Option<Good>,
    /// The last commit fetched (prepared or refused).
    seen: Option<String>,
    /// Why the head commit was refused, while it is the head.
    refused: Option<String>,
    /// The elector's verdict (`None`: no leader election, always apply).
    leader: Option<watch::Receiver<Leadership>>,
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Runs the loop until `stop` turns true, then returns (the reconcile in
/// flight is finished first).
pub async fn run(
    settings: RunSettings,
    status: Shared,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let source = GitSource::new(settings.git.clone())?;
    let server = match settings.listen {
        Some(addr) => {
            let listener = http::bind(addr)
                .await
                .map_err(|source| RunError::Listen { addr, source })?;
            tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving /healthz, /readyz, /metrics");
            Some(tokio::spawn(http::serve(
                listener,
                status.clone(),
                stop.clone(),
            )))
        }
        None => None,
    };
    let (leader, elector) = match &settings.leader_elect {
        Some(config) => {
            let cluster = crate::cluster::Cluster::connect(None)
                .await
                .map_err(RunError::LeaderElection)?;
            // A call may not outlast the time the leader may act unrenewed.
            let timeout = cluster.timeout().min(config.renew_deadline);
            let elector = LeaderElector::new(cluster.with_timeout(timeout), config.clone());
            tracing::info!(lease = %config.object(), identity = %config.identity, "leader election");
            let (tx, rx) = watch::channel(Leadership::Pending);
            (Some(rx), Some(tokio::spawn(elector.run(tx, stop.clone()))))
        }
        None => (None, None),
    };
    if let Ok(mut s) = status.lock() {
        s.not_ready = Some("no reconcile yet".into());
        s.leader = Some(leader.is_none());
        s.reconcile_deadline = settings.reconcile_timeout;
    }
    let identity = crate::model::identity::from_git(&settings.git.url, settings.path.as_deref());
    let driver = Driver::new(DriverSettings {
        render: settings.render.clone(),
        identity: Some(identity),
        locking: Some(settings.locking.clone()),
        ..DriverSettings::default()
    });
    let mut lp = Loop {
        settings,
        source,
        status,
        driver,
        counted: SessionStats::default(),
        good: None,
        seen: None,
        refused: None,
        leader,
    };
    'outer: loop {
        lp.tick(&mut stop).await;
        if *stop.borrow() {
            break;
        }
        let next = Instant::now() + lp.settings.interval;
        loop {
            let wake = lp
                .driver
                .renew_at()
                .map_or(next, |r| r.min(next))
                .max(Instant::now() + Duration::from_millis(50));
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = stop.wait_for(|s| *s) => break 'outer,
            }
            if Instant::now() >= next {
                break;
            }
            lp.keep_token().await;
        }
    }
    tracing::info!("shutting down");
    if let Some(e) = elector {
        // It releases the Lease it holds.
        let _ = e.await;
    }
    if let Some(s) = server {
        let _ = s.await;
    }
    Ok(())
}

impl Loop {
    fn set_status(&self, f: impl FnOnce(&mut metrics::Status)) {
        update(&self.status, f);
    }

    /// Whether this replica may plan and apply now (always without leader
    /// election). Waits for the elector's first answer (bounded by its call
    /// time limit); logs "following <holder>" when another leads.
    async fn leading(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let Some(rx) = self.leader.as_mut() else {
            return true;
        };
        if *rx.borrow() == Leadership::Pending {
            tokio::select! {
                _ = rx.wait_for(|l| *l != Leadership::Pending) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        let now = rx.borrow().clone();
        let leading = now.is_leader(Instant::now());
        if !leading {
            tracing::info!(holder = %now.holder(), "following {}", now.holder());
        }
        self.set_status(|s| s.leader = Some(leading));
        leading
    }

    /// Counts the session's new logins and renewals in the metrics.
    fn count_session(&mut self) {
        let now = self.driver.session_stats();
        let (logins, renewals) = (
            now.logins - self.counted.logins,
            now.renewals - self.counted.renewals,
        );
        self.counted = now;
        self.set_status(|s| {
            s.vault_logins_total += logins;
            s.vault_token_renewals_total += renewals;
        });
    }

    /// Renews the token between reconciles when it is due.
    async fn keep_token(&mut self) {
        if let Err(e) = self.driver.keep_alive().await {
            tracing::warn!(error = %crate::vault::error_chain(&e), "cannot renew the vault token; retrying");
        }
        self.count_session();
    }

    /// One interval: fetch, consider a new commit, reconcile the commit in
    /// force, report.
    async fn tick(&mut self, stop: &mut watch::Receiver<bool>) {
        let started = Instant::now();
        self.set_status(|s| s.reconcile_started = Some(started));
        let mut problem: Option<String> = None;
        let mut new_refusal = false;
        let fetched = tokio::select! {
            f = self.source.fetch() => Some(f),
            _ = stop.wait_for(|s| *s) => None,
        };
        match fetched {
            None => {
                self.set_status(|s| s.reconcile_started = None);
                return;
            }
            Some(Err(e)) => {
                tracing::error!(error = %crate::vault::error_chain(&e), "fetch failed");
                problem = Some(format!("fetch failed: {e}"));
            }
            Some(Ok(head)) if self.seen.as_deref() != Some(head.as_str()) => {
                self.seen = Some(head.clone());
                match self.consider(&head).await {
                    Ok(()) => self.refused = None,
                    Err(why) => {
                        new_refusal = true;
                        self.refused = Some(why.to_string());
                        self.set_status(|s| s.rejected_total += 1);
                    }
                }
            }
            Some(Ok(_)) => {}
        }
        // A follower has fetched and validated (ready to take over); only
        // the leader plans and applies.
        let leading = self.leading(stop).await;
        if self.good.is_none() {
            if problem.is_none() && self.refused.is_none() {
                problem = Some("no commit applied yet".into());
            }
        } else if leading {
            let commit = self
                .good
                .as_ref()
                .map(|g| g.commit.clone())
                .unwrap_or_default();
            let mut outcome = Outcome::default();
            let done = self.reconcile(&mut outcome).await;
            self.count_session();
            let why = done.err().map(|why| why.to_string());
            if why.is_some() {
                outcome.result = Verdict::Failed;
            }
            report(&commit, outcome, started.elapsed(), why.as_deref());
            if let Some(why) = why {
                problem.get_or_insert(why);
            }
        }
        let failed = problem.is_some() || new_refusal;
        let reason = problem.or_else(|| self.refused.clone());
        let secs = started.elapsed().as_secs_f64();
        self.set_status(|s| {
            s.reconcile_started = None;
            s.observe_duration(secs);
            if failed {
                s.failure_total += 1;
            } else {
                s.success_total += 1;
            }
            s.not_ready = reason;
        });
    }

    /// Checks out, verifies and prepares a new head commit; it becomes the
    /// commit in force only if all of that passes.
    async fn consider(&mut self, head: &str) -> Result<(), Refused> {
        let c = short(head);
        tracing::info!(commit = %head, branch = self.source.branch(), "new commit");
        if let Some(signers) = &self.settings.allowed_signers
            && let Err(e) = self.source.verify(head, signers).await
        {
            let why = format!("commit {c} refused: no good signature by a trusted key ({e})");
            tracing::error!(target: REPORT_TARGET, commit = %c, result = %"refused", reason = %why, "commit refused: signature not trusted");
            return Err(Refused(why));
        }
        let tree = self.source.checkout(head).await.map_err(|e| {
            let why = format!("commit {c}: checkout failed: {}", crate::vault::error_chain(&e));
            tracing::error!(target: REPORT_TARGET, commit = %c, result = %"refused", reason = %why, "commit refused: checkout failed");
            Refused(why)
        })?;
        let dir = match &self.settings.path {
            Some(p) => tree.join(p),
            None => tree,
        };
        // The identity of a repository followed from Git (the URL's last
        // segment and the path in it, unless certplane.yaml names one) is
        // the driver's.
        let prepared = self.driver.prepare(&dir).map_err(|e| {
            let problems = e.diagnostics().map_or(&[][..], |d| d.0.as_slice());
            let first = problems.first().map(|x| x.to_string()).unwrap_or_default();
            let first = first.lines().next().unwrap_or_default().to_string();
            let why = format!(
                "commit {c} refused: {} validation error(s); first: {first}",
                problems.len()
            );
            // One record: the reason on one line, then every problem.
            tracing::error!(target: REPORT_TARGET, commit = %c, result = %"refused", reason = %why, diagnostics = %e, "commit refused: invalid");
            Refused(why)
        })?;
        let keep: Vec<&str> = [Some(head), self.good.as_ref().map(|g| g.commit.as_str())]
            .into_iter()
            .flatten()
            .collect();
        self.source.prune_trees(&keep);
        self.good = Some(Good {
            commit: head.to_string(),
            prepared,
        });
        Ok(())
    }

    /// Plans the commit in force against the live state and applies it.
    async fn reconcile(&mut self, outcome: &mut Outcome) -> Result<(), ReconcileError> {
        let status = self.status.clone();
        let Some(good) = self.good.as_ref() else {
            return Ok(());
        };
        let c = good.commit.clone();
        let plan = self.driver.plan(&good.prepared).await.map_err(failed)?;
        update(&status, |s| s.set_plan(&plan));
        for n in &plan.notes {
            tracing::info!(addr = %n.addr, note = %n.message, "kept although no longer in the repository");
        }
        if let Some(first) = plan.errored.first() {
            for e in &plan.errored {
                tracing::error!(addr = %e.addr, error = %e.message, "plan error");
            }
            return Err(ReconcileError::Errored {
                commit: short(&c).to_string(),
                count: plan.errored.len(),
                first: format!("{}: {}", first.addr, first.message),
            });
        }
        let mut changes = plan.pending().count() as u64;
        if changes > 0 && !self.settings.apply {
            tracing::warn!(commit = %c, changes, "changes pending (plan only: nothing applied)");
            *outcome = Outcome {
                changes,
                drift: plan.drift.len() as u64,
                result: Verdict::Pending,
            };
        } else if changes > 0 {
            // Changes found for the commit already applied, or fields
            // another field manager took, are drift (see pipeline::drift).
            let applied = apply_in_force(&mut self.driver, &good.prepared).await?;
            changes = applied.as_ref().map_or(0, |p| p.pending().count() as u64);
            let drift = applied.as_ref().map_or(0, |p| p.drift.len() as u64);
            if let Some(p) = &applied {
                update(&status, |s| s.set_plan(p));
            }
            if changes == 0 {
                tracing::info!(commit = %c, "in sync (another certplane applied the changes first)");
            } else if drift > 0 {
                tracing::info!(commit = %c, changes, drift, "drift repaired");
                update(&status, |s| s.drift_repairs_total += drift);
            } else {
                tracing::info!(commit = %c, changes, "commit applied");
            }
            *outcome = Outcome {
                changes,
                drift,
                result: match (changes, drift) {
                    (0, _) => Verdict::InSync,
                    (_, 0) => Verdict::Applied,
                    _ => Verdict::DriftRepaired,
                },
            };
        } else {
            tracing::info!(commit = %c, "in sync");
        }
        if self.settings.apply || changes == 0 {
            update(&status, |s| s.last_applied_commit = Some(c.clone()));
        }
        let not_after = ca_not_after(&mut self.driver, &good.prepared).await;
        update(&status, |s| s.ca_not_after = not_after);
        Ok(())
    }
}

/// A failed step, logged.
fn failed(e: StepError) -> ReconcileError {
    tracing::error!(step = %e.step(), error = %crate::vault::error_chain(&e), "reconcile failed");
    ReconcileError::Step(e)
}

/// Applies the commit in force under the apply lock (the plan is made
/// again under it and that is what is applied; SIGTERM lets it finish):
/// the plan applied, or `None` when another certplane applied it first.
async fn apply_in_force(
    driver: &mut Driver,
    prepared: &Prepared,
) -> Result<Option<Plan>, ReconcileError> {
    let mut on_event = |ev: ApplyEvent| match ev {
        ApplyEvent::Done { addr, action } if action != Action::NoOp => {
            tracing::info!(%addr, action = action.label(), "applied");
        }
        ApplyEvent::Note { addr, text } => tracing::warn!(%addr, note = %text, "note"),
        _ => {}
    };
    let got = driver
        .apply(prepared, Approval::Replan, &|| None, &mut on_event)
        .await
        .map_err(failed)?;
    Ok(match got {
        LockedApply::Applied { plan, .. } => Some(plan),
        LockedApply::NothingToDo => None,
    })
}

/// notAfter of every managed CA issuer, read after the apply.
async fn ca_not_after(
    driver: &mut Driver,
    prepared: &Prepared,
) -> std::collections::BTreeMap<(String, String), i64> {
    let mut not_after = std::collections::BTreeMap::new();
    let cas: Vec<(String, Option<String>)> = prepared
        .desired
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::Issuer)
        .filter_map(|r| r.ca.as_ref())
        .map(|ca| (ca.mount.clone(), ca.issuer_name.clone()))
        .collect();
    if cas.is_empty() {
        return not_after;
    }
    let vault = match driver.vault_for(&prepared.repo).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the issuers");
            return not_after;
        }
    };
    for (mount, name) in cas {
        match crate::vault::observe::observe_issuers(&vault, &mount).await {
            Ok(issuers) => {
                let found = match &name {
                    Some(n) => issuers.iter().find(|i| &i.name == n),
                    None => issuers.iter().find(|i| i.is_default),
                };
                if let Some(i) = found {
                    let label = name.clone().unwrap_or_else(|| "default".into());
                    not_after.insert((mount, label), i.not_after);
                }
            }
            Err(e) => tracing::warn!(%mount, error = %e, "cannot read the issuers"),
        }
    }
    not_after
}

fn update(status: &Shared, f: impl FnOnce(&mut metrics::Status)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}
