//! [`Driver`]: the pipeline as every mode runs it. It owns the Vault
//! session ([`super::session`]) and the cluster connection across runs, and
//! says which step failed ([`StepError`]). Each of its methods runs the
//! steps up to its own: [`Driver::prepare`] (load to lower),
//! [`Driver::plan`] (observe, plan), [`Driver::apply`] (lock, apply,
//! prune), [`Driver::verify`]; modes only decide when to call them and what
//! to print.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::apply::{Applied, Approval, LockedApply, Locking, apply, apply_locked};
use super::error::{Failure, Step, StepError};
use super::prepare::{PrepareOptions, Prepared, prepare_steps};
use super::provider::{OnEvent, PlanOptions, Provider};
use super::session::{Session, SessionError, SessionStats};
use super::targets::{ClusterPlace, Targets, cluster_place, connect_cluster, needs_vault_for};
use crate::model::Repository;
use crate::operator::Operator;
use crate::plan::Plan;
use crate::vault::lock::{Holder, LockRecord, LockSettings};
use crate::vault::{ApplyOptions, Vault};
use crate::verify::IssuerReport;

/// What a driver is set up with for its whole life (a mode's flags).
#[derive(Clone, Debug, Default)]
pub struct DriverSettings {
    /// `--render DIR`: the cluster half goes to files (never loaded as
    /// input).
    pub render: Option<PathBuf>,
    /// The repository identity when `certplane.yaml` names none (`run`
    /// derives it from the Git URL).
    pub identity: Option<String>,
    /// The run's choices (`--allow-destroy-ca`).
    pub plan: PlanOptions,
    /// How applies take the apply lock (default: the default mount, no
    /// waiting, this process as holder).
    pub locking: Option<Locking>,
    /// Whose rules apply (default: this process's operator).
    pub operator: Option<Operator>,
}

/// The cluster provider for one place, kept while the place stays.
struct Connected {
    place: ClusterPlace,
    provider: Option<Box<dyn Provider>>,
}

/// The pipeline of one process: its settings, its Vault session, its
/// cluster connection.
pub struct Driver {
    settings: DriverSettings,
    operator: Operator,
    session: Session,
    cluster: Option<Connected>,
    /// The input ([`super::hash`]) this driver last applied in full or
    /// found in sync: a later plan's changes for it are drift.
    applied: Option<String>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("settings", &self.settings)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver; nothing is connected until a step needs it.
    pub fn new(settings: DriverSettings) -> Driver {
        let operator = settings
            .operator
            .clone()
            .unwrap_or_else(crate::operator::current);
        Driver {
            settings,
            operator,
            session: Session::new(),
            cluster: None,
            applied: None,
        }
    }

    /// Logins and renewals of the Vault session so far.
    pub fn session_stats(&self) -> SessionStats {
        self.session.stats()
    }

    /// When the Vault token next needs renewing ([`Driver::keep_alive`]).
    pub fn renew_at(&self) -> Option<Instant> {
        self.session.renew_at()
    }

    /// Renews the Vault token when it is due (between runs).
    pub async fn keep_alive(&mut self) -> Result<(), StepError> {
        self.session
            .keep_alive()
            .await
            .map_err(|e| StepError::new(Step::Observe, e))
    }

    /// Load to plan on the repository in `dir`: the offline steps, then
    /// connect, observe and plan.
    pub async fn planned(&mut self, dir: &Path) -> Result<(Prepared, Plan), StepError> {
        let prepared = self.prepare(dir)?;
        let plan = self.plan(&prepared).await?;
        Ok((prepared, plan))
    }

