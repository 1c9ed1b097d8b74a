//! A live cluster as a provider ([`LiveCluster`]): server-side apply with
//! one field manager, the repository's inventory, the secrets that cross
//! between Vault and the cluster.
//!
//! * **Observe** reads the AppRole deliveries' Secrets (and asks Vault
//!   about the secret IDs they hold), each manifest (GET and a server-side
//!   apply dry run, Namespaces first: an object in a namespace this plan
//!   creates cannot be dry-run yet and is planned as a create; 16 objects
//!   at a time, at most 8 requests in flight, each manifest sent labelled
//!   without a copy, compared with its dry run as soon as both replies are
//!   in and the replies dropped; two replies that are the same bytes are a
//!   no-op, read no further than the object's name; only a manifest the
//!   plan writes is copied into it),
//!   the inventory and the owners of what left it, and whether each
//!   exported key's Secret can be written.
//! * **Plan** ([`LiveObserved`]) is pure: the compared objects in the
//!   order of the manifests, deletes or notes for what left the
//!   repository, the token reviewer's config written again when this plan
//!   creates its token Secret, the exported keys checked.
//! * **Apply** re-reads each object before writing it: a create whose
//!   object appeared, or an update whose object no longer compares as
//!   planned (its dry run differs on the planned fields, or it was
//!   deleted), stops with "plan is stale". Status and other server-set
//!   fields do not count.
//! * **Prune** deletes this repository's stale objects in reverse kind
//!   order and records the inventory (a failed delete stays in it).

use std::collections::BTreeMap;

use futures::future::LocalBoxFuture;
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use serde_json::Value;

use super::ClusterError;
use super::client::{Cluster, ObservedObject, Replies};
use super::deliver::DeliveryObserved;
use super::deliver_key::Probe;
use super::diff::ObjectPlan;
use super::inventory::{Inventory, REPOSITORY_LABEL};
use super::manifest::{
    ClusterPlan, Labelled, change, generated_from, is_namespace, kube_ref, rank,
};
use super::prune::{StaleOwner, prune_order, stale};
use crate::addr::{Addr, KubeRef};
use crate::model::{Loaded, Repository};
use crate::pipeline::provider::{
    ApplyInput, Observation, OnEvent, PlanInput, Provider, ProviderError, SecretStore,
};
use crate::plan::{Action, Change, Drift, Plan, PlanNote};
use crate::state::{Desired, ResourceKind};
use crate::vault::SecretSources;
use crate::vault::apply::{ApplyEvent, ApplyReport, ExportedKey};

/// How many objects are observed at once: twice the requests the
/// connection lets in flight ([`super::pool::CONCURRENCY`]), so that an
/// object's GET and dry run, one after the other, and the comparison in
/// between never leave a request slot idle.
const OBJECTS_IN_FLIGHT: usize = 2 * super::pool::CONCURRENCY;

/// A live cluster.
#[derive(Clone, Debug)]
pub struct LiveCluster {
    cluster: Cluster,
}

/// One manifest as observed, compared as soon as the server answered: the
/// server's replies (the live object and the dry run, which hold a
/// Secret's values and the managed fields) are not kept.
#[derive(Clone, Debug)]
struct Object {
    /// The manifest as certplane applies it (labelled with the repository),
    /// when the plan writes it: an unchanged object's is not copied.
    manifest: Option<Value>,
    /// Why the plan shows it ([`generated_from`]).
    generated: Option<String>,
    /// The comparison of the live object with the dry run.
    plan: ObjectPlan,
    /// The fields another field manager took over, if any.
    drift: Option<Drift>,
}

impl Object {
    /// Compares what the server said about `sent` at once.
    fn compared(sent: Labelled<'_>, seen: ObservedObject, field_manager: &str) -> Object {
        let plan = seen.plan();
        // Drift is a field of the plan's diff that another manager holds:
        // none without an update.
        let drift = match (&seen.replies, plan.action) {
            (
                Replies::Read {
                    live: Some(live),
                    dry_run,
                },
                Action::Update,
            ) => drift(&plan.addr, live, dry_run, field_manager),
            _ => None,
        };
        Object {
            manifest: plan.action.is_change().then(|| sent.to_owned_manifest()),
            generated: generated_from(sent.manifest),
            plan,
            drift,
        }
    }
}

