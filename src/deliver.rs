//! `AppRole.deliverTo`: the role ID and a secret ID, written into a cluster
//! Secret for cert-manager. A new secret ID is made only when the Secret
//! lacks a valid one (checked with `secret-id/lookup`), never on every run,
//! and it never appears in a plan, a log line or an error. The Secret is the
//! repository's like its manifests: labelled with its identity and kept in
//! its inventory, so prune leaves it alone while the AppRole delivers to it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::json;

use crate::addr::{Addr, KubeRef};
use crate::cluster::{Cluster, ClusterError};
use crate::model::{AppRoleSpec, Meta, Repository, Sensitive};
use crate::plan::{Action, Change};
use crate::state::ResourceKind;
use crate::vault::{Vault, VaultError};

/// Annotation on a delivered Secret naming the AppRole it holds.
pub const DELIVERED_FROM: &str = "certplane.dev/approle";

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// A Vault call failed.
    #[error("cannot deliver the secret ID of {role}")]
    Vault {
        /// `auth/<mount>/role/<name>`.
        role: String,
        /// Why.
        #[source]
        source: VaultError,
    },
    /// A cluster call failed.
    #[error("cannot deliver the secret ID of {role} into {secret}")]
    Cluster {
        /// `auth/<mount>/role/<name>`.
        role: String,
        /// The Secret.
        secret: String,
        /// Why.
        #[source]
        source: ClusterError,
    },
    /// Vault answered without the expected field.
    #[error("vault gave no {what} for {role}")]
    Missing {
        /// What was missing.
        what: &'static str,
        /// `auth/<mount>/role/<name>`.
        role: String,
    },
}

fn role_path(meta: &Meta, spec: &AppRoleSpec) -> String {
    format!("auth/{}/role/{}", spec.mount, meta.name)
}

fn secret_ref(spec: &AppRoleSpec) -> Option<KubeRef> {
    let to = &spec.deliver_to.as_ref()?.secret;
    Some(KubeRef {
        group: String::new(),
        version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some(to.namespace.clone()),
        name: to.name.clone(),
    })
}

fn decode(secret: &Secret, key: &str) -> Option<String> {
    let data = secret.data.as_ref()?.get(key)?;
    String::from_utf8(data.0.clone()).ok()
}

