//! The lock, apply and prune steps, in the order the targets depend on
//! each other:
//!
//! 1. the cluster's Namespaces (everything namespaced lives in one; an
//!    exported key or a secret ID is written into one);
//! 2. Vault (the cluster's objects refer to it), cut after the last
//!    intermediate whose key is exported: the key is delivered right then,
//!    so a later failure cannot lose it;
//! 3. the rest of the cluster half (AppRole secret IDs first, then the
//!    manifests in kind order);
//! 4. the Vault changes that read a secret from the cluster (a token
//!    reviewer's token, see [`crate::cluster::reviewer`]);
//! 5. prune: Vault's deletes, then the cluster's, and the inventory.
//!
//! Planning never locks; [`apply_locked`] takes the apply lock, plans again
//! under it, checks that plan against what was approved, and applies it.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::error::{Failure, Step, StepError};
use super::prepare::Prepared;
use super::provider::{ApplyInput, OnEvent, PlanOptions, Provider, ProviderError};
use super::targets::Targets;
use super::vault::VaultProvider;
use crate::addr::Addr;
use crate::plan::{Action, Approved, Change, Plan};
use crate::vault::apply::{ApplyEvent, ApplyOptions, ApplyReport, Waiting};
use crate::vault::lock::{Holder, LockSettings};
use crate::vault::{ApplyError, Vault};

/// What an apply did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Every change made, in order, on every target (an issuer's live id
    /// when it made one).
    pub changes: Vec<crate::vault::apply::Applied>,
    /// Intermediates waiting for a manual signature.
    pub waiting: Vec<Waiting>,
}

impl Applied {
    fn absorb(&mut self, report: ApplyReport) {
        if self.changes.is_empty() {
            self.changes = report.applied;
        } else {
            self.changes.extend(report.applied);
        }
        self.waiting.extend(report.waiting);
    }

    /// How many changes of `action` were made.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// How an apply takes the apply lock ([`crate::vault::lock`]).
#[derive(Clone, Debug)]
pub struct Locking {
    /// Where the lock lives and how long to wait for it.
    pub settings: LockSettings,
    /// Who this process is, for the record (and another's error message).
    pub holder: Holder,
}

/// What the caller agreed to apply.
#[derive(Clone, Copy, Debug)]
pub enum Approval<'a> {
    /// Exactly this plan (shown and confirmed, or saved by `plan --out`),
    /// reduced to what it writes: a plan made again before applying that
    /// differs stops with "plan is stale".
    Exactly(&'a Approved),
    /// Whatever the plan under the lock is (`run`, `watch --apply`).
    Replan,
}

impl Approval<'_> {
    /// Whether `now`, the plan about to be applied, is what was approved:
    /// "plan is stale" with the first change that differs if not.
    pub(crate) fn check(&self, now: &Plan) -> Result<(), StepError> {
        match self {
            Approval::Exactly(approved) => match approved.first_difference(now) {
                Some((addr, why)) => Err(StepError::new(Step::Plan, Failure::Stale { addr, why })),
                None => Ok(()),
            },
            Approval::Replan => Ok(()),
        }
    }
}

/// What [`apply_locked`] did.
#[derive(Debug)]
pub enum LockedApply {
    /// Applied the plan made under the lock.
    Applied {
        /// That plan.
        plan: Plan,
        /// What was done.
        done: Applied,
    },
    /// Under the lock there was nothing left to change (another certplane
    /// applied it meanwhile); nothing was written but the lock.
    NothingToDo,
}

/// Applies `plan` to every target, in dependency order (see the module
/// doc), then prunes. Without the apply lock: modes use [`apply_locked`].
pub async fn apply(
    targets: Targets<'_>,
    prepared: &Prepared,
    plan: &Plan,
    options: ApplyOptions<'_>,
    on_event: OnEvent<'_>,
) -> Result<Applied, StepError> {
    if !plan.errored.is_empty() {
        let errored = ApplyError::Errored {
            count: plan.errored.len(),
        };
        return Err(StepError::new(Step::Apply, ProviderError::from(errored)));
    }
    let input = ApplyInput {
        prepared,
        vault: targets.vault,
        options,
    };
    let mut done = Applied::default();
    write(targets, &input, plan, &mut done, on_event)
        .await
        .map_err(|f| StepError::new(Step::Apply, f))?;
    prune(targets, &input, plan, &mut done, on_event)
        .await
        .map_err(|f| StepError::new(Step::Prune, f))?;
    Ok(done)
}

