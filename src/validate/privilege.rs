//! Privilege guardrails: a `Policy` that replaces Vault's `default` policy,
//! grants `sudo`, or grants anything on a wildcard over every path, over
//! `sys/` (Vault's own configuration) or over the auth methods and token
//! store, is refused unless the object opts in with the annotation
//! [`ANNOTATION`]` = "true"`; the plan marks changes of such policies.
//!
//! The checks take parsed rules (`(path, capabilities)`), so they work with
//! whatever reads a policy's HCL.

use crate::model::{Meta, PolicySpec};

/// The annotation by which a `Policy` opts in to being privileged.
pub const ANNOTATION: &str = "certplane.dev/privileged";

/// Whether `meta` opts in.
pub fn opted_in(meta: &Meta) -> bool {
    meta.annotations
        .get(ANNOTATION)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Why writing a policy of this name is privileged.
pub fn name_reason(name: &str) -> Option<String> {
    (name == "default").then(|| {
        "it replaces Vault's built-in default policy, which every token carries".to_string()
    })
}

/// Why a wildcard path reaches too far, if it does.
fn wildcard_reason(path: &str) -> Option<String> {
    let p = path.trim().trim_start_matches('/');
    let wild = p.find(['*', '+'])?;
    let prefix = &p[..wild];
    if prefix.is_empty() {
        return Some(format!("path {path} matches every path of Vault"));
    }
    if "sys/".starts_with(prefix) || prefix.starts_with("sys/") {
        return Some(format!(
            "path {path} is a wildcard over sys/ (Vault's own configuration: mounts, policies, auth methods)"
        ));
    }
    if "auth/".starts_with(prefix) {
        return Some(format!("path {path} is a wildcard over every auth method"));
    }
    if let Some(rest) = prefix.strip_prefix("auth/") {
        if !rest.contains('/') {
            return Some(format!("path {path} is a wildcard over every auth method"));
        }
        if rest.starts_with("token/") {
            return Some(format!(
                "path {path} is a wildcard over the token store (auth/token/...)"
            ));
        }
    }
    None
}

/// What one rule makes privileged: `(is it the capabilities, why)`. A rule
/// that only denies grants nothing.
pub fn rule_reasons(path: &str, capabilities: &[String]) -> Vec<(bool, String)> {
    if capabilities.iter().all(|c| c == "deny") {
        return Vec::new();
    }
    let mut out = Vec::new();
    if capabilities.iter().any(|c| c == "sudo") {
        out.push((true, format!("it grants sudo on {path}")));
    }
    if let Some(why) = wildcard_reason(path) {
        out.push((false, why));
    }
    out
}

/// Every reason a policy named `name` with these rules is privileged.
pub fn reasons(name: &str, rules: &[(String, Vec<String>)]) -> Vec<String> {
    name_reason(name)
        .into_iter()
        .chain(
            rules
                .iter()
                .flat_map(|(p, caps)| rule_reasons(p, caps))
                .map(|(_, why)| why),
        )
        .collect()
}

/// Every reason a policy written as HCL is privileged.
pub fn hcl_reasons(name: &str, hcl: &str) -> Vec<String> {
    reasons(name, &hcl_rules(hcl))
}

/// The (path, capabilities) rules of a policy text; a text that does not
/// parse has none here (the policy check reports it).
fn hcl_rules(hcl: &str) -> Vec<(String, Vec<String>)> {
    super::acl::parse_policy(hcl)
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.path, r.capabilities))
        .collect()
}

/// One privileged part of a `Policy`, at a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The field (`metadata.name`, `spec.rules[0].path`, `spec.hcl`).
    pub at: String,
    /// Why it is privileged.
    pub why: String,
}

/// The privileged parts of a `Policy` (whether or not it opted in).
pub fn findings(name: &str, spec: &PolicySpec) -> Vec<Finding> {
    let mut out: Vec<Finding> = name_reason(name)
        .map(|why| Finding {
            at: "metadata.name".into(),
            why,
        })
        .into_iter()
        .collect();
    for (i, rule) in spec.rules.iter().flatten().enumerate() {
        let caps: Vec<String> = rule
            .capabilities
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        for (on_caps, why) in rule_reasons(&rule.path, &caps) {
            let field = if on_caps { "capabilities" } else { "path" };
            out.push(Finding {
                at: format!("spec.rules[{i}].{field}"),
                why,
            });
        }
    }
    if let Some(hcl) = &spec.hcl {
        for (p, caps) in hcl_rules(hcl) {
            for (_, why) in rule_reasons(&p, &caps) {
                out.push(Finding {
                    at: "spec.hcl".into(),
                    why,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards_that_reach_too_far() {
        for p in [
            "*",
            "+/config",
            "sys/*",
            "sys/policies/acl/*",
            "sys/+/x",
            "s*",
            "auth/*",
            "auth/+/role/x",
            "auth/token/*",
            "/sys/*",
        ] {
            assert!(wildcard_reason(p).is_some(), "{p}");
        }
        for p in [
            "pki_int/sign/*",
            "pki*",
            "auth/kubernetes/role/*",
            "sys/mounts/pki",
            "auth/token/lookup-self",
            "secret/data/+/x",
        ] {
            assert_eq!(wildcard_reason(p), None, "{p}");
        }
    }

    #[test]
    fn sudo_and_deny() {
        assert_eq!(
            rule_reasons("pki/roles/x", &caps(&["read", "sudo"])),
            vec![(true, "it grants sudo on pki/roles/x".to_string())]
        );
        assert!(rule_reasons("*", &caps(&["deny"])).is_empty());
        assert_eq!(rule_reasons("sys/*", &caps(&["sudo"])).len(), 2);
    }

    #[test]
    fn names_and_hcl() {
        assert!(name_reason("default").is_some());
        assert!(name_reason("pki-admin").is_none());
        let r = hcl_reasons(
            "x",
            "path \"sys/*\" {\n  capabilities = [\"read\"]\n}\npath \"pki/sign/web\" { capabilities = [\"update\"] }\n",
        );
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].contains("sys/"), "{r:?}");
    }

    #[test]
    fn opt_in_is_an_explicit_true() {
        let mut m = Meta::default();
        assert!(!opted_in(&m));
        m.annotations.insert(ANNOTATION.into(), "false".into());
        assert!(!opted_in(&m));
        m.annotations.insert(ANNOTATION.into(), "true".into());
        assert!(opted_in(&m));
    }
}
