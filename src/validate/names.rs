//! Names Vault refuses, or would store under another name, caught before
//! anything is sent. Each rule was pinned against OpenBao 2.7
//! (`tests/checks_openbao.rs` writes the same names to a real server):
//!
//! - role names (`PkiRole`, `KubernetesAuthRole`, `AppRole`) and issuer
//!   names must match Vault's `GenericNameRegex`: ASCII letters, digits,
//!   `_`, `-` and `.`, starting and ending with a letter, digit or `_`. A `/`
//!   would change the API path (`pki/roles/a/b` is "unsupported path");
//! - `default` is not an issuer name Vault accepts;
//! - auth role and policy names are folded to lower case by Vault: `Web`
//!   would be written as `web`, and never match again;
//! - `root` and `response-wrapping` policies cannot be written (`root` is
//!   checked with the other name rules in the parent module);
//! - secrets engines cannot be mounted at `sys`, `auth`, `identity`,
//!   `cubbyhole` or `audit` (nor below them); auth methods cannot be mounted
//!   at `token` (nor below it) or at `sys` (OpenBao accepts `auth/sys`, and
//!   then refuses every later auth mount with "existing mount at auth/");
//! - two declared mounts of the same table cannot nest (`pki` and
//!   `pki/int`): Vault refuses the second with "path is already in use".

use crate::addr::VaultAddr;
use crate::diagnostic::Diagnostic;
use crate::model::{CaSpec, Repository};

use super::path_name_problem;

/// Why `name` is not a name Vault's `GenericNameRegex` accepts, if it is not.
pub fn generic_name_problem(name: &str) -> Option<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if let Some(c) = name.chars().find(|&c| !(word(c) || c == '-' || c == '.')) {
        return Some(if c == '/' {
            "it contains /, which would change the API path".into()
        } else {
            format!("it contains {c:?}")
        });
    }
    let (first, last) = (name.chars().next()?, name.chars().last()?);
    if !word(first) || !word(last) {
        return Some("it starts or ends with - or .".into());
    }
    None
}

const NAME_HINT: &str =
    "use ASCII letters, digits, _, - and ., starting and ending with a letter, digit or _";

/// Secrets-engine paths Vault keeps for itself (and everything below them).
const RESERVED_SECRET_MOUNTS: &[&str] = &["sys", "auth", "identity", "cubbyhole", "audit"];

/// The reserved mount `path` falls in, for a secrets engine or an auth method.
pub fn reserved_mount(path: &str, auth: bool) -> Option<&'static str> {
    let under = |root: &str| path == root || path.starts_with(&format!("{root}/"));
    if auth {
        if under("token") {
            return Some("token");
        }
        return (path == "sys").then_some("sys");
    }
    RESERVED_SECRET_MOUNTS.iter().copied().find(|r| under(r))
}

