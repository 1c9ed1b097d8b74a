//! CA lifetimes Vault would cut short without an error: a root's `ttl` is
//! capped at its own mount's `maxLeaseTTL` ("TTL ... is longer than
//! permitted maxTTL ..., so maxTTL is being used"), and an intermediate's at
//! the `maxLeaseTTL` of the mount that signs it. The CA would then not be
//! the one declared, and every later plan would see it differ.

use crate::diagnostic::Diagnostic;
use crate::model::{CaSpec, Repository, SignedBy};

pub(super) fn check(repo: &Repository, out: &mut Vec<Diagnostic>) {
    for (meta, origin, spec) in repo.pki_mounts() {
        match &spec.ca {
            Some(CaSpec::Root(r)) => {
                if let (Some(ttl), Some(max)) = (r.ttl, spec.max_lease_ttl)
                    && ttl > max
                {
                    out.push(
                        Diagnostic::new(
                            origin.at("spec.ca.root.ttl"),
                            format!(
                                "mount {}: root CA ttl {ttl} exceeds the mount's maxLeaseTTL {max}; Vault would silently issue it for {max}",
                                meta.name
                            ),
                        )
                        .hint("raise maxLeaseTTL to at least the CA's ttl (they are usually equal for a root)"),
                    );
                }
            }
            Some(CaSpec::Intermediate(i)) => {
                let SignedBy::Mount(parent) = &i.signed_by else {
                    continue;
                };
                let Some((_, _, p)) = repo.pki_mount(parent) else {
                    continue;
                };
                let parent_ttl = match &p.ca {
                    Some(CaSpec::Root(r)) => r.ttl,
                    Some(CaSpec::Intermediate(x)) => x.ttl,
                    _ => None,
                };
                if let (Some(ttl), Some(max)) = (i.ttl, p.max_lease_ttl)
                    && ttl > max
                    // Beyond the parent CA's own lifetime: reported as such.
                    && parent_ttl.is_none_or(|t| ttl <= t)
                {
                    out.push(
                        Diagnostic::new(
                            origin.at("spec.ca.intermediate.ttl"),
                            format!(
                                "intermediate {} ttl {ttl} exceeds maxLeaseTTL {max} of mount {parent}, which signs it; Vault would silently sign it for {max}",
                                meta.name
                            ),
                        )
                        .hint(format!(
                            "lower the intermediate's ttl to at most {max}, or raise maxLeaseTTL of PkiMount {parent}"
                        )),
                    );
                }
            }
            _ => {}
        }
    }
}
