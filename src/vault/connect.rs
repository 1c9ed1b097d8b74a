//! Where Vault is and how certplane logs in: [`VaultSettings`].
//!
//! The connection belongs to the operator: [`OperatorVault`] is resolved
//! from the flags (`--vault-addr`, `--vault-auth`...) and the environment
//! variables Vault users already have (`VAULT_*`, then `BAO_*`). A
//! repository's `certplane.yaml` (`spec.vault`) may repeat a setting the
//! operator gave but never change it ([`conflicts`]); it may fill in what
//! the operator left out only in local use, never in `run` ([`Trust`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use crate::model::config::{VaultAuth, VaultTarget};
use crate::model::{Sensitive, Source};

use super::VaultError;

/// How long to wait for a TCP/TLS connection.
pub const CONNECT_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// How long to wait for one request (overridable with `CERTPLANE_VAULT_TIMEOUT`).
pub const REQUEST_TIMEOUT: StdDuration = StdDuration::from_secs(30);
/// The pod's service account token, for Kubernetes login.
pub const POD_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Everything needed to reach and log in to Vault. Holds no secret: tokens
/// and secret IDs stay [`Source`]s until [`super::Vault::connect`] reads them.
#[derive(Clone, PartialEq)]
pub struct VaultSettings {
    /// `http(s)://host:port`, without `/v1`.
    pub address: String,
    /// `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// PEM bundle trusted for TLS (replaces the system roots).
    pub ca_bundle: Option<PathBuf>,
    /// mTLS client certificate (PEM).
    pub client_cert: Option<PathBuf>,
    /// mTLS client key (PEM).
    pub client_key: Option<PathBuf>,
    /// mTLS client certificate and key, PEM, given in memory (as `verify`
    /// reads them from an Issuer's Secret); wins over the files.
    pub client_identity: Option<Sensitive>,
    /// `VAULT_SKIP_VERIFY`: accept any server certificate.
    pub skip_verify: bool,
    /// How to log in.
    pub auth: AuthSettings,
    /// TCP/TLS connect timeout.
    pub connect_timeout: StdDuration,
    /// Timeout of one request.
    pub request_timeout: StdDuration,
}

/// How to obtain a token.
#[derive(Clone, PartialEq)]
pub enum AuthSettings {
    /// A token, from this source.
    Token {
        /// Where the token is.
        token: Source,
    },
    /// `auth/<mount>/login` with role_id + secret_id.
    AppRole {
        /// The auth mount.
        mount: String,
        /// The role ID (not a secret).
        role_id: String,
        /// The secret ID.
        secret_id: Source,
    },
    /// `auth/<mount>/login` with role + jwt.
    Jwt {
        /// The auth mount.
        mount: String,
        /// The Vault role.
        role: String,
        /// The JWT.
        jwt: Source,
    },
    /// `auth/<mount>/login` with role + the service account token.
    Kubernetes {
        /// The auth mount.
        mount: String,
        /// The Vault role.
        role: String,
        /// The service account token.
        jwt: Source,
    },
    /// `auth/<mount>/login` of TLS certificate auth: the client certificate
    /// of the TLS connection is the credential.
    Cert {
        /// The auth mount.
        mount: String,
        /// The certificate role (`name`); none: Vault tries every role.
        name: Option<String>,
        /// The certificate and key (PEM) to log in with, when they are not
        /// the connection's own ([`VaultSettings::client_identity`]).
        identity: Option<Sensitive>,
    },
}

impl AuthSettings {
    /// A short description, safe to print.
    pub fn describe(&self) -> String {
        match self {
            AuthSettings::Token { token } => format!("token ({})", token.describe()),
            AuthSettings::AppRole { mount, .. } => format!("approle at auth/{mount}"),
            AuthSettings::Jwt { mount, role, .. } => format!("jwt role {role} at auth/{mount}"),
            AuthSettings::Kubernetes { mount, role, .. } => {
                format!("kubernetes role {role} at auth/{mount}")
            }
            AuthSettings::Cert { mount, name, .. } => match name {
                Some(n) => format!("cert role {n} at auth/{mount}"),
                None => format!("cert auth at auth/{mount}"),
            },
        }
    }
}

impl fmt::Debug for AuthSettings {
    // Written by hand: a `Source::Value` holds the secret itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSettings")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("ca_bundle", &self.ca_bundle)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("client_identity", &self.client_identity)
            .field("skip_verify", &self.skip_verify)
            .field("auth", &self.auth)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// Where the operator's settings come from besides the flags: the
/// environment and the home directory (a seam for tests).
pub struct Env<'a> {
    /// Reads a variable (`None`: unset or empty).
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// The home directory, for `~/.vault-token`.
    pub home: Option<PathBuf>,
}

impl Env<'_> {
    /// The process's own environment and `$HOME`.
    pub fn process() -> Env<'static> {
        Env {
            var: &process_var,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    fn first(&self, names: &[&str]) -> Option<(String, String)> {
        names.iter().find_map(|n| {
            (self.var)(n)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (n.to_string(), v))
        })
    }
}

fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// How certplane logs in, as the operator names it (`--vault-auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// A token: `VAULT_TOKEN`, `BAO_TOKEN`, `~/.vault-token`, or the secret source.
    Token,
    /// The pod's service account token (or the secret source).
    Kubernetes,
    /// Role ID and secret ID.
    AppRole,
    /// A JWT, e.g. a CI's OIDC token.
    Jwt,
}

