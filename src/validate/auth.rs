//! AuthMounts and auth roles (Kubernetes, AppRole, cert): a config matching the
//! mount's type, a usable Kubernetes host, CA and token reviewer, bound
//! lists that admit someone, and roles whose mount, policies and token TTLs
//! resolve.

use super::ca;
use super::{Validator, dns_label_problem, is_http_url};
use crate::diagnostic::suggest;
use crate::model::{AuthType, Duration, KubernetesAuthConfig, Meta, Origin, TokenReviewer};

/// What the checks of every auth role share (see
/// [`crate::model::VaultSpec::auth_role`]).
#[derive(Clone, Copy)]
struct AuthRole<'a> {
    kind: &'static str,
    meta: &'a Meta,
    origin: &'a Origin,
    mount: &'a str,
    token_policies: &'a [String],
    ttl: Option<Duration>,
    max: Option<Duration>,
    want: AuthType,
}

impl Validator<'_> {
    /// Every AuthMount, then the bound lists of KubernetesAuthRoles and the
    /// certificates of CertAuthRoles, then what every auth role shares.
    pub(super) fn auth(&mut self) {
        self.auth_mounts();
        self.bound_lists();
        self.cert_auth_certificates();
        let repo = self.repo;
        let policies: Vec<&str> = repo.policies().map(|(m, _, _)| m.name.as_str()).collect();
        // Every auth role, whatever its kind: by kind, then in declaration
        // order.
        let mut roles: Vec<AuthRole<'_>> = repo
            .vault
            .iter()
            .filter_map(|o| {
                let r = o.spec.auth_role()?;
                Some(AuthRole {
                    kind: o.spec.kind(),
                    meta: &o.meta,
                    origin: &o.origin,
                    mount: r.mount,
                    token_policies: r.token_policies,
                    ttl: r.token_ttl,
                    max: r.token_max_ttl,
                    want: r.mount_type,
                })
            })
            .collect();
        roles.sort_by_key(|r| crate::model::VAULT_KINDS.iter().position(|k| *k == r.kind));
        for role in roles {
            self.auth_role(&role, &policies);
        }
    }

    /// A CertAuthRole's `certificateFile` is a readable certificate.
    fn cert_auth_certificates(&mut self) {
        for (meta, origin, r) in self.repo.cert_auth_roles() {
            if let Err(e) = ca::read_any_cert(&r.certificate_file) {
                self.push(
                    origin,
                    "spec.certificateFile",
                    format!("CertAuthRole {}: {e}", meta.name),
                    e.hint(),
                );
            }
        }
    }

    /// An AuthMount's config matches its type; a Kubernetes config has an
    /// http(s) host, a readable CA and one usable token reviewer.
    fn auth_mounts(&mut self) {
        for (meta, origin, m) in self.repo.auth_mounts() {
            if m.kubernetes.is_some() && m.auth_type != AuthType::Kubernetes {
                self.push(
                    origin,
                    "spec.kubernetes",
                    format!(
                        "auth mount {} of type {} has a kubernetes config",
                        meta.name,
                        m.auth_type.as_str()
                    ),
                    "remove spec.kubernetes, or set type: kubernetes",
                );
            }
            if m.jwt.is_some() && m.auth_type != AuthType::Jwt {
                self.push(
                    origin,
                    "spec.jwt",
                    format!(
                        "auth mount {} of type {} has a jwt config",
                        meta.name,
                        m.auth_type.as_str()
                    ),
                    "remove spec.jwt, or set type: jwt",
                );
            }
            if let Some(k) = &m.kubernetes {
                if !is_http_url(&k.host) {
                    self.push(
                        origin,
                        "spec.kubernetes.host",
                        format!("kubernetes host {:?} is not an http(s) URL", k.host),
                        "write the API server URL, e.g. https://kubernetes.default.svc",
                    );
                }
                if let Some(f) = &k.ca_cert_file
                    && let Err(e) = ca::read_any_cert(f)
                {
                    self.push(
                        origin,
                        "spec.kubernetes.caCertFile",
                        e.to_string(),
                        e.hint(),
                    );
                }
                self.token_reviewer(&meta.name, origin, k);
            }
        }
    }

    /// A KubernetesAuthRole admits some service account and namespace.
    fn bound_lists(&mut self) {
        for (meta, origin, r) in self.repo.kubernetes_auth_roles() {
            for (field, list) in [
                ("boundServiceAccountNames", &r.bound_service_account_names),
                (
                    "boundServiceAccountNamespaces",
                    &r.bound_service_account_namespaces,
                ),
            ] {
                if list.is_empty() {
                    self.push(
                        origin,
                        &format!("spec.{field}"),
                        format!("KubernetesAuthRole {}: {field} is empty", meta.name),
                        "list the service accounts (or namespaces) that may log in; * admits any",
                    );
                }
            }
        }
    }

    /// An auth role's mount is a declared AuthMount of its type, its token
    /// policies are declared (or `default`), and `tokenTTL` <= `tokenMaxTTL`.
    fn auth_role(&mut self, role: &AuthRole<'_>, policies: &[&str]) {
        let AuthRole {
            kind,
            meta,
            origin,
            mount,
            token_policies,
            ttl,
            max,
            want,
        } = *role;
        let of_type: Vec<&str> = self
            .repo
            .auth_mounts()
            .filter(|(_, _, s)| s.auth_type == want)
            .map(|(m, _, _)| m.name.as_str())
            .collect();
        match self.repo.auth_mount(mount) {
            None => self.push(
                origin,
                "spec.mount",
                format!(
                    "{kind} {}: auth mount {mount} is not a declared AuthMount",
                    meta.name
                ),
                suggest::did_you_mean(mount, of_type.iter().copied()),
            ),
            Some((_, _, m)) if m.auth_type != want => self.push(
                origin,
                "spec.mount",
                format!(
                    "{kind} {} needs an auth mount of type {}, but {mount} is of type {}",
                    meta.name,
                    want.as_str(),
                    m.auth_type.as_str()
                ),
                if of_type.is_empty() {
                    format!("declare an AuthMount with type: {}", want.as_str())
                } else {
                    format!(
                        "auth mounts of type {}: {}",
                        want.as_str(),
                        of_type.join(", ")
                    )
                },
            ),
            Some(_) => {}
        }
        for (i, p) in token_policies.iter().enumerate() {
            if p != "default" && !policies.contains(&p.as_str()) {
                self.push(
                    origin,
                    &format!("spec.tokenPolicies[{i}]"),
                    format!("{kind} {}: policy {p} is not a declared Policy", meta.name),
                    suggest::did_you_mean(p, policies.iter().copied()),
                );
            }
        }
        if let (Some(t), Some(m)) = (ttl, max)
            && t > m
        {
            self.push(
                origin,
                "spec.tokenTTL",
                format!(
                    "{kind} {} tokenTTL {t} exceeds its tokenMaxTTL {m}",
                    meta.name
                ),
                "lower tokenTTL or raise tokenMaxTTL",
            );
        }
    }

    /// A kubernetes auth config names exactly one token reviewer, and a
    /// usable one.
    fn token_reviewer(&mut self, mount: &str, origin: &Origin, k: &KubernetesAuthConfig) {
        match (&k.token_reviewer, &k.token_reviewer_jwt_from) {
            (None, None) => self.push(
                origin,
                "spec.kubernetes",
                format!(
                    "auth mount {mount} has no token reviewer: Vault would review each login's \
                     token with that same token, and the API server refuses the audience-bound \
                     tokens cert-manager requests (401), so every login fails"
                ),
                "add to spec.kubernetes `tokenReviewer: {serviceAccount: {namespace: vault-auth, \
                 name: vault-token-reviewer}}` (certplane creates the ServiceAccount, its token \
                 Secret and a ClusterRoleBinding to system:auth-delegator, and writes the token to \
                 Vault); or `tokenReviewer: {vaultPodIdentity: true}` when Vault runs in the \
                 cluster with an account bound to system:auth-delegator; or \
                 `tokenReviewerJwtFrom: {env: K8S_TOKEN_REVIEWER_JWT}`",
            ),
            (Some(_), Some(_)) => self.push(
                origin,
                "spec.kubernetes.tokenReviewerJwtFrom",
                format!("auth mount {mount} names two token reviewers"),
                "keep either tokenReviewer or tokenReviewerJwtFrom",
            ),
            (Some(TokenReviewer::VaultPodIdentity(false)), None) => self.push(
                origin,
                "spec.kubernetes.tokenReviewer.vaultPodIdentity",
                format!("auth mount {mount}: vaultPodIdentity: false names no token reviewer"),
                "set vaultPodIdentity: true (Vault runs in the cluster), or declare \
                 tokenReviewer: {serviceAccount: {namespace: ..., name: ...}}",
            ),
            (Some(TokenReviewer::VaultPodIdentity(true)), None)
                if k.disable_local_ca_jwt == Some(true) =>
            {
                self.push(
                    origin,
                    "spec.kubernetes.disableLocalCaJwt",
                    format!(
                        "auth mount {mount}: vaultPodIdentity reviews with Vault's own pod \
                         token, which disableLocalCaJwt: true turns off"
                    ),
                    "remove disableLocalCaJwt (Vault in the cluster), or use tokenReviewer: \
                     {serviceAccount: ...} when Vault runs outside the cluster",
                )
            }
            (Some(TokenReviewer::ServiceAccount(sa)), None) => {
                for (field, value) in [("namespace", &sa.namespace), ("name", &sa.name)] {
                    if let Some(why) = dns_label_problem(value) {
                        self.push(
                            origin,
                            &format!("spec.kubernetes.tokenReviewer.serviceAccount.{field}"),
                            format!("auth mount {mount}: token reviewer {field} {value:?} {why}"),
                            "use lowercase letters, digits and '-' (a DNS label)",
                        );
                    }
                }
            }
            (Some(TokenReviewer::VaultPodIdentity(true)), None) | (None, Some(_)) => {}
        }
    }
}
