//! Typed addresses of managed objects: one [`Addr`] type, one `Display`,
//! one parser ([`std::str::FromStr`]), and serde through that same string.
//!
//! A Vault object is addressed by its API path (`vault:pki_int/roles/web`,
//! `vault:sys/mounts/pki`), so the address a user reads in a plan is the path
//! they would give `bao read`. A [`VaultAddr`] knows which kind of path it
//! is and its parts (mount, name), so nothing parses a path string back. A
//! cluster object is `group/Kind/namespace/name`
//! (`cert-manager.io/Issuer/sandbox/vault-issuer`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The address of one managed object.
///
/// Shared, not copied: a plan of 10,000 roles holds an address per desired
/// resource, per change, per dependency and per approved change, and a
/// clone of an `Addr` is a reference count, not two or four small strings
/// (each a heap block of its own) — and the address is two words wide.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addr {
    /// A Vault object, by API path (no leading `/v1/`).
    Vault(Arc<VaultAddr>),
    /// A cluster object: `group/Kind/namespace/name` (core group `core`,
    /// cluster-scoped objects without the namespace part).
    Kube(Arc<KubeRef>),
}

/// The API path of a Vault object certplane manages, by kind of path. A
/// mount path may hold `/` (`pki/int`); a name never does (validation
/// refuses one).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VaultAddr {
    /// `sys/mounts/<path>`: a secrets engine (a PKI mount).
    Mount {
        /// The mount path.
        path: String,
    },
    /// `sys/auth/<path>`: an auth method.
    AuthMount {
        /// The auth mount path.
        path: String,
    },
    /// `sys/policies/acl/<name>`.
    Policy {
        /// The policy name.
        name: String,
    },
    /// `<mount>/issuer/<name>`: a CA of a PKI mount (`default`: the mount's
    /// default issuer).
    Issuer {
        /// The PKI mount.
        mount: String,
        /// The issuer name.
        name: String,
    },
    /// `<mount>/key/<name>`: a key of a PKI mount.
    Key {
        /// The PKI mount.
        mount: String,
        /// The key name.
        name: String,
    },
    /// `<mount>/config/urls`.
    Urls {
        /// The PKI mount.
        mount: String,
    },
    /// `<mount>/config/crl`.
    Crl {
        /// The PKI mount.
        mount: String,
    },
    /// `<mount>/config/<name>` for `cluster`, `auto-tidy` and `acme`: a
    /// setting of a PKI mount.
    PkiConfig {
        /// The PKI mount.
        mount: String,
        /// The config's name (one of [`PKI_CONFIGS`]).
        name: String,
    },
    /// The settings of a CA (`usage`, AIA URLs...), read from and patched
    /// at `<mount>/issuer/<name>`; shown as `<mount>/issuer/<name>/settings`
    /// to tell them from the CA itself.
    IssuerSettings {
        /// The PKI mount.
        mount: String,
        /// The issuer name (`default`: the mount's default issuer).
        name: String,
    },
    /// `<mount>/roles/<name>`: a PKI role.
    Role {
        /// The PKI mount.
        mount: String,
        /// The role name.
        name: String,
    },
    /// `auth/<mount>/config`.
    AuthConfig {
        /// The auth mount.
        mount: String,
    },
    /// `auth/<mount>/role/<name>`: a role of a Kubernetes, AppRole or JWT
    /// auth method.
    AuthRole {
        /// The auth mount.
        mount: String,
        /// The role name.
        name: String,
    },
    /// `auth/<mount>/role/<name>/role-id`: an AppRole's role ID.
    RoleId {
        /// The auth mount.
        mount: String,
        /// The role name.
        name: String,
    },
    /// `auth/<mount>/certs/<name>`: a role of TLS certificate auth.
    CertRole {
        /// The auth mount.
        mount: String,
        /// The role name.
        name: String,
    },
}

/// The `config/<name>` of a PKI mount that [`VaultAddr::PkiConfig`] stands
/// for.
pub const PKI_CONFIGS: &[&str] = &["cluster", "auto-tidy", "acme"];

/// A string that is not a certplane address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a certplane address: {text:?} ({why})")]
pub struct AddrError {
    /// What was given.
    pub text: String,
    /// What was expected.
    pub why: &'static str,
}

