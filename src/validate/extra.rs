//! `extra` maps (`PkiRole`, a root or intermediate CA): parameters passed to
//! Vault as written. A key that is a typed field's Vault name (`key_type`
//! beside `keyType`) would silently override it, and a key the endpoint
//! does not have is dropped by Vault with a warning, so it never reads back
//! and the plan never converges: both are errors.
//!
//! The parameter lists are OpenBao 2.7's, from its OpenAPI document
//! (`sys/internal/specs/openapi`); `tests/checks_openbao.rs` compares them
//! with a live server's so that they cannot go stale unnoticed.

use std::collections::BTreeMap;

use schemars::JsonSchema;

use crate::diagnostic::{Diagnostic, suggest};
use crate::model::{CaSpec, IntermediateCa, Origin, PkiRoleSpec, Repository, RootCa};

/// Parameters of `<mount>/roles/<name>` (`PkiWriteRoleRequest`).
pub const ROLE_PARAMS: &[&str] = &[
    "allow_any_name",
    "allow_bare_domains",
    "allow_glob_domains",
    "allow_globs_in_identity_templates",
    "allow_ip_sans",
    "allow_localhost",
    "allow_subdomains",
    "allow_wildcard_certificates",
    "allowed_domains",
    "allowed_domains_template",
    "allowed_ip_sans_cidr",
    "allowed_other_sans",
    "allowed_serial_numbers",
    "allowed_uri_sans",
    "allowed_uri_sans_template",
    "allowed_user_ids",
    "backend",
    "basic_constraints_valid_for_non_ca",
    "client_flag",
    "cn_validations",
    "code_signing_flag",
    "country",
    "email_protection_flag",
    "enforce_hostnames",
    "ext_key_usage",
    "ext_key_usage_oids",
    "generate_lease",
    "issuer_ref",
    "key_bits",
    "key_type",
    "key_usage",
    "locality",
    "max_ttl",
    "no_store",
    "not_after",
    "not_after_bound",
    "not_before",
    "not_before_bound",
    "not_before_duration",
    "organization",
    "ou",
    "policy_identifiers",
    "postal_code",
    "province",
    "require_cn",
    "server_flag",
    "signature_bits",
    "street_address",
    "ttl",
    "use_csr_common_name",
    "use_csr_sans",
    "use_pss",
];

/// Parameters of `<mount>/issuers/generate/root/internal`
/// (`PkiIssuersGenerateRootRequest`).
pub const ROOT_PARAMS: &[&str] = &[
    "alt_names",
    "common_name",
    "country",
    "exclude_cn_from_sans",
    "ext_key_usage",
    "ext_key_usage_oids",
    "external_key_ref",
    "format",
    "ip_sans",
    "issuer_name",
    "key_bits",
    "key_name",
    "key_ref",
    "key_type",
    "key_usage",
    "locality",
    "max_path_length",
    "not_after",
    "not_before",
    "not_before_duration",
    "organization",
    "other_sans",
    "ou",
    "permitted_dns_domains",
    "postal_code",
    "private_key_format",
    "province",
    "serial_number",
    "signature_bits",
    "street_address",
    "ttl",
    "uri_sans",
    "use_pss",
];

/// Parameters of `<mount>/issuers/generate/intermediate/internal`
/// (`PkiIssuersGenerateIntermediateRequest`).
pub const INTERMEDIATE_PARAMS: &[&str] = &[
    "add_basic_constraints",
    "alt_names",
    "common_name",
    "country",
    "exclude_cn_from_sans",
    "external_key_ref",
    "format",
    "ip_sans",
    "key_bits",
    "key_name",
    "key_ref",
    "key_type",
    "locality",
    "not_after",
    "not_before",
    "not_before_duration",
    "organization",
    "other_sans",
    "ou",
    "postal_code",
    "private_key_format",
    "province",
    "serial_number",
    "signature_bits",
    "street_address",
    "ttl",
    "uri_sans",
    "use_pss",
];

/// `maxTTL` -> `max_ttl`, `allowIPSans` -> `allow_ip_sans`: the Vault name
/// of a camelCase field (FORMAT.md: "each maps to the Vault API parameter
/// of the same meaning (snake_case)").
pub fn snake_case(camel: &str) -> String {
    let chars: Vec<char> = camel.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower = i > 0 && chars[i - 1].is_lowercase();
            let acronym_end = i > 0
                && chars[i - 1].is_uppercase()
                && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev_lower || acronym_end {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The typed fields of a spec (camelCase, as written), from its schema.
fn typed_fields<T: JsonSchema>() -> Vec<String> {
    let schema = schemars::schema_for!(T).to_value();
    schema["properties"]
        .as_object()
        .map(|p| p.keys().filter(|k| *k != "extra").cloned().collect())
        .unwrap_or_default()
}

/// The typed fields of a spec, each as (snake_case, as written): made
/// from its schema once per kind of spec and only when an `extra` map is
/// there to check (a schema per role took a tenth of the CPU of a plan of
/// 10,000 roles).
struct Typed<T>(
    std::cell::OnceCell<Vec<(String, String)>>,
    std::marker::PhantomData<T>,
);

impl<T: JsonSchema> Typed<T> {
    fn new() -> Self {
        Typed(std::cell::OnceCell::new(), std::marker::PhantomData)
    }

    fn get(&self) -> &[(String, String)] {
        self.0.get_or_init(|| {
            typed_fields::<T>()
                .into_iter()
                .map(|f| (snake_case(&f), f))
                .collect()
        })
    }
}

/// One `extra` map and what it is passed to.
struct Target<'a> {
    what: String,
    base: &'a str,
    endpoint: &'a str,
    params: &'a [&'a str],
    /// The spec's typed fields: (snake_case, as written).
    typed: &'a [(String, String)],
    /// Keys certplane itself sets on this endpoint, with why.
    own: &'a [(&'a str, &'a str)],
    extra: &'a BTreeMap<String, serde_json::Value>,
}

