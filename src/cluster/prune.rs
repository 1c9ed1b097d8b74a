//! Prune: delete what certplane applied before and the repository no longer
//! declares.
//!
//! The arithmetic is pure ([`stale`], [`prune_order`], [`next_inventory`]):
//! stale = previous - current, compared without the API version (an object
//! moved from `v1beta1` to `v1` is the same object); deleted in reverse
//! dependency order (Certificates, then Issuers, then RoleBindings, Roles,
//! ServiceAccounts and Secrets, Namespaces last); an object whose delete
//! failed stays in the inventory written afterwards, so the next run tries
//! again.

use std::collections::BTreeSet;

use super::ClusterError;
use super::client::{Cluster, Deleted};
use super::inventory::Inventory;
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

/// The identity of an object across API versions.
fn key(r: &KubeRef) -> (&str, &str, Option<&str>, &str) {
    (&r.group, &r.kind, r.namespace.as_deref(), &r.name)
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

    /// After applying `current`: read the inventory, delete what is stale,
    /// and write `current` plus the survivors back.
    pub async fn prune_and_record(&self, current: &Inventory) -> Result<PruneReport, ClusterError> {
        let previous = self.read_inventory().await?;
        let order = prune_order(stale(&previous, current));
        let report = self.prune(&order).await;
        let next = next_inventory(current, report.failed.iter().map(|(r, _)| r));
        self.write_inventory(&next).await?;
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