impl VaultAddr {
    /// `sys/mounts/<path>`.
    pub fn mount(path: &str) -> VaultAddr {
        VaultAddr::Mount {
            path: path.trim_matches('/').to_string(),
        }
    }

    /// `sys/auth/<path>`.
    pub fn auth_mount(path: &str) -> VaultAddr {
        VaultAddr::AuthMount {
            path: path.trim_matches('/').to_string(),
        }
    }

    /// `sys/policies/acl/<name>`.
    pub fn policy(name: &str) -> VaultAddr {
        VaultAddr::Policy {
            name: name.to_string(),
        }
    }

    /// `<mount>/issuer/<name>`; no name: the mount's default issuer.
    pub fn issuer(mount: &str, name: Option<&str>) -> VaultAddr {
        VaultAddr::Issuer {
            mount: mount.trim_matches('/').to_string(),
            name: name.unwrap_or("default").to_string(),
        }
    }

    /// `<mount>/key/<name>`.
    pub fn key(mount: &str, name: &str) -> VaultAddr {
        VaultAddr::Key {
            mount: mount.trim_matches('/').to_string(),
            name: name.to_string(),
        }
    }

    /// `<mount>/config/<name>` (`cluster`, `auto-tidy`, `acme`).
    pub fn pki_config(mount: &str, name: &str) -> VaultAddr {
        VaultAddr::PkiConfig {
            mount: mount.trim_matches('/').to_string(),
            name: name.to_string(),
        }
    }

    /// The settings of a CA: `<mount>/issuer/<name>` (`default` without a
    /// name).
    pub fn issuer_settings(mount: &str, name: Option<&str>) -> VaultAddr {
        VaultAddr::IssuerSettings {
            mount: mount.trim_matches('/').to_string(),
            name: name.unwrap_or("default").to_string(),
        }
    }

    /// The path Vault's API answers at: [`VaultAddr::path`], but for a CA's
    /// settings, its issuer's path.
    pub fn api_path(&self) -> String {
        match self {
            VaultAddr::IssuerSettings { mount, name } => format!("{mount}/issuer/{name}"),
            other => other.path(),
        }
    }

    /// `<mount>/roles/<name>`.
    pub fn role(mount: &str, name: &str) -> VaultAddr {
        VaultAddr::Role {
            mount: mount.trim_matches('/').to_string(),
            name: name.to_string(),
        }
    }

    /// `auth/<mount>/role/<name>`.
    pub fn auth_role(mount: &str, name: &str) -> VaultAddr {
        VaultAddr::AuthRole {
            mount: mount.trim_matches('/').to_string(),
            name: name.to_string(),
        }
    }

    /// `auth/<mount>/certs/<name>`.
    pub fn cert_role(mount: &str, name: &str) -> VaultAddr {
        VaultAddr::CertRole {
            mount: mount.trim_matches('/').to_string(),
            name: name.to_string(),
        }
    }

    /// The API path (what `Display` shows after `vault:`).
    pub fn path(&self) -> String {
        self.to_string()
    }

    /// The mount (secrets engine or auth method) the object lives in; for a
    /// mount itself, its own path.
    pub fn mount_path(&self) -> &str {
        match self {
            VaultAddr::Mount { path } | VaultAddr::AuthMount { path } => path,
            VaultAddr::Policy { .. } => "sys",
            VaultAddr::Issuer { mount, .. }
            | VaultAddr::Key { mount, .. }
            | VaultAddr::Urls { mount }
            | VaultAddr::Crl { mount }
            | VaultAddr::PkiConfig { mount, .. }
            | VaultAddr::IssuerSettings { mount, .. }
            | VaultAddr::Role { mount, .. }
            | VaultAddr::AuthConfig { mount }
            | VaultAddr::AuthRole { mount, .. }
            | VaultAddr::RoleId { mount, .. }
            | VaultAddr::CertRole { mount, .. } => mount,
        }
    }

