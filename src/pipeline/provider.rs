//! The providers behind one trait: Vault ([`super::vault::VaultProvider`]),
//! a live cluster ([`crate::cluster::live::LiveCluster`]) and a directory of
//! rendered manifests ([`crate::cluster::render::RenderDir`]).
//!
//! A provider **observes** its target (reads only: the live objects, a
//! server-side dry run, files), then **plans** purely from what it observed
//! ([`Observation::plan`]), **applies** the pending changes of a plan that
//! are its own, re-checking each against the live state first ("plan is
//! stale" when it moved since the plan), and **prunes** what left the
//! repository (recording what it owns). The driver decides the order in
//! which providers and their parts run ([`mod@super::apply`]).
//!
//! The trait is object-safe (the driver holds the cluster half as a
//! `dyn Provider`); its futures are not `Send`: a mode drives the pipeline
//! on its own task, and nothing spawns a step.

use futures::future::LocalBoxFuture;

use super::prepare::Prepared;
use crate::addr::Addr;
use crate::cluster::ClusterError;
use crate::cluster::deliver::DeliverError;
use crate::cluster::deliver_key::KeyDeliveryError;
use crate::cluster::reviewer::ReviewerError;
use crate::model::Repository;
use crate::plan::{Change, Plan};
use crate::state::Desired;
use crate::vault::apply::{ApplyEvent, ApplyOptions, ApplyReport, ExportedKey};
use crate::vault::{ApplyError, SecretSources, Vault, VaultError};

/// Choices of a run that are not part of the repository.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// `--allow-destroy-ca`: prune may delete a mount that holds a CA.
    pub allow_destroy_ca: bool,
}

/// What every provider plans from.
#[derive(Clone, Copy)]
pub struct PlanInput<'a> {
    /// The repository and the desired Vault state.
    pub prepared: &'a Prepared,
    /// The run's choices.
    pub options: PlanOptions,
    /// The Vault session, when the run has one (a cluster provider reads
    /// what it delivers from Vault: an AppRole's role ID, whether a secret
    /// ID it holds is valid).
    pub vault: Option<&'a Vault>,
}

/// What every provider applies with.
#[derive(Clone, Copy)]
pub struct ApplyInput<'a> {
    /// The repository the plan was made from.
    pub prepared: &'a Prepared,
    /// The Vault session, when the run has one.
    pub vault: Option<&'a Vault>,
    /// The stop check, and where signed intermediates are recorded.
    pub options: ApplyOptions<'a>,
}

/// Where apply events go.
pub type OnEvent<'a> = &'a mut (dyn FnMut(ApplyEvent) + Send);

/// Why a provider could not observe, apply or prune.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Vault could not be reached, read or written.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Applying to Vault failed (boxed: a large error).
    #[error(transparent)]
    Apply(Box<ApplyError>),
    /// The cluster could not be reached, read or written (boxed: a large
    /// error).
    #[error(transparent)]
    Cluster(Box<ClusterError>),
    /// An AppRole secret ID could not be delivered (boxed: a large error).
    #[error(transparent)]
    Deliver(Box<DeliverError>),
    /// An exported intermediate key could not be delivered (it is lost;
    /// boxed: a large error).
    #[error(transparent)]
    KeyDelivery(Box<KeyDeliveryError>),
    /// A token reviewer's token could not be read from the cluster (boxed:
    /// a large error).
    #[error(transparent)]
    Reviewer(Box<ReviewerError>),
    /// Rendered manifests could not be written.
    #[error("cannot write the rendered manifests to {}", dir.display())]
    Render {
        /// The render directory.
        dir: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Before its change, an object was re-read and is no longer as the
    /// plan saw it: the changes before it were made, it and the rest not.
    #[error(
        "plan is stale: {addr} changed since the plan was made ({why}); it and the changes after it \
         were not applied; run plan again"
    )]
    Stale {
        /// The object (boxed: keeps the error small).
        addr: Box<Addr>,
        /// How it moved.
        why: String,
    },
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
}

/// `From` for the boxed variants of [`ProviderError`].
macro_rules! boxed_from {
    ($($error:ty => $variant:ident),* $(,)?) => {$(
        impl From<$error> for ProviderError {
            fn from(e: $error) -> ProviderError {
                ProviderError::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from! {
    ApplyError => Apply,
    ClusterError => Cluster,
    DeliverError => Deliver,
    KeyDeliveryError => KeyDelivery,
    ReviewerError => Reviewer,
}

impl ProviderError {
    /// The Vault error underneath, if any.
    pub fn vault_error(&self) -> Option<&VaultError> {
        match self {
            ProviderError::Vault(v) => Some(v),
            ProviderError::Apply(a) => match &**a {
                ApplyError::Vault { source, .. } => Some(source),
                _ => None,
            },
            ProviderError::Deliver(d) => match &**d {
                DeliverError::Vault { source, .. } => Some(source),
                _ => None,
            },
            _ => None,
        }
    }
}

/// What a provider read: the input of its pure plan.
pub trait Observation: Send {
    /// Adds this provider's changes, notes, errors and drift to `plan`
    /// (which holds the changes of the providers planned before it, for
    /// the few that depend on them). No I/O. Consumes the observation:
    /// what it holds moves into the plan rather than being copied.
    fn plan(self: Box<Self>, input: &PlanInput<'_>, plan: &mut Plan);
}

/// One target certplane converges.
pub trait Provider: Send + Sync {
    /// What it is, for logs ("vault", "cluster", "render").
    fn name(&self) -> &'static str;

    /// Reads what planning needs; writes nothing. `planned` holds the
    /// changes of the providers planned before this one.
    fn observe<'a>(
        &'a self,
        input: &'a PlanInput<'a>,
        planned: &'a Plan,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, ProviderError>>;

    /// Applies this provider's pending changes of `plan` that are not
    /// deletes, in order, re-checking each against the live state first.
    fn apply<'a>(
        &'a self,
        input: &'a ApplyInput<'a>,
        plan: &'a Plan,
        on_event: OnEvent<'a>,
    ) -> LocalBoxFuture<'a, Result<ApplyReport, ProviderError>>;

    /// Deletes what `plan` prunes (this provider's deletes), then records
    /// what this repository owns now (`plan` is the whole plan applied).
    fn prune<'a>(
        &'a self,
        input: &'a ApplyInput<'a>,
        plan: &'a Plan,
        on_event: OnEvent<'a>,
    ) -> LocalBoxFuture<'a, Result<ApplyReport, ProviderError>>;

    /// Where secrets cross from and to Vault (a live cluster): exported
    /// keys delivered, reviewer tokens read. `None`: nowhere.
    fn secrets(&self) -> Option<&dyn SecretStore> {
        None
    }
}

/// A target that holds secrets certplane moves between it and Vault.
pub trait SecretStore: Send + Sync {
    /// Writes the keys the Vault half exported where the repository
    /// delivers them; returns what it wrote.
    fn deliver_keys<'a>(
        &'a self,
        repo: &'a Repository,
        keys: &'a [ExportedKey],
    ) -> LocalBoxFuture<'a, Result<Vec<Addr>, ProviderError>>;

    /// Reads the secrets the Vault changes `later` take from here (a
    /// reviewer's token), waiting for them to appear.
    fn read_secrets<'a>(
        &'a self,
        later: &'a [Change],
        desired: &'a Desired,
    ) -> LocalBoxFuture<'a, Result<SecretSources, ProviderError>>;
}
