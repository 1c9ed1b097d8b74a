//! Where an Issuer signs: its `spec.vault.path` must be a sign endpoint
//! (`<mount>/sign/<role>`, `<mount>/issuer/<ref>/sign/<role>`,
//! `<mount>/sign-verbatim[/<role>]`) of a PkiMount and PkiRole the
//! repository declares, or that the live Vault has when it was observed.

use super::Checker;
use crate::diagnostic::suggest;
use crate::model::Origin;
use crate::model::certmanager::VaultIssuer;

/// Where a Vault issuer signs: the mount and (unless sign-verbatim without
/// a role) the role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignPath {
    /// The PKI mount.
    pub mount: String,
    /// The role, `None` for `<mount>/sign-verbatim`.
    pub role: Option<String>,
}

/// Why an Issuer's `spec.vault.path` is not a sign endpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignPathError {
    /// Not a path of a sign endpoint at all.
    #[error("vault path {path:?} is not a sign endpoint")]
    NotSign {
        /// The path as written.
        path: String,
    },
    /// `<mount>/issue/<role>`: Vault would make the key, but cert-manager
    /// sends a CSR.
    #[error("vault path {path:?} is an issue endpoint")]
    Issue {
        /// The path as written.
        path: String,
        /// Its mount.
        mount: String,
        /// Its role.
        role: String,
    },
}

impl SignPathError {
    /// How to fix the path.
    pub fn hint(&self) -> String {
        match self {
            SignPathError::NotSign { .. } => "write <mount>/sign/<role> (or \
                <mount>/issuer/<ref>/sign/<role>, <mount>/sign-verbatim[/<role>])"
                .to_string(),
            SignPathError::Issue { mount, role, .. } => {
                format!("cert-manager sends a CSR: use {mount}/sign/{role}")
            }
        }
    }
}

/// Parses an Issuer's `spec.vault.path`.
pub fn parse_sign_path(path: &str) -> Result<SignPath, SignPathError> {
    let p = path.trim_matches('/');
    let p = p.strip_prefix("v1/").unwrap_or(p);
    let segs: Vec<&str> = p.split('/').collect();
    let n = segs.len();
    let bad = || SignPathError::NotSign {
        path: path.to_string(),
    };
    let mount_of = |end: usize| -> Option<String> {
        let mut m = &segs[..end];
        if m.len() >= 3 && m[m.len() - 2] == "issuer" {
            m = &m[..m.len() - 2];
        }
        (!m.is_empty() && m.iter().all(|s| !s.is_empty())).then(|| m.join("/"))
    };
    if n >= 3 && (segs[n - 2] == "sign" || segs[n - 2] == "issue") && !segs[n - 1].is_empty() {
        let mount = mount_of(n - 2).ok_or_else(bad)?;
        let role = segs[n - 1].to_string();
        if segs[n - 2] == "issue" {
            return Err(SignPathError::Issue {
                path: path.to_string(),
                mount,
                role,
            });
        }
        return Ok(SignPath {
            mount,
            role: Some(role),
        });
    }
    if n >= 2 && segs[n - 1] == "sign-verbatim" {
        let mount = mount_of(n - 1).ok_or_else(bad)?;
        return Ok(SignPath { mount, role: None });
    }
    if n >= 3 && segs[n - 2] == "sign-verbatim" && !segs[n - 1].is_empty() {
        let mount = mount_of(n - 2).ok_or_else(bad)?;
        return Ok(SignPath {
            mount,
            role: Some(segs[n - 1].to_string()),
        });
    }
    Err(bad())
}

impl<'a> Checker<'a> {
    /// The sign path of a Vault issuer, when it is one the repository
    /// declares (mount and role). A path that is not a sign endpoint, or
    /// names an undeclared mount or role, is reported (unless the live Vault
    /// has it) and gives `None`: nothing further can be checked.
    pub(super) fn sign_target(
        &self,
        origin: &Origin,
        what: &str,
        v: &VaultIssuer,
    ) -> Option<SignPath> {
        let sign = match parse_sign_path(&v.path) {
            Ok(s) => s,
            Err(e) => {
                self.push(origin, "spec.vault.path", format!("{what}: {e}"), e.hint());
                return None;
            }
        };
        let mounts: Vec<&str> = self
            .repo
            .pki_mounts()
            .map(|(m, _, _)| m.name.as_str())
            .collect();
        if self.repo.pki_mount(&sign.mount).is_none() {
            if !self.pki_known_live(&sign.mount, None) {
                self.push(
                    origin,
                    "spec.vault.path",
                    format!(
                        "{what}: vault path {} names mount {}, which is not a declared PkiMount",
                        v.path, sign.mount
                    ),
                    suggest::did_you_mean(&sign.mount, mounts.iter().copied()),
                );
            }
            return None;
        }
        if let Some(role) = &sign.role {
            let declared = self
                .repo
                .pki_roles()
                .any(|(m, _, s)| m.name == *role && s.mount == sign.mount);
            if !declared {
                if !self.pki_known_live(&sign.mount, Some(role)) {
                    let roles: Vec<&str> = self
                        .repo
                        .pki_roles()
                        .filter(|(_, _, s)| s.mount == sign.mount)
                        .map(|(m, _, _)| m.name.as_str())
                        .collect();
                    self.push(
                        origin,
                        "spec.vault.path",
                        format!(
                            "{what}: vault path {} names role {role}, which is not a declared PkiRole on mount {}",
                            v.path, sign.mount
                        ),
                        suggest::did_you_mean(role, roles.iter().copied()),
                    );
                }
                return None;
            }
        }
        Some(sign)
    }

    fn pki_known_live(&self, mount: &str, role: Option<&str>) -> bool {
        self.live.is_some_and(|l| match role {
            Some(r) => l.pki_roles.contains(&(mount.to_string(), r.to_string())),
            None => l.pki_mounts.contains(mount),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sign_paths() {
        assert_eq!(
            parse_sign_path("pki_int/sign/web").unwrap(),
            SignPath {
                mount: "pki_int".into(),
                role: Some("web".into())
            }
        );
        assert_eq!(
            parse_sign_path("pki/int/issuer/int-2026/sign/web").unwrap(),
            SignPath {
                mount: "pki/int".into(),
                role: Some("web".into())
            }
        );
        assert_eq!(
            parse_sign_path("pki/sign-verbatim").unwrap(),
            SignPath {
                mount: "pki".into(),
                role: None
            }
        );
        assert_eq!(
            parse_sign_path("/v1/pki/sign-verbatim/web")
                .unwrap()
                .role
                .as_deref(),
            Some("web")
        );
        let e = parse_sign_path("pki_int/issue/web").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"vault path "pki_int/issue/web" is an issue endpoint"#
        );
        assert_eq!(e.hint(), "cert-manager sends a CSR: use pki_int/sign/web");
        assert_eq!(
            parse_sign_path("pki_int/roles/web").unwrap_err().hint(),
            "write <mount>/sign/<role> (or <mount>/issuer/<ref>/sign/<role>, \
             <mount>/sign-verbatim[/<role>])"
        );
        assert!(parse_sign_path("pki_int/roles/web").is_err());
        assert!(parse_sign_path("sign/web").is_err());
    }
}