    /// The name of the object inside its mount or table, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            VaultAddr::Policy { name }
            | VaultAddr::Issuer { name, .. }
            | VaultAddr::IssuerSettings { name, .. }
            | VaultAddr::Key { name, .. }
            | VaultAddr::Role { name, .. }
            | VaultAddr::AuthRole { name, .. }
            | VaultAddr::RoleId { name, .. }
            | VaultAddr::CertRole { name, .. } => Some(name),
            VaultAddr::Mount { .. }
            | VaultAddr::AuthMount { .. }
            | VaultAddr::Urls { .. }
            | VaultAddr::Crl { .. }
            | VaultAddr::PkiConfig { .. }
            | VaultAddr::AuthConfig { .. } => None,
        }
    }

    /// The mount the object lives in, as an address (`sys/mounts/<m>` or
    /// `sys/auth/<m>`): it exists only if that does. `None` for mounts and
    /// policies.
    pub fn parent(&self) -> Option<VaultAddr> {
        match self {
            VaultAddr::Mount { .. } | VaultAddr::AuthMount { .. } | VaultAddr::Policy { .. } => {
                None
            }
            VaultAddr::Issuer { mount, .. }
            | VaultAddr::Key { mount, .. }
            | VaultAddr::Urls { mount }
            | VaultAddr::Crl { mount }
            | VaultAddr::PkiConfig { mount, .. }
            | VaultAddr::IssuerSettings { mount, .. }
            | VaultAddr::Role { mount, .. } => Some(VaultAddr::Mount {
                path: mount.clone(),
            }),
            VaultAddr::AuthConfig { mount }
            | VaultAddr::AuthRole { mount, .. }
            | VaultAddr::RoleId { mount, .. }
            | VaultAddr::CertRole { mount, .. } => Some(VaultAddr::AuthMount {
                path: mount.clone(),
            }),
        }
    }
}

impl fmt::Display for VaultAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VaultAddr::Mount { path } => write!(f, "sys/mounts/{path}"),
            VaultAddr::AuthMount { path } => write!(f, "sys/auth/{path}"),
            VaultAddr::Policy { name } => write!(f, "sys/policies/acl/{name}"),
            VaultAddr::Issuer { mount, name } => write!(f, "{mount}/issuer/{name}"),
            VaultAddr::Key { mount, name } => write!(f, "{mount}/key/{name}"),
            VaultAddr::Urls { mount } => write!(f, "{mount}/config/urls"),
            VaultAddr::Crl { mount } => write!(f, "{mount}/config/crl"),
            VaultAddr::PkiConfig { mount, name } => write!(f, "{mount}/config/{name}"),
            VaultAddr::IssuerSettings { mount, name } => {
                write!(f, "{mount}/issuer/{name}/settings")
            }
            VaultAddr::Role { mount, name } => write!(f, "{mount}/roles/{name}"),
            VaultAddr::AuthConfig { mount } => write!(f, "auth/{mount}/config"),
            VaultAddr::AuthRole { mount, name } => write!(f, "auth/{mount}/role/{name}"),
            VaultAddr::RoleId { mount, name } => write!(f, "auth/{mount}/role/{name}/role-id"),
            VaultAddr::CertRole { mount, name } => write!(f, "auth/{mount}/certs/{name}"),
        }
    }
}

/// `<mount><sep><name>` with a non-empty mount and a name without `/`.
fn split_named<'a>(path: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let (mount, name) = path.rsplit_once(sep)?;
    (!mount.is_empty() && !name.is_empty() && !name.contains('/')).then_some((mount, name))
}

impl FromStr for VaultAddr {
    type Err = AddrError;

