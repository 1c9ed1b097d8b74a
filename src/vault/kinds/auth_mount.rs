//! `AuthMount`: an auth method (`sys/auth/<path>`, enabled and tuned) and
//! its `auth/<path>/config` (kubernetes: the API server and the token
//! reviewer; jwt: the issuer and keys). The reviewer's JWT is a secret
//! field: from a source, from a cluster Secret after the cluster half is
//! applied, or unset (Vault's own pod identity).

use serde_json::json;

use super::{Belongs, Delete, Listed, ObjectKind, Read, Resource, ResourceKind, Table, Write};
use crate::addr::{Addr, VaultAddr};
use crate::desired::{put, read_file, resource};
use crate::diagnostic::Diagnostic;
use crate::model::{
    AuthMountSpec, JwtAuthConfig, KubernetesAuthConfig, Meta, Origin, Repository, TokenReviewer,
    VaultSpec,
};
use crate::state::{ClusterSecretKey, DesiredResource, Fields, SecretFrom};
use crate::vault::needs::Needs;

/// The `AuthMount` kind.
pub struct AuthMount;

impl ObjectKind for AuthMount {
    type Spec = AuthMountSpec;
    const RESOURCES: &'static [ResourceKind] = &[ResourceKind::AuthMount, ResourceKind::AuthConfig];

    fn lower(
        _: &Repository,
        meta: &Meta,
        origin: &Origin,
        s: &AuthMountSpec,
    ) -> Result<Vec<DesiredResource>, Diagnostic> {
        let mut f = Fields::new();
        f.insert("type", json!(s.auth_type.as_str()));
        put(&mut f, "description", s.description.clone());
        let aaddr: Addr = s.address(&meta.name).into();
        let mut out = vec![resource(
            aaddr.clone(),
            ResourceKind::AuthMount,
            f,
            vec![],
            origin,
            "metadata.name",
        )];
        let config: Addr = VaultAddr::AuthConfig {
            mount: meta.name.clone(),
        }
        .into();
        if let Some(k) = &s.kubernetes {
            out.push(kubernetes_config(k, config.clone(), aaddr.clone(), origin)?);
        }
        if let Some(j) = &s.jwt {
            out.push(jwt_config(j, config, aaddr, origin));
        }
        Ok(out)
    }
}

/// `auth/<path>/config` of a kubernetes mount, with its token reviewer.
fn kubernetes_config(
    k: &KubernetesAuthConfig,
    addr: Addr,
    mount: Addr,
    origin: &Origin,
) -> Result<DesiredResource, Diagnostic> {
    let mut f = Fields::new();
    f.insert("kubernetes_host", json!(k.host));
    if let Some(file) = &k.ca_cert_file {
        let pem = read_file(file, origin, "spec.kubernetes.caCertFile")?;
        f.insert("kubernetes_ca_cert", json!(pem));
    }
    put(&mut f, "issuer", k.issuer.clone());
    put(&mut f, "disable_local_ca_jwt", k.disable_local_ca_jwt);
    let mut r = resource(
        addr,
        ResourceKind::AuthConfig,
        f,
        vec![mount],
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
    Ok(r)
}

/// `auth/<path>/config` of a jwt mount.
fn jwt_config(j: &JwtAuthConfig, addr: Addr, mount: Addr, origin: &Origin) -> DesiredResource {
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
    resource(
        addr,
        ResourceKind::AuthConfig,
        f,
        vec![mount],
        origin,
        "spec.jwt",
    )
}

/// `sys/auth/<path>`: found in `sys/auth`, enabled once (tagged as
/// certplane's), tuned after.
pub const AUTH_MOUNT: Resource = Resource {
    table: Table::Auth,
    read: Read::MountEntry,
    write: Write::Mount,
    delete: Delete::Path,
    batch: false,
    apply_order: 10,
    belongs: Belongs::MountOptions,
    listed: None,
    prune_order: 2,
    needs: auth_mount_needs,
};

/// `auth/<path>/config`: written whole (its secret read at apply), after
/// the mount; it goes with the mount.
pub const AUTH_CONFIG: Resource = Resource {
    table: Table::Auth,
    read: Read::Data,
    write: Write::Data,
    delete: Delete::Path,
    batch: false,
    apply_order: 20,
    belongs: Belongs::Mount,
    listed: None,
    prune_order: 0,
    needs: super::needs_write,
};

/// Enabling and tuning an auth method needs sudo; prune lists the roles of
/// its type.
fn auth_mount_needs(r: &DesiredResource, addr: &VaultAddr, n: &mut Needs) {
    let path = addr.path();
    n.add(&path, &["create", "read", "update", "sudo"]);
    super::needs_parent_entry(&path, n);
    n.add(format!("{path}/tune"), &["read", "update", "sudo"]);
    let mount_type = r.fields.get("type").and_then(|t| t.as_str()).unwrap_or("");
    for (_, Listed { list, .. }) in super::listed_under(mount_type) {
        n.add(list(addr.mount_path()), &["list"]);
    }
}
