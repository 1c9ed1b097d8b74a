//! Typed addresses of managed objects: one [`Addr`] type, one `Display`.
//!
//! A Vault object is addressed by its API path (`vault:pki_int/roles/web`,
//! `vault:sys/mounts/pki`), so the address a user reads in a plan is the path
//! they would give `bao read`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The address of one managed object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Addr {
    /// A Vault object, by API path (no leading `/v1/`).
    Vault(String),
    /// A cluster object: `group/Kind/namespace/name` (core group `core`,
    /// cluster-scoped objects without the namespace part).
    Kube(KubeRef),
}

/// The identity of a cluster object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KubeRef {
    /// API group (`""` for the core group).
    pub group: String,
    /// API version (`v1`); not part of the identity's display.
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

impl Addr {
    /// A Vault address.
    pub fn vault(path: impl Into<String>) -> Self {
        Addr::Vault(path.into())
    }

    /// The Vault API path, for a Vault address.
    pub fn vault_path(&self) -> Option<&str> {
        match self {
            Addr::Vault(p) => Some(p),
            Addr::Kube(_) => None,
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Vault(p) => write!(f, "vault:{p}"),
            Addr::Kube(k) => write!(f, "{k}"),
        }
    }
}

impl From<Addr> for String {
    fn from(a: Addr) -> String {
        a.to_string()
    }
}

impl TryFrom<String> for Addr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.strip_prefix("vault:") {
            Some(p) if !p.is_empty() => Ok(Addr::Vault(p.to_string())),
            _ => Err(format!(
                "not a certplane address: {s:?} (expected vault:<path>)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_vault_paths_and_cluster_objects() {
        let a = Addr::vault("pki_int/roles/web");
        assert_eq!(a.to_string(), "vault:pki_int/roles/web");
        let k = Addr::Kube(KubeRef {
            group: "cert-manager.io".into(),
            version: "v1".into(),
            kind: "Issuer".into(),
            namespace: Some("sandbox".into()),
            name: "vault-issuer".into(),
        });
        assert_eq!(k.to_string(), "cert-manager.io/Issuer/sandbox/vault-issuer");
    }
}
