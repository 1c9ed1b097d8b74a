//! `PkiMount.spec.trustBundle`: where a mount's CA trust bundle is
//! published in the cluster (README, "Rotating a CA", **Trust bundle.**).
//!
//! ```yaml
//! trustBundle:
//!   configMap: {namespace: sandbox, name: pki-int-ca, key: ca.crt}
//!   bundle: {name: pki-int-ca, key: ca.crt}   # trust-manager, cluster-scoped
//! ```
//!
//! certplane owns the objects it names: it writes them (server-side apply,
//! or `--render`), keeps them in the repository's inventory, and prunes them
//! when the declaration goes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The key a bundle goes under when none is written.
pub const DEFAULT_KEY: &str = "ca.crt";

fn default_key() -> String {
    DEFAULT_KEY.to_string()
}

/// `trustBundle`: one or both of `configMap` and `bundle`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustBundleSpec {
    /// A ConfigMap holding the bundle (PEM) under `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapTarget>,
    /// A trust-manager `Bundle` (`trust.cert-manager.io/v1alpha1`,
    /// cluster-scoped) whose only source is the bundle (`inLine`);
    /// trust-manager copies it into a ConfigMap named like the Bundle, under
    /// `key`, in every namespace (or those `namespaceSelector` picks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleTarget>,
}

/// `trustBundle.configMap`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapTarget {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The data key the PEM bundle goes under (default `ca.crt`).
    #[serde(default = "default_key")]
    pub key: String,
}

/// `trustBundle.bundle`: a trust-manager `Bundle`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BundleTarget {
    /// Its name (also the name of the ConfigMaps trust-manager writes).
    pub name: String,
    /// `spec.target.configMap.key`: the key of the ConfigMaps trust-manager
    /// writes (default `ca.crt`).
    #[serde(default = "default_key")]
    pub key: String,
    /// `spec.target.namespaceSelector.matchLabels`: the namespaces
    /// trust-manager writes to (default: every namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<NamespaceSelector>,
}

/// A label selector on namespaces (equality only).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceSelector {
    /// Labels a namespace must carry.
    pub match_labels: std::collections::BTreeMap<String, String>,
}
