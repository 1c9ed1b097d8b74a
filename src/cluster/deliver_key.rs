//! `intermediate.deliverKeyTo`: the private key of an intermediate made with
//! `exportKey: true`, delivered with its certificate and chain into a
//! cluster Secret (Istio's plug-in CA reads `cacerts` that way).
//!
//! Vault returns an exported key once, when the intermediate is generated,
//! so the delivery happens right then: `plan` checks first that the Secret
//! can be written (a server-side apply dry run, so that a missing namespace
//! or a missing permission stops the run before a key is made; a namespace
//! the same plan creates is accepted: it is applied before the Vault half),
//! and `apply` writes it right after the intermediate is made, trying a few
//! times. The Secret is
//! not in certplane's inventory: it is never updated, pruned or read back
//! afterwards; a rotation (a new issuer) delivers the new key. The key never
//! reaches a plan, a plan file, a log line, an error or a rendered file.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use super::{Cluster, ClusterError};
use crate::addr::Addr;
use crate::model::{CaSpec, KeyDeliverTo, KeySecretFormat, Repository};
use crate::pki::sign::certificate_blocks;
use crate::plan::{Action, Plan, PlanError};
use crate::vault::apply::ExportedKey;

/// Annotation on a delivered Secret naming the issuer whose key it holds.
pub const DELIVERED_FROM: &str = "certplane.dev/exported-key-of";

/// How many times a delivery is tried before the key is given up.
const ATTEMPTS: u32 = 3;

/// Why a key could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum KeyDeliveryError {
    /// The Secret could not be written: the key, which Vault returns only
    /// once, is lost.
    #[error(
        "the exported key of {issuer} could not be delivered to Secret {namespace}/{name} and is lost \
         (Vault returns it only once): fix the cause, then rotate the intermediate (e.g. a new \
         issuerName) to make and deliver a new key"
    )]
    Lost {
        /// The issuer.
        issuer: String,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// Why.
        #[source]
        source: ClusterError,
    },
}

/// The intermediates of `repo` that deliver their key: mount -> target.
pub fn targets(repo: &Repository) -> Vec<(String, KeyDeliverTo)> {
    repo.pki_mounts()
        .filter_map(|(meta, _, spec)| match &spec.ca {
            Some(CaSpec::Intermediate(i)) if i.export_key => {
                i.deliver_key_to.clone().map(|to| (meta.name.clone(), to))
            }
            _ => None,
        })
        .collect()
}

/// The position of the last change of `plan` that makes an intermediate
/// whose key is delivered: the Vault half is applied up to it, then the key
/// delivered, then the rest.
pub fn last_exporting(plan: &Plan, repo: &Repository) -> Option<usize> {
    let targets = targets(repo);
    plan.changes.iter().rposition(|c| {
        c.kind == crate::state::ResourceKind::Issuer
            && matches!(c.action, Action::Create | Action::Replace)
            && mount_of(&c.addr).is_some_and(|m| targets.iter().any(|(t, _)| t == m))
    })
}

/// The mount of an issuer change (`<mount>/issuer/<name>`).
fn mount_of(addr: &Addr) -> Option<&str> {
    match addr.as_vault()? {
        crate::addr::VaultAddr::Issuer { mount, .. } => Some(mount),
        _ => None,
    }
}

/// The Secret manifest for `key` and `chain_pem` (certificate first, then
/// its chain); with no key, the same Secret with empty values (for the
/// dry run of `plan`).
pub fn manifest(to: &KeyDeliverTo, issuer: &str, key: Option<&str>, chain_pem: &str) -> Value {
    let certs = certificate_blocks(chain_pem);
    let cert = certs.first().cloned().unwrap_or_default();
    let chain = certs.concat();
    let root = certs.last().cloned().unwrap_or_default();
    let key = key.unwrap_or_default().to_string();
    let (kind, data) = match to.format {
        KeySecretFormat::Tls => (
            "kubernetes.io/tls",
            json!({"tls.crt": chain, "tls.key": key, "ca.crt": root}),
        ),
        KeySecretFormat::Istio => (
            "Opaque",
            json!({"ca-cert.pem": cert, "ca-key.pem": key, "cert-chain.pem": chain,
                   "root-cert.pem": root}),
        ),
    };
    let b64 = |v: &Value| {
        Value::String(
            base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default()),
        )
    };
    let data: serde_json::Map<String, Value> = data
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), b64(v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": {
            "name": to.secret.name,
            "namespace": to.secret.namespace,
            "labels": {"app.kubernetes.io/managed-by": "certplane"},
            "annotations": {DELIVERED_FROM: issuer},
        },
        "data": data,
    })
}

/// Whether an exported key's Secret can be written, as the cluster said
/// before any key is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A server-side apply dry run of the Secret passed.
    Writable,
    /// The Secret goes into a namespace this plan creates: it cannot be
    /// dry-run yet (the server answers 404), and the namespace is applied
    /// before the Vault half, so the key can be written when it is made.
    NewNamespace,
    /// The dry run failed: why (one line, no secret).
    Refused(String),
}

