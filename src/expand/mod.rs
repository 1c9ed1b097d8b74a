//! Expansion: what one declaration stands for becomes every object it
//! needs, consistent by construction, before validation sees the
//! repository.
//!
//! A `VaultIssuer` (`vault_issuer`) becomes the whole hand-made wiring of
//! a cert-manager Vault Issuer: the Policy, the auth role, the cluster
//! objects its login needs and the Issuer itself. A Kubernetes `AuthMount`
//! whose token reviewer is a ServiceAccount (`reviewer`) becomes that
//! account, its token Secret and its binding to `system:auth-delegator`.
//! Every generated object carries the [`GENERATED_FROM`] annotation and the
//! origin of what it was generated from, so plans and errors point back at
//! it.

mod reviewer;
mod vault_issuer;

use serde_json::{Value, json};

use crate::diagnostic::Diagnostics;
use crate::model::{Loaded, Meta, Origin, Repository};

pub use reviewer::{AUTH_DELEGATOR, reviewer_manifests};
pub use vault_issuer::Names;

/// Annotation naming the `VaultIssuer` an object was generated from.
pub const GENERATED_FROM: &str = "certplane.dev/generated-from";

/// Expands every VaultIssuer of `repo` in place: generated Vault objects are
/// appended to `repo.vault`, generated manifests to `repo.manifests`. A
/// Kubernetes `AuthMount` whose token reviewer is a ServiceAccount expands
/// into that account, its ClusterRoleBinding to `system:auth-delegator` and
/// its token Secret.
pub fn expand(repo: &mut Repository) -> Result<(), Diagnostics> {
    reviewer::expand_reviewers(repo);
    let mut errors = Vec::new();
    let issuers = repo.vault_issuers.clone();
    for vi in &issuers {
        if let Err(d) = vault_issuer::expand_one(repo, vi) {
            errors.push(d);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(errors))
    }
}

/// The metadata of a generated object: its name and namespace, and the
/// [`GENERATED_FROM`] annotation.
fn generated_meta(name: &str, namespace: Option<&str>, from: &str) -> Meta {
    let mut meta = Meta {
        name: name.to_string(),
        namespace: namespace.map(str::to_string),
        ..Meta::default()
    };
    meta.annotations
        .insert(GENERATED_FROM.to_string(), from.to_string());
    meta
}

/// A Kubernetes manifest of `kind` with `meta`, certplane's managed-by
/// label, and the fields of `rest`.
fn manifest(meta: &Meta, api_version: &str, kind: &str, rest: Value) -> Value {
    let mut m = json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": meta.name,
            "annotations": meta.annotations,
            "labels": {"app.kubernetes.io/managed-by": "certplane"},
        },
    });
    if let Some(ns) = &meta.namespace {
        m["metadata"]["namespace"] = json!(ns);
    }
    if let (Value::Object(m), Value::Object(rest)) = (&mut m, rest) {
        m.extend(rest);
    }
    m
}

/// A generated manifest as a loaded object: at `origin` (the declaration
/// it stands for), with the metadata of its `metadata`.
fn generated(value: Value, origin: &Origin, from: &str) -> Loaded<Value> {
    let meta = generated_meta(
        value["metadata"]["name"].as_str().unwrap_or_default(),
        value["metadata"]["namespace"].as_str(),
        from,
    );
    Loaded {
        meta,
        origin: origin.clone(),
        spec: value,
    }
}

/// `Kind/name` of every manifest, in order.
#[cfg(test)]
fn kinds(repo: &Repository) -> Vec<String> {
    repo.manifests
        .iter()
        .map(|m| format!("{}/{}", m.spec["kind"].as_str().unwrap(), m.meta.name))
        .collect()
}