    fn prepare_options<'a>(
        &'a self,
        live: Option<&'a crate::validate::Live>,
    ) -> PrepareOptions<'a> {
        PrepareOptions {
            live,
            render: self.settings.render.as_deref(),
            identity: self.settings.identity.as_deref(),
            operator: Some(&self.operator),
        }
    }

    /// Load, expand, validate, lower: the offline steps.
    pub fn prepare(&self, dir: &Path) -> Result<Prepared, StepError> {
        prepare_steps(dir, self.prepare_options(None)).map_err(|(s, d)| StepError::invalid(s, d))
    }

    /// The offline steps, where references the repository does not declare
    /// may name what the live Vault has (`validate --live`). The repository
    /// is loaded (and its Vault settings checked) before any network call.
    pub async fn prepare_live(&mut self, dir: &Path) -> Result<Prepared, StepError> {
        let repo = super::prepare::load_checked(dir, &self.operator)
            .map_err(|d| StepError::invalid(Step::Load, d))?;
        let vault = self.vault_for(&repo).await?;
        let live = crate::vault::observe::live_references(&vault)
            .await
            .map_err(|e| StepError::new(Step::Observe, SessionError::from(e)))?;
        prepare_steps(dir, self.prepare_options(Some(&live)))
            .map_err(|(s, d)| StepError::invalid(s, d))
    }

    /// The Vault of `repo`'s settings, from the session (logging in when
    /// needed).
    pub async fn vault_for(&mut self, repo: &Repository) -> Result<Arc<Vault>, StepError> {
        let observe = |e| StepError::new(Step::Observe, e);
        let settings = super::targets::vault_settings(repo, &self.operator)
            .map_err(|e| observe(SessionError::from(e)))?;
        let vault = self.session.vault(&settings).await.map_err(observe)?;
        Ok(vault)
    }

    /// The Vault, when the repository needs one.
    async fn vault_if_needed(
        &mut self,
        prepared: &Prepared,
    ) -> Result<Option<Arc<Vault>>, StepError> {
        if needs_vault_for(prepared, &self.operator) {
            self.vault_for(&prepared.repo).await.map(Some)
        } else {
            tracing::info!("the repository has no Vault objects: not connecting to Vault");
            Ok(None)
        }
    }

    /// The cluster provider of the repository (kept while it goes to the
    /// same place).
    async fn cluster_for(&mut self, repo: &Repository) -> Result<Option<&dyn Provider>, StepError> {
        let place = cluster_place(repo, self.settings.render.as_deref());
        let keep = self
            .cluster
            .as_ref()
            .is_some_and(|c| c.place == place && c.provider.is_some());
        if !keep {
            let provider = connect_cluster(&place)
                .await
                .map_err(|e| StepError::new(Step::Observe, Failure::Cluster(e)))?;
            self.cluster = Some(Connected { place, provider });
        }
        Ok(self.cluster.as_ref().and_then(|c| c.provider.as_deref()))
    }

    /// After a failure: whether the Vault token died (revoked or expired);
    /// the session then logs in again at its next use.
    async fn token_died(&mut self, e: &StepError) -> bool {
        match e.vault_error() {
            Some(v) => self.session.token_died(v).await,
            None => false,
        }
    }

    /// Everything up to a plan: connect, observe, plan. A token found dead
    /// on the way is replaced (a new login) and the plan made again, once.
    pub async fn plan(&mut self, prepared: &Prepared) -> Result<Plan, StepError> {
        let mut plan = match self.plan_once(prepared).await {
            Err(e) if self.token_died(&e).await => self.plan_once(prepared).await,
            other => other,
        }?;
        let input = input_of(prepared);
        self.mark_drift(input.as_deref(), &mut plan);
        if !plan.has_changes() && plan.errored.is_empty() {
            self.applied = input;
        }
        Ok(plan)
    }

    /// Marks the changes of a plan for the input applied before as drift.
    fn mark_drift(&self, input: Option<&str>, plan: &mut Plan) {
        if input.is_some() && self.applied.as_deref() == input {
            super::drift::since_applied(plan);
        }
        for d in &plan.drift {
            tracing::info!(
                addr = %d.addr,
                fields = %d.fields.join(", "),
                changed_by = %d.changed_by.join(", "),
                "drift: {}",
                d.reason
            );
        }
    }

    async fn plan_once(&mut self, prepared: &Prepared) -> Result<Plan, StepError> {
        let vault = self.vault_if_needed(prepared).await?;
        let options = self.settings.plan;
        let cluster = self.cluster_for(&prepared.repo).await?;
        let targets = Targets::new(vault.as_deref(), cluster);
        super::plan::plan(targets, prepared, options).await
    }

    /// Lock, apply, prune: applies what `approval` says under the apply
    /// lock (a plan made again under it); without Vault (no Vault objects)
    /// there is nothing to lock and the plan is applied as it is. A token
    /// found dead before anything was written is replaced and the apply
    /// tried again, once.
    pub async fn apply(
        &mut self,
        prepared: &Prepared,
        approval: Approval<'_>,
        stop: &(dyn Fn() -> Option<String> + Sync),
        on_event: OnEvent<'_>,
    ) -> Result<LockedApply, StepError> {
        let mut got = match self.apply_once(prepared, approval, stop, on_event).await {
            Err(e) if e.step() < Step::Apply && self.token_died(&e).await => {
                self.apply_once(prepared, approval, stop, on_event).await
            }
            Err(e) => {
                self.token_died(&e).await;
                Err(e)
            }
            ok => ok,
        }?;
        let input = input_of(prepared);
        if let LockedApply::Applied { plan, .. } = &mut got {
            self.mark_drift(input.as_deref(), plan);
        }
        self.applied = input;
        Ok(got)
    }

    async fn apply_once(
        &mut self,
        prepared: &Prepared,
        approval: Approval<'_>,
        stop: &(dyn Fn() -> Option<String> + Sync),
        on_event: OnEvent<'_>,
    ) -> Result<LockedApply, StepError> {
        let vault = self.vault_if_needed(prepared).await?;
        let options = self.settings.plan;
        let locking = self.locking(&prepared.repo)?;
        let cluster = self.cluster_for(&prepared.repo).await?;
        let Some(vault) = vault else {
            return apply_without_vault(cluster, prepared, options, approval, on_event).await;
        };
        apply_locked(
            &vault, cluster, prepared, options, approval, &locking, stop, on_event,
        )
        .await
    }

    fn locking(&self, repo: &Repository) -> Result<Locking, StepError> {
        if let Some(l) = &self.settings.locking {
            return Ok(l.clone());
        }
        let settings = LockSettings::new(None, std::time::Duration::ZERO)
            .map_err(|e| StepError::new(Step::Lock, e))?;
        Ok(Locking {
            settings,
            holder: Holder::current(repo.root.display().to_string()),
        })
    }

    /// Load to lower, then the verify step: each Vault Issuer checked as
    /// cert-manager will use it; `on_report` sees each report as it comes.
    pub async fn verify(
        &mut self,
        prepared: &Prepared,
        vault_addr: Option<&str>,
        on_report: &mut (dyn FnMut(&IssuerReport) + Send),
    ) -> Result<Vec<IssuerReport>, StepError> {
        let issuers = super::verify::vault_issuers(&prepared.repo.manifests);
        if issuers.is_empty() {
            return Ok(Vec::new());
        }
        let cluster = super::verify::credentials_cluster(prepared)
            .await
            .map_err(|e| StepError::new(Step::Verify, Failure::Cluster(e)))?;
        let mut reports = Vec::with_capacity(issuers.len());
        for issuer in issuers {
            let report = super::verify::verify_issuer(prepared, &cluster, issuer, vault_addr).await;
            on_report(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    /// Removes the apply lock whoever holds it: the removed record, `None`
    /// when nobody held it. The repository is only loaded (it need not be
    /// valid): it names the Vault.
    pub async fn force_unlock(
        &mut self,
        dir: &Path,
        settings: &LockSettings,
        me: &Holder,
    ) -> Result<Option<LockRecord>, StepError> {
        let repo = crate::load::load(dir).map_err(|d| StepError::invalid(Step::Load, d))?;
        let vault = self.vault_for(&repo).await?;
        crate::vault::lock::force_unlock(&vault, settings, me)
            .await
            .map_err(|e| StepError::new(Step::Lock, e))
    }
}

/// The hash of a prepared repository's input (`None` when a file it names
/// cannot be read: then nothing is taken for drift).
fn input_of(prepared: &Prepared) -> Option<String> {
    super::hash::repository_hash(&prepared.repo).ok()
}

/// Apply for a repository without Vault objects: no CA to guard, no lock
/// to take; the cluster half is planned again (an approved plan is checked
/// against it, as under the lock) and server-side applied (idempotent).
async fn apply_without_vault(
    cluster: Option<&dyn Provider>,
    prepared: &Prepared,
    options: PlanOptions,
    approval: Approval<'_>,
    on_event: OnEvent<'_>,
) -> Result<LockedApply, StepError> {
    let targets = Targets::new(None, cluster);
    let plan = super::plan::plan(targets, prepared, options).await?;
    if !plan.has_changes() {
        return Ok(LockedApply::NothingToDo);
    }
    approval.check(&plan)?;
    let done: Applied = apply(targets, prepared, &plan, ApplyOptions::default(), on_event).await?;
    Ok(LockedApply::Applied { plan, done })
}
