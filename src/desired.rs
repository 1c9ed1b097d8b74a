//! Lowering: the typed repository -> the desired Vault state.
//!
//! Each certplane object becomes one or more [`DesiredResource`]s in Vault's
//! own terms (API path, snake_case parameters, durations in seconds). This is
//! the only place that knows how a YAML field maps to a Vault parameter.
//! It reads the non-secret files the objects name (CA certificates, a
//! manually signed certificate); secrets stay [`Source`]s until apply.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::addr::{Addr, VaultAddr};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{
    AppRoleSpec, AuthMountSpec, CaSpec, Duration, KubernetesAuthRoleSpec, Loaded, Meta, Origin,
    PkiMountSpec, PkiRoleSpec, PolicySpec, Repository, SignedBy, Source, TokenReviewer,
    VaultObject,
};
use crate::pki::x509;
use crate::state::{
    CaIdentity, CaMethod, ClusterSecretKey, Desired, DesiredCa, DesiredResource, Fields,
    ResourceKind, SecretFrom, Signer,
};

/// Address of a PKI mount.
pub fn mount_addr(path: &str) -> Addr {
    VaultAddr::mount(path).into()
}

/// Address of the CA issuer of a PKI mount.
pub fn issuer_addr(mount: &str, issuer_name: Option<&str>) -> Addr {
    VaultAddr::issuer(mount, issuer_name).into()
}

/// Address of an auth mount.
pub fn auth_mount_addr(path: &str) -> Addr {
    VaultAddr::auth_mount(path).into()
}

/// Address of a policy.
pub fn policy_addr(name: &str) -> Addr {
    VaultAddr::policy(name).into()
}

/// Builds the desired state of every Vault object of the repository.
pub fn build(repo: &Repository) -> Result<Desired, Diagnostics> {
    let mut out = Desired::default();
    let mut errors = Vec::new();
    for obj in &repo.vault {
        let r = match &obj.spec {
            VaultObject::PkiMount(s) => pki_mount(repo, obj, s),
            VaultObject::PkiRole(s) => Ok(vec![pki_role(repo, &obj.meta, &obj.origin, s)]),
            VaultObject::Policy(s) => Ok(vec![policy(&repo.identity, &obj.meta, &obj.origin, s)]),
            VaultObject::AuthMount(s) => auth_mount(&obj.meta, &obj.origin, s),
            VaultObject::KubernetesAuthRole(s) => {
                Ok(vec![kubernetes_auth_role(&obj.meta, &obj.origin, s)])
            }
            VaultObject::AppRole(s) => Ok(app_role(&obj.meta, &obj.origin, s)),
        };
        match r {
            Ok(resources) => out.resources.extend(resources),
            Err(d) => errors.push(d),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(errors))
    }
}

fn secs(d: Duration) -> Value {
    json!(d.as_secs())
}

/// Inserts `key: value` when the option is set.
fn put<T: Into<Value>>(f: &mut Fields, key: &str, v: Option<T>) {
    if let Some(v) = v {
        f.insert(key.to_string(), v.into());
    }
}

fn put_secs(f: &mut Fields, key: &str, d: Option<Duration>) {
    put(f, key, d.map(secs));
}

fn resource(
    addr: Addr,
    kind: ResourceKind,
    fields: Fields,
    depends_on: Vec<Addr>,
    origin: &Origin,
    at: &str,
) -> DesiredResource {
    DesiredResource {
        addr,
        kind,
        fields,
        secrets: BTreeMap::new(),
        depends_on,
        origin: origin.at(at),
        ca: None,
    }
}

