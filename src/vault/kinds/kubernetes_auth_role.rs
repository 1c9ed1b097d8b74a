//! `KubernetesAuthRole`: `auth/<mount>/role/<name>` of a kubernetes auth
//! method, written whole. It depends on its auth mount and on the policies
//! it names; prune finds the ones no longer declared by listing
//! `auth/<mount>/role` of kubernetes mounts this repository owns.

use serde_json::json;

use super::{Belongs, Delete, Listed, ObjectKind, Read, Resource, ResourceKind, Table, Write};
use crate::addr::VaultAddr;
use crate::desired::{auth_role_deps, put, put_secs, resource};
use crate::diagnostic::Diagnostic;
use crate::model::{KubernetesAuthRoleSpec, Meta, Origin, Repository, VaultSpec};
use crate::state::{DesiredResource, Fields};

/// The `KubernetesAuthRole` kind.
pub struct KubernetesAuthRole;

impl ObjectKind for KubernetesAuthRole {
    type Spec = KubernetesAuthRoleSpec;
    const RESOURCES: &'static [ResourceKind] = &[ResourceKind::KubernetesAuthRole];

    fn lower(
        _: &Repository,
        meta: &Meta,
        origin: &Origin,
        s: &KubernetesAuthRoleSpec,
    ) -> Result<Vec<DesiredResource>, Diagnostic> {
        let mut f = Fields::new();
        f.insert(
            "bound_service_account_names",
            json!(s.bound_service_account_names),
        );
        f.insert(
            "bound_service_account_namespaces",
            json!(s.bound_service_account_namespaces),
        );
        put(&mut f, "audience", s.audience.clone());
        put(&mut f, "token_policies", s.token_policies.clone());
        put_secs(&mut f, "token_ttl", s.token_ttl);
        put_secs(&mut f, "token_max_ttl", s.token_max_ttl);
        Ok(vec![resource(
            s.address(&meta.name).into(),
            ResourceKind::KubernetesAuthRole,
            f,
            auth_role_deps(&s.mount, s.token_policies.as_deref().unwrap_or_default()),
            origin,
            "metadata.name",
        )])
    }
}

/// `auth/<mount>/role/<name>` of a kubernetes mount.
pub const KUBERNETES_AUTH_ROLE: Resource = Resource {
    table: Table::Auth,
    read: Read::Data,
    write: Write::Data,
    delete: Delete::Path,
    batch: true,
    apply_order: 100,
    belongs: Belongs::Mount,
    listed: Some(Listed {
        mount_type: "kubernetes",
        list: |mount| format!("auth/{mount}/role"),
        addr: VaultAddr::auth_role,
    }),
    prune_order: 0,
    needs: super::needs_write,
};
