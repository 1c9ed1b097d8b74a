//! How an Issuer logs in to Vault, cross-checked with what the repository
//! declares: token auth (the Secret's key), Kubernetes auth (the auth mount,
//! the KubernetesAuthRole's bound names, namespaces and audience, and the
//! RBAC that lets cert-manager request the token), AppRole auth (the mount,
//! the Secret's key and the AppRole delivering into it); that the role's
//! policies grant `update` on the sign path; and that the Secrets of its
//! TLS settings (CA bundle, client certificate and key) have their keys.

use std::collections::HashMap;

use super::{Checker, IssuerCtx};
use crate::diagnostic::suggest;
use crate::model::certmanager::{
    ClusterObject, Role, RoleBinding, ServiceAccountRef, VaultAppRole, VaultIssuer, VaultKubernetes,
};
use crate::model::{AuthType, CertManagerRef, KubernetesAuthRoleSpec, Origin, PolicySpec};
use crate::validate::acl;

/// Where an Issuer's Kubernetes auth is written.
const K8S: &str = "spec.vault.auth.kubernetes";
/// Where an Issuer's AppRole auth is written.
const APPROLE: &str = "spec.vault.auth.appRole";

impl<'a> Checker<'a> {
    /// A Secret the repository declares must have the key an Issuer reads.
    pub(super) fn secret_key(
        &self,
        origin: &Origin,
        at: &str,
        what: &str,
        ns: &str,
        name: &str,
        key: &str,
    ) {
        let Some((_, secret)) = self.secret(ns, name) else {
            return;
        };
        if !secret.keys.contains(key) {
            let keys: Vec<&str> = secret.keys.iter().map(String::as_str).collect();
            let hint = match suggest::closest(key, keys.iter().copied()) {
                Some(c) => format!("did you mean key: {c}?"),
                None if keys.is_empty() => format!("add the key {key} to Secret {ns}/{name}"),
                None => format!(
                    "set key: to one of {}, or add {key} to the Secret",
                    keys.join(", ")
                ),
            };
            self.push(
                origin,
                at,
                format!("{what}: Secret {ns}/{name} has no key {key}"),
                hint,
            );
        }
    }

    /// Token, Kubernetes, AppRole and TLS certificate auth, each when the
    /// Issuer uses it.
    pub(super) fn vault_auth(&self, i: &IssuerCtx<'_>, v: &VaultIssuer) {
        if let Some(t) = &v.auth.token_secret_ref {
            self.secret_key(
                i.origin,
                "spec.vault.auth.tokenSecretRef",
                &i.what,
                &i.res_ns,
                &t.name,
                t.key.as_deref().unwrap_or("token"),
            );
        }
        if let Some(k) = &v.auth.kubernetes {
            self.kubernetes_auth(i, k);
        }
        if let Some(a) = &v.auth.app_role {
            self.app_role_auth(i, a);
        }
        if let Some(c) = &v.auth.client_certificate {
            self.cert_auth(i, v, c);
        }
    }

    /// The Secrets of the Issuer's TLS settings have their keys; a client
    /// certificate comes with its key.
    pub(super) fn tls_secrets(&self, i: &IssuerCtx<'_>, v: &VaultIssuer) {
        for (field, r, default) in [
            ("caBundleSecretRef", &v.ca_bundle_secret_ref, "ca.crt"),
            ("clientCertSecretRef", &v.client_cert_secret_ref, "tls.crt"),
            ("clientKeySecretRef", &v.client_key_secret_ref, "tls.key"),
        ] {
            if let Some(r) = r {
                self.secret_key(
                    i.origin,
                    &format!("spec.vault.{field}"),
                    &i.what,
                    &i.res_ns,
                    &r.name,
                    r.key.as_deref().unwrap_or(default),
                );
            }
        }
        if v.client_cert_secret_ref.is_some() != v.client_key_secret_ref.is_some() {
            self.push(
                i.origin,
                "spec.vault",
                format!(
                    "{}: mTLS needs both clientCertSecretRef and clientKeySecretRef",
                    i.what
                ),
                "give both, or neither",
            );
        }
    }