/// The changes of `plan` that make an intermediate whose key is delivered,
/// with where it goes.
pub fn exporting<'a>(plan: &'a Plan, repo: &Repository) -> Vec<(&'a Addr, KeyDeliverTo)> {
    let targets = targets(repo);
    plan.changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Replace))
        .filter_map(|c| {
            let (_, to) = mount_of(&c.addr).and_then(|m| targets.iter().find(|(t, _)| t == m))?;
            Some((&c.addr, to.clone()))
        })
        .collect()
}

/// Asks the cluster whether the Secret of each key `plan` exports can be
/// written: a server-side apply dry run of it with empty values, unless its
/// namespace is one of `new_namespaces` (made by this plan).
pub async fn probe(
    cluster: &Cluster,
    plan: &Plan,
    repo: &Repository,
    new_namespaces: &[String],
) -> BTreeMap<Addr, Probe> {
    let mut out = BTreeMap::new();
    for (addr, to) in exporting(plan, repo) {
        let found = if new_namespaces.contains(&to.secret.namespace) {
            Probe::NewNamespace
        } else {
            let body = manifest(&to, &addr.to_string(), None, "");
            match cluster.plan_object(&body).await {
                Ok(_) => Probe::Writable,
                Err(e) => Probe::Refused(e.to_string()),
            }
        };
        out.insert(addr.clone(), found);
    }
    out
}

/// Checks, before any key is made, that each key this plan exports can be
/// delivered (`probes`, from [`probe`]; none without a live cluster: a key
/// is never written to files). Each problem is a plan error, so nothing is
/// applied; each exporting change says where its key goes. Pure.
pub fn preflight(plan: &mut Plan, repo: &Repository, probes: &BTreeMap<Addr, Probe>) {
    let targets = targets(repo);
    let mut errors = Vec::new();
    for c in &mut plan.changes {
        if !matches!(c.action, Action::Create | Action::Replace) {
            continue;
        }
        let Some((_, to)) = mount_of(&c.addr).and_then(|m| targets.iter().find(|(t, _)| t == m))
        else {
            continue;
        };
        let secret = format!("{}/{}", to.secret.namespace, to.secret.name);
        let mut note = format!(
            "its exported key is delivered to Secret {secret} ({} format) right after it is made",
            match to.format {
                KeySecretFormat::Tls => "tls",
                KeySecretFormat::Istio => "istio",
            }
        );
        let message = match probes.get(&c.addr) {
            None => Some(format!(
                "its exported key goes to Secret {secret}, and there is no cluster to write it \
                 to (a key is never written to files, so not with --render): run with cluster \
                 access"
            )),
            Some(Probe::Refused(e)) => Some(format!(
                "its exported key cannot be delivered: {e}; nothing is generated until it can"
            )),
            Some(Probe::NewNamespace) => {
                note.push_str(&format!(
                    " (into namespace {}, which this plan creates first)",
                    to.secret.namespace
                ));
                None
            }
            Some(Probe::Writable) => None,
        };
        c.reason = Some(match c.reason.take() {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
        if let Some(message) = message {
            errors.push(PlanError {
                addr: c.addr.clone(),
                message,
            });
        }
    }
    plan.errored.extend(errors);
}

/// Writes each exported key into its Secret (server-side apply), trying a
/// few times. Returns the Secrets written.
pub async fn deliver(
    cluster: &Cluster,
    repo: &Repository,
    exported: &[ExportedKey],
) -> Result<Vec<Addr>, KeyDeliveryError> {
    let targets = targets(repo);
    let mut done = Vec::new();
    for e in exported {
        let Some((_, to)) = targets.iter().find(|(m, _)| *m == e.mount) else {
            continue;
        };
        let body = manifest(to, &e.addr.to_string(), Some(e.key.expose()), &e.chain_pem);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match cluster.apply_object(&body).await {
                Ok(()) => break,
                Err(source) if attempt >= ATTEMPTS => {
                    return Err(KeyDeliveryError::Lost {
                        issuer: e.addr.to_string(),
                        namespace: to.secret.namespace.clone(),
                        name: to.secret.name.clone(),
                        source,
                    });
                }
                Err(err) => {
                    tracing::warn!(
                        issuer = %e.addr,
                        error = %err,
                        attempt,
                        "cannot deliver the exported key yet; trying again"
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        tracing::info!(
            issuer = %e.addr,
            secret = %format!("{}/{}", to.secret.namespace, to.secret.name),
            "delivered the exported key"
        );
        done.push(Addr::from(crate::addr::KubeRef {
            group: String::new(),
            version: "v1".into(),
            kind: "Secret".into(),
            namespace: Some(to.secret.namespace.clone()),
            name: to.secret.name.clone(),
        }));
    }
    Ok(done)
}