fn pki_mount(
    repo: &Repository,
    obj: &Loaded<VaultObject>,
    spec: &PkiMountSpec,
) -> Result<Vec<DesiredResource>, Diagnostic> {
    let path = obj.meta.name.as_str();
    let mut out = Vec::new();
    let mut f = Fields::new();
    f.insert("type".into(), json!("pki"));
    put(&mut f, "description", spec.description.clone());
    put_secs(&mut f, "default_lease_ttl", spec.default_lease_ttl);
    put_secs(&mut f, "max_lease_ttl", spec.max_lease_ttl);
    let maddr = mount_addr(path);
    out.push(resource(
        maddr.clone(),
        ResourceKind::Mount,
        f,
        vec![],
        &obj.origin,
        "metadata.name",
    ));

    if let Some(ca) = &spec.ca {
        out.push(issuer(repo, path, &obj.origin, ca)?);
    }
    if let Some(urls) = &spec.urls {
        let mut f = Fields::new();
        f.insert(
            "issuing_certificates".into(),
            json!(urls.issuing_certificates),
        );
        f.insert(
            "crl_distribution_points".into(),
            json!(urls.crl_distribution_points),
        );
        f.insert("ocsp_servers".into(), json!(urls.ocsp_servers));
        out.push(resource(
            VaultAddr::Urls {
                mount: path.to_string(),
            }
            .into(),
            ResourceKind::MountUrls,
            f,
            vec![maddr.clone()],
            &obj.origin,
            "spec.urls",
        ));
    }
    if let Some(crl) = &spec.crl {
        let mut f = Fields::new();
        put_secs(&mut f, "expiry", crl.expiry);
        put(&mut f, "disable", crl.disable);
        out.push(resource(
            VaultAddr::Crl {
                mount: path.to_string(),
            }
            .into(),
            ResourceKind::MountCrl,
            f,
            vec![maddr],
            &obj.origin,
            "spec.crl",
        ));
    }
    Ok(out)
}

/// The issuer name a mount's CA declares, if any.
fn ca_issuer_name(ca: &CaSpec) -> Option<&str> {
    match ca {
        CaSpec::Root(r) => r.issuer_name.as_deref(),
        CaSpec::Import(i) => i.issuer_name.as_deref(),
        CaSpec::Intermediate(i) => i.issuer_name.as_deref(),
    }
}

/// The common name a mount's CA will have, when known without reading a
/// secret (root and intermediate).
fn ca_common_name(ca: &CaSpec) -> Option<&str> {
    match ca {
        CaSpec::Root(r) => Some(&r.common_name),
        CaSpec::Intermediate(i) => Some(&i.common_name),
        CaSpec::Import(_) => None,
    }
}

fn read_file(path: &PathBuf, origin: &Origin, at: &str) -> Result<String, Diagnostic> {
    std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(
            origin.at(at),
            format!("cannot read {}: {e}", path.display()),
        )
        .hint("the path is relative to the YAML file that names it")
    })
}

fn read_optional(path: &PathBuf, origin: &Origin, at: &str) -> Result<Option<String>, Diagnostic> {
    if path.exists() {
        read_file(path, origin, at).map(Some)
    } else {
        Ok(None)
    }
}

