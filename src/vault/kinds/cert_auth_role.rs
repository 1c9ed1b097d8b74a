//! `CertAuthRole`: `auth/<mount>/certs/<name>` of a TLS certificate auth
//! method (OpenBao's `auth/cert/certs/<name>`): the trusted certificate (read
//! from `certificateFile` when lowering; public), the names a client
//! certificate may carry, and the tokens it gets. Written whole, after its
//! auth mount and the policies it names; prune finds the ones no longer
//! declared by listing `auth/<mount>/certs` of cert mounts this repository
//! owns.

use serde_json::json;

use super::{Belongs, Delete, Listed, ObjectKind, Read, Resource, ResourceKind, Table, Write};
use crate::addr::VaultAddr;
use crate::desired::{auth_role_deps, put, put_secs, read_file, resource};
use crate::diagnostic::Diagnostic;
use crate::model::{CertAuthRoleSpec, Meta, Origin, Repository, VaultSpec};
use crate::pki::x509;
use crate::state::{DesiredResource, Fields};

/// The `CertAuthRole` kind.
pub struct CertAuthRole;

impl ObjectKind for CertAuthRole {
    type Spec = CertAuthRoleSpec;
    const RESOURCES: &'static [ResourceKind] = &[ResourceKind::CertAuthRole];

    fn lower(
        _: &Repository,
        meta: &Meta,
        origin: &Origin,
        s: &CertAuthRoleSpec,
    ) -> Result<Vec<DesiredResource>, Diagnostic> {
        let at = "spec.certificateFile";
        let certificate = read_file(&s.certificate_file, origin, at)?;
        if let Err(e) = x509::parse_pem(&certificate) {
            return Err(Diagnostic::new(
                origin.at(at),
                format!("{}: {e}", s.certificate_file.display()),
            )
            .hint("certificateFile must hold the CA certificate (PEM) that signs the clients' certificates"));
        }
        let mut f = Fields::new();
        f.insert("certificate", json!(certificate));
        put(
            &mut f,
            "allowed_common_names",
            s.allowed_common_names.clone(),
        );
        put(&mut f, "allowed_dns_sans", s.allowed_dns_sans.clone());
        put(&mut f, "allowed_email_sans", s.allowed_email_sans.clone());
        put(&mut f, "allowed_uri_sans", s.allowed_uri_sans.clone());
        put(
            &mut f,
            "allowed_organizational_units",
            s.allowed_organizational_units.clone(),
        );
        put(&mut f, "display_name", s.display_name.clone());
        put(&mut f, "token_policies", s.token_policies.clone());
        put_secs(&mut f, "token_ttl", s.token_ttl);
        put_secs(&mut f, "token_max_ttl", s.token_max_ttl);
        Ok(vec![resource(
            s.address(&meta.name).into(),
            ResourceKind::CertAuthRole,
            f,
            auth_role_deps(&s.mount, s.token_policies.as_deref().unwrap_or_default()),
            origin,
            "metadata.name",
        )])
    }
}

/// `auth/<mount>/certs/<name>`.
pub const CERT_AUTH_ROLE: Resource = Resource {
    table: Table::Auth,
    read: Read::Data,
    write: Write::Data,
    delete: Delete::Path,
    batch: true,
    apply_order: 130,
    belongs: Belongs::Mount,
    listed: Some(Listed {
        mount_type: "cert",
        list: |mount| format!("auth/{mount}/certs"),
        addr: VaultAddr::cert_role,
    }),
    prune_order: 0,
    needs: super::needs_write,
};
