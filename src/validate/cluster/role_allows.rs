//! What a Vault PKI role allows, decided the way Vault decides it: the DNS
//! names and hostname common names of `validateNames` (allowedDomains with
//! bare, sub-, glob and wildcard names), and Vault's `*` glob for URI SANs.

use crate::model::PkiRoleSpec;

/// Why a PKI role refuses a name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameRefusal {
    /// A wildcard name, and the role turns wildcards off.
    #[error("the role has allowWildcardCertificates: false")]
    WildcardsOff,
    /// The role allows no domain at all.
    #[error("the role has no allowedDomains")]
    NoDomains,
    /// The name is an allowed domain itself, which the role does not allow.
    #[error("it is a bare domain and allowBareDomains is not true")]
    BareDomain,
    /// The name is under an allowed domain, which the role does not allow.
    #[error("it is a subdomain and allowSubdomains is not true")]
    Subdomain,
    /// The name is under none of the allowed domains.
    #[error("it is not under allowedDomains ({})", .domains.join(", "))]
    NotUnder {
        /// The role's allowedDomains.
        domains: Vec<String>,
    },
}

/// Vault's glob (`*` matches any run of characters).
pub fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Whether a PKI role allows a DNS name (or hostname common name), the way
/// Vault's `validateNames` decides.
pub fn name_allowed(role: &PkiRoleSpec, name: &str) -> Result<(), NameRefusal> {
    let lower = name.to_lowercase();
    let wildcard = lower.starts_with("*.");
    if wildcard && role.allow_wildcard_certificates == Some(false) {
        return Err(NameRefusal::WildcardsOff);
    }
    if role.allow_any_name == Some(true) {
        return Ok(());
    }
    if role.allow_localhost.unwrap_or(true) && (lower == "localhost" || lower == "localdomain") {
        return Ok(());
    }
    let reduced = lower.strip_prefix("*.").unwrap_or(&lower);
    let domains = role.allowed_domains.clone().unwrap_or_default();
    for d in &domains {
        let d = d.to_lowercase();
        if role.allow_bare_domains == Some(true) && lower == d {
            return Ok(());
        }
        if role.allow_subdomains == Some(true)
            && (reduced.ends_with(&format!(".{d}")) || (wildcard && reduced == d))
        {
            return Ok(());
        }
        if role.allow_glob_domains == Some(true) && d.contains('*') && glob(&d, &lower) {
            return Ok(());
        }
    }
    if domains.is_empty() {
        return Err(NameRefusal::NoDomains);
    }
    let bare = domains.iter().any(|d| d.eq_ignore_ascii_case(&lower));
    let sub = domains
        .iter()
        .any(|d| reduced.ends_with(&format!(".{}", d.to_lowercase())));
    Err(if bare {
        NameRefusal::BareDomain
    } else if sub {
        NameRefusal::Subdomain
    } else {
        NameRefusal::NotUnder { domains }
    })
}

/// How to fix a name the role refuses.
pub(super) fn role_hint(role_name: &str, name: &str) -> String {
    format!(
        "change the name, or widen PkiRole {role_name} (allowedDomains, allowSubdomains, allowBareDomains, allowGlobDomains) to allow {name}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(domains: &[&str]) -> PkiRoleSpec {
        PkiRoleSpec {
            mount: "pki".into(),
            allowed_domains: Some(domains.iter().map(|d| d.to_string()).collect()),
            ..PkiRoleSpec::default()
        }
    }

    #[test]
    fn vault_name_rules() {
        let mut r = role(&["example.com"]);
        assert_eq!(
            name_allowed(&r, "www.example.com"),
            Err(NameRefusal::Subdomain)
        );
        assert_eq!(
            name_allowed(&r, "example.com").unwrap_err().to_string(),
            "it is a bare domain and allowBareDomains is not true"
        );
        r.allow_subdomains = Some(true);
        assert!(name_allowed(&r, "a.b.example.com").is_ok());
        assert!(name_allowed(&r, "*.example.com").is_ok());
        assert_eq!(
            name_allowed(&r, "example.org").unwrap_err().to_string(),
            "it is not under allowedDomains (example.com)"
        );
        r.allow_wildcard_certificates = Some(false);
        assert_eq!(
            name_allowed(&r, "*.example.com"),
            Err(NameRefusal::WildcardsOff)
        );
        assert_eq!(
            name_allowed(&role(&[]), "a.example.com"),
            Err(NameRefusal::NoDomains)
        );
        let mut g = role(&["*.svc.cluster.local"]);
        assert!(name_allowed(&g, "a.ns.svc.cluster.local").is_err());
        g.allow_glob_domains = Some(true);
        assert!(name_allowed(&g, "a.ns.svc.cluster.local").is_ok());
        assert!(glob(
            "spiffe://cluster.local/*",
            "spiffe://cluster.local/ns/a/sa/b"
        ));
        assert!(!glob("spiffe://cluster.local/*", "spiffe://other/ns"));
    }
}