/// Steps 1 to 4 of the module doc.
async fn write(
    targets: Targets<'_>,
    input: &ApplyInput<'_>,
    plan: &Plan,
    done: &mut Applied,
    on_event: OnEvent<'_>,
) -> Result<(), Failure> {
    let (namespaces, rest) = split_off_namespaces(plan);
    if let Some(cluster) = targets.cluster {
        done.absorb(cluster.apply(input, &namespaces, on_event).await?);
    }
    let store = targets.cluster.and_then(|c| c.secrets());
    let (first, later) = match store {
        Some(_) => crate::cluster::reviewer::split(&rest, &input.prepared.desired),
        None => (Cow::Borrowed(&*rest), Vec::new()),
    };
    let vault_pending = plan.pending().any(|c| c.addr.vault_path().is_some());
    match targets.vault {
        Some(vault) => write_vault(vault, targets.cluster, input, &first, done, on_event).await?,
        None if vault_pending || !later.is_empty() => return Err(Failure::NoVault),
        None => {}
    }
    if let Some(cluster) = targets.cluster {
        done.absorb(cluster.apply(input, &first, on_event).await?);
    }
    if let (Some(vault), Some(store), false) = (targets.vault, store, later.is_empty()) {
        let read = store.read_secrets(&later, &input.prepared.desired).await?;
        let mut secrets = crate::vault::apply::secret_sources(&input.prepared.desired);
        for (addr, keys) in read {
            secrets.entry(addr).or_default().extend(keys);
        }
        let created = created_by(done);
        let rest = Plan {
            changes: later,
            ..Plan::default()
        };
        let options = ApplyOptions {
            created: Some(&created),
            ..input.options
        };
        let input = ApplyInput { options, ..*input };
        let provider = VaultProvider::new(vault);
        done.absorb(
            provider
                .apply_with_secrets(&input, &rest, &secrets, on_event)
                .await?,
        );
    }
    Ok(())
}

/// The Vault half: up to the last intermediate whose key is exported, the
/// keys delivered, then the rest.
async fn write_vault(
    vault: &Vault,
    cluster: Option<&dyn Provider>,
    input: &ApplyInput<'_>,
    plan: &Plan,
    done: &mut Applied,
    on_event: OnEvent<'_>,
) -> Result<(), Failure> {
    let provider = VaultProvider::new(vault);
    let repo = &input.prepared.repo;
    let cut = crate::cluster::deliver_key::last_exporting(plan, repo);
    let (head, tail) = match cut {
        Some(i) => (
            Cow::Owned(part(plan, &plan.changes[..=i])),
            Some(part(plan, &plan.changes[i + 1..])),
        ),
        None => (Cow::Borrowed(plan), None),
    };
    let report = provider.apply(input, &head, on_event).await?;
    let exported = report.exported.clone();
    done.absorb(report);
    if !exported.is_empty() {
        let Some(store) = cluster.and_then(|c| c.secrets()) else {
            return Err(ProviderError::KeyWithoutCluster {
                issuer: exported[0].addr.to_string(),
            }
            .into());
        };
        for addr in store.deliver_keys(repo, &exported).await? {
            on_event(ApplyEvent::Done {
                addr,
                action: Action::Update,
            });
        }
    }
    if let Some(tail) = tail {
        let created = created_by(done);
        let options = ApplyOptions {
            created: Some(&created),
            ..input.options
        };
        let input = ApplyInput { options, ..*input };
        done.absorb(provider.apply(&input, &tail, on_event).await?);
    }
    Ok(())
}

