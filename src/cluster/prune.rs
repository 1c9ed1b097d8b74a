//! Prune: delete what a repository applied before and no longer declares,
//! and never what another repository owns.
//!
//! The arithmetic is pure ([`stale`], [`prune_order`], [`next_inventory`],
//! [`stale_owner`]): stale = previous - current, compared without the API
//! version (an object moved from `v1beta1` to `v1` is the same object);
//! deleted in reverse dependency order (Certificates, then Issuers, then
//! RoleBindings, Roles, ServiceAccounts and Secrets, Namespaces last); an
//! object whose delete failed stays in the inventory written afterwards, so
//! the next run tries again.
//!
//! A stale object is not this repository's to delete when another
//! inventory lists it (a namespace: when another inventory lists anything in
//! it), or when its live `certplane.dev/repository` label names another
//! repository; one that is already gone needs no delete.

use std::collections::BTreeSet;

use serde_json::Value;

use super::ClusterError;
use super::client::{Cluster, Deleted};
use super::inventory::{ForeignInventory, Inventory, REPOSITORY_LABEL, key};
use crate::addr::KubeRef;

/// Where a kind goes in apply order (lower first); delete order is the
/// reverse. Kinds certplane does not know come last.
pub fn apply_rank(group: &str, kind: &str) -> u8 {
    match (group, kind) {
        ("", "Namespace") => 0,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => 1,
        ("", "ServiceAccount" | "Secret" | "ConfigMap") => 2,
        ("rbac.authorization.k8s.io", "Role" | "ClusterRole") => 3,
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => 4,
        ("cert-manager.io", "Issuer" | "ClusterIssuer") => 5,
        ("cert-manager.io", "Certificate") => 6,
        _ => 7,
    }
}

/// The objects in `previous` that `current` no longer has.
pub fn stale(previous: &Inventory, current: &Inventory) -> BTreeSet<KubeRef> {
    let now: BTreeSet<_> = current.entries.iter().map(key).collect();
    previous
        .entries
        .iter()
        .filter(|r| !now.contains(&key(r)))
        .cloned()
        .collect()
}

/// `stale` in delete order: reverse dependency order, then by address.
pub fn prune_order(stale: impl IntoIterator<Item = KubeRef>) -> Vec<KubeRef> {
    let mut v: Vec<KubeRef> = stale.into_iter().collect();
    v.sort_by(|a, b| {
        apply_rank(&b.group, &b.kind)
            .cmp(&apply_rank(&a.group, &a.kind))
            .then_with(|| a.to_string().cmp(&b.to_string()))
    });
    v
}

/// The inventory to write after a prune: the current objects and the
/// survivors (stale objects whose delete failed).
pub fn next_inventory<'a>(
    current: &Inventory,
    survivors: impl IntoIterator<Item = &'a KubeRef>,
) -> Inventory {
    let mut next = current.clone();
    next.entries.extend(survivors.into_iter().cloned());
    next
}

/// Whose a stale object is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StaleOwner {
    /// It no longer exists: nothing to delete.
    Gone,
    /// This repository's: prune deletes it.
    Ours,
    /// Another repository's (why, for people): never deleted by this one.
    Other(String),
}

/// Whose the stale object `r` is, from the other inventories alone; `None`
/// when they do not claim it (the live object decides).
pub fn claimed_elsewhere(r: &KubeRef, others: &[ForeignInventory]) -> Option<String> {
    let is_namespace = r.group.is_empty() && r.kind == "Namespace";
    others.iter().find_map(|o| {
        if o.inventory.lists(r) {
            Some(format!("{} lists it in its inventory", o.describe()))
        } else if is_namespace && o.inventory.lists_in_namespace(&r.name) {
            Some(format!("{} has objects in it", o.describe()))
        } else {
            None
        }
    })
}

/// Whose the stale object `r` is, given the other inventories and the live
/// object (`None`: absent).
pub fn stale_owner(
    r: &KubeRef,
    identity: &str,
    others: &[ForeignInventory],
    live: Option<&Value>,
) -> StaleOwner {
    if let Some(why) = claimed_elsewhere(r, others) {
        return StaleOwner::Other(why);
    }
    let Some(live) = live else {
        return StaleOwner::Gone;
    };
    match live
        .pointer("/metadata/labels")
        .and_then(|l| l.get(REPOSITORY_LABEL))
        .and_then(Value::as_str)
    {
        Some(owner) if owner != identity => StaleOwner::Other(format!(
            "its label {REPOSITORY_LABEL} names the repository {owner:?}"
        )),
        _ => StaleOwner::Ours,
    }
}

/// What a prune did.
#[derive(Debug, Default)]
pub struct PruneReport {
    /// Deleted (or deletion started), in order.
    pub deleted: Vec<KubeRef>,
    /// Already gone (404, or the kind is no longer served).
    pub absent: Vec<KubeRef>,
    /// Deletes that failed: these stay in the inventory.
    pub failed: Vec<(KubeRef, ClusterError)>,
}

impl PruneReport {
    /// Whether every stale object is gone.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

impl Cluster {
    /// Delete `objects` in the order given (see [`prune_order`]); a failure
    /// does not stop the others.
    pub async fn prune(&self, objects: &[KubeRef]) -> PruneReport {
        let mut report = PruneReport::default();
        for r in objects {
            match self.delete_object(r).await {
                Ok(Deleted::Deleted) => report.deleted.push(r.clone()),
                Ok(Deleted::Absent) => report.absent.push(r.clone()),
                Err(e) => {
                    tracing::warn!(object = %r, error = %e, "prune failed; kept in the inventory");
                    report.failed.push((r.clone(), e));
                }
            }
        }
        report
    }