/// What observing the cluster found: the input of the pure plan.
#[derive(Debug, Default)]
pub struct LiveObserved {
    deliveries: Vec<DeliveryObserved>,
    objects: Vec<Object>,
    owners: Vec<(KubeRef, StaleOwner)>,
    probes: BTreeMap<Addr, Probe>,
    trust: Vec<super::trust::TrustObserved>,
}

/// Runs `observe` on each manifest, [`OBJECTS_IN_FLIGHT`] at a time: a
/// new one starts as soon as any finishes (one slow object does not hold
/// the others back), and the results come back in the manifests' order.
async fn in_order<M, T, F>(
    manifests: impl Iterator<Item = M>,
    observe: impl Fn(M) -> F,
) -> Result<Vec<T>, ClusterError>
where
    F: std::future::Future<Output = Result<T, ClusterError>>,
{
    let mut done: Vec<(usize, T)> = futures::stream::iter(manifests.enumerate())
        .map(|(i, m)| {
            let seen = observe(m);
            async move { Ok::<_, ClusterError>((i, seen.await?)) }
        })
        .buffer_unordered(OBJECTS_IN_FLIGHT)
        .try_collect()
        .await?;
    done.sort_unstable_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, o)| o).collect())
}

impl LiveCluster {
    /// The provider for a connected cluster.
    pub fn new(cluster: Cluster) -> LiveCluster {
        LiveCluster { cluster }
    }

    /// The connection.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Observes every manifest: Namespaces first, then the rest, each
    /// group [`OBJECTS_IN_FLIGHT`] objects at a time (the connection keeps
    /// at most [`super::pool::CONCURRENCY`] requests in flight), in the
    /// order of the manifests; an object in a namespace this plan creates
    /// is taken as it is written. Each object is compared as soon as its
    /// replies are in, on the thread that drives the window (as a raw
    /// client would: a task per object cost more than it saved). A
    /// manifest is sent labelled without a copy; only a created or
    /// updated one is copied into the plan. Returns the objects and the
    /// namespaces this plan creates.
    async fn observe_objects<'m>(
        &self,
        manifests: &'m [Loaded<Value>],
        identity: &'m str,
    ) -> Result<(Vec<Object>, Vec<String>), ClusterError> {
        let of_kind = |namespaces: bool| {
            manifests
                .iter()
                .filter(move |m| is_namespace(&m.spec) == namespaces)
                .map(|m| Labelled {
                    manifest: &m.spec,
                    identity: Some(identity),
                })
        };
        let field_manager = self.cluster.field_manager();
        let observe = |sent: Labelled<'m>, new_namespaces: &[String]| {
            let in_new_namespace = sent.manifest["metadata"]["namespace"]
                .as_str()
                .is_some_and(|ns| new_namespaces.iter().any(|n| n == ns));
            // Boxed: the window moves each future it starts, and an
            // observation (two requests through kube's stack) is some
            // kilobytes; a box is moved as a pointer.
            Box::pin(async move {
                let seen = if in_new_namespace {
                    ObservedObject {
                        addr: Addr::from(kube_ref(sent.manifest)),
                        replies: Replies::Read {
                            live: None,
                            dry_run: sent.to_owned_manifest(),
                        },
                    }
                } else {
                    self.cluster.observe_labelled(sent).await?
                };
                Ok::<_, ClusterError>(Object::compared(sent, seen, field_manager))
            })
        };
        let mut objects = in_order(of_kind(true), |m| observe(m, &[])).await?;
        let new_namespaces: Vec<String> = objects
            .iter()
            .filter(|o| o.plan.action == Action::Create)
            .filter_map(|o| match &o.plan.addr {
                Addr::Kube(k) => Some(k.name.clone()),
                Addr::Vault(_) => None,
            })
            .collect();
        let rest = in_order(of_kind(false), |m| observe(m, &new_namespaces)).await?;
        objects.extend(rest);
        Ok((objects, new_namespaces))
    }

    /// Reads the inventory of `identity` and decides whose each object that
    /// left it is. `current`: what the repository applies now.
    async fn observe_owners(
        &self,
        identity: &str,
        current: &Inventory,
    ) -> Result<Vec<(KubeRef, StaleOwner)>, ClusterError> {
        let previous = self.cluster.read_inventory(identity).await?;
        self.cluster
            .stale_owners(identity, prune_order(stale(&previous, current)))
            .await
    }

    /// Everything observe reads but the deliveries and the key probes:
    /// the manifests, and the owners of what left the inventory. Returns
    /// them as an observation, and the namespaces this plan creates.
    async fn observe_manifests(
        &self,
        manifests: &[Loaded<Value>],
        identity: &str,
        delivered: &[KubeRef],
    ) -> Result<(LiveObserved, Vec<String>), ClusterError> {
        let (objects, new_namespaces) = self.observe_objects(manifests, identity).await?;
        let mut current = Inventory::new(objects.iter().filter_map(|o| match &o.plan.addr {
            Addr::Kube(k) => Some(KubeRef::clone(k)),
            Addr::Vault(_) => None,
        }));
        current.entries.extend(delivered.iter().cloned());
        let owners = self.observe_owners(identity, &current).await?;
        let seen = LiveObserved {
            objects,
            owners,
            ..LiveObserved::default()
        };
        Ok((seen, new_namespaces))
    }

    /// Re-reads the object of a planned create or update: how it moved
    /// since the plan, if it did.
    async fn recheck(&self, c: &Change, manifest: &Value) -> Result<Option<String>, ClusterError> {
        let Addr::Kube(r) = &c.addr else {
            return Ok(None);
        };
        if c.action == Action::Create {
            let now = self.cluster.get_object(r).await?;
            return Ok(now.map(|_| "it was created since".to_string()));
        }
        let now = self.cluster.plan_object(manifest).await?;
        Ok(moved(c, &now))
    }

    /// Applies the creates and updates of cluster objects in `plan`, each
    /// re-checked first.
    async fn apply_objects(
        &self,
        plan: &Plan,
        report: &mut ApplyReport,
        on_event: OnEvent<'_>,
    ) -> Result<(), ProviderError> {
        let writes = plan.changes.iter().filter(|c| {
            c.kind == ResourceKind::ClusterObject
                && matches!(c.action, Action::Create | Action::Update)
        });
        for c in writes {
            let Some(m) = &c.manifest else { continue };
            if let Some(why) = self.recheck(c, m).await? {
                return Err(ProviderError::Stale {
                    addr: Box::new(c.addr.clone()),
                    why,
                });
            }
            self.cluster.apply_object(m).await?;
            done(report, on_event, &c.addr, c.action);
        }
        Ok(())
    }
}

