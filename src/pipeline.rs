//! The one pipeline every mode runs: load -> expand -> validate -> lower ->
//! observe -> plan -> apply (Vault, then secret deliveries, then the
//! cluster, then prune). Commands only decide how far to go and what to
//! print. Planning never locks; an apply with changes takes the apply lock,
//! plans again under it and applies that ([`apply_locked`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::addr::{Addr, KubeRef};
use crate::cluster::{Cluster, ClusterError, reconcile};
use crate::deliver::DeliverError;
use crate::diagnostic::Diagnostics;
use crate::model::Repository;
use crate::operator::Operator;
use crate::plan::{Action, Plan};
use crate::state::Desired;
use crate::vault::apply::{ApplyError, ApplyEvent, ApplyOptions, ApplyReport};
use crate::vault::lock::{Holder, LockError, LockSettings};
use crate::vault::{Vault, VaultError, VaultSettings};

/// A repository that loaded and passed every offline check, lowered to the
/// desired Vault state.
#[derive(Debug)]
pub struct Prepared {
    /// The typed repository, VaultIssuers expanded.
    pub repo: Repository,
    /// What Vault should hold.
    pub desired: Desired,
}

/// Why a run stopped after the offline checks.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Vault could not be reached, read or written.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Applying to Vault failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The cluster could not be reached, read or written.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// An AppRole secret ID could not be delivered.
    #[error(transparent)]
    Deliver(#[from] DeliverError),
    /// The apply lock could not be taken (another certplane applies) or
    /// was lost.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Under the lock, the plan is no longer the one that was approved:
    /// nothing was applied.
    #[error(
        "plan is stale: {addr} changed since the plan was made ({why}); nothing was applied; run apply again"
    )]
    Stale {
        /// The first change that differs.
        addr: Addr,
        /// How.
        why: String,
    },
    /// An exported intermediate key could not be delivered (it is lost).
    #[error(transparent)]
    KeyDelivery(#[from] crate::deliver_key::KeyDeliveryError),
    /// An intermediate exported its key and there is no cluster to deliver
    /// it to (the plan refuses this; a key is never written to files).
    #[error(
        "{issuer} exported its key and there is no cluster to deliver it to; the key is not kept: \
         rotate the intermediate with cluster access"
    )]
    KeyWithoutCluster {
        /// The issuer.
        issuer: String,
    },
    /// A token reviewer's token could not be read from the cluster.
    #[error(transparent)]
    Reviewer(#[from] crate::reviewer::ReviewerError),
    /// The plan changes Vault, and no Vault connection was made (the
    /// repository has no Vault objects).
    #[error(
        "the plan changes Vault, but the repository declares no Vault objects and certplane did not connect to Vault"
    )]
    NoVault,
    /// Rendered manifests could not be written.
    #[error("cannot write the rendered manifests to {}", dir.display())]
    Render {
        /// The render directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where the cluster half goes.
#[derive(Debug)]
pub enum ClusterSide {
    /// The repository has no cluster objects.
    None,
    /// Written as files for Flux/Argo (`--render DIR`, `cluster.render`).
    Render(PathBuf),
    /// Server-side applied to a cluster.
    Live(Cluster),
}

/// What [`prepare_with`] needs besides the directory.
#[derive(Clone, Copy, Default)]
pub struct PrepareOptions<'a> {
    /// References the repository does not declare may name what the live
    /// Vault has (`validate --live`).
    pub live: Option<&'a crate::validate::Live>,
    /// The render directory given with `--render`: never loaded as input
    /// (`spec.cluster.render` never is either).
    pub render: Option<&'a Path>,
    /// The repository identity when `certplane.yaml` names none (`run`
    /// derives it from the Git URL); default: the directory's name.
    pub identity: Option<&'a str>,
    /// Whose rules apply to sources and connection settings (default: this
    /// process's [`Operator`], [`crate::operator::current`]).
    pub operator: Option<&'a Operator>,
}

/// Loads, expands, validates and lowers `dir` for this process's
/// [`Operator`] ([`crate::operator::current`]). Any problem is returned with
/// every diagnostic found; nothing has touched the network yet.
pub fn prepare(dir: &Path) -> Result<Prepared, Diagnostics> {
    prepare_with(dir, PrepareOptions::default())
}

