//! The token reviewer of a Kubernetes auth mount, when it is a
//! ServiceAccount certplane declares (`tokenReviewer.serviceAccount`).
//!
//! Vault's Kubernetes auth checks each login's token with the API server's
//! TokenReview API, and needs an identity of its own to call it: the API
//! server refuses the audience-bound tokens cert-manager presents as a
//! credential (401). The reviewer ServiceAccount, its ClusterRoleBinding to
//! `system:auth-delegator` and its `kubernetes.io/service-account-token`
//! Secret are cluster objects ([`crate::expand`]); the token the API server
//! puts into that Secret goes to Vault's `token_reviewer_jwt`.
//!
//! Since the same apply may create the Secret, the auth mount's config is
//! written after the cluster half ([`split`], then [`resolve`]), with the
//! token read from the cluster, waiting for the API server to fill it in.
//! Vault only says whether a reviewer JWT is set, so the plan compares set /
//! not set ([`plan_live`]): a token Secret this apply creates forces a
//! rewrite. With `--render` there is no cluster to read the token from: the
//! reviewer is left as it is ([`plan_render`]). The token is never printed,
//! logged or written to a plan file.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::Value;

use super::{Cluster, ClusterError};
use crate::addr::{Addr, KubeRef};
use crate::model::{Sensitive, Source};
use crate::plan::{Action, Change, Plan, PlanError, same_value};
use crate::state::{ClusterSecretKey, Desired, ResourceKind, SecretFrom};
use crate::vault::SecretSources;

/// How long to wait for the API server to put a token into a new
/// `kubernetes.io/service-account-token` Secret.
pub const TOKEN_WAIT: Duration = Duration::from_secs(30);

/// How often to look while waiting.
const POLL: Duration = Duration::from_millis(500);

/// Why the reviewer's token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReviewerError {
    /// The Secret could not be read.
    #[error("cannot read the token of reviewer ServiceAccount {service_account} from {secret}")]
    Cluster {
        /// The ServiceAccount.
        service_account: String,
        /// The Secret and key.
        secret: String,
        /// Why.
        #[source]
        source: ClusterError,
    },
    /// The Secret did not get a token in time.
    #[error(
        "{secret} of reviewer ServiceAccount {service_account} {state} after {}s; \
         check that the ServiceAccount exists and the Secret has type \
         kubernetes.io/service-account-token and the annotation \
         kubernetes.io/service-account.name (kubectl -n {namespace} describe secret {name})",
        after.as_secs()
    )]
    NoToken {
        /// The ServiceAccount.
        service_account: String,
        /// The Secret and key.
        secret: String,
        /// "does not exist" or "has no token".
        state: &'static str,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// How long certplane waited.
        after: Duration,
    },
}

/// The secret parameters each resource reads from the cluster.
pub fn cluster_secrets(desired: &Desired) -> BTreeMap<Addr, BTreeMap<String, ClusterSecretKey>> {
    desired
        .resources
        .iter()
        .filter_map(|r| {
            let refs: BTreeMap<String, ClusterSecretKey> = r
                .secrets
                .iter()
                .filter_map(|(k, v)| match v {
                    SecretFrom::ClusterSecret(s) => Some((k.clone(), s.clone())),
                    SecretFrom::Source(_) | SecretFrom::Unset => None,
                })
                .collect();
            (!refs.is_empty()).then(|| (r.addr.clone(), refs))
        })
        .collect()
}

fn secret_addr(s: &ClusterSecretKey) -> Addr {
    Addr::from(KubeRef {
        group: String::new(),
        version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some(s.namespace.clone()),
        name: s.name.clone(),
    })
}

fn add_reason(c: &mut Change, text: String) {
    c.reason = Some(match c.reason.take() {
        Some(r) => format!("{r}; {text}"),
        None => text,
    });
}

/// Plans the reviewer tokens against a live cluster: a config whose
/// reviewer token Secret this plan creates is written again (Vault cannot
/// tell an old token from a new one), and every config that is written says
/// where its token comes from.
pub fn plan_live(plan: &mut Plan, desired: &Desired) {
    let refs = cluster_secrets(desired);
    let new_secrets: BTreeSet<Addr> = plan
        .changes
        .iter()
        .filter(|c| c.kind == ResourceKind::ClusterObject && c.action == Action::Create)
        .map(|c| c.addr.clone())
        .collect();
    for c in &mut plan.changes {
        let Some(keys) = refs.get(&c.addr) else {
            continue;
        };
        for (key, s) in keys {
            if c.action == Action::NoOp && new_secrets.contains(&secret_addr(s)) {
                c.become_change(Action::Update);
                add_reason(
                    c,
                    format!(
                        "the reviewer token {s} is created by this apply: {key} is written again"
                    ),
                );
            }
            if c.action.is_change() {
                add_reason(
                    c,
                    format!(
                        "{key}: the token of ServiceAccount {} from {s}, written after the cluster half",
                        s.service_account
                    ),
                );
            }
        }
    }
}

