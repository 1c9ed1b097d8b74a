//! The cluster half of a run, as plan [`Change`]s: planned against the live
//! cluster (server-side apply dry runs and the inventory) or against a
//! directory of rendered manifests for Flux/Argo (`--render DIR`), and
//! applied in kind order (ServiceAccounts and RBAC before Issuers before
//! Certificates), pruned in reverse.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::client::Cluster;
use super::inventory::Inventory;
use super::prune::{apply_rank, prune_order, stale};
use super::{ClusterError, ObjectPlan};
use crate::addr::{Addr, KubeRef};
use crate::model::Loaded;
use crate::plan::{Action, Change};
use crate::state::{Fields, ResourceKind};

/// How many dry runs are in flight at once.
const CONCURRENCY: usize = 8;

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

fn generated_from(manifest: &Value) -> Option<String> {
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

fn change(addr: Addr, action: Action, manifest: Option<Value>) -> Change {
    Change {
        addr,
        kind: ResourceKind::ClusterObject,
        action,
        before: None,
        after: None,
        sensitive: vec![],
        reason: None,
        ca: None,
        depends_on: vec![],
        manifest,
    }
}

fn rank(c: &Change) -> u8 {
    match &c.addr {
        Addr::Kube(k) => apply_rank(&k.group, &k.kind),
        Addr::Vault(_) => 0,
    }
}

fn from_object_plan(p: ObjectPlan, manifest: &Value) -> Change {
    let mut c = change(p.addr, p.action, Some(manifest.clone()));
    c.before = (p.action != Action::Create).then_some(p.before);
    c.after = Some(p.after);
    c.sensitive = p.sensitive;
    c.reason = generated_from(manifest);
    c
}

/// Plans every manifest against the live cluster (dry runs in parallel,
/// bounded), in apply order; with `prune`, objects of the inventory that
/// left the repository are planned as deletes, in reverse order.
pub async fn plan_live(
    cluster: &Cluster,
    manifests: &[Loaded<Value>],
    prune: bool,
) -> Result<Vec<Change>, ClusterError> {
    // Namespaces first: an object in a namespace this plan creates cannot be
    // dry-run yet (the server answers 404), so it is planned as a create.
    let is_ns = |m: &Loaded<Value>| m.spec["kind"] == "Namespace" && m.spec["apiVersion"] == "v1";
    let mut changes = Vec::new();
    let mut new_namespaces = Vec::new();
    for m in manifests.iter().filter(|m| is_ns(m)) {
        let c = from_object_plan(cluster.plan_object(&m.spec).await?, &m.spec);
        if c.action == Action::Create {
            new_namespaces.push(
                m.spec["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        changes.push(c);
    }
    let in_new_namespace = |m: &Loaded<Value>| {
        m.spec["metadata"]["namespace"]
            .as_str()
            .is_some_and(|ns| new_namespaces.iter().any(|n| n == ns))
    };
    let rest: Vec<Change> = futures::stream::iter(manifests.iter().filter(|m| !is_ns(m)))
        .map(|m| async move {
            if in_new_namespace(m) {
                let addr = Addr::Kube(kube_ref(&m.spec));
                return Ok(from_object_plan(
                    super::diff::plan_from(addr, None, &m.spec),
                    &m.spec,
                ));
            }
            let p = cluster.plan_object(&m.spec).await?;
            Ok::<_, ClusterError>(from_object_plan(p, &m.spec))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    changes.extend(rest);
    changes.sort_by_key(rank);
    if prune {
        let previous = cluster.read_inventory().await?;
        let current = current_inventory(&changes);
        for r in prune_order(stale(&previous, &current)) {
            let mut c = change(Addr::Kube(r), Action::Delete, None);
            c.reason = Some("no longer in the repository (prune)".into());
            changes.push(c);
        }
    }
    Ok(changes)
}

/// The inventory a plan leaves: every cluster object it keeps.
pub fn current_inventory(changes: &[Change]) -> Inventory {
    Inventory::new(changes.iter().filter_map(|c| match (&c.addr, c.action) {
        (Addr::Kube(k), a) if a != Action::Delete => Some(k.clone()),
        _ => None,
    }))
}

/// What a cluster apply did.
#[derive(Debug, Default)]
pub struct ClusterReport {
    /// Objects applied.
    pub applied: Vec<(Addr, Action)>,
    /// Objects deleted (prune).
    pub deleted: Vec<KubeRef>,
    /// Objects whose delete failed (kept in the inventory).
    pub failed: Vec<(KubeRef, String)>,
}

/// Applies the cluster changes of a plan (server-side apply in order, then
/// prune), and records the inventory when it changed.
pub async fn apply_live(
    cluster: &Cluster,
    changes: &[Change],
    on_applied: &mut (dyn FnMut(&Addr, Action) + Send),
) -> Result<ClusterReport, ClusterError> {
    let mut report = ClusterReport::default();
    let cluster_changes: Vec<&Change> = changes
        .iter()
        .filter(|c| c.kind == ResourceKind::ClusterObject)
        .collect();
    for c in cluster_changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update) && c.manifest.is_some())
    {
        if let Some(m) = &c.manifest {
            cluster.apply_object(m).await?;
            on_applied(&c.addr, c.action);
            report.applied.push((c.addr.clone(), c.action));
        }
    }
    let deletes: Vec<KubeRef> = cluster_changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .filter_map(|c| match &c.addr {
            Addr::Kube(k) => Some(k.clone()),
            Addr::Vault(_) => None,
        })
        .collect();
    let pruned = cluster.prune(&deletes).await;
    for r in &pruned.deleted {
        on_applied(&Addr::Kube(r.clone()), Action::Delete);
    }
    report.deleted = pruned.deleted.clone();
    report.failed = pruned
        .failed
        .iter()
        .map(|(r, e)| (r.clone(), e.to_string()))
        .collect();
    let mut next = current_inventory(changes);
    next.entries
        .extend(report.failed.iter().map(|(r, _)| r.clone()));
    let previous = cluster.read_inventory().await?;
    if previous.entries != next.entries {
        cluster.write_inventory(&next).await?;
    }
    Ok(report)
}

/// Where a rendered manifest goes: `<dir>/<namespace or _cluster>/<kind>[.<group>]-<name>.yaml`.
pub fn render_path(dir: &Path, r: &KubeRef) -> PathBuf {
    let folder = r.namespace.as_deref().unwrap_or("_cluster");
    let kind = if r.group.is_empty() {
        r.kind.to_lowercase()
    } else {
        format!("{}.{}", r.kind.to_lowercase(), r.group)
    };
    dir.join(folder).join(format!("{kind}-{}.yaml", r.name))
}

/// The YAML text of a rendered manifest.
pub fn render_text(manifest: &Value) -> String {
    let body = serde_saphyr::to_string(manifest).unwrap_or_default();
    format!("# Rendered by certplane: edit the repository, not this file.\n{body}")
}

/// Plans the rendered manifests against the files already in `dir`: a file
/// with the same text is a no-op.
pub fn plan_render(dir: &Path, manifests: &[Loaded<Value>]) -> Vec<Change> {
    let mut changes: Vec<Change> = manifests
        .iter()
        .map(|m| {
            let r = kube_ref(&m.spec);
            let path = render_path(dir, &r);
            let text = render_text(&m.spec);
            let existing = std::fs::read_to_string(&path).ok();
            let action = match &existing {
                None => Action::Create,
                Some(t) if *t == text => Action::NoOp,
                Some(_) => Action::Update,
            };
            let mut c = change(Addr::Kube(r), action, Some(m.spec.clone()));
            let file: Fields =
                BTreeMap::from([("file".to_string(), json!(path.display().to_string()))]);
            c.before = existing.map(|_| file.clone());
            c.after = Some(file);
            c.reason = Some(match generated_from(&m.spec) {
                Some(g) => format!("rendered for Flux/Argo; {g}"),
                None => "rendered for Flux/Argo".to_string(),
            });
            c
        })
        .collect();
    changes.sort_by_key(rank);
    changes
}

/// Writes the rendered manifests of the pending changes.
pub fn apply_render(
    dir: &Path,
    changes: &[Change],
    on_applied: &mut (dyn FnMut(&Addr, Action) + Send),
) -> std::io::Result<usize> {
    let mut written = 0;
    for c in changes
        .iter()
        .filter(|c| c.kind == ResourceKind::ClusterObject && c.action.is_change())
    {
        let (Addr::Kube(r), Some(m)) = (&c.addr, &c.manifest) else {
            continue;
        };
        let path = render_path(dir, r);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, render_text(m))?;
        on_applied(&c.addr, c.action);
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Meta, Origin};

    fn loaded(v: Value) -> Loaded<Value> {
        Loaded {
            meta: Meta::default(),
            origin: Origin::default(),
            spec: v,
        }
    }

    #[test]
    fn a_cluster_role_binding_says_what_it_grants_to_whom() {
        let dir = tempfile::tempdir().unwrap();
        let sa = crate::model::ReviewerServiceAccount {
            namespace: "vault-auth".into(),
            name: "vault-token-reviewer".into(),
        };
        let manifests: Vec<Loaded<Value>> =
            crate::expand::reviewer_manifests(&sa, "AuthMount/kubernetes")
                .into_iter()
                .map(loaded)
                .collect();
        let plan = plan_render(dir.path(), &manifests);
        let binding = plan
            .iter()
            .find(|c| c.addr.to_string().contains("ClusterRoleBinding"))
            .unwrap();
        assert_eq!(
            binding.reason.as_deref(),
            Some(
                "rendered for Flux/Argo; generated from AuthMount/kubernetes; grants ClusterRole \
                 system:auth-delegator (create TokenReviews and SubjectAccessReviews: what Vault's \
                 Kubernetes auth needs to check tokens) cluster-wide to ServiceAccount \
                 vault-auth/vault-token-reviewer"
            )
        );
        let account = plan
            .iter()
            .find(|c| c.addr.to_string().contains("ServiceAccount"))
            .unwrap();
        assert_eq!(
            account.reason.as_deref(),
            Some("rendered for Flux/Argo; generated from AuthMount/kubernetes")
        );
    }

    #[test]
    fn render_is_idempotent_and_ordered_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let manifests = vec![
            loaded(json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
                "metadata": {"name": "vi", "namespace": "sandbox"}, "spec": {"vault": {"path": "pki/sign/x"}}})),
            loaded(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "vi", "namespace": "sandbox"}})),
        ];
        let plan = plan_render(dir.path(), &manifests);
        assert_eq!(plan[0].addr.to_string(), "core/ServiceAccount/sandbox/vi");
        assert!(plan.iter().all(|c| c.action == Action::Create));
        let n = apply_render(dir.path(), &plan, &mut |_, _| {}).unwrap();
        assert_eq!(n, 2);
        let file = dir.path().join("sandbox/issuer.cert-manager.io-vi.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("path: pki/sign/x"), "{text}");
        let again = plan_render(dir.path(), &manifests);
        assert!(again.iter().all(|c| c.action == Action::NoOp));
        std::fs::write(&file, "changed").unwrap();
        let third = plan_render(dir.path(), &manifests);
        assert_eq!(
            third.iter().filter(|c| c.action == Action::Update).count(),
            1
        );
    }
}