impl AuthMethod {
    /// The names `--vault-auth` accepts.
    pub const NAMES: [&'static str; 4] = ["token", "kubernetes", "approle", "jwt"];

    /// Parses `token`, `kubernetes`, `approle` or `jwt`.
    pub fn parse(s: &str) -> Option<AuthMethod> {
        match s.trim().to_ascii_lowercase().as_str() {
            "token" => Some(AuthMethod::Token),
            "kubernetes" => Some(AuthMethod::Kubernetes),
            "approle" => Some(AuthMethod::AppRole),
            "jwt" => Some(AuthMethod::Jwt),
            _ => None,
        }
    }
}

/// The operator's Vault settings as written on the command line. What they
/// leave out is taken from the environment by [`OperatorVault::resolve`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VaultFlags {
    /// `--vault-addr` (else `VAULT_ADDR`, `BAO_ADDR`).
    pub address: Option<String>,
    /// `--vault-namespace` (else `VAULT_NAMESPACE`, `BAO_NAMESPACE`).
    pub namespace: Option<String>,
    /// `--vault-ca-cert` (else `VAULT_CACERT`, `BAO_CACERT`).
    pub ca_cert: Option<PathBuf>,
    /// `--vault-client-cert` (else `VAULT_CLIENT_CERT`, `BAO_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// `--vault-client-key` (else `VAULT_CLIENT_KEY`, `BAO_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// `--vault-auth` (else `CERTPLANE_VAULT_AUTH`).
    pub auth: Option<AuthMethod>,
    /// `--vault-auth-mount` (else `CERTPLANE_VAULT_AUTH_MOUNT`).
    pub auth_mount: Option<String>,
    /// `--vault-auth-role`: the kubernetes or jwt role (else `CERTPLANE_VAULT_AUTH_ROLE`).
    pub auth_role: Option<String>,
    /// `--vault-role-id`: the AppRole role ID (else `CERTPLANE_VAULT_ROLE_ID`).
    pub role_id: Option<String>,
    /// `--vault-auth-secret-file` (else `CERTPLANE_VAULT_AUTH_SECRET_FILE`).
    pub auth_secret_file: Option<PathBuf>,
    /// `--vault-auth-secret-env` (else `CERTPLANE_VAULT_AUTH_SECRET_ENV`).
    pub auth_secret_env: Option<String>,
}

/// A setting the operator gave, and where (a flag or a variable name).
#[derive(Clone, Debug, PartialEq)]
pub struct Given<T> {
    /// The value.
    pub value: T,
    /// The flag or environment variable it came from.
    pub from: String,
}

impl<T> Given<T> {
    fn new(value: T, from: impl Into<String>) -> Self {
        Given {
            value,
            from: from.into(),
        }
    }
}

/// The operator's side of the Vault connection: the flags, then the
/// environment. Holds no secret (a token stays a [`Source`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorVault {
    /// The address, normalised by [`check_address`].
    pub address: Option<Given<String>>,
    /// The namespace.
    pub namespace: Option<Given<String>>,
    /// TLS trust.
    pub ca_bundle: Option<Given<PathBuf>>,
    /// mTLS client certificate.
    pub client_cert: Option<Given<PathBuf>>,
    /// mTLS client key.
    pub client_key: Option<Given<PathBuf>>,
    /// The login: `--vault-auth ...`, or a token in `VAULT_TOKEN`/`BAO_TOKEN`.
    pub auth: Option<Given<AuthSettings>>,
    /// `~/.vault-token`, when it exists: the last resort of token auth.
    pub home_token: Option<PathBuf>,
    /// `VAULT_SKIP_VERIFY`.
    pub skip_verify: bool,
    /// `CERTPLANE_VAULT_TIMEOUT`, else [`REQUEST_TIMEOUT`].
    pub request_timeout: StdDuration,
}

