//! `AppRole.deliverTo`: the role ID and a secret ID, written into a cluster
//! Secret for cert-manager. A new secret ID is made only when the Secret
//! lacks a valid one (checked with `secret-id/lookup`), never on every run,
//! and it never appears in a plan, a log line or an error. The Secret is the
//! repository's like its manifests: labelled with its identity and kept in
//! its inventory, so prune leaves it alone while the AppRole delivers to it.
//!
//! [`observe`] reads the Secret and asks Vault; [`DeliveryObserved::plan`]
//! decides (pure); [`apply`] re-reads the Secret before making a secret ID.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::json;

use super::{Cluster, ClusterError};
use crate::addr::{Addr, KubeRef};
use crate::model::{AppRoleSpec, Meta, Repository, Sensitive};
use crate::plan::{Action, Change};
use crate::state::Fields;
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
    /// The Secret is no longer as the plan saw it.
    #[error(
        "plan is stale: {secret} changed since the plan was made ({why}); no secret ID was made \
         for it; run plan again"
    )]
    Stale {
        /// The Secret.
        secret: String,
        /// How it moved.
        why: String,
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

/// What one delivery found: the Secret (what it holds, never the secret ID
/// itself), the AppRole's role ID in Vault, and whether the secret ID the
/// Secret holds is one Vault knows.
#[derive(Clone, Debug)]
pub struct DeliveryObserved {
    /// `auth/<mount>/role/<name>`.
    role: String,
    /// The Secret.
    secret: KubeRef,
    /// The key the secret ID goes under.
    key: String,
    /// The role ID the repository fixes, if any.
    declared_role_id: Option<String>,
    /// What the Secret holds now (`None`: it does not exist).
    held: Option<Fields>,
    /// The AppRole's role ID in Vault (`None`: no such role yet).
    role_id_now: Option<String>,
    /// Whether Vault knows the secret ID the Secret holds (`None`: not
    /// asked: no secret ID, or another role ID).
    secret_id_valid: Option<bool>,
}

/// What a Secret holds, as a plan shows it: its role ID (not a secret) and
/// whether it has a secret ID under `key` (masked).
fn held_fields(secret: &Secret, key: &str) -> Fields {
    let data_key = format!("data.{key}");
    Fields::from([
        (
            "data.roleId".to_string(),
            decode(secret, "roleId").map_or(serde_json::Value::Null, |v| json!(v)),
        ),
        (
            data_key,
            if decode(secret, key).is_some() {
                json!(crate::cluster::SENSITIVE)
            } else {
                serde_json::Value::Null
            },
        ),
    ])
}

/// Reads the Secret `r` (`None`: it does not exist).
async fn read_secret(cluster: &Cluster, r: &KubeRef) -> Result<Option<Secret>, ClusterError> {
    let namespace = r.namespace.as_deref().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(cluster.client().clone(), namespace);
    cluster
        .timed("get", &r.to_string(), api.get_opt(&r.name))
        .await?
        .map_err(|source| ClusterError::Request {
            op: "get",
            object: r.name.clone(),
            error: source,
        })
}

/// Reads what planning the delivery of one AppRole needs.
async fn observe_one(
    vault: &Vault,
    cluster: &Cluster,
    meta: &Meta,
    spec: &AppRoleSpec,
) -> Result<Option<DeliveryObserved>, DeliverError> {
    let (Some(to), Some(r)) = (spec.deliver_to.as_ref(), secret_ref(spec)) else {
        return Ok(None);
    };
    let role = role_path(meta, spec);
    let vault_err = |source| DeliverError::Vault {
        role: role.clone(),
        source,
    };
    let live = read_secret(cluster, &r)
        .await
        .map_err(|source| DeliverError::Cluster {
            role: role.clone(),
            secret: r.to_string(),
            source,
        })?;
    let role_id_now = vault
        .read(&format!("{role}/role-id"))
        .await
        .map_err(vault_err)?
        .and_then(|d| d["role_id"].as_str().map(str::to_string));
    let key = to.secret.key.clone();
    let held_role_id = live.as_ref().and_then(|s| decode(s, "roleId"));
    let held_secret = live.as_ref().and_then(|s| decode(s, &key));
    let secret_id_valid = match (held_secret, &role_id_now) {
        (Some(secret_id), Some(id)) if held_role_id.as_deref() == Some(id.as_str()) => {
            let found = vault
                .write_idempotent(
                    &format!("{role}/secret-id/lookup"),
                    &json!({"secret_id": secret_id}),
                )
                .await;
            match found {
                Ok(Some(_)) => Some(true),
                Ok(None) | Err(VaultError::Api { .. }) => Some(false),
                Err(source) => return Err(vault_err(source)),
            }
        }
        _ => None,
    };
    Ok(Some(DeliveryObserved {
        held: live.as_ref().map(|s| held_fields(s, &key)),
        role,
        secret: r,
        key,
        declared_role_id: spec.role_id.clone(),
        role_id_now,
        secret_id_valid,
    }))
}

/// Reads what planning every delivery of `repo` needs.
pub async fn observe(
    vault: &Vault,
    cluster: &Cluster,
    repo: &Repository,
) -> Result<Vec<DeliveryObserved>, DeliverError> {
    let mut out = Vec::new();
    for (meta, _, spec) in repo.app_roles() {
        out.extend(observe_one(vault, cluster, meta, spec).await?);
    }
    Ok(out)
}

impl DeliveryObserved {
    /// The Secret it delivers to.
    pub fn secret(&self) -> &KubeRef {
        &self.secret
    }

    /// What to do, and why (for people).
    fn decide(&self) -> (Action, String) {
        let Some(held) = &self.held else {
            return (Action::Create, "the Secret does not exist".to_string());
        };
        let has_secret = held
            .get(&format!("data.{}", self.key))
            .is_some_and(|v| !v.is_null());
        match (has_secret, &self.role_id_now, self.secret_id_valid) {
            (false, _, _) => (Action::Update, format!("the Secret has no {}", self.key)),
            (true, None, _) => (Action::Update, "the AppRole does not exist yet".into()),
            (true, Some(_), None) => (Action::Update, "the Secret holds another role ID".into()),
            (true, Some(_), Some(true)) => (Action::NoOp, String::new()),
            (true, Some(_), Some(false)) => (
                Action::Update,
                "its secret ID is expired or unknown to Vault".into(),
            ),
        }
    }

    /// The planned delivery. Pure.
    pub fn plan(&self, identity: &str) -> Change {
        let (action, why) = self.decide();
        let role = &self.role;
        let key = format!("data.{}", self.key);
        let shown_id = self
            .role_id_now
            .clone()
            .or_else(|| self.declared_role_id.clone())
            .unwrap_or_else(|| "(known after apply)".into());
        let after = Fields::from([
            ("data.roleId".to_string(), json!(shown_id)),
            (key.clone(), json!(crate::cluster::SENSITIVE)),
        ]);
        let r = &self.secret;
        Change {
            addr: Addr::from(r.clone()),
            kind: ResourceKind::SecretDelivery,
            action,
            before: self.held.clone(),
            after: Some(after),
            sensitive: vec![key],
            reason: (action != Action::NoOp)
                .then(|| format!("deliver a new secret ID of {role}: {why}")),
            ca: None,
            // The AppRole's own address (`auth/<mount>/role/<name>`).
            depends_on: Addr::parse_vault(role).into_iter().collect(),
            manifest: Some(Box::new(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": r.name,
                    "namespace": r.namespace,
                    "labels": {
                        crate::cluster::inventory::MANAGED_BY_LABEL: crate::cluster::inventory::MANAGED_BY,
                        crate::cluster::REPOSITORY_LABEL: identity,
                    },
                    "annotations": {DELIVERED_FROM: role},
                },
                "type": "Opaque",
                "stringData": {"roleId": "", (self.key.as_str()): ""},
            }))),
        }
    }
}

