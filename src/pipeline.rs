//! The one pipeline every mode runs: load -> expand -> validate -> lower ->
//! observe -> plan -> apply (Vault, then secret deliveries, then the
//! cluster, then prune). Commands only decide how far to go and what to
//! print.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::addr::Addr;
use crate::cluster::{Cluster, ClusterError, reconcile};
use crate::deliver::DeliverError;
use crate::diagnostic::Diagnostics;
use crate::model::Repository;
use crate::plan::{Action, Plan};
use crate::state::Desired;
use crate::vault::apply::{ApplyError, ApplyEvent, ApplyReport};
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

/// Loads, expands, validates and lowers `dir`. Any problem is returned with
/// every diagnostic found; nothing has touched the network yet.
pub fn prepare(dir: &Path) -> Result<Prepared, Diagnostics> {
    prepare_with_live(dir, None)
}

/// [`prepare`], where references that the repository does not declare may
/// name what the live Vault has (`validate --live`).
pub fn prepare_with_live(
    dir: &Path,
    live: Option<&crate::validate::Live>,
) -> Result<Prepared, Diagnostics> {
    let mut repo = crate::load::load(dir)?;
    crate::expand::expand(&mut repo)?;
    let problems = crate::validate::validate_with_live(&repo, live);
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    let desired = crate::desired::build(&repo)?;
    tracing::info!(
        dir = %dir.display(),
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

/// Connects to the Vault the repository (or the environment) names: one
/// login for the whole run.
pub async fn connect(repo: &Repository) -> Result<Vault, VaultError> {
    let target = repo.config.as_ref().and_then(|c| c.spec.vault.as_ref());
    let settings = VaultSettings::resolve(target)?;
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
    prune && VaultSettings::resolve(config.and_then(|c| c.vault.as_ref())).is_ok()
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

/// Whether the repository writes anything to the cluster besides its
/// manifests: AppRole secret IDs, exported intermediate keys.
fn writes_secrets(repo: &Repository) -> bool {
    has_deliveries(repo) || !crate::deliver_key::targets(repo).is_empty()
}

/// Decides where the cluster half goes: `render` (the flag) or the config's
/// `cluster.render` writes files; otherwise a repository with cluster
/// objects needs a cluster (kubeconfig, or in-cluster config).
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
        return Ok(ClusterSide::None);
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
    let mut plan = match vault {
        Some(vault) => {
            let mut plan = observe_and_plan(vault, &prepared.desired).await?;
            if repo.config.as_ref().is_some_and(|c| c.spec.prune) {
                let orphans = crate::vault::prune::orphans(vault, &prepared.desired).await?;
                crate::plan::prune(&mut plan, &orphans, options.allow_destroy_ca);
            }
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
            plan.changes
                .extend(reconcile::plan_render(dir, &repo.manifests));
            crate::reviewer::plan_render(&mut plan, &prepared.desired);
        }
        ClusterSide::Live(cluster) => {
            let prune = repo.config.as_ref().is_some_and(|c| c.spec.prune);
            if let Some(vault) = vault {
                plan.changes
                    .extend(crate::deliver::plan(vault, cluster, repo).await?);
            }
            plan.changes
                .extend(reconcile::plan_live(cluster, &repo.manifests, prune).await?);
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
/// token, see [`crate::reviewer`]).
pub async fn apply(
    vault: &Vault,
    side: &ClusterSide,
    prepared: &Prepared,
    plan: &Plan,
    on_event: &mut (dyn FnMut(ApplyEvent) + Send),
) -> Result<Applied, PipelineError> {
    apply_with(Some(vault), side, prepared, plan, on_event).await
}

/// [`apply`], without Vault (`None`) for a repository that does not
/// [`needs_vault`].
pub async fn apply_with(
    vault: Option<&Vault>,
    side: &ClusterSide,
    prepared: &Prepared,
    plan: &Plan,
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
                    },
                    Some(Plan {
                        changes: first.changes[i + 1..].to_vec(),
                        errored: first.errored.clone(),
                    }),
                ),
                None => (first.clone(), None),
            };
            let mut report = crate::vault::apply(vault, &head, &secrets, on_event).await?;
            deliver_keys(side, prepared, &report, on_event).await?;
            if let Some(tail) = tail {
                let created = created_by(&report);
                let more =
                    crate::vault::apply_after(vault, &tail, &secrets, &created, on_event).await?;
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
            reconcile::apply_render(dir, &plan.changes, &mut on_applied).map_err(|source| {
                PipelineError::Render {
                    dir: dir.clone(),
                    source,
                }
            })?;
        }
        ClusterSide::Live(cluster) => {
            if let Some(vault) = vault {
                crate::deliver::apply(vault, cluster, &plan.changes, &mut on_applied).await?;
            }
            let r = reconcile::apply_live(cluster, &plan.changes, &mut on_applied).await?;
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
        let more = crate::vault::apply_after(vault, &rest, &all, &created, on_event).await?;
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
