//! `certplane run`: the pull loop. It only decides *when* the one
//! [`pipeline`] runs: on every interval it fetches the
//! branch ([`git`]), prepares a new commit once (a commit that fails
//! validation or signature verification is refused and the last good one
//! stays in force), then plans and applies the commit in force, so drift made
//! out of band is repaired without a commit. One Vault login for the life of
//! the loop ([`session`]); its state is served on `/healthz`, `/readyz` and
//! `/metrics` ([`http`], [`metrics`]). With leader election
//! ([`lease`]) only the leader plans and applies; a follower still
//! fetches and validates, so it is ready to take over.

pub mod git;
pub mod http;
pub mod lease;
pub mod metrics;
pub mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::pipeline::{self, ClusterSide, Locking, PipelineError, Prepared};
use crate::plan::Action;
use crate::run::lease::{LeaderElector, Leadership, LeaseConfig};
use crate::state::ResourceKind;
use crate::vault::{ApplyEvent, VaultError};

use git::{GitSettings, GitSource};
use metrics::Shared;
use session::Session;

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
    side: Option<ClusterSide>,
    /// Whether it has been applied in full once (later changes are drift).
    applied: bool,
}

struct Loop {
    settings: RunSettings,
    source: GitSource,
    status: Shared,
    session: Option<Session>,
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
    let mut lp = Loop {
        settings,
        source,
        status,
        session: None,
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
                .session
                .as_ref()
                .and_then(Session::renew_at)
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

    /// Renews the token between reconciles when it is due.
    async fn keep_token(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        match session.maintain(&self.status).await {
            Ok(true) => {}
            Ok(false) => {
                // Replaced at the next reconcile (which needs the repository).
                self.session = None;
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew the vault token; retrying"),
        }
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
                        self.refused = Some(why);
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
        } else if leading && let Err(why) = self.reconcile().await {
            problem.get_or_insert(why);
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
    async fn consider(&mut self, head: &str) -> Result<(), String> {
        let c = short(head);
        tracing::info!(commit = %head, branch = self.source.branch(), "new commit");
        if let Some(signers) = &self.settings.allowed_signers
            && let Err(e) = self.source.verify(head, signers).await
        {
            let why = format!("commit {c} refused: no good signature by a trusted key ({e})");
            tracing::error!(commit = %head, error = %e, "commit refused: signature not trusted");
            return Err(why);
        }
        let tree = self.source.checkout(head).await.map_err(|e| {
            tracing::error!(commit = %head, error = %crate::vault::error_chain(&e), "checkout failed");
            format!("commit {c}: checkout failed: {e}")
        })?;
        let dir = match &self.settings.path {
            Some(p) => tree.join(p),
            None => tree,
        };
        // The identity of a repository followed from Git: the URL's last
        // segment and the path in it, unless certplane.yaml names one.
        let identity =
            crate::model::identity::from_git(&self.settings.git.url, self.settings.path.as_deref());
        let options = crate::pipeline::PrepareOptions {
            render: self.settings.render.as_deref(),
            identity: Some(&identity),
            ..crate::pipeline::PrepareOptions::default()
        };
        let prepared = crate::pipeline::prepare_with(&dir, options).map_err(|d| {
            tracing::error!(commit = %head, problems = d.0.len(), diagnostics = %d, "commit refused: invalid");
            let first = d.0.first().map(|x| x.to_string()).unwrap_or_default();
            let first = first.lines().next().unwrap_or_default().to_string();
            format!(
                "commit {c} refused: {} validation error(s); first: {first}",
                d.0.len()
            )
        })?;
        let keep: Vec<&str> = [Some(head), self.good.as_ref().map(|g| g.commit.as_str())]
            .into_iter()
            .flatten()
            .collect();
        self.source.prune_trees(&keep);
        self.good = Some(Good {
            commit: head.to_string(),
            prepared,
            side: None,
            applied: false,
        });
        Ok(())
    }

    /// Makes sure a working session exists for the commit in force.
    async fn ensure_session(&mut self) -> Result<(), String> {
        let Some(good) = &self.good else {
            return Ok(());
        };
        let repo = &good.prepared.repo;
        if let Some(s) = self.session.as_mut() {
            if s.serves(repo) {
                match s.maintain(&self.status).await {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => return Err(format!("vault: {e}")),
                }
            } else {
                tracing::info!("the vault settings changed: logging in again");
            }
        }
        match Session::open(repo, &self.status).await {
            Ok(s) => {
                self.session = Some(s);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %crate::vault::error_chain(&e), "cannot connect to vault");
                Err(format!("vault: {e}"))
            }
        }
    }

    /// Plans the commit in force against the live state and applies it.
    async fn reconcile(&mut self) -> Result<(), String> {
        self.ensure_session().await?;
        let status = self.status.clone();
        let (Some(good), Some(session)) = (self.good.as_mut(), self.session.as_ref()) else {
            return Err("no vault session".into());
        };
        let vault = session.vault();
        let c = good.commit.clone();
        if good.side.is_none() {
            match pipeline::cluster_side(&good.prepared.repo, self.settings.render.as_deref()).await
            {
                Ok(side) => good.side = Some(side),
                Err(e) => {
                    tracing::error!(error = %crate::vault::error_chain(&e), "cannot connect to the cluster");
                    return Err(format!("cluster: {e}"));
                }
            }
        }
        let Some(side) = good.side.as_ref() else {
            return Err("no cluster side".into());
        };
        let plan = match pipeline::plan(vault, side, &good.prepared).await {
            Ok(p) => p,
            Err(e) => {
                let (why, dead) = failure(session, e).await;
                if dead {
                    self.session = None;
                }
                return Err(why);
            }
        };
        update(&status, |s| s.set_plan(&plan));
        for n in &plan.notes {
            tracing::info!(addr = %n.addr, note = %n.message, "kept although no longer in the repository");
        }
        if !plan.errored.is_empty() {
            for e in &plan.errored {
                tracing::error!(addr = %e.addr, error = %e.message, "plan error");
            }
            return Err(format!(
                "commit {}: the plan has {} error(s); first: {}: {}",
                short(&c),
                plan.errored.len(),
                plan.errored[0].addr,
                plan.errored[0].message
            ));
        }
        let mut changes = plan.pending().count() as u64;
        if changes > 0 && !self.settings.apply {
            tracing::warn!(commit = %c, changes, "changes pending (plan only: nothing applied)");
        } else if changes > 0 {
            let drift = good.applied;
            let mut on_event = |ev: ApplyEvent| match ev {
                ApplyEvent::Done { addr, action } if action != Action::NoOp => {
                    tracing::info!(%addr, action = action.label(), "applied");
                }
                ApplyEvent::Note { addr, text } => tracing::warn!(%addr, note = %text, "note"),
                _ => {}
            };
            // Under the apply lock, the plan is made again and that is
            // what is applied (SIGTERM lets it finish).
            let got = pipeline::apply_locked(
                vault,
                side,
                &good.prepared,
                pipeline::PlanOptions::default(),
                pipeline::Approval::Replan,
                &self.settings.locking,
                &|| None,
                &mut on_event,
            )
            .await;
            match got {
                Ok(pipeline::LockedApply::Applied { plan, .. }) => {
                    changes = plan.pending().count() as u64;
                    update(&status, |s| s.set_plan(&plan));
                }
                Ok(pipeline::LockedApply::NothingToDo) => changes = 0,
                Err(e) => {
                    let (why, dead) = failure(session, e).await;
                    if dead {
                        self.session = None;
                    }
                    return Err(why);
                }
            }
            if changes == 0 {
                tracing::info!(commit = %c, "in sync (another certplane applied the changes first)");
            } else if drift {
                tracing::info!(commit = %c, changes, "drift repaired");
                update(&status, |s| s.drift_repairs_total += changes);
            } else {
                tracing::info!(commit = %c, changes, "commit applied");
            }
        } else {
            tracing::info!(commit = %c, "in sync");
        }
        if self.settings.apply || changes == 0 {
            good.applied = true;
            update(&status, |s| s.last_applied_commit = Some(c.clone()));
        }
        // notAfter of every managed CA issuer, read after the apply.
        let mut cas = Vec::new();
        for r in &good.prepared.desired.resources {
            if let (ResourceKind::Issuer, Some(ca)) = (r.kind, &r.ca) {
                cas.push((ca.mount.clone(), ca.issuer_name.clone()));
            }
        }
        let mut not_after = std::collections::BTreeMap::new();
        for (mount, name) in cas {
            match crate::vault::observe::observe_issuers(vault, &mount).await {
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
        update(&status, |s| s.ca_not_after = not_after);
        Ok(())
    }
}

/// A failed plan or apply, as a readiness reason, and whether the token is
/// dead (a permission error with a token that no longer works: the next
/// reconcile logs in again; a policy problem keeps the token).
async fn failure(session: &Session, e: PipelineError) -> (String, bool) {
    tracing::error!(error = %crate::vault::error_chain(&e), "reconcile failed");
    let mut dead = false;
    let vault_error = match &e {
        PipelineError::Vault(v) => Some(v),
        PipelineError::Apply(crate::vault::ApplyError::Vault { source, .. }) => Some(&**source),
        _ => None,
    };
    let what = match vault_error {
        Some(v) => {
            if matches!(
                v,
                VaultError::PermissionDenied { .. }
                    | VaultError::TokenInvalid { .. }
                    | VaultError::TokenRejected { .. }
            ) && !session.alive().await
            {
                tracing::warn!("the vault token no longer works: logging in again");
                dead = true;
            }
            "vault"
        }
        None if matches!(e, PipelineError::Cluster(_)) => "cluster",
        None if matches!(e, PipelineError::Lock(_)) => "lock",
        None => "apply",
    };
    (format!("{what}: {}", crate::vault::error_chain(&e)), dead)
}

fn update(status: &Shared, f: impl FnOnce(&mut metrics::Status)) {
    if let Ok(mut s) = status.lock() {
        f(&mut s);
    }
}
