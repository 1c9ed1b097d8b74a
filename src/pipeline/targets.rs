//! Which targets a run of a repository has: Vault (when it declares Vault
//! objects), and where its cluster half goes — a live cluster, a directory
//! of rendered manifests, or nowhere.

use std::path::{Path, PathBuf};

use super::prepare::Prepared;
use super::provider::Provider;
use crate::cluster::live::LiveCluster;
use crate::cluster::render::RenderDir;
use crate::cluster::{Cluster, ClusterError};
use crate::model::Repository;
use crate::model::config::ClusterTarget;
use crate::operator::Operator;
use crate::vault::{Vault, VaultError, VaultSettings};

/// The targets of one run: the Vault session (none for a repository
/// without Vault objects) and the cluster provider (none for a repository
/// without a cluster half).
#[derive(Clone, Copy, Default)]
pub struct Targets<'a> {
    /// The logged-in Vault.
    pub vault: Option<&'a Vault>,
    /// Where the cluster half goes.
    pub cluster: Option<&'a dyn Provider>,
}

impl<'a> Targets<'a> {
    /// Vault and a cluster provider.
    pub fn new(vault: Option<&'a Vault>, cluster: Option<&'a dyn Provider>) -> Targets<'a> {
        Targets { vault, cluster }
    }
}

/// Whether a run of this repository needs Vault: it declares Vault objects
/// (a VaultIssuer counts), or it prunes and a Vault is configured (its
/// last Vault objects may have left the repository). A repository of
/// cluster objects only (an ACME issuer) runs without one.
pub fn needs_vault(prepared: &Prepared) -> bool {
    needs_vault_for(prepared, &crate::operator::current())
}

/// [`needs_vault`] for a given operator.
pub fn needs_vault_for(prepared: &Prepared, op: &Operator) -> bool {
    if !prepared.desired.resources.is_empty() || has_deliveries(&prepared.repo) {
        return true;
    }
    prunes(&prepared.repo) && vault_settings(&prepared.repo, op).is_ok()
}

/// The Vault settings of a run of `repo`: the operator's, and the
/// repository's `spec.vault` where the operator allows it.
pub fn vault_settings(repo: &Repository, op: &Operator) -> Result<VaultSettings, VaultError> {
    let target = repo.config.as_ref().and_then(|c| c.spec.vault.as_ref());
    VaultSettings::resolve_with(target, &op.vault, op.trust)
}

/// Whether an AppRole delivers its secret ID into the cluster.
pub(crate) fn has_deliveries(repo: &Repository) -> bool {
    repo.app_roles().any(|(_, _, s)| s.deliver_to.is_some())
}

/// Whether the repository prunes (`spec.prune: true`).
pub(crate) fn prunes(repo: &Repository) -> bool {
    repo.config.as_ref().is_some_and(|c| c.spec.prune)
}

/// Whether the cluster half is there only to find what an earlier run left
/// (no cluster objects now, prune on) on a cluster the environment happens
/// to name (no `spec.cluster`): then failing to read it is a warning, not
/// an error, so a Vault-only repository never depends on a cluster.
pub(crate) fn inventory_only(repo: &Repository) -> bool {
    repo.manifests.is_empty()
        && !writes_secrets(repo)
        && repo
            .config
            .as_ref()
            .is_none_or(|c| c.spec.cluster.is_none())
}

/// Whether the repository writes anything to the cluster besides its
/// manifests: AppRole secret IDs, exported intermediate keys, trust
/// bundles.
fn writes_secrets(repo: &Repository) -> bool {
    has_deliveries(repo)
        || !crate::cluster::deliver_key::targets(repo).is_empty()
        || !crate::cluster::trust::targets(repo).is_empty()
}

/// Where a repository's cluster half goes, before connecting.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ClusterPlace {
    /// No cluster half.
    Nowhere,
    /// Files for Flux/Argo.
    Render(PathBuf),
    /// A live cluster (`spec.cluster`, else the environment's).
    Live {
        /// `spec.cluster`.
        target: Option<ClusterTarget>,
        /// Only to prune what an earlier run left, on the cluster the
        /// environment names: not reaching it is no error.
        optional: bool,
    },
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
pub(crate) fn cluster_place(repo: &Repository, render: Option<&Path>) -> ClusterPlace {
    let target = repo.config.as_ref().and_then(|c| c.spec.cluster.as_ref());
    let configured = target
        .and_then(|t| t.render.as_ref())
        .map(|p| repo.root.join(p));
    if let Some(dir) = render.map(Path::to_path_buf).or(configured) {
        return ClusterPlace::Render(dir);
    }
    let bare = repo.manifests.is_empty() && !writes_secrets(repo);
    if bare && !prunes(repo) {
        return ClusterPlace::Nowhere;
    }
    ClusterPlace::Live {
        target: target.cloned(),
        optional: bare && target.is_none(),
    }
}

/// Connects the cluster provider of `place` (`None`: no cluster half, or
/// an optional cluster that cannot be reached).
pub(crate) async fn connect_cluster(
    place: &ClusterPlace,
) -> Result<Option<Box<dyn Provider>>, ClusterError> {
    match place {
        ClusterPlace::Nowhere => Ok(None),
        ClusterPlace::Render(dir) => Ok(Some(Box::new(RenderDir::new(dir.clone())))),
        ClusterPlace::Live {
            target,
            optional: true,
        } => match Cluster::connect(target.as_ref()).await {
            Ok(cluster) => {
                tracing::info!("no cluster objects: connected to prune what the inventory lists");
                Ok(Some(Box::new(LiveCluster::new(cluster))))
            }
            Err(e) => {
                tracing::debug!(error = %e, "no cluster configured: nothing to prune there");
                Ok(None)
            }
        },
        ClusterPlace::Live { target, .. } => {
            let cluster = Cluster::connect(target.as_ref()).await?;
            tracing::info!(
                field_manager = cluster.field_manager(),
                "connected to the cluster"
            );
            Ok(Some(Box::new(LiveCluster::new(cluster))))
        }
    }
}