    /// Kubernetes auth: the mount, the role on it, the account that logs
    /// in, what the role admits, the role's policies and the RBAC that lets
    /// cert-manager request the account's token.
    fn kubernetes_auth(&self, i: &IssuerCtx<'_>, k: &VaultKubernetes) {
        let Some(mount) = self.kubernetes_mount(i, k) else {
            return;
        };
        let Some((role_name, role)) = self.kubernetes_role(i, k, mount) else {
            return;
        };
        let (sa, sa_at) = self.login_account(i, k);
        if let Some(r) = &k.secret_ref {
            self.secret_key(
                i.origin,
                &format!("{K8S}.secretRef"),
                &i.what,
                &i.res_ns,
                &r.name,
                r.key.as_deref().unwrap_or("token"),
            );
        }
        if let Some(sa) = &sa {
            self.role_admits(i, role_name, role, sa, &sa_at);
        }
        if let Some(r) = &k.service_account_ref {
            self.audience(i, role_name, role, r);
        }
        self.grants(
            i,
            &format!("KubernetesAuthRole {role_name}"),
            role.token_policies.as_deref().unwrap_or_default(),
        );
        if let Some(r) = &k.service_account_ref
            && self.has_service_account(&i.res_ns, &r.name)
        {
            let cm = self.cert_manager_of(i.origin);
            self.token_rbac(
                i.origin,
                &format!("{K8S}.serviceAccountRef.name"),
                &i.what,
                &i.res_ns,
                &r.name,
                &cm,
            );
        }
    }

    /// The auth mount of `mountPath`, when it is a declared kubernetes auth
    /// mount; otherwise reported (unless the live Vault has it) and `None`.
    fn kubernetes_mount<'k>(&self, i: &IssuerCtx<'_>, k: &'k VaultKubernetes) -> Option<&'k str> {
        let what = &i.what;
        let mount_path = k
            .mount_path
            .as_deref()
            .unwrap_or(VaultKubernetes::DEFAULT_MOUNT_PATH);
        let mount_at = if k.mount_path.is_some() {
            format!("{K8S}.mountPath")
        } else {
            K8S.to_string()
        };
        let Some(mount) = mount_path
            .trim_end_matches('/')
            .strip_prefix("/v1/auth/")
            .filter(|m| !m.is_empty())
        else {
            self.push(
                i.origin,
                &mount_at,
                format!("{what}: mountPath {mount_path:?} is not /v1/auth/<mount>"),
                "write the auth mount as /v1/auth/kubernetes (cert-manager calls <mountPath>/login)",
            );
            return None;
        };
        let live_mount = self.live.is_some_and(|l| l.auth_mounts.contains(mount));
        match self.repo.auth_mount(mount) {
            None if live_mount => None,
            None => {
                let of_type: Vec<&str> = self
                    .repo
                    .auth_mounts()
                    .filter(|(_, _, s)| s.auth_type == AuthType::Kubernetes)
                    .map(|(m, _, _)| m.name.as_str())
                    .collect();
                self.push(
                    i.origin,
                    &mount_at,
                    format!("{what}: auth mount {mount} is not a declared AuthMount"),
                    match suggest::closest(mount, of_type.iter().copied()) {
                        Some(c) => format!("did you mean /v1/auth/{c}?"),
                        None => format!("declare an AuthMount {mount} with type: kubernetes"),
                    },
                );
                None
            }
            Some((_, _, m)) if m.auth_type != AuthType::Kubernetes => {
                self.push(
                    i.origin,
                    &mount_at,
                    format!(
                        "{what}: auth mount {mount} is of type {}, not kubernetes",
                        m.auth_type.as_str()
                    ),
                    "point mountPath at a kubernetes auth mount",
                );
                None
            }
            Some(_) => Some(mount),
        }
    }

