//! Vault behind the [`Provider`] trait: the seams of [`crate::vault`] and
//! [`crate::plan`] (observe, the ownership survey, the pure plan, apply),
//! wrapped, not re-implemented.

use futures::FutureExt as _;
use futures::future::LocalBoxFuture;

use super::provider::{ApplyInput, Observation, OnEvent, PlanInput, Provider, ProviderError};
use crate::plan::{Action, Change, Plan, Streamed};
use crate::state::{Desired, Observed, Ownership};
use crate::vault::apply::{ApplyOptions, ApplyReport, Part};
use crate::vault::{SecretSources, Vault, VaultError};

/// The Vault of a run.
#[derive(Clone, Copy, Debug)]
pub struct VaultProvider<'v> {
    vault: &'v Vault,
}

impl<'v> VaultProvider<'v> {
    /// The provider for a logged-in Vault.
    pub fn new(vault: &'v Vault) -> VaultProvider<'v> {
        VaultProvider { vault }
    }

    /// Applies the Vault changes of `plan` with `secrets` (the
    /// repository's sources plus what was read from the cluster).
    pub async fn apply_with_secrets(
        &self,
        input: &ApplyInput<'_>,
        plan: &Plan,
        secrets: &SecretSources,
        on_event: OnEvent<'_>,
    ) -> Result<ApplyReport, ProviderError> {
        Ok(crate::vault::apply_with(self.vault, plan, secrets, input.options, on_event).await?)
    }
}

/// What Vault holds of the desired state, and which of its objects are
/// whose. The resources compared field by field were planned while they
/// were read (their replies are not kept); the CAs are planned here.
struct VaultObserved {
    observed: Observed,
    /// The changes planned as the replies arrived, taken by the one
    /// [`Observation::plan`] call.
    planned: std::sync::Mutex<Streamed>,
    owned: Ownership,
}

impl Observation for VaultObserved {
    fn plan(self: Box<Self>, input: &PlanInput<'_>, plan: &mut Plan) {
        let prepared = input.prepared;
        let identity = prepared.repo.identity.as_str();
        let planned = self
            .planned
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        let mut own = crate::plan::plan_streamed(&prepared.desired, &self.observed, planned);
        crate::plan::ownership(
            &mut own,
            &self.owned,
            crate::plan::OwnershipOptions {
                identity,
                prune: prepared.repo.config.as_ref().is_some_and(|c| c.spec.prune),
                allow_destroy_ca: input.options.allow_destroy_ca,
            },
        );
        for c in &own.changes {
            tracing::debug!(
                addr = %c.addr,
                action = ?c.action,
                reason = c.reason.as_deref().unwrap_or(""),
                "planned"
            );
        }
        own.warnings.extend(crate::plan::findings::live(
            &prepared.repo,
            &prepared.desired,
            &self.observed,
            &own.changes,
        ));
        if plan.changes.is_empty() {
            // Vault is planned first: its list becomes the plan's (not a copy).
            plan.changes = own.changes;
        } else {
            plan.changes.extend(own.changes);
        }
        plan.errored.extend(own.errored);
        plan.notes.extend(own.notes);
        plan.warnings.extend(own.warnings);
    }
}

/// Reads the live Vault state of `desired` (Vault half only): what `plan`
/// compares against.
pub async fn observe_vault(vault: &Vault, desired: &Desired) -> Result<Observed, VaultError> {
    let started = std::time::Instant::now();
    let observed = crate::vault::observe(vault, desired).await?;
    log_observed(vault, observed.resources.len(), started);
    Ok(observed)
}

fn log_observed(vault: &Vault, existing: usize, started: std::time::Instant) {
    let counts = vault.requests_made();
    tracing::info!(
        existing,
        reads = counts.reads,
        ms = started.elapsed().as_millis() as u64,
        "observed vault"
    );
}

/// Reads the live Vault state of `desired` and plans each resource
/// compared field by field as its reply arrives (the reply is then
/// dropped): the CA state, and those changes by index of `desired`.
async fn observe_and_plan_streamed(
    vault: &Vault,
    desired: &Desired,
) -> Result<(Observed, Streamed), VaultError> {
    let started = std::time::Instant::now();
    let mut planned = Streamed::new(desired);
    let mut existing = 0;
    let observed = crate::vault::observe::observe_streamed(vault, desired, |i, r, live, mounts| {
        existing += usize::from(live.is_some());
        planned.plan(i, r, live.as_ref(), mounts);
    })
    .await?;
    log_observed(vault, existing, started);
    Ok((observed, planned))
}

impl Provider for VaultProvider<'_> {
    fn name(&self) -> &'static str {
        "vault"
    }

    fn observe<'a>(
        &'a self,
        input: &'a PlanInput<'a>,
        _planned: &'a Plan,
    ) -> LocalBoxFuture<'a, Result<Box<dyn Observation>, ProviderError>> {
        async move {
            let desired = &input.prepared.desired;
            let identity = input.prepared.repo.identity.as_str();
            let (observed, planned) = observe_and_plan_streamed(self.vault, desired).await?;
            let owned = crate::vault::prune::survey(self.vault, desired, identity).await?;
            Ok(Box::new(VaultObserved {
                observed,
                planned: std::sync::Mutex::new(planned),
                owned,
            }) as Box<dyn Observation>)
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
            let secrets = crate::vault::apply::secret_sources(&input.prepared.desired);
            let input = part(input, Part::Writes);
            self.apply_with_secrets(&input, plan, &secrets, on_event)
                .await
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
            let deletes = |c: &Change| c.addr.vault_path().is_some() && c.action == Action::Delete;
            if !plan.pending().any(deletes) {
                return Ok(ApplyReport::default());
            }
            let secrets = SecretSources::new();
            let input = part(input, Part::Deletes);
            self.apply_with_secrets(&input, plan, &secrets, on_event)
                .await
        }
        .boxed_local()
    }
}

/// `input`, applying only `part` of the plan.
fn part<'a>(input: &ApplyInput<'a>, part: Part) -> ApplyInput<'a> {
    ApplyInput {
        options: ApplyOptions {
            part,
            ..input.options
        },
        ..*input
    }
}