/// Plans the delivery of every AppRole with `deliverTo`.
pub async fn plan(
    vault: &Vault,
    cluster: &Cluster,
    repo: &Repository,
) -> Result<Vec<Change>, DeliverError> {
    let mut out = Vec::new();
    for (meta, _, spec) in repo.app_roles() {
        let (Some(to), Some(r)) = (spec.deliver_to.as_ref(), secret_ref(spec)) else {
            continue;
        };
        let role = role_path(meta, spec);
        let api: Api<Secret> = Api::namespaced(cluster.client().clone(), &to.secret.namespace);
        let live = tokio::time::timeout(cluster.timeout(), api.get_opt(&to.secret.name))
            .await
            .map_err(|_| ClusterError::Timeout {
                op: "get",
                object: r.to_string(),
                after: cluster.timeout(),
            })
            .and_then(|r| {
                r.map_err(|source| ClusterError::Request {
                    op: "get",
                    object: to.secret.name.clone(),
                    error: source,
                })
            })
            .map_err(|source| DeliverError::Cluster {
                role: role.clone(),
                secret: r.to_string(),
                source,
            })?;
        let role_id_now = vault
            .read(&format!("{role}/role-id"))
            .await
            .map_err(|source| DeliverError::Vault {
                role: role.clone(),
                source,
            })?
            .and_then(|d| d["role_id"].as_str().map(str::to_string));
        let (action, why) = match &live {
            None => (Action::Create, "the Secret does not exist".to_string()),
            Some(s) => {
                let held_role = decode(s, "roleId");
                let held_secret = decode(s, &to.secret.key);
                match (held_secret, &role_id_now) {
                    (None, _) => (
                        Action::Update,
                        format!("the Secret has no {}", to.secret.key),
                    ),
                    (Some(_), None) => (Action::Update, "the AppRole does not exist yet".into()),
                    (Some(_), Some(id)) if held_role.as_deref() != Some(id.as_str()) => {
                        (Action::Update, "the Secret holds another role ID".into())
                    }
                    (Some(secret_id), Some(_)) => {
                        let found = vault
                            .write_idempotent(
                                &format!("{role}/secret-id/lookup"),
                                &json!({"secret_id": secret_id}),
                            )
                            .await;
                        match found {
                            Ok(Some(_)) => (Action::NoOp, String::new()),
                            Ok(None) | Err(VaultError::Api { .. }) => (
                                Action::Update,
                                "its secret ID is expired or unknown to Vault".into(),
                            ),
                            Err(source) => {
                                return Err(DeliverError::Vault { role, source });
                            }
                        }
                    }
                }
            }
        };
        let key = format!("data.{}", to.secret.key);
        let shown_id = role_id_now
            .clone()
            .or_else(|| spec.role_id.clone())
            .unwrap_or_else(|| "(known after apply)".into());
        let mut after = BTreeMap::new();
        after.insert("data.roleId".to_string(), json!(shown_id));
        after.insert(key.clone(), json!(crate::cluster::SENSITIVE));
        // What the Secret holds now: its role ID (not a secret; shown so
        // that an unchanged one is not a change) and whether it has a secret
        // ID (masked).
        let before = live.as_ref().map(|s| {
            BTreeMap::from([
                (
                    "data.roleId".to_string(),
                    decode(s, "roleId").map_or(serde_json::Value::Null, |v| json!(v)),
                ),
                (
                    key.clone(),
                    if decode(s, &to.secret.key).is_some() {
                        json!(crate::cluster::SENSITIVE)
                    } else {
                        serde_json::Value::Null
                    },
                ),
            ])
        });
        out.push(Change {
            addr: Addr::Kube(r.clone()),
            kind: ResourceKind::SecretDelivery,
            action,
            before,
            after: Some(after),
            sensitive: vec![key],
            reason: (action != Action::NoOp)
                .then(|| format!("deliver a new secret ID of {role}: {why}")),
            ca: None,
            depends_on: vec![crate::addr::VaultAddr::auth_role(&spec.mount, &meta.name).into()],
            manifest: Some(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": r.name,
                    "namespace": r.namespace,
                    "labels": {
                        crate::cluster::inventory::MANAGED_BY_LABEL: crate::cluster::inventory::MANAGED_BY,
                        crate::cluster::REPOSITORY_LABEL: repo.identity,
                    },
                    "annotations": {DELIVERED_FROM: role},
                },
                "type": "Opaque",
                "stringData": {"roleId": "", (to.secret.key.as_str()): ""},
            })),
        });
    }
    Ok(out)
}

/// Makes a new secret ID for each pending delivery and writes it with the
/// role ID into its Secret (server-side apply).
pub async fn apply(
    vault: &Vault,
    cluster: &Cluster,
    changes: &[Change],
    on_applied: &mut (dyn FnMut(&Addr, Action) + Send),
) -> Result<usize, DeliverError> {
    let mut done = 0;
    for c in changes
        .iter()
        .filter(|c| c.kind == ResourceKind::SecretDelivery && c.action.is_change())
    {
        let Some(mut manifest) = c.manifest.clone() else {
            continue;
        };
        let role = manifest["metadata"]["annotations"][DELIVERED_FROM]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let vault_err = |source| DeliverError::Vault {
            role: role.clone(),
            source,
        };
        let role_id = vault
            .read(&format!("{role}/role-id"))
            .await
            .map_err(vault_err)?
            .and_then(|d| d["role_id"].as_str().map(str::to_string))
            .ok_or(DeliverError::Missing {
                what: "role_id",
                role: role.clone(),
            })?;
        let secret_id = vault
            .write(&format!("{role}/secret-id"), &json!({}))
            .await
            .map_err(vault_err)?
            .and_then(|d| {
                d["secret_id"]
                    .as_str()
                    .map(|s| Sensitive::new(s.to_string()))
            })
            .ok_or(DeliverError::Missing {
                what: "secret_id",
                role: role.clone(),
            })?;
        let key = manifest["stringData"]
            .as_object()
            .and_then(|m| m.keys().find(|k| *k != "roleId").cloned())
            .unwrap_or_else(|| "secretId".into());
        manifest["stringData"] = json!({"roleId": role_id, key: secret_id.expose()});
        cluster
            .apply_object(&manifest)
            .await
            .map_err(|source| DeliverError::Cluster {
                role: role.clone(),
                secret: c.addr.to_string(),
                source,
            })?;
        on_applied(&c.addr, c.action);
        done += 1;
    }
    Ok(done)
}