    /// The KubernetesAuthRole the Issuer logs in with, when the repository
    /// declares it on `mount`; otherwise reported (unless the live Vault has
    /// it) and `None`.
    fn kubernetes_role(
        &self,
        i: &IssuerCtx<'_>,
        k: &VaultKubernetes,
        mount: &str,
    ) -> Option<(&'a str, &'a KubernetesAuthRoleSpec)> {
        let repo = self.repo;
        let found = repo
            .kubernetes_auth_roles()
            .find(|(m, _, s)| m.name == k.role && s.mount == mount);
        if let Some((meta, _, role)) = found {
            return Some((meta.name.as_str(), role));
        }
        if self
            .live
            .is_some_and(|l| l.auth_roles.contains(&(mount.to_string(), k.role.clone())))
        {
            return None;
        }
        let names: Vec<&str> = repo
            .kubernetes_auth_roles()
            .filter(|(_, _, s)| s.mount == mount)
            .map(|(m, _, _)| m.name.as_str())
            .collect();
        self.push(
            i.origin,
            &format!("{K8S}.role"),
            format!(
                "{}: role {} is not a KubernetesAuthRole on auth mount {mount}",
                i.what, k.role
            ),
            suggest::did_you_mean(&k.role, names.iter().copied()),
        );
        None
    }

    /// The service account that logs in (when known: a `serviceAccountRef`,
    /// or the account a declared token Secret belongs to) and the field
    /// that names it.
    fn login_account(&self, i: &IssuerCtx<'_>, k: &VaultKubernetes) -> (Option<String>, String) {
        if let Some(r) = &k.service_account_ref {
            (
                Some(r.name.clone()),
                format!("{K8S}.serviceAccountRef.name"),
            )
        } else if let Some(r) = &k.secret_ref {
            let sa = self.secret(&i.res_ns, &r.name).and_then(|(o, _)| {
                o.m.meta
                    .annotations
                    .get("kubernetes.io/service-account.name")
                    .cloned()
            });
            (sa, format!("{K8S}.secretRef.name"))
        } else {
            (None, K8S.to_string())
        }
    }

    /// The role's bound names and namespaces admit the account.
    fn role_admits(
        &self,
        i: &IssuerCtx<'_>,
        role_name: &str,
        role: &KubernetesAuthRoleSpec,
        sa: &str,
        sa_at: &str,
    ) {
        let (what, res_ns) = (&i.what, &i.res_ns);
        let admits = |list: &[String], x: &str| list.iter().any(|i| i == "*" || i == x);
        if !admits(&role.bound_service_account_names, sa) {
            self.push(
                i.origin,
                sa_at,
                format!(
                    "{what}: KubernetesAuthRole {role_name} does not admit service account {sa} (bound names: {})",
                    role.bound_service_account_names.join(", ")
                ),
                format!(
                    "add {sa} to boundServiceAccountNames of KubernetesAuthRole {role_name}"
                ),
            );
        }
        if !admits(&role.bound_service_account_namespaces, res_ns) {
            self.push(
                i.origin,
                sa_at,
                format!(
                    "{what}: KubernetesAuthRole {role_name} does not admit namespace {res_ns} (bound namespaces: {})",
                    role.bound_service_account_namespaces.join(", ")
                ),
                format!(
                    "add {res_ns} to boundServiceAccountNamespaces of KubernetesAuthRole {role_name}"
                ),
            );
        }
    }

