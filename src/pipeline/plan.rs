//! The observe and plan steps over every target: Vault first, then the
//! cluster half (whose plan may depend on Vault's: a token reviewer's
//! config written again, an exported key checked before it is made).

use super::error::{Failure, Step, StepError};
use super::prepare::Prepared;
use super::provider::{PlanInput, PlanOptions, Provider};
use super::targets::{Targets, needs_vault};
use super::vault::{VaultProvider, observe_vault};
use crate::plan::Plan;
use crate::state::Desired;
use crate::vault::{Vault, VaultError};

/// Reads the live state of every target and plans against it. With
/// `prune: true`, what the repository no longer declares is planned as
/// deletes (never what another repository owns).
pub async fn plan(
    targets: Targets<'_>,
    prepared: &Prepared,
    options: PlanOptions,
) -> Result<Plan, StepError> {
    let input = PlanInput {
        prepared,
        options,
        vault: targets.vault,
    };
    let mut plan = Plan::default();
    match targets.vault {
        Some(vault) => plan_target(&VaultProvider::new(vault), &input, &mut plan).await?,
        None if needs_vault(prepared) => {
            return Err(StepError::new(Step::Observe, Failure::NoVault));
        }
        None => {}
    }
    if let Some(cluster) = targets.cluster {
        plan_target(cluster, &input, &mut plan).await?;
    }
    Ok(plan)
}

/// Observes one target, then plans from what it read. Logs (at debug) how
/// long that took: the target's requests and the comparison of their
/// replies, without the repository read before it (`make bench` compares
/// the cluster's with the same requests sent raw).
async fn plan_target(
    target: &dyn Provider,
    input: &PlanInput<'_>,
    plan: &mut Plan,
) -> Result<(), StepError> {
    let started = std::time::Instant::now();
    let seen = target
        .observe(input, plan)
        .await
        .map_err(|e| StepError::new(Step::Observe, e))?;
    seen.plan(input, plan);
    tracing::debug!(
        target = target.name(),
        changes = plan.pending().count(),
        ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
        "planned"
    );
    Ok(())
}

/// Reads the live Vault state and plans against it (Vault half only,
/// without the ownership survey).
pub async fn observe_and_plan(vault: &Vault, desired: &Desired) -> Result<Plan, VaultError> {
    let observed = observe_vault(vault, desired).await?;
    Ok(crate::plan::plan(desired, &observed))
}