    /// Parses an API path (without `vault:`), the inverse of `Display`.
    fn from_str(s: &str) -> Result<VaultAddr, AddrError> {
        let bad = || AddrError {
            text: s.to_string(),
            why: "expected the API path of a mount, policy, issuer, key, role, auth role or config",
        };
        let own = |x: &str| x.to_string();
        let nonempty = |x: &str| (!x.is_empty()).then(|| own(x));
        if let Some(p) = s.strip_prefix("sys/mounts/") {
            return nonempty(p)
                .map(|path| VaultAddr::Mount { path })
                .ok_or_else(bad);
        }
        if let Some(p) = s.strip_prefix("sys/auth/") {
            return nonempty(p)
                .map(|path| VaultAddr::AuthMount { path })
                .ok_or_else(bad);
        }
        if let Some(n) = s.strip_prefix("sys/policies/acl/") {
            return nonempty(n)
                .filter(|n| !n.contains('/'))
                .map(|name| VaultAddr::Policy { name })
                .ok_or_else(bad);
        }
        if let Some(rest) = s.strip_prefix("auth/") {
            if let Some(m) = rest.strip_suffix("/config").filter(|m| !m.is_empty()) {
                return Ok(VaultAddr::AuthConfig { mount: own(m) });
            }
            if let Some((mount, name)) = rest
                .strip_suffix("/role-id")
                .and_then(|r| split_named(r, "/role/"))
            {
                return Ok(VaultAddr::RoleId {
                    mount: own(mount),
                    name: own(name),
                });
            }
            if let Some((mount, name)) = split_named(rest, "/role/") {
                return Ok(VaultAddr::AuthRole {
                    mount: own(mount),
                    name: own(name),
                });
            }
            if let Some((mount, name)) = split_named(rest, "/certs/") {
                return Ok(VaultAddr::CertRole {
                    mount: own(mount),
                    name: own(name),
                });
            }
            return Err(bad());
        }
        if let Some(m) = s.strip_suffix("/config/urls").filter(|m| !m.is_empty()) {
            return Ok(VaultAddr::Urls { mount: own(m) });
        }
        if let Some(m) = s.strip_suffix("/config/crl").filter(|m| !m.is_empty()) {
            return Ok(VaultAddr::Crl { mount: own(m) });
        }
        for name in PKI_CONFIGS {
            if let Some(m) = s
                .strip_suffix(&format!("/config/{name}"))
                .filter(|m| !m.is_empty())
            {
                return Ok(VaultAddr::pki_config(m, name));
            }
        }
        if let Some((mount, name)) = s
            .strip_suffix("/settings")
            .and_then(|r| split_named(r, "/issuer/"))
        {
            return Ok(VaultAddr::IssuerSettings {
                mount: own(mount),
                name: own(name),
            });
        }
        type Make = fn(String, String) -> VaultAddr;
        let named: [(&str, Make); 3] = [
            ("/roles/", |mount, name| VaultAddr::Role { mount, name }),
            ("/issuer/", |mount, name| VaultAddr::Issuer { mount, name }),
            ("/key/", |mount, name| VaultAddr::Key { mount, name }),
        ];
        named
            .iter()
            .find_map(|(sep, make)| split_named(s, sep).map(|(m, n)| make(own(m), own(n))))
            .ok_or_else(bad)
    }
}

/// The identity of a cluster object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KubeRef {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version (`v1`); not part of the identity's display, so an
    /// address read back from its string has none (`""`).
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (None: cluster-scoped).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl fmt::Display for KubeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        match &self.namespace {
            Some(ns) => write!(f, "{group}/{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{group}/{}/{}", self.kind, self.name),
        }
    }
}

impl FromStr for KubeRef {
    type Err = AddrError;

    /// Parses `group/Kind/namespace/name` or `group/Kind/name` (group
    /// `core` for the core group). The version is not part of the string.
    fn from_str(s: &str) -> Result<KubeRef, AddrError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(AddrError {
                text: s.to_string(),
                why: "expected group/Kind/namespace/name or group/Kind/name",
            });
        }
        let (group, kind, namespace, name) = match parts[..] {
            [g, k, ns, n] => (g, k, Some(ns.to_string()), n),
            [g, k, n] => (g, k, None, n),
            _ => {
                return Err(AddrError {
                    text: s.to_string(),
                    why: "expected group/Kind/namespace/name or group/Kind/name",
                });
            }
        };
        Ok(KubeRef {
            group: if group == "core" { "" } else { group }.to_string(),
            version: String::new(),
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        })
    }
}

impl Addr {
    /// Parses a Vault API path (no `vault:`): `pki/roles/web`.
    pub fn parse_vault(path: &str) -> Result<Addr, AddrError> {
        path.parse::<VaultAddr>().map(Addr::from)
    }

    /// The Vault address, for a Vault object.
    pub fn as_vault(&self) -> Option<&VaultAddr> {
        match self {
            Addr::Vault(v) => Some(v),
            Addr::Kube(_) => None,
        }
    }

    /// Whether it is a Vault object's.
    pub fn is_vault(&self) -> bool {
        matches!(self, Addr::Vault(_))
    }

