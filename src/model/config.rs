//! `kind: Config` (`certplane.yaml` at the repository root): the targets.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::Source;

/// `Config` (`certplane.yaml` at the root of the repository): its
/// settings. The repository identity is its `metadata.name`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigSpec {
    /// How to reach and log in to Vault. The operator's flags and
    /// environment decide; a setting here must equal the operator's where
    /// one is given, and `certplane run` takes none from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultTarget>,
    /// How to reach the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterTarget>,
    /// Delete managed objects that left the repository.
    #[serde(default)]
    pub prune: bool,
}

/// `spec.vault`: used only where the operator (flags, `VAULT_*`) gave no
/// value, and never by `certplane run`; a value that differs from the
/// operator's is an error.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultTarget {
    /// Vault address, when the operator gives none (`--vault-addr`,
    /// `$VAULT_ADDR`, `$BAO_ADDR`); otherwise it must equal the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// PEM bundle trusted for the Vault TLS connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_file: Option<PathBuf>,
    /// Client certificate for mTLS to Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// Client key for mTLS to Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// How certplane logs in; default `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<VaultAuth>,
}

/// How certplane logs in to Vault. Exactly one.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum VaultAuth {
    /// `$VAULT_TOKEN`, `$BAO_TOKEN`, then `~/.vault-token`.
    Token(TokenAuth),
    /// In-cluster: the pod's service account token.
    Kubernetes(KubernetesLogin),
    /// AppRole: role ID and secret ID.
    AppRole(AppRoleLogin),
    /// JWT, e.g. a CI's OIDC token.
    Jwt(JwtLogin),
}

/// `auth.token: {}`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenAuth {
    /// Where the token comes from (default: env, then `~/.vault-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_from: Option<Source>,
}

/// `auth.kubernetes`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesLogin {
    /// The Vault role.
    pub role: String,
    /// The auth mount (default `kubernetes`).
    #[serde(default = "default_kubernetes_mount")]
    pub mount_path: String,
    /// The service account token (default: the pod's projected token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_from: Option<Source>,
}

/// `auth.appRole`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleLogin {
    /// The auth mount (default `approle`).
    #[serde(default = "default_approle_mount")]
    pub mount_path: String,
    /// The role ID (not a secret).
    pub role_id: String,
    /// The secret ID.
    pub secret_id_from: Source,
}

/// `auth.jwt`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtLogin {
    /// The auth mount (default `jwt`).
    #[serde(default = "default_jwt_mount")]
    pub mount_path: String,
    /// The Vault role.
    pub role: String,
    /// The JWT.
    pub token_from: Source,
}

fn default_kubernetes_mount() -> String {
    "kubernetes".into()
}
fn default_approle_mount() -> String {
    "approle".into()
}
fn default_jwt_mount() -> String {
    "jwt".into()
}

/// `spec.cluster`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterTarget {
    /// kubeconfig context; in a pod: in-cluster config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Server-side apply field manager (default `certplane`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_manager: Option<String>,
    /// Do not apply to a cluster: write the cluster manifests into this
    /// directory (relative to `certplane.yaml`) for Flux/Argo to apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<std::path::PathBuf>,
}
