//! The cluster half written as files for a GitOps controller (`--render
//! DIR`, `spec.cluster.render`): [`RenderDir`], the provider.
//!
//! Each manifest goes to `DIR/<namespace or _cluster>/<kind>[.<group>]-<name>.yaml`
//! with a first line naming the repository ([`rendered_header`]): that
//! header is the directory's inventory. Observe reads the files there; the
//! plan (pure) compares them with what the repository renders now (a file
//! with the same text is a no-op); apply writes the files; prune removes
//! the files this repository rendered for objects it no longer declares
//! (never a file without its header). A secret is never rendered: AppRole
//! secret IDs and exported keys need a live cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use futures::FutureExt as _;
use futures::future::LocalBoxFuture;
use serde_json::{Value, json};

use super::manifest::{ClusterPlan, change, generated_from, kube_ref, owned_manifest, rank};
use crate::addr::{Addr, KubeRef};
use crate::model::Loaded;
use crate::pipeline::provider::{
    ApplyInput, Observation, OnEvent, PlanInput, Provider, ProviderError,
};
use crate::plan::{Action, Change, Plan, PlanNote};
use crate::state::{Fields, ResourceKind};
use crate::vault::apply::{ApplyEvent, ApplyReport};

/// How every rendered file starts; the loader never reads such a file as
/// repository input.
pub const RENDERED_MARK: &str = "# Rendered by certplane";

/// The first line of the files older versions rendered (no repository).
const LEGACY_RENDERED_HEADER: &str = "# Rendered by certplane: edit the repository, not this file.";

/// The first line of every file rendered for the repository `identity`.
pub fn rendered_header(identity: &str) -> String {
    format!("{RENDERED_MARK} for repository {identity}: edit the repository, not this file.")
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

/// A rendered file no manifest of the repository produces now.
#[derive(Clone, Debug)]
struct Leftover {
    path: PathBuf,
    first_line: String,
    /// The object it holds, when it reads as a manifest.
    object: Option<KubeRef>,
}

/// What the render directory holds: the input of [`RenderObserved::plan_of`].
#[derive(Clone, Debug)]
pub struct RenderObserved {
    dir: PathBuf,
    identity: String,
    /// The current text of each file the repository renders, if it exists.
    existing: BTreeMap<PathBuf, String>,
    /// The other rendered files.
    leftovers: Vec<Leftover>,
    /// The trust bundles the repository publishes, with their files.
    trust: Vec<super::trust::TrustObserved>,
}

/// Reads the files of `dir` that planning `manifests` for `identity`
/// compares with.
pub fn observe_render(dir: &Path, manifests: &[Loaded<Value>], identity: &str) -> RenderObserved {
    observe_render_with(dir, manifests, identity, &[])
}

/// [`observe_render`], where the repository also renders `also` (its
/// trust bundles): their files are not leftovers.
fn observe_render_with(
    dir: &Path,
    manifests: &[Loaded<Value>],
    identity: &str,
    also: &[KubeRef],
) -> RenderObserved {
    let mut produced: BTreeSet<PathBuf> = also.iter().map(|r| render_path(dir, r)).collect();
    let mut existing = BTreeMap::new();
    for m in manifests {
        let path = render_path(dir, &kube_ref(&owned_manifest(&m.spec, identity)));
        if let Ok(text) = std::fs::read_to_string(&path) {
            existing.insert(path.clone(), text);
        }
        produced.insert(path);
    }
    let leftovers = rendered_files(dir)
        .into_iter()
        .filter(|p| !produced.contains(p))
        .filter_map(|path| {
            let first_line = first_line(&path)?;
            let object = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_saphyr::from_str::<Value>(&t).ok())
                .map(|m| kube_ref(&m))
                .filter(|r| !r.kind.is_empty() && !r.name.is_empty());
            Some(Leftover {
                path,
                first_line,
                object,
            })
        })
        .collect();
    RenderObserved {
        dir: dir.to_path_buf(),
        identity: identity.to_string(),
        existing,
        leftovers,
        trust: Vec::new(),
    }
}

/// The object a rendered file holds (`None`: no such file, or not YAML).
fn read_rendered(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_saphyr::from_str::<Value>(&text).ok()
}

