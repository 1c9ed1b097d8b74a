//! The cluster half of a run, as plan [`Change`]s: planned against the live
//! cluster (server-side apply dry runs and the repository's inventory) or
//! against a directory of rendered manifests for Flux/Argo (`--render DIR`),
//! and applied in kind order (ServiceAccounts and RBAC before Issuers before
//! Certificates), pruned in reverse.
//!
//! Every object applied is labelled `certplane.dev/repository: <identity>`
//! (Namespaces excepted: several repositories often declare the same one),
//! and every rendered file starts with a header naming the repository, so
//! that what belongs to which repository is visible on the object and prune
//! never touches another repository's objects or files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::client::Cluster;
use super::inventory::{Inventory, REPOSITORY_LABEL};
use super::prune::{StaleOwner, apply_rank, prune_order, stale};
use super::{ClusterError, ObjectPlan};
use crate::addr::{Addr, KubeRef};
use crate::model::Loaded;
use crate::plan::{Action, Change, Plan, PlanNote};
use crate::state::{Fields, ResourceKind};

/// How many dry runs are in flight at once.
const CONCURRENCY: usize = 8;

/// How every rendered file starts; the loader never reads such a file as
/// repository input.
pub const RENDERED_MARK: &str = "# Rendered by certplane";

/// The first line of the files older versions rendered (no repository).
const LEGACY_RENDERED_HEADER: &str = "# Rendered by certplane: edit the repository, not this file.";

/// The first line of every file rendered for the repository `identity`.
pub fn rendered_header(identity: &str) -> String {
    format!("{RENDERED_MARK} for repository {identity}: edit the repository, not this file.")
}

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

fn from_object_plan(p: ObjectPlan, manifest: &Value, identity: &str) -> Change {
    let label = format!("metadata.labels[\"{REPOSITORY_LABEL}\"]");
    let taken_from = p
        .before
        .get(&label)
        .and_then(Value::as_str)
        .filter(|owner| *owner != identity)
        .map(|owner| {
            format!(
                "takes the object over from the repository {owner:?}: an object declared in two \
                 repositories changes hands on every apply; declare it in one"
            )
        });
    let mut c = change(p.addr, p.action, Some(manifest.clone()));
    c.before = (p.action != Action::Create).then_some(p.before);
    c.after = Some(p.after);
    c.sensitive = p.sensitive;
    c.reason = match (generated_from(manifest), taken_from) {
        (Some(g), Some(t)) => Some(format!("{g}; {t}")),
        (g, t) => g.or(t),
    };
    c
}

/// What planning the cluster half found.
#[derive(Debug, Default)]
pub struct ClusterPlan {
    /// Changes, in apply order (deletes last, in reverse order).
    pub changes: Vec<Change>,
    /// Objects that left the repository and stay.
    pub notes: Vec<PlanNote>,
}

/// What [`plan_live`] needs besides the manifests.
#[derive(Clone, Copy, Debug)]
pub struct LiveOptions<'a> {
    /// The repository identity (its inventory, its label).
    pub identity: &'a str,
    /// `prune: true`: delete what left the repository.
    pub prune: bool,
    /// Objects this repository owns besides its manifests (the Secrets that
    /// `AppRole.deliverTo` writes).
    pub also_owned: &'a [KubeRef],
}

