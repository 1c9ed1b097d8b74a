//! What the operator decides and the repository cannot: the Vault
//! connection and login ([`OperatorVault`]), which environment variables a
//! repository's `{env: ...}` sources may read ([`EnvRules`]), and whether
//! the repository's `spec.vault` may fill in what the operator left out
//! ([`Trust`]: never in `run`).
//!
//! The threat model is `run` (and CI on pull requests): whoever can push a
//! commit writes the repository, so nothing in it may choose where
//! certplane's token goes, or read the process's own credentials.
//!
//! The command line resolves the [`Operator`] once, from its flags and the
//! environment, and installs it for the process ([`install`]); the pipeline
//! reads it with [`current`]. Library callers can pass one explicitly
//! (`pipeline::prepare_for`, `pipeline::connect_for`).

use std::sync::OnceLock;

use crate::diagnostic::Diagnostic;
use crate::model::Repository;
use crate::vault::VaultError;
use crate::vault::connect::{Env, OperatorVault, Trust, VaultFlags, conflicts};

/// Variables every repository may read without `--allow-env`: the
/// Terraform-style `TF_VAR_` convention, named for certplane.
pub const DEFAULT_ALLOW_ENV: &str = "CERTPLANE_VAR_*";

/// Variables that hold the process's own credentials: no repository source
/// reads them, whatever `--allow-env` says. Exact names, or prefixes ending
/// in `*`.
pub const CREDENTIAL_ENV: &[&str] = &[
    // certplane's own Vault connection and token.
    "VAULT_*",
    "BAO_*",
    "CERTPLANE_VAULT_*",
    "CERTPLANE_ALLOW_ENV",
    // Its Kubernetes credentials.
    "KUBECONFIG",
    "KUBERNETES_*",
    // Git and SSH (the `run` clone).
    "GIT_*",
    "SSH_AUTH_SOCK",
    // CI job credentials and OIDC token requests.
    "ACTIONS_ID_TOKEN_REQUEST_*",
    "ACTIONS_RUNTIME_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "CI_JOB_TOKEN",
    "CI_JOB_JWT*",
    "CI_REGISTRY_PASSWORD",
    // Cloud credentials.
    "AWS_*",
    "AZURE_*",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

/// Whether `name` matches `pattern` (exact, or a prefix ending in `*`).
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Why a repository may not read a variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvRefusal {
    /// It holds a credential of the process.
    Credential(String),
    /// The operator did not allow it.
    NotAllowed,
}

/// An `--allow-env` pattern that is neither a variable name nor a prefix
/// ending in `*`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "--allow-env {pattern:?}: write a variable name (CERTPLANE_ROOT_KEY) or a prefix ending in * (TEAM_PKI_*)"
)]
pub struct BadPattern {
    /// The pattern as given.
    pub pattern: String,
}

/// Which variables `{env: NAME}` sources may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvRules {
    /// `--allow-env` patterns, after [`DEFAULT_ALLOW_ENV`].
    allow: Vec<String>,
    /// The variable holding the operator's login secret
    /// (`--vault-auth-secret-env`), if any.
    operator_secret: Option<String>,
}

impl Default for EnvRules {
    fn default() -> Self {
        EnvRules {
            allow: vec![DEFAULT_ALLOW_ENV.to_string()],
            operator_secret: None,
        }
    }
}

impl EnvRules {
    /// The default rule plus `allow` (names, or prefixes ending in `*`), never
    /// `operator_secret`. A malformed pattern is an error naming it.
    pub fn new(allow: &[String], operator_secret: Option<String>) -> Result<EnvRules, BadPattern> {
        let mut rules = EnvRules {
            operator_secret,
            ..EnvRules::default()
        };
        for p in allow {
            let p = p.trim();
            let body = p.strip_suffix('*').unwrap_or(p);
            let valid = body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !body.starts_with(|c: char| c.is_ascii_digit());
            if !valid || p.is_empty() {
                return Err(BadPattern {
                    pattern: p.to_string(),
                });
            }
            rules.allow.push(p.to_string());
        }
        Ok(rules)
    }

    /// Whether a repository may read `name`.
    pub fn check(&self, name: &str) -> Result<(), EnvRefusal> {
        if self.operator_secret.as_deref() == Some(name) {
            return Err(EnvRefusal::Credential(
                "it holds certplane's own Vault login secret".into(),
            ));
        }
        if let Some(p) = CREDENTIAL_ENV.iter().find(|p| matches(p, name)) {
            return Err(EnvRefusal::Credential(format!(
                "it is a credential or setting of the certplane process itself ({p})"
            )));
        }
        if self.allow.iter().any(|p| matches(p, name)) {
            Ok(())
        } else {
            Err(EnvRefusal::NotAllowed)
        }
    }

    /// The allowed patterns, for messages.
    pub fn allowed(&self) -> String {
        self.allow.join(", ")
    }
}

/// Everything the operator decides for one process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Operator {
    /// The Vault connection and login.
    pub vault: OperatorVault,
    /// What `{env: ...}` sources may read.
    pub env: EnvRules,
    /// Whether the repository may fill in connection settings.
    pub trust: Trust,
}