/// [`prepare`] for a given operator.
pub fn prepare_for(dir: &Path, op: &Operator) -> Result<Prepared, Diagnostics> {
    prepare_with(
        dir,
        PrepareOptions {
            operator: Some(op),
            ..PrepareOptions::default()
        },
    )
}

/// [`prepare`], where references that the repository does not declare may
/// name what the live Vault has (`validate --live`).
pub fn prepare_with_live(
    dir: &Path,
    live: Option<&crate::validate::Live>,
) -> Result<Prepared, Diagnostics> {
    prepare_with(
        dir,
        PrepareOptions {
            live,
            ..PrepareOptions::default()
        },
    )
}

/// Loads `dir` with the operator's rules for sources, and refuses a
/// `certplane.yaml` whose Vault settings the operator does not allow. The
/// first step of [`prepare`]; enough before connecting to Vault.
pub fn load_checked(dir: &Path, op: &Operator) -> Result<Repository, Diagnostics> {
    let options = crate::load::LoadOptions {
        env: op.env.clone(),
        ..Default::default()
    };
    let repo = crate::load::load_with(dir, &options)?;
    let conflicts = crate::operator::check_config(&repo, op);
    if conflicts.is_empty() {
        Ok(repo)
    } else {
        Err(Diagnostics(conflicts))
    }
}

/// [`prepare`] with options.
pub fn prepare_with(dir: &Path, options: PrepareOptions<'_>) -> Result<Prepared, Diagnostics> {
    let current;
    let op = match options.operator {
        Some(op) => op,
        None => {
            current = crate::operator::current();
            &current
        }
    };
    let load_options = crate::load::LoadOptions {
        env: op.env.clone(),
        exclude: options.render.map(Path::to_path_buf).into_iter().collect(),
        identity: options.identity.map(str::to_string),
    };
    let mut repo = crate::load::load_with(dir, &load_options)?;
    // Every problem at once: the settings the operator refuses, then the
    // repository's own.
    let mut problems = crate::operator::check_config(&repo, op);
    match crate::expand::expand(&mut repo) {
        Ok(()) => problems.extend(crate::validate::validate_with_live(&repo, options.live)),
        Err(d) => problems.extend(d.0),
    }
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    let desired = crate::desired::build(&repo)?;
    tracing::info!(
        dir = %dir.display(),
        repository = %repo.identity,
        objects = repo.vault.len(),
        manifests = repo.manifests.len(),
        resources = desired.resources.len(),
        "repository loaded and valid"
    );
    for r in &desired.resources {
        tracing::trace!(addr = %r.addr, kind = ?r.kind, fields = r.fields.len(), "desired");
    }
    Ok(Prepared { repo, desired })
}

/// Connects to the operator's Vault (the repository's `spec.vault` fills in
/// only what the operator allows): one login for the whole run.
pub async fn connect(repo: &Repository) -> Result<Vault, VaultError> {
    connect_for(repo, &crate::operator::current()).await
}

/// [`connect`] for a given operator.
pub async fn connect_for(repo: &Repository, op: &Operator) -> Result<Vault, VaultError> {
    let target = repo.config.as_ref().and_then(|c| c.spec.vault.as_ref());
    let settings = VaultSettings::resolve_with(target, &op.vault, op.trust)?;
    let vault = Vault::connect(&settings).await?;
    tracing::info!(address = %settings.address, "connected to vault");
    Ok(vault)
}

/// Whether a run of this repository needs Vault: it declares Vault objects
/// (a VaultIssuer counts), or it prunes and a Vault is configured (its
/// last Vault objects may have left the repository). A repository of
/// cluster objects only (an ACME issuer) runs without one.
pub fn needs_vault(prepared: &Prepared) -> bool {
    if !prepared.desired.resources.is_empty() || has_deliveries(&prepared.repo) {
        return true;
    }
    let config = prepared.repo.config.as_ref().map(|c| &c.spec);
    let prune = config.is_some_and(|c| c.prune);
    let op = crate::operator::current();
    prune
        && VaultSettings::resolve_with(config.and_then(|c| c.vault.as_ref()), &op.vault, op.trust)
            .is_ok()
}

