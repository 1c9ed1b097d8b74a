//! What certplane may prune in Vault (`prune: true`): only what it can tell
//! it manages. Mounts it creates carry the mount option
//! `managed-by: certplane`; policies it writes start with
//! [`POLICY_MARKER`]; roles live under mounts it manages. A mount made by
//! hand, a policy without the marker, a role under someone else's mount is
//! never a candidate.

use std::collections::BTreeSet;

use futures::StreamExt;
use serde_json::Value;

use super::observe::CONCURRENCY;
use super::{Vault, VaultError};
use crate::addr::Addr;
use crate::state::{Desired, Orphan, ResourceKind};

/// The mount option certplane sets on the mounts it creates.
pub const MANAGED_OPTION: (&str, &str) = ("managed-by", "certplane");

/// The first line of every policy certplane writes.
pub const POLICY_MARKER: &str = "# Managed by certplane: edits here are overwritten.";

fn managed(entry: &Value) -> bool {
    entry["options"][MANAGED_OPTION.0].as_str() == Some(MANAGED_OPTION.1)
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

/// Finds the managed objects that `desired` no longer declares.
pub async fn orphans(vault: &Vault, desired: &Desired) -> Result<Vec<Orphan>, VaultError> {
    let declared: BTreeSet<&Addr> = desired.resources.iter().map(|r| &r.addr).collect();
    let mut out = Vec::new();
    let orphan = |addr: Addr, kind, holds_ca| Orphan {
        addr,
        kind,
        holds_ca,
    };

    for (path, entry) in table(vault.read("sys/mounts").await?) {
        if !managed(&entry) || entry["type"] != "pki" {
            continue;
        }
        let addr = Addr::vault(format!("sys/mounts/{path}"));
        if declared.contains(&addr) {
            for role in keys(vault.list(&format!("{path}/roles")).await?) {
                let r = Addr::vault(format!("{path}/roles/{role}"));
                if !declared.contains(&r) {
                    out.push(orphan(r, ResourceKind::Role, false));
                }
            }
        } else {
            let holds_ca = !keys(vault.list(&format!("{path}/issuers")).await?).is_empty();
            out.push(orphan(addr, ResourceKind::Mount, holds_ca));
        }
    }
    for (path, entry) in table(vault.read("sys/auth").await?) {
        if !managed(&entry) {
            continue;
        }
        let addr = Addr::vault(format!("sys/auth/{path}"));
        if !declared.contains(&addr) {
            out.push(orphan(addr, ResourceKind::AuthMount, false));
            continue;
        }
        let kind = match entry["type"].as_str() {
            Some("kubernetes") => ResourceKind::KubernetesAuthRole,
            Some("approle") => ResourceKind::AppRole,
            _ => continue,
        };
        for role in keys(vault.list(&format!("auth/{path}/role")).await?) {
            let r = Addr::vault(format!("auth/{path}/role/{role}"));
            if !declared.contains(&r) {
                out.push(orphan(r, kind, false));
            }
        }
    }
    let candidates: Vec<String> = keys(vault.list("sys/policies/acl").await?)
        .into_iter()
        .filter(|p| p != "default" && p != "root")
        .filter(|p| !declared.contains(&Addr::vault(format!("sys/policies/acl/{p}"))))
        .collect();
    let marked: Vec<Result<Option<String>, VaultError>> = futures::stream::iter(candidates)
        .map(|name| async move {
            let text = vault.read(&format!("sys/policies/acl/{name}")).await?;
            let ours = text
                .as_ref()
                .and_then(|d| d["policy"].as_str())
                .is_some_and(|t| t.starts_with(POLICY_MARKER));
            Ok(ours.then_some(name))
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    for name in marked {
        if let Some(name) = name? {
            out.push(orphan(
                Addr::vault(format!("sys/policies/acl/{name}")),
                ResourceKind::Policy,
                false,
            ));
        }
    }
    Ok(out)
}