impl RenderObserved {
    /// Plans `manifests` against the files: a file with the same text is a
    /// no-op. A file this repository rendered earlier (its header names
    /// it) that the repository no longer produces is planned as a delete (a
    /// GitOps controller would keep applying it); a file without that header
    /// is never touched, and one rendered by an older certplane (no
    /// repository in its header) is noted, not deleted. Pure.
    pub fn plan_of(&self, manifests: &[Loaded<Value>]) -> ClusterPlan {
        let mut changes: Vec<Change> = manifests
            .iter()
            .map(|m| self.plan_manifest(&owned_manifest(&m.spec, &self.identity)))
            .collect();
        changes.sort_by_key(rank);
        let (mut deletes, notes) = self.plan_leftovers();
        deletes.sort_by(|a, b| rank(b).cmp(&rank(a)).then_with(|| a.addr.cmp(&b.addr)));
        changes.extend(deletes);
        ClusterPlan { changes, notes }
    }

    fn plan_manifest(&self, manifest: &Value) -> Change {
        let r = kube_ref(manifest);
        let path = render_path(&self.dir, &r);
        let text = render_text(manifest, &self.identity);
        let existing = self.existing.get(&path);
        let action = match existing {
            None => Action::Create,
            Some(t) if *t == text => Action::NoOp,
            Some(_) => Action::Update,
        };
        // An unchanged file's manifest is not kept (it is not written).
        let mut c = change(
            Addr::from(r),
            action,
            action.is_change().then(|| manifest.clone()),
        );
        let file: Fields = Fields::from([("file", json!(path.display().to_string()))]);
        c.before = existing.map(|_| file.clone());
        c.after = Some(file);
        c.reason = Some(match generated_from(manifest) {
            Some(g) => format!("rendered for Flux/Argo; {g}"),
            None => "rendered for Flux/Argo".to_string(),
        });
        c
    }

    fn plan_leftovers(&self) -> (Vec<Change>, Vec<PlanNote>) {
        let ours = rendered_header(&self.identity);
        let mut deletes = Vec::new();
        let mut notes = Vec::new();
        for l in &self.leftovers {
            let shown = l.path.display().to_string();
            if l.first_line == ours {
                let Some(r) = l.object.clone() else {
                    tracing::warn!(file = %shown, "a file rendered by this repository cannot be read as a manifest: left alone");
                    continue;
                };
                let mut c = change(Addr::from(r), Action::Delete, None);
                c.before = Some(Fields::from([("file", json!(shown))]));
                c.reason = Some(
                    "no longer in the repository: its rendered file is removed (the GitOps \
                     controller's own prune decides about the object)"
                        .into(),
                );
                deletes.push(c);
            } else if l.first_line == LEGACY_RENDERED_HEADER
                && let Some(r) = l.object.clone()
            {
                notes.push(PlanNote {
                    addr: Addr::from(r),
                    message: format!(
                        "{shown} was rendered by an older certplane that did not record its \
                         repository, and this repository no longer produces it: left in place; \
                         delete it by hand if no repository renders it any more"
                    ),
                    owned: false,
                });
            }
        }
        (deletes, notes)
    }
}

/// Plans the rendered manifests against the files already in `dir`
/// ([`observe_render`], then [`RenderObserved::plan_of`]).
pub fn plan_render(dir: &Path, manifests: &[Loaded<Value>], identity: &str) -> ClusterPlan {
    observe_render(dir, manifests, identity).plan_of(manifests)
}

impl Observation for RenderObserved {
    fn plan(self: Box<Self>, input: &PlanInput<'_>, plan: &mut Plan) {
        let prepared = input.prepared;
        if crate::pipeline::targets::has_deliveries(&prepared.repo) {
            tracing::warn!(
                "AppRole deliverTo needs a cluster: no secret ID is delivered with --render \
                 (a secret ID must not be written to files)"
            );
        }
        let rendered = self.plan_of(&prepared.repo.manifests);
        plan.changes.extend(rendered.changes);
        plan.notes.extend(rendered.notes);
        let published: Vec<Change> = self
            .trust
            .iter()
            .map(|t| {
                let mut c = super::trust::plan(t, plan, &self.identity);
                let file = render_path(&self.dir, &t.target.object);
                c.reason = c
                    .reason
                    .map(|r| format!("rendered to {}; {r}", file.display()));
                c
            })
            .collect();
        plan.changes.extend(published);
        super::trust::gate(plan, &self.trust);
        super::reviewer::plan_render(plan, &prepared.desired);
        super::deliver_key::preflight(plan, &prepared.repo, &BTreeMap::new());
    }
}

/// The render directory as a provider.
#[derive(Clone, Debug)]
pub struct RenderDir {
    dir: PathBuf,
}

impl RenderDir {
    /// Renders into `dir`.
    pub fn new(dir: PathBuf) -> RenderDir {
        RenderDir { dir }
    }

