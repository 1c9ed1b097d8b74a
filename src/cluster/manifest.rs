//! What every cluster provider does to a manifest before planning it: its
//! address, the repository label, why the plan shows it (what it was
//! generated from, the privilege a ClusterRoleBinding grants), and the
//! order kinds are applied in.

use serde_json::{Value, json};

use super::inventory::REPOSITORY_LABEL;
use super::prune::apply_rank;
use crate::addr::{Addr, KubeRef};
use crate::plan::{Action, Change, PlanNote};
use crate::state::ResourceKind;

/// The identity of a manifest as written (no discovery: a namespaced object
/// without a namespace keeps `None`).
pub fn kube_ref(manifest: &Value) -> KubeRef {
    let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    KubeRef {
        group: group.to_string(),
        version: version.to_string(),
        kind: manifest["kind"].as_str().unwrap_or_default().to_string(),
        namespace: manifest["metadata"]["namespace"]
            .as_str()
            .map(str::to_string),
        name: manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// `manifest` labelled as the repository `identity`'s
/// (`certplane.dev/repository`). A Namespace is left as written: several
/// repositories often declare the same one, and its ownership is read from
/// the inventories instead.
pub fn owned_manifest(manifest: &Value, identity: &str) -> Value {
    let mut m = manifest.clone();
    if m["apiVersion"] == "v1" && m["kind"] == "Namespace" {
        return m;
    }
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if labels.is_null() {
            *labels = json!({});
        }
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(REPOSITORY_LABEL.into(), json!(identity));
        }
    }
    m
}

/// Why the plan shows a manifest: what it was generated from, and what a
/// ClusterRoleBinding grants.
pub fn generated_from(manifest: &Value) -> Option<String> {
    let from = manifest["metadata"]["annotations"][crate::expand::GENERATED_FROM]
        .as_str()
        .map(|f| format!("generated from {f}"));
    match (from, privilege(manifest)) {
        (Some(f), Some(p)) => Some(format!("{f}; {p}")),
        (f, p) => f.or(p),
    }
}

/// What a ClusterRoleBinding grants, said in the plan: a cluster-wide
/// privilege is never applied without being shown.
fn privilege(manifest: &Value) -> Option<String> {
    if manifest["kind"] != "ClusterRoleBinding" {
        return None;
    }
    let role = manifest["roleRef"]["name"].as_str()?;
    let subjects: Vec<String> = manifest["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let kind = s["kind"].as_str().unwrap_or_default();
            match s["namespace"].as_str() {
                Some(ns) => format!("{kind} {ns}/{}", s["name"].as_str().unwrap_or_default()),
                None => format!("{kind} {}", s["name"].as_str().unwrap_or_default()),
            }
        })
        .collect();
    let what = if role == crate::expand::AUTH_DELEGATOR {
        " (create TokenReviews and SubjectAccessReviews: what Vault's Kubernetes auth needs to check tokens)"
    } else {
        ""
    };
    Some(format!(
        "grants ClusterRole {role}{what} cluster-wide to {}",
        subjects.join(", ")
    ))
}

/// A cluster change with nothing but its address, action and manifest.
pub fn change(addr: Addr, action: Action, manifest: Option<Value>) -> Change {
    Change {
        addr,
        kind: ResourceKind::ClusterObject,
        action,
        before: None,
        after: None,
        sensitive: vec![],
        reason: None,
        ca: None,
        depends_on: Default::default(),
        manifest: manifest.map(Box::new),
    }
}

/// Where a change goes in apply order (kind order; Vault first).
pub fn rank(c: &Change) -> u8 {
    match &c.addr {
        Addr::Kube(k) => apply_rank(&k.group, &k.kind),
        Addr::Vault(_) => 0,
    }
}

/// What planning the cluster half found.
#[derive(Debug, Default)]
pub struct ClusterPlan {
    /// Changes, in apply order (deletes last, in reverse order).
    pub changes: Vec<Change>,
    /// Objects that left the repository and stay.
    pub notes: Vec<PlanNote>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_labelled_with_the_repository_but_namespaces_are_not() {
        let issuer = json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": "vi", "labels": {"team": "a"}}});
        let labelled = owned_manifest(&issuer, "homelab");
        assert_eq!(labelled["metadata"]["labels"]["team"], "a");
        assert_eq!(labelled["metadata"]["labels"][REPOSITORY_LABEL], "homelab");
        let bare = owned_manifest(
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": null}}),
            "homelab",
        );
        assert_eq!(bare["metadata"]["labels"][REPOSITORY_LABEL], "homelab");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sandbox"}});
        assert_eq!(owned_manifest(&ns, "homelab"), ns);
    }
}
