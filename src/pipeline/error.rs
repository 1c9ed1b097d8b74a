//! The steps of the pipeline and why one failed: [`StepError`] names the
//! [`Step`] and carries the cause ([`Failure`]) whose message the user
//! reads.

use std::fmt;

use super::provider::ProviderError;
use super::session::SessionError;
use crate::addr::Addr;
use crate::cluster::ClusterError;
use crate::diagnostic::Diagnostics;
use crate::vault::VaultError;
use crate::vault::lock::LockError;

/// One step of the pipeline, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// Files -> the typed repository (and the operator's check of
    /// `certplane.yaml`).
    Load,
    /// VaultIssuers and token reviewers -> the objects they stand for.
    Expand,
    /// The offline cross-checks.
    Validate,
    /// The repository -> the desired Vault state.
    Lower,
    /// Connecting and reading the live state (Vault, the cluster, rendered
    /// files).
    Observe,
    /// The pure diff, and the checks of the approved plan.
    Plan,
    /// Taking the apply lock.
    Lock,
    /// Writing the changes.
    Apply,
    /// Deleting what left the repository, recording what is owned.
    Prune,
    /// Checking each Vault Issuer as cert-manager will use it.
    Verify,
}

impl Step {
    /// Its name, as logs and metrics say it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Load => "load",
            Step::Expand => "expand",
            Step::Validate => "validate",
            Step::Lower => "lower",
            Step::Observe => "observe",
            Step::Plan => "plan",
            Step::Lock => "lock",
            Step::Apply => "apply",
            Step::Prune => "prune",
            Step::Verify => "verify",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong in a step. The messages are the user's: one line
/// (diagnostics: one per problem), lowercase, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The repository failed its offline checks (every problem found).
    #[error(transparent)]
    Invalid(Diagnostics),
    /// No usable Vault session (unreachable, sealed, login refused, a
    /// token that expired).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The cluster could not be connected to.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A provider could not read, write or delete.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The apply lock could not be taken (another certplane applies) or
    /// was lost.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Under the lock, the plan is no longer the one that was approved:
    /// nothing was applied.
    #[error(
        "plan is stale: {addr} changed since the plan was made ({why}); nothing was applied; run apply again"
    )]
    Stale {
        /// The first change that differs.
        addr: Addr,
        /// How.
        why: String,
    },
    /// The plan changes Vault, and no Vault connection was made (the
    /// repository has no Vault objects).
    #[error(
        "the plan changes Vault, but the repository declares no Vault objects and certplane did not connect to Vault"
    )]
    NoVault,
}

/// Why a run of the pipeline stopped: the step, and the cause (boxed:
/// keeps `Result<_, StepError>` small).
#[derive(Debug)]
pub struct StepError {
    step: Step,
    failure: Box<Failure>,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cause's own message: the step is for logs and metrics.
        fmt::Display::fmt(&*self.failure, f)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Transparent, like the cause itself.
        std::error::Error::source(&*self.failure)
    }
}

impl StepError {
    /// `failure` in `step`.
    pub fn new(step: Step, failure: impl Into<Failure>) -> StepError {
        StepError {
            step,
            failure: Box::new(failure.into()),
        }
    }

    /// The offline checks of `step` failed.
    pub fn invalid(step: Step, diagnostics: Diagnostics) -> StepError {
        StepError {
            step,
            failure: Box::new(Failure::Invalid(diagnostics)),
        }
    }

    /// The step that failed.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Why.
    pub fn failure(&self) -> &Failure {
        &self.failure
    }

    /// The diagnostics, when the repository failed its offline checks.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match &*self.failure {
            Failure::Invalid(d) => Some(d),
            _ => None,
        }
    }

    /// What to do, when the message alone does not say it.
    pub fn hint(&self) -> Option<&'static str> {
        match &*self.failure {
            Failure::Cluster(_) if self.step == Step::Observe => {
                Some("to write the cluster manifests for Flux/Argo instead, run with --render DIR")
            }
            _ => None,
        }
    }

    /// The Vault error underneath, if any (a refused token, an unreachable
    /// Vault).
    pub fn vault_error(&self) -> Option<&VaultError> {
        match &*self.failure {
            Failure::Session(SessionError::Vault(v)) => Some(v),
            Failure::Provider(p) => p.vault_error(),
            Failure::Lock(LockError::Vault { source, .. }) => Some(&**source),
            _ => None,
        }
    }

    /// What failed, in one word (`vault`, `cluster`, `lock`, `repository`,
    /// `apply`): the prefix of `run`'s readiness reason.
    pub fn target(&self) -> &'static str {
        match &*self.failure {
            Failure::Invalid(_) => "repository",
            Failure::Session(_) | Failure::NoVault => "vault",
            Failure::Cluster(_) => "cluster",
            Failure::Lock(_) => "lock",
            Failure::Stale { .. } => "apply",
            Failure::Provider(ProviderError::Cluster(_)) => "cluster",
            Failure::Provider(p) if p.vault_error().is_some() => "vault",
            Failure::Provider(_) => "apply",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_error_reads_as_its_cause_and_names_its_step_and_target() {
        let lock = StepError::new(Step::Lock, LockError::Interrupted);
        assert_eq!(lock.step(), Step::Lock);
        assert_eq!(
            lock.to_string(),
            "interrupted while waiting for the apply lock"
        );
        assert_eq!(lock.target(), "lock");
        assert_eq!(lock.hint(), None);

        let denied = VaultError::PermissionDenied {
            op: "read",
            path: "sys/mounts".into(),
            capability: "read",
        };
        let observe = StepError::new(Step::Observe, ProviderError::from(denied));
        assert_eq!(observe.target(), "vault");
        assert!(matches!(
            observe.vault_error(),
            Some(VaultError::PermissionDenied { .. })
        ));

        let stale = StepError::new(
            Step::Plan,
            Failure::Stale {
                addr: Addr::parse_vault("pki/roles/web").unwrap(),
                why: "planned: update; now: no change".into(),
            },
        );
        assert!(
            stale
                .to_string()
                .starts_with("plan is stale: vault:pki/roles/web")
        );
        assert_eq!(Step::Prune.to_string(), "prune");
        assert!(Step::Lock < Step::Apply, "steps are ordered as they run");
    }
}