    /// Decides whose each stale object of `identity` is: the other
    /// inventories are listed once (only when there is something stale),
    /// then each object not claimed by one is read for its label.
    pub async fn stale_owners(
        &self,
        identity: &str,
        stale: Vec<KubeRef>,
    ) -> Result<Vec<(KubeRef, StaleOwner)>, ClusterError> {
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        let others = self.foreign_inventories(identity).await?;
        let mut out = Vec::with_capacity(stale.len());
        for r in stale {
            let owner = match claimed_elsewhere(&r, &others) {
                Some(why) => StaleOwner::Other(why),
                None => {
                    let live = self.get_object(&r).await?;
                    stale_owner(&r, identity, &others, live.as_ref())
                }
            };
            out.push((r, owner));
        }
        Ok(out)
    }

    /// After applying `current` for `identity`: read its inventory, delete
    /// what is stale and this repository's, and write `current` plus the
    /// survivors back.
    pub async fn prune_and_record(
        &self,
        identity: &str,
        current: &Inventory,
    ) -> Result<PruneReport, ClusterError> {
        let previous = self.read_inventory(identity).await?;
        let owners = self
            .stale_owners(identity, prune_order(stale(&previous, current)))
            .await?;
        let order: Vec<KubeRef> = owners
            .into_iter()
            .filter(|(_, o)| *o == StaleOwner::Ours)
            .map(|(r, _)| r)
            .collect();
        let report = self.prune(&order).await;
        let next = next_inventory(current, report.failed.iter().map(|(r, _)| r));
        self.write_inventory(identity, &next).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(group: &str, version: &str, kind: &str, name: &str) -> KubeRef {
        KubeRef {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            namespace: Some("sandbox".into()),
            name: name.into(),
        }
    }

    #[test]
    fn stale_is_previous_minus_current_across_versions() {
        let prev = Inventory::new([
            r("cert-manager.io", "v1beta1", "Issuer", "a"),
            r("", "v1", "Secret", "gone"),
        ]);
        let cur = Inventory::new([r("cert-manager.io", "v1", "Issuer", "a")]);
        assert_eq!(
            stale(&prev, &cur),
            BTreeSet::from([r("", "v1", "Secret", "gone")])
        );
    }

    #[test]
    fn deletes_dependents_first() {
        let order = prune_order([
            r("", "v1", "Secret", "s"),
            r("rbac.authorization.k8s.io", "v1", "Role", "r"),
            r("", "v1", "ServiceAccount", "sa"),
            r("cert-manager.io", "v1", "Issuer", "i"),
            r("", "v1", "Namespace", "n"),
            r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rb"),
            r("cert-manager.io", "v1", "Certificate", "c"),
        ]);
        let kinds: Vec<&str> = order.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Certificate",
                "Issuer",
                "RoleBinding",
                "Role",
                "Secret",
                "ServiceAccount",
                "Namespace"
            ]
        );
    }

    #[test]
    fn another_repository_s_objects_are_never_ours() {
        let issuer = r("cert-manager.io", "v1", "Issuer", "a");
        let ns = KubeRef {
            group: String::new(),
            version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: "sandbox".into(),
        };
        let other = ForeignInventory {
            owner: Some("team-b".into()),
            inventory: Inventory::new([r("", "v1", "Secret", "b-secret")]),
        };
        let live = serde_json::json!({"metadata": {"labels": {REPOSITORY_LABEL: "team-a"}}});
        let theirs = serde_json::json!({"metadata": {"labels": {REPOSITORY_LABEL: "team-b"}}});
        let unlabelled = serde_json::json!({"metadata": {}});
        assert_eq!(
            stale_owner(&issuer, "team-a", &[], Some(&live)),
            StaleOwner::Ours
        );
        assert_eq!(
            stale_owner(&issuer, "team-a", &[], Some(&unlabelled)),
            StaleOwner::Ours
        );
        assert_eq!(stale_owner(&issuer, "team-a", &[], None), StaleOwner::Gone);
        assert!(matches!(
            stale_owner(&issuer, "team-a", &[], Some(&theirs)),
            StaleOwner::Other(why) if why.contains("team-b")
        ));
        // A namespace holding another repository's objects is not deleted.
        assert!(matches!(
            stale_owner(&ns, "team-a", std::slice::from_ref(&other), Some(&live)),
            StaleOwner::Other(why) if why.contains("has objects in it")
        ));
        let listed = ForeignInventory {
            owner: None,
            inventory: Inventory::new([issuer.clone()]),
        };
        assert!(matches!(
            stale_owner(&issuer, "team-a", &[listed], Some(&live)),
            StaleOwner::Other(why) if why.contains("shared inventory")
        ));
    }

    #[test]
    fn survivors_stay_in_the_next_inventory() {
        let cur = Inventory::new([r("cert-manager.io", "v1", "Issuer", "a")]);
        let survivor = r("", "v1", "Secret", "s");
        let next = next_inventory(&cur, [&survivor]);
        assert_eq!(
            next,
            Inventory::new([r("cert-manager.io", "v1", "Issuer", "a"), survivor])
        );
    }
}
