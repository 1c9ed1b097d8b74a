//! The cluster providers: a live cluster ([`live::LiveCluster`]: observe,
//! dry-run and apply cluster objects with server-side apply, and keep the
//! inventory certplane prunes from) and a directory of rendered manifests
//! ([`render::RenderDir`]), both behind [`crate::pipeline::Provider`].
//!
//! * [`client`]: [`Cluster`], the connection, discovery (namespaced or
//!   cluster-scoped, per group/version, cached) and the calls:
//!   [`Cluster::plan_object`] (GET + server-side apply dry run),
//!   [`Cluster::apply_object`] (server-side apply, forced, one field manager),
//!   [`Cluster::delete_object`].
//! * [`pool`]: the connection's bounds: at most 8 requests in flight and
//!   at most 8 TCP connections (one pool per [`Cluster`], shared by its
//!   clones).
//! * [`diff`]: pure: strip server-set fields, compare live with the dry-run
//!   result as dotted field paths, mask Secret values ([`mask_secret`]).
//! * [`inventory`]: the set of objects one repository applied, kept in a
//!   labelled ConfigMap per repository identity in the cluster.
//! * [`prune`]: pure set arithmetic, delete order and ownership (never
//!   another repository's objects), and the deletes.
//! * [`manifest`]: a manifest as certplane applies it (address, repository
//!   label, why the plan shows it, kind order).
//! * [`live`], [`render`]: the two providers.
//! * [`deliver`], [`deliver_key`], [`reviewer`]: the secrets that cross
//!   between Vault and the cluster: AppRole secret IDs delivered into
//!   Secrets, exported intermediate keys delivered into Secrets, and a token
//!   reviewer's token read from a Secret into Vault.
//! * [`trust`]: a PKI mount's CA trust bundle published into a ConfigMap
//!   or a trust-manager `Bundle`, written after the Vault half.
//!
//! Secret values (`data`, `stringData`) never leave this module unmasked: not
//! in an [`ObjectPlan`], not in a log line, not in a [`ClusterError`].

pub mod client;
pub mod deliver;
pub mod deliver_key;
pub mod diff;
pub mod inventory;
pub mod live;
pub mod manifest;
pub mod pool;
pub mod prune;
mod redact;
pub mod render;
pub mod reviewer;
pub mod trust;

use std::time::Duration;

use thiserror::Error;

pub use client::{
    Cluster, DEFAULT_FIELD_MANAGER, DEFAULT_TIMEOUT, Deleted, ObservedObject, Replies,
    ResolvedObject, string_data_to_data,
};
pub use diff::{ObjectPlan, SENSITIVE, mask_secret};
pub use inventory::{ForeignInventory, Inventory, InventoryLocation, REPOSITORY_LABEL};
pub use prune::{
    PruneReport, StaleOwner, apply_rank, next_inventory, prune_order, stale, stale_owner,
};

/// Errors of the Kubernetes provider.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// The kubeconfig could not be read or names no usable context.
    #[error("cannot load the kubeconfig{}", context.as_ref().map(|c| format!(" (context {c:?})")).unwrap_or_default())]
    Kubeconfig {
        /// The context asked for, if any.
        context: Option<String>,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error(
        "no cluster configuration found: set KUBECONFIG, name a context in certplane.yaml (spec.cluster.context), or run in a pod"
    )]
    InferConfig(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration (TLS, proxy, auth).
    #[error("cannot build the kubernetes client")]
    Client(#[source] kube::Error),
    /// A manifest lacks what every Kubernetes object needs.
    #[error("invalid manifest{}: {reason}", object.as_ref().map(|o| format!(" {o}")).unwrap_or_default())]
    InvalidManifest {
        /// The object, as far as it could be named.
        object: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// The API server does not serve the object's apiVersion and kind
    /// (e.g. the cert-manager CRDs are not installed).
    #[error("the cluster does not serve {api_version} {kind}: {hint}")]
    NotServed {
        /// The apiVersion asked for.
        api_version: String,
        /// The kind asked for.
        kind: String,
        /// What to do about it.
        hint: String,
    },
    /// Discovery failed for another reason than "not served".
    #[error(
        "cannot discover {api_version} on the api server: {}",
        client::describe(error)
    )]
    Discovery {
        /// The apiVersion asked for.
        api_version: String,
        /// Why (described in the message, on one line).
        error: kube::Error,
    },
    /// A request to the API server failed: one line with the status, the
    /// reason, the server's message and a hint ([`client::describe`]).
    #[error("{op} {object} failed: {}", client::describe(error))]
    Request {
        /// What was being done (`get`, `dry-run apply`, `apply`, `delete`).
        op: &'static str,
        /// The object (`group/Kind/namespace/name`).
        object: String,
        /// Why (server messages about Secrets are redacted).
        error: kube::Error,
    },
    /// A request about a Secret failed and its message could not be shown
    /// safely in full.
    #[error("{op} {object} failed: {message}")]
    RequestRedacted {
        /// What was being done.
        op: &'static str,
        /// The object.
        object: String,
        /// The failure, with secret values replaced by `(sensitive)`.
        message: String,
    },
    /// The API server did not answer in time.
    #[error("{op} {object} timed out after {}s", after.as_secs_f64())]
    Timeout {
        /// What was being done.
        op: &'static str,
        /// The object (or API path).
        object: String,
        /// The time limit.
        after: Duration,
    },
    /// The API server answered with something certplane cannot use.
    #[error("unexpected reply to {op} {object}: {reason}")]
    BadReply {
        /// What was being done.
        op: &'static str,
        /// The object.
        object: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The inventory ConfigMap exists but cannot be read as one.
    #[error("the inventory {location} is not usable: {reason}; fix or delete it")]
    Inventory {
        /// `namespace/name` of the ConfigMap.
        location: String,
        /// What is wrong.
        reason: String,
    },
}

impl ClusterError {
    /// Whether this is the "kind not served" error (CRDs missing).
    pub fn is_not_served(&self) -> bool {
        matches!(self, ClusterError::NotServed { .. })
    }
}