impl Operator {
    /// Resolves the operator from the flags and `env`: `--allow-env`
    /// patterns come from `allow_env`, else the comma-separated
    /// `CERTPLANE_ALLOW_ENV`.
    pub fn resolve(
        flags: &VaultFlags,
        allow_env: &[String],
        trust: Trust,
        env: &Env<'_>,
    ) -> Result<Operator, VaultError> {
        let vault = OperatorVault::resolve(flags, env)?;
        let from_env: Vec<String>;
        let allow = if allow_env.is_empty() {
            from_env = (env.var)("CERTPLANE_ALLOW_ENV")
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            &from_env
        } else {
            allow_env
        };
        let rules = EnvRules::new(allow, vault.secret_env().map(str::to_string)).map_err(|e| {
            VaultError::OperatorSetting {
                message: e.to_string(),
            }
        })?;
        Ok(Operator {
            vault,
            env: rules,
            trust,
        })
    }

    /// No flags, the process environment, local trust.
    pub fn from_process() -> Result<Operator, VaultError> {
        Operator::resolve(&VaultFlags::default(), &[], Trust::FillIn, &Env::process())
    }
}

static INSTALLED: OnceLock<Operator> = OnceLock::new();

/// Makes `op` the operator of this process (once; later calls are ignored
/// and return `false`).
pub fn install(op: Operator) -> bool {
    INSTALLED.set(op).is_ok()
}

/// The operator of this process: the one [`install`]ed by the command line,
/// else one resolved from the process environment (no flags, local trust;
/// when the environment does not resolve, none of its settings: the error
/// comes back when connecting).
pub fn current() -> Operator {
    if let Some(op) = INSTALLED.get() {
        return op.clone();
    }
    Operator::from_process().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "the vault settings of the environment do not resolve");
        Operator::default()
    })
}

/// The repository's `certplane.yaml` settings that this operator refuses
/// (see [`conflicts`]), each at its line.
pub fn check_config(repo: &Repository, op: &Operator) -> Vec<Diagnostic> {
    let Some(cfg) = &repo.config else {
        return Vec::new();
    };
    conflicts(cfg.spec.vault.as_ref(), &op.vault, op.trust)
        .into_iter()
        .map(|c| {
            Diagnostic::new(cfg.origin.at(&format!("spec.vault.{}", c.key)), c.message).hint(c.hint)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], secret: Option<&str>) -> EnvRules {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        EnvRules::new(&allow, secret.map(str::to_string)).unwrap()
    }

    #[test]
    fn the_default_allows_only_certplane_var() {
        let r = EnvRules::default();
        assert_eq!(r.check("CERTPLANE_VAR_ROOT_KEY"), Ok(()));
        assert_eq!(r.check("HOME"), Err(EnvRefusal::NotAllowed));
        assert_eq!(r.check("CERTPLANE_SECRET_ID"), Err(EnvRefusal::NotAllowed));
    }

    #[test]
    fn allow_names_and_prefixes() {
        let r = rules(&["CI_OIDC_TOKEN", "TEAM_*"], None);
        assert_eq!(r.check("CI_OIDC_TOKEN"), Ok(()));
        assert_eq!(r.check("TEAM_PKI_BUNDLE"), Ok(()));
        assert_eq!(r.check("CI_OIDC_TOKEN2"), Err(EnvRefusal::NotAllowed));
        assert_eq!(r.check("CERTPLANE_VAR_X"), Ok(()), "the default stays");
    }

    #[test]
    fn credentials_are_never_readable_whatever_is_allowed() {
        let r = rules(&["*", "VAULT_TOKEN", "KUBECONFIG"], Some("CI_OIDC_TOKEN"));
        for name in [
            "VAULT_TOKEN",
            "VAULT_ADDR",
            "BAO_TOKEN",
            "KUBECONFIG",
            "KUBERNETES_SERVICE_HOST",
            "CERTPLANE_VAULT_AUTH_SECRET_ENV",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "GITHUB_TOKEN",
            "CI_JOB_JWT_V2",
            "AWS_SECRET_ACCESS_KEY",
            "CI_OIDC_TOKEN",
        ] {
            assert!(
                matches!(r.check(name), Err(EnvRefusal::Credential(_))),
                "{name}"
            );
        }
        assert_eq!(r.check("ANYTHING_ELSE"), Ok(()));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in ["", "A B", "*X", "1ABC", "A-B"] {
            let e = EnvRules::new(&[p.to_string()], None).unwrap_err();
            assert!(e.to_string().contains("--allow-env"), "{p}: {e}");
            assert_eq!(e.pattern, p.trim());
        }
    }

    #[test]
    fn the_operator_secret_variable_comes_from_the_login() {
        let var = |n: &str| match n {
            "CERTPLANE_VAULT_AUTH" => Some("jwt".to_string()),
            "CERTPLANE_VAULT_AUTH_ROLE" => Some("ci".to_string()),
            "CERTPLANE_VAULT_AUTH_SECRET_ENV" => Some("MY_JWT".to_string()),
            "CERTPLANE_ALLOW_ENV" => Some("MY_*, OTHER".to_string()),
            _ => None,
        };
        let env = Env {
            var: &var,
            home: None,
        };
        let op = Operator::resolve(&VaultFlags::default(), &[], Trust::FillIn, &env).unwrap();
        assert!(matches!(
            op.env.check("MY_JWT"),
            Err(EnvRefusal::Credential(_))
        ));
        assert_eq!(op.env.check("MY_BUNDLE"), Ok(()));
        assert_eq!(op.env.check("OTHER"), Ok(()));
        // Flags replace the variable.
        let op = Operator::resolve(
            &VaultFlags::default(),
            &["ONLY".to_string()],
            Trust::FillIn,
            &env,
        )
        .unwrap();
        assert_eq!(op.env.check("OTHER"), Err(EnvRefusal::NotAllowed));
    }
}