    /// The Vault API path, for a Vault object.
    pub fn vault_path(&self) -> Option<String> {
        self.as_vault().map(VaultAddr::path)
    }
}

impl From<VaultAddr> for Addr {
    fn from(v: VaultAddr) -> Addr {
        Addr::Vault(Arc::new(v))
    }
}

impl From<KubeRef> for Addr {
    fn from(k: KubeRef) -> Addr {
        Addr::Kube(Arc::new(k))
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Vault(v) => write!(f, "vault:{v}"),
            Addr::Kube(k) => write!(f, "{k}"),
        }
    }
}

impl FromStr for Addr {
    type Err = AddrError;

    /// Parses what `Display` writes: `vault:<path>`, or a cluster object's
    /// `group/Kind/[namespace/]name`.
    fn from_str(s: &str) -> Result<Addr, AddrError> {
        match s.strip_prefix("vault:") {
            Some(p) => p.parse::<VaultAddr>().map(Addr::from),
            None => s.parse::<KubeRef>().map(Addr::from),
        }
    }
}

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// In a JSON Schema (the plan file's, the plan report's) an address is its
/// one string form.
impl schemars::JsonSchema for Addr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Addr".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An object's address: `vault:<API path>` for a Vault object (`vault:pki_int/roles/web`), `<group>/<Kind>/<namespace>/<name>` for a cluster object (`cert-manager.io/Issuer/sandbox/vault-issuer`; core group `core`, no namespace part when cluster-scoped).",
            "type": "string",
            "minLength": 1,
        })
    }
}

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Addr, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_shape() -> Vec<VaultAddr> {
        vec![
            VaultAddr::mount("pki/int"),
            VaultAddr::auth_mount("kubernetes"),
            VaultAddr::policy("web-issuer"),
            VaultAddr::issuer("pki_int", Some("int-2026")),
            VaultAddr::issuer("pki", None),
            VaultAddr::key("pki/int", "certplane-pending-int-ec256"),
            VaultAddr::Urls {
                mount: "pki".into(),
            },
            VaultAddr::Crl {
                mount: "pki/int".into(),
            },
            VaultAddr::pki_config("pki_int", "auto-tidy"),
            VaultAddr::pki_config("pki", "acme"),
            VaultAddr::issuer_settings("pki_int", Some("int-2026")),
            VaultAddr::role("pki_int", "web"),
            VaultAddr::AuthConfig {
                mount: "k8s/prod".into(),
            },
            VaultAddr::auth_role("approle", "cert-manager"),
            VaultAddr::RoleId {
                mount: "approle".into(),
                name: "cert-manager".into(),
            },
            VaultAddr::cert_role("cert", "cert-manager"),
        ]
    }

    #[test]
    fn displays_vault_paths_and_cluster_objects() {
        let a = Addr::from(VaultAddr::role("pki_int", "web"));
        assert_eq!(a.to_string(), "vault:pki_int/roles/web");
        let k = Addr::from(KubeRef {
            group: "cert-manager.io".into(),
            version: "v1".into(),
            kind: "Issuer".into(),
            namespace: Some("sandbox".into()),
            name: "vault-issuer".into(),
        });
        assert_eq!(k.to_string(), "cert-manager.io/Issuer/sandbox/vault-issuer");
        let texts: Vec<String> = every_shape().iter().map(VaultAddr::path).collect();
        assert_eq!(
            texts,
            [
                "sys/mounts/pki/int",
                "sys/auth/kubernetes",
                "sys/policies/acl/web-issuer",
                "pki_int/issuer/int-2026",
                "pki/issuer/default",
                "pki/int/key/certplane-pending-int-ec256",
                "pki/config/urls",
                "pki/int/config/crl",
                "pki_int/config/auto-tidy",
                "pki/config/acme",
                "pki_int/issuer/int-2026/settings",
                "pki_int/roles/web",
                "auth/k8s/prod/config",
                "auth/approle/role/cert-manager",
                "auth/approle/role/cert-manager/role-id",
                "auth/cert/certs/cert-manager",
            ]
        );
    }

    #[test]
    fn a_clone_of_an_address_shares_it() {
        // Two words wide, whatever the kind; a clone copies no string.
        assert_eq!(
            std::mem::size_of::<Addr>(),
            2 * std::mem::size_of::<usize>()
        );
        let v = Addr::from(VaultAddr::role("pki_int", "web"));
        let k: Addr = "cert-manager.io/Issuer/sandbox/vault-issuer"
            .parse()
            .unwrap();
        for a in [v, k] {
            let b = a.clone();
            match (&a, &b) {
                (Addr::Vault(x), Addr::Vault(y)) => assert!(Arc::ptr_eq(x, y)),
                (Addr::Kube(x), Addr::Kube(y)) => assert!(Arc::ptr_eq(x, y)),
                _ => panic!("{a} cloned into another kind"),
            }
        }
    }

    #[test]
    fn the_parser_reads_back_what_display_writes() {
        for v in every_shape() {
            let a = Addr::from(v.clone());
            assert_eq!(a.to_string().parse::<Addr>(), Ok(a.clone()), "{a}");
            assert_eq!(v.path().parse::<VaultAddr>(), Ok(v.clone()));
        }
        let k: Addr = "cert-manager.io/Issuer/sandbox/vault-issuer"
            .parse()
            .unwrap();
        assert_eq!(k.to_string(), "cert-manager.io/Issuer/sandbox/vault-issuer");
        let ns: Addr = "core/Namespace/sandbox".parse().unwrap();
        match &ns {
            Addr::Kube(r) => {
                assert_eq!((r.group.as_str(), r.namespace.as_deref()), ("", None));
            }
            Addr::Vault(_) => panic!("{ns:?}"),
        }
        assert_eq!(ns.to_string(), "core/Namespace/sandbox");
    }

    #[test]
    fn parts_and_parents_come_from_the_shape() {
        let role = VaultAddr::role("pki/int", "web");
        assert_eq!(role.mount_path(), "pki/int");
        assert_eq!(role.name(), Some("web"));
        assert_eq!(role.parent(), Some(VaultAddr::mount("pki/int")));
        let cert = VaultAddr::cert_role("cert", "cm");
        assert_eq!(cert.parent(), Some(VaultAddr::auth_mount("cert")));
        let config: VaultAddr = "auth/k8s/config".parse().unwrap();
        assert_eq!(config.parent(), Some(VaultAddr::auth_mount("k8s")));
        assert_eq!(VaultAddr::policy("p").parent(), None);
        assert_eq!(VaultAddr::mount("pki").parent(), None);
        // A mount whose path has a segment that looks like a collection.
        let odd: VaultAddr = "pki/roles/x/roles/web".parse().unwrap();
        assert_eq!(odd, VaultAddr::role("pki/roles/x", "web"));
        // A role named `settings` is a role, not an issuer's settings.
        let role: VaultAddr = "pki/roles/settings".parse().unwrap();
        assert_eq!(role, VaultAddr::role("pki", "settings"));
        // A CA's settings are read and written at its issuer's path.
        let s = VaultAddr::issuer_settings("pki", Some("root-1"));
        assert_eq!(s.api_path(), "pki/issuer/root-1");
        assert_eq!(s.parent(), Some(VaultAddr::mount("pki")));
        assert_eq!(
            VaultAddr::pki_config("pki", "acme").api_path(),
            "pki/config/acme"
        );
    }

    #[test]
    fn what_is_not_an_address_is_refused_with_what_was_expected() {
        for bad in [
            "vault:",
            "vault:pki",
            "vault:sys/mounts/",
            "vault:auth/k8s/unknown/x",
            "vault:pki/roles/",
            "vault:/roles/web",
            "Issuer/x",
            "a/b/c/d/e",
            "a//c",
        ] {
            let e = bad.parse::<Addr>().unwrap_err();
            assert!(
                e.to_string().contains("not a certplane address"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn serde_writes_the_one_string_form() {
        let a = Addr::from(VaultAddr::role("pki_int", "web"));
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!("vault:pki_int/roles/web")
        );
        let back: Addr = serde_json::from_str("\"vault:sys/policies/acl/web\"").unwrap();
        assert_eq!(back, Addr::from(VaultAddr::policy("web")));
        let e = serde_json::from_str::<Addr>("{\"Vault\": \"pki/roles/web\"}").unwrap_err();
        assert!(e.to_string().contains("string"), "{e}");
    }
}