    /// A role bound to an audience gets it: cert-manager requests
    /// `vault://<namespace>/<issuer>` (`vault://<issuer>` for a
    /// ClusterIssuer) and the `audiences` listed.
    fn audience(
        &self,
        i: &IssuerCtx<'_>,
        role_name: &str,
        role: &KubernetesAuthRoleSpec,
        r: &ServiceAccountRef,
    ) {
        let Some(aud) = &role.audience else {
            return;
        };
        let expected = match i.ns {
            Some(ns) => format!("vault://{ns}/{}", i.name),
            None => format!("vault://{}", i.name),
        };
        if *aud != expected && !r.audiences.contains(aud) {
            self.push(
                i.origin,
                &format!("{K8S}.serviceAccountRef"),
                format!(
                    "{}: KubernetesAuthRole {role_name} wants audience {aud}, but cert-manager requests {expected}{}",
                    i.what,
                    if r.audiences.is_empty() {
                        String::new()
                    } else {
                        format!(" and {}", r.audiences.join(", "))
                    }
                ),
                format!(
                    "set audience: {expected} on KubernetesAuthRole {role_name}, or add {aud} to serviceAccountRef.audiences"
                ),
            );
        }
    }

    /// The cert-manager identity of an Issuer: its VaultIssuer's, or the
    /// default `cert-manager/cert-manager`.
    fn cert_manager_of(&self, origin: &Origin) -> CertManagerRef {
        self.repo
            .vault_issuers
            .iter()
            .find(|vi| vi.origin == *origin)
            .map(|vi| vi.spec.cert_manager.clone())
            .unwrap_or_default()
    }

    /// cert-manager must be allowed to `create` `serviceaccounts/token` for
    /// the Issuer's ServiceAccount.
    fn token_rbac(
        &self,
        origin: &Origin,
        at: &str,
        what: &str,
        ns: &str,
        sa: &str,
        cm: &CertManagerRef,
    ) {
        let roles: HashMap<(Option<&str>, &str), &Role> = self
            .objs
            .iter()
            .filter_map(|o| match &o.obj {
                ClusterObject::Role(r) => Some(((Some(o.ns()), o.name()), r)),
                ClusterObject::ClusterRole(r) => Some(((None, o.name()), r)),
                _ => None,
            })
            .collect();
        let binds = |b: &RoleBinding, binding_ns: Option<&str>| {
            let subject = b.subjects.iter().any(|s| {
                s.kind == "ServiceAccount"
                    && s.name == cm.service_account
                    && s.namespace.as_deref().or(binding_ns) == Some(cm.namespace.as_str())
            });
            let role = match b.role_ref.kind.as_str() {
                "Role" => binding_ns.and_then(|n| roles.get(&(Some(n), b.role_ref.name.as_str()))),
                "ClusterRole" => roles.get(&(None, b.role_ref.name.as_str())),
                _ => None,
            };
            subject
                && role.is_some_and(|r| {
                    r.rules
                        .iter()
                        .any(|rule| rule.allows("", "serviceaccounts/token", sa, "create"))
                })
        };
        let allowed = self.objs.iter().any(|o| match &o.obj {
            ClusterObject::RoleBinding(b) => o.ns() == ns && binds(b, Some(ns)),
            ClusterObject::ClusterRoleBinding(b) => binds(b, None),
            _ => false,
        });
        if !allowed {
            self.push(
                origin,
                at,
                format!(
                    "{what}: no Role/RoleBinding in the repository lets cert-manager ({}/{}) create tokens for ServiceAccount {ns}/{sa}",
                    cm.namespace, cm.service_account
                ),
                format!(
                    "add a Role in {ns} with rules: [{{apiGroups: [\"\"], resources: [serviceaccounts/token], resourceNames: [{sa}], verbs: [create]}}] and a RoleBinding of it to ServiceAccount {}/{} (checked because the repository declares ServiceAccount {ns}/{sa}; RBAC managed elsewhere is not seen)",
                    cm.namespace, cm.service_account
                ),
            );
        }
    }

