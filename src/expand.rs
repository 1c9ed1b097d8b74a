//! Expansion: a `VaultIssuer` becomes every object the hand-made wiring needs,
//! consistent by construction.
//!
//! For Kubernetes (secretless) auth: a ServiceAccount for the Issuer, a Role
//! and RoleBinding that let cert-manager create tokens for it
//! (`serviceaccounts/token`), a `KubernetesAuthRole` bound to that account
//! with audience `vault://<namespace>/<issuer>` (`vault://<issuer>` for a
//! ClusterIssuer), a `Policy` allowing `update` on the sign path, and the
//! Issuer itself. For AppRole: an `AppRole` with a fixed role ID whose secret
//! ID is delivered into a Secret, the Policy, and the Issuer. Every generated
//! object carries the `certplane.dev/generated-from` annotation and the
//! VaultIssuer's origin, so plans and errors point back at it.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{
    AppRoleSpec, Capability, DeliverTo, KubernetesAuthRoleSpec, Loaded, Meta, PolicyRule,
    PolicySpec, Repository, ReviewerServiceAccount, SecretKeyRef, TokenReviewer, VaultIssuerAuth,
    VaultIssuerSpec, VaultObject,
};

/// Annotation naming the `VaultIssuer` an object was generated from.
pub const GENERATED_FROM: &str = "certplane.dev/generated-from";

/// The names derived from one VaultIssuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The Issuer's name.
    pub issuer: String,
    /// Its namespace; `None` for a ClusterIssuer.
    pub namespace: Option<String>,
    /// Namespace of the ServiceAccount / Secret (the Issuer's, or
    /// cert-manager's for a ClusterIssuer).
    pub object_namespace: String,
    /// Name of the Vault role and policy.
    pub vault_name: String,
    /// The token audience cert-manager requests.
    pub audience: String,
}

impl Names {
    /// Names for a VaultIssuer.
    pub fn of(meta: &Meta, spec: &VaultIssuerSpec) -> Names {
        let issuer = meta.name.clone();
        match &meta.namespace {
            Some(ns) => Names {
                vault_name: format!("{ns}-{issuer}"),
                audience: format!("vault://{ns}/{issuer}"),
                object_namespace: ns.clone(),
                namespace: Some(ns.clone()),
                issuer,
            },
            None => Names {
                vault_name: issuer.clone(),
                audience: format!("vault://{issuer}"),
                object_namespace: spec.cert_manager.namespace.clone(),
                namespace: None,
                issuer,
            },
        }
    }
}

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

/// The ClusterRole that lets an account call the TokenReview and
/// SubjectAccessReview APIs: what Vault's Kubernetes auth needs of its
/// reviewer.
pub const AUTH_DELEGATOR: &str = "system:auth-delegator";

/// Expands every VaultIssuer of `repo` in place: generated Vault objects are
/// appended to `repo.vault`, generated manifests to `repo.manifests`. A
/// Kubernetes `AuthMount` whose token reviewer is a ServiceAccount expands
/// into that account, its ClusterRoleBinding to `system:auth-delegator` and
/// its token Secret.
pub fn expand(repo: &mut Repository) -> Result<(), Diagnostics> {
    expand_reviewers(repo);
    let mut errors = Vec::new();
    let issuers = repo.vault_issuers.clone();
    for vi in &issuers {
        if let Err(d) = expand_one(repo, vi) {
            errors.push(d);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(errors))
    }
}

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

fn expand_reviewers(repo: &mut Repository) {
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
            let meta = generated_meta(
                value["metadata"]["name"].as_str().unwrap_or_default(),
                value["metadata"]["namespace"].as_str(),
                &from,
            );
            generated.push(Loaded {
                meta,
                origin: obj.origin.clone(),
                spec: value,
            });
        }
    }
    repo.manifests.extend(generated);
}

