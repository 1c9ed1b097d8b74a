//! What certplane manages in Vault, and for which repository: the survey
//! behind ownership checks, adoption and prune (`prune: true`).
//!
//! Only what certplane can tell it made is ever a candidate. Mounts and
//! auth mounts it creates carry the mount options `managed-by: certplane`
//! and `certplane-repository: <identity>`; policies it writes start with
//! [`policy_marker`] naming the repository; roles and auth roles belong to
//! the owner of their mount. A mount made by hand, a policy without the
//! marker, a role under someone else's mount is never a candidate, and
//! neither is another repository's object. Objects made by an older
//! certplane (tagged, no repository recorded) are [`Owner::Unrecorded`]:
//! never deleted on that basis, adopted by the repository that declares them.

use std::collections::BTreeSet;

use futures::StreamExt;
use serde_json::{Value, json};

use super::observe::CONCURRENCY;
use super::{Vault, VaultError};
use crate::addr::{Addr, VaultAddr};
use crate::state::{Desired, Orphan, Owner, Ownership, ResourceKind};

/// The mount option certplane sets on the mounts it creates.
pub const MANAGED_OPTION: (&str, &str) = ("managed-by", "certplane");

/// The mount option naming the repository a mount belongs to.
pub const REPOSITORY_OPTION: &str = "certplane-repository";

/// The first line of the policies older certplane versions wrote (no
/// repository recorded).
pub const LEGACY_POLICY_MARKER: &str = "# Managed by certplane: edits here are overwritten.";

const MARKER_PREFIX: &str = "# Managed by certplane for repository ";
const MARKER_SUFFIX: &str = ": edits here are overwritten.";

/// The first line of every policy certplane writes for `identity`.
pub fn policy_marker(identity: &str) -> String {
    format!("{MARKER_PREFIX}{identity}{MARKER_SUFFIX}")
}

/// The mount options that mark a mount as `identity`'s.
pub fn owner_options(identity: &str) -> Value {
    json!({MANAGED_OPTION.0: MANAGED_OPTION.1, REPOSITORY_OPTION: identity})
}

/// The owner of a policy, from its first line; `None`: not certplane's.
pub fn policy_owner(text: &str) -> Option<Owner> {
    let first = text.lines().next()?.trim_end();
    if first == LEGACY_POLICY_MARKER {
        return Some(Owner::Unrecorded);
    }
    let id = first
        .strip_prefix(MARKER_PREFIX)?
        .strip_suffix(MARKER_SUFFIX)?;
    (!id.is_empty()).then(|| Owner::Repository(id.to_string()))
}

/// The owner of a mount table entry, from its options; `None`: not made by
/// certplane.
pub fn mount_owner(entry: &Value) -> Option<Owner> {
    let options = &entry["options"];
    if options[MANAGED_OPTION.0].as_str() != Some(MANAGED_OPTION.1) {
        return None;
    }
    Some(match options[REPOSITORY_OPTION].as_str() {
        Some(id) if !id.is_empty() => Owner::Repository(id.to_string()),
        _ => Owner::Unrecorded,
    })
}

fn keys(v: Option<Value>) -> Vec<String> {
    v.and_then(|d| d.get("keys").cloned())
        .and_then(|k| serde_json::from_value::<Vec<String>>(k).ok())
        .unwrap_or_default()
}

fn table(v: Option<Value>) -> Vec<(String, Value)> {
    match v {
        Some(Value::Object(m)) => m
            .into_iter()
            .filter(|(_, e)| e.is_object())
            .map(|(k, e)| (k.trim_end_matches('/').to_string(), e))
            .collect(),
        _ => Vec::new(),
    }
}

/// The objects of this repository's mount `path` (of type `mount_type`)
/// that `declared` does not hold: for every kind its descriptor lists under
/// such a mount ([`super::kinds::listed_under`]), e.g. the roles of a PKI
/// mount. They belong to the mount's owner, `identity`.
async fn listed(
    vault: &Vault,
    path: &str,
    mount_type: &str,
    declared: &BTreeSet<&Addr>,
    identity: &str,
) -> Result<Vec<Orphan>, VaultError> {
    let mut out = Vec::new();
    for (kind, l) in super::kinds::listed_under(mount_type) {
        for name in keys(vault.list(&(l.list)(path)).await?) {
            let addr = Addr::from((l.addr)(path, &name));
            if !declared.contains(&addr) {
                out.push(Orphan {
                    addr,
                    kind,
                    holds_ca: false,
                    owner: Owner::Repository(identity.to_string()),
                });
            }
        }
    }
    Ok(out)
}

/// What the survey reads in one mount: the objects of a mount of this
/// repository ([`listed`]), or whether a mount it does not declare holds a
/// CA; or nothing (another's mount, found in the table).
enum Look {
    /// Found in the table: nothing to read.
    Found(Orphan),
    /// A mount of this repository: what it holds that is not declared.
    Listed {
        /// The mount path.
        path: String,
        /// Its type (`pki`, `kubernetes`...).
        mount_type: String,
    },
    /// A mount of this repository it no longer declares: whether it holds
    /// a CA.
    Undeclared {
        /// The mount, to be deleted under prune.
        orphan: Orphan,
        /// The mount path.
        path: String,
    },
}

