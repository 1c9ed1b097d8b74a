//! The inventory: the set of cluster objects certplane applied, kept in the
//! cluster (as Flux's kustomize-controller keeps it), so that a later run can
//! prune what left the repository.
//!
//! It is a ConfigMap (default `certplane-system/certplane-inventory`)
//! labelled `app.kubernetes.io/managed-by: certplane`, whose `entries` key
//! holds a JSON list of objects `{group, version, kind, namespace, name}`,
//! sorted. A ConfigMap of that name without the label is not ours: certplane
//! refuses to read it rather than prune from it.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams};
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
/// The ConfigMap key holding the entries.
pub const ENTRIES_KEY: &str = "entries";

/// Where the inventory ConfigMap lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryLocation {
    /// Its namespace (created if missing).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Default for InventoryLocation {
    fn default() -> Self {
        InventoryLocation {
            namespace: "certplane-system".into(),
            name: "certplane-inventory".into(),
        }
    }
}

impl std::fmt::Display for InventoryLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configmap {}/{}", self.namespace, self.name)
    }
}

/// The set of objects certplane applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The objects.
    pub entries: BTreeSet<KubeRef>,
}

impl Inventory {
    /// An inventory of these objects.
    pub fn new(entries: impl IntoIterator<Item = KubeRef>) -> Inventory {
        Inventory {
            entries: entries.into_iter().collect(),
        }
    }

    /// The ConfigMap manifest that stores it at `location`.
    pub fn to_configmap(&self, location: &InventoryLocation) -> Value {
        let entries: Vec<&KubeRef> = self.entries.iter().collect();
        let text = serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into());
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": location.name,
                "namespace": location.namespace,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
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

impl Cluster {
    /// Where the inventory is kept.
    pub fn inventory_location(&self) -> &InventoryLocation {
        &self.inventory
    }

    /// Read the inventory; empty when it was never written.
    pub async fn read_inventory(&self) -> Result<Inventory, ClusterError> {
        let loc = &self.inventory;
        let api: Api<ConfigMap> = Api::namespaced(self.client().clone(), &loc.namespace);
        let object = loc.to_string();
        let cm = self
            .call("get", &object, &Redactor::default(), api.get_opt(&loc.name))
            .await?;
        let Some(cm) = cm else {
            return Ok(Inventory::default());
        };
        let value = serde_json::to_value(&cm).map_err(|e| ClusterError::BadReply {
            op: "get",
            object: object.clone(),
            reason: format!(
                "cannot encode the reply as JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        })?;
        Inventory::from_configmap(&value, loc)
    }

    /// Write the inventory (server-side apply), creating its namespace when
    /// the API server says it does not exist.
    pub async fn write_inventory(&self, inventory: &Inventory) -> Result<(), ClusterError> {
        let loc = &self.inventory;
        let api: Api<ConfigMap> = Api::namespaced(self.client().clone(), &loc.namespace);
        let object = loc.to_string();
        let body = inventory.to_configmap(loc);
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
        let loc = InventoryLocation::default();
        let inv = Inventory::new([r("Issuer", "a"), r("Certificate", "b")]);
        let cm = inv.to_configmap(&loc);
        assert_eq!(cm["metadata"]["labels"][MANAGED_BY_LABEL], "certplane");
        assert_eq!(Inventory::from_configmap(&cm, &loc).unwrap(), inv);
    }

    #[test]
    fn refuses_a_configmap_certplane_did_not_write() {
        let loc = InventoryLocation::default();
        let cm = json!({"metadata": {"name": "certplane-inventory"}, "data": {"entries": "[]"}});
        let err = Inventory::from_configmap(&cm, &loc)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lacks the label"), "{err}");
    }

    #[test]
    fn reports_corrupt_entries() {
        let loc = InventoryLocation::default();
        let cm = json!({"metadata": {"labels": {MANAGED_BY_LABEL: MANAGED_BY}}, "data": {"entries": "{oops"}});
        assert!(matches!(
            Inventory::from_configmap(&cm, &loc),
            Err(ClusterError::Inventory { .. })
        ));
    }
}
