//! A Kubernetes `AuthMount` whose token reviewer is a ServiceAccount
//! certplane manages: the account, a token Secret the API server fills, and
//! a ClusterRoleBinding to `system:auth-delegator` (Vault's TokenReview
//! calls are made as that account; the API server does not accept the
//! audience-bound token under review as a credential).

use serde_json::{Value, json};

use super::{generated_meta, manifest};
use crate::model::{Repository, ReviewerServiceAccount, TokenReviewer, VaultObject};

/// The ClusterRole that lets an account call the TokenReview and
/// SubjectAccessReview APIs: what Vault's Kubernetes auth needs of its
/// reviewer.
pub const AUTH_DELEGATOR: &str = "system:auth-delegator";

/// The manifests of a reviewer ServiceAccount: the account, a
/// `kubernetes.io/service-account-token` Secret the API server fills with a
/// long-lived token for it, and a ClusterRoleBinding to
/// `system:auth-delegator` (TokenReview and SubjectAccessReview, cluster
/// wide: a privilege, visible in every plan).
pub fn reviewer_manifests(sa: &ReviewerServiceAccount, from: &str) -> Vec<Value> {
    let ns = sa.namespace.as_str();
    let account = manifest(
        &generated_meta(&sa.name, Some(ns), from),
        "v1",
        "ServiceAccount",
        json!({}),
    );
    let mut secret_meta = generated_meta(&sa.token_secret(), Some(ns), from);
    secret_meta.annotations.insert(
        "kubernetes.io/service-account.name".to_string(),
        sa.name.clone(),
    );
    let secret = manifest(
        &secret_meta,
        "v1",
        "Secret",
        json!({"type": "kubernetes.io/service-account-token"}),
    );
    let binding = manifest(
        &generated_meta(&sa.binding(), None, from),
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        json!({
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": AUTH_DELEGATOR,
            },
            "subjects": [{"kind": "ServiceAccount", "name": sa.name, "namespace": ns}],
        }),
    );
    vec![account, secret, binding]
}

/// Appends the manifests of every reviewer ServiceAccount an AuthMount
/// declares.
pub(super) fn expand_reviewers(repo: &mut Repository) {
    let mut generated = Vec::new();
    for obj in &repo.vault {
        let VaultObject::AuthMount(spec) = &obj.spec else {
            continue;
        };
        let Some(TokenReviewer::ServiceAccount(sa)) = spec
            .kubernetes
            .as_ref()
            .and_then(|k| k.token_reviewer.as_ref())
        else {
            continue;
        };
        let from = format!("AuthMount/{}", obj.meta.name);
        for value in reviewer_manifests(sa, &from) {
            generated.push(super::generated(value, &obj.origin, &from));
        }
    }
    repo.manifests.extend(generated);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::{GENERATED_FROM, expand, kinds};
    use crate::model::{Loaded, Meta, Origin};

    #[test]
    fn a_reviewer_service_account_expands_to_its_account_token_secret_and_auth_delegator_binding() {
        use crate::model::{AuthMountSpec, AuthType, KubernetesAuthConfig};
        let mount = |reviewer: Option<TokenReviewer>| Loaded {
            meta: Meta {
                name: "kubernetes".into(),
                ..Meta::default()
            },
            origin: Origin::default(),
            spec: VaultObject::AuthMount(Box::new(AuthMountSpec {
                auth_type: AuthType::Kubernetes,
                description: None,
                kubernetes: Some(KubernetesAuthConfig {
                    host: "https://kubernetes.default.svc".into(),
                    ca_cert_file: None,
                    issuer: None,
                    token_reviewer: reviewer,
                    token_reviewer_jwt_from: None,
                    disable_local_ca_jwt: None,
                }),
                jwt: None,
            })),
        };
        let sa = ReviewerServiceAccount {
            namespace: "vault-auth".into(),
            name: "vault-token-reviewer".into(),
        };
        let mut repo = Repository {
            vault: vec![mount(Some(TokenReviewer::ServiceAccount(sa)))],
            ..Repository::default()
        };
        expand(&mut repo).unwrap();
        assert_eq!(
            kinds(&repo),
            [
                "ServiceAccount/vault-token-reviewer",
                "Secret/vault-token-reviewer-token",
                "ClusterRoleBinding/vault-auth-vault-token-reviewer-auth-delegator"
            ]
        );
        let secret = &repo.manifests[1].spec;
        assert_eq!(secret["type"], "kubernetes.io/service-account-token");
        assert_eq!(secret["metadata"]["namespace"], "vault-auth");
        assert_eq!(
            secret["metadata"]["annotations"]["kubernetes.io/service-account.name"],
            "vault-token-reviewer"
        );
        assert!(secret.get("data").is_none() && secret.get("stringData").is_none());
        let binding = &repo.manifests[2].spec;
        assert!(binding["metadata"].get("namespace").is_none());
        assert_eq!(
            binding["roleRef"],
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"})
        );
        assert_eq!(
            binding["subjects"],
            json!([{"kind": "ServiceAccount", "name": "vault-token-reviewer", "namespace": "vault-auth"}])
        );
        assert_eq!(
            repo.manifests[0].meta.annotations[GENERATED_FROM],
            "AuthMount/kubernetes"
        );

        // Vault's pod identity is not a cluster object certplane makes.
        let mut repo = Repository {
            vault: vec![mount(Some(TokenReviewer::VaultPodIdentity(true)))],
            ..Repository::default()
        };
        expand(&mut repo).unwrap();
        assert!(repo.manifests.is_empty());
    }
}