impl LiveCluster {
    /// Reads the issuers of each mount that publishes a trust bundle, and
    /// each object it publishes into (a Bundle whose kind the cluster does
    /// not serve is an error: trust-manager is not installed).
    async fn observe_trust(
        &self,
        vault: &crate::vault::Vault,
        targets: &[super::trust::Target],
    ) -> Result<Vec<super::trust::TrustObserved>, ProviderError> {
        let issuers = super::trust::read_issuers(vault, targets).await?;
        let now = crate::vault::observe::unix_now();
        let mut out = Vec::with_capacity(targets.len());
        for t in targets {
            if t.object.namespace.is_none() {
                // Discovery: a kind the cluster does not serve fails here,
                // with a hint, rather than at apply.
                self.cluster.resolve(&t.manifest("", "")).await?;
            }
            let live = self.cluster.get_object(&t.object).await?;
            out.push(super::trust::TrustObserved {
                target: t.clone(),
                issuers: issuers.get(&t.mount).cloned().unwrap_or_default(),
                now,
                live,
            });
        }
        Ok(out)
    }

    /// Writes each pending trust bundle after the Vault half: the object is
    /// re-read first (a stale plan stops here), then the mount's issuers
    /// are read again and their bundle is applied.
    async fn apply_trust(
        &self,
        vault: &crate::vault::Vault,
        input: &ApplyInput<'_>,
        plan: &Plan,
        report: &mut crate::vault::apply::ApplyReport,
        on_event: OnEvent<'_>,
    ) -> Result<(), ProviderError> {
        let repo = &input.prepared.repo;
        for (c, t) in super::trust::pending(repo, &plan.changes) {
            let now = self.cluster.get_object(&t.object).await?;
            let Some(pem) = super::trust::bundle_to_publish(vault, c, &t, now.as_ref()).await?
            else {
                continue;
            };
            let held = now.as_ref().and_then(|o| t.held(o));
            let manifest = t.manifest(&pem, &repo.identity);
            if held.as_deref() == Some(pem.as_str())
                && now.as_ref().is_some_and(|o| t.shaped(o, &repo.identity))
            {
                // Already what Vault makes now: nothing to write.
                continue;
            }
            self.cluster.apply_object(&manifest).await?;
            done(report, on_event, &c.addr, c.action);
        }
        Ok(())
    }
}

