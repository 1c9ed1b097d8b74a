//! Live checks that prevent outages, made at plan time against what was
//! observed of Vault (no I/O here): for each declared CA that the plan
//! keeps (not one it makes or replaces),
//!
//! - its remaining life covers the `maxTTL` of each role of its mount and
//!   the `duration` of each Certificate issued through a Vault Issuer
//!   pointing at the mount (else Vault refuses such leaves, or cuts them
//!   short with `truncate`);
//! - it is not expired, and not nearly expired with
//!   `leafNotAfterBehavior: truncate` (leaves silently cut to its
//!   notAfter, renewed again and again as it nears).
//!
//! And for each role pinned to an issuer by id: that issuer is not
//! retired, gone, or superseded by a rotation (a name follows a rotation,
//! an id does not).
//!
//! Each finding is a [`PlanWarning`] naming the object and the fix.

use serde_json::Value;

use super::{Action, Change, PlanWarning, Rotation};
use crate::addr::{Addr, KubeRef, VaultAddr};
use crate::model::certmanager::group_of;
use crate::model::{Duration, Repository};
use crate::state::{Desired, Observed, ObservedIssuer, ResourceKind};

/// cert-manager's default Certificate duration (90 days).
const DEFAULT_DURATION: u64 = 2160 * 3600;

/// Without `rotateBefore`, a CA with less than this left is nearly expired.
const NEARLY_EXPIRED: u64 = 30 * 24 * 3600;

/// A leaf lifetime asked of a mount: who asks, and how long.
struct Ask {
    addr: Addr,
    what: String,
    secs: u64,
    fix: String,
}

/// The warnings for `desired` against `observed`, given the planned
/// `changes` (a CA made or replaced by the plan is not judged by the one it
/// replaces).
pub fn live(
    repo: &Repository,
    desired: &Desired,
    observed: &Observed,
    changes: &[Change],
) -> Vec<PlanWarning> {
    let mut out = pinned_roles(desired, observed, changes);
    for r in &desired.resources {
        let Some(ca) = &r.ca else { continue };
        let remade = changes
            .iter()
            .any(|c| c.addr == r.addr && matches!(c.action, Action::Create | Action::Replace));
        if remade {
            continue;
        }
        let mount = ca.mount.trim_matches('/');
        let Some(issuer) = live_issuer(observed, mount, ca.issuer_name.as_deref()) else {
            continue;
        };
        let left = issuer.not_after - observed.now;
        let ca_name = if issuer.name.is_empty() {
            format!("CA {} of mount {mount}", issuer.common_name)
        } else {
            format!("CA {} of mount {mount}", issuer.name)
        };
        let rotate_fix = if ca.rotate_before.is_some() {
            "apply to rotate it (its rotateBefore window has started)".to_string()
        } else {
            format!(
                "rotate it: set rotateBefore on the CA of PkiMount {mount} (or change its identity) and apply"
            )
        };
        if left <= 0 {
            out.push(PlanWarning {
                addr: r.addr.clone(),
                message: format!(
                    "{ca_name} expired at {}: nothing it signed verifies and it signs nothing; {rotate_fix}",
                    date(issuer.not_after)
                ),
            });
            continue;
        }
        let left = left as u64;
        let asks = asks(repo, desired, mount);
        for a in &asks {
            if a.secs > left {
                out.push(PlanWarning {
                    addr: a.addr.clone(),
                    message: format!(
                        "{} {} is longer than the {} left to {ca_name} (notAfter {}): Vault refuses \
                         such leaves (or cuts them short with truncate); {}, or {rotate_fix}",
                        a.what,
                        Duration::from_secs(a.secs),
                        Duration::from_secs(left),
                        date(issuer.not_after),
                        a.fix
                    ),
                });
            }
        }
        // The live issuer's own setting, declared (`settings:`) or not.
        let truncate = issuer.leaf_not_after_behavior == "truncate";
        let window = ca.rotate_before.unwrap_or(NEARLY_EXPIRED);
        if truncate && left < window {
            out.push(PlanWarning {
                addr: r.addr.clone(),
                message: format!(
                    "{ca_name} has {} left (notAfter {}) and leafNotAfterBehavior truncate: every \
                     leaf it signs now is cut to its notAfter and renewed again and again as it \
                     nears; {rotate_fix}",
                    Duration::from_secs(left),
                    date(issuer.not_after)
                ),
            });
        }
    }
    out
}

