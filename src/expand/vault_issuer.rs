//! A `VaultIssuer` becomes the wiring a cert-manager Vault Issuer needs.
//!
//! For Kubernetes (secretless) auth: a ServiceAccount for the Issuer, a Role
//! and RoleBinding that let cert-manager create tokens for it
//! (`serviceaccounts/token`), a `KubernetesAuthRole` bound to that account
//! with audience `vault://<namespace>/<issuer>` (`vault://<issuer>` for a
//! ClusterIssuer), a `Policy` allowing `update` on the sign path, and the
//! Issuer itself. For AppRole: an `AppRole` with a fixed role ID whose secret
//! ID is delivered into a Secret, the Policy, and the Issuer.

use base64::Engine as _;
use serde_json::{Value, json};

use super::{generated, generated_meta, manifest};
use crate::diagnostic::Diagnostic;
use crate::model::{
    AppRoleSpec, AuthMountRef, Capability, DeliverTo, KubernetesAuthRoleSpec, Loaded, Meta,
    PolicyRule, PolicySpec, Repository, SecretKeyRef, VaultIssuerAuth, VaultIssuerSpec,
    VaultObject,
};

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

/// What every object generated from one VaultIssuer shares.
struct Expansion<'r> {
    repo: &'r mut Repository,
    vi: &'r Loaded<VaultIssuerSpec>,
    names: Names,
    /// `VaultIssuer/<ns>/<name>` (or `VaultIssuer/<name>`).
    from: String,
}

impl Expansion<'_> {
    fn push_vault(&mut self, obj: VaultObject) {
        self.repo.vault.push(Loaded {
            meta: generated_meta(&self.names.vault_name, None, &self.from),
            origin: self.vi.origin.clone(),
            spec: obj,
        });
    }

    fn push_manifest(&mut self, value: Value) {
        let loaded = generated(value, &self.vi.origin, &self.from);
        self.repo.manifests.push(loaded);
    }

    /// The Policy granting `update` on the sign path.
    fn policy(&mut self, sign_path: &str) {
        self.push_vault(VaultObject::Policy(Box::new(PolicySpec {
            rules: Some(vec![PolicyRule {
                path: sign_path.to_string(),
                capabilities: vec![Capability::Update],
            }]),
            hcl: None,
        })));
    }

    /// The Issuer's `spec.vault` without its auth: server, path, Vault
    /// namespace, and the CA bundle read from `caBundleFrom`.
    fn vault_spec(&self, sign_path: &str) -> Result<Value, Diagnostic> {
        let spec = &self.vi.spec;
        let mut vault_spec = json!({
            "server": spec.server,
            "path": sign_path,
        });
        if let Some(ns) = &spec.namespace {
            vault_spec["namespace"] = json!(ns);
        }
        if let Some(src) = &spec.ca_bundle_from {
            let pem = src.read().map_err(|e| {
                Diagnostic::new(self.vi.origin.at("spec.caBundleFrom"), e.to_string())
                    .hint("caBundleFrom names the PEM CA of the Vault server's TLS certificate")
            })?;
            vault_spec["caBundle"] =
                json!(base64::engine::general_purpose::STANDARD.encode(pem.expose()));
        }
        Ok(vault_spec)
    }

    /// Kubernetes auth: the KubernetesAuthRole, the Issuer's ServiceAccount
    /// and the RBAC that lets cert-manager request its token; returns the
    /// Issuer's `auth`.
    fn kubernetes(&mut self, auth: &AuthMountRef) -> Value {
        let names = self.names.clone();
        let cert_manager = self.vi.spec.cert_manager.clone();
        let sa = &names.issuer;
        let ns = names.object_namespace.as_str();
        self.push_vault(VaultObject::KubernetesAuthRole(Box::new(
            KubernetesAuthRoleSpec {
                mount: auth.mount.clone(),
                bound_service_account_names: vec![sa.clone()],
                bound_service_account_namespaces: vec![ns.to_string()],
                audience: Some(names.audience.clone()),
                token_policies: Some(vec![names.vault_name.clone()]),
                token_ttl: Some(crate::model::Duration::from_secs(60)),
                token_max_ttl: None,
            },
        )));
        let meta = generated_meta(sa, Some(ns), &self.from);
        self.push_manifest(manifest(&meta, "v1", "ServiceAccount", json!({})));
        let rbac_name = format!("{sa}-tokenrequest");
        let rmeta = generated_meta(&rbac_name, Some(ns), &self.from);
        self.push_manifest(manifest(
            &rmeta,
            "rbac.authorization.k8s.io/v1",
            "Role",
            json!({"rules": [{
                "apiGroups": [""],
                "resources": ["serviceaccounts/token"],
                "resourceNames": [sa],
                "verbs": ["create"],
            }]}),
        ));
        self.push_manifest(manifest(
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
                    "name": cert_manager.service_account,
                    "namespace": cert_manager.namespace,
                }],
            }),
        ));
        json!({"kubernetes": {
            "mountPath": format!("/v1/auth/{}", auth.mount),
            "role": names.vault_name,
            "serviceAccountRef": {"name": sa},
        }})
    }

    /// AppRole auth: an AppRole with a fixed role ID whose secret ID is
    /// delivered into a Secret beside the Issuer; returns the Issuer's
    /// `auth`.
    fn app_role(&mut self, auth: &AuthMountRef) -> Value {
        let names = &self.names;
        let secret_name = format!("{}-approle", names.issuer);
        let role_id = format!("certplane-{}", names.vault_name);
        let role = AppRoleSpec {
            mount: auth.mount.clone(),
            token_policies: Some(vec![names.vault_name.clone()]),
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
        };
        self.push_vault(VaultObject::AppRole(Box::new(role)));
        json!({"appRole": {
            "path": auth.mount,
            "roleId": role_id,
            "secretRef": {"name": secret_name, "key": "secretId"},
        }})
    }

    /// The Issuer (a ClusterIssuer without a namespace).
    fn issuer(&mut self, vault_spec: Value) {
        let kind = if self.names.namespace.is_some() {
            "Issuer"
        } else {
            "ClusterIssuer"
        };
        let imeta = generated_meta(
            &self.names.issuer,
            self.names.namespace.as_deref(),
            &self.from,
        );
        self.push_manifest(manifest(
            &imeta,
            "cert-manager.io/v1",
            kind,
            json!({"spec": {"vault": vault_spec}}),
        ));
    }
}

/// Expands one VaultIssuer into `repo`: the Policy, the auth role and what
/// its login needs, the Issuer.
pub(super) fn expand_one(
    repo: &mut Repository,
    vi: &Loaded<VaultIssuerSpec>,
) -> Result<(), Diagnostic> {
    let names = Names::of(&vi.meta, &vi.spec);
    let from = match &names.namespace {
        Some(ns) => format!("VaultIssuer/{ns}/{}", names.issuer),
        None => format!("VaultIssuer/{}", names.issuer),
    };
    let sign_path = format!("{}/sign/{}", vi.spec.role.mount, vi.spec.role.name);
    let mut x = Expansion {
        repo,
        vi,
        names,
        from,
    };
    x.policy(&sign_path);
    let mut vault_spec = x.vault_spec(&sign_path)?;
    vault_spec["auth"] = match &vi.spec.auth {
        VaultIssuerAuth::Kubernetes(auth) => x.kubernetes(auth),
        VaultIssuerAuth::AppRole(auth) => x.app_role(auth),
    };
    x.issuer(vault_spec);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expand::{GENERATED_FROM, expand, kinds};
    use crate::model::{AuthMountRef, CertManagerRef, Loaded, Meta, Origin, Repository, RoleRef};

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
