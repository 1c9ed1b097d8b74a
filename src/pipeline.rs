//! The one pipeline every mode runs: load -> validate -> lower -> observe ->
//! plan -> apply. Commands only decide how far to go and what to print.

use std::path::Path;

use crate::diagnostic::Diagnostics;
use crate::model::Repository;
use crate::plan::Plan;
use crate::state::Desired;
use crate::vault::{Vault, VaultError, VaultSettings};

/// A repository that loaded and passed every offline check, lowered to the
/// desired Vault state.
#[derive(Debug)]
pub struct Prepared {
    /// The typed repository.
    pub repo: Repository,
    /// What Vault should hold.
    pub desired: Desired,
}

/// Loads, validates and lowers `dir`. Any problem is returned with every
/// diagnostic found; nothing has touched the network yet.
pub fn prepare(dir: &Path) -> Result<Prepared, Diagnostics> {
    let repo = crate::load::load(dir)?;
    let problems = crate::validate::validate(&repo);
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    let desired = crate::desired::build(&repo)?;
    tracing::info!(
        dir = %dir.display(),
        objects = repo.vault.len(),
        resources = desired.resources.len(),
        "repository loaded and valid"
    );
    for r in &desired.resources {
        tracing::trace!(addr = %r.addr, kind = ?r.kind, fields = r.fields.len(), "desired");
    }
    Ok(Prepared { repo, desired })
}

/// Connects to the Vault the repository (or the environment) names: one
/// login for the whole run.
pub async fn connect(repo: &Repository) -> Result<Vault, VaultError> {
    let target = repo.config.as_ref().and_then(|c| c.spec.vault.as_ref());
    let settings = VaultSettings::resolve(target)?;
    let vault = Vault::connect(&settings).await?;
    tracing::info!(address = %settings.address, "connected to vault");
    Ok(vault)
}

/// Reads the live state and plans against it.
pub async fn observe_and_plan(vault: &Vault, desired: &Desired) -> Result<Plan, VaultError> {
    let started = std::time::Instant::now();
    let observed = crate::vault::observe(vault, desired).await?;
    let counts = vault.requests_made();
    tracing::info!(
        existing = observed.resources.len(),
        reads = counts.reads,
        ms = started.elapsed().as_millis() as u64,
        "observed vault"
    );
    let plan = crate::plan::plan(desired, &observed);
    for c in &plan.changes {
        tracing::debug!(addr = %c.addr, action = ?c.action, reason = c.reason.as_deref().unwrap_or(""), "planned");
    }
    Ok(plan)
}
