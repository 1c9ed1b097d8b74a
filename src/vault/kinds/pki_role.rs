//! `PkiRole`: `<mount>/roles/<name>`, written whole. It depends on its
//! mount and on the mount's CA; it belongs to its mount's owner, and prune
//! finds the ones no longer declared by listing `<mount>/roles`.

use super::{Belongs, Delete, Listed, ObjectKind, Read, Resource, ResourceKind, Table, Write};
use crate::addr::VaultAddr;
use crate::desired::{put, put_secs, resource};
use crate::diagnostic::Diagnostic;
use crate::model::{Meta, Origin, PkiRoleSpec, Repository, VaultSpec};
use crate::state::{DesiredResource, Fields};

/// The `PkiRole` kind.
pub struct PkiRole;

impl ObjectKind for PkiRole {
    type Spec = PkiRoleSpec;
    const RESOURCES: &'static [ResourceKind] = &[ResourceKind::Role];

    fn lower(
        repo: &Repository,
        meta: &Meta,
        origin: &Origin,
        s: &PkiRoleSpec,
    ) -> Result<Vec<DesiredResource>, Diagnostic> {
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
        let mut depends_on = vec![VaultAddr::mount(&s.mount).into()];
        if let Some((_, _, m)) = repo.pki_mount(&s.mount)
            && let Some(ca) = &m.ca
        {
            depends_on.push(VaultAddr::issuer(&s.mount, super::ca_issuer_name(ca)).into());
        }
        Ok(vec![resource(
            s.address(&meta.name).into(),
            ResourceKind::Role,
            f,
            depends_on,
            origin,
            "metadata.name",
        )])
    }
}

/// `<mount>/roles/<name>`.
pub const ROLE: Resource = Resource {
    table: Table::Secrets,
    read: Read::Data,
    write: Write::Data,
    delete: Delete::Path,
    batch: true,
    apply_order: 90,
    belongs: Belongs::Mount,
    listed: Some(Listed {
        mount_type: "pki",
        list: |mount| format!("{mount}/roles"),
        addr: VaultAddr::role,
    }),
    prune_order: 0,
    needs: super::needs_write,
};