/// Plans the reviewer tokens when the cluster half is rendered to files:
/// certplane cannot read the token, so `token_reviewer_jwt` is not managed
/// in this run. A config write would clear a reviewer JWT Vault has, so a
/// change to another field of such a config is an error.
pub fn plan_render(plan: &mut Plan, desired: &Desired) {
    let refs = cluster_secrets(desired);
    let mut errors = Vec::new();
    for c in &mut plan.changes {
        let Some(keys) = refs.get(&c.addr) else {
            continue;
        };
        for (key, s) in keys {
            let live_set = c
                .before
                .as_ref()
                .and_then(|b| b.get(key))
                .is_some_and(|v| !v.is_null());
            c.sensitive.retain(|k| k != key);
            if let Some(a) = c.after.as_mut() {
                a.remove(key);
            }
            if let Some(b) = c.before.as_mut() {
                b.remove(key);
            }
            tracing::warn!(
                config = %c.addr,
                "the token reviewer's token is in the cluster ({s}); with --render certplane \
                 cannot read it and leaves {key} as Vault has it: apply once with cluster access"
            );
            if c.action != Action::Update {
                if c.action == Action::Create {
                    add_reason(
                        c,
                        format!(
                            "{key} is not written with --render: certplane reads it from {s} \
                             when it applies with cluster access"
                        ),
                    );
                }
                continue;
            }
            let after = c.after.clone().unwrap_or_default();
            let before = c.before.clone().unwrap_or_default();
            let changed: Vec<String> = after
                .iter()
                .filter(|(k, v)| {
                    if c.is_sensitive(k) {
                        before.get(k).is_none_or(Value::is_null)
                    } else {
                        !same_value(v, before.get(k))
                    }
                })
                .map(|(k, _)| k.to_string())
                .collect();
            if changed.is_empty() {
                c.action = Action::NoOp;
                c.reason = None;
            } else if live_set {
                errors.push(PlanError {
                    addr: c.addr.clone(),
                    message: format!(
                        "writing this config clears its {key}, which certplane reads from {s} \
                         and cannot read with --render; apply with cluster access (without \
                         --render), or declare tokenReviewerJwtFrom"
                    ),
                });
            } else {
                c.reason = Some(format!("changed: {}", changed.join(", ")));
            }
        }
    }
    plan.errored.extend(errors);
}

/// Splits the Vault changes that read a secret from the cluster off a plan:
/// they are applied after the cluster half.
pub fn split<'p>(plan: &'p Plan, desired: &Desired) -> (Cow<'p, Plan>, Vec<Change>) {
    let refs = cluster_secrets(desired);
    let deferred = |c: &Change| {
        c.action.is_change()
            && refs
                .get(&c.addr)
                .is_some_and(|keys| keys.keys().any(|k| c.sensitive.contains(k)))
    };
    if !plan.changes.iter().any(deferred) {
        return (Cow::Borrowed(plan), Vec::new());
    }
    let mut first = plan.clone();
    first.changes.retain(|c| !deferred(c));
    let later = plan
        .changes
        .iter()
        .filter(|c| deferred(c))
        .cloned()
        .collect();
    (Cow::Owned(first), later)
}

/// Reads the cluster secrets of the deferred changes: the secret sources to
/// apply them with.
pub async fn resolve(
    cluster: &Cluster,
    later: &[Change],
    desired: &Desired,
    wait: Duration,
) -> Result<SecretSources, ReviewerError> {
    let refs = cluster_secrets(desired);
    let mut out = SecretSources::new();
    for c in later {
        let Some(keys) = refs.get(&c.addr) else {
            continue;
        };
        for (key, s) in keys.iter().filter(|(k, _)| c.sensitive.contains(k)) {
            let token = read_token(cluster, s, wait).await?;
            out.entry(c.addr.clone())
                .or_default()
                .insert(key.clone(), Source::Value(token.expose().to_string()));
        }
    }
    Ok(out)
}