/// Roles pinned to an issuer by id (`issuerRef: <issuer id>`), which does
/// not follow a rotation the way the declared name or `default` do: a
/// warning when that issuer is retired, gone, or superseded by a rotation
/// (in this plan or an earlier one), naming the fix.
fn pinned_roles(desired: &Desired, observed: &Observed, changes: &[Change]) -> Vec<PlanWarning> {
    let mut superseded: std::collections::BTreeMap<&str, (&str, u8)> = Default::default();
    for c in changes {
        let Some(ca) = &c.ca else { continue };
        let Some(r) = &ca.rotation else { continue };
        let id = match r {
            Rotation::Make { old }
            | Rotation::Overlap { old, .. }
            | Rotation::Published { old, .. }
            | Rotation::Switch { old, .. }
            | Rotation::CrossSign { old, .. } => old.as_str(),
            Rotation::Retire { id }
            | Rotation::Children { id }
            | Rotation::Expiring { id, .. }
            | Rotation::Delete { id, .. } => id.as_str(),
            Rotation::Parent { .. } => continue,
        };
        let name = ca.desired.issuer_name.as_deref().unwrap_or("default");
        superseded.insert(id, (name, r.stage()));
    }
    let mut out = Vec::new();
    for r in &desired.resources {
        if r.kind != ResourceKind::Role {
            continue;
        }
        let Some(VaultAddr::Role { mount, name }) = r.addr.as_vault() else {
            continue;
        };
        let Some(id) = r.fields.get("issuer_ref").and_then(Value::as_str) else {
            continue;
        };
        let is_id = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !is_id {
            continue;
        }
        let Some(issuers) = observed.issuers.get(mount.trim_matches('/')) else {
            continue;
        };
        let live = issuers.iter().find(|i| i.id == id);
        let fix = |declared: &str| {
            format!(
                "set issuerRef of PkiRole {name} to {declared} (a name follows rotations: it moves \
                 to the new issuer when it becomes the default)"
            )
        };
        let message = match (live, superseded.get(id)) {
            (None, _) => format!(
                "role {name} is pinned by id to issuer {id}, which mount {mount} does not have (a \
                 rotation deleted it, or it never existed): Vault refuses every leaf through this \
                 role; {}",
                fix("the CA's issuerName, or default")
            ),
            (Some(i), _) if i.is_retired() => format!(
                "role {name} is pinned by id to issuer {id}, which is retired (usage {}): Vault \
                 refuses every leaf through this role; {}",
                i.usage,
                fix(if i.name.is_empty() {
                    "default"
                } else {
                    "the CA's issuerName, or default"
                })
            ),
            (Some(_), Some((declared, stage))) => format!(
                "role {name} is pinned by id to issuer {id}, which a rotation supersedes (stage \
                 {stage}/3): once it is retired, Vault refuses every leaf through this role; {}",
                fix(declared)
            ),
            (Some(_), None) => continue,
        };
        out.push(PlanWarning {
            addr: r.addr.clone(),
            message,
        });
    }
    out
}

/// The live issuer a declared CA is: by name, or the mount's default.
fn live_issuer<'a>(
    observed: &'a Observed,
    mount: &str,
    name: Option<&str>,
) -> Option<&'a ObservedIssuer> {
    let list = observed.issuers.get(mount)?;
    match name {
        Some(n) => list.iter().find(|i| i.name == n),
        None => list.iter().find(|i| i.is_default),
    }
}

/// What asks leaves of `mount`: its roles' `maxTTL`, and the Certificates
/// of the Vault Issuers that sign there.
fn asks(repo: &Repository, desired: &Desired, mount: &str) -> Vec<Ask> {
    let mut out = Vec::new();
    for r in &desired.resources {
        if r.kind != ResourceKind::Role {
            continue;
        }
        let Some(VaultAddr::Role { mount: m, name }) = r.addr.as_vault() else {
            continue;
        };
        if m != mount {
            continue;
        }
        if let Some(secs) = r.fields.get("max_ttl").and_then(Value::as_u64) {
            out.push(Ask {
                addr: r.addr.clone(),
                what: format!("role {name} maxTTL"),
                secs,
                fix: format!("lower maxTTL of PkiRole {name}"),
            });
        }
    }
    for m in &repo.manifests {
        let v = &m.spec;
        let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if group_of(api) != "cert-manager.io"
            || v.get("kind").and_then(Value::as_str) != Some("Certificate")
        {
            continue;
        }
        let ns = m.meta.namespace.as_deref().unwrap_or("default");
        let Some(signs_at) = vault_mount_of(repo, ns, v.pointer("/spec/issuerRef")) else {
            continue;
        };
        if signs_at != mount {
            continue;
        }
        let secs = match v.pointer("/spec/duration").and_then(Value::as_str) {
            Some(d) => match d.parse::<Duration>() {
                Ok(d) => d.as_secs(),
                Err(_) => continue, // validate reports it.
            },
            None => DEFAULT_DURATION,
        };
        out.push(Ask {
            addr: Addr::from(KubeRef {
                group: "cert-manager.io".into(),
                version: "v1".into(),
                kind: "Certificate".into(),
                namespace: Some(ns.to_string()),
                name: m.meta.name.clone(),
            }),
            what: format!("Certificate {ns}/{} duration", m.meta.name),
            secs,
            fix: format!("lower spec.duration of Certificate {ns}/{}", m.meta.name),
        });
    }
    out
}

/// The Vault mount a Certificate's `issuerRef` signs at, when it names a
/// cert-manager Issuer or ClusterIssuer of the repository with a
/// `spec.vault.path`.
fn vault_mount_of(repo: &Repository, ns: &str, issuer_ref: Option<&Value>) -> Option<String> {
    let r = issuer_ref?;
    let name = r.get("name").and_then(Value::as_str)?;
    let kind = r.get("kind").and_then(Value::as_str).unwrap_or("Issuer");
    let group = r
        .get("group")
        .and_then(Value::as_str)
        .unwrap_or("cert-manager.io");
    if group != "cert-manager.io" {
        return None;
    }
    let issuer = repo.manifests.iter().find(|m| {
        let v = &m.spec;
        let api = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        group_of(api) == "cert-manager.io"
            && v.get("kind").and_then(Value::as_str) == Some(kind)
            && m.meta.name == name
            && (kind == "ClusterIssuer" || m.meta.namespace.as_deref().unwrap_or("default") == ns)
    })?;
    let path = issuer.spec.pointer("/spec/vault/path")?.as_str()?;
    crate::validate::cluster::parse_sign_path(path)
        .ok()
        .map(|s| s.mount)
}

/// A Unix time as an RFC 3339 UTC date.
fn date(t: i64) -> String {
    crate::vault::lock::rfc3339(t)
}
