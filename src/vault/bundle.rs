//! The trust bundle of a PKI mount during (and outside) a rotation: what its
//! clients must trust so that no leaf fails to verify while the mount
//! rotates.
//!
//! It holds the certificate of every issuer of the mount (with a key) that
//! has not expired: the default; a rotation's new issuer from stage 1 on,
//! before any leaf from it exists; and a retired issuer until it expires,
//! since the leaves it issued stay valid until then (none outlives it).
//! Deleting the retired issuer (stage 3) is when it leaves the bundle.

use crate::state::ObservedIssuer;

/// The bundle of `issuers` (one mount's) at `now` (Unix seconds), PEM,
/// oldest notBefore first; deterministic for the same issuers.
pub fn bundle_pem(issuers: &[ObservedIssuer], now: i64) -> String {
    let mut live: Vec<&ObservedIssuer> = issuers
        .iter()
        .filter(|i| i.not_after > now && !i.certificate.is_empty())
        .collect();
    live.sort_by(|a, b| (a.not_before, &a.id).cmp(&(b.not_before, &b.id)));
    let mut out = String::new();
    let mut seen = std::collections::BTreeSet::new();
    for i in live {
        if !seen.insert(i.cert_sha256.as_str()) {
            continue;
        }
        let pem = i.certificate.trim_end();
        out.push_str(pem);
        out.push('\n');
    }
    out
}

/// The bundle of a mount as it lives in Vault now.
pub async fn live_bundle(vault: &super::Vault, mount: &str) -> Result<String, super::VaultError> {
    let issuers = super::observe::observe_issuers(vault, mount).await?;
    Ok(bundle_pem(&issuers, super::observe::unix_now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(id: &str, nb: i64, na: i64, usage: &str) -> ObservedIssuer {
        ObservedIssuer {
            id: id.into(),
            name: String::new(),
            common_name: id.into(),
            issued_by: id.into(),
            key_type: None,
            key_bits: 0,
            not_after: na,
            max_path_length: None,
            cert_sha256: format!("{id}-sha"),
            is_default: false,
            key_id: format!("{id}-key"),
            not_before: nb,
            usage: usage.into(),
            certificate: format!("-----BEGIN CERTIFICATE-----\n{id}\n-----END CERTIFICATE-----\n"),
            manual_chain: vec![],
            leaf_not_after_behavior: String::new(),
        }
    }

    #[test]
    fn holds_the_new_the_current_and_the_retired_until_it_expires() {
        let retired = issuer("old", 0, 100, "read-only,crl-signing");
        let current = issuer("cur", 10, 1000, "");
        let new = issuer("new", 50, 2000, "");
        let all = [new.clone(), current.clone(), retired.clone()];
        let b = bundle_pem(&all, 60);
        let order: Vec<&str> = ["old", "cur", "new"]
            .into_iter()
            .filter(|id| b.contains(&format!("\n{id}\n")))
            .collect();
        assert_eq!(order, ["old", "cur", "new"]);
        assert!(b.find("\nold\n") < b.find("\ncur\n") && b.find("\ncur\n") < b.find("\nnew\n"));
        // Once the retired one expired, it leaves the bundle.
        let later = bundle_pem(&all, 100);
        assert!(!later.contains("\nold\n") && later.contains("\ncur\n"));
        // An issuer read without its certificate adds nothing.
        let mut bare = current;
        bare.certificate.clear();
        assert_eq!(bundle_pem(&[bare], 0), "");
    }
}