fn issuer(
    repo: &Repository,
    mount: &str,
    origin: &Origin,
    ca: &CaSpec,
) -> Result<DesiredResource, Diagnostic> {
    let issuer_name = ca_issuer_name(ca).map(str::to_string);
    let mut depends_on = vec![mount_addr(mount)];
    let mut shown = Fields::new();
    put(&mut shown, "issuer_name", issuer_name.clone());
    let (identity, method, ttl, rotate_before, at) = match ca {
        CaSpec::Root(r) => {
            let mut params = Fields::new();
            params.insert("common_name".into(), json!(r.common_name));
            params.insert("key_type".into(), json!(r.key_type.as_str()));
            let bits = r.key_bits.unwrap_or(r.key_type.default_bits());
            if bits != 0 {
                params.insert("key_bits".into(), json!(bits));
            }
            put_secs(&mut params, "ttl", r.ttl);
            put(&mut params, "max_path_length", r.max_path_length);
            for (k, v) in &r.extra {
                params.insert(k.clone(), v.clone());
            }
            (
                CaIdentity {
                    common_name: r.common_name.clone(),
                    key_type: Some(r.key_type),
                    key_bits: Some(bits),
                    issued_by: Some(r.common_name.clone()),
                    cert_sha256: None,
                },
                CaMethod::Root { params },
                r.ttl,
                r.rotate_before,
                "spec.ca.root",
            )
        }
        CaSpec::Intermediate(i) => {
            let mut params = Fields::new();
            params.insert("common_name".into(), json!(i.common_name));
            params.insert("key_type".into(), json!(i.key_type.as_str()));
            let bits = i.key_bits.unwrap_or(i.key_type.default_bits());
            if bits != 0 {
                params.insert("key_bits".into(), json!(bits));
            }
            for (k, v) in &i.extra {
                params.insert(k.clone(), v.clone());
            }
            let mut sign_params = Fields::new();
            sign_params.insert("common_name".into(), json!(i.common_name));
            put_secs(&mut sign_params, "ttl", i.ttl);
            put(&mut sign_params, "max_path_length", i.max_path_length);
            let (signer, issued_by) = match &i.signed_by {
                SignedBy::Mount(parent) => {
                    let parent_ca = repo.pki_mount(parent).and_then(|(_, _, s)| s.ca.as_ref());
                    let issuer_ref = parent_ca.and_then(ca_issuer_name).map(str::to_string);
                    depends_on.push(issuer_addr(parent, issuer_ref.as_deref()));
                    let issued_by = match parent_ca {
                        Some(CaSpec::Import(imp)) => imported_cert(&imp.pem_bundle_from)
                            .ok()
                            .map(|c| c.common_name),
                        Some(other) => ca_common_name(other).map(str::to_string),
                        None => None,
                    };
                    (
                        Signer::Mount {
                            mount: parent.clone(),
                            issuer_ref,
                        },
                        issued_by,
                    )
                }
                SignedBy::External(ext) => {
                    let pem = read_file(
                        &ext.ca_cert_file,
                        origin,
                        "spec.ca.intermediate.signedBy.external.caCertFile",
                    )?;
                    let info = x509::parse_pem(&pem).map_err(|e| {
                        Diagnostic::new(
                            origin.at("spec.ca.intermediate.signedBy.external.caCertFile"),
                            format!("{}: {e}", ext.ca_cert_file.display()),
                        )
                        .hint("caCertFile must hold the signing CA's certificate in PEM")
                    })?;
                    (
                        Signer::External {
                            ca_cert_pem: pem,
                            ca_key: ext.ca_key_from.clone(),
                        },
                        Some(info.common_name),
                    )
                }
                SignedBy::Manual(m) => {
                    let at = "spec.ca.intermediate.signedBy.manual.certificateFile";
                    let certificate_pem = read_optional(&m.certificate_file, origin, at)?;
                    let mut csr_file = m.certificate_file.clone().into_os_string();
                    csr_file.push(".csr");
                    let csr_file = PathBuf::from(csr_file);
                    let csr_pem = read_optional(&csr_file, origin, at)?;
                    let issued_by = match &certificate_pem {
                        Some(pem) => Some(
                            x509::parse_pem(pem)
                                .map_err(|e| {
                                    Diagnostic::new(
                                        origin.at(at),
                                        format!("{}: {e}", m.certificate_file.display()),
                                    )
                                    .hint("commit the signed intermediate certificate in PEM")
                                })?
                                .issued_by,
                        ),
                        None => None,
                    };
                    (
                        Signer::Manual {
                            certificate_file: m.certificate_file.clone(),
                            certificate_pem,
                            csr_file,
                            csr_pem,
                        },
                        issued_by,
                    )
                }
            };
            (
                CaIdentity {
                    common_name: i.common_name.clone(),
                    key_type: Some(i.key_type),
                    key_bits: Some(bits),
                    issued_by,
                    cert_sha256: None,
                },
                CaMethod::Intermediate {
                    params,
                    sign_params,
                    export_key: i.export_key,
                    signer,
                },
                i.ttl,
                i.rotate_before,
                "spec.ca.intermediate",
            )
        }
        CaSpec::Import(imp) => {
            let info = imported_cert(&imp.pem_bundle_from).map_err(|why| {
                Diagnostic::new(origin.at("spec.ca.import.pemBundleFrom"), why).hint(
                    "pemBundleFrom must give a PEM bundle with the CA certificate and its key",
                )
            })?;
            (
                CaIdentity {
                    common_name: info.common_name.clone(),
                    key_type: info.key_type,
                    key_bits: Some(info.key_bits),
                    issued_by: Some(info.issued_by.clone()),
                    cert_sha256: Some(info.sha256.clone()),
                },
                CaMethod::Import {
                    bundle: imp.pem_bundle_from.clone(),
                },
                None,
                None,
                "spec.ca.import",
            )
        }
    };
    shown.insert("common_name".into(), json!(identity.common_name));
    put(
        &mut shown,
        "key_type",
        identity.key_type.map(|k| k.as_str()),
    );
    put(&mut shown, "key_bits", identity.key_bits);
    put(&mut shown, "issued_by", identity.issued_by.clone());
    put_secs(&mut shown, "ttl", ttl);
    put(
        &mut shown,
        "certificate_sha256",
        identity.cert_sha256.clone(),
    );
    let mut r = resource(
        issuer_addr(mount, issuer_name.as_deref()),
        ResourceKind::Issuer,
        shown,
        depends_on,
        origin,
        at,
    );
    r.ca = Some(DesiredCa {
        mount: mount.to_string(),
        issuer_name,
        identity,
        method,
        ttl: ttl.map(Duration::as_secs),
        rotate_before: rotate_before.map(Duration::as_secs),
    });
    Ok(r)
}