/// [`connect`] when the repository [`needs_vault`]; `None` otherwise, with
/// no network call.
pub async fn connect_if_needed(prepared: &Prepared) -> Result<Option<Vault>, VaultError> {
    if needs_vault(prepared) {
        connect(&prepared.repo).await.map(Some)
    } else {
        tracing::info!("the repository has no Vault objects: not connecting to Vault");
        Ok(None)
    }
}

fn has_deliveries(repo: &Repository) -> bool {
    repo.app_roles().any(|(_, _, s)| s.deliver_to.is_some())
}

fn prunes(repo: &Repository) -> bool {
    repo.config.as_ref().is_some_and(|c| c.spec.prune)
}

/// Whether the cluster half is there only to find what an earlier run left
/// (no cluster objects now, prune on) on a cluster the environment happens
/// to name (no `spec.cluster`): then failing to reach it is a warning, not
/// an error, so a Vault-only repository never depends on a cluster.
fn inventory_only(repo: &Repository) -> bool {
    repo.manifests.is_empty()
        && !writes_secrets(repo)
        && repo
            .config
            .as_ref()
            .is_none_or(|c| c.spec.cluster.is_none())
}

/// Whether the repository writes anything to the cluster besides its
/// manifests: AppRole secret IDs, exported intermediate keys.
fn writes_secrets(repo: &Repository) -> bool {
    has_deliveries(repo) || !crate::deliver_key::targets(repo).is_empty()
}

/// Decides where the cluster half goes: `render` (the flag) or the config's
/// `cluster.render` writes files; otherwise a repository with cluster
/// objects needs a cluster (kubeconfig, or in-cluster config).
///
/// A repository without cluster objects needs none, with one exception:
/// with `prune: true` its inventory may still list objects an earlier
/// version of it applied, which prune must delete. It then connects to the
/// cluster `spec.cluster` names (an error if that fails), or else to the one
/// the environment names (kubeconfig or in-cluster), if any: no cluster
/// configured at all means the repository never had one.
pub async fn cluster_side(
    repo: &Repository,
    render: Option<&Path>,
) -> Result<ClusterSide, ClusterError> {
    let target = repo.config.as_ref().and_then(|c| c.spec.cluster.as_ref());
    let configured = target
        .and_then(|t| t.render.as_ref())
        .map(|p| repo.root.join(p));
    if let Some(dir) = render.map(Path::to_path_buf).or(configured) {
        return Ok(ClusterSide::Render(dir));
    }
    if repo.manifests.is_empty() && !writes_secrets(repo) {
        if !prunes(repo) {
            return Ok(ClusterSide::None);
        }
        if target.is_none() {
            return match Cluster::connect(None).await {
                Ok(cluster) => {
                    tracing::info!(
                        "no cluster objects: connected to prune what the inventory lists"
                    );
                    Ok(ClusterSide::Live(cluster))
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no cluster configured: nothing to prune there");
                    Ok(ClusterSide::None)
                }
            };
        }
    }
    let cluster = Cluster::connect(target).await?;
    tracing::info!(
        field_manager = cluster.field_manager(),
        "connected to the cluster"
    );
    Ok(ClusterSide::Live(cluster))
}

/// Reads the live Vault state and plans against it (Vault half only).
pub async fn observe_and_plan(vault: &Vault, desired: &Desired) -> Result<Plan, VaultError> {
    let started = std::time::Instant::now();
    let observed = crate::vault::observe(vault, desired).await?;
    let counts = vault.requests_made();
    tracing::info!(
        existing = observed.resources.len(),
        reads = counts.reads,
        ms = started.elapsed().as_millis() as u64,
        "observed vault"
    );
    let plan = crate::plan::plan(desired, &observed);
    for c in &plan.changes {
        tracing::debug!(
            addr = %c.addr,
            action = ?c.action,
            reason = c.reason.as_deref().unwrap_or(""),
            "planned"
        );
    }
    Ok(plan)
}

/// Choices of a run that are not part of the repository.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// `--allow-destroy-ca`: prune may delete a mount that holds a CA.
    pub allow_destroy_ca: bool,
}

/// Plans both halves: Vault, then secret deliveries and cluster objects.
pub async fn plan(
    vault: &Vault,
    side: &ClusterSide,
    prepared: &Prepared,
) -> Result<Plan, PipelineError> {
    plan_with(Some(vault), side, prepared, PlanOptions::default()).await
}