/// How an object moved since its planned update (`None`: it did not).
fn moved(planned: &Change, now: &ObjectPlan) -> Option<String> {
    if now.action != planned.action {
        return Some(match now.action {
            Action::Create => "it was deleted since".to_string(),
            Action::NoOp => "it already is as planned: someone else changed it".to_string(),
            a => format!("planned: {:?}; now: {a:?}", planned.action),
        });
    }
    let then = planned.before.clone().unwrap_or_default();
    let keys: std::collections::BTreeSet<&str> = then.keys().chain(now.before.keys()).collect();
    for k in keys {
        let (was, is) = (then.get(k), now.before.get(k));
        if was != is {
            let show = |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
            return Some(format!("{k}: was {}, is now {}", show(was), show(is)));
        }
    }
    None
}

/// Records one change made.
fn done(report: &mut ApplyReport, on_event: OnEvent<'_>, addr: &Addr, action: Action) {
    report.applied.push(crate::vault::apply::Applied {
        addr: addr.clone(),
        action,
        issuer_id: None,
    });
    on_event(ApplyEvent::Done {
        addr: addr.clone(),
        action,
    });
}

/// A cluster change from a compared object: what it was generated from
/// and a takeover from another repository said in its reason.
fn object_change(o: Object, identity: &str) -> Change {
    let p = o.plan;
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
    let reason = match (o.generated, taken_from) {
        (Some(g), Some(t)) => Some(format!("{g}; {t}")),
        (g, t) => g.or(t),
    };
    let mut c = change(p.addr, p.action, o.manifest);
    c.before = (p.action != Action::Create).then_some(p.before);
    c.after = Some(p.after);
    c.sensitive = p.sensitive;
    c.reason = reason;
    c
}

/// The drift of one object certplane applied that another field manager
/// changed since ([`super::diff::changed_outside`]), if it did.
fn drift(addr: &Addr, live: &Value, dry_run: &Value, field_manager: &str) -> Option<Drift> {
    let moved = super::diff::changed_outside(live, dry_run, field_manager);
    if moved.is_empty() {
        return None;
    }
    let mut by: Vec<String> = moved.iter().flat_map(|(_, m)| m.clone()).collect();
    by.sort();
    by.dedup();
    Some(Drift {
        addr: addr.clone(),
        fields: moved.into_iter().map(|(f, _)| f).collect(),
        changed_by: by,
        reason: format!(
            "certplane's field manager ({field_manager}) applied these fields; another field \
             manager holds them now"
        ),
    })
}

impl LiveObserved {
    /// The changes and notes of the manifests and of what left the
    /// repository (with `prune`: deletes, in reverse order).
    fn plan_objects(
        objects: Vec<Object>,
        owners: &[(KubeRef, StaleOwner)],
        identity: &str,
        prune: bool,
    ) -> (Vec<Change>, Vec<PlanNote>) {
        let mut changes: Vec<Change> = objects
            .into_iter()
            .map(|o| object_change(o, identity))
            .collect();
        changes.sort_by_key(rank);
        let mut notes = Vec::new();
        for (r, owner) in owners {
            match owner {
                StaleOwner::Gone => {}
                StaleOwner::Other(why) => notes.push(PlanNote {
                    addr: Addr::from(r.clone()),
                    message: format!(
                        "no longer in the repository, and not deleted: {why}; it leaves this \
                         repository's inventory"
                    ),
                    owned: false,
                }),
                StaleOwner::Ours if prune => {
                    let mut c = change(Addr::from(r.clone()), Action::Delete, None);
                    c.reason = Some("no longer in the repository (prune)".into());
                    changes.push(c);
                }
                StaleOwner::Ours => notes.push(PlanNote {
                    addr: Addr::from(r.clone()),
                    message: crate::plan::KEPT_PRUNE_OFF.into(),
                    owned: true,
                }),
            }
        }
        (changes, notes)
    }
}