impl Default for OperatorVault {
    fn default() -> Self {
        OperatorVault {
            address: None,
            namespace: None,
            ca_bundle: None,
            client_cert: None,
            client_key: None,
            auth: None,
            home_token: None,
            skip_verify: false,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

fn operator_error(message: impl Into<String>) -> VaultError {
    VaultError::OperatorSetting {
        message: message.into(),
    }
}

impl OperatorVault {
    /// Resolves the operator's settings: each flag, else its variables
    /// (`VAULT_*` before `BAO_*`).
    pub fn resolve(flags: &VaultFlags, env: &Env<'_>) -> Result<OperatorVault, VaultError> {
        let text = |flag: &Option<String>, name: &str, vars: &[&str]| {
            flag.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| Given::new(v.to_string(), name))
                .or_else(|| {
                    env.first(vars)
                        .map(|(n, v)| Given::new(v.trim().to_string(), n))
                })
        };
        let path = |flag: &Option<PathBuf>, name: &str, vars: &[&str]| {
            flag.clone()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| Given::new(p, name))
                .or_else(|| {
                    env.first(vars)
                        .map(|(n, v)| Given::new(PathBuf::from(v), n))
                })
        };
        let address = match text(&flags.address, "--vault-addr", &["VAULT_ADDR", "BAO_ADDR"]) {
            Some(g) => Some(Given::new(check_address(&g.value)?, g.from)),
            None => None,
        };
        let namespace = text(
            &flags.namespace,
            "--vault-namespace",
            &["VAULT_NAMESPACE", "BAO_NAMESPACE"],
        );
        let ca_bundle = path(
            &flags.ca_cert,
            "--vault-ca-cert",
            &["VAULT_CACERT", "BAO_CACERT"],
        );
        let client_cert = path(
            &flags.client_cert,
            "--vault-client-cert",
            &["VAULT_CLIENT_CERT", "BAO_CLIENT_CERT"],
        );
        let client_key = path(
            &flags.client_key,
            "--vault-client-key",
            &["VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"],
        );
        let skip_verify = match env.first(&["VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY"]) {
            Some((name, v)) => parse_bool(&v).ok_or(VaultError::InvalidSetting {
                name,
                value: v.clone(),
                why: "expected true or false".into(),
            })?,
            None => false,
        };
        let request_timeout = match env.first(&["CERTPLANE_VAULT_TIMEOUT"]) {
            Some((name, v)) => parse_timeout(&v).ok_or(VaultError::InvalidSetting {
                name,
                value: v.clone(),
                why: "expected a number of seconds (e.g. 30) or a duration (e.g. 2m)".into(),
            })?,
            None => REQUEST_TIMEOUT,
        };
        let method = match flags.auth {
            Some(m) => Some(Given::new(m, "--vault-auth")),
            None => match env.first(&["CERTPLANE_VAULT_AUTH"]) {
                Some((name, v)) => Some(Given::new(
                    AuthMethod::parse(&v).ok_or_else(|| VaultError::InvalidSetting {
                        name: name.clone(),
                        value: v.clone(),
                        why: format!("expected one of {}", AuthMethod::NAMES.join(", ")),
                    })?,
                    name,
                )),
                None => None,
            },
        };
        let login = Login {
            mount: text(
                &flags.auth_mount,
                "--vault-auth-mount",
                &["CERTPLANE_VAULT_AUTH_MOUNT"],
            ),
            role: text(
                &flags.auth_role,
                "--vault-auth-role",
                &["CERTPLANE_VAULT_AUTH_ROLE"],
            ),
            role_id: text(
                &flags.role_id,
                "--vault-role-id",
                &["CERTPLANE_VAULT_ROLE_ID"],
            ),
            secret_file: path(
                &flags.auth_secret_file,
                "--vault-auth-secret-file",
                &["CERTPLANE_VAULT_AUTH_SECRET_FILE"],
            ),
            secret_env: text(
                &flags.auth_secret_env,
                "--vault-auth-secret-env",
                &["CERTPLANE_VAULT_AUTH_SECRET_ENV"],
            ),
        };
        let home_token = env
            .home
            .as_ref()
            .map(|h| h.join(".vault-token"))
            .filter(|f| f.is_file());
        let auth = login.settings(method, env, home_token.as_ref())?;
        Ok(OperatorVault {
            address,
            namespace,
            ca_bundle,
            client_cert,
            client_key,
            auth,
            home_token,
            skip_verify,
            request_timeout,
        })
    }

    /// The environment variable holding the operator's login secret, if the
    /// login reads one: no repository source may read it.
    pub fn secret_env(&self) -> Option<&str> {
        let source = match &self.auth.as_ref()?.value {
            AuthSettings::Token { token } => token,
            AuthSettings::AppRole { secret_id, .. } => secret_id,
            AuthSettings::Jwt { jwt, .. } | AuthSettings::Kubernetes { jwt, .. } => jwt,
            AuthSettings::Cert { .. } => return None,
        };
        match source {
            Source::Env(name) => Some(name),
            _ => None,
        }
    }
}

/// The login options of the operator, before they are checked.
struct Login {
    mount: Option<Given<String>>,
    role: Option<Given<String>>,
    role_id: Option<Given<String>>,
    secret_file: Option<Given<PathBuf>>,
    secret_env: Option<Given<String>>,
}

impl Login {
    fn settings(
        self,
        method: Option<Given<AuthMethod>>,
        env: &Env<'_>,
        home_token: Option<&PathBuf>,
    ) -> Result<Option<Given<AuthSettings>>, VaultError> {
        let Login {
            mount,
            role,
            role_id,
            secret_file,
            secret_env,
        } = self;
        let Some(method) = method else {
            let stray = [&mount, &role, &role_id, &secret_env]
                .into_iter()
                .flatten()
                .map(|g| g.from.clone())
                .chain(secret_file.iter().map(|g| g.from.clone()))
                .next();
            if let Some(from) = stray {
                return Err(operator_error(format!(
                    "{from} needs --vault-auth (one of {})",
                    AuthMethod::NAMES.join(", ")
                )));
            }
            // No login chosen: a token in the environment is the operator's.
            return Ok(env.first(&["VAULT_TOKEN", "BAO_TOKEN"]).map(|(name, _)| {
                Given::new(
                    AuthSettings::Token {
                        token: Source::Env(name.clone()),
                    },
                    name,
                )
            }));
        };
        let from = method.from.clone();
        let secret = match (secret_file, secret_env) {
            (Some(f), Some(e)) => {
                return Err(operator_error(format!(
                    "give the login secret once: {} or {}, not both",
                    f.from, e.from
                )));
            }
            (Some(f), None) => Some(Source::File(f.value)),
            (None, Some(e)) => Some(Source::Env(e.value)),
            (None, None) => None,
        };
        let unused = |g: &Option<Given<String>>, what: &str| match g {
            Some(g) => Err(operator_error(format!(
                "{} is not used by --vault-auth {what}",
                g.from
            ))),
            None => Ok(()),
        };
        let needs = |g: Option<Given<String>>, flag: &str, what: &str| {
            g.map(|g| g.value)
                .ok_or_else(|| operator_error(format!("--vault-auth {what} needs {flag}")))
        };
        let mount_or = |default: &str| {
            mount
                .as_ref()
                .map(|m| m.value.trim_matches('/').to_string())
                .unwrap_or_else(|| default.to_string())
        };
        let auth = match method.value {
            AuthMethod::Token => {
                unused(&mount, "token")?;
                unused(&role, "token")?;
                unused(&role_id, "token")?;
                let token = secret
                    .or_else(|| {
                        env.first(&["VAULT_TOKEN", "BAO_TOKEN"])
                            .map(|(name, _)| Source::Env(name))
                    })
                    .or_else(|| home_token.cloned().map(Source::File))
                    // Read (and reported missing) at login.
                    .unwrap_or_else(|| Source::Env("VAULT_TOKEN".into()));
                AuthSettings::Token { token }
            }
            AuthMethod::Kubernetes => {
                unused(&role_id, "kubernetes")?;
                AuthSettings::Kubernetes {
                    mount: mount_or("kubernetes"),
                    role: needs(role, "--vault-auth-role", "kubernetes")?,
                    jwt: secret.unwrap_or_else(|| Source::File(PathBuf::from(POD_TOKEN_FILE))),
                }
            }
            AuthMethod::AppRole => {
                unused(&role, "approle")?;
                AuthSettings::AppRole {
                    mount: mount_or("approle"),
                    role_id: needs(role_id, "--vault-role-id", "approle")?,
                    secret_id: secret.ok_or_else(|| {
                        operator_error(
                            "--vault-auth approle needs the secret ID: --vault-auth-secret-file or --vault-auth-secret-env",
                        )
                    })?,
                }
            }
            AuthMethod::Jwt => {
                unused(&role_id, "jwt")?;
                AuthSettings::Jwt {
                    mount: mount_or("jwt"),
                    role: needs(role, "--vault-auth-role", "jwt")?,
                    jwt: secret.ok_or_else(|| {
                        operator_error(
                            "--vault-auth jwt needs the token: --vault-auth-secret-file or --vault-auth-secret-env",
                        )
                    })?,
                }
            }
        };
        Ok(Some(Given::new(auth, from)))
    }
}

/// Whether the repository's `spec.vault` may fill in what the operator left
/// out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Trust {
    /// Local use (`plan`, `apply`, `watch`...): where the operator gave a
    /// setting the repository must omit it or repeat it; elsewhere its value
    /// is used.
    #[default]
    FillIn,
    /// `run`: the connection comes from the operator only; the repository may
    /// at most repeat it.
    OperatorOnly,
}

