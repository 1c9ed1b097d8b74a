//! PkiRoles: the mount and issuer they name, key types and sizes, and TTLs
//! that fit in order: role `ttl` <= `maxTTL` <= the mount's `maxLeaseTTL`
//! <= the CA's lifetime.

use std::collections::BTreeMap;

use super::Validator;
use super::ca::CaFacts;
use crate::diagnostic::suggest;
use crate::model::{CaSpec, Duration, KeyType, Origin, PkiRoleSpec, RoleKeyType};

impl Validator<'_> {
    pub(super) fn roles(&mut self, facts: &BTreeMap<String, CaFacts>) {
        let mounts: Vec<&str> = self
            .repo
            .pki_mounts()
            .map(|(m, _, _)| m.name.as_str())
            .collect();
        for (meta, origin, role) in self.repo.pki_roles() {
            let name = &meta.name;
            self.role_keys(origin, role);
            if let (Some(ttl), Some(max)) = (role.ttl, role.max_ttl)
                && ttl > max
            {
                self.push(
                    origin,
                    "spec.ttl",
                    format!("role {name} ttl {ttl} exceeds its maxTTL {max}"),
                    "lower ttl or raise maxTTL",
                );
            }
            let Some((_, _, mount)) = self.repo.pki_mount(&role.mount) else {
                self.push(
                    origin,
                    "spec.mount",
                    format!(
                        "role {name}: mount {} is not a declared PkiMount",
                        role.mount
                    ),
                    suggest::did_you_mean(&role.mount, mounts.iter().copied()),
                );
                continue;
            };
            if let Some(r) = &role.issuer_ref {
                let declared: Vec<&str> = match &mount.ca {
                    Some(CaSpec::Root(c)) => c.issuer_name.as_deref().into_iter().collect(),
                    Some(CaSpec::Intermediate(c)) => c.issuer_name.as_deref().into_iter().collect(),
                    Some(CaSpec::Import(c)) => c.issuer_name.as_deref().into_iter().collect(),
                    None => Vec::new(),
                };
                let is_id = r.len() == 36 && r.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
                if r != "default" && !is_id && !declared.contains(&r.as_str()) {
                    let hint = match suggest::closest(r, declared.iter().copied()) {
                        Some(c) => format!("did you mean {c}? or use default"),
                        None => format!(
                            "use default, or an issuerName declared in PkiMount {} ({})",
                            role.mount,
                            if declared.is_empty() {
                                "none is".to_string()
                            } else {
                                declared.join(", ")
                            }
                        ),
                    };
                    self.push(
                        origin,
                        "spec.issuerRef",
                        format!(
                            "role {name}: issuerRef {r} is not an issuer of mount {}",
                            role.mount
                        ),
                        hint,
                    );
                }
            }
            // role maxTTL (or ttl) <= mount maxLeaseTTL <= CA lifetime.
            let (field, longest) = match (role.max_ttl, role.ttl) {
                (Some(m), _) => ("maxTTL", m),
                (None, Some(t)) => ("ttl", t),
                (None, None) => continue,
            };
            let path = if field == "maxTTL" {
                "spec.maxTTL"
            } else {
                "spec.ttl"
            };
            if let Some(mlt) = mount.max_lease_ttl
                && longest > mlt
            {
                self.push(
                    origin,
                    path,
                    format!(
                        "role {field} {longest} exceeds mount {} maxLeaseTTL {mlt}",
                        role.mount
                    ),
                    format!(
                        "lower the role's {field}, or raise maxLeaseTTL of PkiMount {}",
                        role.mount
                    ),
                );
                continue;
            }
            if let Some((life, what)) = facts.get(&role.mount).and_then(CaFacts::lifetime_desc)
                && longest.as_secs() > life
            {
                self.push(
                    origin,
                    path,
                    format!(
                        "role {field} {longest} exceeds mount {} {what} {}",
                        role.mount,
                        Duration::from_secs(life)
                    ),
                    "a certificate cannot outlive its CA: lower the role's TTL",
                );
            }
        }
    }

    fn role_keys(&mut self, origin: &Origin, role: &PkiRoleSpec) {
        let t = match role.key_type {
            Some(RoleKeyType::Rsa) | None => KeyType::Rsa,
            Some(RoleKeyType::Ec) => KeyType::Ec,
            Some(RoleKeyType::Ed25519) => KeyType::Ed25519,
            Some(RoleKeyType::Any) => return,
        };
        self.key_size(origin, "spec", t, role.key_bits);
    }
}