/// Step 5: each target's deletes, and what it owns now.
async fn prune(
    targets: Targets<'_>,
    input: &ApplyInput<'_>,
    plan: &Plan,
    done: &mut Applied,
    on_event: OnEvent<'_>,
) -> Result<(), Failure> {
    if let Some(vault) = targets.vault {
        done.absorb(
            VaultProvider::new(vault)
                .prune(input, plan, on_event)
                .await?,
        );
    }
    if let Some(cluster) = targets.cluster {
        done.absorb(cluster.prune(input, plan, on_event).await?);
    }
    Ok(())
}

/// `changes` with the errors of `plan` (an errored plan stays refused).
fn part(plan: &Plan, changes: &[Change]) -> Plan {
    Plan {
        changes: changes.to_vec(),
        errored: plan.errored.clone(),
        ..Plan::default()
    }
}

/// The plan's Namespace changes, and the rest (the plan itself when it
/// has no Namespace: a plan of 10,000 Vault changes is not copied).
fn split_off_namespaces(plan: &Plan) -> (Plan, Cow<'_, Plan>) {
    let is_namespace = |c: &Change| matches!(&c.addr, Addr::Kube(k) if k.group.is_empty() && k.kind == "Namespace");
    let with = |changes| Plan {
        changes,
        errored: plan.errored.clone(),
        notes: plan.notes.clone(),
        warnings: plan.warnings.clone(),
        drift: plan.drift.clone(),
    };
    if !plan.changes.iter().any(is_namespace) {
        return (with(Vec::new()), Cow::Borrowed(plan));
    }
    let (ns, rest): (Vec<Change>, Vec<Change>) =
        plan.changes.iter().cloned().partition(is_namespace);
    (with(ns), Cow::Owned(with(rest)))
}

/// What an apply created (so that a later part of the same apply does not
/// take a resource under a new mount for a stale plan).
fn created_by(done: &Applied) -> BTreeSet<Addr> {
    done.changes
        .iter()
        .filter(|a| matches!(a.action, Action::Create | Action::Replace))
        .map(|a| a.addr.clone())
        .collect()
}

/// Applies under the apply lock, for a plan made without it that has
/// changes: takes the lock (waiting as `locking` says), observes and plans
/// again under it, checks the new plan against what was approved, applies
/// it while renewing the lock, and releases the lock on success, on error
/// and when `stop` asks to stop (checked before every Vault change).
#[allow(clippy::too_many_arguments)] // One entry point for every mode; each argument is a different concern.
pub async fn apply_locked(
    vault: &Vault,
    cluster: Option<&dyn Provider>,
    prepared: &Prepared,
    options: PlanOptions,
    approval: Approval<'_>,
    locking: &Locking,
    stop: &(dyn Fn() -> Option<String> + Sync),
    on_event: OnEvent<'_>,
) -> Result<LockedApply, StepError> {
    let targets = Targets::new(Some(vault), cluster);
    let interrupted = || stop().is_some();
    let lock = crate::vault::lock::acquire(vault, &locking.settings, &locking.holder, &interrupted)
        .await
        .map_err(|e| StepError::new(Step::Lock, e))?;
    let body = async {
        let plan = super::plan::plan(targets, prepared, options).await?;
        if !plan.errored.is_empty() {
            let errored = ApplyError::Errored {
                count: plan.errored.len(),
            };
            return Err(StepError::new(Step::Plan, ProviderError::from(errored)));
        }
        if !plan.has_changes() {
            tracing::info!("under the apply lock there is nothing left to change");
            return Ok(LockedApply::NothingToDo);
        }
        approval.check(&plan)?;
        let guard = || {
            lock.lost()
                .map(|why| format!("the apply lock was lost: {why}"))
                .or_else(stop)
        };
        let apply_options = ApplyOptions {
            stop: Some(&guard),
            state_mount: Some(lock.mount()),
            created: None,
            part: Default::default(),
        };
        let done = apply(targets, prepared, &plan, apply_options, on_event).await?;
        Ok(LockedApply::Applied { plan, done })
    };
    let result = lock.hold(vault, body).await;
    if let Err(e) = lock.release(vault).await {
        tracing::warn!(error = %crate::vault::error_chain(&e), "cannot release the apply lock (its lease ends by itself)");
    }
    result
}