/// Reads the certificate of an import bundle. The bundle's key is dropped
/// with the text; only certificate facts leave this function.
fn imported_cert(source: &Source) -> Result<x509::CertInfo, String> {
    let text = source
        .read()
        .map_err(|e| format!("cannot read the CA bundle ({}): {e}", source.describe()))?;
    x509::parse_pem(text.expose()).map_err(|e| {
        format!(
            "the CA bundle ({}) has no usable certificate: {e}",
            source.describe()
        )
    })
}

fn pki_role(repo: &Repository, meta: &Meta, origin: &Origin, s: &PkiRoleSpec) -> DesiredResource {
    let mut f = Fields::new();
    put(&mut f, "issuer_ref", s.issuer_ref.clone());
    put(&mut f, "allowed_domains", s.allowed_domains.clone());
    put(&mut f, "allow_subdomains", s.allow_subdomains);
    put(&mut f, "allow_bare_domains", s.allow_bare_domains);
    put(&mut f, "allow_glob_domains", s.allow_glob_domains);
    put(
        &mut f,
        "allow_wildcard_certificates",
        s.allow_wildcard_certificates,
    );
    put(&mut f, "allow_any_name", s.allow_any_name);
    put(&mut f, "allow_localhost", s.allow_localhost);
    put(&mut f, "allow_ip_sans", s.allow_ip_sans);
    put(&mut f, "allowed_uri_sans", s.allowed_uri_sans.clone());
    put(&mut f, "require_cn", s.require_cn);
    put_secs(&mut f, "ttl", s.ttl);
    put_secs(&mut f, "max_ttl", s.max_ttl);
    put(&mut f, "key_type", s.key_type.map(|k| k.as_str()));
    put(&mut f, "key_bits", s.key_bits);
    put(&mut f, "server_flag", s.server_flag);
    put(&mut f, "client_flag", s.client_flag);
    put(&mut f, "key_usage", s.key_usage.clone());
    put(&mut f, "ext_key_usage", s.ext_key_usage.clone());
    put(&mut f, "organization", s.organization.clone());
    for (k, v) in &s.extra {
        f.insert(k.clone(), v.clone());
    }
    let mut depends_on = vec![mount_addr(&s.mount)];
    if let Some((_, _, m)) = repo.pki_mount(&s.mount)
        && let Some(ca) = &m.ca
    {
        depends_on.push(issuer_addr(&s.mount, ca_issuer_name(ca)));
    }
    resource(
        VaultAddr::role(&s.mount, &meta.name).into(),
        ResourceKind::Role,
        f,
        depends_on,
        origin,
        "metadata.name",
    )
}