/// Plans the delivery of every AppRole with `deliverTo` ([`observe`], then
/// [`DeliveryObserved::plan`]).
pub async fn plan(
    vault: &Vault,
    cluster: &Cluster,
    repo: &Repository,
) -> Result<Vec<Change>, DeliverError> {
    Ok(observe(vault, cluster, repo)
        .await?
        .iter()
        .map(|d| d.plan(&repo.identity))
        .collect())
}

/// Re-reads the Secret of a planned delivery: how it moved since the plan
/// (created, deleted, another role ID, a secret ID added or removed), if it
/// did.
async fn recheck(cluster: &Cluster, c: &Change, key: &str) -> Result<Option<String>, ClusterError> {
    let Addr::Kube(r) = &c.addr else {
        return Ok(None);
    };
    let now = read_secret(cluster, r).await?.map(|s| held_fields(&s, key));
    Ok(match (&c.before, now) {
        (None, None) => None,
        (None, Some(_)) => Some("it was created since".to_string()),
        (Some(_), None) => Some("it was deleted since".to_string()),
        (Some(then), Some(now)) => {
            then.iter()
                .find(|(k, v)| now.get(k) != Some(v))
                .map(|(k, v)| {
                    format!(
                        "{k}: was {v}, is now {}",
                        now.get(k).cloned().unwrap_or_default()
                    )
                })
        }
    })
}

/// Makes a new secret ID for each pending delivery and writes it with the
/// role ID into its Secret (server-side apply), after re-reading the Secret:
/// one that moved since the plan stops the apply ("plan is stale") before a
/// secret ID is made.
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
        let key = manifest["stringData"]
            .as_object()
            .and_then(|m| m.keys().find(|k| *k != "roleId").cloned())
            .unwrap_or_else(|| "secretId".into());
        let cluster_err = |source| DeliverError::Cluster {
            role: role.clone(),
            secret: c.addr.to_string(),
            source,
        };
        if let Some(why) = recheck(cluster, c, &key).await.map_err(cluster_err)? {
            return Err(DeliverError::Stale {
                secret: c.addr.to_string(),
                why,
            });
        }
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
