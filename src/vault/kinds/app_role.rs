//! `AppRole`: `auth/<mount>/role/<name>` of an approle auth method, and its
//! fixed role ID (`.../role-id`) when the spec names one. The role is
//! written whole and depends on its auth mount and policies; prune finds
//! the ones no longer declared by listing `auth/<mount>/role` of approle
//! mounts this repository owns. (A secret ID delivered to a cluster
//! Secret is the cluster provider's: [`crate::deliver`].)

use serde_json::json;

use super::{Belongs, Delete, Listed, ObjectKind, Read, Resource, ResourceKind, Table, Write};
use crate::addr::{Addr, VaultAddr};
use crate::desired::{auth_role_deps, put, put_secs, resource};
use crate::diagnostic::Diagnostic;
use crate::model::{AppRoleSpec, Meta, Origin, Repository, VaultSpec};
use crate::state::{DesiredResource, Fields};

/// The `AppRole` kind.
pub struct AppRole;

impl ObjectKind for AppRole {
    type Spec = AppRoleSpec;
    const RESOURCES: &'static [ResourceKind] = &[ResourceKind::AppRole, ResourceKind::AppRoleId];

    fn lower(
        _: &Repository,
        meta: &Meta,
        origin: &Origin,
        s: &AppRoleSpec,
    ) -> Result<Vec<DesiredResource>, Diagnostic> {
        let mut f = Fields::new();
        put(&mut f, "token_policies", s.token_policies.clone());
        put_secs(&mut f, "token_ttl", s.token_ttl);
        put_secs(&mut f, "token_max_ttl", s.token_max_ttl);
        put_secs(&mut f, "secret_id_ttl", s.secret_id_ttl);
        put(&mut f, "secret_id_num_uses", s.secret_id_num_uses);
        put(
            &mut f,
            "secret_id_bound_cidrs",
            s.secret_id_bound_cidrs.clone(),
        );
        let role_addr: Addr = s.address(&meta.name).into();
        let role = resource(
            role_addr.clone(),
            ResourceKind::AppRole,
            f,
            auth_role_deps(&s.mount, s.token_policies.as_deref().unwrap_or_default()),
            origin,
            "metadata.name",
        );
        let mut out = vec![role];
        if let Some(id) = &s.role_id {
            let mut f = Fields::new();
            f.insert("role_id", json!(id));
            let addr = VaultAddr::RoleId {
                mount: s.mount.clone(),
                name: meta.name.clone(),
            };
            out.push(resource(
                addr.into(),
                ResourceKind::AppRoleId,
                f,
                vec![role_addr],
                origin,
                "spec.roleId",
            ));
        }
        Ok(out)
    }
}

/// `auth/<mount>/role/<name>` of an approle mount.
pub const APP_ROLE: Resource = Resource {
    table: Table::Auth,
    read: Read::Data,
    write: Write::Data,
    delete: Delete::Path,
    batch: true,
    apply_order: 110,
    belongs: Belongs::Mount,
    listed: Some(Listed {
        mount_type: "approle",
        list: |mount| format!("auth/{mount}/role"),
        addr: VaultAddr::auth_role,
    }),
    prune_order: 0,
    needs: super::needs_write,
};

/// `auth/<mount>/role/<name>/role-id`: written after its role, never in a
/// batch (it depends on the role); it goes with the role.
pub const APP_ROLE_ID: Resource = Resource {
    table: Table::Auth,
    read: Read::Data,
    write: Write::Data,
    delete: Delete::Path,
    batch: false,
    apply_order: 120,
    belongs: Belongs::Mount,
    listed: None,
    prune_order: 0,
    needs: super::needs_write,
};
