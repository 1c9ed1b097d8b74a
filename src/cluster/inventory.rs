//! The inventory: the set of cluster objects one repository applied, kept
//! in the cluster (as Flux's kustomize-controller keeps it), so that a later
//! run can prune what left the repository, and never what another
//! repository owns.
//!
//! Each repository identity has its own ConfigMap,
//! `certplane-system/certplane-inventory-<identity>`, labelled
//! `app.kubernetes.io/managed-by: certplane` and
//! `certplane.dev/repository: <identity>`, whose `entries` key holds a JSON
//! list of objects `{group, version, kind, namespace, name}`, sorted. A
//! ConfigMap of that name without the managed-by label is not certplane's:
//! it refuses to read it rather than prune from it.
//!
//! Older versions kept one inventory for every repository,
//! `certplane-system/certplane-inventory`. It is never a source of deletes
//! (it cannot tell which repository applied what), only of protection: what
//! it lists counts as owned by another repository. Each repository removes
//! the objects it now owns from it when it writes its own inventory, and the
//! last one deletes it.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ClusterError;
use super::client::{Cluster, request_error};
use super::redact::Redactor;
use crate::addr::KubeRef;

/// The label marking objects certplane owns.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "certplane";
/// The label naming the repository (identity) an applied object or an
/// inventory belongs to.
pub const REPOSITORY_LABEL: &str = "certplane.dev/repository";
/// The ConfigMap key holding the entries.
pub const ENTRIES_KEY: &str = "entries";
/// The namespace inventories are kept in (created if missing).
pub const DEFAULT_NAMESPACE: &str = "certplane-system";
/// The name of the single inventory of older versions, and the prefix of
/// every repository's inventory (`certplane-inventory-<identity>`).
pub const LEGACY_NAME: &str = "certplane-inventory";

/// The name of `identity`'s inventory ConfigMap.
pub fn inventory_name(identity: &str) -> String {
    format!("{LEGACY_NAME}-{identity}")
}

/// Where an inventory ConfigMap lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryLocation {
    /// Its namespace (created if missing).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl InventoryLocation {
    /// The inventory of `identity` in `namespace`.
    pub fn of(namespace: &str, identity: &str) -> InventoryLocation {
        InventoryLocation {
            namespace: namespace.to_string(),
            name: inventory_name(identity),
        }
    }

    /// The single inventory of older versions in `namespace`.
    pub fn legacy(namespace: &str) -> InventoryLocation {
        InventoryLocation {
            namespace: namespace.to_string(),
            name: LEGACY_NAME.to_string(),
        }
    }
}

impl std::fmt::Display for InventoryLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configmap {}/{}", self.namespace, self.name)
    }
}

/// The set of objects a repository applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The objects.
    pub entries: BTreeSet<KubeRef>,
}

/// The identity of an object across API versions.
pub(crate) fn key(r: &KubeRef) -> (&str, &str, Option<&str>, &str) {
    (&r.group, &r.kind, r.namespace.as_deref(), &r.name)
}

impl Inventory {
    /// An inventory of these objects.
    pub fn new(entries: impl IntoIterator<Item = KubeRef>) -> Inventory {
        Inventory {
            entries: entries.into_iter().collect(),
        }
    }

    /// Whether it lists `r` (at any API version).
    pub fn lists(&self, r: &KubeRef) -> bool {
        self.entries.iter().any(|e| key(e) == key(r))
    }

    /// Whether it lists an object in the namespace `ns`, or `ns` itself.
    pub fn lists_in_namespace(&self, ns: &str) -> bool {
        self.entries.iter().any(|e| {
            e.namespace.as_deref() == Some(ns)
                || (e.group.is_empty() && e.kind == "Namespace" && e.name == ns)
        })
    }

    /// The ConfigMap manifest that stores it at `location`, for the
    /// repository `identity` (`None`: the legacy, shared inventory).
    pub fn to_configmap(&self, location: &InventoryLocation, identity: Option<&str>) -> Value {
        let entries: Vec<&KubeRef> = self.entries.iter().collect();
        let text = serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into());
        let mut labels = serde_json::Map::new();
        labels.insert(MANAGED_BY_LABEL.into(), json!(MANAGED_BY));
        if let Some(id) = identity {
            labels.insert(REPOSITORY_LABEL.into(), json!(id));
        }
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": location.name,
                "namespace": location.namespace,
                "labels": labels,
            },
            "data": {ENTRIES_KEY: text},
        })
    }

    /// Read it from the ConfigMap stored at `location`.
    pub fn from_configmap(
        cm: &Value,
        location: &InventoryLocation,
    ) -> Result<Inventory, ClusterError> {
        let bad = |reason: String| ClusterError::Inventory {
            location: format!("{}/{}", location.namespace, location.name),
            reason,
        };
        let label = cm
            .pointer("/metadata/labels")
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .and_then(Value::as_str);
        if label != Some(MANAGED_BY) {
            return Err(bad(format!(
                "it lacks the label {MANAGED_BY_LABEL}={MANAGED_BY}, so certplane did not write it"
            )));
        }
        let Some(text) = cm.pointer("/data").and_then(|d| d.get(ENTRIES_KEY)) else {
            return Ok(Inventory::default());
        };
        let text = text
            .as_str()
            .ok_or_else(|| bad(format!("data.{ENTRIES_KEY} is not a string")))?;
        let entries: Vec<KubeRef> = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "data.{ENTRIES_KEY} is not a JSON list of objects (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        Ok(Inventory::new(entries))
    }
}