/// Plans every manifest against the live cluster (dry runs in parallel,
/// bounded), in apply order. Objects of the repository's inventory that
/// left it are planned as deletes with `prune` (in reverse order), or noted
/// as kept without it; never one that is gone already or that another
/// repository owns.
pub async fn plan_live(
    cluster: &Cluster,
    manifests: &[Loaded<Value>],
    options: LiveOptions<'_>,
) -> Result<ClusterPlan, ClusterError> {
    let identity = options.identity;
    let owned: Vec<Value> = manifests
        .iter()
        .map(|m| owned_manifest(&m.spec, identity))
        .collect();
    // Namespaces first: an object in a namespace this plan creates cannot be
    // dry-run yet (the server answers 404), so it is planned as a create.
    let is_ns = |m: &Value| m["kind"] == "Namespace" && m["apiVersion"] == "v1";
    let mut changes = Vec::new();
    let mut new_namespaces = Vec::new();
    for m in owned.iter().filter(|m| is_ns(m)) {
        let c = from_object_plan(cluster.plan_object(m).await?, m, identity);
        if c.action == Action::Create {
            new_namespaces.push(
                m["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        changes.push(c);
    }
    let in_new_namespace = |m: &Value| {
        m["metadata"]["namespace"]
            .as_str()
            .is_some_and(|ns| new_namespaces.iter().any(|n| n == ns))
    };
    let rest: Vec<Change> = futures::stream::iter(owned.iter().filter(|m| !is_ns(m)))
        .map(|m| async move {
            if in_new_namespace(m) {
                let addr = Addr::Kube(kube_ref(m));
                return Ok(from_object_plan(
                    super::diff::plan_from(addr, None, m),
                    m,
                    identity,
                ));
            }
            let p = cluster.plan_object(m).await?;
            Ok::<_, ClusterError>(from_object_plan(p, m, identity))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    changes.extend(rest);
    changes.sort_by_key(rank);

    let previous = cluster.read_inventory(identity).await?;
    let mut current = current_inventory(&changes);
    current.entries.extend(options.also_owned.iter().cloned());
    let mut notes = Vec::new();
    let owners = cluster
        .stale_owners(identity, prune_order(stale(&previous, &current)))
        .await?;
    for (r, owner) in owners {
        match owner {
            StaleOwner::Gone => {}
            StaleOwner::Other(why) => notes.push(PlanNote {
                addr: Addr::Kube(r),
                message: format!(
                    "no longer in the repository, and not deleted: {why}; it leaves this \
                     repository's inventory"
                ),
                owned: false,
            }),
            StaleOwner::Ours if options.prune => {
                let mut c = change(Addr::Kube(r), Action::Delete, None);
                c.reason = Some("no longer in the repository (prune)".into());
                changes.push(c);
            }
            StaleOwner::Ours => notes.push(PlanNote {
                addr: Addr::Kube(r),
                message: crate::plan::KEPT_PRUNE_OFF.into(),
                owned: true,
            }),
        }
    }
    Ok(ClusterPlan { changes, notes })
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
/// prune), and records `identity`'s inventory when it changed: the objects
/// the plan keeps (delivered Secrets included), those whose delete failed,
/// and those kept because prune is off.
pub async fn apply_live(
    cluster: &Cluster,
    plan: &Plan,
    identity: &str,
    on_applied: &mut (dyn FnMut(&Addr, Action) + Send),
) -> Result<ClusterReport, ClusterError> {
    let mut report = ClusterReport::default();
    let cluster_changes: Vec<&Change> = plan
        .changes
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
    let mut next = current_inventory(&plan.changes);
    next.entries
        .extend(report.failed.iter().map(|(r, _)| r.clone()));
    next.entries.extend(
        plan.notes
            .iter()
            .filter(|n| n.owned)
            .filter_map(|n| match &n.addr {
                Addr::Kube(k) => Some(k.clone()),
                Addr::Vault(_) => None,
            }),
    );
    let previous = cluster.read_inventory(identity).await?;
    if previous.entries != next.entries {
        cluster.write_inventory(identity, &next).await?;
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

/// The YAML text of a manifest rendered for the repository `identity`.
pub fn render_text(manifest: &Value, identity: &str) -> String {
    let body = serde_saphyr::to_string(manifest).unwrap_or_default();
    format!("{}\n{body}", rendered_header(identity))
}

/// The first line of a file, if it can be read.
fn first_line(path: &Path) -> Option<String> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(file).read_line(&mut line).ok()?;
    Some(line.trim_end().to_string())
}

/// The rendered files in `dir` (`<dir>/<folder>/<file>.yaml`), sorted.
fn rendered_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(folders) = std::fs::read_dir(dir) else {
        return out;
    };
    for folder in folders.flatten() {
        if !folder.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(files) = std::fs::read_dir(folder.path()) else {
            continue;
        };
        for f in files.flatten() {
            let path = f.path();
            if f.file_type().is_ok_and(|t| t.is_file())
                && path.extension().is_some_and(|e| e == "yaml")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Plans the rendered manifests against the files already in `dir`: a file
/// with the same text is a no-op. A file this repository rendered earlier
/// (its header names `identity`) that the repository no longer produces is
/// planned as a delete (a GitOps controller would keep applying it); a file
/// without that header is never touched, and one rendered by an older
/// certplane (no repository in its header) is noted, not deleted.
pub fn plan_render(dir: &Path, manifests: &[Loaded<Value>], identity: &str) -> ClusterPlan {
    let mut produced = BTreeSet::new();
    let mut changes: Vec<Change> = manifests
        .iter()
        .map(|m| {
            let manifest = owned_manifest(&m.spec, identity);
            let r = kube_ref(&manifest);
            let path = render_path(dir, &r);
            produced.insert(path.clone());
            let text = render_text(&manifest, identity);
            let existing = std::fs::read_to_string(&path).ok();
            let action = match &existing {
                None => Action::Create,
                Some(t) if *t == text => Action::NoOp,
                Some(_) => Action::Update,
            };
            let mut c = change(Addr::Kube(r), action, Some(manifest.clone()));
            let file: Fields =
                BTreeMap::from([("file".to_string(), json!(path.display().to_string()))]);
            c.before = existing.map(|_| file.clone());
            c.after = Some(file);
            c.reason = Some(match generated_from(&manifest) {
                Some(g) => format!("rendered for Flux/Argo; {g}"),
                None => "rendered for Flux/Argo".to_string(),
            });
            c
        })
        .collect();
    changes.sort_by_key(rank);
    let ours = rendered_header(identity);
    let mut deletes = Vec::new();
    let mut notes = Vec::new();
    for path in rendered_files(dir) {
        if produced.contains(&path) {
            continue;
        }
        let Some(first) = first_line(&path) else {
            continue;
        };
        let shown = path.display().to_string();
        let parsed = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_saphyr::from_str::<Value>(&t).ok())
            .map(|m| kube_ref(&m))
            .filter(|r| !r.kind.is_empty() && !r.name.is_empty());
        if first == ours {
            let Some(r) = parsed else {
                tracing::warn!(file = %shown, "a file rendered by this repository cannot be read as a manifest: left alone");
                continue;
            };
            let mut c = change(Addr::Kube(r), Action::Delete, None);
            c.before = Some(BTreeMap::from([("file".to_string(), json!(shown))]));
            c.reason = Some(
                "no longer in the repository: its rendered file is removed (the GitOps \
                 controller's own prune decides about the object)"
                    .into(),
            );
            deletes.push(c);
        } else if first == LEGACY_RENDERED_HEADER
            && let Some(r) = parsed
        {
            notes.push(PlanNote {
                addr: Addr::Kube(r),
                message: format!(
                    "{shown} was rendered by an older certplane that did not record its \
                     repository, and this repository no longer produces it: left in place; \
                     delete it by hand if no repository renders it any more"
                ),
                owned: false,
            });
        }
    }
    deletes.sort_by(|a, b| rank(b).cmp(&rank(a)).then_with(|| a.addr.cmp(&b.addr)));
    changes.extend(deletes);
    ClusterPlan { changes, notes }
}

/// Writes the rendered manifests of the pending changes, and removes the
/// files of the planned deletes (only when the file still carries this
/// repository's header; an emptied folder goes too).
pub fn apply_render(
    dir: &Path,
    changes: &[Change],
    identity: &str,
    on_applied: &mut (dyn FnMut(&Addr, Action) + Send),
) -> std::io::Result<usize> {
    let mut written = 0;
    let ours = rendered_header(identity);
    for c in changes
        .iter()
        .filter(|c| c.kind == ResourceKind::ClusterObject && c.action.is_change())
    {
        let Addr::Kube(r) = &c.addr else {
            continue;
        };
        if c.action == Action::Delete {
            let Some(file) = c
                .before
                .as_ref()
                .and_then(|b| b.get("file"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let path = PathBuf::from(file);
            if !path.starts_with(dir) || first_line(&path).as_deref() != Some(ours.as_str()) {
                tracing::warn!(
                    file,
                    "not removed: it is not a file this repository rendered"
                );
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            if let Some(parent) = path.parent()
                && parent != dir
            {
                // Only succeeds when the folder is empty.
                let _ = std::fs::remove_dir(parent);
            }
            on_applied(&c.addr, c.action);
            written += 1;
            continue;
        }
        let Some(m) = &c.manifest else {
            continue;
        };
        let path = render_path(dir, r);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, render_text(m, identity))?;
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

    fn issuer_and_account() -> Vec<Loaded<Value>> {
        vec![
            loaded(json!({"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
                "metadata": {"name": "vi", "namespace": "sandbox"}, "spec": {"vault": {"path": "pki/sign/x"}}})),
            loaded(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "vi", "namespace": "sandbox"}})),
        ]
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
        let plan = plan_render(dir.path(), &manifests, "lab").changes;
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
        let manifests = issuer_and_account();
        let plan = plan_render(dir.path(), &manifests, "homelab").changes;
        assert_eq!(plan[0].addr.to_string(), "core/ServiceAccount/sandbox/vi");
        assert!(plan.iter().all(|c| c.action == Action::Create));
        let n = apply_render(dir.path(), &plan, "homelab", &mut |_, _| {}).unwrap();
        assert_eq!(n, 2);
        let file = dir.path().join("sandbox/issuer.cert-manager.io-vi.yaml");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("path: pki/sign/x"), "{text}");
        assert!(
            text.starts_with(
                "# Rendered by certplane for repository homelab: edit the repository, not this file.\n"
            ),
            "{text}"
        );
        assert!(text.contains("certplane.dev/repository: homelab"), "{text}");
        let again = plan_render(dir.path(), &manifests, "homelab").changes;
        assert!(again.iter().all(|c| c.action == Action::NoOp));
        std::fs::write(&file, "changed").unwrap();
        let third = plan_render(dir.path(), &manifests, "homelab").changes;
        assert_eq!(
            third.iter().filter(|c| c.action == Action::Update).count(),
            1
        );
    }

    #[test]
    fn regression_a_removed_object_s_rendered_file_is_removed_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let all = issuer_and_account();
        let plan = plan_render(dir.path(), &all, "homelab").changes;
        apply_render(dir.path(), &plan, "homelab", &mut |_, _| {}).unwrap();
        // Files certplane did not write for this repository: a user's own,
        // another repository's, and an older certplane's.
        let own = dir.path().join("sandbox/kustomization.yaml");
        std::fs::write(&own, "resources: []\n").unwrap();
        let other = dir.path().join("sandbox/secret-theirs.yaml");
        std::fs::write(
            &other,
            format!(
                "{}\napiVersion: v1\nkind: Secret\nmetadata: {{name: theirs, namespace: sandbox}}\n",
                rendered_header("team-b")
            ),
        )
        .unwrap();
        let old = dir.path().join("sandbox/configmap-old.yaml");
        std::fs::write(
            &old,
            format!(
                "{LEGACY_RENDERED_HEADER}\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: old, namespace: sandbox}}\n"
            ),
        )
        .unwrap();

        // The Issuer leaves the repository.
        let fewer = vec![all[1].clone()];
        let next = plan_render(dir.path(), &fewer, "homelab");
        let deletes: Vec<String> = next
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .map(|c| c.addr.to_string())
            .collect();
        assert_eq!(deletes, ["cert-manager.io/Issuer/sandbox/vi"]);
        assert_eq!(next.notes.len(), 1, "{:?}", next.notes);
        assert_eq!(next.notes[0].addr.to_string(), "core/ConfigMap/sandbox/old");
        assert!(!next.notes[0].owned);
        let mut done = Vec::new();
        apply_render(dir.path(), &next.changes, "homelab", &mut |a, act| {
            done.push((a.to_string(), act))
        })
        .unwrap();
        assert_eq!(
            done,
            [(
                "cert-manager.io/Issuer/sandbox/vi".to_string(),
                Action::Delete
            )]
        );
        assert!(
            !dir.path()
                .join("sandbox/issuer.cert-manager.io-vi.yaml")
                .exists()
        );
        for kept in [&own, &other, &old] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        assert!(dir.path().join("sandbox/serviceaccount-vi.yaml").exists());
        // Converged: nothing more to do.
        let again = plan_render(dir.path(), &fewer, "homelab");
        assert!(again.changes.iter().all(|c| c.action == Action::NoOp));

        // Another repository rendering here deletes none of these files.
        let theirs = plan_render(dir.path(), &[], "team-c");
        assert!(theirs.changes.is_empty(), "{:?}", theirs.changes);

        // The last object leaves: its file and the emptied folder go.
        let last = plan_render(dir.path(), &[], "homelab");
        apply_render(dir.path(), &last.changes, "homelab", &mut |_, _| {}).unwrap();
        assert!(!dir.path().join("sandbox/serviceaccount-vi.yaml").exists());
        assert!(own.exists() && other.exists() && old.exists());
    }

    #[test]
    fn a_delete_leaves_a_file_whose_header_changed_since_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let all = issuer_and_account();
        let plan = plan_render(dir.path(), &all, "homelab").changes;
        apply_render(dir.path(), &plan, "homelab", &mut |_, _| {}).unwrap();
        let next = plan_render(dir.path(), &all[1..], "homelab").changes;
        let file = dir.path().join("sandbox/issuer.cert-manager.io-vi.yaml");
        std::fs::write(&file, "# mine now\nkind: Issuer\n").unwrap();
        apply_render(dir.path(), &next, "homelab", &mut |_, _| {}).unwrap();
        assert!(file.exists());
    }

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
