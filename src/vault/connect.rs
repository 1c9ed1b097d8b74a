//! Where Vault is and how certplane logs in: [`VaultSettings`], resolved from
//! `certplane.yaml`'s `spec.vault` and the environment variables Vault users
//! already have (`VAULT_*`, then `BAO_*`).

use std::fmt;
use std::path::PathBuf;
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

/// Where settings come from besides the config: the environment and the
/// home directory (a seam for tests).
pub struct Env<'a> {
    /// Reads a variable (`None`: unset or empty).
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// The home directory, for `~/.vault-token`.
    pub home: Option<PathBuf>,
}

impl Env<'_> {
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

impl VaultSettings {
    /// Resolves the settings from the config (`spec.vault`, if any) and the
    /// process environment.
    pub fn resolve(target: Option<&VaultTarget>) -> Result<Self, VaultError> {
        let env = Env {
            var: &process_var,
            home: std::env::var_os("HOME").map(PathBuf::from),
        };
        Self::resolve_with(target, &env)
    }

    /// [`VaultSettings::resolve`] against a given environment.
    pub fn resolve_with(target: Option<&VaultTarget>, env: &Env<'_>) -> Result<Self, VaultError> {
        let empty = VaultTarget::default();
        let t = target.unwrap_or(&empty);
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());

        let address = nonempty(&t.address)
            .or_else(|| env.first(&["VAULT_ADDR", "BAO_ADDR"]).map(|(_, v)| v))
            .ok_or(VaultError::NoAddress)?;
        let address = check_address(address.trim())?;

        let namespace = nonempty(&t.namespace).or_else(|| {
            env.first(&["VAULT_NAMESPACE", "BAO_NAMESPACE"])
                .map(|(_, v)| v)
        });
        let path_from = |cfg: &Option<PathBuf>, names: &[&str]| {
            cfg.clone()
                .or_else(|| env.first(names).map(|(_, v)| PathBuf::from(v)))
        };
        let ca_bundle = path_from(&t.ca_bundle_file, &["VAULT_CACERT", "BAO_CACERT"]);
        let client_cert = path_from(
            &t.client_cert_file,
            &["VAULT_CLIENT_CERT", "BAO_CLIENT_CERT"],
        );
        let client_key = path_from(&t.client_key_file, &["VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"]);
        if client_cert.is_some() != client_key.is_some() {
            return Err(VaultError::InvalidSetting {
                name: "clientCertFile/clientKeyFile".into(),
                value: String::new(),
                why: "mTLS needs both the client certificate and its key".into(),
            });
        }
        let skip_verify = match env.first(&["VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY"]) {
            Some((name, v)) => parse_bool(&v).ok_or(VaultError::InvalidSetting {
                name,
                value: v.clone(),
                why: "expected true or false".into(),
            })?,
            None => false,
        };
        if skip_verify {
            tracing::warn!(
                "VAULT_SKIP_VERIFY is set: the vault server's TLS certificate is not checked"
            );
        }
        let request_timeout = match env.first(&["CERTPLANE_VAULT_TIMEOUT"]) {
            Some((name, v)) => parse_timeout(&v).ok_or(VaultError::InvalidSetting {
                name,
                value: v.clone(),
                why: "expected a number of seconds (e.g. 30) or a duration (e.g. 2m)".into(),
            })?,
            None => REQUEST_TIMEOUT,
        };

        let auth = match &t.auth {
            None => token_auth(None, env)?,
            Some(VaultAuth::Token(tok)) => token_auth(tok.token_from.clone(), env)?,
            Some(VaultAuth::AppRole(a)) => AuthSettings::AppRole {
                mount: a.mount_path.trim_matches('/').to_string(),
                role_id: a.role_id.clone(),
                secret_id: a.secret_id_from.clone(),
            },
            Some(VaultAuth::Jwt(j)) => AuthSettings::Jwt {
                mount: j.mount_path.trim_matches('/').to_string(),
                role: j.role.clone(),
                jwt: j.token_from.clone(),
            },
            Some(VaultAuth::Kubernetes(k)) => AuthSettings::Kubernetes {
                mount: k.mount_path.trim_matches('/').to_string(),
                role: k.role.clone(),
                jwt: k
                    .token_from
                    .clone()
                    .unwrap_or_else(|| Source::File(PathBuf::from(POD_TOKEN_FILE))),
            },
        };