/// Renders policy rules to HCL, deterministically, under the first line
/// that marks the policy as written by certplane for the repository
/// `identity` (prune deletes only what its own repository marked).
pub fn render_hcl(spec: &PolicySpec, identity: &str) -> String {
    let mut out = format!("{}\n", crate::vault::prune::policy_marker(identity));
    if let Some(hcl) = &spec.hcl {
        out.push_str(hcl);
        return out;
    }
    for rule in spec.rules.iter().flatten() {
        out.push('\n');
        let caps = rule
            .capabilities
            .iter()
            .map(|c| format!("\"{}\"", c.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "path \"{}\" {{\n  capabilities = [{caps}]\n}}\n",
            rule.path
        ));
    }
    out
}

fn policy(identity: &str, meta: &Meta, origin: &Origin, s: &PolicySpec) -> DesiredResource {
    let mut f = Fields::new();
    f.insert("policy".into(), json!(render_hcl(s, identity)));
    resource(
        policy_addr(&meta.name),
        ResourceKind::Policy,
        f,
        vec![],
        origin,
        "metadata.name",
    )
}

fn auth_mount(
    meta: &Meta,
    origin: &Origin,
    s: &AuthMountSpec,
) -> Result<Vec<DesiredResource>, Diagnostic> {
    let path = meta.name.as_str();
    let mut f = Fields::new();
    f.insert("type".into(), json!(s.auth_type.as_str()));
    put(&mut f, "description", s.description.clone());
    let aaddr = auth_mount_addr(path);
    let mut out = vec![resource(
        aaddr.clone(),
        ResourceKind::AuthMount,
        f,
        vec![],
        origin,
        "metadata.name",
    )];
    let config_addr: Addr = VaultAddr::AuthConfig {
        mount: path.to_string(),
    }
    .into();
    if let Some(k) = &s.kubernetes {
        let mut f = Fields::new();
        f.insert("kubernetes_host".into(), json!(k.host));
        if let Some(file) = &k.ca_cert_file {
            let pem = read_file(file, origin, "spec.kubernetes.caCertFile")?;
            f.insert("kubernetes_ca_cert".into(), json!(pem));
        }
        put(&mut f, "issuer", k.issuer.clone());
        put(&mut f, "disable_local_ca_jwt", k.disable_local_ca_jwt);
        let mut r = resource(
            config_addr.clone(),
            ResourceKind::AuthConfig,
            f,
            vec![aaddr.clone()],
            origin,
            "spec.kubernetes",
        );
        let reviewer = match (&k.token_reviewer, &k.token_reviewer_jwt_from) {
            (_, Some(src)) => Some(SecretFrom::Source(src.clone())),
            (Some(TokenReviewer::ServiceAccount(sa)), None) => {
                Some(SecretFrom::ClusterSecret(ClusterSecretKey {
                    namespace: sa.namespace.clone(),
                    name: sa.token_secret(),
                    key: "token".into(),
                    service_account: format!("{}/{}", sa.namespace, sa.name),
                }))
            }
            (Some(TokenReviewer::VaultPodIdentity(true)), None) => Some(SecretFrom::Unset),
            // Rejected by validation: no reviewer, or `vaultPodIdentity: false`.
            (Some(TokenReviewer::VaultPodIdentity(false)) | None, None) => None,
        };
        if let Some(from) = reviewer {
            r.secrets.insert("token_reviewer_jwt".into(), from);
        }
        out.push(r);
    }
    if let Some(j) = &s.jwt {
        let mut f = Fields::new();
        put(&mut f, "oidc_discovery_url", j.oidc_discovery_url.clone());
        put(&mut f, "jwks_url", j.jwks_url.clone());
        put(
            &mut f,
            "jwt_validation_pubkeys",
            j.jwt_validation_pubkeys.clone(),
        );
        put(&mut f, "bound_issuer", j.bound_issuer.clone());
        put(&mut f, "default_role", j.default_role.clone());
        out.push(resource(
            config_addr,
            ResourceKind::AuthConfig,
            f,
            vec![aaddr],
            origin,
            "spec.jwt",
        ));
    }
    Ok(out)
}

