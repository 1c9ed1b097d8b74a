//! Lowering: the typed repository -> the desired Vault state.
//!
//! Each certplane object becomes one or more [`DesiredResource`]s in Vault's
//! own terms (API path, snake_case parameters, durations in seconds). How a
//! kind's fields map to Vault parameters is its descriptor's, in
//! [`crate::vault::kinds`]; this module runs them over the repository and
//! holds the helpers they share. Lowering reads the non-secret files the
//! objects name (CA certificates, a manually signed certificate); secrets
//! stay [`crate::model::Source`]s until apply.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::addr::{Addr, VaultAddr};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{Duration, Origin, Repository};
use crate::state::{Addrs, Desired, DesiredResource, Fields, ResourceKind};

pub use crate::vault::kinds::policy::render_hcl;

/// Builds the desired state of every Vault object of the repository.
pub fn build(repo: &Repository) -> Result<Desired, Diagnostics> {
    let mut out = Desired::default();
    // Most objects are one resource: the room for them at once, instead of
    // doubling (and holding the old and the new room) on the way.
    out.resources.reserve(repo.vault.len());
    let mut errors = Vec::new();
    // The roles of one mount depend on the same addresses: one list each.
    let mut lists: BTreeSet<Addrs> = BTreeSet::new();
    for obj in &repo.vault {
        match crate::vault::kinds::lower(repo, obj) {
            Ok(resources) => out.resources.extend(resources.into_iter().map(|mut r| {
                r.fields.shrink_to_fit();
                match lists.get(&r.depends_on) {
                    Some(same) => r.depends_on = Addrs::clone(same),
                    None => {
                        lists.insert(Addrs::clone(&r.depends_on));
                    }
                }
                r
            })),
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() {
        // Held for the whole run: no room to grow into.
        out.resources.shrink_to_fit();
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}

/// Inserts `key: value` when the option is set.
pub(crate) fn put<T: Into<Value>>(f: &mut Fields, key: &'static str, v: Option<T>) {
    if let Some(v) = v {
        f.insert(key, v.into());
    }
}

/// Inserts a duration, in seconds, when it is set.
pub(crate) fn put_secs(f: &mut Fields, key: &'static str, d: Option<Duration>) {
    put(f, key, d.map(|d| json!(d.as_secs())));
}

/// A resource without secrets, declared at the field `at` of `origin`.
pub(crate) fn resource(
    addr: Addr,
    kind: ResourceKind,
    fields: Fields,
    depends_on: Vec<Addr>,
    origin: &Origin,
    at: &str,
) -> DesiredResource {
    DesiredResource {
        addr,
        kind,
        fields,
        secrets: BTreeMap::new(),
        depends_on: depends_on.into(),
        origin: origin.at(at),
        ca: None,
    }
}

/// A (public) file the spec names, as text.
pub(crate) fn read_file(path: &Path, origin: &Origin, at: &str) -> Result<String, Diagnostic> {
    std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(
            origin.at(at),
            format!("cannot read {}: {e}", path.display()),
        )
        .hint("the path is relative to the YAML file that names it")
    })
}

/// What an auth role depends on: its auth mount and the policies it names
/// (`default` is Vault's own).
pub(crate) fn auth_role_deps(mount: &str, policies: &[String]) -> Vec<Addr> {
    let mut deps = vec![VaultAddr::auth_mount(mount).into()];
    deps.extend(
        policies
            .iter()
            .filter(|p| p.as_str() != "default")
            .map(|p| Addr::from(VaultAddr::policy(p))),
    );
    deps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_that_depend_on_the_same_addresses_share_one_list() {
        let dir = tempfile::tempdir().unwrap();
        let role = |name: &str, mount: &str| {
            format!(
                "apiVersion: certplane.dev/v1alpha1\nkind: PkiRole\nmetadata: {{name: {name}}}\n\
                 spec: {{mount: {mount}, allowedDomains: [example.com], maxTTL: 72h}}\n---\n"
            )
        };
        let mount = |name: &str| {
            format!(
                "apiVersion: certplane.dev/v1alpha1\nkind: PkiMount\nmetadata: {{name: {name}}}\n\
                 spec: {{maxLeaseTTL: 8760h, ca: {{root: {{commonName: R, keyType: ec, ttl: 8760h}}}}}}\n---\n"
            )
        };
        let text = [
            mount("a"),
            mount("b"),
            role("a1", "a"),
            role("a2", "a"),
            role("b1", "b"),
        ]
        .concat();
        std::fs::write(dir.path().join("repo.yaml"), text).unwrap();
        let repo = crate::load::load(dir.path()).unwrap_or_else(|d| panic!("{d}"));
        let desired = build(&repo).unwrap_or_else(|d| panic!("{d}"));
        let deps = |path: &str| {
            let r = desired
                .resources
                .iter()
                .find(|r| r.addr.to_string() == path)
                .unwrap_or_else(|| panic!("no {path}"));
            Addrs::clone(&r.depends_on)
        };
        let (a1, a2, b1) = (
            deps("vault:a/roles/a1"),
            deps("vault:a/roles/a2"),
            deps("vault:b/roles/b1"),
        );
        assert!(!a1.is_empty());
        assert!(Addrs::ptr_eq(&a1, &a2), "{a1:?} and {a2:?} are two lists");
        assert_ne!(a1, b1);
        assert!(!Addrs::ptr_eq(&a1, &b1));
    }
}