pub(super) fn check(repo: &Repository, out: &mut Vec<Diagnostic>) {
    let (role_fields, root_fields, intermediate_fields) = (
        Typed::<PkiRoleSpec>::new(),
        Typed::<RootCa>::new(),
        Typed::<IntermediateCa>::new(),
    );
    for (meta, origin, role) in repo.pki_roles() {
        if role.extra.is_empty() {
            continue;
        }
        one(
            origin,
            &Target {
                what: format!("PkiRole {}", meta.name),
                base: "spec.extra",
                endpoint: "<mount>/roles",
                params: ROLE_PARAMS,
                typed: role_fields.get(),
                own: &[],
                extra: &role.extra,
            },
            out,
        );
    }
    for (meta, origin, mount) in repo.pki_mounts() {
        let target = match &mount.ca {
            Some(CaSpec::Root(r)) if !r.extra.is_empty() => Target {
                what: format!("mount {} root CA", meta.name),
                base: "spec.ca.root.extra",
                endpoint: "issuers/generate/root",
                params: ROOT_PARAMS,
                typed: root_fields.get(),
                own: &[],
                extra: &r.extra,
            },
            Some(CaSpec::Intermediate(i)) if !i.extra.is_empty() => Target {
                what: format!("mount {} intermediate CA", meta.name),
                base: "spec.ca.intermediate.extra",
                endpoint: "issuers/generate/intermediate",
                params: INTERMEDIATE_PARAMS,
                typed: intermediate_fields.get(),
                own: &[("format", "certplane reads the CSR as PEM to have it signed")],
                extra: &i.extra,
            },
            _ => continue,
        };
        one(origin, &target, out);
    }
}

fn one(origin: &Origin, t: &Target<'_>, out: &mut Vec<Diagnostic>) {
    let snake = t.typed;
    for key in t.extra.keys() {
        let at = origin.at(&format!("{}.{key}", t.base));
        let typed = snake
            .iter()
            .find(|(s, f)| s == key || f == key)
            .map(|(_, f)| f);
        let diag = if let Some(field) = typed {
            Diagnostic::new(
                at,
                format!(
                    "{}: extra key {key} would override the typed field {field}",
                    t.what
                ),
            )
            .hint(format!(
                "set {field} in the spec and remove {key} from extra"
            ))
        } else if let Some((_, why)) = t.own.iter().find(|(k, _)| k == key) {
            Diagnostic::new(
                at,
                format!("{}: extra key {key} is set by certplane", t.what),
            )
            .hint(format!("remove it from extra: {why}"))
        } else if !t.params.contains(&key.as_str()) {
            let hint = match suggest::closest(key, t.params.iter().copied()) {
                Some(c) => match snake.iter().find(|(s, _)| s == c) {
                    Some((_, f)) => format!("did you mean {c}? it is the typed field {f}"),
                    None => format!("did you mean {c}?"),
                },
                None => format!(
                    "extra passes Vault parameters by their snake_case names; {} has: {}",
                    t.endpoint,
                    t.params.join(", ")
                ),
            };
            Diagnostic::new(
                at,
                format!(
                    "{}: extra key {key} is not a parameter of Vault's {} endpoint (Vault would ignore it, and the plan would never converge)",
                    t.what, t.endpoint
                ),
            )
            .hint(hint)
        } else {
            continue;
        };
        out.push(diag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_vault_names() {
        for (camel, snake) in [
            ("maxTTL", "max_ttl"),
            ("allowIPSans", "allow_ip_sans"),
            ("allowedURISans", "allowed_uri_sans"),
            ("requireCN", "require_cn"),
            ("keyType", "key_type"),
            ("issuerRef", "issuer_ref"),
            ("ttl", "ttl"),
        ] {
            assert_eq!(snake_case(camel), snake);
        }
    }

    #[test]
    fn every_typed_role_field_is_a_vault_role_parameter() {
        for f in typed_fields::<PkiRoleSpec>() {
            if f != "mount" {
                assert!(ROLE_PARAMS.contains(&snake_case(&f).as_str()), "{f}");
            }
        }
    }
}