/// [`plan`] with run options, and without Vault (`None`) for a repository
/// that does not [`needs_vault`]. With `prune: true`, Vault objects
/// certplane manages and the repository no longer declares are planned as
/// deletes.
pub async fn plan_with(
    vault: Option<&Vault>,
    side: &ClusterSide,
    prepared: &Prepared,
    options: PlanOptions,
) -> Result<Plan, PipelineError> {
    let repo = &prepared.repo;
    let identity = repo.identity.as_str();
    let prune = prunes(repo);
    let mut plan = match vault {
        Some(vault) => {
            let mut plan = observe_and_plan(vault, &prepared.desired).await?;
            let owned = crate::vault::prune::survey(vault, &prepared.desired, identity).await?;
            crate::plan::ownership(
                &mut plan,
                &owned,
                crate::plan::OwnershipOptions {
                    identity,
                    prune,
                    allow_destroy_ca: options.allow_destroy_ca,
                },
            );
            plan
        }
        None if needs_vault(prepared) => return Err(PipelineError::NoVault),
        None => Plan::default(),
    };
    match side {
        ClusterSide::None => {}
        ClusterSide::Render(dir) => {
            if has_deliveries(repo) {
                tracing::warn!(
                    "AppRole deliverTo needs a cluster: no secret ID is delivered with --render \
                     (a secret ID must not be written to files)"
                );
            }
            let rendered = reconcile::plan_render(dir, &repo.manifests, identity);
            plan.changes.extend(rendered.changes);
            plan.notes.extend(rendered.notes);
            crate::reviewer::plan_render(&mut plan, &prepared.desired);
        }
        ClusterSide::Live(cluster) => {
            let deliveries = match vault {
                Some(vault) => crate::deliver::plan(vault, cluster, repo).await?,
                None => Vec::new(),
            };
            let delivered: Vec<KubeRef> = deliveries
                .iter()
                .filter_map(|c| match &c.addr {
                    Addr::Kube(k) => Some(k.clone()),
                    Addr::Vault(_) => None,
                })
                .collect();
            plan.changes.extend(deliveries);
            let live = reconcile::LiveOptions {
                identity,
                prune,
                also_owned: &delivered,
            };
            match reconcile::plan_live(cluster, &repo.manifests, live).await {
                Ok(cluster_plan) => {
                    plan.changes.extend(cluster_plan.changes);
                    plan.notes.extend(cluster_plan.notes);
                }
                Err(e) if inventory_only(repo) => {
                    tracing::warn!(
                        error = %crate::vault::error_chain(&e),
                        "cannot read the inventory of this repository in the cluster the \
                         environment names: objects an earlier run applied there are not pruned \
                         this time (set spec.cluster in certplane.yaml to make this an error)"
                    );
                }
                Err(e) => return Err(e.into()),
            }
            crate::reviewer::plan_live(&mut plan, &prepared.desired);
        }
    }
    let cluster = match side {
        ClusterSide::Live(c) => Some(c),
        ClusterSide::None | ClusterSide::Render(_) => None,
    };
    crate::deliver_key::preflight(&mut plan, repo, cluster).await;
    Ok(plan)
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The Vault half.
    pub vault: ApplyReport,
    /// Cluster objects applied or written, by action.
    pub cluster: Vec<(Addr, Action)>,
}

/// Applies a plan: Vault first (cluster objects refer to it), then secret
/// deliveries, then cluster objects and prune (or rendered files), then the
/// Vault changes that read a secret from the cluster (a token reviewer's
/// token, see [`crate::reviewer`]). Without the apply lock: commands use
/// [`apply_locked`].
pub async fn apply(
    vault: &Vault,
    side: &ClusterSide,
    prepared: &Prepared,
    plan: &Plan,
    on_event: &mut (dyn FnMut(ApplyEvent) + Send),
) -> Result<Applied, PipelineError> {
    apply_with(
        Some(vault),
        side,
        prepared,
        plan,
        ApplyOptions::default(),
        on_event,
    )
    .await
}

/// How an apply takes the apply lock ([`crate::vault::lock`]).
#[derive(Clone, Debug)]
pub struct Locking {
    /// Where the lock lives and how long to wait for it.
    pub settings: LockSettings,
    /// Who this process is, for the record (and another's error message).
    pub holder: Holder,
}