    fn write(
        &self,
        plan: &Plan,
        identity: &str,
        keep: impl Fn(Action) -> bool,
        on_event: OnEvent<'_>,
    ) -> Result<ApplyReport, ProviderError> {
        let changes: Vec<Change> = plan
            .changes
            .iter()
            .filter(|c| keep(c.action))
            .cloned()
            .collect();
        let mut report = ApplyReport::default();
        let mut on_applied = |addr: &Addr, action: Action| {
            report.applied.push(crate::vault::apply::Applied {
                addr: addr.clone(),
                action,
                issuer_id: None,
            });
            on_event(ApplyEvent::Done {
                addr: addr.clone(),
                action,
            });
        };
        apply_render(&self.dir, &changes, identity, &mut on_applied).map_err(|source| {
            ProviderError::Render {
                dir: self.dir.clone(),
                source,
            }
        })?;
        Ok(report)
    }
}

impl RenderDir {
    /// Renders each pending trust bundle after the Vault half: the file is
    /// re-read first (a stale plan stops here), then the mount's issuers
    /// are read again and their bundle is written.
    async fn write_trust(
        &self,
        vault: &crate::vault::Vault,
        input: &ApplyInput<'_>,
        plan: &Plan,
        report: &mut ApplyReport,
        on_event: OnEvent<'_>,
    ) -> Result<(), ProviderError> {
        let identity = input.prepared.repo.identity.as_str();
        for (c, t) in super::trust::pending(&input.prepared.repo, &plan.changes) {
            let path = render_path(&self.dir, &t.object);
            let now = read_rendered(&path);
            let Some(pem) = super::trust::bundle_to_publish(vault, c, &t, now.as_ref()).await?
            else {
                continue;
            };
            let text = render_text(&t.manifest(&pem, identity), identity);
            if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
                continue;
            }
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&path, text));
            written.map_err(|source| ProviderError::Render {
                dir: self.dir.clone(),
                source,
            })?;
            report.applied.push(crate::vault::apply::Applied {
                addr: c.addr.clone(),
                action: c.action,
                issuer_id: None,
            });
            on_event(ApplyEvent::Done {
                addr: c.addr.clone(),
                action: c.action,
            });
        }
        Ok(())
    }
}

impl Provider for RenderDir {
    fn name(&self) -> &'static str {
        "render"
    }

    fn observe<'a>(
        &'a self,
        input: &'a PlanInput<'a>,
        _planned: &'a Plan,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, ProviderError>> {
        async move {
            let repo = &input.prepared.repo;
            let targets = super::trust::targets(repo);
            let also: Vec<KubeRef> = targets.iter().map(|t| t.object.clone()).collect();
            let mut seen = observe_render_with(&self.dir, &repo.manifests, &repo.identity, &also);
            if let Some(vault) = input.vault {
                let issuers = super::trust::read_issuers(vault, &targets).await?;
                let now = crate::vault::observe::unix_now();
                seen.trust = targets
                    .into_iter()
                    .map(|t| super::trust::TrustObserved {
                        issuers: issuers.get(&t.mount).cloned().unwrap_or_default(),
                        now,
                        live: read_rendered(&render_path(&self.dir, &t.object)),
                        target: t,
                    })
                    .collect();
            }
            Ok(Box::new(seen) as Box<dyn Observation>)
        }
        .boxed_local()
    }

    fn apply<'a>(
        &'a self,
        input: &'a ApplyInput<'a>,
        plan: &'a Plan,
        on_event: OnEvent<'a>,
    ) -> LocalBoxFuture<'a, Result<ApplyReport, ProviderError>> {
        async move {
            let identity = input.prepared.repo.identity.as_str();
            let mut report = self.write(plan, identity, |a| a != Action::Delete, on_event)?;
            if let Some(vault) = input.vault {
                self.write_trust(vault, input, plan, &mut report, on_event)
                    .await?;
            }
            Ok(report)
        }
        .boxed_local()
    }

    fn prune<'a>(
        &'a self,
        input: &'a ApplyInput<'a>,
        plan: &'a Plan,
        on_event: OnEvent<'a>,
    ) -> LocalBoxFuture<'a, Result<ApplyReport, ProviderError>> {
        let identity = input.prepared.repo.identity.as_str();
        let done = self.write(plan, identity, |a| a == Action::Delete, on_event);
        futures::future::ready(done).boxed_local()
    }
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
        // An unchanged file's manifest is not kept in the plan.
        assert!(again.iter().all(|c| c.manifest.is_none()), "{again:?}");
        assert!(again.iter().all(|c| c.reason.is_some()), "{again:?}");
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
}