/// A `spec.vault` setting of the repository that this run refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The key under `spec.vault` (`address`, `auth`...).
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// One setting: its `spec.vault` key, what it is, and the operator's flag.
struct Setting {
    key: &'static str,
    what: &'static str,
    flag: &'static str,
}

/// The conflicts found so far, under one [`Trust`].
struct Found {
    trust: Trust,
    out: Vec<Conflict>,
}

impl Found {
    fn check<R, O>(
        &mut self,
        s: &Setting,
        repo: Option<R>,
        op: Option<&Given<O>>,
        same: impl Fn(&R, &O) -> bool,
        show_repo: impl Fn(&R) -> String,
        show_op: impl Fn(&O) -> String,
    ) {
        let Some(r) = repo else {
            return;
        };
        match op {
            Some(o) if same(&r, &o.value) => {}
            Some(o) => self.out.push(Conflict {
                key: s.key,
                message: format!(
                    "spec.vault.{} ({}) differs from the {} the operator set ({}, from {})",
                    s.key,
                    show_repo(&r),
                    s.what,
                    show_op(&o.value),
                    o.from
                ),
                hint: format!(
                    "the Vault connection belongs to whoever runs certplane, not to the repository: remove spec.vault.{} from certplane.yaml (or make it equal)",
                    s.key
                ),
            }),
            None if self.trust == Trust::OperatorOnly => self.out.push(Conflict {
                key: s.key,
                message: format!(
                    "certplane run takes the {} from its operator only, and spec.vault.{} ({}) sets it in the repository",
                    s.what,
                    s.key,
                    show_repo(&r)
                ),
                hint: format!(
                    "remove spec.vault.{} from certplane.yaml; whoever runs certplane sets it with {}",
                    s.key, s.flag
                ),
            }),
            None => {}
        }
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn same_source(a: &Source, b: &Source) -> bool {
    match (a, b) {
        (Source::File(x), Source::File(y)) => same_path(x, y),
        _ => a == b,
    }
}

fn nonempty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The login a `spec.vault.auth` stands for (sources as the loader rebased
/// them); `token: {}` without a source is `None`: "the default token".
fn auth_of(auth: &VaultAuth) -> Option<AuthSettings> {
    Some(match auth {
        VaultAuth::Token(t) => AuthSettings::Token {
            token: t.token_from.clone()?,
        },
        VaultAuth::AppRole(a) => AuthSettings::AppRole {
            mount: a.mount_path.trim_matches('/').to_string(),
            role_id: a.role_id.clone(),
            secret_id: a.secret_id_from.clone(),
        },
        VaultAuth::Jwt(j) => AuthSettings::Jwt {
            mount: j.mount_path.trim_matches('/').to_string(),
            role: j.role.clone(),
            jwt: j.token_from.clone(),
        },
        VaultAuth::Kubernetes(k) => AuthSettings::Kubernetes {
            mount: k.mount_path.trim_matches('/').to_string(),
            role: k.role.clone(),
            jwt: k
                .token_from
                .clone()
                .unwrap_or_else(|| Source::File(PathBuf::from(POD_TOKEN_FILE))),
        },
    })
}

fn same_auth(repo: &VaultAuth, op: &AuthSettings) -> bool {
    let Some(r) = auth_of(repo) else {
        // `token: {}`: whatever token the operator gave.
        return matches!(op, AuthSettings::Token { .. });
    };
    match (&r, op) {
        (AuthSettings::Token { token: a }, AuthSettings::Token { token: b }) => same_source(a, b),
        (
            AuthSettings::AppRole {
                mount: m1,
                role_id: r1,
                secret_id: s1,
            },
            AuthSettings::AppRole {
                mount: m2,
                role_id: r2,
                secret_id: s2,
            },
        ) => m1 == m2 && r1 == r2 && same_source(s1, s2),
        (
            AuthSettings::Jwt {
                mount: m1,
                role: r1,
                jwt: j1,
            },
            AuthSettings::Jwt {
                mount: m2,
                role: r2,
                jwt: j2,
            },
        )
        | (
            AuthSettings::Kubernetes {
                mount: m1,
                role: r1,
                jwt: j1,
            },
            AuthSettings::Kubernetes {
                mount: m2,
                role: r2,
                jwt: j2,
            },
        ) => m1 == m2 && r1 == r2 && same_source(j1, j2),
        _ => false,
    }
}

fn describe_auth(auth: &VaultAuth) -> String {
    match auth_of(auth) {
        Some(a) => a.describe(),
        None => "token".into(),
    }
}

/// Every `spec.vault` setting of the repository that this run refuses: one
/// that differs from the operator's, and under [`Trust::OperatorOnly`] any
/// the operator did not give. Pure: no file is read beyond resolving the
/// paths compared.
pub fn conflicts(target: Option<&VaultTarget>, op: &OperatorVault, trust: Trust) -> Vec<Conflict> {
    let mut found = Found {
        trust,
        out: Vec::new(),
    };
    let Some(t) = target else {
        return found.out;
    };
    found.check(
        &Setting {
            key: "address",
            what: "Vault address",
            flag: "--vault-addr (or VAULT_ADDR)",
        },
        nonempty(&t.address),
        op.address.as_ref(),
        |r, o| check_address(r).is_ok_and(|r| &r == o),
        String::clone,
        String::clone,
    );
    found.check(
        &Setting {
            key: "namespace",
            what: "Vault namespace",
            flag: "--vault-namespace (or VAULT_NAMESPACE)",
        },
        nonempty(&t.namespace),
        op.namespace.as_ref(),
        |r, o| r.trim_matches('/') == o.trim_matches('/'),
        String::clone,
        String::clone,
    );
    for (key, what, flag, repo, given) in [
        (
            "caBundleFile",
            "Vault TLS CA bundle",
            "--vault-ca-cert (or VAULT_CACERT)",
            &t.ca_bundle_file,
            &op.ca_bundle,
        ),
        (
            "clientCertFile",
            "Vault client certificate",
            "--vault-client-cert (or VAULT_CLIENT_CERT)",
            &t.client_cert_file,
            &op.client_cert,
        ),
        (
            "clientKeyFile",
            "Vault client key",
            "--vault-client-key (or VAULT_CLIENT_KEY)",
            &t.client_key_file,
            &op.client_key,
        ),
    ] {
        found.check(
            &Setting { key, what, flag },
            repo.as_ref(),
            given.as_ref(),
            |r, o| same_path(r, o),
            |r| r.display().to_string(),
            |o| o.display().to_string(),
        );
    }
    // `token: {}` names no login of its own: the operator's token, or the
    // default one, is the same thing.
    let repo_auth = t
        .auth
        .as_ref()
        .filter(|a| op.auth.is_some() || auth_of(a).is_some());
    found.check(
        &Setting {
            key: "auth",
            what: "Vault login",
            flag: "--vault-auth and its options (or VAULT_TOKEN)",
        },
        repo_auth,
        op.auth.as_ref(),
        |r, o| same_auth(r, o),
        |r| describe_auth(r),
        AuthSettings::describe,
    );
    found.out
}

impl VaultSettings {
    /// The settings of a run: the operator's, and where [`Trust`] lets it,
    /// the repository's `spec.vault` for what the operator left out. A
    /// repository setting that [`conflicts`] refuses is an error.
    pub fn resolve_with(
        target: Option<&VaultTarget>,
        op: &OperatorVault,
        trust: Trust,
    ) -> Result<Self, VaultError> {
        if let Some(c) = conflicts(target, op, trust).into_iter().next() {
            return Err(VaultError::Conflict {
                message: c.message,
                hint: c.hint,
            });
        }
        let empty = VaultTarget::default();
        let t = target.unwrap_or(&empty);
        let address = match &op.address {
            Some(a) => a.value.clone(),
            None => check_address(&nonempty(&t.address).ok_or(VaultError::NoAddress)?)?,
        };
        let namespace = op
            .namespace
            .as_ref()
            .map(|g| g.value.clone())
            .or_else(|| nonempty(&t.namespace));
        let pick = |o: &Option<Given<PathBuf>>, r: &Option<PathBuf>| {
            o.as_ref().map(|g| g.value.clone()).or_else(|| r.clone())
        };
        let ca_bundle = pick(&op.ca_bundle, &t.ca_bundle_file);
        let client_cert = pick(&op.client_cert, &t.client_cert_file);
        let client_key = pick(&op.client_key, &t.client_key_file);
        if client_cert.is_some() != client_key.is_some() {
            return Err(VaultError::InvalidSetting {
                name: "--vault-client-cert/--vault-client-key (clientCertFile/clientKeyFile)"
                    .into(),
                value: String::new(),
                why: "mTLS needs both the client certificate and its key".into(),
            });
        }
        if op.skip_verify {
            tracing::warn!(
                "VAULT_SKIP_VERIFY is set: the vault server's TLS certificate is not checked"
            );
        }
        let auth = match (&op.auth, t.auth.as_ref().and_then(auth_of)) {
            (Some(g), _) => g.value.clone(),
            (None, Some(repo)) => repo,
            (None, None) => match &op.home_token {
                Some(f) => AuthSettings::Token {
                    token: Source::File(f.clone()),
                },
                None => return Err(VaultError::NoToken),
            },
        };
        Ok(VaultSettings {
            address,
            namespace,
            ca_bundle,
            client_cert,
            client_key,
            client_identity: None,
            skip_verify: op.skip_verify,
            auth,
            connect_timeout: CONNECT_TIMEOUT.min(op.request_timeout),
            request_timeout: op.request_timeout,
        })
    }

    /// Plain settings for a token: used by tests and tools.
    pub fn with_token(address: &str, token: Source) -> Result<Self, VaultError> {
        Ok(VaultSettings {
            address: check_address(address)?,
            namespace: None,
            ca_bundle: None,
            client_cert: None,
            client_key: None,
            client_identity: None,
            skip_verify: false,
            auth: AuthSettings::Token { token },
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        })
    }
}

/// Checks that the address is an http(s) URL with a host, and returns it
/// without a trailing `/` (or `/v1`).
pub fn check_address(address: &str) -> Result<String, VaultError> {
    let invalid = |why: &str| VaultError::InvalidAddress {
        address: address.to_string(),
        why: why.to_string(),
    };
    let url = reqwest::Url::parse(address).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "it must not carry credentials; use spec.vault.auth",
        ));
    }
    let mut s = url.as_str().trim_end_matches('/').to_string();
    if let Some(stripped) = s.strip_suffix("/v1") {
        s = stripped.to_string();
    }
    Ok(s)
}