/// What the caller agreed to apply.
#[derive(Clone, Copy, Debug)]
pub enum Approval<'a> {
    /// Exactly this plan (shown and confirmed, or saved by `plan --out`): a
    /// plan under the lock that differs stops with "plan is stale".
    Exactly(&'a Plan),
    /// Whatever the plan under the lock is (`run`, `watch --apply`).
    Replan,
}

/// What [`apply_locked`] did.
#[derive(Debug)]
pub enum LockedApply {
    /// Applied the plan made under the lock.
    Applied {
        /// That plan.
        plan: Plan,
        /// What was done.
        done: Applied,
    },
    /// Under the lock there was nothing left to change (another certplane
    /// applied it meanwhile); nothing was written but the lock.
    NothingToDo,
}

/// Applies under the apply lock, for a plan made without it that has
/// changes: takes the lock (waiting as `locking` says), observes and plans
/// again under it, checks the new plan against what was approved, applies
/// it while renewing the lock, and releases the lock on success, on error
/// and when `stop` asks to stop (checked before every Vault change).
#[allow(clippy::too_many_arguments)] // One entry point for every mode; each argument is a different concern.
pub async fn apply_locked(
    vault: &Vault,
    side: &ClusterSide,
    prepared: &Prepared,
    options: PlanOptions,
    approval: Approval<'_>,
    locking: &Locking,
    stop: &(dyn Fn() -> Option<String> + Sync),
    on_event: &mut (dyn FnMut(ApplyEvent) + Send),
) -> Result<LockedApply, PipelineError> {
    let interrupted = || stop().is_some();
    let lock = crate::vault::lock::acquire(vault, &locking.settings, &locking.holder, &interrupted)
        .await?;
    let body = async {
        let plan = plan_with(Some(vault), side, prepared, options).await?;
        if !plan.errored.is_empty() {
            return Err(PipelineError::Apply(ApplyError::Errored {
                count: plan.errored.len(),
            }));
        }
        if !plan.has_changes() {
            tracing::info!("under the apply lock there is nothing left to change");
            return Ok(LockedApply::NothingToDo);
        }
        if let Approval::Exactly(approved) = approval
            && let Some((addr, why)) = crate::plan::first_difference(approved, &plan)
        {
            return Err(PipelineError::Stale { addr, why });
        }
        let guard = || {
            lock.lost()
                .map(|why| format!("the apply lock was lost: {why}"))
                .or_else(stop)
        };
        let apply_options = ApplyOptions {
            stop: Some(&guard),
            state_mount: Some(lock.mount()),
            created: None,
        };
        let done = apply_with(Some(vault), side, prepared, &plan, apply_options, on_event).await?;
        Ok(LockedApply::Applied { plan, done })
    };
    let result = lock.hold(vault, body).await;
    if let Err(e) = lock.release(vault).await {
        tracing::warn!(error = %crate::vault::error_chain(&e), "cannot release the apply lock (its lease ends by itself)");
    }
    result
}