fn auth_role_deps(mount: &str, policies: &[String]) -> Vec<Addr> {
    let mut deps = vec![auth_mount_addr(mount)];
    deps.extend(
        policies
            .iter()
            .filter(|p| p.as_str() != "default")
            .map(|p| policy_addr(p)),
    );
    deps
}

fn kubernetes_auth_role(
    meta: &Meta,
    origin: &Origin,
    s: &KubernetesAuthRoleSpec,
) -> DesiredResource {
    let mut f = Fields::new();
    f.insert(
        "bound_service_account_names".into(),
        json!(s.bound_service_account_names),
    );
    f.insert(
        "bound_service_account_namespaces".into(),
        json!(s.bound_service_account_namespaces),
    );
    put(&mut f, "audience", s.audience.clone());
    f.insert("token_policies".into(), json!(s.token_policies));
    put_secs(&mut f, "token_ttl", s.token_ttl);
    put_secs(&mut f, "token_max_ttl", s.token_max_ttl);
    resource(
        VaultAddr::auth_role(&s.mount, &meta.name).into(),
        ResourceKind::KubernetesAuthRole,
        f,
        auth_role_deps(&s.mount, &s.token_policies),
        origin,
        "metadata.name",
    )
}

fn app_role(meta: &Meta, origin: &Origin, s: &AppRoleSpec) -> Vec<DesiredResource> {
    let mut f = Fields::new();
    f.insert("token_policies".into(), json!(s.token_policies));
    put_secs(&mut f, "token_ttl", s.token_ttl);
    put_secs(&mut f, "token_max_ttl", s.token_max_ttl);
    put_secs(&mut f, "secret_id_ttl", s.secret_id_ttl);
    put(&mut f, "secret_id_num_uses", s.secret_id_num_uses);
    put(
        &mut f,
        "secret_id_bound_cidrs",
        s.secret_id_bound_cidrs.clone(),
    );
    let role_addr: Addr = VaultAddr::auth_role(&s.mount, &meta.name).into();
    let role = resource(
        role_addr.clone(),
        ResourceKind::AppRole,
        f,
        auth_role_deps(&s.mount, &s.token_policies),
        origin,
        "metadata.name",
    );
    let mut out = vec![role];
    if let Some(id) = &s.role_id {
        let mut f = Fields::new();
        f.insert("role_id".into(), json!(id));
        out.push(resource(
            VaultAddr::RoleId {
                mount: s.mount.clone(),
                name: meta.name.clone(),
            }
            .into(),
            ResourceKind::AppRoleId,
            f,
            vec![role_addr],
            origin,
            "spec.roleId",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Capability, PolicyRule};

    #[test]
    fn renders_rules_to_hcl() {
        let spec = PolicySpec {
            rules: Some(vec![
                PolicyRule {
                    path: "pki_int/sign/web".into(),
                    capabilities: vec![Capability::Update],
                },
                PolicyRule {
                    path: "pki_int/issue/web".into(),
                    capabilities: vec![Capability::Create, Capability::Update],
                },
            ]),
            hcl: None,
        };
        assert_eq!(
            render_hcl(&spec, "homelab"),
            "# Managed by certplane for repository homelab: edits here are overwritten.\n\n\
             path \"pki_int/sign/web\" {\n  capabilities = [\"update\"]\n}\n\n\
             path \"pki_int/issue/web\" {\n  capabilities = [\"create\", \"update\"]\n}\n"
        );
    }
}