/// Reads what certplane manages in Vault: the owner of every tagged mount
/// and auth mount, and every managed object that `desired` does not
/// declare. Roles are listed only under mounts this repository (`identity`)
/// owns or is about to adopt: a role belongs to its mount's owner.
///
/// The two mount tables and the policy list are read together, then the
/// mounts are listed up to [`CONCURRENCY`] at a time (200 mounts of a
/// repository are 200 lists: one after another, they would be the longest
/// part of a plan that reads everything else in parallel); what is found
/// keeps the order of the tables.
pub async fn survey(
    vault: &Vault,
    desired: &Desired,
    identity: &str,
) -> Result<Ownership, VaultError> {
    let declared: BTreeSet<&Addr> = desired.resources.iter().map(|r| &r.addr).collect();
    let mut out = Ownership::default();
    let ours = |owner: &Owner, declared: bool| match owner {
        Owner::Repository(id) => id == identity,
        // Declared: this repository adopts it, and with it its roles.
        Owner::Unrecorded => declared,
    };
    let orphan = |addr: Addr, kind, holds_ca, owner: Owner| Orphan {
        addr,
        kind,
        holds_ca,
        owner,
    };

    let (secrets, auth, policies) = futures::try_join!(
        vault.read("sys/mounts"),
        vault.read("sys/auth"),
        vault.list("sys/policies/acl"),
    )?;
    let mut looks = Vec::new();
    for (path, entry) in table(secrets) {
        let Some(owner) = mount_owner(&entry) else {
            continue;
        };
        if entry["type"] != "pki" {
            continue;
        }
        let addr = Addr::from(VaultAddr::mount(&path));
        out.mounts.insert(addr.clone(), owner.clone());
        if declared.contains(&addr) {
            if ours(&owner, true) {
                looks.push(Look::Listed {
                    path,
                    mount_type: "pki".into(),
                });
            }
        } else {
            // Whether it holds a CA matters only to the one who may delete it.
            let mine = ours(&owner, false);
            let orphan = orphan(addr, ResourceKind::Mount, false, owner);
            looks.push(if mine {
                Look::Undeclared { orphan, path }
            } else {
                Look::Found(orphan)
            });
        }
    }
    for (path, entry) in table(auth) {
        let Some(owner) = mount_owner(&entry) else {
            continue;
        };
        let addr = Addr::from(VaultAddr::auth_mount(&path));
        out.mounts.insert(addr.clone(), owner.clone());
        if !declared.contains(&addr) {
            looks.push(Look::Found(orphan(
                addr,
                ResourceKind::AuthMount,
                false,
                owner,
            )));
            continue;
        }
        if ours(&owner, true) {
            let mount_type = entry["type"].as_str().unwrap_or_default().to_string();
            looks.push(Look::Listed { path, mount_type });
        }
    }
    let declared = &declared;
    let mut found = futures::stream::iter(looks)
        .map(|look| async move {
            match look {
                Look::Found(orphan) => Ok(vec![orphan]),
                Look::Listed { path, mount_type } => {
                    listed(vault, &path, &mount_type, declared, identity).await
                }
                Look::Undeclared { mut orphan, path } => {
                    orphan.holds_ca =
                        !keys(vault.list(&format!("{path}/issuers")).await?).is_empty();
                    Ok(vec![orphan])
                }
            }
        })
        .buffered(CONCURRENCY);
    while let Some(orphans) = found.next().await {
        out.orphans.extend(orphans?);
    }
    drop(found);
    let candidates: Vec<String> = keys(policies)
        .into_iter()
        .filter(|p| p != "default" && p != "root")
        .filter(|p| !declared.contains(&Addr::from(VaultAddr::policy(p))))
        .collect();
    let marked: Vec<Result<Option<(String, Owner)>, VaultError>> =
        futures::stream::iter(candidates)
            .map(|name| async move {
                let text = vault.read(&VaultAddr::policy(&name).path()).await?;
                let owner = text
                    .as_ref()
                    .and_then(|d| d["policy"].as_str())
                    .and_then(policy_owner);
                Ok(owner.map(|o| (name, o)))
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
    for found in marked {
        if let Some((name, owner)) = found? {
            out.orphans.push(orphan(
                Addr::from(VaultAddr::policy(&name)),
                ResourceKind::Policy,
                false,
                owner,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_owners_come_from_the_first_line() {
        let ours = format!("{}\n\npath \"x\" {{}}\n", policy_marker("homelab"));
        assert_eq!(
            policy_owner(&ours),
            Some(Owner::Repository("homelab".into()))
        );
        assert_eq!(
            policy_owner(&format!("{LEGACY_POLICY_MARKER}\npath \"x\" {{}}")),
            Some(Owner::Unrecorded)
        );
        assert_eq!(policy_owner("path \"x\" {}\n"), None);
        assert_eq!(policy_owner(""), None);
        assert_eq!(
            policy_owner(&format!("x\n{}", policy_marker("homelab"))),
            None,
            "only the first line counts"
        );
    }

    #[test]
    fn mount_owners_come_from_the_options() {
        assert_eq!(
            mount_owner(&json!({"options": owner_options("a")})),
            Some(Owner::Repository("a".into()))
        );
        assert_eq!(
            mount_owner(&json!({"options": {"managed-by": "certplane"}})),
            Some(Owner::Unrecorded)
        );
        assert_eq!(mount_owner(&json!({"options": null})), None);
        assert_eq!(
            mount_owner(&json!({"options": {"certplane-repository": "a"}})),
            None,
            "the identity alone is not certplane's tag"
        );
    }
}