/// [`apply`] with a stop check before every Vault change and the mount
/// where signed intermediates are recorded ([`ApplyOptions`]), and without
/// Vault (`None`) for a repository that does not [`needs_vault`].
pub async fn apply_with(
    vault: Option<&Vault>,
    side: &ClusterSide,
    prepared: &Prepared,
    plan: &Plan,
    options: ApplyOptions<'_>,
    on_event: &mut (dyn FnMut(ApplyEvent) + Send),
) -> Result<Applied, PipelineError> {
    let secrets = crate::vault::apply::secret_sources(&prepared.desired);
    let (first, later) = match side {
        ClusterSide::Live(_) => crate::reviewer::split(plan, &prepared.desired),
        ClusterSide::None | ClusterSide::Render(_) => (plan.clone(), Vec::new()),
    };
    let vault_pending = first.pending().any(|c| c.addr.vault_path().is_some());
    let report = match vault {
        Some(vault) => {
            // An exported key exists only from its intermediate's creation
            // on, and only in memory: the Vault half is applied up to that
            // intermediate, the key delivered, then the rest (so a later
            // failure cannot lose it).
            let cut = crate::deliver_key::last_exporting(&first, &prepared.repo);
            let (head, tail) = match cut {
                Some(i) => (
                    Plan {
                        changes: first.changes[..=i].to_vec(),
                        errored: first.errored.clone(),
                        ..Plan::default()
                    },
                    Some(Plan {
                        changes: first.changes[i + 1..].to_vec(),
                        errored: first.errored.clone(),
                        ..Plan::default()
                    }),
                ),
                None => (first.clone(), None),
            };
            let mut report =
                crate::vault::apply_with(vault, &head, &secrets, options, on_event).await?;
            deliver_keys(side, prepared, &report, on_event).await?;
            if let Some(tail) = tail {
                let created = created_by(&report);
                let rest = ApplyOptions {
                    created: Some(&created),
                    ..options
                };
                let more = crate::vault::apply_with(vault, &tail, &secrets, rest, on_event).await?;
                report.applied.extend(more.applied);
                report.waiting.extend(more.waiting);
            }
            report
        }
        None if vault_pending || !later.is_empty() => return Err(PipelineError::NoVault),
        None => ApplyReport::default(),
    };
    let mut cluster_done = Vec::new();
    let mut on_applied = |addr: &Addr, action: Action| {
        cluster_done.push((addr.clone(), action));
    };
    match side {
        ClusterSide::None => {}
        ClusterSide::Render(dir) => {
            let identity = prepared.repo.identity.as_str();
            reconcile::apply_render(dir, &plan.changes, identity, &mut on_applied).map_err(
                |source| PipelineError::Render {
                    dir: dir.clone(),
                    source,
                },
            )?;
        }
        ClusterSide::Live(cluster) => {
            if let Some(vault) = vault {
                crate::deliver::apply(vault, cluster, &plan.changes, &mut on_applied).await?;
            }
            let identity = prepared.repo.identity.as_str();
            let r = reconcile::apply_live(cluster, plan, identity, &mut on_applied).await?;
            for (obj, why) in &r.failed {
                tracing::warn!(object = %obj, error = %why, "prune failed; kept in the inventory");
            }
        }
    }
    for (addr, action) in &cluster_done {
        on_event(ApplyEvent::Done {
            addr: addr.clone(),
            action: *action,
        });
    }
    let mut report = report;
    if let (Some(vault), ClusterSide::Live(cluster), false) = (vault, side, later.is_empty()) {
        let read = crate::reviewer::resolve(
            cluster,
            &later,
            &prepared.desired,
            crate::reviewer::TOKEN_WAIT,
        )
        .await?;
        let mut all = secrets;
        for (addr, keys) in read {
            all.entry(addr).or_default().extend(keys);
        }
        let created = created_by(&report);
        let rest = Plan {
            changes: later,
            ..Plan::default()
        };
        let rest_options = ApplyOptions {
            created: Some(&created),
            ..options
        };
        let more = crate::vault::apply_with(vault, &rest, &all, rest_options, on_event).await?;
        report.applied.extend(more.applied);
        report.waiting.extend(more.waiting);
    }
    Ok(Applied {
        vault: report,
        cluster: cluster_done,
    })
}

/// What an apply created (so that a later part of the same apply does not
/// take a resource under a new mount for a stale plan).
fn created_by(report: &ApplyReport) -> BTreeSet<Addr> {
    report
        .applied
        .iter()
        .filter(|a| matches!(a.action, Action::Create | Action::Replace))
        .map(|a| a.addr.clone())
        .collect()
}

/// Delivers the keys the Vault half exported (see [`crate::deliver_key`]).
async fn deliver_keys(
    side: &ClusterSide,
    prepared: &Prepared,
    report: &ApplyReport,
    on_event: &mut (dyn FnMut(ApplyEvent) + Send),
) -> Result<(), PipelineError> {
    if report.exported.is_empty() {
        return Ok(());
    }
    let ClusterSide::Live(cluster) = side else {
        return Err(PipelineError::KeyWithoutCluster {
            issuer: report.exported[0].addr.to_string(),
        });
    };
    for addr in crate::deliver_key::deliver(cluster, &prepared.repo, &report.exported).await? {
        on_event(ApplyEvent::Done {
            addr,
            action: Action::Update,
        });
    }
    Ok(())
}