    /// AppRole auth: the mount, the Secret holding the secret ID (and the
    /// AppRole delivering into it), the role's policies.
    fn app_role_auth(&self, i: &IssuerCtx<'_>, a: &VaultAppRole) {
        let Some(mount) = self.approle_mount(i, a) else {
            return;
        };
        let what = &i.what;
        let key = a.secret_ref.key.as_deref().unwrap_or("secretId");
        self.secret_key(
            i.origin,
            &format!("{APPROLE}.secretRef"),
            what,
            &i.res_ns,
            &a.secret_ref.name,
            key,
        );
        // An AppRole delivering into this Secret must use the same key.
        let repo = self.repo;
        let delivered = repo.app_roles().find_map(|(m, _, s)| {
            let to = &s.deliver_to.as_ref()?.secret;
            (to.namespace == i.res_ns && to.name == a.secret_ref.name).then_some((&m.name, &to.key))
        });
        if let Some((app, k)) = delivered
            && k != key
        {
            self.push(
                i.origin,
                &format!("{APPROLE}.secretRef"),
                format!(
                    "{what}: AppRole {app} delivers the secret ID under key {k}, but the Issuer reads key {key}"
                ),
                format!("set secretRef.key: {k}, or deliverTo.secret.key: {key} in AppRole {app}"),
            );
        }
        let found = repo
            .app_roles()
            .find(|(_, _, s)| s.mount == mount && s.role_id.as_deref() == Some(a.role_id.as_str()));
        if let Some((m, _, s)) = found {
            self.grants(
                i,
                &format!("AppRole {}", m.name),
                s.token_policies.as_deref().unwrap_or_default(),
            );
        }
    }

    /// The approle auth mount of `path`, when it is declared with that type
    /// or the live Vault has it; otherwise reported and `None`.
    fn approle_mount<'r>(&self, i: &IssuerCtx<'_>, a: &'r VaultAppRole) -> Option<&'r str> {
        let what = &i.what;
        let mount = a.path.trim_matches('/');
        let mount = mount.strip_prefix("v1/auth/").unwrap_or(mount);
        let live_mount = self.live.is_some_and(|l| l.auth_mounts.contains(mount));
        match self.repo.auth_mount(mount) {
            None if live_mount => Some(mount),
            None => {
                let of_type: Vec<&str> = self
                    .repo
                    .auth_mounts()
                    .filter(|(_, _, s)| s.auth_type == AuthType::Approle)
                    .map(|(m, _, _)| m.name.as_str())
                    .collect();
                self.push(
                    i.origin,
                    &format!("{APPROLE}.path"),
                    format!("{what}: approle path {mount} is not a declared AuthMount"),
                    match suggest::closest(mount, of_type.iter().copied()) {
                        Some(c) => format!("did you mean {c}?"),
                        None => format!("declare an AuthMount {mount} with type: approle"),
                    },
                );
                None
            }
            Some((_, _, m)) if m.auth_type != AuthType::Approle => {
                self.push(
                    i.origin,
                    &format!("{APPROLE}.path"),
                    format!(
                        "{what}: auth mount {mount} is of type {}, not approle",
                        m.auth_type.as_str()
                    ),
                    "point path at an approle auth mount",
                );
                None
            }
            Some(_) => Some(mount),
        }
    }

    /// The token policies of an auth role must grant `update` on the sign
    /// path.
    pub(super) fn grants(&self, i: &IssuerCtx<'_>, role: &str, policies: &[String]) {
        let sign_path = &i.sign_path;
        let declared: Vec<&PolicySpec> = policies
            .iter()
            .filter_map(|p| {
                self.repo
                    .policies()
                    .find(|(m, _, _)| m.name == *p)
                    .map(|(_, _, s)| s)
            })
            .collect();
        if acl::grants_update(&declared, sign_path) {
            return;
        }
        let names = if policies.is_empty() {
            "none".to_string()
        } else {
            policies.join(", ")
        };
        self.push(
            i.origin,
            "spec.vault.path",
            format!(
                "{}: the policies of {role} ({names}) do not grant update on {sign_path}",
                i.what
            ),
            format!(
                "add `{{path: {sign_path}, capabilities: [update]}}` to the rules of one of its tokenPolicies"
            ),
        );
    }
}