fn expand_one(repo: &mut Repository, vi: &Loaded<VaultIssuerSpec>) -> Result<(), Diagnostic> {
    let spec = &vi.spec;
    let names = Names::of(&vi.meta, spec);
    let from = match &names.namespace {
        Some(ns) => format!("VaultIssuer/{ns}/{}", names.issuer),
        None => format!("VaultIssuer/{}", names.issuer),
    };
    let sign_path = format!("{}/sign/{}", spec.role.mount, spec.role.name);
    let origin = vi.origin.clone();
    let push_vault = |repo: &mut Repository, name: &str, obj: VaultObject| {
        repo.vault.push(Loaded {
            meta: generated_meta(name, None, &from),
            origin: origin.clone(),
            spec: obj,
        });
    };
    let push_manifest = |repo: &mut Repository, value: Value| {
        let meta = generated_meta(
            value["metadata"]["name"].as_str().unwrap_or_default(),
            value["metadata"]["namespace"].as_str(),
            &from,
        );
        repo.manifests.push(Loaded {
            meta,
            origin: origin.clone(),
            spec: value,
        });
    };

    push_vault(
        repo,
        &names.vault_name,
        VaultObject::Policy(PolicySpec {
            rules: Some(vec![PolicyRule {
                path: sign_path.clone(),
                capabilities: vec![Capability::Update],
            }]),
            hcl: None,
        }),
    );

    let mut vault_spec = json!({
        "server": spec.server,
        "path": sign_path,
    });
    if let Some(ns) = &spec.namespace {
        vault_spec["namespace"] = json!(ns);
    }
    if let Some(src) = &spec.ca_bundle_from {
        let pem = src.read().map_err(|e| {
            Diagnostic::new(vi.origin.at("spec.caBundleFrom"), e.to_string())
                .hint("caBundleFrom names the PEM CA of the Vault server's TLS certificate")
        })?;
        vault_spec["caBundle"] =
            json!(base64::engine::general_purpose::STANDARD.encode(pem.expose()));
    }

    match &spec.auth {
        VaultIssuerAuth::Kubernetes(auth) => {
            let sa = &names.issuer;
            let ns = names.object_namespace.as_str();
            push_vault(
                repo,
                &names.vault_name,
                VaultObject::KubernetesAuthRole(KubernetesAuthRoleSpec {
                    mount: auth.mount.clone(),
                    bound_service_account_names: vec![sa.clone()],
                    bound_service_account_namespaces: vec![ns.to_string()],
                    audience: Some(names.audience.clone()),
                    token_policies: vec![names.vault_name.clone()],
                    token_ttl: Some(crate::model::Duration::from_secs(60)),
                    token_max_ttl: None,
                }),
            );
            let meta = generated_meta(sa, Some(ns), &from);
            push_manifest(repo, manifest(&meta, "v1", "ServiceAccount", json!({})));
            let rbac_name = format!("{sa}-tokenrequest");
            let rmeta = generated_meta(&rbac_name, Some(ns), &from);
            push_manifest(
                repo,
                manifest(
                    &rmeta,
                    "rbac.authorization.k8s.io/v1",
                    "Role",
                    json!({"rules": [{
                        "apiGroups": [""],
                        "resources": ["serviceaccounts/token"],
                        "resourceNames": [sa],
                        "verbs": ["create"],
                    }]}),
                ),
            );
            push_manifest(
                repo,
                manifest(
                    &rmeta,
                    "rbac.authorization.k8s.io/v1",
                    "RoleBinding",
                    json!({
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "Role",
                            "name": rbac_name,
                        },
                        "subjects": [{
                            "kind": "ServiceAccount",
                            "name": spec.cert_manager.service_account,
                            "namespace": spec.cert_manager.namespace,
                        }],
                    }),
                ),
            );
            vault_spec["auth"] = json!({"kubernetes": {
                "mountPath": format!("/v1/auth/{}", auth.mount),
                "role": names.vault_name,
                "serviceAccountRef": {"name": sa},
            }});
        }
        VaultIssuerAuth::AppRole(auth) => {
            let secret_name = format!("{}-approle", names.issuer);
            let role_id = format!("certplane-{}", names.vault_name);
            push_vault(
                repo,
                &names.vault_name,
                VaultObject::AppRole(AppRoleSpec {
                    mount: auth.mount.clone(),
                    token_policies: vec![names.vault_name.clone()],
                    token_ttl: Some(crate::model::Duration::from_secs(600)),
                    role_id: Some(role_id.clone()),
                    deliver_to: Some(DeliverTo {
                        secret: SecretKeyRef {
                            namespace: names.object_namespace.clone(),
                            name: secret_name.clone(),
                            key: "secretId".into(),
                        },
                    }),
                    ..AppRoleSpec::default()
                }),
            );
            vault_spec["auth"] = json!({"appRole": {
                "path": auth.mount,
                "roleId": role_id,
                "secretRef": {"name": secret_name, "key": "secretId"},
            }});
        }
    }

    let kind = if names.namespace.is_some() {
        "Issuer"
    } else {
        "ClusterIssuer"
    };
    let imeta = generated_meta(&names.issuer, names.namespace.as_deref(), &from);
    push_manifest(
        repo,
        manifest(
            &imeta,
            "cert-manager.io/v1",
            kind,
            json!({"spec": {"vault": vault_spec}}),
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuthMountRef, CertManagerRef, Origin, RoleRef};

    fn vi(ns: Option<&str>, auth: VaultIssuerAuth) -> Loaded<VaultIssuerSpec> {
        Loaded {
            meta: Meta {
                name: "vault-issuer".into(),
                namespace: ns.map(str::to_string),
                ..Meta::default()
            },
            origin: Origin::default(),
            spec: VaultIssuerSpec {
                server: "https://vault.vault:8200".into(),
                ca_bundle_from: Some(crate::model::Source::Value("PEM".into())),
                role: RoleRef {
                    mount: "pki_int".into(),
                    name: "example-dot-com".into(),
                },
                auth,
                namespace: None,
                cert_manager: CertManagerRef::default(),
            },
        }
    }

    fn kinds(repo: &Repository) -> Vec<String> {
        repo.manifests
            .iter()
            .map(|m| format!("{}/{}", m.spec["kind"].as_str().unwrap(), m.meta.name))
            .collect()
    }

    #[test]
    fn kubernetes_auth_expands_to_the_whole_wiring() {
        let mut repo = Repository {
            vault_issuers: vec![vi(
                Some("sandbox"),
                VaultIssuerAuth::Kubernetes(AuthMountRef {
                    mount: "kubernetes".into(),
                }),
            )],
            ..Repository::default()
        };
        expand(&mut repo).unwrap();
        assert_eq!(
            kinds(&repo),
            [
                "ServiceAccount/vault-issuer",
                "Role/vault-issuer-tokenrequest",
                "RoleBinding/vault-issuer-tokenrequest",
                "Issuer/vault-issuer"
            ]
        );
        let role = repo
            .kubernetes_auth_roles()
            .next()
            .expect("a kubernetes auth role");
        assert_eq!(role.0.name, "sandbox-vault-issuer");
        assert_eq!(
            role.2.audience.as_deref(),
            Some("vault://sandbox/vault-issuer")
        );
        assert_eq!(role.2.bound_service_account_names, ["vault-issuer"]);
        assert_eq!(role.2.bound_service_account_namespaces, ["sandbox"]);
        let policy = repo.policies().next().unwrap();
        assert_eq!(
            crate::desired::render_hcl(policy.2, "homelab"),
            "# Managed by certplane for repository homelab: edits here are overwritten.\n\n\
             path \"pki_int/sign/example-dot-com\" {\n  capabilities = [\"update\"]\n}\n"
        );
        let issuer = &repo.manifests[3].spec;
        assert_eq!(
            issuer["spec"]["vault"]["path"],
            "pki_int/sign/example-dot-com"
        );
        assert_eq!(issuer["spec"]["vault"]["caBundle"], "UEVN");
        assert_eq!(
            issuer["spec"]["vault"]["auth"]["kubernetes"]["role"],
            "sandbox-vault-issuer"
        );
        assert_eq!(
            repo.manifests[2].spec["subjects"][0]["name"],
            "cert-manager"
        );
        assert_eq!(
            repo.manifests[0].meta.annotations[GENERATED_FROM],
            "VaultIssuer/sandbox/vault-issuer"
        );
    }

    #[test]
    fn no_namespace_makes_a_cluster_issuer_with_its_account_in_cert_manager() {
        let mut repo = Repository {
            vault_issuers: vec![vi(
                None,
                VaultIssuerAuth::Kubernetes(AuthMountRef {
                    mount: "kubernetes".into(),
                }),
            )],
            ..Repository::default()
        };
        expand(&mut repo).unwrap();
        assert_eq!(repo.manifests[3].spec["kind"], "ClusterIssuer");
        assert!(
            repo.manifests[3].spec["metadata"]
                .get("namespace")
                .is_none()
        );
        assert_eq!(
            repo.manifests[0].spec["metadata"]["namespace"],
            "cert-manager"
        );
        let role = repo.kubernetes_auth_roles().next().unwrap();
        assert_eq!(role.2.audience.as_deref(), Some("vault://vault-issuer"));
    }

    #[test]
    fn a_reviewer_service_account_expands_to_its_account_token_secret_and_auth_delegator_binding() {
        use crate::model::{AuthMountSpec, AuthType, KubernetesAuthConfig};
        let mount = |reviewer: Option<TokenReviewer>| Loaded {
            meta: Meta {
                name: "kubernetes".into(),
                ..Meta::default()
            },
            origin: Origin::default(),
            spec: VaultObject::AuthMount(AuthMountSpec {
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
            }),
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

    #[test]
    fn approle_auth_delivers_a_secret_and_fixes_the_role_id() {
        let mut repo = Repository {
            vault_issuers: vec![vi(
                Some("istio-system"),
                VaultIssuerAuth::AppRole(AuthMountRef {
                    mount: "approle".into(),
                }),
            )],
            ..Repository::default()
        };
        expand(&mut repo).unwrap();
        assert_eq!(kinds(&repo), ["Issuer/vault-issuer"]);
        let (meta, _, app) = repo.app_roles().next().unwrap();
        assert_eq!(meta.name, "istio-system-vault-issuer");
        assert_eq!(
            app.role_id.as_deref(),
            Some("certplane-istio-system-vault-issuer")
        );
        let to = &app.deliver_to.as_ref().unwrap().secret;
        assert_eq!(
            (to.namespace.as_str(), to.name.as_str()),
            ("istio-system", "vault-issuer-approle")
        );
        let auth = &repo.manifests[0].spec["spec"]["vault"]["auth"]["appRole"];
        assert_eq!(auth["roleId"], "certplane-istio-system-vault-issuer");
        assert_eq!(auth["secretRef"]["name"], "vault-issuer-approle");
    }
}