/// Whether mount `inner` lies below mount `outer` (segment-wise).
fn nests_in(inner: &str, outer: &str) -> bool {
    inner
        .strip_prefix(outer)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Every name problem of the repository.
pub(super) fn check(repo: &Repository, out: &mut Vec<Diagnostic>) {
    roles(repo, out);
    issuers(repo, out);
    lower_case(repo, out);
    mounts(repo, out);
}

fn roles(repo: &Repository, out: &mut Vec<Diagnostic>) {
    for o in &repo.vault {
        // A role: an object named inside its mount.
        let addr = o.spec.address(&o.meta.name);
        if addr.parent().is_none() {
            continue;
        }
        let path = addr.path();
        // Whitespace, empty segments and the like are reported once, by the
        // general path rule.
        if path_name_problem(&o.meta.name).is_some() {
            continue;
        }
        if let Some(why) = generic_name_problem(&o.meta.name) {
            out.push(
                Diagnostic::new(
                    o.origin.at("metadata.name"),
                    format!(
                        "{} name {:?} is not a role name Vault accepts: {why}",
                        o.spec.kind(),
                        o.meta.name
                    ),
                )
                .hint(format!(
                    "{NAME_HINT} (Vault would answer \"unsupported path\" to {path})"
                )),
            );
        }
    }
}

fn issuers(repo: &Repository, out: &mut Vec<Diagnostic>) {
    for (meta, origin, spec) in repo.pki_mounts() {
        let (name, at) = match &spec.ca {
            Some(CaSpec::Root(r)) => (&r.issuer_name, "spec.ca.root.issuerName"),
            Some(CaSpec::Intermediate(i)) => (&i.issuer_name, "spec.ca.intermediate.issuerName"),
            Some(CaSpec::Import(i)) => (&i.issuer_name, "spec.ca.import.issuerName"),
            None => continue,
        };
        let Some(name) = name else {
            continue;
        };
        let why = if name == "default" {
            Some("default is Vault's reference to the mount's default issuer".to_string())
        } else {
            generic_name_problem(name)
        };
        if let Some(why) = why {
            out.push(
                Diagnostic::new(
                    origin.at(at),
                    format!(
                        "mount {}: issuerName {name:?} is not an issuer name Vault accepts: {why}",
                        meta.name
                    ),
                )
                .hint(format!("{NAME_HINT}, e.g. root-2026")),
            );
        }
    }
}

/// Names Vault folds to lower case, and policies it will not write.
fn lower_case(repo: &Repository, out: &mut Vec<Diagnostic>) {
    for o in &repo.vault {
        let what = match o.spec.address(&o.meta.name) {
            VaultAddr::Policy { .. } => "policy",
            VaultAddr::AuthRole { .. } | VaultAddr::CertRole { .. } => "auth role",
            _ => continue,
        };
        let name = &o.meta.name;
        if name.chars().any(char::is_uppercase) {
            let lower = name.to_lowercase();
            out.push(
                Diagnostic::new(
                    o.origin.at("metadata.name"),
                    format!(
                        "{} name {name:?} has upper-case letters: Vault stores {what} names in lower case, as {lower:?}",
                        o.spec.kind()
                    ),
                )
                .hint(format!(
                    "write it as {lower}, and refer to it by that name (certplane would otherwise never find it again)"
                )),
            );
        }
        if what == "policy" && name == "response-wrapping" {
            out.push(
                Diagnostic::new(
                    o.origin.at("metadata.name"),
                    "the response-wrapping policy cannot be written".to_string(),
                )
                .hint("choose another name; response-wrapping is built into Vault"),
            );
        }
    }
}

fn mounts(repo: &Repository, out: &mut Vec<Diagnostic>) {
    let secrets: Vec<_> = repo.pki_mounts().map(|(m, o, _)| (m, o)).collect();
    let auths: Vec<_> = repo.auth_mounts().map(|(m, o, _)| (m, o)).collect();
    for (auth, list) in [(false, &secrets), (true, &auths)] {
        let kind = if auth { "AuthMount" } else { "PkiMount" };
        for (i, (meta, origin)) in list.iter().enumerate() {
            let path = meta.name.as_str();
            if let Some(root) = reserved_mount(path, auth) {
                let (why, hint) = if auth && root == "sys" {
                    (
                        "OpenBao accepts auth/sys, and then refuses every later auth mount"
                            .to_string(),
                        "choose another path, e.g. kubernetes or approle",
                    )
                } else if auth {
                    (
                        "Vault's token auth method is mounted at auth/token".to_string(),
                        "choose another path, e.g. kubernetes or approle",
                    )
                } else {
                    (
                        format!("{root}/ is reserved by Vault"),
                        "choose another path, e.g. pki or pki_int",
                    )
                };
                out.push(
                    Diagnostic::new(
                        origin.at("metadata.name"),
                        format!("{kind} {path}: Vault cannot mount here: {why}"),
                    )
                    .hint(hint),
                );
                continue;
            }
            // Report the nested one of a pair, pointing at the other.
            for (j, (other, other_origin)) in list.iter().enumerate() {
                if i != j && nests_in(path, &other.name) {
                    out.push(
                        Diagnostic::new(
                            origin.at("metadata.name"),
                            format!(
                                "{kind} {path} lies inside {kind} {} (declared at {}): Vault refuses a mount inside another",
                                other.name,
                                other_origin.at("metadata.name")
                            ),
                        )
                        .hint(format!(
                            "choose a path that does not start with {}/, e.g. {}",
                            other.name,
                            path.replace('/', "_")
                        )),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_names_follow_vaults_regex() {
        for ok in ["web", "we.b", "we_b", "Web", "_x_", "a..b", "x", "int-2026"] {
            assert_eq!(generic_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "a/b", "-web", "web-", ".web", "a b", "wé", "a%2Fb", "a+b", "a@b", "a:b", "",
        ] {
            assert!(generic_name_problem(bad).is_some(), "{bad}");
        }
        assert!(
            generic_name_problem("a/b")
                .unwrap()
                .contains("change the API path")
        );
    }

    #[test]
    fn reserved_mounts() {
        for p in [
            "sys",
            "sys/x",
            "auth",
            "auth/x",
            "identity",
            "cubbyhole/x",
            "audit",
        ] {
            assert!(reserved_mount(p, false).is_some(), "{p}");
        }
        for p in ["token", "pki", "sys-x", "identityx", "x/sys"] {
            assert_eq!(reserved_mount(p, false), None, "{p}");
        }
        for p in ["token", "token/x", "sys"] {
            assert!(reserved_mount(p, true).is_some(), "{p}");
        }
        for p in [
            "sys/x",
            "auth",
            "identity",
            "cubbyhole",
            "tokenx",
            "x/token",
        ] {
            assert_eq!(reserved_mount(p, true), None, "{p}");
        }
        assert!(nests_in("pki/int", "pki"));
        assert!(!nests_in("pki_int", "pki"));
        assert!(!nests_in("pki", "pki"));
    }
}