/// Go's `strconv.ParseBool`, which Vault uses for `VAULT_SKIP_VERIFY`.
fn parse_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn parse_timeout(v: &str) -> Option<StdDuration> {
    let v = v.trim();
    let secs = if v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse::<u64>().ok()?
    } else {
        v.parse::<crate::model::Duration>().ok()?.as_secs()
    };
    (secs > 0).then(|| StdDuration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::{AppRoleLogin, JwtLogin, KubernetesLogin, TokenAuth};
    use std::collections::HashMap;

    fn operator(flags: &VaultFlags, vars: &[(&str, &str)]) -> Result<OperatorVault, VaultError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let var = move |n: &str| map.get(n).cloned();
        let env = Env {
            var: &var,
            home: None,
        };
        OperatorVault::resolve(flags, &env)
    }

    fn env_only(vars: &[(&str, &str)]) -> OperatorVault {
        operator(&VaultFlags::default(), vars).unwrap()
    }

    fn resolve(
        target: Option<&VaultTarget>,
        vars: &[(&str, &str)],
    ) -> Result<VaultSettings, VaultError> {
        VaultSettings::resolve_with(target, &env_only(vars), Trust::FillIn)
    }

    fn target(address: &str) -> VaultTarget {
        VaultTarget {
            address: Some(address.into()),
            ..Default::default()
        }
    }

    fn keys(c: &[Conflict]) -> Vec<&str> {
        c.iter().map(|c| c.key).collect()
    }

    #[test]
    fn flag_wins_over_vault_env_which_wins_over_bao_env() {
        let flags = VaultFlags {
            address: Some("https://flag:8200/".into()),
            ..Default::default()
        };
        let op = operator(&flags, &[("VAULT_ADDR", "http://env:1")]).unwrap();
        let a = op.address.unwrap();
        assert_eq!(
            (a.value.as_str(), a.from.as_str()),
            ("https://flag:8200", "--vault-addr")
        );
        let op = env_only(&[
            ("VAULT_ADDR", "http://vault:1"),
            ("BAO_ADDR", "http://bao:2"),
        ]);
        assert_eq!(op.address.unwrap().from, "VAULT_ADDR");
        let s = resolve(None, &[("BAO_ADDR", "http://bao:2/v1"), ("BAO_TOKEN", "x")]).unwrap();
        assert_eq!(s.address, "http://bao:2");
        assert_eq!(
            s.auth,
            AuthSettings::Token {
                token: Source::Env("BAO_TOKEN".into())
            }
        );
    }

    #[test]
    fn the_repository_fills_in_only_what_the_operator_left_out() {
        // Nothing from the operator: the config's address is used (local use).
        let s = resolve(Some(&target("https://cfg:8200/")), &[("VAULT_TOKEN", "x")]).unwrap();
        assert_eq!(s.address, "https://cfg:8200");
        // The same address as the operator's: accepted.
        let s = resolve(
            Some(&target("http://env:1/")),
            &[("VAULT_ADDR", "http://env:1"), ("VAULT_TOKEN", "x")],
        )
        .unwrap();
        assert_eq!(s.address, "http://env:1");
        // Another address: refused, naming both and where the operator's came from.
        let e = resolve(
            Some(&target("https://attacker:8200")),
            &[("VAULT_ADDR", "http://env:1"), ("VAULT_TOKEN", "x")],
        )
        .unwrap_err();
        let shown = e.to_string();
        assert!(matches!(e, VaultError::Conflict { .. }), "{shown}");
        for part in [
            "spec.vault.address",
            "https://attacker:8200",
            "http://env:1",
            "VAULT_ADDR",
        ] {
            assert!(shown.contains(part), "{part}: {shown}");
        }
    }

    #[test]
    fn run_takes_nothing_from_the_repository() {
        let op = env_only(&[("VAULT_ADDR", "http://env:1"), ("VAULT_TOKEN", "x")]);
        // Repeating the operator's value is fine, even in run.
        let same = target("http://env:1");
        assert!(conflicts(Some(&same), &op, Trust::OperatorOnly).is_empty());
        // A setting the operator did not give: local use takes it, run refuses it.
        let t = VaultTarget {
            namespace: Some("team".into()),
            ..Default::default()
        };
        assert!(conflicts(Some(&t), &op, Trust::FillIn).is_empty());
        let c = conflicts(Some(&t), &op, Trust::OperatorOnly);
        assert_eq!(keys(&c), ["namespace"]);
        assert!(c[0].message.contains("certplane run"), "{c:?}");
        assert!(c[0].hint.contains("--vault-namespace"), "{c:?}");
        let e = VaultSettings::resolve_with(Some(&t), &op, Trust::OperatorOnly).unwrap_err();
        assert!(matches!(e, VaultError::Conflict { .. }), "{e}");
        // An empty namespace is no namespace.
        let blank = VaultTarget {
            namespace: Some(" ".into()),
            ..Default::default()
        };
        assert!(conflicts(Some(&blank), &op, Trust::OperatorOnly).is_empty());
        // No address anywhere in run: the operator must give one.
        let op = env_only(&[("VAULT_TOKEN", "x")]);
        let c = conflicts(Some(&target("http://cfg:1")), &op, Trust::OperatorOnly);
        assert_eq!(keys(&c), ["address"]);
    }

    #[test]
    fn namespace_rules() {
        let op = env_only(&[
            ("VAULT_ADDR", "http://v:1"),
            ("VAULT_TOKEN", "x"),
            ("BAO_NAMESPACE", "team/"),
        ]);
        let ns = |n: &str| VaultTarget {
            namespace: Some(n.into()),
            ..Default::default()
        };
        assert!(conflicts(Some(&ns("team")), &op, Trust::OperatorOnly).is_empty());
        assert_eq!(
            keys(&conflicts(Some(&ns("other")), &op, Trust::FillIn)),
            ["namespace"]
        );
        let s = VaultSettings::resolve_with(None, &op, Trust::OperatorOnly).unwrap();
        assert_eq!(s.namespace.as_deref(), Some("team/"));
    }

    #[test]
    fn tls_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "x").unwrap();
        let op = operator(
            &VaultFlags {
                ca_cert: Some(ca.clone()),
                ..Default::default()
            },
            &[("VAULT_ADDR", "http://v:1"), ("VAULT_TOKEN", "x")],
        )
        .unwrap();
        // The same file, named another way: the same setting.
        let same = VaultTarget {
            ca_bundle_file: Some(dir.path().join("./ca.pem")),
            ..Default::default()
        };
        assert!(conflicts(Some(&same), &op, Trust::OperatorOnly).is_empty());
        let other = VaultTarget {
            ca_bundle_file: Some(dir.path().join("other.pem")),
            client_cert_file: Some(dir.path().join("c.pem")),
            client_key_file: Some(dir.path().join("k.pem")),
            ..Default::default()
        };
        assert_eq!(
            keys(&conflicts(Some(&other), &op, Trust::FillIn)),
            ["caBundleFile"]
        );
        assert_eq!(
            keys(&conflicts(Some(&other), &op, Trust::OperatorOnly)),
            ["caBundleFile", "clientCertFile", "clientKeyFile"]
        );
        // The operator's client pair, with the repository silent.
        let op = env_only(&[
            ("VAULT_ADDR", "http://v:1"),
            ("VAULT_TOKEN", "x"),
            ("VAULT_CLIENT_CERT", "/c.pem"),
            ("BAO_CLIENT_KEY", "/k.pem"),
        ]);
        let s = VaultSettings::resolve_with(None, &op, Trust::OperatorOnly).unwrap();
        assert_eq!(s.client_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(s.client_key, Some(PathBuf::from("/k.pem")));
        // Half a pair is an error.
        let op = env_only(&[
            ("VAULT_ADDR", "http://v:1"),
            ("VAULT_TOKEN", "x"),
            ("VAULT_CLIENT_CERT", "/c"),
        ]);
        let e = VaultSettings::resolve_with(None, &op, Trust::FillIn).unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
    }

    #[test]
    fn auth_rules() {
        let k8s = |role: &str| VaultTarget {
            auth: Some(VaultAuth::Kubernetes(KubernetesLogin {
                role: role.into(),
                mount_path: "kubernetes".into(),
                token_from: None,
            })),
            ..Default::default()
        };
        let op = operator(
            &VaultFlags {
                auth: Some(AuthMethod::Kubernetes),
                auth_role: Some("certplane".into()),
                ..Default::default()
            },
            &[("VAULT_ADDR", "http://v:1")],
        )
        .unwrap();
        assert!(conflicts(Some(&k8s("certplane")), &op, Trust::OperatorOnly).is_empty());
        let c = conflicts(Some(&k8s("admin")), &op, Trust::FillIn);
        assert_eq!(keys(&c), ["auth"]);
        assert!(c[0].message.contains("--vault-auth"), "{c:?}");
        // `token: {}` is the operator's token, whatever it is.
        let token = VaultTarget {
            auth: Some(VaultAuth::Token(TokenAuth::default())),
            ..Default::default()
        };
        let op_token = env_only(&[("VAULT_ADDR", "http://v:1"), ("VAULT_TOKEN", "x")]);
        assert!(conflicts(Some(&token), &op_token, Trust::OperatorOnly).is_empty());
        assert_eq!(keys(&conflicts(Some(&token), &op, Trust::FillIn)), ["auth"]);
        // A token in the environment is the operator's login: the repository
        // cannot switch to another one.
        let jwt = VaultTarget {
            auth: Some(VaultAuth::Jwt(JwtLogin {
                mount_path: "jwt".into(),
                role: "ci".into(),
                token_from: Source::Env("CERTPLANE_VAR_JWT".into()),
            })),
            ..Default::default()
        };
        assert_eq!(
            keys(&conflicts(Some(&jwt), &op_token, Trust::FillIn)),
            ["auth"]
        );
        // Without any login from the operator, local use takes the repository's...
        let op_none = env_only(&[("VAULT_ADDR", "http://v:1")]);
        let s = VaultSettings::resolve_with(Some(&jwt), &op_none, Trust::FillIn).unwrap();
        assert!(matches!(s.auth, AuthSettings::Jwt { .. }), "{:?}", s.auth);
        // ...and run refuses it.
        assert_eq!(
            keys(&conflicts(Some(&jwt), &op_none, Trust::OperatorOnly)),
            ["auth"]
        );
        let e =
            VaultSettings::resolve_with(Some(&token), &op_none, Trust::OperatorOnly).unwrap_err();
        assert!(
            e.to_string().contains("VAULT_TOKEN"),
            "no token anywhere: {e}"
        );
    }

    #[test]
    fn operator_login_flags() {
        let base = [("VAULT_ADDR", "http://v:1")];
        let op = operator(
            &VaultFlags {
                auth: Some(AuthMethod::AppRole),
                role_id: Some("rid".into()),
                auth_mount: Some("/approle-ci/".into()),
                auth_secret_env: Some("SID".into()),
                ..Default::default()
            },
            &base,
        )
        .unwrap();
        assert_eq!(
            op.auth.as_ref().unwrap().value,
            AuthSettings::AppRole {
                mount: "approle-ci".into(),
                role_id: "rid".into(),
                secret_id: Source::Env("SID".into())
            }
        );
        assert_eq!(op.secret_env(), Some("SID"));
        // From the environment, as a Deployment or CI job sets it.
        let op = env_only(&[
            ("VAULT_ADDR", "http://v:1"),
            ("CERTPLANE_VAULT_AUTH", "jwt"),
            ("CERTPLANE_VAULT_AUTH_ROLE", "ci"),
            ("CERTPLANE_VAULT_AUTH_SECRET_ENV", "CI_OIDC_TOKEN"),
        ]);
        let a = op.auth.unwrap();
        assert_eq!(a.from, "CERTPLANE_VAULT_AUTH");
        assert_eq!(
            a.value,
            AuthSettings::Jwt {
                mount: "jwt".into(),
                role: "ci".into(),
                jwt: Source::Env("CI_OIDC_TOKEN".into())
            }
        );
        // Kubernetes: the pod's token by default.
        let op = env_only(&[
            ("CERTPLANE_VAULT_AUTH", "kubernetes"),
            ("CERTPLANE_VAULT_AUTH_ROLE", "certplane"),
        ]);
        assert!(matches!(
            &op.auth.unwrap().value,
            AuthSettings::Kubernetes { jwt: Source::File(p), mount, .. } if p == &PathBuf::from(POD_TOKEN_FILE) && mount == "kubernetes"
        ));
        // Mistakes name the flag.
        for (flags, want) in [
            (
                VaultFlags {
                    auth_role: Some("x".into()),
                    ..Default::default()
                },
                "--vault-auth-role needs --vault-auth",
            ),
            (
                VaultFlags {
                    auth: Some(AuthMethod::Jwt),
                    auth_secret_env: Some("T".into()),
                    ..Default::default()
                },
                "needs --vault-auth-role",
            ),
            (
                VaultFlags {
                    auth: Some(AuthMethod::AppRole),
                    role_id: Some("r".into()),
                    ..Default::default()
                },
                "needs the secret ID",
            ),
            (
                VaultFlags {
                    auth: Some(AuthMethod::Kubernetes),
                    auth_role: Some("r".into()),
                    role_id: Some("x".into()),
                    ..Default::default()
                },
                "--vault-role-id is not used by --vault-auth kubernetes",
            ),
            (
                VaultFlags {
                    auth: Some(AuthMethod::Token),
                    auth_secret_env: Some("A".into()),
                    auth_secret_file: Some("/b".into()),
                    ..Default::default()
                },
                "not both",
            ),
        ] {
            let e = operator(&flags, &base).unwrap_err();
            assert!(e.to_string().contains(want), "{want}: {e}");
        }
        let e = operator(&VaultFlags::default(), &[("CERTPLANE_VAULT_AUTH", "ldap")]).unwrap_err();
        assert!(e.to_string().contains("CERTPLANE_VAULT_AUTH"), "{e}");
    }

    #[test]
    fn missing_address_or_token_says_what_to_set() {
        let e = resolve(None, &[("VAULT_TOKEN", "x")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_ADDR"), "{e}");
        assert!(e.to_string().contains("--vault-addr"), "{e}");
        let e = resolve(None, &[("VAULT_ADDR", "http://v:1")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_TOKEN"), "{e}");
    }

    #[test]
    fn bad_addresses_are_errors_not_panics() {
        for a in [
            "vault:8200",
            "ftp://v",
            "http://",
            "not a url",
            "http://u:p@v:1",
        ] {
            let e = operator(&VaultFlags::default(), &[("VAULT_ADDR", a)]).unwrap_err();
            assert!(matches!(e, VaultError::InvalidAddress { .. }), "{a}: {e}");
            let e = resolve(Some(&target(a)), &[("VAULT_TOKEN", "x")]).unwrap_err();
            assert!(matches!(e, VaultError::InvalidAddress { .. }), "{a}: {e}");
        }
    }

    #[test]
    fn tls_namespace_timeout_and_skip_verify_from_env() {
        let s = resolve(
            None,
            &[
                ("VAULT_ADDR", "https://v:8200"),
                ("VAULT_TOKEN", "x"),
                ("BAO_NAMESPACE", "team"),
                ("VAULT_CACERT", "/ca.pem"),
                ("BAO_CLIENT_CERT", "/c.pem"),
                ("VAULT_CLIENT_KEY", "/k.pem"),
                ("VAULT_SKIP_VERIFY", "true"),
                ("CERTPLANE_VAULT_TIMEOUT", "2m"),
            ],
        )
        .unwrap();
        assert_eq!(s.namespace.as_deref(), Some("team"));
        assert_eq!(s.ca_bundle, Some(PathBuf::from("/ca.pem")));
        assert_eq!(s.client_cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(s.client_key, Some(PathBuf::from("/k.pem")));
        assert!(s.skip_verify);
        assert_eq!(s.request_timeout, StdDuration::from_secs(120));
        assert_eq!(s.connect_timeout, CONNECT_TIMEOUT);

        let e = operator(
            &VaultFlags::default(),
            &[
                ("VAULT_ADDR", "https://v"),
                ("CERTPLANE_VAULT_TIMEOUT", "soon"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("CERTPLANE_VAULT_TIMEOUT"), "{e}");
    }

    #[test]
    fn auth_methods_from_config_in_local_use() {
        let mut t = VaultTarget {
            address: Some("http://v:1".into()),
            auth: Some(VaultAuth::AppRole(AppRoleLogin {
                mount_path: "approle/".into(),
                role_id: "rid".into(),
                secret_id_from: Source::Env("SID".into()),
            })),
            ..Default::default()
        };
        let s = resolve(Some(&t), &[]).unwrap();
        assert_eq!(
            s.auth,
            AuthSettings::AppRole {
                mount: "approle".into(),
                role_id: "rid".into(),
                secret_id: Source::Env("SID".into())
            }
        );
        t.auth = Some(VaultAuth::Kubernetes(KubernetesLogin {
            role: "certplane".into(),
            mount_path: "kubernetes".into(),
            token_from: None,
        }));
        let s = resolve(Some(&t), &[]).unwrap();
        assert!(
            matches!(&s.auth, AuthSettings::Kubernetes { jwt: Source::File(p), .. } if p == &PathBuf::from(POD_TOKEN_FILE))
        );
        t.auth = Some(VaultAuth::Token(TokenAuth {
            token_from: Some(Source::Value("hvs.inline-secret".into())),
        }));
        let s = resolve(Some(&t), &[]).unwrap();
        assert_eq!(
            s.auth,
            AuthSettings::Token {
                token: Source::Value("hvs.inline-secret".into())
            }
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("hvs.inline-secret"), "{shown}");
        // The operator's token conflicts with the config's: never a secret in the message.
        let e = resolve(Some(&t), &[("VAULT_TOKEN", "other")]).unwrap_err();
        assert!(!e.to_string().contains("hvs.inline-secret"), "{e}");
    }

    #[test]
    fn vault_token_file_in_home() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".vault-token"), "hvs.x").unwrap();
        let var = |n: &str| (n == "VAULT_ADDR").then(|| "http://v:1".to_string());
        let env = Env {
            var: &var,
            home: Some(dir.path().to_path_buf()),
        };
        let op = OperatorVault::resolve(&VaultFlags::default(), &env).unwrap();
        assert!(
            op.auth.is_none(),
            "~/.vault-token is a fallback, not a choice"
        );
        let s = VaultSettings::resolve_with(None, &op, Trust::OperatorOnly).unwrap();
        assert_eq!(
            s.auth,
            AuthSettings::Token {
                token: Source::File(dir.path().join(".vault-token"))
            }
        );
    }
}
