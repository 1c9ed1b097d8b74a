//! Typed addresses of managed objects: one [`Addr`] type, one `Display`.
//!
//! A Vault object is addressed by its API path (`vault:pki_int/roles/web`,
//! `vault:sys/mounts/pki`), so the address a user reads in a plan is the path
//! they would give `bao read`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The address of one managed object.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Addr {
    /// A Vault object, by API path (no leading `/v1/`).
    Vault(String),
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
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Vault(p) => write!(f, "vault:{p}"),
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
    fn round_trips_through_its_display() {
        let a = Addr::vault("pki_int/roles/web");
        assert_eq!(a.to_string(), "vault:pki_int/roles/web");
        assert_eq!(Addr::try_from(a.to_string()).unwrap(), a);
        assert!(Addr::try_from("pki/roles/x".to_string()).is_err());
    }
}