impl Observation for LiveObserved {
    fn plan(mut self: Box<Self>, input: &PlanInput<'_>, plan: &mut Plan) {
        let repo = &input.prepared.repo;
        let identity = repo.identity.as_str();
        plan.changes
            .extend(self.deliveries.iter().map(|d| d.plan(identity)));
        let drift: Vec<Drift> = self
            .objects
            .iter_mut()
            .filter_map(|o| o.drift.take())
            .collect();
        let (changes, notes) = LiveObserved::plan_objects(
            std::mem::take(&mut self.objects),
            &self.owners,
            identity,
            crate::pipeline::targets::prunes(repo),
        );
        plan.changes.extend(changes);
        plan.notes.extend(notes);
        let published: Vec<Change> = self
            .trust
            .iter()
            .map(|t| super::trust::plan(t, plan, identity))
            .collect();
        plan.changes.extend(published);
        super::trust::gate(plan, &self.trust);
        plan.drift.extend(drift);
        super::reviewer::plan_live(plan, &input.prepared.desired);
        super::deliver_key::preflight(plan, repo, &self.probes);
    }
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

/// Plans `manifests` against the live cluster, in apply order: observes
/// them and the inventory, then plans purely. Objects of the repository's
/// inventory that left it are planned as deletes with `prune` (in reverse
/// order), or noted as kept without it; never one that is gone already or
/// that another repository owns.
pub async fn plan_live(
    cluster: &Cluster,
    manifests: &[Loaded<Value>],
    options: LiveOptions<'_>,
) -> Result<ClusterPlan, ClusterError> {
    let live = LiveCluster::new(cluster.clone());
    let (seen, _) = live
        .observe_manifests(manifests, options.identity, options.also_owned)
        .await?;
    let (changes, notes) =
        LiveObserved::plan_objects(seen.objects, &seen.owners, options.identity, options.prune);
    Ok(ClusterPlan { changes, notes })
}

/// The inventory a plan leaves: every cluster object it keeps.
pub fn current_inventory(changes: &[Change]) -> Inventory {
    Inventory::new(changes.iter().filter_map(|c| match (&c.addr, c.action) {
        (Addr::Kube(k), a) if a != Action::Delete => Some(KubeRef::clone(k)),
        _ => None,
    }))
}

impl Provider for LiveCluster {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn observe<'a>(
        &'a self,
        input: &'a PlanInput<'a>,
        planned: &'a Plan,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, ProviderError>> {
        async move {
            let repo = &input.prepared.repo;
            let deliveries = match input.vault {
                Some(vault) => super::deliver::observe(vault, &self.cluster, repo).await?,
                None => Vec::new(),
            };
            let published = super::trust::targets(repo);
            let mut delivered: Vec<KubeRef> =
                deliveries.iter().map(|d| d.secret().clone()).collect();
            delivered.extend(published.iter().map(|t| t.object.clone()));
            let observed = self
                .observe_manifests(&repo.manifests, &repo.identity, &delivered)
                .await;
            let (mut seen, new_namespaces) = match observed {
                Ok(found) => found,
                Err(e) if crate::pipeline::targets::inventory_only(repo) => {
                    tracing::warn!(
                        error = %crate::vault::error_chain(&e),
                        "cannot read the inventory of this repository in the cluster the \
                         environment names: objects an earlier run applied there are not pruned \
                         this time (set spec.cluster in certplane.yaml to make this an error)"
                    );
                    (LiveObserved::default(), Vec::new())
                }
                Err(e) => return Err(e.into()),
            };
            seen.deliveries = deliveries;
            if let Some(vault) = input.vault {
                seen.trust = self.observe_trust(vault, &published).await?;
            }
            seen.probes =
                super::deliver_key::probe(&self.cluster, planned, repo, &new_namespaces).await;
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
            let mut report = ApplyReport::default();
            if let Some(vault) = input.vault {
                let mut delivered = Vec::new();
                super::deliver::apply(vault, &self.cluster, &plan.changes, &mut |a, act| {
                    delivered.push((a.clone(), act));
                })
                .await?;
                for (addr, action) in delivered {
                    done(&mut report, on_event, &addr, action);
                }
            }
            self.apply_objects(plan, &mut report, on_event).await?;
            if let Some(vault) = input.vault {
                self.apply_trust(vault, input, plan, &mut report, on_event)
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
        async move {
            let identity = input.prepared.repo.identity.as_str();
            let mut report = ApplyReport::default();
            let deletes: Vec<KubeRef> = plan
                .changes
                .iter()
                .filter(|c| c.kind == ResourceKind::ClusterObject && c.action == Action::Delete)
                .filter_map(|c| match &c.addr {
                    Addr::Kube(k) => Some(KubeRef::clone(k)),
                    Addr::Vault(_) => None,
                })
                .collect();
            let pruned = self.cluster.prune(&deletes).await;
            for r in &pruned.deleted {
                done(
                    &mut report,
                    on_event,
                    &Addr::from(r.clone()),
                    Action::Delete,
                );
            }
            for (obj, why) in &pruned.failed {
                tracing::warn!(object = %obj, error = %why, "prune failed; kept in the inventory");
            }
            let mut next = current_inventory(&plan.changes);
            next.entries
                .extend(pruned.failed.iter().map(|(r, _)| r.clone()));
            next.entries
                .extend(
                    plan.notes
                        .iter()
                        .filter(|n| n.owned)
                        .filter_map(|n| match &n.addr {
                            Addr::Kube(k) => Some(KubeRef::clone(k)),
                            Addr::Vault(_) => None,
                        }),
                );
            let previous = self.cluster.read_inventory(identity).await?;
            if previous.entries != next.entries {
                self.cluster.write_inventory(identity, &next).await?;
            }
            Ok(report)
        }
        .boxed_local()
    }

    fn secrets(&self) -> Option<&dyn SecretStore> {
        Some(self)
    }
}

impl SecretStore for LiveCluster {
    fn deliver_keys<'a>(
        &'a self,
        repo: &'a Repository,
        keys: &'a [ExportedKey],
    ) -> LocalBoxFuture<'a, Result<Vec<Addr>, ProviderError>> {
        async move { Ok(super::deliver_key::deliver(&self.cluster, repo, keys).await?) }
            .boxed_local()
    }