/// Another repository's inventory (or the legacy one), for protection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignInventory {
    /// Whose: a repository identity, or `None` for the legacy inventory
    /// shared by every repository of older versions.
    pub owner: Option<String>,
    /// What it lists.
    pub inventory: Inventory,
}

impl ForeignInventory {
    /// Who owns it, for messages.
    pub fn describe(&self) -> String {
        match &self.owner {
            Some(id) => format!("the repository {id:?}"),
            None => format!(
                "a repository of an older certplane (it is in the shared inventory {LEGACY_NAME})"
            ),
        }
    }
}

fn encode(object: &str, cm: &ConfigMap) -> Result<Value, ClusterError> {
    serde_json::to_value(cm).map_err(|e| ClusterError::BadReply {
        op: "get",
        object: object.to_string(),
        reason: format!(
            "cannot encode the reply as JSON (line {}, column {})",
            e.line(),
            e.column()
        ),
    })
}

impl Cluster {
    /// Where `identity`'s inventory is kept.
    pub fn inventory_location(&self, identity: &str) -> InventoryLocation {
        InventoryLocation::of(&self.inventory_namespace, identity)
    }

    async fn read_at(&self, loc: &InventoryLocation) -> Result<Option<Inventory>, ClusterError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client().clone(), &loc.namespace);
        let object = loc.to_string();
        let cm = self
            .call("get", &object, &Redactor::default(), api.get_opt(&loc.name))
            .await?;
        match cm {
            None => Ok(None),
            Some(cm) => Inventory::from_configmap(&encode(&object, &cm)?, loc).map(Some),
        }
    }

    /// Read `identity`'s inventory; empty when it was never written.
    pub async fn read_inventory(&self, identity: &str) -> Result<Inventory, ClusterError> {
        Ok(self
            .read_at(&self.inventory_location(identity))
            .await?
            .unwrap_or_default())
    }

    /// Every other inventory in the inventory namespace: other
    /// repositories', and the legacy shared one. An object one of them lists
    /// is never pruned by `identity`.
    pub async fn foreign_inventories(
        &self,
        identity: &str,
    ) -> Result<Vec<ForeignInventory>, ClusterError> {
        let ns = &self.inventory_namespace;
        let api: Api<ConfigMap> = Api::namespaced(self.client().clone(), ns);
        let object = format!("configmaps in {ns}");
        let lp = ListParams::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        let list = self
            .call("list", &object, &Redactor::default(), api.list(&lp))
            .await?;
        let ours = inventory_name(identity);
        let mut out = Vec::new();
        for cm in &list.items {
            let Some(name) = cm.metadata.name.as_deref() else {
                continue;
            };
            let owner = if name == LEGACY_NAME {
                None
            } else if let Some(id) = name.strip_prefix(&format!("{LEGACY_NAME}-")) {
                if name == ours {
                    continue;
                }
                Some(
                    cm.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(REPOSITORY_LABEL))
                        .cloned()
                        .unwrap_or_else(|| id.to_string()),
                )
            } else {
                continue;
            };
            let loc = InventoryLocation {
                namespace: ns.clone(),
                name: name.to_string(),
            };
            let inventory = Inventory::from_configmap(&encode(&loc.to_string(), cm)?, &loc)?;
            out.push(ForeignInventory { owner, inventory });
        }
        Ok(out)
    }

    /// Write `identity`'s inventory (server-side apply), creating its
    /// namespace when the API server says it does not exist; then take what
    /// it lists out of the legacy shared inventory (deleted once empty).
    pub async fn write_inventory(
        &self,
        identity: &str,
        inventory: &Inventory,
    ) -> Result<(), ClusterError> {
        let loc = self.inventory_location(identity);
        self.write_at(&loc, Some(identity), inventory).await?;
        self.migrate_legacy(inventory).await
    }

    async fn write_at(
        &self,
        loc: &InventoryLocation,
        identity: Option<&str>,
        inventory: &Inventory,
    ) -> Result<(), ClusterError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client().clone(), &loc.namespace);
        let object = loc.to_string();
        let body = inventory.to_configmap(loc, identity);
        let pp = PatchParams::apply(self.field_manager()).force();
        match self
            .timed(
                "apply",
                &object,
                api.patch(&loc.name, &pp, &Patch::Apply(&body)),
            )
            .await?
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status))
                if super::client::is_404(&status)
                    && status
                        .details
                        .as_ref()
                        .is_some_and(|d| d.kind == "namespaces") => {}
            Err(e) => return Err(request_error("apply", &object, e, &Redactor::default())),
        }
        let namespaces: Api<Namespace> = Api::all(self.client().clone());
        let ns = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": loc.namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
        });
        let ns_object = format!("core/Namespace/{}", loc.namespace);
        self.call(
            "apply",
            &ns_object,
            &Redactor::default(),
            namespaces.patch(&loc.namespace, &pp, &Patch::Apply(&ns)),
        )
        .await?;
        self.call(
            "apply",
            &object,
            &Redactor::default(),
            api.patch(&loc.name, &pp, &Patch::Apply(&body)),
        )
        .await?;
        Ok(())
    }

    /// Removes what `ours` lists from the legacy shared inventory; deletes
    /// it once nothing is left in it.
    async fn migrate_legacy(&self, ours: &Inventory) -> Result<(), ClusterError> {
        let loc = InventoryLocation::legacy(&self.inventory_namespace);
        let legacy = match self.read_at(&loc).await {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(()),
            // Not certplane's, or unreadable: leave it alone.
            Err(ClusterError::Inventory { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let left = Inventory::new(legacy.entries.iter().filter(|e| !ours.lists(e)).cloned());
        if left == legacy {
            return Ok(());
        }
        if !left.entries.is_empty() {
            tracing::info!(
                objects = left.entries.len(),
                "moved objects out of the shared inventory"
            );
            return self.write_at(&loc, None, &left).await;
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client().clone(), &loc.namespace);
        let object = loc.to_string();
        match self
            .timed(
                "delete",
                &object,
                api.delete(&loc.name, &DeleteParams::default()),
            )
            .await?
        {
            Ok(_) => {
                tracing::info!(inventory = %object, "the shared inventory of an older certplane is empty: deleted");
                Ok(())
            }
            Err(kube::Error::Api(status)) if super::client::is_404(&status) => Ok(()),
            Err(e) => Err(request_error("delete", &object, e, &Redactor::default())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: &str, name: &str) -> KubeRef {
        KubeRef {
            group: "cert-manager.io".into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: Some("sandbox".into()),
            name: name.into(),
        }
    }

    #[test]
    fn round_trips_through_the_configmap() {
        let loc = InventoryLocation::of(DEFAULT_NAMESPACE, "homelab");
        assert_eq!(loc.name, "certplane-inventory-homelab");
        let inv = Inventory::new([r("Issuer", "a"), r("Certificate", "b")]);
        let cm = inv.to_configmap(&loc, Some("homelab"));
        assert_eq!(cm["metadata"]["labels"][MANAGED_BY_LABEL], "certplane");
        assert_eq!(cm["metadata"]["labels"][REPOSITORY_LABEL], "homelab");
        assert_eq!(Inventory::from_configmap(&cm, &loc).unwrap(), inv);
    }

    #[test]
    fn refuses_a_configmap_certplane_did_not_write() {
        let loc = InventoryLocation::of(DEFAULT_NAMESPACE, "homelab");
        let cm =
            json!({"metadata": {"name": "certplane-inventory-homelab"}, "data": {"entries": "[]"}});
        let err = Inventory::from_configmap(&cm, &loc)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lacks the label"), "{err}");
    }

    #[test]
    fn reports_corrupt_entries() {
        let loc = InventoryLocation::legacy(DEFAULT_NAMESPACE);
        let cm = json!({"metadata": {"labels": {MANAGED_BY_LABEL: MANAGED_BY}}, "data": {"entries": "{oops"}});
        assert!(matches!(
            Inventory::from_configmap(&cm, &loc),
            Err(ClusterError::Inventory { .. })
        ));
    }

    #[test]
    fn lists_across_versions_and_namespaces() {
        let inv = Inventory::new([r("Issuer", "a")]);
        let mut other_version = r("Issuer", "a");
        other_version.version = "v1beta1".into();
        assert!(inv.lists(&other_version));
        assert!(!inv.lists(&r("Issuer", "b")));
        assert!(inv.lists_in_namespace("sandbox"));
        assert!(!inv.lists_in_namespace("other"));
        let ns = Inventory::new([KubeRef {
            group: String::new(),
            version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: "team".into(),
        }]);
        assert!(ns.lists_in_namespace("team"));
    }
}