        Ok(VaultSettings {
            address,
            namespace,
            ca_bundle,
            client_cert,
            client_key,
            client_identity: None,
            skip_verify,
            auth,
            connect_timeout: CONNECT_TIMEOUT.min(request_timeout),
            request_timeout,
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

/// `token: {}`: the config's source, else `VAULT_TOKEN`, `BAO_TOKEN`,
/// `~/.vault-token`.
fn token_auth(from: Option<Source>, env: &Env<'_>) -> Result<AuthSettings, VaultError> {
    if let Some(token) = from {
        return Ok(AuthSettings::Token { token });
    }
    if let Some((name, _)) = env.first(&["VAULT_TOKEN", "BAO_TOKEN"]) {
        return Ok(AuthSettings::Token {
            token: Source::Env(name),
        });
    }
    if let Some(home) = &env.home {
        let file = home.join(".vault-token");
        if file.is_file() {
            return Ok(AuthSettings::Token {
                token: Source::File(file),
            });
        }
    }
    Err(VaultError::NoToken)
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
    use crate::model::config::{AppRoleLogin, KubernetesLogin, TokenAuth};
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve(
        target: Option<&VaultTarget>,
        vars: &[(&str, &str)],
    ) -> Result<VaultSettings, VaultError> {
        let map = env_of(vars);
        let var = move |n: &str| map.get(n).cloned();
        let env = Env {
            var: &var,
            home: None,
        };
        VaultSettings::resolve_with(target, &env)
    }

    #[test]
    fn config_wins_over_vault_env_which_wins_over_bao_env() {
        let t = VaultTarget {
            address: Some("https://cfg:8200/".into()),
            ..Default::default()
        };
        let s = resolve(
            Some(&t),
            &[("VAULT_ADDR", "http://env:1"), ("VAULT_TOKEN", "x")],
        )
        .unwrap();
        assert_eq!(s.address, "https://cfg:8200");
        let s = resolve(
            None,
            &[
                ("VAULT_ADDR", "http://vault:1"),
                ("BAO_ADDR", "http://bao:2"),
                ("BAO_TOKEN", "x"),
            ],
        )
        .unwrap();
        assert_eq!(s.address, "http://vault:1");
        assert_eq!(
            s.auth,
            AuthSettings::Token {
                token: Source::Env("BAO_TOKEN".into())
            }
        );
        let s = resolve(
            None,
            &[("BAO_ADDR", "http://bao:2/v1"), ("VAULT_TOKEN", "x")],
        )
        .unwrap();
        assert_eq!(s.address, "http://bao:2");
    }

    #[test]
    fn missing_address_or_token_says_what_to_set() {
        let e = resolve(None, &[("VAULT_TOKEN", "x")]).unwrap_err();
        assert!(e.to_string().contains("VAULT_ADDR"), "{e}");
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
            let e = resolve(None, &[("VAULT_ADDR", a), ("VAULT_TOKEN", "x")]).unwrap_err();
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

        let e = resolve(
            None,
            &[
                ("VAULT_ADDR", "https://v"),
                ("VAULT_TOKEN", "x"),
                ("CERTPLANE_VAULT_TIMEOUT", "soon"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("CERTPLANE_VAULT_TIMEOUT"), "{e}");
        let e = resolve(
            None,
            &[
                ("VAULT_ADDR", "https://v"),
                ("VAULT_TOKEN", "x"),
                ("VAULT_CLIENT_CERT", "/c"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("both"), "{e}");
    }

    #[test]
    fn auth_methods_from_config() {
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
        let s = resolve(Some(&t), &[("VAULT_TOKEN", "other")]).unwrap();
        assert_eq!(
            s.auth,
            AuthSettings::Token {
                token: Source::Value("hvs.inline-secret".into())
            }
        );
        let shown = format!("{s:?}");
        assert!(!shown.contains("hvs.inline-secret"), "{shown}");
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
        let s = VaultSettings::resolve_with(None, &env).unwrap();
        assert_eq!(
            s.auth,
            AuthSettings::Token {
                token: Source::File(dir.path().join(".vault-token"))
            }
        );
    }
}