    fn read_secrets<'a>(
        &'a self,
        later: &'a [Change],
        desired: &'a Desired,
    ) -> LocalBoxFuture<'a, Result<SecretSources, ProviderError>> {
        async move {
            let wait = super::reviewer::TOKEN_WAIT;
            Ok(super::reviewer::resolve(&self.cluster, later, desired, wait).await?)
        }
        .boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(before: Value) -> Change {
        let mut c = change(
            Addr::from(KubeRef {
                group: "cert-manager.io".into(),
                version: "v1".into(),
                kind: "Issuer".into(),
                namespace: Some("sandbox".into()),
                name: "vi".into(),
            }),
            Action::Update,
            None,
        );
        c.before = Some(before.as_object().unwrap().clone().into_iter().collect());
        c
    }

    fn now(action: Action, before: Value) -> ObjectPlan {
        ObjectPlan {
            addr: update(json!({})).addr,
            action,
            before: before.as_object().unwrap().clone().into_iter().collect(),
            after: Default::default(),
            sensitive: vec![],
        }
    }

    #[tokio::test]
    async fn a_slow_object_does_not_hold_back_the_others_and_order_is_kept() {
        // The first object finishes only after the last one has started: a
        // window that waits for its head would never start the last one.
        let n = OBJECTS_IN_FLIGHT + 4;
        let last_started = tokio::sync::Notify::new();
        let running = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        let observe = |i: usize| {
            let (last_started, running, most) = (&last_started, &running, &most);
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                if i == n - 1 {
                    last_started.notify_one();
                }
                if i == 0 {
                    last_started.notified().await;
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis((n - i) as u64)).await;
                }
                running.fetch_sub(1, SeqCst);
                Ok::<_, ClusterError>(i * 10)
            }
        };
        let done =
            tokio::time::timeout(std::time::Duration::from_secs(10), in_order(0..n, observe))
                .await
                .expect("the window waited for its slowest object")
                .unwrap();
        assert_eq!(done, (0..n).map(|i| i * 10).collect::<Vec<_>>());
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(most <= OBJECTS_IN_FLIGHT, "{most} objects observed at once");
    }

    #[test]
    fn an_update_moved_when_its_planned_fields_did() {
        let c = update(json!({"spec.vault.path": "pki/sign/a"}));
        assert_eq!(
            moved(
                &c,
                &now(Action::Update, json!({"spec.vault.path": "pki/sign/a"}))
            ),
            None
        );
        assert_eq!(
            moved(
                &c,
                &now(Action::Update, json!({"spec.vault.path": "pki/sign/b"}))
            ),
            Some("spec.vault.path: was \"pki/sign/a\", is now \"pki/sign/b\"".into())
        );
        let other = now(
            Action::Update,
            json!({"spec.vault.path": "pki/sign/a", "spec.vault.server": "https://x"}),
        );
        assert_eq!(
            moved(&c, &other),
            Some("spec.vault.server: was (none), is now \"https://x\"".into())
        );
        assert_eq!(
            moved(&c, &now(Action::Create, json!({}))),
            Some("it was deleted since".into())
        );
        assert!(moved(&c, &now(Action::NoOp, json!({}))).is_some());
    }
}