/// The token in a `kubernetes.io/service-account-token` Secret, waiting up
/// to `wait` for the API server to create it.
pub async fn read_token(
    cluster: &Cluster,
    s: &ClusterSecretKey,
    wait: Duration,
) -> Result<Sensitive, ReviewerError> {
    let api: Api<Secret> = Api::namespaced(cluster.client().clone(), &s.namespace);
    let object = format!("core/Secret/{}/{}", s.namespace, s.name);
    let started = tokio::time::Instant::now();
    loop {
        let got = cluster
            .timed("get", &object, api.get_opt(&s.name))
            .await
            .and_then(|r| {
                r.map_err(|source| ClusterError::Request {
                    op: "get",
                    object: object.clone(),
                    error: source,
                })
            })
            .map_err(|source| ReviewerError::Cluster {
                service_account: s.service_account.clone(),
                secret: s.to_string(),
                source,
            })?;
        let token = got
            .as_ref()
            .and_then(|secret| secret.data.as_ref())
            .and_then(|d| d.get(&s.key))
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if let Some(t) = token {
            return Ok(Sensitive::new(t));
        }
        if started.elapsed() >= wait {
            return Err(ReviewerError::NoToken {
                service_account: s.service_account.clone(),
                secret: s.to_string(),
                state: if got.is_some() {
                    "has no token"
                } else {
                    "does not exist"
                },
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                after: wait,
            });
        }
        tokio::time::sleep(POLL.min(wait)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::model::Location;
    use crate::state::{DesiredResource, Fields};

    fn desired() -> Desired {
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "token_reviewer_jwt".to_string(),
            SecretFrom::ClusterSecret(ClusterSecretKey {
                namespace: "vault-auth".into(),
                name: "r-token".into(),
                key: "token".into(),
                service_account: "vault-auth/r".into(),
            }),
        );
        Desired {
            resources: vec![DesiredResource {
                addr: Addr::parse_vault("auth/kubernetes/config").unwrap(),
                kind: ResourceKind::AuthConfig,
                fields: Fields::new(),
                secrets,
                depends_on: Default::default(),
                origin: Location {
                    file: std::path::Path::new("auth.yaml").into(),
                    line: 1,
                    column: 1,
                },
                ca: None,
            }],
        }
    }

    fn config_change(action: Action, host_before: &str, reviewer_set: bool) -> Plan {
        let before: Fields = [
            ("kubernetes_host".to_string(), json!(host_before)),
            (
                "token_reviewer_jwt".to_string(),
                if reviewer_set {
                    json!("(sensitive)")
                } else {
                    Value::Null
                },
            ),
        ]
        .into();
        let after: Fields = [
            ("kubernetes_host".to_string(), json!("https://k8s:6443")),
            ("token_reviewer_jwt".to_string(), json!("(sensitive)")),
        ]
        .into();
        Plan {
            changes: vec![Change {
                addr: Addr::parse_vault("auth/kubernetes/config").unwrap(),
                kind: ResourceKind::AuthConfig,
                action,
                before: (action != Action::Create).then_some(before),
                after: Some(after),
                sensitive: vec!["token_reviewer_jwt".into()],
                reason: Some("changed: token_reviewer_jwt".into()),
                ca: None,
                depends_on: Default::default(),
                manifest: None,
            }],
            ..Plan::default()
        }
    }

    #[test]
    fn rendering_leaves_the_reviewer_alone_and_refuses_to_clear_it() {
        // Only the (unreadable) reviewer differs: nothing to do this run.
        let mut p = config_change(Action::Update, "https://k8s:6443", false);
        plan_render(&mut p, &desired());
        assert_eq!(p.changes[0].action, Action::NoOp);
        assert!(p.changes[0].sensitive.is_empty());
        assert!(p.errored.is_empty());

        // A new config is written without it.
        let mut p = config_change(Action::Create, "", false);
        plan_render(&mut p, &desired());
        assert_eq!(p.changes[0].action, Action::Create);
        assert!(
            !p.changes[0]
                .after
                .as_ref()
                .unwrap()
                .contains_key("token_reviewer_jwt")
        );
        assert!(p.errored.is_empty());

        // Another field changes and Vault has a reviewer: the write would
        // clear it, so the plan is an error.
        let mut p = config_change(Action::Update, "https://old:6443", true);
        plan_render(&mut p, &desired());
        assert_eq!(p.errored.len(), 1);
        assert!(
            p.errored[0]
                .message
                .contains("clears its token_reviewer_jwt"),
            "{}",
            p.errored[0].message
        );

        // ...and without one, it is written, saying what changes.
        let mut p = config_change(Action::Update, "https://old:6443", false);
        plan_render(&mut p, &desired());
        assert!(p.errored.is_empty());
        assert_eq!(p.changes[0].action, Action::Update);
        assert_eq!(
            p.changes[0].reason.as_deref(),
            Some("changed: kubernetes_host")
        );
    }

    #[test]
    fn only_changes_that_write_a_cluster_secret_wait_for_the_cluster() {
        let p = config_change(Action::Update, "https://old:6443", true);
        let (first, later) = split(&p, &desired());
        assert!(first.changes.is_empty());
        assert_eq!(later.len(), 1);
        let mut noop = p.clone();
        noop.changes[0].action = Action::NoOp;
        let (first, later) = split(&noop, &desired());
        assert_eq!(first.changes.len(), 1);
        assert!(later.is_empty());
    }
}
