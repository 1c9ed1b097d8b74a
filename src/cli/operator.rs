//! The operator's global flags: where Vault is, how certplane logs in, and
//! which environment variables a repository may read. Each falls back to
//! the environment variable named in its help; the repository's
//! `certplane.yaml` never overrides them (see [`crate::operator`]).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::operator::Operator;
use crate::vault::VaultError;
use crate::vault::connect::{AuthMethod, Env, Trust, VaultFlags};

/// `--vault-auth`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AuthArg {
    /// A token: the secret source, else VAULT_TOKEN, BAO_TOKEN, ~/.vault-token.
    Token,
    /// The pod's service account token (or the secret source) with --vault-auth-role.
    Kubernetes,
    /// --vault-role-id and the secret ID from the secret source.
    #[value(name = "approle")]
    AppRole,
    /// A JWT (e.g. a CI's OIDC token) from the secret source, with --vault-auth-role.
    Jwt,
}

impl From<AuthArg> for AuthMethod {
    fn from(a: AuthArg) -> Self {
        match a {
            AuthArg::Token => AuthMethod::Token,
            AuthArg::Kubernetes => AuthMethod::Kubernetes,
            AuthArg::AppRole => AuthMethod::AppRole,
            AuthArg::Jwt => AuthMethod::Jwt,
        }
    }
}

/// The operator's settings (global flags).
#[derive(Debug, Clone, Default, Args)]
pub struct OperatorArgs {
    /// Vault address [env: VAULT_ADDR, then BAO_ADDR]. A repository may
    /// repeat it in certplane.yaml, never change it.
    #[arg(long, global = true, value_name = "URL")]
    pub vault_addr: Option<String>,
    /// Vault Enterprise / OpenBao namespace [env: VAULT_NAMESPACE, BAO_NAMESPACE].
    #[arg(long, global = true, value_name = "NS")]
    pub vault_namespace: Option<String>,
    /// PEM bundle trusted for TLS to Vault [env: VAULT_CACERT, BAO_CACERT].
    #[arg(long, global = true, value_name = "FILE")]
    pub vault_ca_cert: Option<PathBuf>,
    /// Client certificate for mTLS to Vault [env: VAULT_CLIENT_CERT, BAO_CLIENT_CERT].
    #[arg(long, global = true, value_name = "FILE")]
    pub vault_client_cert: Option<PathBuf>,
    /// Client key for mTLS to Vault [env: VAULT_CLIENT_KEY, BAO_CLIENT_KEY].
    #[arg(long, global = true, value_name = "FILE")]
    pub vault_client_key: Option<PathBuf>,
    /// How certplane logs in [env: CERTPLANE_VAULT_AUTH]; default: a token
    /// from VAULT_TOKEN, BAO_TOKEN or ~/.vault-token.
    #[arg(long, global = true, value_enum, value_name = "METHOD")]
    pub vault_auth: Option<AuthArg>,
    /// Auth mount of the login (default: kubernetes, approle or jwt)
    /// [env: CERTPLANE_VAULT_AUTH_MOUNT].
    #[arg(long, global = true, value_name = "PATH")]
    pub vault_auth_mount: Option<String>,
    /// Vault role of a kubernetes or jwt login [env: CERTPLANE_VAULT_AUTH_ROLE].
    #[arg(long, global = true, value_name = "ROLE")]
    pub vault_auth_role: Option<String>,
    /// Role ID of an approle login [env: CERTPLANE_VAULT_ROLE_ID].
    #[arg(long, global = true, value_name = "ID")]
    pub vault_role_id: Option<String>,
    /// File holding the login secret: the token, secret ID or JWT (kubernetes:
    /// default the pod's service account token) [env: CERTPLANE_VAULT_AUTH_SECRET_FILE].
    #[arg(long, global = true, value_name = "FILE")]
    pub vault_auth_secret_file: Option<PathBuf>,
    /// Environment variable holding the login secret; no repository source
    /// may read it [env: CERTPLANE_VAULT_AUTH_SECRET_ENV].
    #[arg(long, global = true, value_name = "NAME")]
    pub vault_auth_secret_env: Option<String>,
    /// Let the repository's `{env: NAME}` sources read NAME (repeatable;
    /// `PREFIX*` allows a prefix). CERTPLANE_VAR_* is always allowed, the
    /// process's own credentials never are [env: CERTPLANE_ALLOW_ENV,
    /// comma-separated].
    #[arg(long, global = true, value_name = "NAME")]
    pub allow_env: Vec<String>,
}

impl OperatorArgs {
    /// The flags as the Vault layer takes them.
    pub fn vault_flags(&self) -> VaultFlags {
        VaultFlags {
            address: self.vault_addr.clone(),
            namespace: self.vault_namespace.clone(),
            ca_cert: self.vault_ca_cert.clone(),
            client_cert: self.vault_client_cert.clone(),
            client_key: self.vault_client_key.clone(),
            auth: self.vault_auth.map(AuthMethod::from),
            auth_mount: self.vault_auth_mount.clone(),
            auth_role: self.vault_auth_role.clone(),
            role_id: self.vault_role_id.clone(),
            auth_secret_file: self.vault_auth_secret_file.clone(),
            auth_secret_env: self.vault_auth_secret_env.clone(),
        }
    }

    /// The operator these flags and `env` make; `run` (`operator_only`)
    /// takes nothing of the connection from the repository.
    pub fn operator(&self, operator_only: bool, env: &Env<'_>) -> Result<Operator, VaultError> {
        let trust = if operator_only {
            Trust::OperatorOnly
        } else {
            Trust::FillIn
        };
        Operator::resolve(&self.vault_flags(), &self.allow_env, trust, env)
    }
}
